#!/usr/bin/env bash
# bench_authburst.sh - starts a private saturnd on a free loopback port with
# a temporary state dir, runs bench_authburst against it (32 parallel
# 60 MiB calls with a wrong token; saturnd's RSS idle, during and after),
# prints saturnd's log lines about the refusals, stops it by PID.
#   meson test -C build --benchmark authburst --verbose
set -u
T=$(mktemp -d "${TMPDIR:-/tmp}/saturn-bench.XXXXXX")
"$SATURND" --state-dir "$T" --listen 127.0.0.1:0 --port-file "$T/port" --log-level info \
    2>"$T/saturnd.log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
"$BENCH_AUTHBURST" "127.0.0.1:$(cat "$T/port")" "$PID" "$@"
RC=$?
echo "# saturnd logged $(grep -c 'refused' "$T/saturnd.log") refusal line(s) for the burst:"
grep 'refused' "$T/saturnd.log" | sed 's/^/#   /'
exit $RC
