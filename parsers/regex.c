/* regex.c - see regex.h. */
#include "regex.h"

#include <pcre2.h>
#include <stdio.h>

void *sw_re_compile(const char *pattern, uint32_t opts, char *msg, size_t msglen, size_t *offset) {
  int ec;
  PCRE2_SIZE off;
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | opts, &ec, &off, NULL);
  if (!re) {
    PCRE2_UCHAR m[160];
    pcre2_get_error_message(ec, m, sizeof m);
    if (msglen) snprintf(msg, msglen, "%s", (const char *)m);
    if (offset) *offset = (size_t)off;
    return NULL;
  }
  (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
  return re;
}
