// Shared by the libFuzzer targets that check properties: a target lists this file in its SOURCES
// (`Fuzz/Common` has no FuzzEntry.swift, so scripts/fuzz.sh never builds it alone).

#if canImport(Glibc)
internal import Glibc
#endif

/// Diagnostics go to stderr, unbuffered, so they survive the trap that follows.
func report(_ line: String) { fputs(line + "\n", stderr) }

/// Traps (which libFuzzer reports as a crash, keeping the input) when a property is violated.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        report(message())
        preconditionFailure("fuzz property violated")
    }
}
