/* kube.h - pod and namespace metadata from the Kubernetes API server.
 *
 * Two watcher threads (pods of this node, namespaces) list and then watch their resource over
 * libcurl with the service account's token and CA: a watch resumes from the last
 * resourceVersion it saw (bookmarks are requested, so that version stays fresh), a 410 Gone
 * relists, any other failure retries with capped, jittered backoff while the cache keeps
 * answering. What is kept of each object is only what the configured labels, the exclusion
 * and the hint annotations need ("facts", cache.c), in memory and in the buffer's database,
 * so an agent restarted while the API server is unreachable still enriches from what it knew.
 * A deleted pod stays known for SW_KUBE_DELETED_GRACE_S: its files are drained after it went.
 *
 * The loop thread asks sw_kube_lookup for a pod's view when it opens the pod's file and again
 * whenever sw_kube_generation moved; labels are built per file and stored per chunk, so
 * enrichment costs nothing per record.
 */
#ifndef SW_KUBE_H
#define SW_KUBE_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"
#include "../../parsers/multiline.h"
#include "../buffer/buffer.h"
#include "../config/config.h"

#define SW_KUBE_DELETED_GRACE_S 600

struct sw_kube;

/* Where a kubernetes.labels value comes from ("pod_label:app", "owner"). */
enum sw_kube_source {
  SW_KUBE_SRC_POD_LABEL, SW_KUBE_SRC_POD_ANN, SW_KUBE_SRC_NS_LABEL, SW_KUBE_SRC_NS_ANN,
  SW_KUBE_SRC_OWNER, SW_KUBE_SRC_NODE
};
/* The kind of source s[0..n) and where its key starts (*key_at; n for owner and node), or -1
 * when it is none of them. Pure; the config check uses it too. */
int sw_kube_source_parse(const char *s, size_t n, size_t *key_at);

/* What a file of one container of a pod gets. */
struct sw_kube_view {
  int excluded;                /* spillway.io/exclude(-<container>) on the pod, or on its namespace's labels */
  enum sw_ml_preset multiline; /* spillway.io/multiline; SW_ML_NONE when absent or unknown */
  char format[8];              /* spillway.io/format: "json" | "logfmt" | "text" | "" */
  struct sw_kv *labels;        /* configured labels that are present, in config order */
  size_t nlabels;
};
void sw_kube_view_free(struct sw_kube_view *v);

/* Loads the cache kept in db (blocking: the pipeline's opening job). Nothing runs yet. */
int sw_kube_create(const struct sw_config *cfg, struct sw_db *db, struct sw_kube **out, char *err,
                   size_t errlen) SW_MUST_CHECK;
/* Starts the watcher threads. */
int sw_kube_start(struct sw_kube *k) SW_MUST_CHECK;
/* 1 and *v filled (free with sw_kube_view_free) when the pod is known; 0 when not (yet); an
 * allocation failure is SW_ENOMEM. Any thread. */
int sw_kube_lookup(struct sw_kube *k, const char *pod_uid, const char *container,
                   struct sw_kube_view *v) SW_MUST_CHECK;
/* Moves whenever the cache changes (any thread). */
uint64_t sw_kube_generation(struct sw_kube *k);

struct sw_kube_stats {
  uint64_t pods, namespaces;        /* in the cache (deleted pods in their grace included) */
  uint64_t api_errors[3];           /* by SW_KUBE_ERR_* */
  uint64_t watch_restarts[2];       /* pods, namespaces: watches that ended and were reopened */
  uint64_t relists[2];              /* full lists (the first, and after 410 Gone or a failure) */
  int synced;                       /* both resources listed since start */
};
enum { SW_KUBE_ERR_TRANSPORT = 0, SW_KUBE_ERR_HTTP = 1, SW_KUBE_ERR_EXPIRED = 2 };
void sw_kube_get_stats(struct sw_kube *k, struct sw_kube_stats *s);

/* Stops the threads (an open watch is aborted within ~1 s) and frees. NULL is a no-op. */
void sw_kube_free(struct sw_kube *k);

#endif
