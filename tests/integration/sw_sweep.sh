#!/usr/bin/env bash
# sw_sweep.sh - `saturn sweep` against a real saturnd and 2 workers on
# 127.0.0.1: a 2x2 grid of small cnn-small jobs on Fashion-MNIST
# (train_limit, alpha_init calibrate), followed while saturnd is killed
# with SIGKILL and restarted on the same port; the table has one row per
# job, `sweep status` reprints it (text, JSON, Markdown), the dashboard's
# sweep page shows the jobs, `sweep cancel` stops a sweep's queued jobs,
# bad grids are refused before anything is submitted, and `saturn run
# --grid` does the same on a private saturnd.
. "$(dirname "$0")/ps_lib.sh"

if [ "$SAN" = 1 ]; then
    LIMIT=1024 TEST=128 BATCH=32
else
    LIMIT=2048 TEST=256 BATCH=32
fi
spec_file "$T/spec.json" name=sw workers=2 train_limit=$LIMIT test_limit=$TEST epochs=1 \
    batch_size=$BATCH checkpoint_every=8

http_up() { # sets HTTP (base URL) from the port file of the running saturnd
    wait_until 20 test -s "$T/state/http-port" && HTTP=http://127.0.0.1:$(cat "$T/state/http-port")
}
start_saturnd "$T/state" --lease-ms 2000 --http 127.0.0.1:0 --http-port-file "$T/state/http-port"
export LISTEN=127.0.0.1:$PORT # the restart reuses the port the workers know
http_up
start_workers 2 1

# ---- refused before anything is submitted
expect_exit 4 "an unknown grid field is refused" \
    "$SATURN" sweep "$T/spec.json" --grid nosuch=1,2
contains "  ... naming the field" "$ERR" 'unknown field "nosuch"'
expect_exit 4 "a bad grid value is refused" "$SATURN" sweep "$T/spec.json" --grid wbits=2,9
contains "  ... naming the value" "$ERR" '"wbits": 9 is out of range'
expect_exit 1 "a grid is required" "$SATURN" sweep "$T/spec.json"
expect_exit 1 "a sweep id is checked" "$SATURN" sweep status 'x/../y'
expect_exit 1 "--grid sweep is refused" "$SATURN" sweep "$T/spec.json" --grid sweep=a,b
check "nothing was submitted" jq_ok 'length == 0' "$SATURN" list --json
expect_exit 2 "an unknown sweep is not found" "$SATURN" sweep status sw-none

# ---- a 2x2 sweep, followed across a saturnd crash
# (Its exit status goes to a file: bash may have reaped it before `wait`.)
(
    "$SATURN" sweep "$T/spec.json" --grid wbits=2,4 --grid act_quant=pact,cgpact --json \
        --alpha_init calibrate >"$T/sweep.out" 2>"$T/sweep.err" &
    echo $! >"$T/sweep.pid"
    wait $!
    echo $? >"$T/sweep.rc"
) &
PIDS+=("$!")
wait_until 10 test -s "$T/sweep.pid"
FOLLOW=$(cat "$T/sweep.pid")
PIDS+=("$FOLLOW")
check "the sweep is submitted" wait_until 30 grep -q "4 jobs submitted" "$T/sweep.err"
SW=$(sed -n 's/^sweep \([A-Za-z0-9._-]*\): 4 jobs submitted.*/\1/p' "$T/sweep.err")
note "sweep $SW"
check "its id is an id" test -n "$SW"
check "ListJobs filtered by the sweep has its 4 jobs" \
    jq_ok '(.rows | length) == 4 and (.jobs | length) == 4' "$SATURN" sweep status "$SW" --json
check "a job of the sweep runs" wait_until 120 \
    jq_ok '.jobs | any(.state == "running" and .step >= 2)' "$SATURN" sweep status "$SW" --json
kill -KILL "$SATURND_PID"
wait "$SATURND_PID" 2>/dev/null
note "saturnd killed; restarting on port $PORT"
rm -f "$T/state/http-port"
start_saturnd "$T/state" --lease-ms 2000 --http 127.0.0.1:0 --http-port-file "$T/state/http-port"
http_up
check "the sweep's 4 jobs are back after the restart" \
    jq_ok '(.jobs | length) == 4' "$SATURN" sweep status "$SW" --json
WAIT=$((SAN == 1 ? 900 : 300))
check "the follower ends" wait_until $WAIT test -s "$T/sweep.rc"
RC=$(cat "$T/sweep.rc")
check "the follower exits 0 (every job succeeded) (exit $RC)" test "$RC" -eq 0
check "it saw saturnd go and come back" grep -q "saturnd is back" "$T/sweep.err"
check "its table has one row per job (4), each succeeded with a test accuracy" \
    jq -e '(.rows | length) == 4 and all(.rows[]; .states.succeeded == 1 and
           .test_acc_mean > 0.1 and .test_acc_n == 1 and .epochs == 1 and .images_per_s > 0)' \
    "$T/sweep.out"
check "its grid is wbits x act_quant" jq -e '.grid_fields == ["wbits", "act_quant"]' "$T/sweep.out"
check "the rows are the grid points, in --grid order" \
    jq -e '[.rows[].point] == ["wbits=2 act_quant=pact", "wbits=2 act_quant=cgpact",
           "wbits=4 act_quant=pact", "wbits=4 act_quant=cgpact"]' "$T/sweep.out"
check "a job was interrupted by the crash and resumed" bash -c \
    "for j in \$(jq -r '.jobs[].job_id' '$T/sweep.out'); do \"$SATURN\" status \$j --json; done |
     jq -s -e 'any(.[]; [.history[].reason] | any(test(\"coordinator restarted\")))'"

check "the parameter server calibrated the alphas of every job (alpha_init calibrate)" \
    test "$(grep -c 'alphas calibrated to the 99.9 percentile' "$T/saturnd.log")" -ge 4
J1=$(jq -r '.jobs[0].job_id' "$T/sweep.out")
check "  ... and they are not the fixed inits (8, 10)" jq_ok \
    '[.metrics.quant[] | select(.kind == "alpha") | .value] | length > 0 and
     all(.[]; . != 8 and . != 10)' "$SATURN" status "$J1" --json

# ---- a job's epochs (saturn status --per-epoch): one epoch, as the table has it
check "status --per-epoch --json: one epoch, its test accuracy, alphas and wvar" jq_ok \
    '(.per_epoch | length) == 1 and .per_epoch[0].epoch == 1 and
     .per_epoch[0].test_acc == .test_acc and
     ([.per_epoch[0].quant[] | select(.kind == "alpha")] | length) == 2 and
     ([.per_epoch[0].quant[] | select(.kind == "wvar" and .name == "fc")] | length) == 1' \
    "$SATURN" status "$J1" --json --per-epoch
check "status --json without --per-epoch has no per_epoch" jq_ok 'has("per_epoch") | not' \
    "$SATURN" status "$J1" --json
expect_exit 0 "status --per-epoch (text)" "$SATURN" status "$J1" --per-epoch
contains "  ... has the epochs table" "$OUT" "epochs:      EPOCH     LOSS"
expect_exit 1 "--per-epoch is for status only" "$SATURN" list --per-epoch

# ---- status reprints it
"$SATURN" sweep status "$SW" --json >"$T/status.json"
check "sweep status --json gives the same rows" \
    jq -e --slurpfile a "$T/sweep.out" '[.rows[] | [.point, .test_acc_mean]] ==
           [$a[0].rows[] | [.point, .test_acc_mean]]' "$T/status.json"
expect_exit 0 "sweep status (text)" "$SATURN" sweep status "$SW"
check "  ... a header and 4 rows" test "$(grep -c ' succeeded ' <<<"$OUT")" -eq 4
contains "  ... names the sweep" "$OUT" "sweep $SW: 4 jobs"
expect_exit 0 "sweep status --markdown" "$SATURN" sweep status "$SW" --markdown
check "  ... a Markdown table of 4 rows" test "$(grep -c '^|' <<<"$OUT")" -eq 6
contains "  ... its header" "$OUT" "| point | jobs | state | test accuracy |"

# ---- the dashboard's sweep page
if command -v curl >/dev/null; then
    VT=$(cat "$VIEWER_TOKEN_FILE")
    code=$(curl -s -m 10 -o "$T/page" -w '%{http_code}' -H "Authorization: Bearer $VT" \
        "$HTTP/sweeps/$SW")
    check "GET /sweeps/$SW is 200 ($code)" test "$code" = 200
    check "  ... a table row per job" test "$(grep -o '<tr><td><span' "$T/page" | wc -l)" -eq 4
    check "  ... a chart line per job" \
        test "$(grep -o 'class="series" id="sweep-chart-job-' "$T/page" | wc -l)" -eq 4
    code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VT" \
        "$HTTP/sweeps/sw-none")
    check "an unknown sweep's page is 404 ($code)" test "$code" = 404
    code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $VT" \
        "$HTTP/sweeps/%3Cscript%3E")
    check "a sweep id that is no id is 404 ($code)" test "$code" = 404
else
    note "curl not installed: the sweep page is not checked"
fi

# ---- cancel: a sweep whose jobs queue behind each other (each takes both workers)
"$SATURN" sweep "$T/spec.json" --grid lr=0.05,0.1,0.2 --detach --json >"$T/detach.json"
SW2=$(jq -r .sweep "$T/detach.json")
check "sweep --detach prints the id of 3 jobs" jq -e '.jobs == 3' "$T/detach.json"
expect_exit 0 "sweep cancel" "$SATURN" sweep cancel "$SW2"
check "every job of the cancelled sweep ended, its queued ones cancelled before they started" \
    wait_until 30 jq_ok 'all(.jobs[]; .state == "cancelled" or .state == "succeeded") and
        ([.jobs[] | select(.state == "cancelled" and .epoch == 0)] | length) >= 2' \
    "$SATURN" sweep status "$SW2" --json
expect_exit 0 "cancelling it again cancels nothing" "$SATURN" sweep cancel "$SW2"
contains "  ... and says so" "$OUT" "0 jobs cancelled"
check "the first sweep was not touched" \
    jq_ok 'all(.jobs[]; .state == "succeeded")' "$SATURN" sweep status "$SW" --json

# ---- saturn run --grid: the same on a private saturnd
spec_file "$T/small.json" name=run workers=1 train_limit=256 test_limit=64 epochs=1 batch_size=32
expect_exit 0 "saturn run --grid on a private saturnd" env TMPDIR="$T" "$SATURN" run \
    "$T/small.json" --grid wbits=2,4 --threads 1 --json
check "  ... its table has one row per job" \
    jq -e '(.rows | length) == 2 and all(.rows[]; .states.succeeded == 1)' <<<"$OUT"
finish
