/* chart_main.c - saturn-chart: the dashboard's SVG line chart (chart.c)
 * drawn from a JSON description, for pages made outside saturnd (the study
 * page, docs/results.md). Reads the description from a file or stdin,
 * writes one standalone SVG:
 *
 *   saturn-chart chart.json -o chart.svg
 *
 *   {"id": "acc", "title": "...", "xlabel": "epoch", "ylabel": "test accuracy",
 *    "ysuffix": "%", "xint": true, "xmin": 0, "xmax": 8,       (all optional)
 *    "series": [{"label": "W4A4 CG-PACT", "color": "#0969da" | 3,
 *                "dashed": false, "dots": true, "points": [[1, 84.2], [2, 87.9]]}]}
 *
 * A colour is "#rrggbb" or an index into the dashboard's palette (default:
 * the series' index). Exit status 0, or 2 with a message for a bad
 * description: at most 64 series of 100000 finite points.
 */
#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"

#include "../../common/util/strbuf.h"
#include "../../common/util/xalloc.h"

#define MAX_SERIES 64
#define MAX_POINTS 100000
#define MAX_INPUT (64u << 20)

static int fail(const char *what)
{
    fprintf(stderr, "saturn-chart: %s\n", what);
    return 2;
}

static char *read_all(FILE *f)
{
    size_t n = 0, cap = 1 << 16;
    char *s = sat_malloc(cap);
    while (s) {
        n += fread(s + n, 1, cap - n - 1, f);
        if (ferror(f) || n + 1 < cap || cap >= MAX_INPUT)
            break;
        char *t = sat_realloc(s, cap * 2);
        if (!t)
            break;
        s = t;
        cap *= 2;
    }
    if (s && (ferror(f) || n + 1 >= cap)) { /* an error, or too long */
        sat_free(s);
        return NULL;
    }
    if (s)
        s[n] = '\0';
    return s;
}

static const char *text(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double number(const cJSON *o, const char *k, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : def;
}

static bool flag(const cJSON *o, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* "#rrggbb" exactly (it goes into an SVG attribute as it is). */
static bool is_hex_color(const char *s)
{
    if (strlen(s) != 7 || s[0] != '#')
        return false;
    for (int i = 1; i < 7; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* 1..32 of [A-Za-z0-9_-] (it becomes an element id as it is). */
static bool is_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

static const char *series_color(const cJSON *o, int k)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "color");
    if (cJSON_IsString(c))
        return is_hex_color(c->valuestring) ? c->valuestring : NULL;
    if (cJSON_IsNumber(c))
        return c->valuedouble >= 0 && c->valuedouble < 1e6 ? chart_color((size_t)c->valuedouble)
                                                           : NULL;
    return chart_color((size_t)k);
}

/* The points of series o into v: [[x, y], ...], finite numbers. */
static const char *read_points(const cJSON *o, struct ptvec *v)
{
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(o, "points");
    if (!cJSON_IsArray(pts))
        return "a series has no \"points\" array";
    if (cJSON_GetArraySize(pts) > MAX_POINTS)
        return "a series has too many points";
    const cJSON *p;
    cJSON_ArrayForEach(p, pts)
    {
        const cJSON *x = cJSON_GetArrayItem(p, 0), *y = cJSON_GetArrayItem(p, 1);
        if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2 || !cJSON_IsNumber(x) ||
            !cJSON_IsNumber(y) || !isfinite(x->valuedouble) || !isfinite(y->valuedouble))
            return "a point is not [x, y] of finite numbers";
        ptvec_push(v, x->valuedouble, y->valuedouble, false);
    }
    ptvec_sort(v);
    return v->err ? "out of memory" : NULL;
}

static int draw(const cJSON *d, struct strbuf *b)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(d, "series");
    int ns = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (ns < 0 || ns > MAX_SERIES)
        return fail("\"series\" must be an array of at most 64 series");
    struct ptvec v[MAX_SERIES];
    struct series s[MAX_SERIES];
    char keys[MAX_SERIES][8];
    memset(v, 0, sizeof v);
    const char *err = NULL;
    for (int k = 0; k < ns && !err; k++) {
        const cJSON *o = cJSON_GetArrayItem(arr, k);
        snprintf(keys[k], sizeof keys[k], "s%d", k);
        s[k] = (struct series){.key = keys[k], .label = text(o, "label"), .v = &v[k],
                              .color = series_color(o, k), .dots = flag(o, "dots"),
                              .dashed = flag(o, "dashed")};
        err = s[k].color ? read_points(o, &v[k]) : "a colour is not \"#rrggbb\" or an index";
    }
    const char *id = *text(d, "id") ? text(d, "id") : "chart";
    if (!err && !is_id(id))
        err = "\"id\" must be 1..32 of A-Z a-z 0-9 _ -";
    if (!err) {
        struct chart ch = {.id = id, .title = text(d, "title"), .xlabel = text(d, "xlabel"),
                           .ylabel = text(d, "ylabel"), .ysuffix = text(d, "ysuffix"),
                           .xmin = number(d, "xmin", NAN), .xmax = number(d, "xmax", NAN),
                           .xint = flag(d, "xint")};
        chart_svg(b, &ch, s, ns, true);
    }
    for (int k = 0; k < ns; k++)
        sat_free(v[k].p);
    return err ? fail(err) : 0;
}

int main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1])
            return fail("usage: saturn-chart [CHART.json|-] [-o OUT.svg]");
        else
            in = argv[i];
    }
    FILE *f = in && strcmp(in, "-") != 0 ? fopen(in, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "saturn-chart: %s: %s\n", in, strerror(errno));
        return 2;
    }
    char *json = read_all(f);
    if (f != stdin)
        fclose(f);
    if (!json)
        return fail("cannot read the description (or it is over 64 MiB)");
    cJSON *d = cJSON_Parse(json);
    sat_free(json);
    if (!cJSON_IsObject(d)) {
        cJSON_Delete(d);
        return fail("the description is not a JSON object");
    }
    struct strbuf b;
    strbuf_init(&b, 64u << 20);
    int rc = draw(d, &b);
    cJSON_Delete(d);
    if (rc == 0 && b.err)
        rc = fail("out of memory");
    if (rc == 0) {
        FILE *o = out ? fopen(out, "wb") : stdout;
        if (!o || fwrite(b.p, 1, b.len, o) != b.len || (out && fclose(o) != 0))
            rc = fail("cannot write the SVG");
    }
    strbuf_free(&b);
    return rc;
}
