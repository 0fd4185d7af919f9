#!/bin/sh
# make check: lint, a normal build and an ASan+UBSan build (with the
# fuzzers), every test of each under CTest, and one summary line.
set -u
BUILD=${1:-build}
SAN_BUILD=${2:-build-san}
JOBS=$(nproc)
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

fail=0
passed=0
failed=0

step() { printf '\n== %s\n' "$*"; }

tally() { # $1: a ctest log
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -n 1)
    if [ -z "$line" ]; then
        echo "check: no CTest summary in $1" >&2
        fail=1
        return
    fi
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
    t=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/')
    passed=$((passed + t - f))
    failed=$((failed + f))
}

step "lint"
if ! make -s lint; then
    echo "check: lint failed (run 'make format')" >&2
    fail=1
fi

step "normal build ($BUILD)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
    cmake --build "$BUILD" -j"$JOBS" || { echo "check: build failed" >&2; exit 1; }

step "sanitizer build ($SAN_BUILD: clang, ASan+UBSan, libFuzzer)"
CC=clang cmake -S . -B "$SAN_BUILD" -DCMAKE_BUILD_TYPE=Debug -DFG_SANITIZE=ON -DFG_FUZZ=ON \
    >/dev/null && cmake --build "$SAN_BUILD" -j"$JOBS" ||
    { echo "check: sanitizer build failed" >&2; exit 1; }

for b in "$BUILD" "$SAN_BUILD"; do
    step "tests in $b"
    (cd "$b" && ctest --output-on-failure -j"$JOBS") 2>&1 | tee "$b/ctest.log"
    tally "$b/ctest.log"
done

step "summary"
[ "$failed" -ne 0 ] && fail=1
echo "check: $passed passed, $failed failed"
exit $fail
