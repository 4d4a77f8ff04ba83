#!/usr/bin/env python3
"""Trap lint: list every site in Sources/**/*.swift that can trap at run time and check each
against scripts/trap-allowlist.txt (sites that cannot fire, with a reason) and
scripts/trap-findings.md (sites that can fire on hostile input: a tracked to-do).

Flagged kinds:
  precondition          precondition(
  preconditionFailure   preconditionFailure(
  fatalError            fatalError(
  try!                  try!
  as!                   as!
  force-unwrap          postfix `!` on an expression (x!, f()!, a[i]!), also implicitly unwrapped
                        types in declarations (`var x: T!`): both trap on nil
  int-conversion        Int(…), UInt32(…), socklen_t(…) … whose argument is not an integer literal, not
                        a compile-time constant (ALL_CAPS C macros, .rawValue of one, MemoryLayout<T>.size,
                        Int32.max, combined with | & + - *), and not a labelled non-trapping form
                        (truncatingIfNeeded:, bitPattern:, clamping:, exactly:, ascii:, radix:).
                        The lint cannot see types: widening conversions and failable String inits are
                        flagged too and allowlisted with that reason.
Comments and string literals are ignored; code inside string interpolation is checked.

A site is identified by (file, kind, trimmed source line), never by line number. Entry format,
one per line (`#` comments and blank lines ignored):
    path :: kind :: trimmed line text :: reason
    path :: kind*N :: trimmed line text :: reason      (N identical lines in the file share it)
trap-findings.md tracks a site with a line `site: path :: kind :: trimmed line text`.

Usage: lint_traps.py [--root DIR] [--write-allowlist] [--list]
  default            exit 1 if a site is neither allowlisted nor a tracked finding; warn on stale
                     allowlist entries and findings; print the open-finding count
  --write-allowlist  rewrite the allowlist: keep reasons of entries that still match, add new
                     sites (not tracked as findings) with reason TODO
  --list             print every site as an allowlist line (reason TODO) and exit 0
"""
import os
import re
import sys
from collections import OrderedDict

ALLOWLIST = "scripts/trap-allowlist.txt"
FINDINGS = "scripts/trap-findings.md"

INT_TYPES = [
    "Int", "UInt", "Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64",
    "CInt", "CUnsignedInt", "CShort", "CUnsignedShort", "CLong", "CUnsignedLong", "CChar",
    "socklen_t", "size_t", "ssize_t", "off_t", "mode_t", "pid_t", "uid_t", "gid_t", "in_port_t",
    "sa_family_t", "time_t", "suseconds_t", "useconds_t", "nfds_t", "rlim_t", "in_addr_t",
]
SAFE_LABELS = ("truncatingIfNeeded:", "bitPattern:", "clamping:", "exactly:", "ascii:", "radix:")
INT_LITERAL = re.compile(r"^-?\s*(0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|[0-9][0-9_]*)$")
# A term that is a constant whatever the input: an ALL_CAPS C macro (optionally .rawValue), a literal,
# MemoryLayout<T>.size/stride/alignment, or Int32.max-style bounds.
CONSTANT_TERM = re.compile(
    r"MemoryLayout<[\w.]+>\.(?:size|stride|alignment)|\b(?:U?Int(?:8|16|32|64)?)\.(?:max|min)\b"
    r"|\b[A-Z][A-Z0-9_]*(?:\.rawValue)?\b|\b(?:0x[0-9a-fA-F_]+|[0-9][0-9_]*)\b")
CONSTANT_ARG = re.compile(r"^[K\s|&+*()-]+$")
CONV_RE = re.compile(r"(?<![\w.])(" + "|".join(INT_TYPES) + r")\(")
CALL_RE = re.compile(r"(?<![\w.])(precondition|preconditionFailure|fatalError)\(")
TRY_RE = re.compile(r"(?<![\w.])try!")
AS_RE = re.compile(r"(?<![\w.])as!")
IDENT = re.compile(r"[A-Za-z0-9_]")


def mask_code(src):
    """Return src with comments and string-literal contents replaced by spaces (newlines kept),
    interpolated code inside strings kept."""
    out = list(src)
    n = len(src)
    i = 0
    # stack of contexts: ('code', paren_depth_for_interp) or string contexts
    stack = []  # each: dict(kind='str', hashes=h, multi=bool) or dict(kind='interp', depth=d)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        top = stack[-1] if stack else None
        if top is not None and top["kind"] == "str":
            h = top["hashes"]
            if top["multi"]:
                if src.startswith('"""' + "#" * h, i):
                    stack.pop()
                    i += 3 + h
                    continue
            else:
                if src[i] == '"' and src.startswith("#" * h, i + 1):
                    stack.pop()
                    i += 1 + h
                    continue
                if src[i] == "\n":  # unterminated: recover
                    stack.pop()
                    i += 1
                    continue
            esc = "\\" + "#" * h
            if src.startswith(esc, i):
                j = i + len(esc)
                if j < n and src[j] == "(":
                    blank(i, j + 1)
                    stack.append({"kind": "interp", "depth": 1})
                    i = j + 1
                    continue
                blank(i, min(j + 1, n))
                i = j + 1
                continue
            blank(i, i + 1)
            i += 1
            continue
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
            continue
        if src.startswith("/*", i):
            depth = 0
            j = i
            while j < n:
                if src.startswith("/*", j):
                    depth += 1
                    j += 2
                elif src.startswith("*/", j):
                    depth -= 1
                    j += 2
                    if depth == 0:
                        break
                else:
                    j += 1
            blank(i, j)
            i = j
            continue
        m = re.match(r'(#*)("""|")', src[i:i + 8]) if c in '#"' else None
        if m and (c == '"' or m.group(1)):
            h = len(m.group(1))
            multi = m.group(2) == '"""'
            stack.append({"kind": "str", "hashes": h, "multi": multi})
            i += len(m.group(0))
            continue
        if top is not None and top["kind"] == "interp":
            if c == "(":
                top["depth"] += 1
            elif c == ")":
                top["depth"] -= 1
                if top["depth"] == 0:
                    stack.pop()
                    out[i] = " "
                    i += 1
                    continue
        i += 1
    return "".join(out)


def balanced_args(code, start):
    """code[start] is just after '('; return (args_text, end_index) or (None, None)."""
    depth = 1
    i = start
    n = len(code)
    while i < n:
        c = code[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return code[start:i], i
        i += 1
    return None, None


def find_sites(code):
    """Yield (offset, kind) for every trap site in masked code."""
    for m in CALL_RE.finditer(code):
        yield m.start(), m.group(1)
    for m in TRY_RE.finditer(code):
        yield m.start(), "try!"
    for m in AS_RE.finditer(code):
        yield m.start(), "as!"
    for m in CONV_RE.finditer(code):
        args, _ = balanced_args(code, m.end())
        if args is None:
            continue
        a = " ".join(args.split())
        if a == "" or INT_LITERAL.match(a):
            continue
        if any(a.startswith(l) or (", " + l) in a or ("," + l) in a for l in SAFE_LABELS):
            continue
        if CONSTANT_ARG.match(CONSTANT_TERM.sub("K", a)):
            continue  # compile-time constant: C macro constants, MemoryLayout sizes, T.max
        yield m.start(), "int-conversion"
    n = len(code)
    for i, c in enumerate(code):
        if c != "!" or i == 0:
            continue
        p = code[i - 1]
        if not (IDENT.match(p) or p in ")]>?"):
            continue  # prefix ! or spaced binary operator
        nxt = code[i + 1] if i + 1 < n else ""
        if nxt == "=":
            continue  # != or !==
        # skip `try!`, `as!` (own kinds)
        w = re.search(r"[A-Za-z0-9_]+$", code[max(0, i - 16):i])
        if w and w.group(0) in ("try", "as") and not re.match(r"[\w.]", code[i - len(w.group(0)) - 1] if i - len(w.group(0)) - 1 >= 0 else " "):
            continue
        yield i, "force-unwrap"


def scan(root):
    """Return OrderedDict key -> list of line numbers, key = (path, kind, text)."""
    sites = OrderedDict()
    files = []
    for d, dirs, fs in os.walk(os.path.join(root, "Sources")):
        dirs.sort()
        for f in sorted(fs):
            if f.endswith(".swift"):
                files.append(os.path.join(d, f))
    for path in files:
        rel = os.path.relpath(path, root)
        with open(path, encoding="utf-8") as fh:
            src = fh.read()
        code = mask_code(src)
        lines = src.split("\n")
        starts = [0]
        for ln in lines:
            starts.append(starts[-1] + len(ln) + 1)
        import bisect
        found = sorted(set(find_sites(code)))
        for off, kind in found:
            lineno = bisect.bisect_right(starts, off)
            text = " ".join(lines[lineno - 1].strip().split())
            sites.setdefault((rel, kind, text), []).append(lineno)
    return sites


def parse_entries(path, findings=False):
    """Return OrderedDict key -> (count, reason, lineno_in_file)."""
    entries = OrderedDict()
    if not os.path.exists(path):
        return entries
    with open(path, encoding="utf-8") as fh:
        for no, raw in enumerate(fh, 1):
            line = raw.rstrip("\n")
            if findings:
                m = re.match(r"\s*(?:[-*]\s*)?`?site:\s*(.*?)`?\s*$", line)
                if not m:
                    continue
                body = m.group(1) + " :: finding"
            else:
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                body = line
            parts = body.split(" :: ")
            if len(parts) < 4:
                print(f"{path}:{no}: malformed entry (want path :: kind :: text :: reason)", file=sys.stderr)
                continue
            p, kind, reason = parts[0].strip(), parts[1].strip(), parts[-1].strip()
            text = " :: ".join(parts[2:-1]).strip()
            count = 1
            km = re.match(r"^(.*)\*(\d+)$", kind)
            if km:
                kind, count = km.group(1), int(km.group(2))
            key = (p, kind, " ".join(text.split()))
            old = entries.get(key)
            entries[key] = ((old[0] if old else 0) + count, reason, no)
    return entries


def fmt_entry(key, count, reason):
    p, kind, text = key
    k = kind if count == 1 else f"{kind}*{count}"
    return f"{p} :: {k} :: {text} :: {reason}"


def main(argv):
    root = "."
    mode = "check"
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--root":
            root = args.pop(0)
        elif a == "--write-allowlist":
            mode = "write"
        elif a == "--list":
            mode = "list"
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            print(f"unknown argument {a}", file=sys.stderr)
            return 2
    sites = scan(root)
    if mode == "list":
        for key, lines in sites.items():
            print(fmt_entry(key, len(lines), "TODO"))
        return 0
    allow = parse_entries(os.path.join(root, ALLOWLIST))
    finds = parse_entries(os.path.join(root, FINDINGS), findings=True)

    if mode == "write":
        header = []
        apath = os.path.join(root, ALLOWLIST)
        if os.path.exists(apath):
            with open(apath, encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("#") or not line.strip():
                        header.append(line.rstrip("\n"))
                    else:
                        break
        out = header[:] or ["# path :: kind[*N] :: trimmed source line :: why it cannot fire"]
        for key, lines in sites.items():
            if key in finds:
                continue
            reason = allow[key][1] if key in allow else "TODO"
            out.append(fmt_entry(key, len(lines), reason))
        with open(apath, "w", encoding="utf-8") as fh:
            fh.write("\n".join(out) + "\n")
        todo = sum(1 for l in out if l.endswith(":: TODO"))
        print(f"wrote {apath}: {len(out) - len(header)} entries, {todo} with reason TODO")
        return 0

    bad = []
    open_findings = []
    for key, lines in sites.items():
        p, kind, text = key
        allowed = (allow[key][0] if key in allow else 0) + (finds[key][0] if key in finds else 0)
        if key in finds:
            open_findings.extend((p, l, kind, text) for l in lines)
        if len(lines) > allowed:
            note = "" if allowed == 0 else f" ({len(lines)} identical sites, {allowed} covered)"
            for l in lines:
                bad.append(f"{p}:{l}: {kind}: {text}{note}")
    todo = [(k, v) for k, v in allow.items() if v[1].upper().startswith("TODO")]
    stale = [(k, v) for k, v in allow.items() if k not in sites]
    stale_f = [(k, v) for k, v in finds.items() if k not in sites]
    for (p, kind, text), (c, reason, no) in stale:
        print(f"warning: {ALLOWLIST}:{no}: stale entry, no such site: {p} :: {kind} :: {text}", file=sys.stderr)
    for (p, kind, text), (c, reason, no) in stale_f:
        print(f"warning: {FINDINGS}:{no}: finding no longer present (fixed? remove it): {p} :: {kind} :: {text}",
              file=sys.stderr)
    for (p, kind, text), (c, reason, no) in todo:
        print(f"error: {ALLOWLIST}:{no}: reason is TODO: {p} :: {kind} :: {text}", file=sys.stderr)
    total = sum(len(v) for v in sites.values())
    print(f"trap lint: {total} sites, {total - len(bad) - len(open_findings)} allowlisted, "
          f"{len(open_findings)} in open findings ({len([k for k in finds if k in sites])} entries, see {FINDINGS}), "
          f"{len(bad)} unlisted")
    if bad:
        print("unlisted trap sites (allowlist with a reason in " + ALLOWLIST + ", or fix, or track in " + FINDINGS + "):",
              file=sys.stderr)
        for b in bad:
            print("  " + b, file=sys.stderr)
    return 1 if (bad or todo) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
