/* threads.h - the engine's threading: OpenMP around single-threaded BLAS.
 *
 * Layers parallelise over independent pieces (images of a convolution,
 * channels of BatchNorm, fixed blocks of element-wise loops) with a static
 * schedule, and call OpenBLAS single-threaded from inside. Every reduction
 * is split into pieces whose boundaries do not depend on the thread count
 * and combined in a fixed order, so results are bit-identical for any
 * number of threads.
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

#endif
