/* fuzz_safetensors.c - fuzz target: the safetensors loader
 * (common/ckpt/safetensors.c), from memory. A file that loads must hand
 * back tensors whose data is as long as dtype and shape say and aligned to
 * the element size, each found again by its name. */
#include "fuzz.h"

#include <stdint.h>

#include "ckpt/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct st_file *f = NULL;
    char err[SAT_ERR_LEN];
    err[0] = 0;
    int rc = st_open_mem(&f, data, size, err);
    if (rc != 0) {
        fuzz_check_err(err, rc);
        return 0;
    }
    int n = st_count(f);
    if (n < 0)
        fuzz_fail("st_count %d", n);
    for (int i = 0; i < n; i++) {
        const struct st_tensor *t = st_get(f, i);
        if (!t || !t->name)
            fuzz_fail("tensor %d of %d missing", i, n);
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
            fuzz_fail("tensor \"%s\": ndim %d", t->name, t->ndim);
        size_t es = st_dtype_size(t->dtype), bytes = es;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0)
                fuzz_fail("tensor \"%s\": dimension %d is %lld", t->name, d,
                          (long long)t->shape[d]);
            bytes *= (size_t)t->shape[d];
        }
        if (bytes > size)
            fuzz_fail("tensor \"%s\": %zu bytes from a %zu-byte file", t->name, bytes, size);
        if (bytes && (uintptr_t)t->data % es)
            fuzz_fail("tensor \"%s\": data not aligned to %zu bytes", t->name, es);
        fuzz_touch(t->data, bytes);
        if (st_find(f, t->name) != t)
            fuzz_fail("tensor \"%s\" is not found by its name", t->name);
        st_dtype_name(t->dtype);
    }
    const char *v = st_meta_get(f, "format");
    if (v)
        fuzz_touch(v, 1);
    st_close(f);
    return 0;
}
