/* jobspec_doc.c - the Markdown table of the job spec's fields, generated
 * from the field table (jobspec_fields.c) for docs/jobspec.md; the unit test
 * checks that the document holds the current table. */
#include "jobspec_int.h"

#include <string.h>

#include "json_strict.h"

/* Appends names as "`a`, `b`, `c`". */
static void put_code_list(struct json_buf *b, const char *const *names)
{
    for (int k = 0; names[k]; k++)
        json_buf_printf(b, "%s`%s`", k ? ", " : "", names[k]);
}

char *jobspec_doc_table(void)
{
    struct json_buf b;
    char range[48];
    json_buf_init(&b, 1 << 20);
    json_buf_puts(&b, "| Field | Type | Range | Default | Meaning |\n");
    json_buf_puts(&b, "|---|---|---|---|---|\n");
    for (int i = 0; i < jobspec__nfields; i++) {
        const struct field *f = &jobspec__fields[i];
        const char *tw = jobspec__type_word(f);
        json_buf_printf(&b, "| `%s` | %s | ", f->name, strchr(tw, ' ') + 1);
        switch (f->type) {
        case FT_STRING:
            if (f->names)
                put_code_list(&b, f->names);
            else if (f->charset)
                json_buf_printf(&b, "at most %zu bytes of `[A-Za-z0-9._-]`", f->size - 1);
            else
                json_buf_printf(&b, "at most %zu bytes", f->size - 1);
            break;
        case FT_ENUM:
            put_code_list(&b, f->names);
            break;
        case FT_BOOL:
            json_buf_puts(&b, "`true`, `false`");
            break;
        case FT_CONS:
            json_buf_puts(&b, "`bsp`, `asp`, `ssp:S` (S in 1..1000)");
            break;
        default:
            json_buf_puts(&b, jobspec__range_text(f, range, sizeof(range)));
            break;
        }
        json_buf_puts(&b, " | ");
        bool quoted = f->type == FT_STRING || f->type == FT_ENUM || f->type == FT_CONS;
        if (f->def_doc)
            json_buf_puts(&b, f->def_doc);
        else
            json_buf_printf(&b, quoted ? "`\"%s\"`" : "`%s`", f->def);
        json_buf_printf(&b, " | %s |\n", f->doc);
    }
    return json_buf_take(&b);
}
