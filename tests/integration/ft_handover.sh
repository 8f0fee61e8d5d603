#!/usr/bin/env bash
# ft_handover.sh - a lost worker never fails a job. One bsp spec (cnn-small
# W4A4, 2 workers) trains uninterrupted first; its param_digest is the
# reference. Then, each time at a random step (bounded trials):
#   spare:   3 workers, one of the job's two is killed with SIGKILL; the
#            idle one takes its rank;
#   late:    2 workers, one is killed; the replacement starts only after
#            the kill (the job shows `recovering` meanwhile);
#   drain:   `saturn workers drain ID` on one of the job's workers: it
#            finishes its step, leaves (exit 0) and a spare takes over;
#   sigterm: SIGTERM to one of the job's workers (what Kubernetes sends),
#            with the replacement started after it.
# Every one succeeds with the reference digest, and its history shows the
# hand-over (running -> recovering -> running) and a "handover" event.
# Last, a job whose lost worker never comes back is re-queued from its
# checkpoint after recover_timeout_s, and fails only after its attempts.
. "$(dirname "$0")/ps_lib.sh"

LEASE_MS=2000
ft_sizes
start_saturnd "$T/state" --lease-ms $LEASE_MS
spec_file "$T/spec.json" name=handover workers=2 train_limit=$LIMIT test_limit=$TEST \
    epochs=$EPOCHS batch_size=$BATCH

NEXT=0 # the next worker name is "w$NEXT"
spawn() { # [NAME]: starts one more worker
    local name=${1:-w$NEXT}
    NEXT=$((NEXT + 1))
    "$SATURN_WORKER" --name "$name" --threads 1 --log-level info --token-file "$WORKER_TOKEN_FILE" \
        >>"$T/worker-$name.log" 2>&1 &
    WORKER_PID[$name]=$!
    PIDS+=("$!")
}
live() { nworkers_in idle; }
# busy_name JOB: the name of a worker that holds a rank of JOB (rank 0 or 1, at random)
busy_name() {
    "$SATURN" workers --json |
        jq -r --arg j "$1" --argjson r $((RANDOM % 2)) \
            '[.[] | select(.job_id == $j)] | (map(select(.rank == $r)) + .)[0].name'
}
submit() { "$SATURN" submit "$T/spec.json" --json | jq -r .job_id; }
# at_random_step JOB [PART]: waits until the job has trained a random
# number of steps in its first 1/PART (default 2)
at_random_step() {
    local k=$((2 + RANDOM % (TOTAL / ${2:-2} - 2)))
    note "$1: interrupting at step >= $k of $TOTAL"
    wait_until 120 jq_ok ".step >= $k" "$SATURN" status "$1" --json
}
# settled JOB WHAT: the job succeeded with the reference digest and its
# history shows the hand-over.
settled() {
    local j=$1 what=$2
    check "$what: the job ends" wait_job "$j" $WAIT_S
    "$SATURN" status "$j" --json >"$T/$j.json"
    check "$what: the job succeeded" jq -e '.state == "succeeded"' "$T/$j.json"
    local dig
    dig=$(jq -r .param_digest "$T/$j.json")
    check "$what: the digest is the uninterrupted run's ($dig = $REF)" test "$dig" = "$REF"
    check "$what: the history shows running -> recovering -> running" \
        jq -e '[.history[].state] | index("recovering") as $i |
               $i != null and .[$i + 1] == "running"' "$T/$j.json"
    "$SATURN" watch "$j" --json >"$T/$j.events" 2>/dev/null
    check "$what: a handover event names the new worker" \
        grep -q '"kind":"handover"' "$T/$j.events"
}
# begin WHAT N [PART]: a pool of N workers, the spec submitted (J), trained
# to a random step in its first 1/PART, and V the name of one of its two
# workers.
begin() {
    local what=$1 n=$2 i
    for ((i = 0; i < n; i++)); do spawn; done
    check "$what: $n workers" wait_until 20 jq_ok "length == $n" "$SATURN" workers --json
    J=$(submit)
    at_random_step "$J" "${3:-2}"
    V=$(busy_name "$J")
    check "$what: a worker holds a rank of $J ($V)" test -n "$V" -a "$V" != null
}
clear_pool() { # kills every worker, waits until saturnd lists none live
    local n
    for n in "${!WORKER_PID[@]}"; do kill -KILL "${WORKER_PID[$n]}" 2>/dev/null; done
    WORKER_PID=()
    wait_until 15 jq_ok 'length == 0' "$SATURN" workers --json
}

# ---- the reference ----------------------------------------------------------
spawn
spawn
check "2 workers registered" wait_until 20 jq_ok 'length == 2' "$SATURN" workers --json
J=$(submit)
check "reference job ends" wait_job "$J" $WAIT_S
REF=$(jf "$J" .param_digest)
check "reference job succeeded" test "$(jf "$J" .state)" = succeeded
note "reference digest $REF ($TOTAL steps)"
clear_pool

# ---- spare: SIGKILL, an idle worker takes the rank ----------------------------
begin spare 3
kill -KILL "${WORKER_PID[$V]}"
unset "WORKER_PID[$V]"
check "spare: the job is running again on the spare" wait_until 30 \
    jq_ok '.state == "running" and ([.history[].state] | index("recovering") != null)' \
    "$SATURN" status "$J" --json
settled "$J" spare
clear_pool

# ---- late: the replacement starts after the kill ------------------------------
begin late 2
kill -KILL "${WORKER_PID[$V]}"
unset "WORKER_PID[$V]"
check "late: the job is recovering (not failed)" wait_until $((LEASE_MS / 1000 + 10)) \
    jq_ok '.state == "recovering"' "$SATURN" status "$J" --json
contains "late: the reason names the lost worker and the step" "$(jf "$J" .reason)" "lost at step"
spawn
settled "$J" late
clear_pool

# ---- drain: saturn workers drain ---------------------------------------------
begin drain 3 4 # early: the drain must reach the worker before the job ends
VID=$("$SATURN" workers --json | jq -r --arg n "$V" '.[] | select(.name == $n) | .id')
expect_exit 0 "drain: saturn workers drain $VID" "$SATURN" workers drain "$VID" --reason test
contains "drain: the CLI says it leaves after its step" "$OUT" "draining"
if wait_until 30 bash -c "! kill -0 ${WORKER_PID[$V]} 2>/dev/null"; then
    pass "drain: the drained worker process exits by itself"
    wait "${WORKER_PID[$V]}" 2>/dev/null
    DRAIN_RC=$?
    check "drain: ... with status 0 ($DRAIN_RC)" test "$DRAIN_RC" = 0
    unset "WORKER_PID[$V]"
else
    fail "drain: the drained worker process is still running"
fi
check "drain: it is listed as gone, drained" jq_ok \
    ".[] | select(.id == \"$VID\") | .state == \"gone\" and (.reason | test(\"drained\"))" \
    "$SATURN" workers --all --json
settled "$J" drain
clear_pool

# ---- sigterm: what Kubernetes sends -----------------------------------------
begin sigterm 2
kill -TERM "${WORKER_PID[$V]}"
check "sigterm: the worker leaves" wait_until 30 bash -c "! kill -0 ${WORKER_PID[$V]} 2>/dev/null"
unset "WORKER_PID[$V]"
check "sigterm: the job waits for a worker (recovering, not failed)" wait_until 10 \
    jq_ok '.state == "recovering"' "$SATURN" status "$J" --json
spawn
settled "$J" sigterm
clear_pool

# ---- nobody comes back: re-queued, failed after its attempts ------------------
spec_file "$T/lost.json" name=abandoned workers=2 train_limit=$LIMIT test_limit=$TEST \
    epochs=20 batch_size=$BATCH recover_timeout_s=2
spawn
spawn
check "requeue: 2 workers" wait_until 20 jq_ok 'length == 2' "$SATURN" workers --json
J=$("$SATURN" submit "$T/lost.json" --json | jq -r .job_id)
for attempt in 1 2 3; do
    check "requeue: attempt $attempt trains" wait_until 120 \
        jq_ok ".attempt == $attempt and .state == \"running\" and .step >= 1" \
        "$SATURN" status "$J" --json
    V=$(busy_name "$J")
    kill -KILL "${WORKER_PID[$V]}"
    unset "WORKER_PID[$V]"
    if [ $attempt -lt 3 ]; then
        check "requeue: attempt $attempt is re-queued after recover_timeout_s" \
            wait_until $((LEASE_MS / 1000 + 15)) jq_ok '.state == "queued"' \
            "$SATURN" status "$J" --json
        check "requeue: the history says why" jq_ok \
            '[.history[] | select(.state == "queued") | .reason] | any(test("no worker took rank"))' \
            "$SATURN" status "$J" --json
        spawn
    fi
done
check "requeue: the job fails after its attempts" wait_until $((LEASE_MS / 1000 + 15)) \
    jq_ok '.state == "failed"' "$SATURN" status "$J" --json
contains "requeue: the reason counts the attempts" "$(jf "$J" .reason)" "after 3 attempts"
check "saturnd still serves" jq_ok 'length >= 1' "$SATURN" list --json
finish
