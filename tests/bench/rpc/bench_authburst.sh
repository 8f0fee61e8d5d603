#!/usr/bin/env bash
# bench_authburst.sh - starts a private saturnd (bench_lib.sh), runs
# bench_authburst against it (32 parallel 60 MiB calls with a wrong token;
# saturnd's RSS idle, during and after), prints saturnd's log lines about
# the refusals, stops it by PID.
#   meson test -C build --benchmark authburst --verbose
. "$(dirname "$0")/bench_lib.sh"
start_saturnd --log-level info
"$BENCH_AUTHBURST" "$ADDR" "$PID" "$@"
RC=$?
echo "# saturnd logged $(grep -c 'refused' "$T/saturnd.log") refusal line(s) for the burst:"
grep 'refused' "$T/saturnd.log" | sed 's/^/#   /'
exit $RC
