#!/usr/bin/env bash
# sw_study.sh - deploy/study/study.py, the paper's study through the
# service, on tiny rows (--smoke: 1 epoch on 1024 images): it starts its own
# saturnd and 2 workers, runs each row as a job of its group's sweep,
# records it (spec, per-epoch curves, quantizer states from `saturn status
# --per-epoch`), runs a two-stage row's FP32 stage first and starts the
# quantized job from it, skips recorded rows when run again, and rebuilds
# the page from the records alone with charts from saturn-chart, whose
# input checks are tried here too.
. "$(dirname "$0")/ps_lib.sh"

STUDY=$EXAMPLES/../deploy/study/study.py
export SATURN_BUILD SATURN_STUDY_DIR=$T/study
RES=$T/results
ROWS='cnn-small_w4a4_cgpact_sat-last_s1|cnn-small_w4a4_cgpact_sat-last_fan-out_s1'
NROWS=2
if [ "$SAN" != 1 ]; then # preresnet20 under ASan would take minutes
    ROWS="$ROWS|preresnet20_w2a2_pact_sat-last_s1"
    NROWS=4 # and its FP32 stage one
fi

study() { # runs study.py in the background (its PID is cleaned up), waits
    /usr/bin/python3 "$STUDY" "$@" >>"$T/study.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait "$pid"
}
rec() { jq -r "$2" "$RES/$1.json"; }

study run --smoke "$RES" --only "^($ROWS)\$"
check "study run exits 0" test $? = 0
check "$NROWS records written" test "$(ls "$RES"/*.json | wc -l)" = "$NROWS"
for f in "$RES"/*.json; do
    k=$(basename "$f" .json)
    check "$k succeeded, one epoch with a test accuracy" \
        jq -e '.state == "succeeded" and (.epochs | length) == 1 and
               (.epochs[0].test_acc | type) == "number" and .test_acc == .epochs[0].test_acc' "$f"
    check "$k has its canonical spec, commit and machine" \
        jq -e '. as $r | ($r.spec.name | startswith($r.key)) and .spec.train_limit == 1024 and
               (.commit | length) > 0 and
               .machine.cores >= 1 and
               (.command | test("^saturn (run|submit) examples/"))' "$f"
    check "$k is a job of sweep study-<group>" jq -e '.sweep == "study-" + .group' "$f"
done

# The last layer's effective weight variance is what SAT makes it: 1/n_in
# with fan-in (cnn-small's FC reads 1568 values), 1/n_out with fan-out (10).
k=cnn-small_w4a4_cgpact_sat-last_s1
check "fan-in: VAR[W_L] = 1/1568 (to 1e-4 relative)" jq -e \
    '[.epochs[0].quant[] | select(.kind == "wvar" and .name == "fc") | .value][0] * 1568 - 1
     | fabs < 1e-4' "$RES/$k.json"
check "fan-in: the alphas of act1 and act2 (the FC's input) are recorded" jq -e \
    '[.epochs[0].quant[] | select(.kind == "alpha") | .name] == ["act1", "act2"]' "$RES/$k.json"
check "fan-in: the FC's SAT factor is recorded" jq -e \
    '[.epochs[0].quant[] | select(.kind == "sat" and .name == "fc")] | length == 1' "$RES/$k.json"
check "fan-out: VAR[W_L] = 1/10 (to 1e-4 relative)" jq -e \
    '[.epochs[0].quant[] | select(.kind == "wvar") | .value][0] * 10 - 1 | fabs < 1e-4' \
    "$RES/cnn-small_w4a4_cgpact_sat-last_fan-out_s1.json"
if [ "$SAN" != 1 ]; then
    q=preresnet20_w2a2_pact_sat-last_s1
    check "two-stage: the FP32 stage one is recorded" \
        jq -e '.state == "succeeded" and .spec.wbits == 32' "$RES/preresnet20_fp32_s1.json"
    check "two-stage: the quantized job starts from stage one's job" test \
        "$(rec $q .spec.init_from)" = "$(rec preresnet20_fp32_s1 .job)"
    check "two-stage: ... and says so in its record" test \
        "$(rec $q .init_job)" = "$(rec preresnet20_fp32_s1 .job)"
fi

before=$(stat -c %Y "$RES"/*.json | sort | tr '\n' ' ')
study run --smoke "$RES" --only "^($ROWS)\$"
check "a second run exits 0" test $? = 0
contains "a second run skips the recorded rows" "$(cat "$T/study.log")" "every row is recorded"
check "... and rewrites no record" test "$(stat -c %Y "$RES"/*.json | sort | tr '\n' ' ')" = "$before"

study page --results "$RES"
check "the page is built" test -s "$RES/results.md"
PAGE=$(cat "$RES/results.md")
acc=$(rec $k '.test_acc * 100 | . * 100 | round / 100 | tostring')
contains "the headline shows the recorded CG-PACT accuracy" "$PAGE" "| cnn-small | W4A4 |"
contains "... as its record has it" "$(grep '^| cnn-small | W4A4 |' "$RES/results.md")" "${acc%%.*}."
total=$(/usr/bin/python3 "$STUDY" run --list | tail -n 1 | awk '{print $NF}')
contains "the page counts the recorded rows" "$PAGE" "$NROWS of $total rows are recorded."
contains "the page lists what is not run" "$PAGE" "## What is not run yet"
contains "every recorded row has its command" "$PAGE" '`saturn run examples/cnn-small-w4a4.json --wbits 4'
for svg in "$RES"/*.svg; do
    check "$(basename "$svg") is well-formed XML with a series" /usr/bin/python3 -c '
import sys, xml.etree.ElementTree as E
r = E.parse(sys.argv[1]).getroot()
sys.exit(0 if any(e.get("class") == "series" for e in r.iter()) else 1)' "$svg"
done
check "the health chart of cnn-small is drawn" test -s "$RES/cnn-small-alpha.svg"

# saturn-chart refuses what would not be a clean SVG.
CHART=$SATURN_BUILD/server/saturn-chart
chart_refuses() { # WHAT JSON
    local out
    out=$(printf '%s' "$2" | "$CHART" - 2>&1 >/dev/null)
    local rc=$?
    check "saturn-chart refuses $1 (exit 2)" test "$rc" = 2
    contains "  ... with a message" "$out" "saturn-chart:"
}
chart_refuses "a colour that is not #rrggbb" '{"series":[{"color":"red\"/><x","points":[[1,2]]}]}'
chart_refuses "an id with markup" '{"id":"a\"b","series":[]}'
chart_refuses "a point that is not a pair" '{"series":[{"points":[[1]]}]}'
chart_refuses "a point that is not a number" '{"series":[{"points":[[1,"2"]]}]}'
chart_refuses "a description that is not an object" '[1,2]'
chart_refuses "malformed JSON" '{"series":'
out=$(printf '%s' '{"title":"<b>&","series":[{"label":"<i>","points":[[1,2],[2,3]]}]}' | "$CHART" -)
contains "saturn-chart escapes the title" "$out" "&lt;b&gt;&amp;"
contains "saturn-chart escapes a label" "$out" "&lt;i&gt;"

finish
