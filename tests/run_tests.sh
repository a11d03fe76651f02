#!/usr/bin/env bash
# tests/run_tests.sh - run every test binary in $BUILD/tests against a throwaway PostgreSQL.
# Each binary is a cmocka suite.  Prints each suite's output, then one closing line:
#   "tests: N passed, N failed, N skipped"
# Exits non-zero when any test failed or any suite crashed.
set -u
BUILD=${BUILD:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pgdir="$root/$BUILD/pgtest"
if ! out=$(scripts/pgtmp.sh start "$pgdir"); then
    echo "tests: could not start the test PostgreSQL cluster (see above)" >&2
    exit 1
fi
eval "$out"
trap 'scripts/pgtmp.sh stop "$pgdir"' EXIT
# The real data (Dominick's, Open Bandit) ships in data/datasets/ and `make` unpacks it into
# $BUILD/datasets; its tests fail (never skip) when it is missing.
export RLPRICE_DATA_DIR=${RLPRICE_DATA_DIR:-$root/$BUILD/datasets}
if [ ! -r "$RLPRICE_DATA_DIR/dominicks_oj/oj_store_brand_week.csv" ]; then
    echo "tests: the real data is not unpacked in $RLPRICE_DATA_DIR (run \`make BUILD=$BUILD\` first); its tests will fail"
fi
export RLPRICE_TEST_TMP="$root/$BUILD/testtmp"
# the command-line binary of this build (the MPI suite runs it under mpirun)
if [ "$BUILD" = build ]; then export RLPRICE_BIN="$root/rlprice"; else export RLPRICE_BIN="$root/$BUILD/rlprice"; fi
rm -rf "$RLPRICE_TEST_TMP"; mkdir -p "$RLPRICE_TEST_TMP"

passed=0 failed=0 skipped=0 crashed=""
only=${TESTS:-}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d|*.o) continue ;; esac
    name=$(basename "$t")
    if [ -n "$only" ] && ! echo " $only " | grep -q " $name "; then continue; fi
    echo "=== $name"
    log="$RLPRICE_TEST_TMP/$name.log"
    timeout "${TEST_TIMEOUT:-900}" "$t" >"$log" 2>&1
    rc=$?
    cat "$log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
    if [ $rc -ne 0 ] && [ -z "$f" ]; then crashed="$crashed $name(rc=$rc)"; failed=$((failed + 1)); fi
done
[ -n "$crashed" ] && echo "tests: suites that crashed or timed out:$crashed"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
