#!/usr/bin/env bash
# ft_crash.sh - saturnd killed with SIGKILL at random points of a bsp job and
# restarted on the same state dir and port: the workers re-register by
# themselves, the job is re-queued and resumes from its last checkpoint, and
# it ends with the param_digest of an uninterrupted run of the same spec.
. "$(dirname "$0")/ps_lib.sh"

LEASE_MS=2000
ft_sizes
spec_file "$T/spec.json" name=crash workers=2 train_limit=$LIMIT test_limit=$TEST \
    epochs=$EPOCHS batch_size=$BATCH checkpoint_every=8

# The reference, uninterrupted, on a daemon of its own.
start_saturnd "$T/ref" --lease-ms $LEASE_MS
start_workers 2 1
J=$("$SATURN" submit "$T/spec.json" --json | jq -r .job_id)
check "the reference job ends" wait_job "$J" $WAIT_S
REF=$(jf "$J" .param_digest)
check "the reference job succeeded" test "$(jf "$J" .state)" = succeeded
note "reference digest $REF ($TOTAL steps)"
for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
wait 2>/dev/null
PIDS=()

# The same spec, with saturnd killed twice at random steps.
start_saturnd "$T/state" --lease-ms $LEASE_MS
export LISTEN=127.0.0.1:$PORT # restarts reuse the port the workers know
start_workers 2 1
J=$("$SATURN" submit "$T/spec.json" --json | jq -r .job_id)
for trial in 1 2; do
    k=$((trial * TOTAL / 4 + RANDOM % (TOTAL / 4)))
    note "crash $trial: at step >= $k"
    check "crash $trial: the job reaches step $k" wait_until 180 \
        jq_ok ".step >= $k and .state == \"running\"" "$SATURN" status "$J" --json
    kill -KILL "$SATURND_PID"
    wait "$SATURND_PID" 2>/dev/null
    start_saturnd "$T/state" --lease-ms $LEASE_MS
    check "crash $trial: the restarted saturnd re-queued the job" \
        jq_ok '[.history[].reason] | any(test("coordinator restarted"))' \
        "$SATURN" status "$J" --json
    check "crash $trial: the workers come back and the job runs again (attempt $((trial + 1)))" \
        wait_until 60 jq_ok ".attempt == $((trial + 1)) and .state == \"running\"" \
        "$SATURN" status "$J" --json
done
check "the job ends" wait_job "$J" $WAIT_S
DIG=$(jf "$J" .param_digest)
check "the job succeeded" test "$(jf "$J" .state)" = succeeded
check "its digest is the uninterrupted run's ($DIG = $REF)" test "$DIG" = "$REF"
"$SATURN" watch "$J" --json >"$T/events" 2>/dev/null
check "it resumed from a checkpoint" grep -q '"kind":"checkpoint"' "$T/events"
finish
