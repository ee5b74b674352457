/* strdist.h - string distance for "did you mean" suggestions. Pure. */
#ifndef SW_STRDIST_H
#define SW_STRDIST_H

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions) between a and b;
 * 99 when either is longer than 64 bytes. */
unsigned sw_edit_distance(const char *a, const char *b);

#endif
