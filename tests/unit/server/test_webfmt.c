/* test_webfmt.c - saturnd's HTTP text helpers (server/web/webfmt.c) and the
 * capped string buffer (common/util/strbuf.c). */
#include "check.h"
#include "util/err.h"
#include "util/strbuf.h"
#include "util/xalloc.h"
#include "webfmt.h"

#include <math.h>

/* Runs one escaper on s and compares with want. */
static int esc_is(void (*fn)(struct strbuf *, const char *), const char *s, const char *want)
{
    struct strbuf b;
    strbuf_init(&b, 1 << 20);
    fn(&b, s);
    int ok = strbuf_error(&b) == 0 && b.p && strcmp(b.p, want) == 0;
    if (!ok)
        fprintf(stderr, "escaped \"%s\" -> \"%s\", want \"%s\"\n", s, b.p ? b.p : "(null)", want);
    strbuf_free(&b);
    return ok;
}

static int value_is(double v, const char *want)
{
    struct strbuf b;
    strbuf_init(&b, 64);
    webfmt_prom_value(&b, v);
    int ok = b.p && strcmp(b.p, want) == 0;
    if (!ok)
        fprintf(stderr, "value %.17g -> \"%s\", want \"%s\"\n", v, b.p ? b.p : "(null)", want);
    strbuf_free(&b);
    return ok;
}

static int label_is(double v, double step, const char *want)
{
    char buf[48];
    webfmt_tick_label(buf, sizeof buf, v, step);
    int ok = strcmp(buf, want) == 0;
    if (!ok)
        fprintf(stderr, "tick %.17g (step %g) -> \"%s\", want \"%s\"\n", v, step, buf, want);
    return ok;
}

static void test_strbuf(void)
{
    struct strbuf b;
    strbuf_init(&b, 10);
    strbuf_puts(&b, "abc");
    strbuf_printf(&b, "%d", 1234);
    CHECK_EQ_INT(b.len, 7);
    CHECK(strcmp(b.p, "abc1234") == 0);
    strbuf_puts(&b, "toolong"); /* past the cap: sticky, contents kept */
    CHECK_EQ_INT(strbuf_error(&b), SAT_ETOOBIG);
    CHECK(strcmp(b.p, "abc1234") == 0);
    strbuf_puts(&b, "x");
    CHECK_EQ_INT(b.len, 7);
    strbuf_free(&b);
    CHECK_EQ_INT(strbuf_error(&b), 0);

    /* A long printf goes through the second vsnprintf. */
    strbuf_init(&b, 1 << 20);
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    strbuf_printf(&b, "<%s>", big);
    CHECK_EQ_INT(b.len, 1001);
    CHECK(b.p[0] == '<' && b.p[1000] == '>' && b.p[1001] == 0);
    size_t len = 0;
    char *p = strbuf_steal(&b, &len);
    CHECK_EQ_INT(len, 1001);
    CHECK(b.p == NULL && b.len == 0);
    sat_free(p);

    /* Exactly at the cap is fine; empty steal gives "". */
    strbuf_init(&b, 3);
    strbuf_puts(&b, "abc");
    CHECK_EQ_INT(strbuf_error(&b), 0);
    strbuf_free(&b);
    p = strbuf_steal(&b, &len);
    CHECK(p && p[0] == 0 && len == 0);
    sat_free(p);

    /* Allocation failure: sticky ENOMEM, nothing leaks. */
    strbuf_init(&b, 1 << 20);
    sat_alloc_fail_after(0);
    strbuf_puts(&b, "abc");
    sat_alloc_fail_after(-1);
    CHECK_EQ_INT(strbuf_error(&b), SAT_ENOMEM);
    strbuf_puts(&b, "abc");
    CHECK(b.p == NULL);
    strbuf_free(&b);
}

static void test_escaping(void)
{
    CHECK(esc_is(webfmt_html, "plain", "plain"));
    CHECK(esc_is(webfmt_html, "<script>alert('x&y')</script>",
                 "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;"));
    CHECK(esc_is(webfmt_html, "a\"b", "a&quot;b"));
    CHECK(esc_is(webfmt_html, "bell\x07!", "bell\xef\xbf\xbd!"));
    CHECK(esc_is(webfmt_html, "", ""));
    CHECK(esc_is(webfmt_prom_label, "job-1", "job-1"));
    CHECK(esc_is(webfmt_prom_label, "a\\b\"c\nd", "a\\\\b\\\"c\\nd"));
    CHECK(esc_is(webfmt_prom_label, "<&>'", "<&>'"));
}

static void test_values(void)
{
    CHECK(value_is(0, "0"));
    CHECK(value_is(-0.0, "0"));
    CHECK(value_is(42, "42"));
    CHECK(value_is(123456789012.0, "123456789012"));
    CHECK(value_is(0.25, "0.25"));
    CHECK(value_is((double)0.1f, "0.100000001"));
    CHECK(value_is(NAN, "NaN"));
    CHECK(value_is(INFINITY, "+Inf"));
    CHECK(value_is(-INFINITY, "-Inf"));
    CHECK(value_is(1e300, "1e+300"));
}

static void test_axes(void)
{
    struct webfmt_axis a;
    webfmt_axis_init(&a, 0, 1000, 7, 0);
    CHECK_CLOSE(a.lo, 0, 1e-12, 0);
    CHECK_CLOSE(a.hi, 1000, 1e-9, 0);
    CHECK_CLOSE(a.step, 200, 1e-9, 0);
    CHECK_EQ_INT(a.n, 6);
    /* The range always covers the data, with at most ~target ticks. */
    const double cases[][2] = {{0.31, 2.27}, {87.2, 91.6}, {-3, 7},         {0, 93750},
                               {1, 8},       {5, 5},       {0.0004, 0.0009}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        webfmt_axis_init(&a, cases[i][0], cases[i][1], 6, 0);
        CHECK(a.lo <= cases[i][0] && a.hi >= cases[i][1]);
        CHECK(a.n >= 2 && a.n <= 12);
        CHECK_CLOSE(a.lo + (a.n - 1) * a.step, a.hi, 1e-9 * fmax(1, fabs(a.hi)), 0);
    }
    /* Integer axes (epochs): step >= 1; one point gets a range around it. */
    webfmt_axis_init(&a, 1, 3, 7, 1);
    CHECK(a.step >= 1 && a.lo <= 1 && a.hi >= 3);
    webfmt_axis_init(&a, 1, 1, 7, 1);
    CHECK(a.step >= 1 && a.lo < 1 && a.hi > 1);
    /* Non-finite or empty ranges fall back to something drawable. */
    webfmt_axis_init(&a, INFINITY, -INFINITY, 6, 0);
    CHECK(isfinite(a.lo) && isfinite(a.hi) && a.hi > a.lo);
    webfmt_axis_init(&a, NAN, 3, 6, 0);
    CHECK(isfinite(a.lo) && isfinite(a.hi) && a.hi > a.lo);

    CHECK(label_is(0, 0.5, "0.0"));
    CHECK(label_is(1.5, 0.5, "1.5"));
    CHECK(label_is(2.5, 2.5, "2.5"));
    CHECK(label_is(0.25, 0.25, "0.25"));
    CHECK(label_is(80, 5, "80"));
    CHECK(label_is(20000, 5000, "20k"));
    CHECK(label_is(1500000, 500000, "1.5M"));
    CHECK(label_is(1e-17, 0.2, "0.0"));
    CHECK(label_is(-1e-17, 0.2, "0.0"));
}

int main(void)
{
    test_strbuf();
    test_escaping();
    test_values();
    test_axes();
    return check_summary("test_webfmt");
}
