/* test_utf8.c - strict UTF-8 validation, boundary cuts, repair and
 * control-character escaping (common/util/utf8.c). */
#include "check.h"

#include "../../../common/util/utf8.h"

static bool valid(const char *s)
{
    return sat_utf8_valid(s, strlen(s));
}

int main(void)
{
    /* Validation: RFC 3629 strictness. */
    CHECK(valid("plain ascii"));
    CHECK(valid("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    CHECK(!valid("\xc3"));                 /* truncated */
    CHECK(!valid("\xc0\xaf"));             /* overlong '/' */
    CHECK(!valid("\xe0\x80\xaf"));         /* overlong */
    CHECK(!valid("\xed\xa0\x80"));         /* surrogate */
    CHECK(!valid("\xf4\x90\x80\x80"));     /* above U+10FFFF */
    CHECK(!valid("\xff"));
    CHECK_EQ_INT(sat_utf8_bad("ab\xff", 3), 2);

    /* Control characters: C0, DEL, C1; not ordinary multi-byte text. */
    CHECK(sat_utf8_has_ctl("a\nb", 3));
    CHECK(sat_utf8_has_ctl("a\x7f", 2));
    CHECK(sat_utf8_has_ctl("a\xc2\x9b", 3));
    CHECK(!sat_utf8_has_ctl("\xc2\xa0\xc3\xa9", 4));

    /* Cuts never split a character. */
    const char *e = "\xc3\xa9\xc3\xa9\xc3\xa9"; /* 3 x 2 bytes */
    CHECK_EQ_INT(sat_utf8_cut(e, 6), 6);
    CHECK_EQ_INT(sat_utf8_cut(e, 5), 4);
    CHECK_EQ_INT(sat_utf8_cut(e, 4), 4);
    CHECK_EQ_INT(sat_utf8_cut(e, 1), 0);
    CHECK_EQ_INT(sat_utf8_cut("abc", 10), 3);
    CHECK_EQ_INT(sat_utf8_chars(e), 3);
    const char *smile = "x\xf0\x9f\x98\x80";
    CHECK_EQ_INT(sat_utf8_cut(smile, 4), 1);

    char buf[16];
    memcpy(buf, e, 3); /* one and a half characters, as a truncating snprintf leaves */
    buf[3] = 0;
    sat_utf8_trim(buf);
    CHECK(strcmp(buf, "\xc3\xa9") == 0);
    snprintf(buf, sizeof buf, "ab");
    sat_utf8_trim(buf);
    CHECK(strcmp(buf, "ab") == 0);
    memcpy(buf, smile, 3);
    buf[3] = 0;
    sat_utf8_trim(buf);
    CHECK(strcmp(buf, "x") == 0);

    /* Repair: bad bytes become '?', good ones stay. */
    char bad[] = "a\xff\xc3\xa9\xc3";
    CHECK_EQ_INT(sat_utf8_sanitize(bad), 2);
    CHECK(strcmp(bad, "a?\xc3\xa9?") == 0);
    CHECK(valid(bad));

    /* Escaping for terminals and logs. */
    char out[64];
    CHECK(strcmp(sat_escape_ctl(out, sizeof out, "a\nb\x1b[31m"), "a\\nb\\x1b[31m") == 0);
    CHECK(strcmp(sat_escape_ctl(out, sizeof out, "\xc2\x9b\xff\xc3\xa9"), "\\u009b\\xff\xc3\xa9") ==
          0);
    CHECK(strcmp(sat_escape_ctl(out, 5, "ab\ncd"), "ab\\n") == 0);
    CHECK(strcmp(sat_escape_ctl(out, 4, "ab\ncd"), "ab") == 0); /* no half escape */
    CHECK(strcmp(sat_escape_ctl(out, 4, "a\xc3\xa9\xc3\xa9"), "a\xc3\xa9") == 0);
    return check_summary("utf8");
}
