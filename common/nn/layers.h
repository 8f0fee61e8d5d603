/* layers.h - the layer kernels of Saturn's engine, as forward/backward twins.
 *
 * Layout. Activations are stored channel-major, CNHW: element (c, n, h, w)
 * of a (C, N, H, W) tensor is at ((c*N + n)*H + h)*W + w. A channel is then
 * one contiguous slab of N*H*W values, which makes a convolution one GEMM
 * over the whole batch (its output lands directly in CNHW), BatchNorm a
 * per-slab reduction, and every element-wise op a flat loop. Feature
 * vectors (FC inputs and outputs, logits) are feature-major, (F, N):
 * element (f, n) at f*N + n, which is the same thing with H = W = 1.
 * Weights keep PyTorch's layouts: conv (OC, IC/groups, KH, KW), FC (OUT, IN).
 *
 * Conventions (docs/style.md):
 *  - `<op>_forward(out, [saved...], inp, weights..., dims...)` and
 *    `<op>_backward(dinp, dweights..., dout, inp, weights..., dims...)`;
 *  - parameter gradients ACCUMULATE (+=): the caller zeroes them first;
 *  - input gradients are written (=) when `accum` is 0 and added when it is
 *    1, so that a tensor read by two layers needs no extra zeroing pass;
 *    a NULL dinp means "no input gradient wanted" (the first layer);
 *  - no kernel allocates: scratch buffers are passed in, sized by the
 *    matching *_scratch_floats function;
 *  - outputs must not overlap inputs or each other, except that relu_*,
 *    add_forward and bn_forward_* may run in place (out == inp, out == a or
 *    b, dinp == dout), exactly, not partly overlapping;
 *  - each OpenBLAS-backed kernel has a plain-loop *_naive twin that the tests
 *    use as the oracle.
 */
#ifndef SATURN_LAYERS_H
#define SATURN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

struct act_view; /* below, with BatchNorm */

/* ---------------------------------------------------------------------------
 * Convolution (dense, groups == 1) and depthwise convolution (groups == C).
 */
struct conv_shape {
    int n;          /* batch */
    int ic, ih, iw; /* input channels and spatial size */
    int oc, oh, ow; /* output channels and spatial size */
    int kh, kw;     /* kernel */
    int stride, pad;
    int groups; /* 1 (dense) or ic == oc (depthwise) */
    int threads; /* threads the dense scratch is sized for; 0 (conv_shape_init): nn_threads()
                  * at each call. Set it before conv_scratch_floats* to keep later calls safe
                  * when the engine's thread count grows. */
};

/* Fills s; oh/ow from the usual formula (ih + 2*pad - kh) / stride + 1.
 * groups is 1 or ic (then oc must equal ic). Returns 0 or SAT_EINVAL. */
int conv_shape_init(struct conv_shape *s, int n, int ic, int ih, int iw, int oc, int kh, int kw,
                    int stride, int pad, int groups);

/* Floats of im2col scratch that conv_forward/conv_backward need:
 * (IC*KH*KW) x (N*OH*OW), or 0 for a 1x1, stride-1, pad-0 dense conv, which
 * reads its input directly. Depthwise convs need none. */
size_t conv_scratch_floats(const struct conv_shape *s);
/* The same for a layer whose conv_backward is always called with dinp NULL
 * (it reads the model's input): no columns for the input gradient. */
size_t conv_scratch_floats_nodinp(const struct conv_shape *s);

/* out (OC, N, OH, OW) = conv(inp (IC, N, IH, IW), w (OC, IC, KH, KW)); no bias.
 * Dense only; im2col into `cols` then one cblas_sgemm. */
void conv_forward(float *out, const float *inp, const float *w, const struct conv_shape *s,
                  float *cols);
/* The forward of a quantized layer on integer codes: w holds the quantized
 * weights sat*(2r - wa)/wa of a wbits-bit quantizer (quant.h) and inp the
 * output of a PACT quantizer of abits bits and clip value alpha (al, not
 * raw), or a max-pool of it; out = (float)(sat*al/(wa*aa)) * the exact
 * integer convolution of the codes. The same bits on every machine and for
 * any thread count; conv_forward's up to float rounding. Only for shapes
 * conv_forward_q_ok accepts (dense 3x3-like, OC a multiple of 16, IC of 4,
 * 2*(2^wbits - 1)*(2^abits - 1) < 2^15, e.g. W4A4 or W6A8). `scratch` as
 * for conv_forward. */
int conv_forward_q_ok(const struct conv_shape *s, int wbits, int abits);
void conv_forward_q(float *out, const float *inp, const float *w, float sat, int wbits,
                    float alpha, int abits, const struct conv_shape *s, float *scratch);
/* dw (OC, IC, KH, KW) += dout (x) inp; dinp (IC, N, IH, IW) = or += w^T (x) dout (col2im).
 * `cols` is scratch of conv_scratch_floats(s), or of conv_scratch_floats_nodinp(s)
 * when dinp is NULL. */
void conv_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                   const struct conv_shape *s, float *cols, int accum);
/* Which kernel runs the dense convolutions that the direct kernel takes
 * (stride 1 or 2, OC a multiple of 16, not 1x1: the forward; for stride 1
 * the input gradient, as a transposed convolution; for 3x3 kernels with at
 * least 8 input channels the weight gradient):
 *  - CONV_IMPL_AUTO: the direct kernel's AVX-512 version on CPUs with
 *    AVX-512F, else im2col + sgemm (the default; SATURN_CONV_IMPL=gemm,
 *    direct, avx2 or avx512 in the environment overrides it at first use);
 *  - CONV_IMPL_GEMM: always im2col + sgemm;
 *  - CONV_IMPL_DIRECT: the direct kernel's portable C version (libm fmaf);
 *  - CONV_IMPL_AVX2, CONV_IMPL_AVX512: its vector versions (AVX2 needs FMA
 *    too; it is slower than im2col + sgemm, kept to run the direct
 *    numerics fast on machines without AVX-512).
 * The three direct versions give bit-identical results on every machine.
 * Returns 0, or SAT_EINVAL (nothing changed) for a version this CPU cannot
 * run. Not while a model runs. Everything else is im2col + sgemm. */
enum conv_impl { CONV_IMPL_AUTO, CONV_IMPL_GEMM, CONV_IMPL_DIRECT, CONV_IMPL_AVX2, CONV_IMPL_AVX512 };
int conv_set_impl(enum conv_impl impl);
/* What AUTO (or the environment) resolved to, or the last conv_set_impl. */
enum conv_impl conv_get_impl(void);
/* Plain-loop oracles for the two above (dense and depthwise). */
void conv_forward_naive(float *out, const float *inp, const float *w, const struct conv_shape *s);
void conv_backward_naive(float *dinp, float *dw, const float *dout, const float *inp,
                         const float *w, const struct conv_shape *s, int accum);

/* Depthwise: w (C, 1, KH, KW); direct loops, no scratch. */
void dwconv_forward(float *out, const float *inp, const float *w, const struct conv_shape *s);
void dwconv_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                     const struct conv_shape *s, int accum);
/* The same two reading the input (C, N, IH, IW) through an activation view,
 * one plane at a time (bit-identical results), for shapes where
 * dwconv_act_ok(s) (planes of at most 32x32). */
int dwconv_act_ok(const struct conv_shape *s);
void dwconv_forward_act(float *out, const struct act_view *in, const float *w,
                        const struct conv_shape *s);
void dwconv_backward_act(float *dinp, float *dw, const float *dout, const struct act_view *in,
                         const float *w, const struct conv_shape *s, int accum);

/* ---------------------------------------------------------------------------
 * Fully connected. inp (IN, N), w (OUT, IN), b (OUT) or NULL, out (OUT, N).
 */
void fc_forward(float *out, const float *inp, const float *w, const float *b, int n, int in,
                int outf);
/* dw += dout inp^T, db += sum_n dout (db may be NULL), dinp = or += w^T dout (may be NULL). */
void fc_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                 const float *w, int n, int in, int outf, int accum);
void fc_forward_naive(float *out, const float *inp, const float *w, const float *b, int n, int in,
                      int outf);

/* ---------------------------------------------------------------------------
 * BatchNorm over CNHW, m = N*H*W values per channel (H = W = 1 for BN1d).
 * Train mode uses the batch statistics (biased variance for normalising),
 * saves mean and invstd = 1/sqrt(var + eps) per channel for backward, and
 * updates the running statistics as PyTorch does:
 *   run_mean = (1-momentum)*run_mean + momentum*mean
 *   run_var  = (1-momentum)*run_var  + momentum*var*m/(m-1)   (unbiased)
 * Sums are accumulated in double. run_mean/run_var may be NULL (no update).
 * With m == 1 the unbiased variance is undefined; run_var then uses var (0).
 */
void bn_forward_train(float *out, float *mean, float *invstd, const float *inp, const float *gamma,
                      const float *beta, float *run_mean, float *run_var, int c, size_t m,
                      float eps, float momentum);
void bn_forward_eval(float *out, const float *inp, const float *gamma, const float *beta,
                     const float *run_mean, const float *run_var, int c, size_t m, float eps);
/* Train-mode backward: dgamma += sum dout*xhat, dbeta += sum dout,
 * dinp = or += gamma*invstd*(dout - mean(dout) - xhat*mean(dout*xhat)). */
void bn_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                 const float *mean, const float *invstd, const float *gamma, int c, size_t m,
                 int accum);

/* ---------------------------------------------------------------------------
 * BatchNorm whose output feeds one activation and nothing else. Its output
 * y = (x - mu[c]) * scale[c] + shift[c] is then never stored: the
 * activation's *_bn kernels compute each value where they read it, with the
 * float operations bn_forward_* use, so every result is bit-identical to
 * bn_forward_* followed by the plain activation, without the tensor's memory
 * or its write and read. bn_backward is unchanged (it reads x).
 */
struct bn_view {
    const float *x;                  /* (C, M) the BN input */
    const float *mu, *scale, *shift; /* (C) as bn_forward_* applies them */
    size_t m;                        /* values per channel, N*H*W */
};

/* Train mode: what bn_forward_train does (mean, invstd, running statistics)
 * except writing the output; mu, scale, shift (C) receive the view's
 * per-channel terms. */
void bn_stats_train(float *mu, float *scale, float *shift, float *mean, float *invstd,
                    const float *inp, const float *gamma, const float *beta, float *run_mean,
                    float *run_var, int c, size_t m, float eps, float momentum);
/* Eval mode: the view's terms from the running statistics. */
void bn_stats_eval(float *mu, float *scale, float *shift, const float *gamma, const float *beta,
                   const float *run_mean, const float *run_var, int c, float eps);
/* out (C, M) = the values the view stands for. */
void bn_view_values(float *out, const struct bn_view *v, int c);
/* An activation's output that is never stored either: ReLU (bits 0) or
 * PACT (bits 2..8 with alpha_raw) of a BN view's values. A depthwise
 * convolution reads its input through it (dwconv_*_act). */
struct act_view {
    struct bn_view bn;
    int bits;
    float alpha_raw;
};
/* dst[j] = the activation of the view's value at flat index i0 + j, j < n,
 * bit-identical to relu_forward / pact_forward; single-threaded. */
void act_view_fill(float *dst, const struct act_view *a, size_t i0, size_t n);

/* relu_forward / relu_backward reading their input (C, M) through a view. */
void relu_forward_bn(float *out, const struct bn_view *v, int c);
void relu_backward_bn(float *dinp, const float *dout, const struct bn_view *v, int c, int accum);

/* bn_backward with the activation after it folded in: dout is the gradient
 * the activation would have passed on, computed where it is read from the
 * activation's output gradient dy and the view's value z of each element:
 * dy where z > 0 (ReLU) or 0 < z < al (PACT, al = pact_alpha(alpha_raw)),
 * else +0. The same bits as relu_backward_bn / pact_backward_bn followed by
 * bn_backward, without the tensor in between; for PACT with alpha_grad set,
 * *alpha_grad = pact_backward_bn's return value too, summed in the same
 * pass where PACT's pieces are BN's (else by pact_backward_bn after it).
 * v is the view of this BN's output (v.x is inp). */
struct bn_gate {
    struct bn_view v;
    int pact;           /* 0: ReLU's gate; 1: PACT's */
    float al;           /* PACT's clip value, pact_alpha(alpha_raw) */
    double *alpha_grad; /* PACT: alpha's gradient goes here; NULL: not wanted */
    float alpha_raw;
    int bits, cg;
};
void bn_backward_gated(float *dinp, float *dgamma, float *dbeta, const float *dy, const float *inp,
                       const float *mean, const float *invstd, const float *gamma, int c, size_t m,
                       int accum, const struct bn_gate *gate);

/* ---------------------------------------------------------------------------
 * Element-wise and reshaping ops.
 */
void relu_forward(float *out, const float *inp, size_t len);
/* dinp = or += dout * (inp > 0) */
void relu_backward(float *dinp, const float *dout, const float *inp, size_t len, int accum);

/* Max pooling, window k x k, stride k, no padding, over `planes` = C*N planes
 * of (IH, IW); out (planes, IH/k, IW/k); argmax holds, per output, the index
 * of the chosen input within its plane (first maximum on ties). */
void maxpool_forward(float *out, int32_t *argmax, const float *inp, int planes, int ih, int iw,
                     int k);
void maxpool_backward(float *dinp, const float *dout, const int32_t *argmax, int planes, int ih,
                      int iw, int k, int accum);

/* Global average pool: inp (C, N, H*W) -> out (C, N). */
void gap_forward(float *out, const float *inp, int c, int n, int hw);
void gap_backward(float *dinp, const float *dout, int c, int n, int hw, int accum);

/* Flatten CNHW to per-sample feature vectors: inp (C, N, HW) -> out (C*HW, N),
 * feature index c*HW + p, which is PyTorch's NCHW flatten order. */
void flatten_forward(float *out, const float *inp, int c, int n, int hw);
void flatten_backward(float *dinp, const float *dout, int c, int n, int hw, int accum);

/* out = a + b */
void add_forward(float *out, const float *a, const float *b, size_t len);
/* The gradient of one input of an add: din = dout, or += dout (accum). */
void add_backward(float *din, const float *dout, size_t len, int accum);

/* ---------------------------------------------------------------------------
 * Softmax cross-entropy. logits (K, N) class-major; labels (N) in [0, K).
 * Forward writes probs (K, N), returns the mean loss over the batch
 * (computed in double with the max-shift for stability) and, when `correct`
 * is not NULL, the number of samples whose arg-max equals the label.
 * Backward: dlogits = (probs - onehot) * scale (use scale = 1/N for the mean
 * loss; a distributed step uses 1/global_batch).
 */
double softmax_ce_forward(float *probs, int *correct, const float *logits, const int32_t *labels,
                          int n, int k);
void softmax_ce_backward(float *dlogits, const float *probs, const int32_t *labels, int n, int k,
                         float scale);

#endif
