#!/usr/bin/env bash
# Saturn's test command: installs what is missing, builds, and runs the whole
# suite twice, in a normal build (build/) and under AddressSanitizer +
# UndefinedBehaviorSanitizer (build-asan/), then runs each libFuzzer target
# for a while (clang, build-fuzz/, suite fuzz). Ends with one line
# "N passed, N failed, N skipped" and exits non-zero on any failure.
#
#   deploy/test.sh              all three
#   deploy/test.sh --quick      normal build only
#   SATURN_TEST_ARGS="--suite unit" deploy/test.sh   pass arguments to meson test
#   SATURN_FUZZ_SECONDS=60 deploy/test.sh            seconds per fuzz target (20)
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1

deploy/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

# meson runs tests side by side on 2 cores: OpenMP threads that spin while
# waiting would starve each other, so they sleep instead.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

passed=0 failed=0 skipped=0
# Checks run before this script (.ci/run's image check) count in the
# summary: SATURN_PRIOR_PASSED / SATURN_PRIOR_FAILED.
passed=$((passed + ${SATURN_PRIOR_PASSED:-0}))
failed=$((failed + ${SATURN_PRIOR_FAILED:-0}))
# run_suite DIR SETUP_ARGS...: sets DIR up if needed, builds $ninja_target
# (default all) and runs meson test with $test_args.
ninja_target="" test_args=${SATURN_TEST_ARGS:-}
run_suite() {
    local dir=$1; shift
    if [ ! -d "$dir" ]; then
        meson setup "$dir" "$@" >/dev/null || { failed=$((failed + 1)); return; }
    fi
    if ! ninja -C "$dir" $ninja_target >"$dir.build.log" 2>&1; then
        tail -n 40 "$dir.build.log"
        echo "test.sh: build in $dir failed"
        failed=$((failed + 1))
        return
    fi
    local log
    log=$(meson test -C "$dir" --print-errorlogs $test_args 2>&1)
    echo "$log" | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout|Expected Fail|Unexpected Pass):' || true
    echo "$log" | grep -qE '^Ok:' || echo "$log" | tail -n 60
    local ok fl sk to up
    ok=$(echo "$log" | awk '/^Ok:/{print $NF}')
    fl=$(echo "$log" | awk '/^Fail:/{print $NF}')
    sk=$(echo "$log" | awk '/^Skipped:/{print $NF}')
    to=$(echo "$log" | awk '/^Timeout:/{print $NF}')
    up=$(echo "$log" | awk '/^Unexpected Pass:/{print $NF}')
    passed=$((passed + ${ok:-0}))
    failed=$((failed + ${fl:-0} + ${to:-0} + ${up:-0}))
    skipped=$((skipped + ${sk:-0}))
    [ -n "$ok" ] || failed=$((failed + 1))
}

echo "== normal build (build/)"
run_suite build
if [ $quick -eq 0 ]; then
    echo "== AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/)"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp}
    SATURN_SANITIZED=1 run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbuildtype=debugoptimized
    echo "== libFuzzer targets (build-fuzz/, clang), ${SATURN_FUZZ_SECONDS:-20} s each"
    ninja_target=fuzz test_args="--no-rebuild --suite fuzz" CC=clang \
        run_suite build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
    grep -hE '^fuzz_[a-z]+: ' build-fuzz/meson-logs/testlog.txt 2>/dev/null
fi
if [ $skipped -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ $failed -eq 0 ]
