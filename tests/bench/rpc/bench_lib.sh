# bench_lib.sh - sourced by the RPC benchmarks: start_saturnd [FLAGS...]
# starts a private saturnd on a free loopback port with a temporary state
# dir T, sets PID and ADDR, and an EXIT trap stops it by PID and removes T.
set -u
T=$(mktemp -d "${TMPDIR:-/tmp}/saturn-bench.XXXXXX")
start_saturnd() {
    "$SATURND" --state-dir "$T" --listen 127.0.0.1:0 --port-file "$T/port" "$@" \
        2>"$T/saturnd.log" &
    PID=$!
    trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$T"' EXIT
    for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
    ADDR=127.0.0.1:$(cat "$T/port")
}
