#!/usr/bin/env bash
# ps_train.sh - saturnd + 2 workers on loopback train cnn-small W4A4
# (SAT + CG-PACT) on Fashion-MNIST through the parameter server, and the
# job succeeds with test accuracy over 80% (sanitized build: less data and
# a 40% bar; chance is 10%). Then: status --json shows the state, epoch,
# step, metrics, per-layer alphas and SAT factors and the parameter digest;
# the metrics are in SQLite; checkpoints and the final model are in the
# state dir; watch replays to the end; export writes a safetensors file
# the engine reads back (saturn-train --eval) with the same digest and
# accuracy, whose integer codes and scales python decodes; the onnx export
# is written; the workers are idle again.
. "$(dirname "$0")/ps_lib.sh"

if [ "$SAN" = 1 ]; then
    LIMIT=2048 TEST=500 EPOCHS=2 BATCH=64 BAR=0.40 LIMIT_S=600
else
    LIMIT=12000 TEST=2000 EPOCHS=3 BATCH=128 BAR=0.80 LIMIT_S=240
fi
start_saturnd "$T/state" --lease-ms 5000
start_workers 2 1
spec_file "$T/spec.json" train_limit=$LIMIT test_limit=$TEST epochs=$EPOCHS batch_size=$BATCH \
    name=it-w4a4 checkpoint_every=20
expect_exit 0 "submit cnn-small W4A4 (2 workers, bsp)" "$SATURN" submit "$T/spec.json" --json
J=$(echo "$OUT" | jq -r .job_id)
"$SATURN" watch "$J" >"$T/watch.txt" 2>&1 &
WATCH=$!
PIDS+=("$WATCH")
START=$SECONDS
check "the job ends within ${LIMIT_S} s" wait_job "$J" $LIMIT_S
note "trained in $((SECONDS - START)) s"
"$SATURN" status "$J" --json >"$T/status.json"
check "the job succeeded" jq -e '.state == "succeeded"' "$T/status.json"
ACC=$(jq -r .test_acc "$T/status.json")
note "test accuracy $ACC (bar $BAR), reason: $(jq -r .reason "$T/status.json")"
check "test accuracy $ACC > $BAR" jq -e ".test_acc > $BAR" "$T/status.json"
check "status: epoch = epochs and step = total_steps > 0" \
    jq -e ".epoch == $EPOCHS and .step == .total_steps and .step > 0" "$T/status.json"
check "status: param_digest is 16 hex digits" jq -e '.param_digest | test("^[0-9a-f]{16}$")' \
    "$T/status.json"
check "status: latest metrics (loss, train_acc, images/s, lr, step times)" \
    jq -e '.metrics | (.loss > 0) and (.train_acc > 0) and (.images_per_s > 0) and (.lr >= 0)
        and (.compute_s > 0) and (.pull_s >= 0) and (.push_s >= 0)' "$T/status.json"
check "status: per-layer alphas and the SAT factor of the last layer" \
    jq -e '.metrics.quant | (map(select(.kind == "alpha")) | length) >= 2 and
        (map(select(.kind == "sat")) | length) >= 1 and all(.[]; .value > 0)' "$T/status.json"
check "status: consistency bsp" jq -e '.consistency == "bsp"' "$T/status.json"
check "the reason gives the accuracy and the digest" \
    jq -e '.reason | test("test accuracy [0-9.]+% .* digest [0-9a-f]{16}")' "$T/status.json"
DIGEST=$(jq -r .param_digest "$T/status.json")

DB=$T/state/saturnd.db
if command -v sqlite3 >/dev/null; then
    check "SQLite: one epoch row per epoch with test accuracy and quantizers" \
        test "$(sqlite3 "$DB" "select count(*) from metrics where job_id='$J' and kind='epoch' \
            and test_acc > 0 and quant like '%alpha%'")" = "$EPOCHS"
    check "SQLite: per-step rows from both ranks" \
        test "$(sqlite3 "$DB" "select count(distinct rank) from metrics where job_id='$J' \
            and kind='step' and loss > 0")" = 2
fi
check "the final model is in the state dir" test -s "$T/state/jobs/$J/model.safetensors"
check "a checkpoint (last.safetensors) is in the state dir" \
    test -s "$T/state/jobs/$J/last.safetensors"
check "watch ended by itself" wait_until 10 bash -c "! kill -0 $WATCH"
wait "$WATCH"
check "watch exits 0 for a succeeded job" test $? -eq 0
W=$(cat "$T/watch.txt")
contains "watch shows the epochs' metrics" "$W" "epoch $EPOCHS/$EPOCHS: loss"
contains "watch shows the end" "$W" "succeeded"
expect_exit 0 "watch --json of the ended job replays it" "$SATURN" watch "$J" --json
check "  ... ending in the succeeded state" \
    test "$(echo "$OUT" | tail -n 1 | jq -r .state)" = succeeded

expect_exit 0 "export -o model.safetensors" "$SATURN" export "$J" -o "$T/export.safetensors"
check "the export file exists" test -s "$T/export.safetensors"
expect_exit 0 "saturn-train --eval reads the export back" \
    "$SATURN_TRAIN" --eval "$T/export.safetensors" --json --threads 2
check "  ... with the digest of status ($DIGEST)" \
    test "$(echo "$OUT" | tail -n 1 | jq -r .param_digest)" = "$DIGEST"
check "  ... and the job's test accuracy (within 0.5 point)" \
    jq -n -e "($(echo "$OUT" | tail -n 1 | jq .test_acc) - $ACC) | fabs < 0.005"
py - "$T/export.safetensors" "$DIGEST" >"$T/pycheck.txt" 2>&1 <<'PY'
import json, struct, sys
path, want = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
(hl,) = struct.unpack("<Q", data[:8])
hdr = json.loads(data[8:8 + hl])
meta = hdr.pop("__metadata__")
base = 8 + hl
def arr(name, fmt):
    t = hdr[name]
    b, e = t["data_offsets"]
    n = (e - b) // 4
    return struct.unpack("<%d%s" % (n, fmt), data[base + b:base + e])
assert "effective weight" in meta["saturn.formula"], "formula missing"
layers = json.loads(meta["saturn.layers"])
quant = [l for l in layers if l["bits"] < 32]
assert quant, "no quantized layer"
for l in quant:
    codes = arr(l["codes"], "i")
    a = (1 << l["bits"]) - 1
    assert min(codes) >= 0 and max(codes) <= a, (l["layer"], min(codes), max(codes))
    assert len(set(codes)) > 2, l["layer"]
    (m,) = arr(l["layer"] + ".weight_scale", "f")
    assert 0 < m <= 1, m
    # The codes are the k-bit grid of tanh(W)/M: check a few against the latent weights.
    import math
    w = arr(l["weight"], "f")
    for i in range(0, len(w), max(1, len(w) // 50)):
        c = round(a * (math.tanh(w[i]) / m + 1) / 2)
        assert abs(c - codes[i]) <= 1, (l["layer"], i, c, codes[i])
assert any(k.endswith(".alpha") for k in hdr), "no alpha"
assert any(k.endswith("running_var") for k in hdr), "no BN statistics"
# The digest of status: FNV-1a 64 over parameters then BN buffers (file order).
h = 0xcbf29ce484222325
for name, t in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
    if t["dtype"] != "F32" or name.endswith((".weight_scale", ".weight_sat")):
        continue
    b, e = t["data_offsets"]
    for byte in data[base + b:base + e]:
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
assert "%016x" % h == want, ("%016x" % h, want)
assert meta["saturn.param_digest"] == want
print("export ok: %d quantized layers, digest %s" % (len(quant), want))
PY
RC=$?
check "python decodes the export: codes in [0, 2^k-1] matching tanh(W)/M, alphas, BN, digest ($(tail -n 1 "$T/pycheck.txt"))" \
    test $RC -eq 0
expect_exit 0 "export --format onnx (checked in depth by ps_export_onnx)" "$SATURN" export "$J" \
    -o "$T/m.onnx" --format onnx
check "  ... writes an ONNX file" test -s "$T/m.onnx"
check "both workers are idle again" \
    wait_until 10 jq_ok '[.[] | select(.state == "idle")] | length == 2' "$SATURN" workers --json
finish
