/* s3.h - what the S3 sink and the archive commands (agent/archive) share about addressing
 * objects: one definition of the bucket URL and of how a key goes into it. Pure. */
#ifndef SW_S3_H
#define SW_S3_H

#include <stddef.h>

#include "../agent/config/config.h"
#include "../common/buf.h"
#include "../common/error.h"

/* scheme://host[:port]/bucket (path style) or scheme://bucket.host (virtual hosted), without a
 * trailing slash, into out (n bytes); SW_ETOOBIG when it does not fit. */
int sw_s3_base_url(const struct sw_sink_conf *c, char *out, size_t n) SW_MUST_CHECK;
/* Appends s with every byte outside [A-Za-z0-9-_.~] percent-encoded, and '/' too unless
 * keep_slash (a key in a path keeps them; a value in a query does not): SigV4's encoding. */
int sw_s3_put_escaped(struct sw_buf *b, const char *s, int keep_slash) SW_MUST_CHECK;

#endif
