/* threads.h - the engine's threading: OpenMP around single-threaded BLAS.
 *
 * Layers parallelise over independent pieces (images of a convolution,
 * planes of depthwise and pooling layers, image ranges of element-wise
 * loops, pieces of BatchNorm's channel slabs) and call OpenBLAS
 * single-threaded from inside. Every reduction is split
 * into pieces whose boundaries do not depend on the thread count and
 * combined in a fixed order, so results are bit-identical for any number
 * of threads.
 *
 * Which thread computes a piece is a matter of speed only. Each thread
 * owns a share of the batch's images (nn_share_*), and the loops over
 * pieces (nn_walk) give a thread the pieces of its own images first, so
 * that a layer reads the activations the previous layer wrote on the same
 * core: on machines whose cores do not share a last-level cache (AMD's
 * CCDs, two sockets, a VM's vCPUs placed apart) a value written by one
 * core and read by another crosses the interconnect. A thread that runs
 * out of its own pieces then takes the others' from their ends, so a
 * core that is slow or descheduled delays a layer by at most a piece.
 * (BatchNorm does not steal: it meets at a barrier between its passes,
 * layers.c.)
 */
#ifndef SATURN_NN_THREADS_H
#define SATURN_NN_THREADS_H

/* CPUs this process may use: the online CPUs, fewer if its affinity mask
 * or its cgroup's CPU quota (a container's --cpus / k8s limits.cpu,
 * rounded up) allows fewer. At least 1. */
int nn_cpus_available(void);
/* Sets the engine's thread count (n < 1: nn_cpus_available()) and
 * makes OpenBLAS single-threaded. Safe to call more than once, but not while
 * a model runs. */
void nn_set_threads(int n);
/* The engine's thread count (initialised on first use). */
int nn_threads(void);
/* Index of the calling thread inside a parallel region, 0 outside. */
int nn_thread_id(void);

/* ==== Owned pieces ======================================================== */

#include <stdatomic.h>
#include <stddef.h>

/* Thread t of nt owns images [nn_share_lo(n, t, nt), nn_share_lo(n, t + 1, nt)). */
static inline int nn_share_lo(int n, int t, int nt)
{
    return (int)((long long)n * t / nt);
}

/* The thread whose share holds image i (0 <= i < n). */
static inline int nn_share_owner(int n, int i, int nt)
{
    int t = (int)((long long)i * nt / n);
    while (t + 1 < nt && nn_share_lo(n, t + 1, nt) <= i)
        t++;
    while (t > 0 && nn_share_lo(n, t, nt) > i)
        t--;
    return t;
}

/* The layout the next element-wise kernels of the calling thread work on:
 * tensors of (C, images, HW), m = images*HW values per channel. Models set
 * it per layer; it decides only which thread computes what (nn_items_*),
 * never a result, and a kernel called without it still computes the right
 * values (every piece then starts in image 0). */
void nn_set_layout(int images, size_t m);
int nn_layout_images(void);
size_t nn_layout_m(void);

/* A loop over pieces [0, count): piece i starts at value i*blk of a
 * channel slab of m values, which holds `images` images of hw values. */
struct nn_items {
    int count;
    size_t blk, m, hw;
    int images;
    int parts; /* > 0: piece i starts at image images*i/parts instead */
};

/* Pieces of a slab of m values, blk apart, in the calling thread's layout. */
struct nn_items nn_items_slab(int count, size_t blk, size_t m);
/* Piece i is image i * per (of n): a convolution's images or chunks. */
struct nn_items nn_items_images(int count, int per, int n);

/* A batch of n images in K = min(n, 2 * threads) pieces of whole images,
 * piece k = images [*b0, *b1): for loops over the (C, N) planes of a
 * tensor, each piece taking its images in every channel. */
struct nn_items nn_items_batch(int n);

static inline void nn_batch_piece(const struct nn_items *it, int k, int *b0, int *b1)
{
    *b0 = (int)((long long)it->images * k / it->parts);
    *b1 = (int)((long long)it->images * (k + 1) / it->parts);
}

/* Pieces of a channel slab of m values, for a reduction over the slab
 * (BatchNorm's sums, PACT's alpha gradient): nn_slab_pieces(m) of
 * them (1 to 16, halved until each has at least 512 values), piece k from
 * nn_slab_piece_lo(m, K, k) (a multiple of 8) to nn_slab_piece_lo(m, K,
 * k + 1). They depend on m only, so sums over them are the same for any
 * thread count; at a batch that is a multiple of 16 they are whole images,
 * a thread's own. */
static inline int nn_slab_pieces(size_t m)
{
    int k = 16;
    while (k > 1 && m / (size_t)k < 512)
        k /= 2;
    return k;
}

static inline size_t nn_slab_piece_lo(size_t m, int pieces, int k)
{
    return k >= pieces ? m : (m * (size_t)k / (size_t)pieces) & ~(size_t)7;
}

/* Claim flags of a walk: one byte per piece, zeroed before the parallel
 * region. Loops of more than NN_WALK_MAX pieces walk without flags: each
 * thread takes exactly its own pieces. */
#define NN_WALK_MAX 8192

/* One thread's walk (inside the parallel region):
 *   struct nn_walk w = nn_walk_begin(&items, flags);
 *   for (int i; (i = nn_walk_next(&w)) >= 0;) ...
 * gives every piece to exactly one thread: first the calling thread's own
 * pieces in order, then any piece still unclaimed, from the last down. */
struct nn_walk {
    const struct nn_items *it;
    atomic_uchar *flag; /* NULL: own pieces only */
    int me, nt, pos, back;
};

struct nn_walk nn_walk_begin(const struct nn_items *it, atomic_uchar *flag);
int nn_walk_next(struct nn_walk *w);
/* The flags for a loop of count pieces (NULL when there are too many),
 * zeroed; buf has NN_WALK_MAX bytes. */
atomic_uchar *nn_walk_flags(atomic_uchar *buf, int count);

/* A walk in a parallel region of `threads_` threads (one when par_ is 0):
 *   NN_WALK_FOR(i, items, threads, par) { ... } NN_WALK_END
 * runs the body for every piece i of items, on the thread the walk gives
 * it to. */
#define NN_WALK_FOR(i, items_, threads_, par_)                                                     \
    const struct nn_items nn_wit_ = (items_);                                                      \
    _Alignas(64) atomic_uchar nn_wbuf_[NN_WALK_MAX];                                               \
    atomic_uchar *nn_wflag_ = nn_walk_flags(nn_wbuf_, nn_wit_.count);                              \
    const int nn_wthreads_ = (threads_), nn_wpar_ = (par_);                                        \
    _Pragma("omp parallel num_threads(nn_wthreads_) if (nn_wpar_)")                                \
    {                                                                                              \
        struct nn_walk nn_ww_ = nn_walk_begin(&nn_wit_, nn_wflag_);                                \
        for (int i; (i = nn_walk_next(&nn_ww_)) >= 0;) {
#define NN_WALK_END                                                                                \
    }                                                                                              \
    }

/* Every plane p = ch * n + b of a (C, N) tensor of c channels of n images,
 * each thread its own images of every channel first (nn_items_batch):
 *   NN_FOR_PLANES(p, c, n, par) { ... } NN_END_PLANES */
#define NN_FOR_PLANES(p, c_, n_, par_)                                                             \
    NN_WALK_FOR(nn_pk_, nn_items_batch(n_), nn_threads(), par_)                                    \
    int nn_b0_, nn_b1_;                                                                            \
    nn_batch_piece(&nn_wit_, nn_pk_, &nn_b0_, &nn_b1_);                                            \
    for (int nn_ch_ = 0; nn_ch_ < (c_); nn_ch_++)                                                  \
        for (int p = nn_ch_ * (n_) + nn_b0_; p < nn_ch_ * (n_) + nn_b1_; p++) {
#define NN_END_PLANES                                                                              \
    }                                                                                              \
    NN_WALK_END

/* The ranges an element-wise kernel (no reduction: any cut gives the same
 * values) works in over a tensor of len values. With a layout that fits
 * len = C*m, piece i is the same image range [n*i/K, n*(i+1)/K) of every
 * channel (K = min(n, 2 * threads) pieces of whole images: a thread's two
 * pieces are exactly its share); otherwise piece i is the block
 * [i*blk, (i+1)*blk). */
struct nn_ranges {
    struct nn_items it;
    size_t len, blk;
    int c; /* > 0: pieces of c channel runs each */
    size_t m, hw;
    int images;
};

struct nn_ranges nn_ranges_of(size_t len, size_t blk);

/* Piece i's runs: nn_ranges_runs of them, run j = [*lo, *hi). */
static inline int nn_ranges_runs(const struct nn_ranges *r)
{
    return r->c > 0 ? r->c : 1;
}

static inline void nn_ranges_get(const struct nn_ranges *r, int i, int j, size_t *lo, size_t *hi)
{
    if (r->c > 0) {
        const size_t base = (size_t)j * r->m, parts = (size_t)r->it.parts;
        *lo = base + (size_t)r->images * (size_t)i / parts * r->hw;
        *hi = base + (size_t)r->images * (size_t)(i + 1) / parts * r->hw;
        return;
    }
    *lo = (size_t)i * r->blk;
    *hi = *lo + r->blk < r->len ? *lo + r->blk : r->len;
}

/* for every run [lo, hi) of an element-wise kernel over len values:
 *   NN_FOR_RANGES(lo, hi, len, blk) { ... } NN_END_RANGES
 * (a parallel region when there is more than one piece). */
#define NN_FOR_RANGES(lo, hi, len_, blk_)                                                          \
    const struct nn_ranges nn_r_ = nn_ranges_of((len_), (blk_));                                   \
    NN_WALK_FOR(nn_ri_, nn_r_.it, nn_threads(), nn_r_.it.count > 1)                                \
    for (int nn_j_ = 0; nn_j_ < nn_ranges_runs(&nn_r_); nn_j_++) {                                 \
        size_t lo, hi;                                                                             \
        nn_ranges_get(&nn_r_, nn_ri_, nn_j_, &lo, &hi);
#define NN_END_RANGES                                                                              \
    }                                                                                              \
    NN_WALK_END

#endif
