/* fuzz_spec.c - fuzz target: the job-spec parser and validator
 * (common/spec). The input is JSON text; a spec that parses must survive
 * the canonical-JSON round trip (fuzz_spec_check). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[SAT_ERR_LEN];
    fuzz_spec_check((const char *)data, size, err);
    return 0;
}
