#!/usr/bin/env bash
# cp_restart.sh - saturnd killed with SIGKILL and restarted on the same state
# dir still lists every job with its history and events; a job that was
# running is re-queued ("coordinator restarted") and, once the workers have
# re-registered by themselves, runs again as attempt 2; after 3 starts it is
# failed instead. A second saturnd cannot open a state dir in use.
. "$(dirname "$0")/lib.sh"

STATE=$T/state
# The restart hold is one lease: workers must re-register within it, or a
# 1-worker job may start before the 2-worker one. Under the sanitizers a
# worker stopping its training loop and re-registering takes longer; so it
# does on a loaded 2-core machine (once seen: a worker's heartbeat came
# more than 2 s after the restart), hence 4 s in the normal build.
LEASE=4000
[ "${SATURN_SANITIZED:-0}" = 1 ] && LEASE=5000
start_saturnd "$STATE" --lease-ms $LEASE
start_worker r1
start_worker r2
check "2 workers registered" \
    wait_until 15 jq_ok 'length == 2' "$SATURN" workers --json
expect_exit 0 "submit job 1 (2 workers)" "$SATURN" submit --model mlp --dataset synthetic --workers 2 \
    --epochs 10000
check "job 1 running, acknowledged by both workers" \
    wait_until 10 jq_ok '[.[] | select(.state == "busy")] | length == 2' "$SATURN" workers --json
expect_exit 0 "submit job 2 (queued behind job 1)" "$SATURN" submit --model mlp \
    --dataset synthetic --workers 1 --epochs 10000
expect_exit 0 "submit job 3" "$SATURN" submit --model cnn-small --dataset synthetic --workers 1 \
    --name doomed
expect_exit 0 "cancel job 3" "$SATURN" cancel job-3 --reason "before the crash"
"$SATURN" list --json | jq -c 'map({id, state})' >"$T/before.json"
"$SATURN" status job-3 --json | jq -c .history >"$T/hist3.json"

expect_exit 1 "a second saturnd on the same state dir is refused" \
    "$SATURND" --state-dir "$STATE" --listen 127.0.0.1:0
contains "it says the state dir is in use" "$ERR" "in use by another saturnd"

# Crash and restart on the same port, so the workers find it again.
kill -KILL "$SATURND_PID"
wait "$SATURND_PID" 2>/dev/null
note "saturnd killed with SIGKILL"
LISTEN=127.0.0.1:$PORT start_saturnd "$STATE" --lease-ms $LEASE

check "every job is still listed" jq_ok 'length == 3' "$SATURN" list --json
check "job 3 is still cancelled with its reason" \
    jq_ok '.state == "cancelled" and (.reason | contains("before the crash"))' \
    "$SATURN" status job-3 --json
check "job 3's history is unchanged" \
    test "$("$SATURN" status job-3 --json | jq -c .history)" = "$(cat "$T/hist3.json")"
check "job 1 was re-queued with the reason" \
    jq_ok '[.history[].reason] | any(contains("coordinator restarted while the job was running (attempt 1); re-queued"))' \
    "$SATURN" status job-1 --json
check "the workers re-register by themselves" \
    wait_until 20 jq_ok 'length == 2 and all(.[]; .state != "lost")' "$SATURN" workers --json
check "job 1 runs again as attempt 2 on the new registrations" \
    wait_until 15 jq_ok '.state == "running" and .attempt == 2 and (.worker_ids | length) == 2' \
    "$SATURN" status job-1 --json
check "job 1's history: queued, running, queued, running" \
    jq_ok '[.history[].state] == ["queued","running","queued","running"]' \
    "$SATURN" status job-1 --json
expect_exit 9 "events from before the crash are replayed by watch" \
    "$SATURN" watch job-3 --json
contains "the replay includes the submission" "$OUT" '"kind":"submitted"'
contains "the replay includes the cancellation" "$OUT" 'before the crash'

# Two more crashes: attempt 3, then the job is failed rather than looping.
for attempt in 3 4; do
    kill -KILL "$SATURND_PID"
    wait "$SATURND_PID" 2>/dev/null
    LISTEN=127.0.0.1:$PORT start_saturnd "$STATE" --lease-ms $LEASE
    if [ $attempt = 3 ]; then
        check "after the second crash job 1 runs as attempt 3" \
            wait_until 20 jq_ok '.state == "running" and .attempt == 3' "$SATURN" status job-1 --json
    fi
done
check "after the third crash job 1 fails instead of looping" \
    jq_ok '.state == "failed" and (.reason | contains("failed after 3 attempts"))' \
    "$SATURN" status job-1 --json
check "job 2 then gets a worker" \
    wait_until 20 jq_ok '.state == "running"' "$SATURN" status job-2 --json
check "the database is a WAL database" \
    test "$(sqlite3 "$STATE/saturnd.db" 'PRAGMA journal_mode;' 2>/dev/null || echo wal)" = wal
finish
