#!/usr/bin/env bash
# cp_jobs.sh - workers register; jobs are gang-scheduled in priority then
# submission order; status --json, list and watch show it; cancel frees the
# workers for the next job; a job bigger than the pool waits visibly; SIGTERM
# stops saturnd cleanly.
. "$(dirname "$0")/lib.sh"

# Jobs train now (issue 4): --epochs 10000 keeps them running for the
# whole test; batch sizes are divisible by the gang size.

start_saturnd "$T/state" --lease-ms 3000
for n in a b c; do start_worker "w$n"; done

check "3 workers register and appear in saturn workers --json" \
    wait_until 15 jq_ok 'length == 3 and all(.[]; .state == "idle")' "$SATURN" workers --json
check "worker names are listed" \
    jq_ok '[.[].name] | sort == ["wa","wb","wc"]' "$SATURN" workers --json

# Job 1 needs 2 of the 3 workers: it runs at once.
expect_exit 0 "submit job 1 (2 workers)" "$SATURN" submit --model cnn-small --dataset synthetic \
    --workers 2 --name first --epochs 10000 --json
J1=$(echo "$OUT" | jq -r .job_id)
check "submit --json returns a job id" test "$J1" = job-1
check "job 1 running on exactly 2 workers (status --json)" \
    wait_until 10 jq_ok '.state == "running" and (.worker_ids | length) == 2' \
    "$SATURN" status "$J1" --json
check "both of job 1's workers acknowledge (busy)" \
    wait_until 10 jq_ok '[.[] | select(.job_id == "job-1" and .state == "busy")] | length == 2' \
    "$SATURN" workers --json

# A watch started now replays the history and follows live events.
"$SATURN" watch "$J1" >"$T/watch1.txt" 2>&1 &
WATCH1=$!
PIDS+=("$WATCH1")

# Job 2 also needs 2 workers: only 1 is free, so it waits.
expect_exit 0 "submit job 2 (2 workers)" "$SATURN" submit --model mlp --dataset synthetic \
    --workers 2 --name second --epochs 10000
contains "submit prints the id and state" "$OUT" "job-2 queued"
check "job 2 stays queued while job 1 holds the workers" \
    jq_ok '.state == "queued" and (.reason | contains("needs 2 workers, 1 free"))' \
    "$SATURN" status job-2 --json

# A job larger than the whole pool waits visibly and blocks nobody.
expect_exit 0 "submit a 5-worker job" "$SATURN" submit --model mlp --dataset synthetic \
    --workers 5 --batch_size 125 --priority 100
check "the 5-worker job says it needs more workers than exist" \
    jq_ok '.state == "queued" and (.reason | contains("only 3 registered"))' \
    "$SATURN" status job-3 --json
# Job 4 (priority 10, 1 worker) jumps ahead of job 2 and fits the free worker.
expect_exit 0 "submit job 4 (1 worker, priority 10)" "$SATURN" submit --model mlp \
    --dataset synthetic --workers 1 --priority 10 --epochs 10000
check "job 4 starts on the free worker before job 2 (priority order)" \
    wait_until 10 jq_ok '.state == "running"' "$SATURN" status job-4 --json
check "job 2 now waits for 2 workers with none free" \
    jq_ok '.state == "queued" and (.reason | contains("needs 2 workers, 0 free"))' \
    "$SATURN" status job-2 --json

expect_exit 0 "list --json" "$SATURN" list --json
check "list shows 4 jobs newest first" \
    test "$(echo "$OUT" | jq -c '[.[].id]')" = '["job-4","job-3","job-2","job-1"]'
expect_exit 0 "list --state queued" "$SATURN" list --state queued --json
check "the queued filter returns jobs 3 and 2" \
    test "$(echo "$OUT" | jq -c '[.[].id]')" = '["job-3","job-2"]'

# Cancel job 1: its workers are freed and job 2 takes them.
expect_exit 0 "cancel job 1" "$SATURN" cancel "$J1" --reason "integration test"
contains "cancel reports the new state" "$OUT" "job-1 cancelled"
check "job 1 is cancelled with the reason" \
    jq_ok '.state == "cancelled" and (.reason | contains("integration test")) and .end_time_ms > 0' \
    "$SATURN" status "$J1" --json
check "job 2 starts on the freed workers" \
    wait_until 10 jq_ok '.state == "running" and (.worker_ids | length) == 2' \
    "$SATURN" status job-2 --json
check "all 3 workers are busy (job 2 x2, job 4 x1)" \
    wait_until 10 jq_ok '[.[] | select(.state == "busy")] | length == 3' "$SATURN" workers --json
expect_exit 0 "cancelling a cancelled job is a no-op" "$SATURN" cancel "$J1"

# The watch of job 1 ended by itself (exit 9: cancelled) with every event.
check "watch of job 1 ends when the job is cancelled" wait_until 10 bash -c "! kill -0 $WATCH1"
wait "$WATCH1"
WRC=$?
check "watch exits 9 for a cancelled job" test "$WRC" -eq 9
W=$(cat "$T/watch1.txt")
contains "watch shows the submission" "$W" "submitted"
contains "watch shows the scheduling" "$W" "scheduled on 2 workers"
contains "watch shows the acknowledgements" "$W" "acknowledged rank 1 of 2"
contains "watch shows the cancellation" "$W" "cancelled: integration test"

expect_exit 9 "watch --json of a cancelled job replays its events and ends (exit 9)" \
    "$SATURN" watch "$J1" --json --after 0
check "the replay is JSON lines ending in the cancelled state" \
    test "$(echo "$OUT" | tail -n 1 | jq -r .state)" = cancelled
expect_exit 0 "status of job 1 (text)" "$SATURN" status "$J1"
contains "status text shows the history" "$OUT" "history:"

# History of job 2: queued -> running, with reasons.
check "status --json carries the state history" \
    jq_ok '[.history[].state] == ["queued","running"]' "$SATURN" status job-2 --json

# SIGTERM: saturnd stops cleanly and says so.
kill -TERM "$SATURND_PID"
check "saturnd exits after SIGTERM" wait_until 10 bash -c "! kill -0 $SATURND_PID"
wait "$SATURND_PID"
check "saturnd's exit status is 0" test $? -eq 0
check "saturnd closed the database" grep -q "database closed" "$T/saturnd.log"
check "saturnd stopped cleanly" grep -q "stopped cleanly" "$T/saturnd.log"
finish
