/* internal.h - private to agent/kube/ (cache.c: facts and lookups; watch.c: the API client). */
#ifndef SW_KUBE_INT_H
#define SW_KUBE_INT_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>

#include "kube.h"

enum { SW__KUBE_PODS = 0, SW__KUBE_NAMESPACES = 1 };

/* One cached object: its key (pod uid, namespace name) and what is kept of it. */
struct sw__kube_obj {
  char *key;
  cJSON *facts;
  int64_t deleted_ms; /* monotonic time it was deleted (kept for the grace period); 0: live */
};

struct sw__kube_set {
  struct sw__kube_obj *v;
  size_t n, cap;
};

/* A configured label's sources, parsed. */
struct sw__kube_src {
  enum sw_kube_source kind;
  const char *key; /* into the label's text */
};
struct sw__kube_label {
  const char *name; /* the config's */
  char *text;       /* the sources, owned, cut at each '\n' */
  struct sw__kube_src *src;
  size_t nsrc;
};

struct sw__kube_watcher {
  struct sw_kube *k;
  int res;
};

struct sw_kube {
  struct sw__kube_watcher w[2];
  const struct sw_config *cfg; /* borrowed: outlives the kube (the pipeline's) */
  const struct sw_kube_conf *conf;
  pthread_mutex_t mu; /* sets, stats */
  pthread_cond_t cv;  /* stop wakes backoff waits */
  struct sw__kube_set sets[2];
  struct sw__kube_label *labels;
  size_t nlabels;
  atomic_uint_fast64_t gen;
  atomic_int stop;
  struct sw_kube_stats stats; /* counters; pods, namespaces and synced are derived */
  int synced[2];
  int ns_loaded; /* namespaces came from the buffer at start */
  pthread_t th[2];
  int started[2];
  char *api; /* base URL, no trailing '/'; NULL: unknown (logged) */
};

/* cache.c */
int sw__kube_parse_labels(struct sw_kube *k);
/* What is kept of a Pod / Namespace object; *key gets its uid / name (malloc'd). NULL when the
 * object lacks them or on ENOMEM. */
cJSON *sw__kube_facts(struct sw_kube *k, int res, const cJSON *obj, char **key);
/* Under k->mu: stores facts for key (takes both), or marks it deleted when facts is NULL.
 * Returns 1 if the cache changed. */
int sw__kube_set_put(struct sw_kube *k, int res, char *key, cJSON *facts, int64_t now_ms);
/* Under k->mu: a relist's result replaces set res (objects missing from it become deleted). */
void sw__kube_set_replace(struct sw_kube *k, int res, struct sw__kube_obj *objs, size_t n, int64_t now_ms);
/* Under k->mu: drops pods deleted more than the grace period ago. */
void sw__kube_set_purge(struct sw_kube *k, int64_t now_ms);
void sw__kube_set_free(struct sw__kube_set *s);

/* watch.c */
void *sw__kube_watch_main(void *arg); /* arg: a struct sw__kube_watcher * */

#endif
