#!/usr/bin/env bash
# bench_status.sh - starts a private saturnd on a free loopback port with a
# temporary state dir, runs bench_status against it, stops it by PID.
#   meson test -C build --benchmark status      (or run this with the env below)
. "$(dirname "$0")/bench_lib.sh"
start_saturnd --log-level warn
"$BENCH_STATUS" --addr "$ADDR" --token-file "$T/token" "$@"
