/* paths.c - data roots and the import dir: the only places a job spec can
 * make saturnd read (see paths.h). */
#include "paths.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util/log.h"
#include "../common/util/utf8.h"

int coord_paths_init(struct coord_paths *p, const char *const *roots, int nroots,
                     const char *import_dir, const char *state_dir, char err[SAT_ERR_LEN])
{
    memset(p, 0, sizeof *p);
    p->import_fd = -1;
    static const char *const def[] = {COORD_DEFAULT_DATA_ROOT};
    if (nroots == 0) {
        roots = def;
        nroots = 1;
    }
    if (nroots > COORD_MAX_DATA_ROOTS)
        return sat_errf(err, SAT_EINVAL, "at most %d --data-root flags", COORD_MAX_DATA_ROOTS);
    for (int i = 0; i < nroots; i++) {
        char *r = p->roots[p->nroots];
        if (roots[i][0] != '/')
            return sat_errf(err, SAT_EINVAL, "--data-root %s: not an absolute path", roots[i]);
        if (!realpath(roots[i], r)) {
            log_warn("data root %s: %s (kept; data sets there will not be found)", roots[i],
                     strerror(errno));
            snprintf(r, PATH_MAX, "%s", roots[i]);
        }
        p->nroots++;
    }
    char dflt[PATH_MAX];
    if (!import_dir) {
        snprintf(dflt, sizeof dflt, "%s/%s", state_dir, COORD_IMPORT_SUBDIR);
        import_dir = dflt;
    }
    if (mkdir(import_dir, 0700) != 0 && errno != EEXIST)
        return sat_errf(err, SAT_EIO, "cannot create the import dir %s: %s", import_dir,
                        strerror(errno));
    if (!realpath(import_dir, p->import_dir))
        return sat_errf(err, SAT_EIO, "import dir %s: %s", import_dir, strerror(errno));
    p->import_fd = open(p->import_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p->import_fd < 0)
        return sat_errf(err, SAT_EIO, "cannot open the import dir %s: %s", p->import_dir,
                        strerror(errno));
    for (int i = 0; i < p->nroots; i++)
        log_info("data root %s", p->roots[i]);
    log_info("init_from files are read from the import dir %s", p->import_dir);
    return 0;
}

void coord_paths_close(struct coord_paths *p)
{
    if (p->import_fd >= 0)
        close(p->import_fd);
    p->import_fd = -1;
}

/* ==== data sets ============================================================ */

/* True if path is root itself or below it (both canonical or both as
 * written). */
static bool under(const char *path, const char *root)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return path[0] == '/';
    return strncmp(path, root, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* True if some component of s is "..". */
static bool has_dotdot(const char *s)
{
    for (const char *c = s; (c = strstr(c, "..")) != NULL; c += 2)
        if ((c == s || c[-1] == '/') && (c[2] == 0 || c[2] == '/'))
            return true;
    return false;
}

static const char *default_subdir(const char *dataset)
{
    if (strcmp(dataset, "synthetic") == 0)
        return NULL;
    return dataset; /* fashion-mnist, mnist, cifar10: a directory of that name */
}

/* Resolves candidate inside root: SAT_ENOENT if it is not there, SAT_EINVAL
 * if a link takes it out of the root, else 0 with out canonical. */
static int resolve_in(const char *root, const char *candidate, char *out)
{
    char real[PATH_MAX];
    if (!realpath(candidate, real))
        return SAT_ENOENT;
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
        return SAT_ENOENT;
    if (!under(real, root))
        return SAT_EINVAL;
    snprintf(out, PATH_MAX, "%s", real);
    return 0;
}

int coord_paths_data_dir(const struct coord_paths *p, const char *dataset, const char *data_dir,
                         char *out, char err[SAT_ERR_LEN])
{
    out[0] = 0;
    const char *sub = data_dir[0] ? data_dir : default_subdir(dataset);
    if (!sub)
        return 0;
    if (has_dotdot(sub))
        return sat_errf(err, SAT_EINVAL, "field \"data_dir\": outside the allowed data roots");
    int rc = SAT_ENOENT;
    for (int i = 0; i < p->nroots; i++) {
        char cand[PATH_MAX];
        if (sub[0] == '/') {
            if (!under(sub, p->roots[i]))
                continue;
            snprintf(cand, sizeof cand, "%s", sub);
        } else if (snprintf(cand, sizeof cand, "%s/%s", p->roots[i], sub) >= (int)sizeof cand) {
            continue;
        }
        int r = resolve_in(p->roots[i], cand, out);
        if (r == 0)
            return 0;
        if (r == SAT_EINVAL)
            rc = SAT_EINVAL;
        else if (rc != SAT_EINVAL)
            rc = SAT_ENOENT;
    }
    bool inside = sub[0] != '/';
    for (int i = 0; !inside && i < p->nroots; i++)
        inside = under(sub, p->roots[i]);
    if (rc == SAT_EINVAL || !inside) {
        log_info("data_dir \"%s\" is outside the data roots (%s%s)", sub, p->roots[0],
                 p->nroots > 1 ? ", ..." : "");
        return sat_errf(err, SAT_EINVAL, "field \"data_dir\": outside the allowed data roots");
    }
    return sat_errf(err, SAT_ENOENT, "data set %s: no directory \"%.*s\" under the data roots",
                    dataset, (int)sat_utf8_cut(sub, 120), sub);
}

/* ==== init_from ============================================================ */

bool coord_paths_is_job_id(const char *s)
{
    if (strncmp(s, "job-", 4) != 0 || !s[4])
        return false;
    for (const char *c = s + 4; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    return true;
}

static bool plain_name(const char *s)
{
    return s[0] && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
           strlen(s) <= NAME_MAX;
}

int coord_paths_check_spec(const struct coord_paths *p, const struct job_spec *s,
                           char err[SAT_ERR_LEN])
{
    if (s->data_dir[0]) {
        char dir[PATH_MAX];
        int rc = coord_paths_data_dir(p, s->dataset, s->data_dir, dir, err);
        if (rc == SAT_EINVAL)
            return rc;
    }
    if (s->init_from[0] && !coord_paths_is_job_id(s->init_from) && !plain_name(s->init_from))
        return sat_errf(err, SAT_EINVAL,
                        "field \"init_from\": must be a job id or the name of a file in "
                        "saturnd's import directory (no \"/\")");
    return 0;
}

int coord_paths_open_import(const struct coord_paths *p, const char *name, int *fd,
                            char err[SAT_ERR_LEN])
{
    *fd = -1;
    int n = (int)sat_utf8_cut(name, 120);
    if (!plain_name(name))
        return sat_errf(err, SAT_EINVAL, "init_from \"%.*s\": not a plain file name", n, name);
    int f = openat(p->import_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (f < 0) {
        int e = errno;
        log_info("init_from %s in %s: %s", name, p->import_dir, strerror(e));
        return sat_errf(err, e == ENOENT ? SAT_ENOENT : SAT_EIO,
                        "init_from \"%.*s\": %s in the import directory", n, name,
                        e == ENOENT ? "no such file" : "not a readable regular file");
    }
    struct stat st;
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(f);
        return sat_errf(err, SAT_EIO,
                        "init_from \"%.*s\": not a readable regular file in the import directory",
                        n, name);
    }
    *fd = f;
    return 0;
}
