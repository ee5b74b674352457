/* jsonstr.h - strict JSON string scanning shared by the json and logfmt parsers (private to
 * parsers/). Pure. The docker scanner keeps its own, deliberately lenient one (dockerd writes
 * control bytes unescaped). */
#ifndef SW_JSONSTR_H
#define SW_JSONSTR_H

#include <stdbool.h>

/* Validates the string body starting at p (just past the opening quote): no raw byte below
 * 0x20, escapes only \" \\ \/ \b \f \n \r \t \uXXXX. Returns the pointer past the closing quote,
 * or NULL. Sets *esc when the body holds an escape (leaves it alone otherwise). */
const char *sw__json_scan_str(const char *p, const char *end, bool *esc);

#endif
