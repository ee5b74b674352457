/* sink.h - what a network sink (Loki, Elasticsearch, S3) implements: a codec.
 *
 * A codec turns a batch of buffered chunks into requests and classifies the answers; the
 * shipper (shipper.h) owns cursors, batching, concurrency, dead letters and ordering, and the
 * transport (http.h) owns sending, retries, backoff and auth. A codec instance holds only its
 * configuration, so its functions may run for different batches on different threads at once;
 * everything about one batch lives in that batch.
 *
 * Threads: create/destroy on the loop thread; begin/add/seal/replay on a worker thread (one
 * batch at a time per batch); next/respond/release on the loop thread.
 */
#ifndef SW_SINK_H
#define SW_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "../agent/buffer/buffer.h"
#include "../agent/config/config.h"
#include "../common/buf.h"
#include "http.h"

/* A final failure of (part of) a batch, kept in the dead-letter table for replay. */
struct sw_sink_dead {
  long status;
  char *reason;           /* short, from the server's answer; never a payload */
  char *key;              /* S3 object key, else NULL */
  struct sw_buf payload;  /* the uncompressed request payload that failed */
  uint64_t records;
};

struct sw_batch {
  int64_t after, last;   /* chunk ids (after, last]; both 0 for a replayed dead letter */
  int verify;            /* cut before a crash (ops->verify_resends): part of it may already
                            be stored at the receiver; the codec asks before sending */
  uint64_t skipped;      /* verify: entries the receiver already held, not sent again */
  uint64_t unverified;   /* verify: entries sent again without an answer to the question */
  int64_t replay_id;     /* > 0: this batch resends dead letter replay_id */
  uint64_t records, raw_bytes, wire_bytes;
  uint64_t routed_away;  /* records of the added chunks the sink's `match` kept out (codecs count) */
  uint64_t label_missing; /* `{label}`s of tenant/index/prefix expanded to `unknown` (codecs count) */
  struct sw_sink_dead *dead; /* what failed for good; stored with the cursor */
  size_t ndead;
  void *priv;            /* the codec's state for this batch */
};

/* One request of a batch; the pointers stay valid until the batch is released or the codec's
 * next call for this batch. */
struct sw_sink_req {
  const char *method, *url, *content_type, *content_encoding;
  unsigned max_attempts;  /* 0: retry transient failures forever; else see http.h */
  const char *headers[4]; /* extra "Name: value" headers, NULL-terminated */
  const void *body;
  size_t len;
};

struct sw_sink_env {
  const char *agent_id; /* stable id of this buffer, for idempotent document ids */
  const char *host;     /* `host` label */
};

struct sw_sink_ops {
  const char *type;
  /* 1: a batch's chunk range must be written down before it is sent and resent exactly after
   * a crash (S3: the object key comes from the range), and at most one batch is in flight. */
  int fixed_ranges;
  /* 1: the highest chunk id ever cut is written down before its batch is sent; after a restart
   * the batches up to it are cut with b->verify set (Loki: it keeps an entry resent after its
   * head block was cut, so the codec asks what is stored before resending). */
  int verify_resends;
  int (*create)(const struct sw_sink_conf *c, const struct sw_sink_env *env, void **codec,
                char *err, size_t errlen);
  void (*destroy)(void *codec);
  /* worker thread */
  int (*begin)(void *codec, struct sw_batch *b);
  /* raw: one decompressed chunk of row (borrowed for the call only). Records the sink's route
   * (sinks/route.h) keeps out are counted in b->routed_away. */
  int (*add)(void *codec, struct sw_batch *b, const struct sw_chunk_row *row, const void *raw,
             size_t len);
  /* Finishes the payload (compression). May run beside the next batch's begin/add; after a
   * failure it is called again on the same batch, so it must leave the batch as it found it. */
  int (*seal)(void *codec, struct sw_batch *b);
  /* A replayed dead letter: payload and key as stored (borrowed for the call). */
  int (*replay)(void *codec, struct sw_batch *b, const void *payload, size_t len, const char *key);
  /* loop thread: 1 = *req is the next request to send, 0 = the batch is finished, < 0 = an
   * error (out of memory): the shipper calls it again later, so it must be repeatable. */
  int (*next)(void *codec, struct sw_batch *b, struct sw_sink_req *req);
  /* The answer to the last request (not a transient error: the transport retried those).
   * Returns SW_HTTP_DONE (the request is settled: delivered or dead-lettered with
   * sw_batch_dead) or SW_HTTP_RETRY (after changing what next() would send, see
   * sw_sink_req_body(); the transport backs off first). */
  int (*respond)(void *codec, struct sw_batch *b, const struct sw_http_resp *resp,
                 const void **body, size_t *len);
  void (*release)(void *codec, struct sw_batch *b);
};

extern const struct sw_sink_ops sw_loki_ops, sw_es_ops, sw_s3_ops;

/* Records a dead letter in b: copies payload, reason (trimmed to a line) and key. */
int sw_batch_dead(struct sw_batch *b, long status, const char *reason, size_t reason_len,
                  const void *payload, size_t len, const char *key, uint64_t records) SW_MUST_CHECK;
void sw_batch_free_dead(struct sw_batch *b);

/* gzip (RFC 1952) of src appended to out, level 1..9 (zlib). */
int sw_gzip(const void *src, size_t n, int level, struct sw_buf *out) SW_MUST_CHECK;
/* The body of a request held only gzipped (sw_gzip above): *body is empty and *gone set after
 * a successful sw_gzip_keep_wire; sw_body_restore inflates it again when an answer needs the
 * documents (a refusal, a partial failure), which is rare. Memory in flight is the wire size. */
int sw_gzip_keep_wire(struct sw_buf *body, struct sw_buf *wire, int *gone) SW_MUST_CHECK;
int sw_body_restore(struct sw_buf *body, const struct sw_buf *wire, int *gone) SW_MUST_CHECK;

#endif
