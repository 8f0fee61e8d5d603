/* fuzz.h - what the fuzz targets in tests/fuzz share.
 *
 * Each target is one LLVMFuzzerTestOneInput. Built with clang and
 * -fsanitize=fuzzer it is a libFuzzer binary (suite 'fuzz'); built with
 * regress_main.c it is a plain program that feeds it every file of the
 * seed corpus and the regression inputs (suite 'unit', any compiler).
 * A target that finds a property broken prints why and aborts, which both
 * drivers report as a crash.
 */
#ifndef SATURN_FUZZ_H
#define SATURN_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints the message and aborts: a property of the code under test is
 * broken. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Reads every byte of p[0..n) and returns their sum, so that AddressSanitizer
 * checks that a buffer the code handed back is as long as it says. */
unsigned fuzz_touch(const void *p, size_t n);

/* Checks that err is a NUL-terminated message of SAT_ERR_LEN bytes at most,
 * as every SAT_E* return promises. With SATURN_FUZZ_VERBOSE set in the
 * environment it prints the message (to see why a seed is refused). */
void fuzz_check_err(const char err[SAT_ERR_LEN], int rc);

/* An in-memory file (memfd) with a path that open() accepts, for readers
 * that only take paths. fuzz_memfile_set replaces its contents; the path
 * stays the same. Created once per process, never closed. */
struct fuzz_memfile {
    int fd;
    char path[64]; /* "/proc/self/fd/N" */
};
void fuzz_memfile_set(struct fuzz_memfile *f, const void *p, size_t n);

/* Parses a job spec and, when it is valid, checks the round trip: its
 * canonical JSON parses again to the same canonical JSON, and validating
 * the parsed spec again changes nothing. Returns jobspec_parse's code (err
 * filled on failure). */
int fuzz_spec_check(const char *json, size_t len, char err[SAT_ERR_LEN]);

/* Splits off a prefix: a little-endian 16-bit length L, then L bytes (or
 * what is left). Advances *data and *size past both; false when fewer than two
 * bytes are left. */
int fuzz_take(const uint8_t **data, size_t *size, const uint8_t **part, size_t *len);

#endif
