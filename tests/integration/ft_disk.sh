#!/usr/bin/env bash
# ft_disk.sh - a state dir that refuses writes: no client is told what a
# restart would contradict. With a job training and another queued, the
# store and the job's directory are made immutable (chattr +i, as root):
#   - CancelJob of the queued job fails with UNAVAILABLE, and the job stays
#     queued;
#   - health goes NOT_SERVING (gRPC health and /healthz);
#   - the training job pauses (its checkpoint cannot be written) instead of
#     training on with nothing saved.
# When the fault is removed: health is SERVING again, the job resumes and
# succeeds, the cancel works. Then the fault again, saturnd killed with
# SIGKILL while it lasts, the fault removed, saturnd restarted: every job is
# in the state clients were last told (no "cancelled" job comes back
# queued, no told-running job comes back ended).
#
# SQLite's shared-memory index (saturnd.db-shm) stays writable: it is
# mapped into memory, and a page of an immutable mapped file faults with
# SIGBUS on write (a kernel rule, not a disk error saturnd could answer).
. "$(dirname "$0")/ps_lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v chattr >/dev/null; then
    echo "SKIP: needs root and chattr (e2fsprogs) to make the state dir immutable"
    exit 77
fi
probe=$T/chattr-probe
touch "$probe"
if ! chattr +i "$probe" 2>/dev/null; then
    echo "SKIP: this file system does not support chattr +i"
    exit 77
fi
chattr -i "$probe"

STATE=$T/state
freeze() { find "$STATE" ! -name '*-shm' -exec chattr +i {} + 2>/dev/null; }
thaw() { [ -d "$STATE" ] && chattr -R -i "$STATE" 2>/dev/null; true; }
trap 'thaw; cleanup' EXIT

if [ "$SAN" = 1 ]; then
    LIMIT=1024 BATCH=32 WAIT_S=600
else
    LIMIT=4096 BATCH=64 WAIT_S=300
fi
start_saturnd "$STATE" --lease-ms 5000 --http 127.0.0.1:0 --http-port-file "$T/http-port"
HTTP=127.0.0.1:$(cat "$T/http-port")
start_workers 2 1
health() { "$RPC_PROBE" "$SATURN_ADDR" - health 2>&1; }
healthz() { curl -s -o /dev/null -w '%{http_code}' "http://$HTTP/healthz"; }
spec_file "$T/a.json" name=trains workers=2 train_limit=$LIMIT test_limit=500 epochs=3 \
    batch_size=$BATCH checkpoint_every=4
spec_file "$T/b.json" name=waits workers=2 train_limit=$LIMIT test_limit=500 epochs=1 \
    batch_size=$BATCH
A=$("$SATURN" submit "$T/a.json" --json | jq -r .job_id)
check "job A trains" wait_until 120 jq_ok '.state == "running" and .step >= 2' \
    "$SATURN" status "$A" --json
B=$("$SATURN" submit "$T/b.json" --json | jq -r .job_id)
check "job B is queued behind it" test "$(jf "$B" .state)" = queued
contains "health is SERVING" "$(health)" "SERVING"

# ---- the fault ----------------------------------------------------------------
freeze
expect_exit 5 "cancel of the queued job while the store refuses writes -> UNAVAILABLE (exit 5)" \
    "$SATURN" cancel "$B"
contains "  ... the message says nothing changed" "$ERR" "unchanged"
check "  ... and the job is still queued" test "$(jf "$B" .state)" = queued
check "health goes NOT_SERVING" wait_until 10 bash -c "\"$RPC_PROBE\" \"$SATURN_ADDR\" - health 2>&1 | grep -q NOT_SERVING"
check "/healthz answers 503" wait_until 10 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://$HTTP/healthz)\" = 503 ]"
# The next checkpoint (every 4 steps) cannot be written: training pauses.
S1=$(jf "$A" .step)
sleep 6
S2=$(jf "$A" .step)
sleep 3
S3=$(jf "$A" .step)
note "job A at steps $S1, $S2, $S3 while the state dir refuses writes"
check "job A pauses: no step is trained that could not be kept ($S2 = $S3, at most 4 past $S1)" \
    bash -c "[ $S2 = $S3 ] && [ $S3 -le $((S1 + 4)) ]"
check "job A is still running (not told failed)" test "$(jf "$A" .state)" = running

# ---- the fault is removed -----------------------------------------------------
thaw
check "health is SERVING again" wait_until 15 bash -c "\"$RPC_PROBE\" \"$SATURN_ADDR\" - health 2>&1 | grep -q 'OK: SERVING'"
check "/healthz answers 200" test "$(healthz)" = 200
check "job A resumes" wait_until 60 jq_ok ".step > $S3" "$SATURN" status "$A" --json
check "job A succeeds" wait_job "$A" $WAIT_S
check "  ... succeeded" test "$(jf "$A" .state)" = succeeded
"$SATURN" watch "$A" --json >"$T/a.events" 2>/dev/null
check "  ... its events say it paused and resumed" \
    bash -c "grep -q '\"kind\":\"resumed\"' '$T/a.events'"
expect_exit 0 "cancel of the queued job works now" "$SATURN" cancel "$B"
check "  ... cancelled" test "$(jf "$B" .state)" = cancelled

# ---- the fault again, with a crash: what clients were told holds ----------------
C=$("$SATURN" submit "$T/a.json" --json | jq -r .job_id)
check "job C trains" wait_until 120 jq_ok '.state == "running" and .step >= 2' \
    "$SATURN" status "$C" --json
D=$("$SATURN" submit "$T/b.json" --json | jq -r .job_id)
freeze
expect_exit 5 "cancel of job D during the fault -> UNAVAILABLE" "$SATURN" cancel "$D"
"$SATURN" list --json >"$T/told.json"
kill -KILL "$SATURND_PID"
wait "$SATURND_PID" 2>/dev/null
thaw
start_saturnd "$STATE" --lease-ms 5000
"$SATURN" list --json >"$T/after.json"
note "told: $(jq -c '[.[] | {id, state}]' "$T/told.json")"
note "after the restart: $(jq -c '[.[] | {id, state}]' "$T/after.json")"
check "every job told ended is still so ended, every job told active is not ended" \
    jq -e --slurpfile after "$T/after.json" '
        def ended: . == "succeeded" or . == "failed" or . == "cancelled";
        all(.[]; . as $t | ($after[0][] | select(.id == $t.id)) as $a |
            if ($t.state | ended) then $a.state == $t.state else ($a.state | ended | not) end)' \
    "$T/told.json"
check "saturnd serves after the restart" jq_ok 'length >= 4' "$SATURN" list --json
finish
