/* onnx.h - export a model as an ONNX graph (opset 13), in eval mode.
 *
 * The graph computes what model_forward(train = 0) computes, node for node:
 *
 *   input   "input", float (N, C, H, W), N symbolic, pixels / 255
 *   output  "logits", float (N, nclass)
 *
 *   conv / FC weights, k < 32 bits (DoReFa "original" + SAT, quant.h):
 *       code  = rint(a * (tanh(W)/M + 1) / 2) in [0, a],  a = 2^k - 1
 *       w_int = 2*code - a            odd integers in [-a, a]
 *       W_eff = s * (2*code/a - 1) = (s / a) * w_int
 *     stored as an integer initializer "<param>_int" (int8 when a <= 127,
 *     i.e. k <= 7; int32 for k = 8, whose grid -255..255 does not fit int8)
 *     with a scalar float "<param>_scale" = s / a (the SAT factor s folded
 *     in; s = 1 where SAT is off) and a zero point 0 of the same type, fed
 *     to DequantizeLinear, whose float output "<param>" feeds Conv / Gemm.
 *   weights at 32 bits: a float initializer "<param>" holding the
 *     effective weights (the latent ones, or s*tanh(W)/M with clamp).
 *   PACT activation, k bits: Clip(x, 0, alpha) -> QuantizeLinear(scale
 *     alpha / a, zero point uint8 0) -> DequantizeLinear, alpha =
 *     max(|alpha_raw|, 1e-6). ReLU (32 bits): Relu.
 *   BN: kept, BatchNormalization (epsilon 1e-5) with the running statistics.
 *   residual add: Add; max pool: MaxPool 2x2 stride 2; GAP:
 *     GlobalAveragePool; flatten: Flatten(axis 1), which is the engine's
 *     feature order c*H*W + y*W + x; FC: Gemm(transB = 1) with its bias
 *     (a Flatten is inserted before a Gemm that reads a GAP output).
 *
 * The engine stores activations CNHW and ONNX uses NCHW; the per-image math
 * is the same, so only the flatten order matters, and it agrees.
 *
 * Rounding. Both sides round half to even, but they do not compute the same
 * float before rounding: PACT computes al * (rint(a * (x/al)) / a), ONNX
 * rint(x / (al/a)) * (al/a). At (rare) exact ties, and in the last bit of
 * the dequantized value, the two may differ; likewise s*(2*code/a - 1) and
 * (s/a)*w_int may differ in the last bit. Logits therefore agree to float
 * rounding, not bit for bit (docs and tests state the tolerance).
 *
 * The file carries metadata_props: saturn.arch, saturn.wbits, saturn.abits,
 * saturn.first_wbits, saturn.last_wbits, saturn.last_abits, saturn.sat,
 * saturn.sat_fan, saturn.clamp, saturn.bn, saturn.weights,
 * saturn.activations, saturn.input, saturn.format and, when given in the
 * options, saturn.job, saturn.step and saturn.spec.
 */
#ifndef SATURN_ONNX_H
#define SATURN_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "../nn/model.h"
#include "../util/err.h"

#define ONNX_OPSET 13
#define ONNX_IR_VERSION 7 /* the IR version that came with opset 13 (ONNX 1.8) */
#define ONNX_EXPORT_FORMAT "saturn-onnx-1"

/* Optional provenance written into the file's metadata; every field may be
 * NULL / negative, and the whole struct may be NULL. */
struct onnx_export_opts {
    const char *job;        /* job id -> "saturn.job" */
    const char *spec_json;  /* canonical job spec -> "saturn.spec" */
    long step;              /* training step of the weights -> "saturn.step" (< 0: none) */
    const char *graph_name; /* GraphProto name (default: the arch) */
};

/* Serialises m (its current parameters and BN buffers; nothing is run) into
 * an ONNX ModelProto. On success *buf receives a buffer of *len bytes that
 * the caller owns and frees with sat_free. Returns 0, or SAT_ENOMEM,
 * SAT_ENAN (a weight, BN statistic or alpha is not finite) or SAT_EINVAL
 * (a node the exporter does not know) with a message in err; *buf is then
 * NULL and nothing is left allocated. The model is not modified. */
int onnx_export_buf(struct model *m, const struct onnx_export_opts *o, uint8_t **buf, size_t *len,
                    char err[SAT_ERR_LEN]);

/* onnx_export_buf, then writes the bytes to path atomically
 * (sat_file_write_atomic: a temporary file, fsync, rename, fsync of the
 * directory). Returns 0 or an error as above, or SAT_EIO naming the file; on
 * failure no temporary file is left and path is untouched. */
int onnx_export(struct model *m, const char *path, const struct onnx_export_opts *o,
                char err[SAT_ERR_LEN]);

#endif
