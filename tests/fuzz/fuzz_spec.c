/* fuzz_spec.c - fuzz target: the job-spec parser and validator
 * (common/spec). Two kinds of input:
 *  - JSON text: a spec that parses must survive the canonical-JSON round
 *    trip (fuzz_spec_check);
 *  - '=' then lines "key=value": each goes through jobspec_set, as the
 *    command-line flags do, starting from the defaults; a refused line
 *    must leave the spec unchanged, and a spec that then validates must
 *    give canonical JSON that passes fuzz_spec_check.
 */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "spec/jobspec.h"
#include "util/xalloc.h"

static void set_lines(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), err[SAT_ERR_LEN];
    if (!text)
        return;
    memcpy(text, data, size);
    text[size] = 0;
    struct job_spec s, before;
    memset(&s, 0, sizeof s);
    jobspec_defaults(&s);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        memcpy(&before, &s, sizeof s);
        err[0] = 0;
        int rc = jobspec_set(&s, line, eq + 1, err);
        if (rc != 0) {
            fuzz_check_err(err, rc);
            if (memcmp(&before, &s, sizeof s) != 0)
                fuzz_fail("jobspec_set(\"%s\", \"%s\") failed but changed the spec", line, eq + 1);
        }
    }
    err[0] = 0;
    int rc = jobspec_validate(&s, err);
    if (rc != 0) {
        fuzz_check_err(err, rc);
    } else {
        char *json = jobspec_to_json(&s);
        if (!json)
            fuzz_fail("jobspec_to_json returned NULL");
        if (fuzz_spec_check(json, strlen(json), err) != 0)
            fuzz_fail("the canonical JSON of a spec built by jobspec_set is refused: %s\n%s", err,
                      json);
        sat_free(json);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[SAT_ERR_LEN];
    if (size > 0 && data[0] == '=')
        set_lines(data + 1, size - 1);
    else
        fuzz_spec_check((const char *)data, size, err);
    return 0;
}
