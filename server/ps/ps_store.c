/* ps_store.c - the storage Pull replies are sent from (see ps.h).
 *
 * A Pull reply's values are the shard's slice of the model's parameters
 * (and the BN buffers with shard 0). Packing them would copy every pulled
 * byte once more on the loop thread; instead the reply points gRPC at the
 * storage itself and takes references on a hold, which gRPC drops from its
 * own threads once the bytes are written (or the call is gone). The PS
 * keeps one reference of its own, so refs > 1 means "a reply is still
 * being sent from this storage".
 *
 * The storage must not change under a reply. Every write of the
 * parameters or buffers after set-up goes through ps__store_own first: if
 * no reply holds the storage (the usual case: a worker computes for a
 * whole step between its Pull and the update its Push completes), it is
 * written in place; otherwise the model gets a fresh copy to write, and
 * the old storage moves into the hold, freed by whichever drops the last
 * reference. Only the loop thread takes references, so a count of 1 seen
 * there stays 1.
 *
 * SATURN_PS_STORE_COPY=1 in saturnd's environment (tests) makes every
 * write take the copy, as if a reply always held the storage: a job must
 * then end with the same parameters, bit for bit.
 */
#include "ps.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/nn/model.h"
#include "../../common/util/log.h"
#include "../../common/util/xalloc.h"

struct ps_store {
    struct rpc_hold hold;    /* first: the release gets this struct */
    float *params, *buffers; /* NULL while the model owns the storage */
};

static void store_release(struct rpc_hold *h)
{
    struct ps_store *st = (struct ps_store *)h;
    sat_free(st->params);
    sat_free(st->buffers);
    sat_free(st);
}

/* Drops the PS's reference; when move is set, the storage moves into the
 * hold first (the model gets p and b in its place), to be freed with the
 * last reference, which may be this one. */
static void store_drop(struct ps_job *ps, bool move, float *p, float *b)
{
    struct ps_store *st = ps->store;
    ps->store = NULL;
    if (move) {
        st->params = model_swap_params(ps->model, p);
        st->buffers = model_swap_buffers(ps->model, b);
    }
    if (atomic_fetch_sub(&st->hold.refs, 1) == 1)
        store_release(&st->hold);
}

struct rpc_hold *ps__store_hold(struct ps_job *ps)
{
    if (!ps->store) {
        ps->store = sat_calloc(1, sizeof *ps->store);
        if (!ps->store)
            return NULL;
        atomic_init(&ps->store->hold.refs, 1);
        ps->store->hold.release = store_release;
    }
    return &ps->store->hold;
}

static bool store_always_copy(void)
{
    static int on = -1;
    if (on < 0) {
        const char *v = getenv("SATURN_PS_STORE_COPY");
        on = v && strcmp(v, "1") == 0;
    }
    return on;
}

int ps__store_own(struct ps_job *ps)
{
    if (!ps->store || (atomic_load(&ps->store->hold.refs) <= 1 && !store_always_copy()))
        return 0;
    const size_t np = ps->param_count ? ps->param_count : 1;
    const size_t nb = ps->bn_count ? ps->bn_count : 1;
    float *p = sat_malloc_aligned(np * sizeof(float));
    float *b = sat_malloc_aligned(nb * sizeof(float));
    if (!p || !b) {
        sat_free(p);
        sat_free(b);
        log_error("ps %s: out of memory copying the parameters a Pull reply is sending",
                  ps->job->id);
        return SAT_ENOMEM;
    }
    memcpy(p, model_params(ps->model), ps->param_count * sizeof(float));
    memcpy(b, model_buffers(ps->model), ps->bn_count * sizeof(float));
    store_drop(ps, true, p, b);
    ps->store_copies++;
    return 0;
}

void ps__store_free(struct ps_job *ps)
{
    if (ps->store_copies)
        log_info("ps %s: %" PRIu64 " update(s) wrote a fresh copy of the parameters while a "
                 "Pull reply was being sent from them",
                 ps->job->id, ps->store_copies);
    if (ps->store)
        store_drop(ps, atomic_load(&ps->store->hold.refs) > 1, NULL, NULL);
}
