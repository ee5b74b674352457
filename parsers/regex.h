/* regex.h - how the agent compiles the PCRE2 patterns of filters, log metrics, label matchers,
 * extraction and search: UTF with invalid bytes allowed (a log line is not always valid UTF-8),
 * JIT when the CPU has it (the interpreter gives the same answers, only slower). Pure. */
#ifndef SW_REGEX_H
#define SW_REGEX_H

#include <stddef.h>
#include <stdint.h>

/* A pcre2_code * (free with pcre2_code_free), or NULL: then msg gets PCRE2's message and
 * *offset (may be NULL) where in pattern it stopped. opts: PCRE2 options added to the above. */
void *sw_re_compile(const char *pattern, uint32_t opts, char *msg, size_t msglen, size_t *offset);

#endif
