# ps_lib.sh - helpers of the training tests (issue 4), on top of lib.sh.
#
# Sizes: the tests train real models on Fashion-MNIST, so they are sized
# for CI (2 cores). With SATURN_SANITIZED=1 (deploy/test.sh sets it for the
# ASan+UBSan build, where the engine is ~10x slower) they use less data and
# lower, still meaningful, accuracy bars (chance is 10%).
. "$(dirname "$0")/lib.sh"

SAN=${SATURN_SANITIZED:-0}
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] &&
    [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte ]; then
    echo "SKIP: Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)"
    exit 77
fi

# terminal STATE: true for succeeded/failed/cancelled
job_done() {
    "$SATURN" status "$1" --json 2>/dev/null |
        jq -e '.state == "succeeded" or .state == "failed" or .state == "cancelled"' >/dev/null
}

# wait_job JOB SECONDS: waits (bounded) until the job has ended.
wait_job() {
    wait_until "$2" job_done "$1"
}

# jf JOB FILTER: one field of status --json.
jf() { "$SATURN" status "$1" --json | jq -r "$2"; }

# spec FILE KEY=VALUE...: writes examples/cnn-small-w4a4.json with fields changed.
spec_file() {
    local out=$1
    shift
    local filter='.'
    local kv k v
    for kv in "$@"; do
        k=${kv%%=*}
        v=${kv#*=}
        if [[ $v =~ ^-?[0-9.]+$ ]] || [ "$v" = true ] || [ "$v" = false ]; then
            filter="$filter | .$k = $v"
        else
            filter="$filter | .$k = \"$v\""
        fi
    done
    # A 1-epoch job cannot keep the example's 1 warm-up epoch.
    filter="$filter | if .warmup_epochs >= .epochs then .warmup_epochs = 0 else . end"
    jq "$filter" "$EXAMPLES/cnn-small-w4a4.json" >"$out"
}

# start_workers N [THREADS]: starts N workers named w0..w(N-1), with the
# worker token.
start_workers() {
    local i
    for ((i = 0; i < $1; i++)); do
        "$SATURN_WORKER" --name "w$i" --threads "${2:-1}" --log-level info \
            --token-file "$WORKER_TOKEN_FILE" >>"$T/worker-w$i.log" 2>&1 &
        WORKER_PID[w$i]=$!
        PIDS+=("$!")
    done
    wait_until 20 jq_ok "length >= $1" "$SATURN" workers --json
}

# py ...: runs python3 (the checks of safetensors files use only json+struct).
py() { python3 "$@"; }

# ft_sizes: the fault-tolerance tests' job size (ft_handover, ft_crash): a
# 2-worker bsp job (384 steps; 192 sanitized) long enough to be interrupted
# at a step chosen at random in its first half, and, for a drain, in its
# first quarter: a drain takes effect at the worker's next heartbeat, up
# to a second later, and the engine now trains this job at up to 150
# steps/s (192 steps once ended 0.6 s after a drain at step 84). Sets LIMIT
# TEST EPOCHS BATCH WAIT_S and TOTAL (its steps).
ft_sizes() {
    if [ "$SAN" = 1 ]; then
        LIMIT=2048 TEST=200 EPOCHS=3 BATCH=32 WAIT_S=600
    else
        LIMIT=8192 TEST=500 EPOCHS=3 BATCH=64 WAIT_S=300
    fi
    TOTAL=$((EPOCHS * (LIMIT / 2 / (BATCH / 2))))
}
