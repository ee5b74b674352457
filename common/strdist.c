/* strdist.c - see strdist.h. */
#include "strdist.h"

#include <string.h>

unsigned sw_edit_distance(const char *a, const char *b) {
  enum { MAXLEN = 64 };
  size_t la = strlen(a), lb = strlen(b);
  if (la > MAXLEN || lb > MAXLEN) return 99;
  unsigned d[MAXLEN + 1][MAXLEN + 1];
  for (size_t i = 0; i <= la; i++) d[i][0] = (unsigned)i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = (unsigned)j;
  for (size_t i = 1; i <= la; i++) {
    for (size_t j = 1; j <= lb; j++) {
      unsigned cost = a[i - 1] != b[j - 1], best = d[i - 1][j - 1] + cost;
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1; /* transposition */
      d[i][j] = best;
    }
  }
  return d[la][lb];
}
