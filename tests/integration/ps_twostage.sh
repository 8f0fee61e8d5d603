#!/usr/bin/env bash
# ps_twostage.sh - the paper's two stages: a full-precision job, then a
# W4A4 job with init_from = the first job's id. The second job starts from
# the first one's weights (with a learning rate of 1e-6 they end where the
# first ended; a fresh initialisation would be far away) and, since the
# float checkpoint has no PACT alphas, from alpha_init_conv. init_from may
# also name a checkpoint file in saturnd's import dir; an init_from that is
# not there fails the job with a reason.
. "$(dirname "$0")/ps_lib.sh"

if [ "$SAN" = 1 ]; then
    LIMIT=1024 TEST=256 BATCH=64 LIMIT_S=600
else
    LIMIT=4000 TEST=1000 BATCH=128 LIMIT_S=240
fi
start_saturnd "$T/state" --lease-ms 5000
start_workers 2 1
spec_file "$T/fp32.json" name=stage1 wbits=32 abits=32 epochs=1 lr=0.02 train_limit=$LIMIT \
    test_limit=$TEST batch_size=$BATCH warmup_epochs=0
J1=$("$SATURN" submit "$T/fp32.json" --json | jq -r .job_id)
check "stage 1 (FP32) ends" wait_job "$J1" $LIMIT_S
check "stage 1 succeeded" jq_ok '.state == "succeeded"' "$SATURN" status "$J1" --json
spec_file "$T/w4a4.json" name=stage2 epochs=1 train_limit=$LIMIT test_limit=$TEST \
    batch_size=$BATCH warmup_epochs=0 lr=0.000001 momentum=0 weight_decay=0 init_from="$J1"
J2=$("$SATURN" submit "$T/w4a4.json" --json | jq -r .job_id)
check "stage 2 (W4A4, init_from $J1) ends" wait_job "$J2" $LIMIT_S
check "stage 2 succeeded" jq_ok '.state == "succeeded"' "$SATURN" status "$J2" --json
note "stage 1: $(jf "$J1" .reason)"
note "stage 2: $(jf "$J2" .reason)"
py - "$T/state/jobs/$J1/model.safetensors" "$T/state/jobs/$J2/model.safetensors" \
    >"$T/py.txt" 2>&1 <<'PY'
import json, struct, sys
def load(p):
    d = open(p, "rb").read()
    (n,) = struct.unpack("<Q", d[:8])
    h = json.loads(d[8:8 + n]); h.pop("__metadata__", None)
    out = {}
    for k, t in h.items():
        b, e = t["data_offsets"]
        out[k] = struct.unpack("<%df" % ((e - b) // 4), d[8 + n + b:8 + n + e])
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
ws = [k for k in a if k.endswith(".weight") and len(a[k]) > 100]
assert ws, "no weights"
worst = max(max(abs(x - y) for x, y in zip(a[k], b[k])) for k in ws)
assert worst < 1e-3, worst
alphas = [k for k in b if k.endswith(".alpha")]
assert alphas and not any(k in a for k in alphas), "alphas"
assert all(abs(abs(b[k][0]) - 4.0) < 0.01 for k in alphas), [b[k][0] for k in alphas]
print("stage 2 starts from stage 1: max |dw| %.2e over %d weight tensors; %d alphas at their init" % (worst, len(ws), len(alphas)))
PY
RC=$?
check "stage 2's weights are stage 1's ($(tail -n 1 "$T/py.txt"))" test $RC -eq 0
cp "$T/state/jobs/$J1/model.safetensors" "$T/state/imports/stage1.safetensors"
spec_file "$T/path.json" name=stage2-path epochs=1 train_limit=$LIMIT test_limit=$TEST \
    batch_size=$BATCH init_from=stage1.safetensors
J3=$("$SATURN" submit "$T/path.json" --json | jq -r .job_id)
check "init_from a file in the import dir works too" wait_job "$J3" $LIMIT_S
check "  ... and succeeds" jq_ok '.state == "succeeded"' "$SATURN" status "$J3" --json
spec_file "$T/bad.json" name=bad epochs=1 train_limit=$LIMIT init_from=job-999
J4=$("$SATURN" submit "$T/bad.json" --json | jq -r .job_id)
check "init_from a job that does not exist fails the job" wait_job "$J4" 30
check "  ... with a reason naming init_from" \
    jq_ok '.state == "failed" and (.reason | contains("init_from"))' "$SATURN" status "$J4" --json
finish
