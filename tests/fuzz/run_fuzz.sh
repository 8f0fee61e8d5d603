#!/usr/bin/env bash
# run_fuzz.sh - runs one libFuzzer target for a bounded time (meson suite
# 'fuzz'; see tests/fuzz/meson.build).
#
#   run_fuzz.sh BINARY NAME SEED_DIR REGRESS_DIR
#
# Copies the seed corpus to a temporary directory (the repository is never
# written), uses tests/fuzz/NAME.dict if there is one, replays the
# regression inputs read-only (REGRESS_DIR may not exist yet), fuzzes for
# SATURN_FUZZ_SECONDS (default 20) and fails on any crash, leak, timeout,
# out-of-memory or sanitizer report. Prints one line of figures:
#   fuzz_NAME: R runs in S s (E exec/s), corpus N seeds -> K kept -> M inputs,
#     cov C -> D, ft F -> G, rss M MB
# (cov: code edges reached, ft: libFuzzer features, at start and end)
# On failure the temporary directory, with the crashing input
# (crash-*, leak-*, timeout-*, oom-*), is kept and its path printed:
# replay with BINARY FILE, and keep it in tests/fuzz/regress/NAME/.
set -uo pipefail
bin=$1 name=$2 seeds=$3 regress=$4
extra=()
[ -d "$regress" ] && extra=("$regress")
# tests/fuzz/NAME.dict, when there is one: tokens for the mutator.
dict=$(dirname "$(dirname "$seeds")")/$name.dict
[ -f "$dict" ] && extra=(-dict="$dict" "${extra[@]}")
secs=${SATURN_FUZZ_SECONDS:-20}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "run_fuzz.sh: SATURN_FUZZ_SECONDS must be a whole number >= 1, not '$secs'" >&2
    exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/saturn-fuzz-$name.XXXXXX") || exit 2
mkdir "$tmp/corpus"
cp -- "$seeds"/* "$tmp/corpus/"
nseeds=$(ls "$tmp/corpus" | wc -l)

# UBSan reports are fatal (libFuzzer then keeps the input); leaks are found
# by libFuzzer's own LeakSanitizer pass.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1
log=$tmp/libfuzzer.log
# The hard cap covers loading and replaying the corpus on top of fuzzing.
timeout --kill-after=10 $((secs + 120)) "$bin" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$tmp/" \
    "$tmp/corpus" "${extra[@]}" >"$log" 2>&1
rc=$?

field() { # the value after "$1" on the last line matching $2
    grep -E "$2" "$log" | tail -n 1 | sed -nE "s/.*$1[[:space:]]*([0-9]+).*/\1/p"
}
runs=$(field 'stat::number_of_executed_units:' 'stat::number_of_executed_units')
eps=$(field 'stat::average_exec_per_sec:' 'stat::average_exec_per_sec')
rss=$(field 'stat::peak_rss_mb:' 'stat::peak_rss_mb')
secs_run=$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$log" | tail -n 1)
c0=$(field 'corp:' '[[:space:]]INITED[[:space:]]') c1=$(field 'corp:' '[[:space:]]DONE[[:space:]]')
v0=$(field 'cov:' '[[:space:]]INITED[[:space:]]') v1=$(field 'cov:' '[[:space:]]DONE[[:space:]]')
f0=$(field 'ft:' '[[:space:]]INITED[[:space:]]') f1=$(field 'ft:' '[[:space:]]DONE[[:space:]]')
echo "fuzz_$name: ${runs:-?} runs in ${secs_run:-?} s (${eps:-?} exec/s)," \
    "corpus $nseeds seeds -> ${c0:-?} kept -> ${c1:-?} inputs, cov ${v0:-?} -> ${v1:-?}," \
    "ft ${f0:-?} -> ${f1:-?}, rss ${rss:-?} MB"

bad=
[ $rc -eq 0 ] || bad="libFuzzer exited with $rc"
[ $rc -eq 124 ] && bad="still running after $((secs + 120)) s"
if [ -z "$bad" ] && grep -qE 'runtime error:|ERROR: (Address|Leak|UndefinedBehavior)Sanitizer' "$log"; then
    bad="a sanitizer report"
fi
if [ -z "$bad" ] && [ -z "$c1" ]; then
    bad="no final statistics (did libFuzzer run?)"
fi
if [ -n "$bad" ]; then
    echo "fuzz_$name: FAILED: $bad"
    grep -vE '^#[0-9]+ ' "$log" | tail -n 60
    echo "fuzz_$name: kept $tmp (inputs:" $(ls "$tmp" | grep -E '^(crash|leak|timeout|oom|slow-unit)-') ")"
    exit 1
fi
rm -rf -- "$tmp"
