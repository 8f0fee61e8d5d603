# lib.sh - helpers of the control-plane integration tests (sourced by bash).
#
# Every test starts real processes on 127.0.0.1 with free ports (saturnd
# binds port 0 and writes the port it got to --port-file) and a temporary
# state dir, records each PID, and an EXIT trap stops them by PID on every
# path (SIGTERM, then SIGKILL after 3 s) and removes the temporary dir.
#
# Environment (set by meson): SATURND, SATURN, SATURN_WORKER, RPC_PROBE,
# PROTO_DIR. KEEP_TMP=1 keeps the temporary dir for a post-mortem.

set -u
if ! command -v jq >/dev/null; then
    echo "SKIP: jq is not installed (Debian package jq)"
    exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/saturn-it.XXXXXX")
PIDS=()
NCHECK=0
NFAIL=0
unset SATURN_ADDR SATURN_TOKEN_FILE SATURN_TLS_CA

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    if [ "${KEEP_TMP:-0}" = 1 ] || [ "$NFAIL" -gt 0 ]; then
        echo "# logs kept in $T" >&2
        for f in "$T"/*.log; do
            [ -f "$f" ] || continue
            echo "# ---- $f (last 30 lines)" >&2
            tail -n 30 "$f" >&2
        done
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() { echo "# $*"; }

pass() {
    NCHECK=$((NCHECK + 1))
    echo "ok $NCHECK - $*"
}

fail() {
    NCHECK=$((NCHECK + 1))
    NFAIL=$((NFAIL + 1))
    echo "not ok $NCHECK - $*"
}

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# expect_exit CODE DESCRIPTION COMMAND...: runs the command, keeping its
# stdout in $OUT and stderr in $ERR, and checks its exit status.
expect_exit() {
    local want=$1 what=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    local got=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
    if [ "$got" -eq "$want" ]; then
        pass "$what (exit $got)"
    else
        fail "$what: exit $got, expected $want; stdout: $OUT; stderr: $ERR"
    fi
}

# contains DESCRIPTION HAYSTACK NEEDLE
contains() {
    case "$2" in
    *"$3"*) pass "$1" ;;
    *) fail "$1: \"$3\" not found in: $2" ;;
    esac
}

# wait_until SECONDS COMMAND...: polls every 0.1 s; status 0 once it holds.
wait_until() {
    local limit=$1
    shift
    local end=$((SECONDS + limit))
    while [ $SECONDS -le $end ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# start_saturnd [STATE_DIR] [extra flags]: starts saturnd, waits for its port,
# exports SATURN_ADDR and SATURN_TOKEN_FILE (the client token) and sets
# VIEWER_TOKEN_FILE and WORKER_TOKEN_FILE (the tokens saturnd generates in
# the state dir); SATURND_PID is its PID.
start_saturnd() {
    local dir=${1:-$T/state}
    shift || true
    mkdir -p "$dir"
    rm -f "$dir/port"
    "$SATURND" --state-dir "$dir" --listen "${LISTEN:-127.0.0.1:0}" --port-file "$dir/port" \
        --log-level debug "$@" >>"$T/saturnd.log" 2>&1 &
    SATURND_PID=$!
    PIDS+=("$SATURND_PID")
    if ! wait_until 20 test -s "$dir/port"; then
        fail "saturnd did not start"
        exit 1
    fi
    PORT=$(cat "$dir/port")
    export SATURN_ADDR=127.0.0.1:$PORT
    export SATURN_TOKEN_FILE=$dir/token
    VIEWER_TOKEN_FILE=$dir/viewer-token
    WORKER_TOKEN_FILE=$dir/worker-token
    wait_until 10 test -s "$SATURN_TOKEN_FILE"
}

# start_worker NAME: starts a saturn-worker with the worker token; its PID
# goes to WORKER_PID[NAME].
declare -A WORKER_PID
start_worker() {
    "$SATURN_WORKER" --name "$1" --threads 1 --log-level debug --token-file "$WORKER_TOKEN_FILE" \
        >>"$T/worker-$1.log" 2>&1 &
    WORKER_PID[$1]=$!
    PIDS+=("$!")
}

# jq_ok FILTER COMMAND...: true when jq -e FILTER holds on the command's JSON.
# jq_ok FILTER CMD...: CMD's output is JSON and FILTER holds on it. Empty
# output fails (jq 1.6's -e exits 0 when it reads nothing).
jq_ok() {
    local filter=$1 out
    shift
    out=$("$@" 2>/dev/null) || true
    [ -n "$out" ] && jq -e "$filter" >/dev/null 2>&1 <<<"$out"
}

nworkers_in() { # STATE: count of workers in that state
    "$SATURN" workers --all --json | jq "[.[] | select(.state == \"$1\")] | length"
}

job_state() { "$SATURN" status "$1" --json | jq -r .state; }

# finish: stops the daemons and workers (so that sanitizer builds report
# leaks at their exit), fails on any sanitizer report in their logs, prints
# the plain summary line and exits with the verdict.
finish() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait_until 10 bash -c "! kill -0 $pid 2>/dev/null"
    done
    if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log >/dev/null 2>&1; then
        fail "sanitizer reports in: $(grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log)"
    else
        pass "no sanitizer report in any daemon or worker log"
    fi
    echo "$((NCHECK - NFAIL)) passed, $NFAIL failed"
    [ "$NFAIL" -eq 0 ]
    exit $?
}
