/* suggest.h - "did you mean": the known name closest to a mistyped one, for
 * messages about unknown keys and flags. */
#ifndef SATURN_SUGGEST_H
#define SATURN_SUGGEST_H

/* Returns the index in names[0..n) of the name closest to key, or -1 when
 * none is close enough to suggest. Closeness is the case-insensitive
 * Levenshtein distance, with two refinements: a key of 3+ bytes inside a
 * name ("batch" in "batch_size"), or a name of 3+ bytes inside the key
 * ("seed" in "random_seed"), counts as distance 1, and ties go to the longer
 * common prefix ("lrate" is "lr", not "name"). A name is suggested when its
 * distance is at most half the key's length, rounded up; keys over 64 bytes
 * get no suggestion. Allocates nothing. */
int sat_suggest(const char *key, const char *const *names, int n);

#endif
