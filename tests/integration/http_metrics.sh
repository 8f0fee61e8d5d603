#!/usr/bin/env bash
# http_metrics.sh - saturnd --http: /metrics in Prometheus' text format
# (checked by promtool, while a job trains and after it ended), /healthz,
# the refusals (405, 404, 413, 431), and a daemon that keeps serving HTTP
# and gRPC after garbage, an oversized head and a burst of idle
# connections.
. "$(dirname "$0")/http_lib.sh"

if ! command -v promtool >/dev/null; then
    echo "SKIP: promtool is not installed (Debian package prometheus)"
    exit 77
fi

start_http_saturnd
start_workers 2 1

# (Label values may hold spaces: a sample's value is its last field.)
# metric FILE SERIES: the value of one sample (exact name{labels}), or "".
metric() { awk -v s="$2" 'substr($0, 1, length(s) + 1) == s " " { print $NF }' "$1"; }
# metric_prefix FILE PREFIX: the value of the sample that starts with PREFIX.
metric_prefix() { awk -v s="$2" 'index($0, s) == 1 { print $NF }' "$1"; }
# metric_sum FILE NAME: the sum of every sample of a family (no suffixes).
metric_sum() {
    awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { print s + 0 }' "$1"
}
# jqn EXPR: true when the jq expression (no input) is true.
jqn() { jq -n -e "$1" >/dev/null 2>&1; }
# scrape FILE: GET /metrics into FILE; true on 200.
scrape() { test "$(http_get /metrics)" = 200 && cp "$T/body" "$1"; }
# running_scrape FILE: a scrape taken while job $J runs and has applied steps.
running_scrape() {
    scrape "$1" &&
        grep -q "^saturn_job_info{job=\"$J\",.*state=\"running\"} 1" "$1" &&
        [ "$(metric_prefix "$1" "saturn_ps_steps_applied_total{job=\"$J\",")" -gt 0 ] 2>/dev/null
}

# ---- plain endpoints
check "GET /healthz -> 200" test "$(http_get /healthz)" = 200
check "  ... body \"ok\"" test "$(cat "$T/body")" = ok
check "GET /metrics -> 200" test "$(http_get /metrics)" = 200
check "  ... Content-Type text/plain; version=0.0.4" \
    grep -qi '^content-type: text/plain; version=0.0.4; charset=utf-8' "$T/head"
cp "$T/body" "$T/m0.txt"
check "promtool check metrics accepts an idle daemon's page" \
    bash -c "promtool check metrics <'$T/m0.txt' >'$T/promtool0.out' 2>&1"
check "  ... every state of saturn_jobs is there (0 jobs)" \
    test "$(grep -c '^saturn_jobs{state="\(queued\|running\|succeeded\|failed\|cancelled\)"} 0$' \
        "$T/m0.txt")" = 5
check "  ... every state of saturn_workers is there" \
    test "$(grep -c '^saturn_workers{state="\(idle\|assigned\|busy\|lost\|gone\)"}' \
        "$T/m0.txt")" = 5
check "  ... saturn_build_info{version} 1" \
    grep -q '^saturn_build_info{version="[^"]*"} 1$' "$T/m0.txt"
check "HEAD /metrics -> 200, no body" test "$(http_get /metrics -I)" = 200
check "  ... and no body (only the head)" bash -c "! grep -q '^# HELP' '$T/body'"
check "POST /metrics -> 405" test "$(http_get /metrics -X POST -d x=1)" = 405
check "  ... with Allow: GET, HEAD" grep -qi '^allow: GET, HEAD' "$T/head"
check "DELETE / -> 405" test "$(http_get / -X DELETE)" = 405
check "GET /nope -> 404" test "$(http_get /nope)" = 404
check "GET /jobs/job-999 -> 404" test "$(http_get /jobs/job-999)" = 404
check "GET /jobs/job-999/loss.svg -> 404" test "$(http_get /jobs/job-999/loss.svg)" = 404
check "GET with a body -> 413" test "$(http_get /healthz -X GET --data-binary hello)" = 413

# ---- a job: the series while it trains
# A name with every character the label format escapes.
submit_short_job 'it "metrics" \ job'
J1=$J
note "job $J1 submitted"
check "while $J1 trains, /metrics shows it running with steps applied" \
    wait_until 240 running_scrape "$T/m1.txt"
check "  ... promtool check metrics accepts it" \
    bash -c "promtool check metrics <'$T/m1.txt' >'$T/promtool1.out' 2>&1"
check "  ... the job name's quote and backslash are escaped" \
    grep -qF "saturn_ps_steps_applied_total{job=\"$J1\",name=\"it \\\"metrics\\\" \\\\ job\"}" \
    "$T/m1.txt"
check "  ... pulls were answered (histogram count > 0)" \
    test "$(metric "$T/m1.txt" saturn_ps_pull_duration_seconds_count)" -gt 0
check "  ... a per-layer PACT alpha series (W4A4)" \
    grep -qE "^saturn_job_pact_alpha\{job=\"$J1\",layer=\"[^\"]+\"\} [0-9]" "$T/m1.txt"

# A second job that cannot start (more workers than there are), cancelled.
submit_short_job it-never-runs workers=4
J2=$J
expect_exit 0 "cancel $J2 (queued)" "$SATURN" cancel "$J2"

check "$J1 ends within 600 s" wait_job "$J1" 600
check "$J1 succeeded" test "$(job_state "$J1")" = succeeded
STEPS=$(jf "$J1" .step)
check "scrape after the end" scrape "$T/m2.txt"
check "  ... promtool check metrics accepts it" \
    bash -c "promtool check metrics <'$T/m2.txt' >'$T/promtool2.out' 2>&1"
check "  ... saturn_jobs sums to the 2 jobs submitted" \
    test "$(metric_sum "$T/m2.txt" saturn_jobs)" = 2
check "  ... one succeeded, one cancelled, none running" \
    test "$(metric "$T/m2.txt" 'saturn_jobs{state="succeeded"}')" = 1 -a \
    "$(metric "$T/m2.txt" 'saturn_jobs{state="cancelled"}')" = 1 -a \
    "$(metric "$T/m2.txt" 'saturn_jobs{state="running"}')" = 0
check "  ... 2 idle workers" test "$(metric "$T/m2.txt" 'saturn_workers{state="idle"}')" = 2
check "  ... steps_applied = status step ($STEPS) > 0" \
    test "$(metric_prefix "$T/m2.txt" "saturn_ps_steps_applied_total{job=\"$J1\",")" = "$STEPS" \
    -a "$STEPS" -gt 0
check "  ... saturn_job_step = $STEPS" \
    test "$(metric "$T/m2.txt" "saturn_job_step{job=\"$J1\"}")" = "$STEPS"
check "  ... epoch = epochs" test "$(metric "$T/m2.txt" "saturn_job_epoch{job=\"$J1\"}")" = \
    "$(metric "$T/m2.txt" "saturn_job_epochs{job=\"$J1\"}")"
check "  ... skipped steps 0" \
    test "$(metric "$T/m2.txt" "saturn_job_skipped_steps_total{job=\"$J1\"}")" = 0
TACC=$(metric "$T/m2.txt" "saturn_job_test_accuracy{job=\"$J1\"}")
check "  ... test accuracy $TACC in (0, 1] and = status' ($(jf "$J1" .test_acc))" \
    jqn "$TACC > 0 and $TACC <= 1 and ($TACC - $(jf "$J1" .test_acc) | fabs) < 1e-6"
check "  ... loss, train accuracy, images/s, learning rate are there" \
    jqn "$(metric "$T/m2.txt" "saturn_job_loss{job=\"$J1\"}") > 0 and
        $(metric "$T/m2.txt" "saturn_job_train_accuracy{job=\"$J1\"}") > 0 and
        $(metric "$T/m2.txt" "saturn_job_images_per_second{job=\"$J1\"}") > 0 and
        $(metric "$T/m2.txt" "saturn_job_learning_rate{job=\"$J1\"}") >= 0"
check "  ... PACT alphas (>= 2 layers) and a SAT scale, all > 0" \
    test "$(grep -cE "^saturn_job_pact_alpha\{job=\"$J1\",layer=\"[^\"]+\"\} [0-9.e+-]+$" \
        "$T/m2.txt")" -ge 2 -a \
    "$(awk -v s="saturn_job_sat_scale{job=\"$J1\"," 'index($0, s) == 1 && $NF > 0' "$T/m2.txt" |
        wc -l)" -ge 1
check "  ... the cancelled job that never trained has no per-job series" \
    bash -c "! grep -q 'job=\"$J2\"' '$T/m2.txt'"
for dir in pull push; do
    F=saturn_ps_${dir}_duration_seconds
    check "  ... saturn_ps_${dir}_bytes_total > 0" \
        test "$(metric "$T/m2.txt" "saturn_ps_${dir}_bytes_total")" -gt 0
    check "  ... $F: count > 0, +Inf bucket = count, buckets cumulative, sum > 0" \
        awk -v f="$F" '
            index($1, f "_bucket{") == 1 { if ($NF < prev) bad = 1; prev = $NF; last = $NF; nb++ }
            $1 == f "_count" { count = $NF }
            $1 == f "_sum" { sum = $NF }
            END { exit !(nb == 15 && !bad && count > 0 && last == count && sum > 0) }' "$T/m2.txt"
done
# bsp: every rank pushes every shard once per step, and cnn-small is one shard.
check "  ... pushes counted: at least 2 per step ($STEPS steps)" \
    test "$(metric "$T/m2.txt" saturn_ps_push_duration_seconds_count)" -ge $((2 * STEPS))

# ---- abuse: the daemon keeps serving
exec 3<>"/dev/tcp/127.0.0.1/${HTTP##*:}"
printf 'GARBAGE\r\n\r\n' >&3
timeout 5 cat <&3 >"$T/garbage.out" 2>/dev/null
RC=$?
exec 3<&- 3>&-
check "garbage request: saturnd ends the connection (within 5 s)" test $RC -ne 124
printf 'X-Big: %s\n' "$(head -c 1048576 /dev/zero | tr '\0' a)" >"$T/bighdr"
check "a 1 MiB request header -> 431 (or a closed connection)" \
    bash -c "code=\$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H @'$T/bighdr' '$HTTP/healthz');
        [ \"\$code\" = 431 ] || [ \"\$code\" = 000 ]"
# Past the connection limit (64) libmicrohttpd stops listening until
# connections close; it must listen again once they have (three rounds).
for round in 1 2 3; do
    FDS=()
    for _ in $(seq 80); do
        exec {fd}<>"/dev/tcp/127.0.0.1/${HTTP##*:}" 2>/dev/null && FDS+=("$fd")
    done
    for fd in "${FDS[@]}"; do
        exec {fd}<&-
    done
    check "burst $round: ${#FDS[@]} idle connections opened and closed; /healthz -> 200 again" \
        wait_until 20 bash -c "[ \"\$(curl -s -m 2 '$HTTP/healthz')\" = ok ]"
done
check "  ... /metrics -> 200" scrape "$T/m3.txt"
check "  ... and /metrics still passes promtool" \
    bash -c "promtool check metrics <'$T/m3.txt' >/dev/null 2>&1 &&
        grep -q '^saturn_jobs' '$T/m3.txt'"
expect_exit 0 "gRPC still answers (saturn list)" "$SATURN" list
check "saturnd is still running" kill -0 "$SATURND_PID"

# ---- shutdown: /healthz is 503 during the grace period, or gone
kill -TERM "$SATURND_PID"
CODE=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$HTTP/healthz")
check "during shutdown /healthz is 503 or the server is gone (got $CODE)" \
    bash -c "[ '$CODE' = 503 ] || [ '$CODE' = 000 ]"
check "saturnd exits" wait_until 20 bash -c "! kill -0 $SATURND_PID"
check "  ... cleanly" grep -q "stopped cleanly" "$T/saturnd.log"
finish
