/* file.h - whole-file I/O: open a regular file, read and write fully, and
 * replace a file atomically.
 *
 * Every call retries EINTR and short counts. Errors are SAT_E* codes with a
 * message naming the path in the caller's err[SAT_ERR_LEN] (which may be NULL).
 *
 * Atomic replacement is the durability promise of docs/design.md ("write,
 * fsync, rename"), written once: the data goes to a new temporary file in the
 * target's directory (PATH.tmp.PID.N, created with O_CREAT|O_EXCL and the
 * caller's mode, less the umask), which is fsynced, renamed over PATH, and the
 * directory fsynced so that the rename itself is durable. Until the rename,
 * a failure removes the temporary file and leaves PATH as it was. Readers of
 * PATH see either the old file or the whole new one, never a part.
 */
#ifndef SATURN_FILE_H
#define SATURN_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Opens `path` read-only and checks that it is a regular file. On success
 * *fd is owned by the caller (close it with close()) and *size holds the
 * file's size. On failure returns SAT_ENOENT (no such file) or SAT_EIO
 * (anything else, "not a regular file" included) with a message naming the
 * path, and no descriptor is left open (*fd is -1). */
int sat_file_open(const char *path, int *fd, uint64_t *size, char err[SAT_ERR_LEN]);

/* Reads up to len bytes from fd, retrying short reads and EINTR; *got < len
 * only at end of file. Returns 0, or SAT_EIO with a message naming `path`
 * (*got then holds what was read before the error). */
int sat_file_read_full(int fd, const char *path, void *buf, size_t len, size_t *got,
                       char err[SAT_ERR_LEN]);

/* Reads the whole regular file at `path`, of at most `max` bytes, into a new
 * buffer with a NUL after the last byte: *buf (free with sat_free) and *len.
 * Returns 0, or the errors of sat_file_open, SAT_ETOOBIG (more than max
 * bytes), SAT_ENOMEM or SAT_EIO, with a message naming the path; *buf is
 * then NULL. */
int sat_file_read_all(const char *path, size_t max, char **buf, size_t *len, char err[SAT_ERR_LEN]);

/* Writes all len bytes to fd, retrying short writes and EINTR. Returns 0, or
 * SAT_EIO (SAT_ETOOBIG: the file system is full or the file too large) with
 * a message naming `path`. */
int sat_file_write_full(int fd, const char *path, const void *buf, size_t len,
                        char err[SAT_ERR_LEN]);

/* Replaces `path` atomically by the len bytes at buf (see the top of this
 * file), the new file created with `mode` (e.g. 0644, 0600). Returns 0,
 * SAT_ENOMEM, SAT_ENOENT (the directory does not exist) or SAT_EIO with a
 * message naming the path; on failure PATH is untouched and no temporary file
 * is left, except that a failed fsync of the directory after the rename is
 * reported as SAT_EIO with PATH already replaced. */
int sat_file_write_atomic(const char *path, const void *buf, size_t len, int mode,
                          char err[SAT_ERR_LEN]);

/* ---------------------------------------------------------------------------
 * The streaming form, for writers that produce a file piecewise:
 *
 *     struct sat_file_atomic a;
 *     if (sat_file_atomic_begin(&a, path, 0644, err) != 0) return ...;
 *     while (...) sat_file_atomic_write(&a, piece, n, err);   // or write(a.fd, ...)
 *     rc = sat_file_atomic_commit(&a, err);                   // or sat_file_atomic_abort(&a)
 *
 * After a successful begin, exactly one of commit or abort must be called;
 * both release everything the handle holds. A failed write is remembered, so
 * a writer may check only the result of commit, which then removes the
 * temporary file and returns the first error.
 */
struct sat_file_atomic {
    int fd;                /* public, read-only: the temporary file, open for writing */
    int err;               /* private: the first error of a write, or 0 */
    char *path;            /* private: the target */
    char *tmp;             /* private: the temporary file */
    char *dir;             /* private: the target's directory */
    char msg[SAT_ERR_LEN]; /* private: the message of err */
};

/* Creates the temporary file for `path` with `mode`. Returns 0, or SAT_ENOMEM
 * / SAT_ENOENT / SAT_EIO with a message naming the path; on failure nothing is
 * left to release and a->fd is -1. */
int sat_file_atomic_begin(struct sat_file_atomic *a, const char *path, int mode,
                          char err[SAT_ERR_LEN]);

/* Appends len bytes. Returns 0, or the error of sat_file_write_full naming
 * the target; the error is also kept for commit. A write after a failed one
 * returns the first error again and writes nothing. */
int sat_file_atomic_write(struct sat_file_atomic *a, const void *buf, size_t len,
                          char err[SAT_ERR_LEN]);

/* fsyncs and closes the temporary file, renames it over the target and
 * fsyncs the directory. Returns 0, or the first error (of an earlier write,
 * or of this call) with a message naming the path; see sat_file_write_atomic
 * for the state of the target on failure. The handle is released either way. */
int sat_file_atomic_commit(struct sat_file_atomic *a, char err[SAT_ERR_LEN]);

/* Closes and removes the temporary file and releases the handle; the target
 * is untouched. Safe on a handle whose begin failed. */
void sat_file_atomic_abort(struct sat_file_atomic *a);

/* Fault injection for tests: after `n` more successful write() calls of
 * sat_file_write_full, each one fails with EIO; n < 0 disables injection
 * (the default). */
void sat_file_fail_writes_after(long n);

#endif
