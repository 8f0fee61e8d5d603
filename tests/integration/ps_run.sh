#!/usr/bin/env bash
# ps_run.sh - saturn run, the embedded default: a private saturnd and 2
# workers, the job to its end, everything stopped, the model copied to
# ./runs/<name>/model.safetensors; with --json the last stdout line is one
# JSON object saying succeeded, with test_acc and param_digest. Ctrl-C
# (SIGINT) stops what it started.
. "$(dirname "$0")/ps_lib.sh"

if [ "$SAN" = 1 ]; then
    SETS=(--train_limit 1024 --test_limit 256 --epochs 1 --warmup_epochs 0 --batch_size 64)
else
    SETS=(--train_limit 4000 --test_limit 1000 --epochs 1 --warmup_epochs 0)
fi
mkdir -p "$T/cwd"
cd "$T/cwd" || exit 1
TMPDIR=$T "$SATURN" run "$EXAMPLES/cnn-small-w4a4.json" --workers 2 --threads 1 "${SETS[@]}" \
    --json >"$T/run.out" 2>"$T/run.err"
RC=$?
check "saturn run exits 0" test $RC -eq 0
LAST=$(tail -n 1 "$T/run.out")
note "last line: ${LAST:0:300}"
check "the last stdout line is JSON saying succeeded" \
    bash -c "echo '$LAST' | jq -e '.state == \"succeeded\"'"
check "  ... with test_acc, param_digest, job id, epochs, elapsed_s, model path" \
    bash -c "echo '$LAST' | jq -e '(.test_acc > 0.1) and (.param_digest | test(\"^[0-9a-f]{16}$\"))
        and .job_id == \"job-1\" and .epochs == 1 and .elapsed_s > 0
        and .model_path == \"runs/cnn-small-w4a4/model.safetensors\"'"
check "the model was copied to ./runs/cnn-small-w4a4/" test -s runs/cnn-small-w4a4/model.safetensors
check "the private state dir was removed" \
    bash -c "! ls -d '$T'/saturn-run.* >/dev/null 2>&1"
check "no saturnd or worker of the run is left" \
    bash -c "! pgrep -f -- '$T/[s]aturn-run' >/dev/null"

# Ctrl-C in the middle: everything it started is stopped.
TMPDIR=$T "$SATURN" run "$EXAMPLES/cnn-small-w4a4.json" --workers 2 --threads 1 --epochs 50 \
    --train_limit 2048 >"$T/run2.out" 2>"$T/run2.err" &
RUN=$!
PIDS+=("$RUN")
check "the second run starts its workers" \
    wait_until 60 bash -c "pgrep -f -- '$T/[s]aturn-run.*' | wc -l | grep -qE '^[3-9]'"
check "  ... and trains" wait_until 90 grep -qE "step [0-9]+/" "$T/run2.out"
kill -INT "$RUN"
check "SIGINT: saturn run exits" wait_until 20 bash -c "! kill -0 $RUN"
wait "$RUN"
RC=$?
check "  ... with status 130" test $RC -eq 130
check "  ... and no saturnd or worker of it is left" \
    wait_until 5 bash -c "! pgrep -f -- '$T/[s]aturn-run' >/dev/null"
finish
