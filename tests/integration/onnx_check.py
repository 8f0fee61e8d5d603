#!/usr/bin/python3
"""onnx_check.py - check a Saturn ONNX export against the engine (issue 5).

Run with Debian's interpreter (/usr/bin/python3: python3-onnx, python3-numpy).

  onnx_check.py MODEL.onnx [--engine-logits FILE] [--engine-acc X]
                [--count N] [--expect-arch NAME] [--expect-meta KEY=VALUE ...]
                [--acc-tol 0.001] [--tight-frac F] [--max-rel R]
                [--saturn-formulas-frac F]
                [--engine-levels FILE [--levels-count N] [--boundary-tol T]
                 [--max-flip-frac F]]

1. onnx.checker.check_model(full_check=True) (with strict shape inference).
2. The file's structure: opset 13, input "input" (N, C, H, W) with N
   symbolic, output "logits" (N, 10); every k-bit weight an int8/int32 grid
   of odd integers in [-(2^k-1), 2^k-1] through DequantizeLinear; the
   metadata Saturn promises.
3. The graph is run by the small numpy executor below, written from the
   ONNX operator specification (opset 13) and sharing no code with
   onnxruntime or onnx.reference, on the Fashion-MNIST test images read with
   gzip + numpy. Its accuracy must match --engine-acc (saturn-train --eval)
   within --acc-tol, and its logits must match the engine's (--engine-logits,
   from saturn-export --logits) within the tolerance stated in compare().
4. Optionally (--saturn-formulas-frac) the same executor with Saturn's own
   quantizer formulas in place of QuantizeLinear / DequantizeLinear, to show
   that what differs is the documented rounding, not the exported values.
5. With --engine-levels (saturn-export --levels): the exact comparison.
   The graph runs again with every PACT QuantizeLinear checked against the
   engine's integer level for the same activation, and then fed the
   engine's level, so that one rounding difference cannot spread. A level
   that differs must differ by one and the executor's x/scale must lie
   within --boundary-tol of the boundary between the two levels (a float
   rounding flip, which depends on the CPU's summation order); any other
   difference fails. Such flips are counted and bounded (--max-flip-frac of
   all levels), and the logits computed from the engine's levels must then
   agree for every image.

Prints one JSON line with the figures; exit status 0 = pass, 1 = fail.
"""
import argparse
import gzip
import json
import sys

import numpy as np
import onnx
import onnx.checker

DATA = "/usr/share/datasets/fashion-mnist"

# ONNX TensorProto.DataType -> numpy dtype (the ones Saturn writes)
DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 6: np.int32}


def fail(msg):
    print("onnx_check: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def load_idx(path):
    """An IDX file (gzip), MNIST format: big-endian magic, dims, uint8 payload."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08:
        fail("%s: not a uint8 IDX file" % path)
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def tensor_to_array(t):
    """Decodes an initializer; Saturn writes raw_data, little-endian."""
    if t.data_type not in DTYPES:
        fail("initializer %s has data type %d" % (t.name, t.data_type))
    dt = np.dtype(DTYPES[t.data_type]).newbyteorder("<")
    if not t.HasField("raw_data"):
        fail("initializer %s has no raw_data" % t.name)
    a = np.frombuffer(t.raw_data, dtype=dt).astype(DTYPES[t.data_type])
    return a.reshape(tuple(t.dims))


# ---------------------------------------------------------------------------
# The executor: one function per operator, from the ONNX operator spec.

def attrs_of(node):
    out = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.INT:
            out[a.name] = a.i
        elif a.type == onnx.AttributeProto.FLOAT:
            out[a.name] = a.f
        elif a.type == onnx.AttributeProto.INTS:
            out[a.name] = list(a.ints)
        else:
            fail("%s: attribute %s of unsupported type %d" % (node.name, a.name, a.type))
    return out


def op_conv(x, w, b=None, kernel_shape=None, strides=(1, 1), pads=(0, 0, 0, 0),
            dilations=(1, 1), group=1, auto_pad=None):
    # Conv-11: x (N, C, H, W), w (M, C/group, kH, kW), pads [top, left, bottom, right]
    if auto_pad not in (None, b"NOTSET", "NOTSET"):
        fail("Conv auto_pad unsupported")
    if list(dilations) != [1, 1]:
        fail("Conv dilations unsupported")
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    if kernel_shape is not None and list(kernel_shape) != [kh, kw]:
        fail("Conv kernel_shape %s vs weight %s" % (kernel_shape, w.shape))
    if c != cg * group or m % group:
        fail("Conv channels: x %s, w %s, group %d" % (x.shape, w.shape, group))
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    sh, sw = strides
    oh = (h + pads[0] + pads[2] - kh) // sh + 1
    ow = (wd + pads[1] + pads[3] - kw) // sw + 1
    # windows: (N, C, OH, OW, kh, kw)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    win = win[:, :, ::sh, ::sw][:, :, :oh, :ow]
    mg = m // group
    out = np.empty((n, m, oh, ow), dtype=np.float32)
    for g in range(group):
        xs = win[:, g * cg:(g + 1) * cg]  # (N, cg, OH, OW, kh, kw)
        cols = xs.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, cg * kh * kw)
        wg = w[g * mg:(g + 1) * mg].reshape(mg, cg * kh * kw)
        y = cols.astype(np.float32) @ wg.T.astype(np.float32)  # (N*OH*OW, mg)
        out[:, g * mg:(g + 1) * mg] = y.reshape(n, oh, ow, mg).transpose(0, 3, 1, 2)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def op_conv_depthwise_fast(x, w, pads, strides):
    # group == C == M, one filter per channel: sum over the window directly.
    n, c, h, wd = x.shape
    _, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    sh, sw = strides
    oh = (h + pads[0] + pads[2] - kh) // sh + 1
    ow = (wd + pads[1] + pads[3] - kw) // sw + 1
    out = np.zeros((n, c, oh, ow), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            out += patch * w[:, 0, i, j].reshape(1, c, 1, 1)
    return out


def op_batchnorm(x, scale, b, mean, var, epsilon=1e-5, momentum=0.9):
    # BatchNormalization-9 (inference): y = (x - mean) / sqrt(var + eps) * scale + B
    shp = (1, -1) + (1,) * (x.ndim - 2)
    return ((x - mean.reshape(shp)) / np.sqrt(var.reshape(shp) + np.float32(epsilon))
            * scale.reshape(shp) + b.reshape(shp)).astype(np.float32)


def op_quantize(x, scale, zp=None):
    # QuantizeLinear-13, per tensor: y = saturate(round(x / scale) + zp),
    # round half to even; the output type is the zero point's (uint8 default).
    if scale.ndim != 0:
        fail("QuantizeLinear: only per-tensor scales expected")
    dt = zp.dtype if zp is not None else np.dtype(np.uint8)
    lo, hi = (0, 255) if dt == np.uint8 else (-128, 127)
    z = np.int32(zp) if zp is not None else 0
    q = np.rint(x.astype(np.float32) / scale.astype(np.float32)) + z
    return np.clip(q, lo, hi).astype(dt)


def op_dequantize(x, scale, zp=None):
    # DequantizeLinear-13, per tensor: y = (x - zp) * scale
    if scale.ndim != 0:
        fail("DequantizeLinear: only per-tensor scales expected")
    if zp is not None and zp.dtype != x.dtype:
        fail("DequantizeLinear: zero point type %s vs %s" % (zp.dtype, x.dtype))
    z = zp.astype(np.int64) if zp is not None else 0
    return ((x.astype(np.int64) - z).astype(np.float32) * scale.astype(np.float32)).astype(
        np.float32)


def op_maxpool(x, kernel_shape, strides=None, pads=(0, 0, 0, 0), auto_pad=None,
               ceil_mode=0, dilations=None, storage_order=0):
    if any(pads) or ceil_mode:
        fail("MaxPool with padding / ceil_mode unsupported")
    kh, kw = kernel_shape
    sh, sw = strides or (1, 1)
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    oh = (x.shape[2] - kh) // sh + 1
    ow = (x.shape[3] - kw) // sw + 1
    return win[:, :, :oh, :ow].max(axis=(4, 5))


def op_gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
    # Gemm-13: Y = alpha * A' B' + beta * C
    a2 = a.T if transA else a
    b2 = b.T if transB else b
    y = np.float32(alpha) * (a2.astype(np.float32) @ b2.astype(np.float32))
    if c is not None:
        y = y + np.float32(beta) * c
    return y.astype(np.float32)


def saturn_weights(model, inits):
    """For --saturn-formulas: each k-bit weight as the engine computes it,
    s * (2*(code/a) - 1) in float32, from the grid and the metadata's s."""
    meta = {p.key: p.value for p in model.metadata_props}
    out = {}
    for n in model.graph.node:
        if n.op_type != "DequantizeLinear" or not n.input[0].endswith("_int"):
            continue
        layer = n.input[0][:-len("_int")].rsplit(".", 1)[0]
        kv = dict(t.split("=", 1) for t in meta["saturn.layer." + layer].split()
                  if t.startswith(("bits=", "s=")))
        a = np.float32((1 << int(kv["bits"])) - 1)
        code = ((inits[n.input[0]].astype(np.int32) + int(a)) // 2).astype(np.float32)
        q = np.float32(2) * (code / a) - np.float32(1)
        out[n.output[0]] = (q * np.float32(float(kv["s"]))).astype(np.float32)
    return out


class LevelForcing:
    """The engine's PACT levels of one batch, (N, per_image) uint8, consumed
    node by node in graph order; counts and checks the differences."""

    def __init__(self, levels, boundary_tol):
        self.levels, self.tol = levels, boundary_tol
        self.off = 0
        self.total = 0
        self.flips = 0
        self.worst_flip_margin = 0.0

    def take(self, node, x, scale, zp):
        n = x.shape[0]
        size = int(np.prod(x.shape[1:]))
        if self.off + size > self.levels.shape[1]:
            fail("engine levels: the file has fewer levels per image than the graph's "
                 "PACT activations (at %s)" % node.name)
        eng = self.levels[:, self.off:self.off + size].reshape(x.shape).astype(np.int32)
        self.off += size
        u = x.astype(np.float32) / scale.astype(np.float32)
        mine = np.clip(np.rint(u), 0, 255).astype(np.int32)
        diff = mine != eng
        self.total += eng.size
        if np.any(diff):
            if np.any(np.abs(mine[diff] - eng[diff]) != 1):
                fail("%s: a level differs by more than one from the engine's" % node.name)
            margin = np.abs(u[diff] - (mine[diff] + eng[diff]) / np.float32(2))
            worst = float(margin.max())
            if worst > self.tol:
                fail("%s: a level differs from the engine's %.4g away from the rounding "
                     "boundary (tolerance %g): not a rounding flip" % (node.name, worst, self.tol))
            self.flips += int(diff.sum())
            self.worst_flip_margin = max(self.worst_flip_margin, worst)
        dt = zp.dtype if zp is not None else np.dtype(np.uint8)
        return eng.astype(dt)

    def done(self):
        if self.off != self.levels.shape[1]:
            fail("engine levels: %d per image in the file, %d PACT activations in the graph"
                 % (self.levels.shape[1], self.off))


def run_graph(model, x, inits, saturn=False, force=None):
    """Runs the graph on x (N, C, H, W). saturn=False: every operator as the
    ONNX spec defines it (the check). saturn=True: a diagnostic in which the
    quantizers and BN use Saturn's own float formulas instead (PACT
    al*rint(a*(x/al))/a, weights s*(2*code/a - 1), BN scale in double, GAP
    sum in double), so that what is left of the difference to the engine is
    float summation order only."""
    g = model.graph
    env = dict(inits)
    env[g.input[0].name] = x
    sw = saturn_weights(model, inits) if saturn else {}
    if force is not None:
        force.off = 0
    for node in g.node:
        ins = [env[n] if n else None for n in node.input]
        at = attrs_of(node)
        op = node.op_type
        if saturn and node.output[0] in sw:
            y = sw[node.output[0]]
        elif saturn and op == "QuantizeLinear":
            act = node.name.rsplit("/", 1)[0]
            al, sc = inits[act + ".alpha"], inits[act + ".scale"]
            a = np.float32(np.rint(al / sc))
            y = ("saturn-level", np.rint(a * (ins[0] / al)).astype(np.float32), al, a)
        elif saturn and op == "DequantizeLinear" and isinstance(ins[0], tuple):
            _, lv, al, a = ins[0]
            y = al * (lv / a)
        elif saturn and op == "BatchNormalization":
            shp = (1, -1) + (1,) * (ins[0].ndim - 2)
            k = (ins[1].astype(np.float64) / np.sqrt(ins[4].astype(np.float64) + 1e-5))
            y = (ins[0] - ins[3].reshape(shp)) * k.astype(np.float32).reshape(shp) + \
                ins[2].reshape(shp)
        elif saturn and op == "GlobalAveragePool":
            y = ins[0].astype(np.float64).mean(axis=(2, 3), keepdims=True).astype(np.float32)
        elif op == "Conv":
            w = ins[1]
            grp = at.get("group", 1)
            pads = at.get("pads", [0, 0, 0, 0])
            strides = at.get("strides", [1, 1])
            if grp > 1 and grp == w.shape[0] == ins[0].shape[1] and w.shape[1] == 1:
                y = op_conv_depthwise_fast(ins[0], w, pads, strides)
                if len(ins) > 2 and ins[2] is not None:
                    y += ins[2].reshape(1, -1, 1, 1)
            else:
                y = op_conv(*ins, **at)
        elif op == "BatchNormalization":
            y = op_batchnorm(*ins, **at)
        elif op == "Relu":
            y = np.maximum(ins[0], np.float32(0))
        elif op == "Clip":
            # Clip-13: min and max are optional scalar inputs
            y = ins[0]
            if len(ins) > 1 and ins[1] is not None:
                y = np.maximum(y, ins[1])
            if len(ins) > 2 and ins[2] is not None:
                y = np.minimum(y, ins[2])
        elif op == "QuantizeLinear" and force is not None:
            y = force.take(node, ins[0], ins[1], ins[2] if len(ins) > 2 else None)
        elif op == "QuantizeLinear":
            y = op_quantize(*ins)
        elif op == "DequantizeLinear":
            y = op_dequantize(*ins)
        elif op == "MaxPool":
            y = op_maxpool(ins[0], **at)
        elif op == "GlobalAveragePool":
            y = ins[0].mean(axis=(2, 3), keepdims=True, dtype=np.float32)
        elif op == "Flatten":
            ax = at.get("axis", 1)
            s = ins[0].shape
            y = ins[0].reshape(int(np.prod(s[:ax])), -1)
        elif op == "Gemm":
            y = op_gemm(*ins, **at)
        elif op == "Add":
            y = ins[0] + ins[1]
        else:
            fail("operator %s is not in the executor" % op)
        env[node.output[0]] = y
    if force is not None:
        force.done()
    return env[g.output[0].name]


# ---------------------------------------------------------------------------

def check_structure(model, inits, expect_arch, expect_meta):
    """Static checks of what Saturn promises; returns a summary dict."""
    if [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] != [13]:
        fail("opset is not 13")
    g = model.graph
    if [i.name for i in g.input] != ["input"] or [o.name for o in g.output] != ["logits"]:
        fail("graph inputs/outputs are %s / %s" % ([i.name for i in g.input],
                                                   [o.name for o in g.output]))
    din = g.input[0].type.tensor_type.shape.dim
    dout = g.output[0].type.tensor_type.shape.dim
    if not din[0].dim_param or len(din) != 4 or not dout[0].dim_param or dout[1].dim_value != 10:
        fail("input/output shapes are not (N, C, H, W) / (N, 10)")
    meta = {p.key: p.value for p in model.metadata_props}
    for k in ("saturn.arch", "saturn.wbits", "saturn.abits", "saturn.sat", "saturn.bn",
              "saturn.weights", "saturn.activations", "saturn.format"):
        if k not in meta:
            fail("metadata %s missing" % k)
    if expect_arch and meta["saturn.arch"] != expect_arch:
        fail("arch %s, expected %s" % (meta["saturn.arch"], expect_arch))
    for kv in expect_meta:
        k, v = kv.split("=", 1)
        if meta.get(k) != v:
            fail("metadata %s is %r, expected %r" % (k, meta.get(k), v))
    if "not folded" not in meta["saturn.bn"]:
        fail("saturn.bn does not say that BN is kept: %r" % meta["saturn.bn"])
    if "BatchNormalization" not in {n.op_type for n in g.node}:
        fail("BN was announced as kept but there is no BatchNormalization")
    grids = {}
    for n in g.node:
        if n.op_type != "DequantizeLinear" or not n.input[0].endswith("_int"):
            continue
        w = inits[n.input[0]]
        layer = n.input[0][:-len("_int")].rsplit(".", 1)[0]
        key = "saturn.layer." + layer
        if key not in meta:
            fail("no metadata %s" % key)
        bits = int(meta[key].split("bits=")[1].split()[0])
        a = (1 << bits) - 1
        want = np.int8 if a <= 127 else np.int32
        if w.dtype != want:
            fail("%s: %d-bit grid stored as %s" % (n.input[0], bits, w.dtype))
        if np.any(w % 2 == 0) or w.min() < -a or w.max() > a:
            fail("%s: values outside the odd grid [-%d, %d]" % (n.input[0], a, a))
        zp = inits[n.input[2]]
        if zp.dtype != w.dtype or zp != 0:
            fail("%s: zero point %r" % (n.input[0], zp))
        grids[layer] = bits
    return {"meta": meta, "grids": grids}


def compare(onnx_logits, eng, labels, frac_min, rel_max, tag):
    """Logit agreement. An image agrees tightly when every logit satisfies
    |onnx - engine| <= 1e-3 * (1 + |engine|). At least frac_min of the
    images must agree tightly; the others may differ by more, because a
    float-rounding difference flipped a PACT quantization level somewhere
    upstream (onnx.h, "Rounding"), but no logit anywhere may differ by more
    than rel_max * (1 + max|engine|)."""
    d = np.abs(onnx_logits - eng)
    tol = 1e-3 * (1 + np.abs(eng))
    frac = float(np.all(d <= tol, axis=1).mean())
    maxd = float(d.max())
    cap = rel_max * (1 + float(np.abs(eng).max()))
    res = {tag + "logit_max_abs_diff": maxd,
           tag + "logit_median_abs_diff": float(np.median(d)),
           tag + "images_within_tol": frac,
           tag + "argmax_disagreements": int(np.sum(onnx_logits.argmax(1) != eng.argmax(1)))}
    if labels is not None:
        res["engine_acc_from_logits"] = float(np.mean(eng.argmax(1) == labels))
    if frac < frac_min:
        print(json.dumps(res))
        fail("%sonly %.4f of the images (want >= %.4f) have logits within 1e-3*(1+|l|)"
             % (tag, frac, frac_min))
    if maxd > cap:
        print(json.dumps(res))
        fail("%sa logit differs by %g (cap %g)" % (tag, maxd, cap))
    return res


def check_levels(model, inits, x_all, eng, args):
    """5.: levels exact apart from counted, bounded rounding flips; logits
    from the engine's levels agree for every image."""
    m = min(args.levels_count or args.count, x_all.shape[0])
    raw = np.fromfile(args.engine_levels, dtype=np.uint8)
    if m < 1 or raw.size == 0 or raw.size % m:
        fail("engine levels: %d bytes do not divide into %d images" % (raw.size, m))
    levels = raw.reshape(m, raw.size // m)
    flips = total = 0
    worst = 0.0
    outs = []
    for i0 in range(0, m, args.batch):
        f = LevelForcing(levels[i0:i0 + args.batch], args.boundary_tol)
        outs.append(run_graph(model, x_all[i0:i0 + args.batch], inits, force=f))
        flips += f.flips
        total += f.total
        worst = max(worst, f.worst_flip_margin)
    forced = np.concatenate(outs)
    res = {"levels_compared": total, "level_flips": flips,
           "level_flip_frac": flips / max(total, 1), "level_flip_worst_margin": worst}
    res.update(compare(forced, eng[:m], None, 1.0, args.max_rel, "forced_"))
    if flips > args.max_flip_frac * total:
        print(json.dumps(res))
        fail("%d of %d PACT levels flipped (cap %g of them)" % (flips, total, args.max_flip_frac))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--engine-logits")
    ap.add_argument("--engine-acc", type=float)
    ap.add_argument("--acc-tol", type=float, default=0.001)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--expect-arch")
    ap.add_argument("--expect-meta", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--tight-frac", type=float, default=0.99,
                    help="fraction of images whose logits must agree to 1e-3 relative")
    ap.add_argument("--max-rel", type=float, default=0.02,
                    help="cap on any logit difference, relative to 1 + max|logit|")
    ap.add_argument("--saturn-formulas-frac", type=float, default=None,
                    help="also run the diagnostic with Saturn's quantizer formulas and "
                         "require this tight fraction")
    ap.add_argument("--engine-levels",
                    help="saturn-export --levels file: compare PACT levels exactly (see 5.)")
    ap.add_argument("--levels-count", type=int, default=None,
                    help="images in the levels file (default: --count)")
    ap.add_argument("--boundary-tol", type=float, default=1e-3,
                    help="how far (in levels) from a rounding boundary a flip may lie")
    ap.add_argument("--max-flip-frac", type=float, default=1e-4,
                    help="cap on the fraction of PACT levels that flip")
    args = ap.parse_args()

    model = onnx.load(args.model)
    onnx.checker.check_model(model, full_check=True)
    inits = {t.name: tensor_to_array(t) for t in model.graph.initializer}
    summary = check_structure(model, inits, args.expect_arch, args.expect_meta)

    images = load_idx(DATA + "/t10k-images-idx3-ubyte.gz")
    labels = load_idx(DATA + "/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    n = min(args.count, images.shape[0])
    x_all = (images[:n].astype(np.float32) / np.float32(255)).reshape(n, 1, 28, 28)
    outs = []
    for i0 in range(0, n, args.batch):
        outs.append(run_graph(model, x_all[i0:i0 + args.batch], inits))
    logits = np.concatenate(outs)
    if logits.shape != (n, 10) or logits.dtype != np.float32:
        fail("logits have shape %s dtype %s" % (logits.shape, logits.dtype))
    acc = float(np.mean(logits.argmax(1) == labels[:n]))
    res = {"model": args.model, "arch": summary["meta"]["saturn.arch"], "count": n,
           "onnx_acc": acc, "nodes": len(model.graph.node),
           "weight_grids": summary["grids"], "checker": "ok (full_check)"}
    if args.engine_logits:
        eng = np.fromfile(args.engine_logits, dtype="<f4")
        if eng.size < n * 10:
            fail("engine logits: %d values for %d images" % (eng.size, n))
        eng = eng[:n * 10].reshape(n, 10)
        res.update(compare(logits, eng, labels[:n], args.tight_frac, args.max_rel, ""))
        if args.saturn_formulas_frac is not None:
            sat = np.concatenate([run_graph(model, x_all[i0:i0 + args.batch], inits, True)
                                  for i0 in range(0, n, args.batch)])
            res.update(compare(sat, eng, None, args.saturn_formulas_frac, args.max_rel,
                               "saturn_formulas_"))
    if args.engine_levels:
        if not args.engine_logits:
            fail("--engine-levels needs --engine-logits")
        res.update(check_levels(model, inits, x_all, eng, args))
    if args.engine_acc is not None:
        res["engine_acc"] = args.engine_acc
        res["acc_diff_points"] = round(100 * abs(acc - args.engine_acc), 4)
        if abs(acc - args.engine_acc) > args.acc_tol + 1e-12:
            print(json.dumps(res))
            fail("ONNX accuracy %.4f vs engine %.4f" % (acc, args.engine_acc))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
