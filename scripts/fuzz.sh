#!/usr/bin/env bash
# Builds and runs the libFuzzer targets in Fuzz/. Usage: scripts/fuzz.sh build|run SECONDS [Name]
#   Fuzz/<Name>/FuzzEntry.swift   the entry (@_cdecl("LLVMFuzzerTestOneInput"))
#   Fuzz/<Name>/SOURCES           one path per line, relative to the repo root: a directory (all *.swift
#                                 under it) or a file; `-path` excludes a directory or file; `#` comments
#   Fuzz/<Name>/dict, max_len     optional libFuzzer dictionary and -max_len (default 4096)
#   Fuzz/<Name>/seeds/            optional seed inputs, committed (read only; new inputs go to .build-fuzz/corpus/<Name>)
#   Fuzz/<Name>/prebuild          optional executable run from the repo root before compiling; its stdout is
#                                 extra swiftc arguments (e.g. a dependency built as its own module)
# Exit status: 0 when every target built and ran without a crash, 1 otherwise (a crash's input is in
# .build-fuzz/artifacts/<Name>/). Targets run one after the other, one process each.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:?build|run}
seconds=${2:-60}
only=${3:-}
out=.build-fuzz
# The Swift backtracer trips ASan (its memory server reads across allocations) and hides the trap;
# libFuzzer reports the crash and keeps the input either way.
export SWIFT_BACKTRACE=enable=no
mkdir -p "$out"

sources() {  # the .swift files named by Fuzz/$1/SOURCES, sorted, excludes applied
    local list=Fuzz/$1/SOURCES line excl=() incl=()
    [ -f "$list" ] || { echo "fuzz: $list missing" >&2; return 1; }
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%%#*}; line=$(echo "$line" | xargs)
        [ -z "$line" ] && continue
        if [ "${line:0:1}" = "-" ]; then excl+=("${line:1}"); else incl+=("$line"); fi
    done < "$list"
    local p f x skip
    for p in "${incl[@]}"; do
        if [ -d "$p" ]; then find "$p" -name '*.swift' -type f; elif [ -f "$p" ]; then echo "$p";
        else echo "fuzz: $list: no such path $p" >&2; return 1; fi
    done | sort -u | while read -r f; do
        skip=0
        for x in "${excl[@]+"${excl[@]}"}"; do
            x=${x%/}
            if [ "$f" = "$x" ] || [ "${f#"$x"/}" != "$f" ]; then skip=1; fi
        done
        if [ $skip = 0 ]; then echo "$f"; fi
    done
}

build() {
    local name=$1 files extra=""
    files=$(sources "$name") || return 1
    if [ -x "Fuzz/$name/prebuild" ]; then
        echo "fuzz: prebuild $name"
        extra=$("Fuzz/$name/prebuild") || { echo "fuzz: prebuild of $name failed" >&2; return 1; }
    fi
    rm -f "$out/$name"
    echo "fuzz: building $name ($(echo "$files" | wc -l) files)"
    # "Cannot export local symbol" is noise from -sanitize=fuzzer with -parse-as-library.
    # shellcheck disable=SC2086
    swiftc -parse-as-library -module-name "$name" -O -g -sanitize=fuzzer,address \
        $files "Fuzz/$name/FuzzEntry.swift" $extra -o "$out/$name" 2>&1 | { grep -v "Cannot export local symbol" || true; }
}

run() {
    local name=$1 max_len=4096 args=()
    [ -f "Fuzz/$name/max_len" ] && max_len=$(tr -d '[:space:]' < "Fuzz/$name/max_len")
    [ -f "Fuzz/$name/dict" ] && args+=("-dict=Fuzz/$name/dict")
    mkdir -p "$out/artifacts/$name" "$out/corpus/$name"
    local corpora=("$out/corpus/$name")
    [ -d "Fuzz/$name/seeds" ] && corpora+=("Fuzz/$name/seeds")
    echo "fuzz: running $name for ${seconds}s"
    "$out/$name" -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$name/" "${args[@]+"${args[@]}"}" "${corpora[@]}" 2>&1 \
        | tee "$out/$name.log" | grep -E '^(#[0-9]+ +DONE|==[0-9]+==ERROR|SUMMARY|stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs|artifact_prefix|Test unit written)' 
    return "${PIPESTATUS[0]}"
}

targets=()
for d in Fuzz/*/; do
    n=$(basename "$d")
    [ -f "$d/FuzzEntry.swift" ] || continue
    [ -n "$only" ] && [ "$n" != "$only" ] && continue
    targets+=("$n")
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no target ${only:+named $only }in Fuzz/" >&2; exit 1; }

failed=()
for n in "${targets[@]}"; do
    if ! build "$n" || [ ! -x "$out/$n" ]; then failed+=("$n (build)"); continue; fi
    [ "$mode" = run ] || continue
    run "$n" || failed+=("$n (crash: see $out/artifacts/$n/, log $out/$n.log)")
done
if [ ${#failed[@]} -gt 0 ]; then
    printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "fuzz: ${targets[*]}: ok"
