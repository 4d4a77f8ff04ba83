#!/usr/bin/env bash
# Builds Sources/<Module> as its own static Swift module, instrumented like the fuzz targets
# (ASan + libFuzzer coverage), into .build-fuzz/deps/<Module>; prints the swiftc arguments that
# import and link it. For Fuzz/<Name>/prebuild scripts whose sources `import <Module>` (a target
# compiled as one module cannot list the sources of a module it imports).
# Usage (from the repo root): scripts/fuzz-module.sh Module [extra swiftc arguments...]
set -euo pipefail
mod=${1:?module name}
shift
src=Sources/$mod
[ -d "$src" ] || { echo "fuzz-module: no $src" >&2; exit 1; }
out=.build-fuzz/deps/$mod
mkdir -p "$out"
lib=$out/lib$mod.a
# Targets may be built side by side: one builder at a time per module.
exec 9>"$out/.lock"
flock 9
if [ ! -f "$lib" ] || [ -n "$(find "$src" -newer "$lib" -name '*.swift' | head -1)" ]; then
    echo "fuzz-module: building $mod" >&2
    rm -f "$lib" "$out/$mod.swiftmodule"
    # shellcheck disable=SC2046
    swiftc -emit-library -static -parse-as-library -module-name "$mod" -O -g -sanitize=fuzzer,address \
        -emit-module -emit-module-path "$out/$mod.swiftmodule" "$@" \
        $(find "$src" -name '*.swift' -type f | sort) -o "$lib.tmp" >&2
    mv "$lib.tmp" "$lib"
fi
echo "-I $out -L $out -l$mod"
