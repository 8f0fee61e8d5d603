#!/usr/bin/env bash
# cp_lease.sh - a worker killed with SIGKILL is marked lost within its lease
# (plus one lease-timer tick); the job it ran waits for another worker
# (recovering, with a reason naming the lost one) while its peer stays with
# it; a worker stopped with SIGTERM leaves at once. (The hand-over itself is
# ft_handover's.)
. "$(dirname "$0")/lib.sh"

LEASE_MS=2000
start_saturnd "$T/state" --lease-ms $LEASE_MS
start_worker alpha
start_worker beta
check "2 workers registered" \
    wait_until 15 jq_ok 'length == 2 and all(.[]; .state == "idle")' "$SATURN" workers --json
expect_exit 0 "submit a 2-worker job" "$SATURN" submit --model mlp --dataset synthetic --workers 2 \
    --epochs 10000
check "the job runs on both workers" \
    wait_until 10 jq_ok '[.[] | select(.state == "busy")] | length == 2' "$SATURN" workers --json

VICTIM_ID=$("$SATURN" workers --json | jq -r '.[] | select(.name == "alpha") | .id')
kill -KILL "${WORKER_PID[alpha]}"
KILLED_AT=$(date +%s%3N)
check "the killed worker is marked lost" \
    wait_until 15 jq_ok ".[] | select(.id == \"$VICTIM_ID\") | .state == \"lost\"" \
    "$SATURN" workers --all --json
LOST_AFTER=$(($(date +%s%3N) - KILLED_AT))
note "worker lost after ${LOST_AFTER} ms (lease ${LEASE_MS} ms)"
# Lost at lease + timer tick (lease/10) after the last heartbeat, which was
# at most 1 s before the kill; allow 1.5 s for polling and a loaded machine.
check "lost within the lease time (${LOST_AFTER} ms <= lease + 1500 ms)" \
    test "$LOST_AFTER" -le $((LEASE_MS + 1500))
check "the lost worker's reason gives the silence and the lease" \
    jq_ok ".[] | select(.id == \"$VICTIM_ID\") | .reason | test(\"no heartbeat for [0-9]+ ms \\\\(lease $LEASE_MS ms\\\\)\")" \
    "$SATURN" workers --all --json
check "a lost worker is hidden without --all" \
    jq_ok "[.[] | select(.id == \"$VICTIM_ID\")] | length == 0" "$SATURN" workers --json
check "its job waits for a worker (recovering), the reason naming the lost one" \
    jq_ok ".state == \"recovering\" and (.reason | contains(\"worker $VICTIM_ID (alpha) lost\"))" \
    "$SATURN" status job-1 --json
check "the other worker stays with the job" \
    jq_ok '.[] | select(.name == "beta") | .state == "busy"' "$SATURN" workers --json
expect_exit 0 "cancel the recovering job" "$SATURN" cancel job-1
check "the other worker is idle again" \
    wait_until 5 jq_ok '.[] | select(.name == "beta") | .state == "idle"' "$SATURN" workers --json
expect_exit 9 "watch of the cancelled job replays it and exits 9" "$SATURN" watch job-1 --json
contains "the events include worker_lost" "$OUT" '"kind":"worker_lost"'

# A worker that stops cleanly says goodbye: gone at once, no lease wait.
BETA_ID=$("$SATURN" workers --json | jq -r '.[] | select(.name == "beta") | .id')
kill -TERM "${WORKER_PID[beta]}"
check "SIGTERM: the worker exits" wait_until 10 bash -c "! kill -0 ${WORKER_PID[beta]}"
wait "${WORKER_PID[beta]}"
check "the worker's exit status is 0" test $? -eq 0
check "the departed worker is listed as gone" \
    wait_until 2 jq_ok ".[] | select(.id == \"$BETA_ID\") | .state == \"gone\"" \
    "$SATURN" workers --all --json
finish
