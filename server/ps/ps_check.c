/* ps_check.c - the parameter server checks numbers as the dispatcher
 * checks strings: a push whose gradient or BN statistics are not finite
 * (or whose BN variances are negative) is refused before it touches
 * anything, a step whose update would leave a parameter, a momentum or a
 * BN value non-finite is undone and counted as skipped (with an event),
 * and a metrics report that contradicts itself is refused (see ps.h). */
#include "ps.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "../../common/util/log.h"
#include "../../common/util/xalloc.h"

#define PS_SKIP_EVENTS 20 /* skipped steps recorded as events, one each */

/* The i-th float32 of v, which may be unaligned (request bytes). */
static float at(const void *v, size_t i)
{
    float x;
    memcpy(&x, (const char *)v + i * sizeof x, sizeof x);
    return x;
}

/* Index of the first non-finite value of v[0..n), or n. */
static size_t first_nonfinite(const void *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(at(v, i)))
            return i;
    return n;
}

int ps__check_push(const struct ps_job *ps, const float *grad, size_t n, const float *bn,
                   size_t nb, char why[SAT_ERR_LEN])
{
    size_t i = first_nonfinite(grad, n);
    if (i < n)
        return sat_errf(why, SAT_EINVAL, "field \"gradient\": value %zu is not finite", i);
    if (nb == 0)
        return 0;
    i = first_nonfinite(bn, nb);
    if (i < nb)
        return sat_errf(why, SAT_EINVAL, "field \"bn_stats\": value %zu is not finite", i);
    const struct param_table *bt = model_buffer_table(ps->model);
    for (int e = 0; e < bt->n; e++) {
        if (bt->e[e].role != ROLE_BN_VAR)
            continue;
        for (size_t k = 0; k < bt->e[e].numel; k++)
            if (at(bn, bt->e[e].offset + k) < 0.0f)
                return sat_errf(why, SAT_EINVAL,
                                "field \"bn_stats\": running variance %s[%zu] is negative",
                                bt->e[e].name, k);
    }
    return 0;
}

int ps__guard_init(struct ps_job *ps)
{
    ps->guard_p = sat_malloc((ps->param_count ? ps->param_count : 1) * sizeof(float));
    ps->guard_m = sat_malloc((ps->param_count ? ps->param_count : 1) * sizeof(float));
    ps->guard_bn = sat_malloc((ps->bn_count ? ps->bn_count : 1) * sizeof(float));
    return ps->guard_p && ps->guard_m && ps->guard_bn ? 0 : SAT_ENOMEM;
}

void ps__guard_free(struct ps_job *ps)
{
    sat_free(ps->guard_p);
    sat_free(ps->guard_m);
    sat_free(ps->guard_bn);
}

void ps__guard_save(struct ps_job *ps, size_t lo, size_t hi, bool bn)
{
    memcpy(ps->guard_p + lo, model_params(ps->model) + lo, (hi - lo) * sizeof(float));
    memcpy(ps->guard_m + lo, ps->mom + lo, (hi - lo) * sizeof(float));
    if (bn)
        memcpy(ps->guard_bn, model_buffers(ps->model), ps->bn_count * sizeof(float));
}

bool ps__guard_check(struct ps_job *ps, size_t lo, size_t hi, bool bn)
{
    float *p = model_params(ps->model), *b = model_buffers(ps->model);
    bool ok = first_nonfinite(p + lo, hi - lo) == hi - lo &&
              first_nonfinite(ps->mom + lo, hi - lo) == hi - lo &&
              (!bn || first_nonfinite(b, ps->bn_count) == ps->bn_count);
    if (ok)
        return true;
    memcpy(p + lo, ps->guard_p + lo, (hi - lo) * sizeof(float));
    memcpy(ps->mom + lo, ps->guard_m + lo, (hi - lo) * sizeof(float));
    if (bn)
        memcpy(b, ps->guard_bn, ps->bn_count * sizeof(float));
    return false;
}

void ps__step_skipped(struct ps_job *ps, uint64_t step, const char *why)
{
    ps->skipped++;
    log_warn("ps %s: step %" PRIu64 " skipped: %s", ps->job->id, step, why);
    if (ps->skipped <= PS_SKIP_EVENTS)
        coord_event(ps->c, ps->job, "step_skipped", "", "step %" PRIu64 " skipped: %s%s", step,
                    why,
                    ps->skipped == PS_SKIP_EVENTS ? " (further skips are only counted)" : "");
}

/* A time or rate: finite and not negative. */
static bool amount_ok(double v)
{
    return isfinite(v) && v >= 0;
}

int ps__check_metrics(const Saturn__V1__ReportMetricsRequest *req, char why[SAT_ERR_LEN])
{
    if (req->train_correct > req->train_seen)
        return sat_errf(why, SAT_EINVAL,
                        "field \"train_correct\": %" PRIu64 " is more than train_seen (%" PRIu64
                        ")",
                        req->train_correct, req->train_seen);
    if (req->eval_correct > req->eval_seen)
        return sat_errf(why, SAT_EINVAL,
                        "field \"eval_correct\": %" PRIu64 " is more than eval_seen (%" PRIu64 ")",
                        req->eval_correct, req->eval_seen);
    if (!amount_ok(req->loss))
        return sat_errf(why, SAT_EINVAL, "field \"loss\": must be finite and >= 0");
    const struct {
        const char *name;
        double v;
    } amounts[] = {
        {"step_seconds", req->step_seconds},       {"pull_seconds", req->pull_seconds},
        {"compute_seconds", req->compute_seconds}, {"push_seconds", req->push_seconds},
        {"images_per_second", req->images_per_second},
    };
    for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++)
        if (!amount_ok(amounts[i].v))
            return sat_errf(why, SAT_EINVAL, "field \"%s\": must be finite and >= 0",
                            amounts[i].name);
    return 0;
}
