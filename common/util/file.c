/* file.c - whole-file I/O: open a regular file, read and write fully, and
 * replace a file atomically (see file.h). */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "xalloc.h"

/* Temporary-name attempts before giving up on EEXIST (a stale PATH.tmp.PID.N
 * left by a crashed process with the same PID). */
#define TMP_ATTEMPTS 100
/* The largest single read or write (Linux moves at most ~2 GiB per call). */
#define IO_CHUNK ((size_t)1 << 30)

static _Atomic long fail_writes_after = -1;
static _Atomic unsigned tmp_counter;

void sat_file_fail_writes_after(long n)
{
    atomic_store(&fail_writes_after, n);
}

static int write_should_fail(void)
{
    return sat__fault_tick(&fail_writes_after);
}

/* ==== Reading ========================================================= */

int sat_file_open(const char *path, int *fd, uint64_t *size, char err[SAT_ERR_LEN])
{
    char ebuf[128];
    *fd = -1;
    *size = 0;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) {
        int e = errno;
        return sat_errf(err, e == ENOENT ? SAT_ENOENT : SAT_EIO, "%s: %s", path,
                        strerror_r(e, ebuf, sizeof ebuf));
    }
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return sat_errf(err, SAT_EIO, "%s: %s", path, strerror_r(e, ebuf, sizeof ebuf));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return sat_errf(err, SAT_EIO, "%s: not a regular file", path);
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

int sat_file_read_full(int fd, const char *path, void *buf, size_t len, size_t *got,
                       char err[SAT_ERR_LEN])
{
    char ebuf[128];
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        size_t chunk = len - done < IO_CHUNK ? len - done : IO_CHUNK;
        ssize_t r = read(fd, p + done, chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            *got = done;
            return sat_errf(err, SAT_EIO, "%s: read failed: %s", path,
                            strerror_r(e, ebuf, sizeof ebuf));
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

int sat_file_read_all(const char *path, size_t max, char **buf, size_t *len, char err[SAT_ERR_LEN])
{
    *buf = NULL;
    *len = 0;
    int fd;
    uint64_t size;
    int rc = sat_file_open(path, &fd, &size, err);
    if (rc != 0)
        return rc;
    if (size > max) {
        close(fd);
        return sat_errf(err, SAT_ETOOBIG, "%s: more than the limit of %zu bytes", path, max);
    }
    /* One byte more than the size tells a file that grew past max meanwhile. */
    size_t want = (size_t)size + 1;
    char *p = sat_malloc(want + 1);
    if (!p) {
        close(fd);
        return sat_errf(err, SAT_ENOMEM, "%s: out of memory", path);
    }
    size_t got;
    rc = sat_file_read_full(fd, path, p, want, &got, err);
    close(fd);
    if (rc == 0 && got > max)
        rc = sat_errf(err, SAT_ETOOBIG, "%s: more than the limit of %zu bytes", path, max);
    if (rc != 0) {
        sat_free(p);
        return rc;
    }
    p[got] = '\0';
    *buf = p;
    *len = got;
    return 0;
}

/* ==== Writing ========================================================= */

int sat_file_write_full(int fd, const char *path, const void *buf, size_t len,
                        char err[SAT_ERR_LEN])
{
    char ebuf[128];
    const uint8_t *p = buf;
    while (len > 0) {
        size_t chunk = len < IO_CHUNK ? len : IO_CHUNK;
        ssize_t w;
        if (write_should_fail()) {
            w = -1;
            errno = EIO;
        } else {
            w = write(fd, p, chunk);
        }
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            return sat_errf(err, e == ENOSPC || e == EFBIG ? SAT_ETOOBIG : SAT_EIO,
                            "%s: write failed: %s", path, strerror_r(e, ebuf, sizeof ebuf));
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* ==== Atomic replacement ============================================== */

/* The directory that holds path ("." or "/" included), as a new string. */
static char *dir_of(const char *path)
{
    size_t n = strlen(path);
    char *dir = sat_malloc(n + 2);
    if (!dir)
        return NULL;
    const char *slash = strrchr(path, '/');
    if (!slash) {
        memcpy(dir, ".", 2);
    } else if (slash == path) {
        memcpy(dir, "/", 2);
    } else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    return dir;
}

/* fsyncs a directory, so that a rename into it is durable. Returns 0 or -1
 * with errno set. */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* Some file systems cannot fsync a directory; nothing more can be done there. */
    if (rc < 0 && e != EINVAL) {
        errno = e;
        return -1;
    }
    return 0;
}

static void atomic_release(struct sat_file_atomic *a)
{
    sat_free(a->path);
    sat_free(a->tmp);
    sat_free(a->dir);
    a->path = NULL;
    a->tmp = NULL;
    a->dir = NULL;
    a->fd = -1;
}

int sat_file_atomic_begin(struct sat_file_atomic *a, const char *path, int mode,
                          char err[SAT_ERR_LEN])
{
    char ebuf[128];
    memset(a, 0, sizeof *a);
    a->fd = -1;
    if (!path || !*path)
        return sat_errf(err, SAT_EINVAL, "no path to write to");
    size_t tlen = strlen(path) + 48;
    a->path = sat_strdup(path);
    a->tmp = sat_malloc(tlen);
    /* The directory now: after the rename nothing may be left to fail but I/O. */
    a->dir = dir_of(path);
    if (!a->path || !a->tmp || !a->dir) {
        atomic_release(a);
        return sat_errf(err, SAT_ENOMEM, "%s: out of memory", path);
    }
    int e = EEXIST;
    for (int i = 0; i < TMP_ATTEMPTS && e == EEXIST; i++) {
        snprintf(a->tmp, tlen, "%s.tmp.%ld.%u", path, (long)getpid(),
                 atomic_fetch_add(&tmp_counter, 1));
        a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
        e = a->fd < 0 ? errno : 0;
    }
    if (a->fd < 0) {
        atomic_release(a);
        return sat_errf(err, e == ENOENT ? SAT_ENOENT : SAT_EIO,
                        "%s: cannot create a temporary file: %s", path,
                        strerror_r(e, ebuf, sizeof ebuf));
    }
    return 0;
}

int sat_file_atomic_write(struct sat_file_atomic *a, const void *buf, size_t len,
                          char err[SAT_ERR_LEN])
{
    if (!a->err && a->fd >= 0)
        a->err = sat_file_write_full(a->fd, a->path, buf, len, a->msg);
    if (a->err)
        sat_errf(err, a->err, "%s", a->msg);
    return a->err;
}

void sat_file_atomic_abort(struct sat_file_atomic *a)
{
    if (a->fd >= 0)
        close(a->fd);
    if (a->tmp)
        unlink(a->tmp);
    atomic_release(a);
}

int sat_file_atomic_commit(struct sat_file_atomic *a, char err[SAT_ERR_LEN])
{
    char ebuf[128];
    if (a->fd < 0 || !a->path) {
        atomic_release(a);
        return sat_errf(err, SAT_EINVAL, "atomic write: commit without a successful begin");
    }
    if (a->err) {
        int rc = sat_errf(err, a->err, "%s", a->msg);
        sat_file_atomic_abort(a);
        return rc;
    }
    const char *what = "fsync";
    int rc = fsync(a->fd);
    int e = errno;
    if (close(a->fd) != 0 && rc == 0) {
        e = errno;
        what = "close";
        rc = -1;
    }
    a->fd = -1;
    if (rc == 0 && rename(a->tmp, a->path) != 0) {
        e = errno;
        what = "rename";
        rc = -1;
    }
    if (rc != 0) {
        unlink(a->tmp);
        rc = sat_errf(err, SAT_EIO, "%s: %s failed: %s", a->path, what,
                      strerror_r(e, ebuf, sizeof ebuf));
    } else if (fsync_dir(a->dir) != 0) {
        e = errno;
        rc = sat_errf(err, SAT_EIO, "%s: written, but fsync of its directory failed: %s", a->path,
                      strerror_r(e, ebuf, sizeof ebuf));
    }
    atomic_release(a);
    return rc;
}

int sat_file_write_atomic(const char *path, const void *buf, size_t len, int mode,
                          char err[SAT_ERR_LEN])
{
    struct sat_file_atomic a;
    int rc = sat_file_atomic_begin(&a, path, mode, err);
    if (rc != 0)
        return rc;
    sat_file_atomic_write(&a, buf, len, NULL);
    return sat_file_atomic_commit(&a, err);
}
