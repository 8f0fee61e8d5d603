/* bench.h - the parts of saturn-bench that its --compare-pytorch mode
 * (compare.c) shares with the main table (saturn-bench.c). */
#ifndef SATURN_BENCH_H
#define SATURN_BENCH_H

#include <stddef.h>

/* OpenBLAS sgemm GFLOP/s on a 1024-cube, best of 5 runs, with OpenBLAS's
 * own thread count. */
double sgemm_gflops(void);
/* Runs argv[0] (a path) with argv, its stdout on out_fd (-1: inherited),
 * and waits. Returns its exit status, or -1 when it could not run or was
 * killed. */
int spawn_wait(char *const argv[], int out_fd);
/* One configuration (model arch, bits 32 or 4) in a child process of this
 * binary (self), so that its peak RSS is its own: its JSON line into line
 * (cap bytes). Returns 0 or -1. */
int run_child(char *self, const char *arch, int bits, int steps, int batch, int threads, char *line,
              size_t cap);
/* The number after "key": in one of our JSON lines, 0 when absent. */
double jnum(const char *line, const char *key);

/* --compare-pytorch: `rounds` rounds of Saturn then PyTorch (script run by
 * /usr/bin/python3) on the comma-separated models, then the side-by-side
 * table. Returns the exit status: 0, 1 (a run failed) or 2 (no PyTorch). */
int bench_compare_pytorch(char *self, const char *models, int steps, int batch, int threads,
                          int rounds, const char *script);

#endif
