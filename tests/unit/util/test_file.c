/* test_file.c - common/util/file.c: reading fully, and atomic replacement
 * that leaves the target untouched and no temporary file behind on failure. */
#include "check.h"
#include "util/file.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/sat-file-XXXXXX";

static const char *in_dir(const char *name)
{
    static char buf[4][256];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static int count_tmp_files(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* The whole content of path into buf (cap); its length, or -1. */
static long slurp(const char *path, char *buf, size_t cap)
{
    char err[SAT_ERR_LEN];
    int fd;
    uint64_t size;
    if (sat_file_open(path, &fd, &size, err) != 0)
        return -1;
    size_t got;
    int rc = sat_file_read_full(fd, path, buf, cap, &got, err);
    close(fd);
    if (rc != 0 || got != size)
        return -1;
    return (long)got;
}

static int content_is(const char *path, const char *want)
{
    char buf[256];
    long n = slurp(path, buf, sizeof buf);
    return n == (long)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

static void test_round_trip(void)
{
    char err[SAT_ERR_LEN];
    const char *path = in_dir("rt.bin");
    CHECK_EQ_INT(sat_file_write_atomic(path, "first", 5, 0600, err), 0);
    CHECK(content_is(path, "first"));
    struct stat st;
    CHECK_EQ_INT(stat(path, &st), 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0600);
    /* Replacing an existing file; an empty file. */
    CHECK_EQ_INT(sat_file_write_atomic(path, "second!", 7, 0644, err), 0);
    CHECK(content_is(path, "second!"));
    CHECK_EQ_INT(sat_file_write_atomic(in_dir("empty.bin"), NULL, 0, 0644, err), 0);
    CHECK(content_is(in_dir("empty.bin"), ""));

    /* The streaming form, in pieces; a path without a directory part. */
    struct sat_file_atomic a;
    CHECK_EQ_INT(sat_file_atomic_begin(&a, path, 0644, err), 0);
    CHECK(a.fd >= 0);
    CHECK_EQ_INT(sat_file_atomic_write(&a, "ab", 2, err), 0);
    CHECK_EQ_INT(sat_file_atomic_write(&a, "cd", 2, err), 0);
    CHECK_EQ_INT(sat_file_atomic_commit(&a, err), 0);
    CHECK(content_is(path, "abcd"));
    CHECK_EQ_INT(count_tmp_files(), 0);

    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_EQ_INT(chdir(dir), 0);
    CHECK_EQ_INT(sat_file_write_atomic("here.bin", "x", 1, 0644, err), 0);
    CHECK_EQ_INT(chdir(cwd), 0);
    CHECK(content_is(in_dir("here.bin"), "x"));
}

static void test_failures_leave_target(void)
{
    char err[SAT_ERR_LEN];
    const char *path = in_dir("keep.bin");
    CHECK_EQ_INT(sat_file_write_atomic(path, "old", 3, 0644, err), 0);

    /* A write that fails midway: the second piece of a stream. */
    struct sat_file_atomic a;
    CHECK_EQ_INT(sat_file_atomic_begin(&a, path, 0644, err), 0);
    CHECK_EQ_INT(sat_file_atomic_write(&a, "new-", 4, err), 0);
    sat_file_fail_writes_after(0);
    CHECK_EQ_INT(sat_file_atomic_write(&a, "data", 4, err), SAT_EIO);
    sat_file_fail_writes_after(-1);
    CHECK_STR_CONTAINS(err, "keep.bin");
    /* The failure is remembered: later writes do nothing, commit reports it. */
    CHECK_EQ_INT(sat_file_atomic_write(&a, "more", 4, err), SAT_EIO);
    err[0] = '\0';
    CHECK_EQ_INT(sat_file_atomic_commit(&a, err), SAT_EIO);
    CHECK_STR_CONTAINS(err, "keep.bin: write failed");
    CHECK(content_is(path, "old"));
    CHECK_EQ_INT(count_tmp_files(), 0);

    /* The whole-buffer form with a failing write. */
    sat_file_fail_writes_after(0);
    CHECK_EQ_INT(sat_file_write_atomic(path, "new", 3, 0644, err), SAT_EIO);
    sat_file_fail_writes_after(-1);
    CHECK(content_is(path, "old"));
    CHECK_EQ_INT(count_tmp_files(), 0);

    /* Abort. */
    CHECK_EQ_INT(sat_file_atomic_begin(&a, path, 0644, err), 0);
    CHECK_EQ_INT(sat_file_atomic_write(&a, "new", 3, err), 0);
    CHECK_EQ_INT(count_tmp_files(), 1);
    sat_file_atomic_abort(&a);
    CHECK(content_is(path, "old"));
    CHECK_EQ_INT(count_tmp_files(), 0);

    /* Every allocation failing in turn. */
    for (int n = 0; n < 3; n++) {
        sat_alloc_fail_after(n);
        int rc = sat_file_write_atomic(path, "new", 3, 0644, err);
        sat_alloc_fail_after(-1);
        CHECK_EQ_INT(rc, SAT_ENOMEM);
        CHECK_STR_CONTAINS(err, "keep.bin");
        CHECK(content_is(path, "old"));
    }
    CHECK_EQ_INT(sat_file_write_atomic(path, "new", 3, 0644, err), 0);
    CHECK(content_is(path, "new"));

    /* A directory that is a regular file, and one that does not exist (root
     * ignores permissions, so a read-only directory would prove nothing). */
    const char *under_file = in_dir("keep.bin/x.bin");
    CHECK_EQ_INT(sat_file_write_atomic(under_file, "x", 1, 0644, err), SAT_EIO);
    CHECK_STR_CONTAINS(err, under_file);
    CHECK_EQ_INT(sat_file_write_atomic(in_dir("nodir/x.bin"), "x", 1, 0644, err), SAT_ENOENT);
    CHECK_STR_CONTAINS(err, "nodir/x.bin");
    CHECK_EQ_INT(sat_file_write_atomic("", "x", 1, 0644, err), SAT_EINVAL);
    /* A target that is a directory: the rename fails, the temp file goes. */
    CHECK_EQ_INT(mkdir(in_dir("adir"), 0755), 0);
    CHECK_EQ_INT(sat_file_write_atomic(in_dir("adir"), "x", 1, 0644, err), SAT_EIO);
    CHECK_STR_CONTAINS(err, "rename failed");
    CHECK_EQ_INT(count_tmp_files(), 0);
    /* Abort after a failed begin is harmless. */
    CHECK(sat_file_atomic_begin(&a, in_dir("nodir/y"), 0644, err) != 0);
    sat_file_atomic_abort(&a);
    CHECK_EQ_INT(count_tmp_files(), 0);
}

static void test_reading(void)
{
    char err[SAT_ERR_LEN];
    int fd;
    uint64_t size;
    /* Not a regular file, and no file. */
    CHECK_EQ_INT(sat_file_open(dir, &fd, &size, err), SAT_EIO);
    CHECK_STR_CONTAINS(err, "not a regular file");
    CHECK_EQ_INT(fd, -1);
    CHECK_EQ_INT(sat_file_open("/dev/null", &fd, &size, err), SAT_EIO);
    CHECK_EQ_INT(sat_file_open(in_dir("missing"), &fd, &size, err), SAT_ENOENT);
    CHECK_STR_CONTAINS(err, "missing");

    /* Reading past the end stops at the end; a pipe gives short reads. */
    const char *path = in_dir("r.bin");
    CHECK_EQ_INT(sat_file_write_atomic(path, "0123456789", 10, 0644, err), 0);
    CHECK_EQ_INT(sat_file_open(path, &fd, &size, err), 0);
    CHECK_EQ_INT(size, 10);
    char buf[32];
    size_t got;
    CHECK_EQ_INT(sat_file_read_full(fd, path, buf, 4, &got, err), 0);
    CHECK_EQ_INT(got, 4);
    CHECK_EQ_INT(sat_file_read_full(fd, path, buf, sizeof buf, &got, err), 0);
    CHECK_EQ_INT(got, 6);
    CHECK(memcmp(buf, "456789", 6) == 0);
    close(fd);

    int p[2];
    CHECK_EQ_INT(pipe(p), 0);
    CHECK_EQ_INT(sat_file_write_full(p[1], "pipe", "abc", 3, err), 0);
    CHECK_EQ_INT(sat_file_write_full(p[1], "pipe", "de", 2, err), 0);
    close(p[1]);
    CHECK_EQ_INT(sat_file_read_full(p[0], "pipe", buf, sizeof buf, &got, err), 0);
    CHECK_EQ_INT(got, 5);
    CHECK(memcmp(buf, "abcde", 5) == 0);
    close(p[0]);
    /* A whole file into a NUL-terminated buffer, with a size limit. */
    char *all;
    size_t n;
    CHECK_EQ_INT(sat_file_read_all(path, 10, &all, &n, err), 0);
    CHECK(all && n == 10 && memcmp(all, "0123456789", 11) == 0);
    sat_free(all);
    CHECK_EQ_INT(sat_file_read_all(path, 9, &all, &n, err), SAT_ETOOBIG);
    CHECK(all == NULL);
    CHECK_STR_CONTAINS(err, "r.bin: more than the limit of 9 bytes");
    CHECK_EQ_INT(sat_file_read_all(in_dir("empty.bin"), 0, &all, &n, err), 0);
    CHECK(all && n == 0 && all[0] == '\0');
    sat_free(all);
    CHECK_EQ_INT(sat_file_read_all(in_dir("missing"), 10, &all, &n, err), SAT_ENOENT);
    CHECK_EQ_INT(sat_file_read_all(dir, 10, &all, &n, err), SAT_EIO);
    sat_alloc_fail_after(0);
    CHECK_EQ_INT(sat_file_read_all(path, 10, &all, &n, err), SAT_ENOMEM);
    sat_alloc_fail_after(-1);
    CHECK(all == NULL);

    /* A descriptor that cannot be read names the path. */
    CHECK_EQ_INT(sat_file_read_full(-1, "nofd", buf, 1, &got, err), SAT_EIO);
    CHECK_STR_CONTAINS(err, "nofd: read failed");
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    umask(022);
    test_round_trip();
    test_failures_leave_target();
    test_reading();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_EQ_INT(system(cmd), 0);
    return check_summary("file");
}
