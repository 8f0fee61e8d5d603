/* suggest.c - the known name closest to a mistyped one (see suggest.h). */
#include "suggest.h"

#include <stddef.h>
#include <string.h>

/* Case-insensitive Levenshtein distance; a is cut at 64 bytes. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strnlen(a, 64), lb = strlen(b);
    int row[65];
    if (lb > 64)
        return 1000;
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            char ca = a[i - 1], cb = b[j - 1];
            if (ca >= 'A' && ca <= 'Z')
                ca = (char)(ca - 'A' + 'a');
            int cost = ca == cb ? 0 : 1;
            int best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

int sat_suggest(const char *key, const char *const *names, int n)
{
    size_t len = strlen(key);
    int best = -1, best_d = 1000;
    size_t best_lcp = 0;
    for (int i = 0; len <= 64 && i < n; i++) {
        const char *name = names[i];
        int d = edit_distance(key, name);
        /* A key of 3+ bytes inside a name ("batch", "decay") or a name of
         * 3+ bytes inside the key ("random_seed") is close too. */
        if (d > 1 && ((len >= 3 && strstr(name, key)) || (strlen(name) >= 3 && strstr(key, name))))
            d = 1;
        /* Ties go to the longer common prefix: "lrate" is "lr", not "name". */
        size_t lcp = 0;
        while (key[lcp] && key[lcp] == name[lcp])
            lcp++;
        if (d < best_d || (d == best_d && lcp > best_lcp)) {
            best_d = d;
            best_lcp = lcp;
            best = i;
        }
    }
    return best >= 0 && best_d <= (int)((len + 1) / 2) ? best : -1;
}
