#!/usr/bin/env bash
# bench_status.sh - starts a private saturnd on a free loopback port with a
# temporary state dir, runs bench_status against it, stops it by PID.
#   meson test -C build --benchmark status      (or run this with the env below)
set -u
T=$(mktemp -d "${TMPDIR:-/tmp}/saturn-bench.XXXXXX")
"$SATURND" --state-dir "$T" --listen 127.0.0.1:0 --port-file "$T/port" --log-level warn \
    2>"$T/saturnd.log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
"$BENCH_STATUS" --addr "127.0.0.1:$(cat "$T/port")" --token-file "$T/token" "$@"
