#!/usr/bin/env bash
# ps_consistency.sh - what the consistency modes promise, on small jobs:
#  - bsp is bit-for-bit repeatable: the same spec twice gives the same
#    parameter digest;
#  - one worker is exactly the local trainer: a 1-worker job's digest is
#    saturn-train's for the same spec;
#  - 1 worker and 2 workers (same global batch) reach test accuracies
#    within BOUND_W points;
#  - ssp:2 and asp jobs finish with test accuracy within BOUND_C points of
#    bsp.
# saturnd runs with SATURN_PS_STORE_COPY=1: every update writes a fresh
# copy of the parameters, as when a Pull reply is still being sent from
# them (server/ps/ps_store.c), so the digests above also say that the copy
# changes nothing. The other tests run the in-place path.
# The bounds (5 points; 10 sanitized) are wider than the acceptance figures
# (1 and 2 points, for the full 8-epoch spec; measured there: 0.15 and
# 0.10 / 0.18 points, docs/training.md) because these jobs train on a few
# thousand images for 2 epochs, where run-to-run noise is larger. asp gets
# 10 points (15 sanitized): its staleness is unbounded, so after 2 short
# epochs its accuracy depends on how the two workers were scheduled
# (measured on a loaded 2-core machine: 0.707, 0.766, 0.795 against bsp's
# 0.766).
. "$(dirname "$0")/ps_lib.sh"

if [ "$SAN" = 1 ]; then
    LIMIT=3072 TEST=1000 EPOCHS=2 BATCH=64 BOUND_W=0.10 BOUND_C=0.10 BOUND_A=0.15 LIMIT_S=900
else
    LIMIT=6000 TEST=2000 EPOCHS=2 BATCH=128 BOUND_W=0.05 BOUND_C=0.05 BOUND_A=0.10 LIMIT_S=400
fi
SATURN_PS_STORE_COPY=1 start_saturnd "$T/state" --lease-ms 5000
start_workers 2 1
base() { spec_file "$1" train_limit=$LIMIT test_limit=$TEST epochs=$EPOCHS batch_size=$BATCH \
    name="$2" "${@:3}"; }
base "$T/bsp.json" bsp workers=2
base "$T/one.json" one workers=1
base "$T/ssp.json" ssp workers=2 consistency=ssp:2
base "$T/asp.json" asp workers=2 consistency=asp
declare -A JOB
for name in bsp bsp2 one ssp asp; do
    f=$T/${name%2}.json
    JOB[$name]=$("$SATURN" submit "$f" --json | jq -r .job_id)
done
check "5 jobs submitted" test -n "${JOB[asp]}"
# The local run of the 1-worker spec, meanwhile (same numerics, one process).
"$SATURN_TRAIN" --spec "$T/one.json" --json --quiet --threads 1 --out "$T/local" \
    >"$T/local.json" 2>"$T/local.log" &
LOCAL=$!
PIDS+=("$LOCAL")
START=$SECONDS
for name in bsp bsp2 one ssp asp; do
    check "job $name (${JOB[$name]}) ends" wait_job "${JOB[$name]}" $LIMIT_S
done
note "5 jobs trained in $((SECONDS - START)) s"
declare -A ACC DIG
for name in bsp bsp2 one ssp asp; do
    "$SATURN" status "${JOB[$name]}" --json >"$T/$name.status"
    check "job $name succeeded" jq -e '.state == "succeeded"' "$T/$name.status"
    ACC[$name]=$(jq -r .test_acc "$T/$name.status")
    DIG[$name]=$(jq -r .param_digest "$T/$name.status")
    note "$name: test accuracy ${ACC[$name]}, digest ${DIG[$name]}, $(jq -r .consistency "$T/$name.status")"
done
check "bsp twice: the same parameter digest (${DIG[bsp]} = ${DIG[bsp2]})" \
    test "${DIG[bsp]}" = "${DIG[bsp2]}"
check "bsp twice: the same test accuracy" test "${ACC[bsp]}" = "${ACC[bsp2]}"
within() { jq -n -e "(($1) - ($2)) | fabs <= $3" >/dev/null; }
check "1 worker vs 2 workers: accuracies within $BOUND_W (${ACC[one]} vs ${ACC[bsp]})" \
    within "${ACC[one]}" "${ACC[bsp]}" $BOUND_W
check "ssp:2 within $BOUND_C of bsp (${ACC[ssp]} vs ${ACC[bsp]})" \
    within "${ACC[ssp]}" "${ACC[bsp]}" $BOUND_C
check "asp within $BOUND_A of bsp (${ACC[asp]} vs ${ACC[bsp]})" \
    within "${ACC[asp]}" "${ACC[bsp]}" $BOUND_A
check "status shows the consistency mode" jq -e '.consistency == "ssp:2"' "$T/ssp.status"
check "every update went through a fresh copy (SATURN_PS_STORE_COPY)" \
    grep -qE 'update\(s\) wrote a fresh copy of the parameters' "$T/saturnd.log"
check "the local run ends" wait_until $LIMIT_S bash -c "! kill -0 $LOCAL"
LD=$(tail -n 1 "$T/local.json" | jq -r .param_digest)
check "1 worker is bit-for-bit the local trainer: digest ${DIG[one]} = saturn-train's $LD" \
    test "${DIG[one]}" = "$LD"
finish
