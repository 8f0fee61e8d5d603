#!/usr/bin/env bash
# ps_export_onnx.sh - `saturn export JOB --format onnx` (issue 5, item 4):
# a cnn-small W4A4 job trained through saturnd and two workers is exported
# as ONNX by the CLI; the file passes onnx.checker and the structural checks
# of onnx_check.py, and the accuracy that onnx_check.py's independent numpy
# executor computes from it on the job's test images matches the test
# accuracy Saturn reports for the job (saturn status) within 0.1 points.
# A second export gives the same bytes; a running or unknown job and an
# unknown format are refused with a message, and the daemon keeps serving.
. "$(dirname "$0")/ps_lib.sh"
PY=/usr/bin/python3 # Debian's interpreter, whatever python3 comes first on PATH
if ! "$PY" -c 'import onnx, onnx.checker, numpy' 2>/dev/null; then
    echo "SKIP: needs Debian's python3-onnx and python3-numpy for $PY"
    exit 77
fi
ONNX_CHECK=$(dirname "$0")/onnx_check.py

# What is checked is that the ONNX file's accuracy equals the reported
# one; the bar (MIN) only says that training happened (chance is 0.1).
if [ "$SAN" = 1 ]; then
    LIMIT=2048 TEST=1000 BATCH=64 LIMIT_S=600 MIN=0.15
else
    LIMIT=6000 TEST=10000 BATCH=128 LIMIT_S=300 MIN=0.5
fi
start_saturnd "$T/state" --lease-ms 5000
start_workers 2 1
spec_file "$T/job.json" name=onnx-job epochs=2 train_limit=$LIMIT test_limit=$TEST \
    batch_size=$BATCH
J=$("$SATURN" submit "$T/job.json" --json | jq -r .job_id)
check "job submitted" test -n "$J"

expect_exit 8 "exporting a job that has not succeeded is refused" \
    "$SATURN" export "$J" --format onnx -o "$T/early.onnx"
contains "  ... saying why" "$ERR" "succeeded"
check "  ... and leaves no file" test ! -e "$T/early.onnx"

check "the job ends" wait_job "$J" $LIMIT_S
check "the job succeeded" jq_ok '.state == "succeeded"' "$SATURN" status "$J" --json
ACC=$(jf "$J" .test_acc)
note "Saturn reports test_acc $ACC for $J"
check "the job reports a test accuracy above $MIN" \
    jq -n -e --argjson a "$ACC" --argjson m "$MIN" '$a > $m and $a <= 1'

expect_exit 0 "saturn export --format onnx" "$SATURN" export "$J" --format onnx -o "$T/m.onnx"
check "the file is there" test -s "$T/m.onnx"
STEP=$(jf "$J" .total_steps)
if "$PY" "$ONNX_CHECK" "$T/m.onnx" --engine-acc "$ACC" --count "$TEST" --acc-tol 0.001 \
    --expect-arch cnn-small --expect-meta saturn.job="$J" --expect-meta saturn.wbits=4 \
    --expect-meta saturn.abits=4 --expect-meta saturn.step="$STEP" \
    >"$T/check.json" 2>"$T/check.err"; then
    pass "checker, grid, and ONNX accuracy within 0.1 points of Saturn's"
else
    fail "onnx_check: $(cat "$T/check.err")"
fi
note "onnx_check: $(cat "$T/check.json")"

expect_exit 0 "export again" "$SATURN" export "$J" --format onnx -o "$T/m2.onnx"
check "the same bytes" cmp -s "$T/m.onnx" "$T/m2.onnx"
expect_exit 0 "safetensors still exports" "$SATURN" export "$J" -o "$T/m.safetensors"
expect_exit 4 "an unknown format is refused" "$SATURN" export "$J" --format tflite -o "$T/x"
contains "  ... naming the field" "$ERR" "format"
expect_exit 2 "an unknown job is refused" "$SATURN" export job-999 --format onnx -o "$T/x"
check "the daemon still answers" jq_ok '.state == "succeeded"' "$SATURN" status "$J" --json
finish
