/* jsonflat.h - the scalar members of one JSON object, nested objects flattened: LogQL's
 * `| json` (search/logql_eval.c). Pure: no I/O; it only grows the caller's buffers.
 *
 * The line is first validated as one JSON object (json.h: strict, bounded depth); a line that
 * is not gets SW_EPARSE and no member is reported. Then, in document order: strings are
 * decoded, numbers given as written ("1.50" stays "1.50", as Loki keeps it), true and false as
 * such; a nested object's members are named parent + "_" + member; arrays, nulls and members
 * with an empty key are skipped.
 */
#ifndef SW_JSONFLAT_H
#define SW_JSONFLAT_H

#include <stddef.h>

#include "../common/buf.h"
#include "../common/error.h"

/* key(out, k, n) appends the name part of the decoded key k (NULL: as it is); fn(arg, name,
 * nlen, value, vlen) gets each member (name is not NUL-terminated). name and val are scratch
 * buffers. Returns 0, SW_EPARSE, SW_ENOMEM, or the first non-zero of key or fn. */
int sw_json_flatten(const char *line, size_t len, struct sw_buf *name, struct sw_buf *val,
                    int (*key)(struct sw_buf *out, const char *k, size_t n),
                    int (*fn)(void *arg, const char *name, size_t nlen, const char *value, size_t vlen),
                    void *arg) SW_MUST_CHECK;

#endif
