/* lanes.h - private to common/nn: how a kernel body is compiled once per
 * element-wise ISA level (quant.h's pact_get_isa: SSE4.2, AVX2 or
 * AVX-512F). A body is a LANES_INLINE function; each level's copy is a
 * function with LANES_AVX2 or LANES_AVX512 (x86-64 only, LANES_X86) that
 * calls it, and the caller picks the copy of the level in use. The bodies
 * use per-element operations in a fixed order (-ffp-contract=off), so
 * every level gives the same bits.
 */
#ifndef SATURN_NN_LANES_H
#define SATURN_NN_LANES_H

#define LANES_INLINE static inline __attribute__((always_inline))

#if defined(__x86_64__) && defined(__GNUC__)
#define LANES_X86 1
#define LANES_AVX2 __attribute__((target("avx2")))
#define LANES_AVX512 __attribute__((target("avx512f")))
#else
#define LANES_X86 0
#endif

#endif
