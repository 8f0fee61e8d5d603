/* paths.h - where a job's files may come from (paths.c). A job spec sent
 * to saturnd never names a host path: data sets resolve under the
 * operator's data roots (--data-root, repeatable) and init_from is a job
 * id or a plain file name in the import directory (--import-dir). Errors
 * about a name a client chose say nothing about files outside those
 * places; the daemon's log names the roots.
 */
#ifndef SATURND_PATHS_H
#define SATURND_PATHS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "../common/spec/jobspec.h"
#include "../common/util/err.h"

#define COORD_MAX_DATA_ROOTS 16
#define COORD_DEFAULT_DATA_ROOT "/usr/share/datasets"
#define COORD_IMPORT_SUBDIR "imports" /* default import dir, under the state dir */

/* Set once at start-up, read-only after (the PS's set-up reads it from the
 * thread pool). */
struct coord_paths {
    char roots[COORD_MAX_DATA_ROOTS][PATH_MAX]; /* canonical (realpath) */
    int nroots;
    char import_dir[PATH_MAX]; /* canonical */
    int import_fd;             /* O_DIRECTORY, or -1 */
};

/* Canonicalises the data roots (none given: COORD_DEFAULT_DATA_ROOT; a root
 * that does not exist is kept as given, with a warning) and creates (0700)
 * and opens the import dir (NULL: STATE_DIR/imports). Returns 0, or an
 * error with err set; p->import_fd is -1 then. */
int coord_paths_init(struct coord_paths *p, const char *const *roots, int nroots,
                     const char *import_dir, const char *state_dir, char err[SAT_ERR_LEN]);
void coord_paths_close(struct coord_paths *p);

/* Submit-time check of data_dir and init_from: SAT_EINVAL naming the field
 * when data_dir is outside every root or init_from is neither a job id nor
 * a plain file name. A data_dir inside a root that does not exist (yet) is
 * accepted: the job fails when it starts. */
int coord_paths_check_spec(const struct coord_paths *p, const struct job_spec *s,
                           char err[SAT_ERR_LEN]);

/* The directory a job's data set is read from, into out (PATH_MAX): the
 * data_dir (a name under a root, or an absolute path inside one) or, for
 * "", the data set's own directory in the first root that has it; "" for a
 * data set without files. SAT_EINVAL outside the roots, SAT_ENOENT when
 * there is no such directory under them. Safe from any thread. */
int coord_paths_data_dir(const struct coord_paths *p, const char *dataset, const char *data_dir,
                         char *out, char err[SAT_ERR_LEN]);

/* True when s has the form of a job id ("job-<n>"). */
bool coord_paths_is_job_id(const char *s);

/* Opens the file `name` of the import dir for reading without following a
 * link, and checks that it is a regular file. On success *fd belongs to
 * the caller. */
int coord_paths_open_import(const struct coord_paths *p, const char *name, int *fd,
                            char err[SAT_ERR_LEN]);

#endif
