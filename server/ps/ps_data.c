/* ps_data.c - Worker.FetchData: saturnd streams each rank its part of the
 * job's data set, so workers need no data files.
 *
 *   train: shard `rank` of `world_size`, dataset_shard(seed, rank, world)
 *          (the trainer's per-epoch order and augmentation then come from
 *          (seed, epoch, rank) on the worker); with one worker, the whole
 *          set in file order, as saturn-train takes it, so that a 1-worker
 *          job is bit-for-bit the local run;
 *   test:  the contiguous range [rank*n/W, (rank+1)*n/W) of the test set.
 *
 * A call sends the window [first, first + max_examples) of the shard (at
 * most FETCH_WINDOW_BYTES of pixels: ask again from `first` for the rest)
 * as chunks of at most 1 MiB of pixels (and 4096 images). The rpc layer
 * queues what a call sends until gRPC takes it, so the window bounds what
 * saturnd holds per stream. Pixels travel as (N, H, W, C) uint8.
 */
#include "ps.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../../common/util/utf8.h"
#include "../../common/util/xalloc.h"

#define FETCH_CHUNK_BYTES (1u << 20)
#define FETCH_CHUNK_MAX 4096
#define FETCH_WINDOW_BYTES (2u << 20)

void ps_fetch_data(struct ps_job *ps, struct rpc_call *call,
                   const Saturn__V1__FetchDataRequest *req)
{
    if (!ps->ready) {
        rpc_reply_err(call, SAT_ESTATE,
                      "job %s: the data set is still being loaded (call "
                      "GetLayout first)",
                      ps->job->id);
        return;
    }
    if (req->world_size != (uint32_t)ps->world || req->rank >= req->world_size) {
        rpc_reply_err(call, SAT_EINVAL,
                      "rank %" PRIu32 " of %" PRIu32 " does not match the job's %d workers",
                      req->rank, req->world_size, ps->world);
        return;
    }
    bool train = strcmp(req->split, "train") == 0;
    if (!train && strcmp(req->split, "test") != 0) {
        rpc_reply_err(call, SAT_EINVAL, "field \"split\": \"%.*s\" is not \"train\" or \"test\"",
                      (int)sat_utf8_cut(req->split, 32), req->split);
        return;
    }
    const struct dataset *ds = train ? &ps->train : &ps->test;
    uint32_t n = (uint32_t)ds->n, W = (uint32_t)ps->world, r = req->rank;
    uint32_t total, lo = 0;
    uint32_t *idx = NULL;
    if (train) {
        total = dataset_shard_size(n, (int)r, (int)W);
        idx = sat_malloc((size_t)(total ? total : 1) * sizeof *idx);
        if (!idx) {
            rpc_reply_err(call, SAT_ENOMEM, "out of memory");
            return;
        }
        if (W == 1) {
            /* One worker trains on the set in file order, as saturn-train
             * does, so a 1-worker job is bit-for-bit the local run. */
            for (uint32_t i = 0; i < total; i++)
                idx[i] = i;
        } else {
            dataset_shard(idx, n, ps->spec.seed, (int)r, (int)W);
        }
    } else {
        lo = (uint32_t)((uint64_t)r * n / W);
        total = (uint32_t)((uint64_t)(r + 1) * n / W) - lo;
    }
    if (req->first > total) {
        sat_free(idx);
        char msg[128];
        snprintf(msg, sizeof msg, "first %" PRIu32 " is past the shard's %" PRIu32 " examples",
                 req->first, total);
        rpc_reply_status(call, GRPC_STATUS_OUT_OF_RANGE, msg);
        return;
    }
    size_t img = (size_t)ds->c * ds->h * ds->w;
    uint32_t count = total - req->first;
    if (req->max_examples && req->max_examples < count)
        count = req->max_examples;
    uint32_t window = (uint32_t)(FETCH_WINDOW_BYTES / (img ? img : 1));
    if (window < 1)
        window = 1;
    if (count > window)
        count = window;
    /* A chunk (pixels + labels + framing) must fit the message cap. */
    size_t chunk_bytes = FETCH_CHUNK_BYTES;
    if (ps->c->max_msg / 2 < chunk_bytes)
        chunk_bytes = ps->c->max_msg / 2;
    uint32_t per = (uint32_t)((chunk_bytes - 1024) / (img + 1));
    if (per < 1)
        per = 1;
    if (per > FETCH_CHUNK_MAX)
        per = FETCH_CHUNK_MAX;
    uint8_t *pix = sat_malloc((size_t)(per < count ? per : (count ? count : 1)) * img);
    uint8_t *lab = sat_malloc((size_t)(per < count ? per : (count ? count : 1)));
    if (!pix || !lab) {
        sat_free(idx);
        sat_free(pix);
        sat_free(lab);
        rpc_reply_err(call, SAT_ENOMEM, "out of memory");
        return;
    }
    int rc = 0;
    for (uint32_t done = 0; done < count && rc == 0; done += per) {
        uint32_t k = count - done < per ? count - done : per;
        for (uint32_t i = 0; i < k; i++) {
            uint32_t pos = req->first + done + i;
            uint32_t src = train ? idx[pos] : lo + pos;
            const uint8_t *in = ds->pixels + (size_t)src * img; /* (C, H, W) */
            uint8_t *out = pix + (size_t)i * img;               /* (H, W, C) */
            size_t hw = (size_t)ds->h * ds->w;
            for (size_t p = 0; p < hw; p++)
                for (int ch = 0; ch < ds->c; ch++)
                    out[p * (size_t)ds->c + (size_t)ch] = in[(size_t)ch * hw + p];
            lab[i] = ds->labels[src];
        }
        Saturn__V1__DataChunk m = SATURN__V1__DATA_CHUNK__INIT;
        m.first = req->first + done;
        m.count = k;
        m.total = total;
        m.height = (uint32_t)ds->h;
        m.width = (uint32_t)ds->w;
        m.channels = (uint32_t)ds->c;
        m.images.data = pix;
        m.images.len = (size_t)k * img;
        m.labels.data = lab;
        m.labels.len = k;
        m.num_classes = (uint32_t)ds->nclass;
        rc = rpc_stream_send(call, &m.base);
    }
    sat_free(idx);
    sat_free(pix);
    sat_free(lab);
    if (rc == SAT_ECANCELLED || rc == 0) {
        rpc_stream_end(call); /* a gone client's status is dropped */
        return;
    }
    rpc_reply_err(call, rc, "cannot queue the data: %s", sat_strerror(rc));
}
