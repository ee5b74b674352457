/* s3client.h - the archive commands' S3 requests: list a prefix, get an object, put a manifest. Blocking, for
 * the command line (the agent's sinks use the libuv transport, sinks/http.h); one client is
 * shared read-only by threads, each with its own struct sw_s3c_conn. Signed with SigV4 by
 * libcurl like the sink's uploads, addressed by the same code (sinks/s3.h). */
#ifndef SW_S3CLIENT_H
#define SW_S3CLIENT_H

#include <stdint.h>

#include "../../common/buf.h"
#include "../../common/error.h"
#include "../config/config.h"

struct sw_s3c;
struct sw_s3c_conn;

/* c: an s3 sink's configuration (borrowed: must outlive the client). */
int sw_s3c_new(const struct sw_sink_conf *c, struct sw_s3c **out, char *err, size_t errlen) SW_MUST_CHECK;
void sw_s3c_free(struct sw_s3c *s);
/* One connection per thread (reused across requests: keep-alive). */
struct sw_s3c_conn *sw_s3c_conn_new(struct sw_s3c *s);
void sw_s3c_conn_free(struct sw_s3c_conn *k);

/* Every key under prefix, in key order: cb(arg, key, size) (non-zero stops, returned).
 * Errors: SW_EIO with err naming the request and S3's answer. */
int sw_s3c_list(struct sw_s3c_conn *k, const char *prefix,
                int (*cb)(void *arg, const char *key, uint64_t size), void *arg, char *err,
                size_t errlen) SW_MUST_CHECK;
/* The object's bytes into out (replacing them). SW_ENOTFOUND when there is no such key;
 * SW_EIO otherwise, err set. Transient failures (5xx, resets) are retried a few times. */
int sw_s3c_get(struct sw_s3c_conn *k, const char *key, struct sw_buf *out, char *err,
               size_t errlen) SW_MUST_CHECK;

/* Uploads body as the object key (one PUT; small objects such as manifests). Errors as
 * sw_s3c_get. */
int sw_s3c_put(struct sw_s3c_conn *k, const char *key, const void *body, size_t len, const char *ctype,
               char *err, size_t errlen) SW_MUST_CHECK;

#endif
