#!/usr/bin/env bash
# ps_kill.sh - a worker killed with SIGKILL in the middle of training, with
# no worker to take its rank: within the lease time + 5 s the job is
# `recovering` (not failed) with a reason that names the worker and the
# step; the other worker stays with the job, waiting; a cancel then tells
# it to stop (its parked pull is answered at once) and it is idle again;
# nothing hangs; saturnd serves on. (ft_handover covers the hand-over.)
. "$(dirname "$0")/ps_lib.sh"

LEASE_MS=2000
start_saturnd "$T/state" --lease-ms $LEASE_MS
"$SATURN_WORKER" --name alpha --threads 1 --token-file "$WORKER_TOKEN_FILE" >>"$T/worker-alpha.log" 2>&1 &
WORKER_PID[alpha]=$!
PIDS+=("$!")
"$SATURN_WORKER" --name beta --threads 1 --token-file "$WORKER_TOKEN_FILE" >>"$T/worker-beta.log" 2>&1 &
WORKER_PID[beta]=$!
PIDS+=("$!")
check "2 workers registered" wait_until 20 jq_ok 'length == 2' "$SATURN" workers --json
spec_file "$T/spec.json" name=victim epochs=50 train_limit=4096 test_limit=256 batch_size=64
J=$("$SATURN" submit "$T/spec.json" --json | jq -r .job_id)
check "the job trains (step >= 3)" wait_until 120 jq_ok '.step >= 3' "$SATURN" status "$J" --json
VICTIM=$("$SATURN" workers --json | jq -r '.[] | select(.name == "alpha") | .id')
kill -KILL "${WORKER_PID[alpha]}"
KILLED=$(date +%s%3N)
check "the job waits for a worker (recovering)" wait_until $((LEASE_MS / 1000 + 10)) \
    jq_ok '.state == "recovering"' \
    "$SATURN" status "$J" --json
AFTER=$(($(date +%s%3N) - KILLED))
note "recovering ${AFTER} ms after the kill (lease ${LEASE_MS} ms)"
check "within the lease + 5 s (${AFTER} ms <= $((LEASE_MS + 5000)) ms)" \
    test "$AFTER" -le $((LEASE_MS + 5000))
REASON=$(jf "$J" .reason)
note "reason: $REASON"
contains "the reason names the worker" "$REASON" "worker $VICTIM (alpha) lost"
check "the reason names the step" bash -c "echo '$REASON' | grep -qE 'at step [0-9]+ of [0-9]+'"
check "the other worker stays with the job" \
    jq_ok '.[] | select(.name == "beta") | .state == "busy"' "$SATURN" workers --json
expect_exit 0 "cancel the recovering job" "$SATURN" cancel "$J"
check "the other worker is idle again" \
    wait_until 10 jq_ok '.[] | select(.name == "beta") | .state == "idle"' "$SATURN" workers --json
check "the other worker process is alive" kill -0 "${WORKER_PID[beta]}"
check "its training loop stopped" wait_until 10 grep -qE "run: $J rank [01] (stopped|done)" \
    "$T/worker-beta.log"
check "saturnd still serves" jq_ok 'length >= 1' "$SATURN" list --json
finish
