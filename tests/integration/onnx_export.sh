#!/usr/bin/env bash
# onnx_export.sh - ONNX export (issue 5, item 4): a trained cnn-small W4A4
# is exported with saturn-export, checked with onnx.checker (full_check) from
# Debian's python3-onnx, and run by the independent numpy executor of
# onnx_check.py on the Fashion-MNIST test images; its accuracy must match
# `saturn-train --eval` within 0.1 points and its logits the engine's (see
# onnx_check.py compare() for the tolerance). preresnet20, mobilenetv2, mlp
# W8A8 and a float cnn-small, each after 3 steps, are checked the same way on
# 200 images. SATURN_SANITIZED=1 (the sanitizer build) trains on fewer images.
#
# Portability: how many logits agree to 1e-3 depends on the CPU (OpenBLAS
# sums in another order on AVX-512 than on AVX2, and an activation near a
# PACT rounding boundary lands on the other side, which moves everything
# downstream). So every quantized case also compares what is exact: the
# engine's integer PACT levels (saturn-export --levels) against the ONNX
# graph's, fed forward one layer at a time. A level may differ only by a
# rounding flip (one level, x/scale within 1e-3 of the boundary), flips are
# counted and bounded, and the logits from the engine's levels must agree for
# every image (onnx_check.py, step 5).
#
# Environment (meson): SATURN_TRAIN, SATURN_EXPORT, ONNX_CHECK.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's interpreter, whatever python3 comes first on PATH
if ! "$PY" -c 'import onnx, onnx.checker, numpy' 2>/dev/null; then
    echo "SKIP: needs Debian's python3-onnx and python3-numpy for $PY"
    exit 77
fi
DATA=/usr/share/datasets/fashion-mnist
if [ ! -s "$DATA/t10k-images-idx3-ubyte.gz" ]; then
    echo "SKIP: needs the Fashion-MNIST test set in $DATA (dataset-fashion-mnist)"
    exit 77
fi
SPEC=$(dirname "$0")/../../examples/cnn-small-w4a4.json

if [ "${SATURN_SANITIZED:-0}" = 1 ]; then
    LIMIT=1024 EPOCHS=2 TEST=2000 BATCH=64 LEVELS=500
else
    LIMIT=6000 EPOCHS=2 TEST=10000 BATCH=128 LEVELS=2000
fi

# ---- the acceptance case: a trained cnn-small W4A4 ------------------------
t0=$SECONDS
if "$SATURN_TRAIN" --spec "$SPEC" --epochs "$EPOCHS" --train_limit "$LIMIT" \
    --batch_size "$BATCH" --test_limit "$TEST" --quiet --json --out "$T/cnn" \
    >"$T/train-cnn.json" 2>"$T/train-cnn.log"; then
    pass "train cnn-small W4A4 ($LIMIT images, $EPOCHS epochs)"
else
    fail "training cnn-small W4A4: $(tail -n 5 "$T/train-cnn.log")"
    finish
fi
note "trained in $((SECONDS - t0)) s"
CKPT=$T/cnn/model.safetensors
expect_exit 0 "saturn-train --eval" "$SATURN_TRAIN" --eval "$CKPT" --json
echo "$OUT" >"$T/eval-cnn.json"
echo "$ERR" >"$T/eval-cnn.log"
ACC=$(jq -r .test_acc "$T/eval-cnn.json")
COUNT=$(jq -r .test_count "$T/eval-cnn.json")
note "saturn-train --eval: test_acc $ACC on $COUNT images"

expect_exit 0 "saturn-export cnn-small" "$SATURN_EXPORT" "$CKPT" -o "$T/cnn.onnx" \
    --logits "$T/cnn.f32" --levels "$T/cnn.lv" --count "$LEVELS" --job job-onnx-test
expect_exit 0 "saturn-export cnn-small logits of every test image" "$SATURN_EXPORT" "$CKPT" \
    -o "$T/cnn-all.onnx" --logits "$T/cnn-all.f32" --job job-onnx-test
echo "$ERR" >"$T/export-cnn.log"
echo "$OUT" >"$T/cnn.export.json"
contains "export reports opset 13" "$OUT" '"opset":13'
check "engine logits from saturn-export give the --eval accuracy" \
    jq -e --argjson a "$ACC" '.acc == $a' <<<"$OUT"
check "the same model is written with and without --logits" cmp -s "$T/cnn.onnx" "$T/cnn-all.onnx"

if "$PY" "$ONNX_CHECK" "$T/cnn.onnx" --engine-logits "$T/cnn-all.f32" --engine-acc "$ACC" \
    --count "$COUNT" --expect-arch cnn-small --acc-tol 0.001 \
    --expect-meta saturn.job=job-onnx-test --expect-meta saturn.wbits=4 \
    --expect-meta saturn.abits=4 --expect-meta saturn.step="$(jq -r .step "$T/cnn.export.json")" \
    >"$T/check-cnn.json" 2>"$T/check-cnn.err"; then
    pass "cnn-small W4A4: checker, grid, accuracy within 0.1 points, logits"
else
    fail "cnn-small W4A4 check: $(cat "$T/check-cnn.err")"
fi
note "cnn-small: $(cat "$T/check-cnn.json")"

if "$PY" "$ONNX_CHECK" "$T/cnn.onnx" --engine-logits "$T/cnn.f32" --count "$LEVELS" \
    --engine-levels "$T/cnn.lv" --tight-frac 0 >"$T/levels-cnn.json" 2>"$T/levels-cnn.err"; then
    pass "cnn-small W4A4: PACT levels exact but for bounded rounding flips ($LEVELS images)"
else
    fail "cnn-small W4A4 levels: $(cat "$T/levels-cnn.err")"
fi
note "cnn-small levels: $(cat "$T/levels-cnn.json")"

# The exact comparison can fail: one level moved away from any rounding
# boundary (the middle byte, one level up or down) is caught.
/usr/bin/python3 - "$T/cnn.lv" "$T/cnn-bad.lv" <<'PYEOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = len(b) // 2
b[i] = b[i] + 1 if b[i] < 15 else b[i] - 1
open(sys.argv[2], "wb").write(b)
PYEOF
expect_exit 1 "a level moved away from its rounding boundary fails the check" \
    "$PY" "$ONNX_CHECK" "$T/cnn.onnx" --engine-logits "$T/cnn.f32" --count "$LEVELS" \
    --engine-levels "$T/cnn-bad.lv" --tight-frac 0
contains "the failure says it is not a rounding flip" "$ERR" "not a rounding flip"

expect_exit 0 "export again" "$SATURN_EXPORT" "$CKPT" -o "$T/cnn2.onnx" --job job-onnx-test
check "the export is deterministic (same bytes)" cmp -s "$T/cnn.onnx" "$T/cnn2.onnx"

# ---- the other architectures, after 3 steps, on 200 images ----------------
# name model wbits abits check-args
small() {
    local name=$1 model=$2 wb=$3 ab=$4
    shift 4
    if ! "$SATURN_TRAIN" --spec "$SPEC" --model "$model" --wbits "$wb" --abits "$ab" \
        --train_limit 256 --test_limit 200 --batch_size 64 --stop-after 3 --quiet \
        --out "$T/$name" >"$T/train-$name.log" 2>&1; then
        fail "$name: training failed"
        return
    fi
    local ck=$T/$name/last.safetensors acc
    acc=$("$SATURN_TRAIN" --eval "$ck" --json 2>"$T/eval-$name.log" | jq -r .test_acc)
    local lv=()
    [ "$ab" -lt 32 ] && lv=(--levels "$T/$name.lv")
    if ! "$SATURN_EXPORT" "$ck" -o "$T/$name.onnx" --logits "$T/$name.f32" "${lv[@]}" \
        >"$T/export-$name.json" 2>"$T/export-$name.log"; then
        fail "$name: export failed: $(cat "$T/export-$name.log")"
        return
    fi
    [ "$ab" -lt 32 ] && lv=(--engine-levels "$T/$name.lv")
    if "$PY" "$ONNX_CHECK" "$T/$name.onnx" --engine-logits "$T/$name.f32" --engine-acc "$acc" \
        --count 200 --expect-arch "$model" "${lv[@]}" "$@" >"$T/check-$name.json" \
        2>"$T/check-$name.err"; then
        pass "$name: checker, grid, accuracy, logits"
    else
        fail "$name: $(cat "$T/check-$name.err")"
    fi
    note "$name: $(cat "$T/check-$name.json")"
}
# Deep untrained 4-bit nets: a last-bit difference of the dequantized values
# (onnx.h, "Rounding") flips a PACT level or two in most images and moves
# their logits; how many depends on the CPU (0.47 of the preresnet20 images
# agreed to 1e-3 on an AMD EPYC, 0.5 or more on Intel). Unforced, only the
# accuracy (within 2 of 200 images) and the cap on any logit difference are
# asked; the exact part is the level comparison (every image's logits from
# the engine's levels agree, flips are boundary cases and few).
small preresnet20 preresnet20 4 4 --tight-frac 0 --acc-tol 0.01
small mobilenetv2 mobilenetv2 4 4 --tight-frac 0 --acc-tol 0.01
small mlp-w8a8 mlp 8 8 --acc-tol 0.005
small cnn-fp32 cnn-small 32 32 --acc-tol 0

# ---- errors --------------------------------------------------------------
expect_exit 2 "a missing checkpoint is exit 2" "$SATURN_EXPORT" "$T/nope.safetensors" \
    -o "$T/x.onnx"
expect_exit 1 "an unknown format is exit 1" "$SATURN_EXPORT" "$CKPT" -o "$T/x.onnx" \
    --format tflite
expect_exit 3 "an unwritable output is exit 3" "$SATURN_EXPORT" "$CKPT" \
    -o "$T/no/such/dir/x.onnx"
contains "the error names the file" "$ERR" "no/such/dir/x.onnx"
check "no temporary file is left behind" bash -c "! ls '$T'/*.tmp.* 2>/dev/null"
finish
