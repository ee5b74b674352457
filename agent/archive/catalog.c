#include "catalog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/text.h"

void sw_arch_list_prefix(const char *prefix, char *out, size_t n) {
  size_t l = prefix ? strcspn(prefix, "{%") : 0;
  snprintf(out, n, "%.*s", (int)l, prefix ? prefix : "");
}

struct par {
  struct sw_s3c *s;
  size_t n;
  atomic_size_t next;
  atomic_int rc;
  int (*fn)(void *arg, struct sw_s3c_conn *k, size_t i);
  void *arg;
};

static void *par_main(void *arg) {
  struct par *p = arg;
  struct sw_s3c_conn *k = sw_s3c_conn_new(p->s);
  if (!k) {
    int zero = 0;
    atomic_compare_exchange_strong(&p->rc, &zero, SW_ENOMEM);
    return NULL;
  }
  for (;;) {
    size_t i = atomic_fetch_add(&p->next, 1);
    if (i >= p->n || atomic_load(&p->rc)) break;
    int rc = p->fn(p->arg, k, i);
    if (rc) {
      int zero = 0;
      atomic_compare_exchange_strong(&p->rc, &zero, rc);
      break;
    }
  }
  sw_s3c_conn_free(k);
  return NULL;
}

int sw_arch_parallel(struct sw_s3c *s, size_t n, unsigned threads,
                     int (*fn)(void *arg, struct sw_s3c_conn *k, size_t i), void *arg) {
  struct par p = {.s = s, .n = n, .fn = fn, .arg = arg};
  atomic_init(&p.next, 0);
  atomic_init(&p.rc, 0);
  if (threads < 1) threads = 1;
  if (threads > n) threads = n ? (unsigned)n : 1;
  pthread_t t[64];
  unsigned started = 0;
  for (; started < threads && started < 64; started++)
    if (pthread_create(&t[started], NULL, par_main, &p)) break;
  if (!started) par_main(&p);
  for (unsigned i = 0; i < started; i++) pthread_join(t[i], NULL);
  return atomic_load(&p.rc);
}

struct listing {
  struct sw_arch_obj *o;
  size_t n, cap;
  char **manifests;
  size_t nm, capm;
};

static int on_key(void *arg, const char *key, uint64_t size) {
  struct listing *l = arg;
  if (sw_ends_with(key, SW_MANIFEST_SUFFIX)) {
    if (sw_grow(&l->manifests, l->nm, &l->capm, sizeof *l->manifests, 64)) return SW_ENOMEM;
    return (l->manifests[l->nm++] = strdup(key)) ? SW_OK : SW_ENOMEM;
  }
  int gz = sw_ends_with(key, ".ndjson.gz");
  if (!gz && !sw_ends_with(key, ".ndjson.zst")) return SW_OK; /* not the sink's */
  if (sw_grow(&l->o, l->n, &l->cap, sizeof *l->o, 64)) return SW_ENOMEM;
  struct sw_arch_obj *o = &l->o[l->n];
  memset(o, 0, sizeof *o);
  if (!(o->key = strdup(key))) return SW_ENOMEM;
  o->size = size;
  o->gzip = gz;
  snprintf(o->why, sizeof o->why, "no manifest uploaded");
  o->no_manifest = 1;
  l->n++;
  return SW_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

struct fetch {
  struct listing *l;
  size_t *todo; /* indices of objects whose manifest exists */
};

static int fetch_one(void *arg, struct sw_s3c_conn *k, size_t i) {
  struct fetch *f = arg;
  struct sw_arch_obj *o = &f->l->o[f->todo[i]];
  struct sw_buf body;
  sw_buf_init(&body, 16u << 20);
  char mkey[4200], err[512];
  snprintf(mkey, sizeof mkey, "%s%s", o->key, SW_MANIFEST_SUFFIX);
  int rc = sw_s3c_get(k, mkey, &body, err, sizeof err);
  if (rc == SW_ENOTFOUND) {
    rc = SW_OK; /* deleted since the listing */
  } else if (!rc) {
    char why[200];
    o->no_manifest = 0;
    if (sw_manifest_parse(body.data, body.len, &o->m, why, sizeof why))
      snprintf(o->why, sizeof o->why, "manifest unreadable: %s", why);
    else if (strcmp(o->m.object, o->key)) {
      snprintf(o->why, sizeof o->why, "manifest names another object (%.150s)", o->m.object);
      sw_manifest_free(&o->m);
    } else
      o->has_manifest = 1;
  } else {
    snprintf(o->why, sizeof o->why, "%.200s", err);
  }
  sw_buf_free(&body);
  return rc == SW_EIO ? SW_OK : rc; /* one unreadable manifest does not stop the listing */
}

/* Whether an object's manifest lets it hold records of f. */
static int selected(const struct sw_arch_obj *o, const struct sw_arch_filter *f) {
  if (!o->has_manifest) return 1;
  if (!o->m.records) return 0;
  if (o->m.ts_max < f->since || o->m.ts_min >= f->until) return 0;
  if (!f->nlabels || !o->m.sets_complete) return 1;
  for (size_t i = 0; i < o->m.nsets; i++) {
    uint64_t deferred = 0;
    if (sw_label_match_chunk(f->labels, f->nlabels, o->m.sets[i], 0, &deferred)) return 1;
  }
  return 0;
}

static int by_time(const void *a, const void *b) {
  const struct sw_arch_obj *x = a, *y = b;
  if (x->has_manifest != y->has_manifest) return x->has_manifest ? -1 : 1;
  if (x->has_manifest && x->m.ts_min != y->m.ts_min) return x->m.ts_min < y->m.ts_min ? -1 : 1;
  return strcmp(x->key, y->key);
}

static void obj_free(struct sw_arch_obj *o) {
  free(o->key);
  sw_manifest_free(&o->m);
}

int sw_arch_catalog_load(struct sw_s3c *s, const struct sw_sink_conf *c, const struct sw_arch_filter *f,
                         unsigned threads, struct sw_arch_catalog *cat, char *err, size_t errlen) {
  memset(cat, 0, sizeof *cat);
  struct listing l = {0};
  char prefix[1024];
  sw_arch_list_prefix(c->prefix, prefix, sizeof prefix);
  struct sw_s3c_conn *k = sw_s3c_conn_new(s);
  int rc = k ? sw_s3c_list(k, prefix, on_key, &l, err, errlen) : SW_ENOMEM;
  sw_s3c_conn_free(k);
  size_t *todo = NULL, ntodo = 0;
  if (!rc && l.nm) {
    qsort(l.manifests, l.nm, sizeof *l.manifests, cmp_str);
    if (!(todo = malloc(l.n * sizeof *todo + 1))) rc = SW_ENOMEM;
    for (size_t i = 0; !rc && i < l.n; i++) {
      char mkey[4200];
      snprintf(mkey, sizeof mkey, "%s%s", l.o[i].key, SW_MANIFEST_SUFFIX);
      const char *p = mkey;
      if (bsearch(&p, l.manifests, l.nm, sizeof *l.manifests, cmp_str)) todo[ntodo++] = i;
    }
    struct fetch fa = {&l, todo};
    if (!rc) rc = sw_arch_parallel(s, ntodo, threads, fetch_one, &fa);
  }
  free(todo);
  for (size_t i = 0; i < l.nm; i++) free(l.manifests[i]);
  free(l.manifests);
  if (rc) {
    for (size_t i = 0; i < l.n; i++) obj_free(&l.o[i]);
    free(l.o);
    if (!err[0]) snprintf(err, errlen, "%s", sw_strerror(rc));
    return rc;
  }
  cat->listed = l.n;
  size_t kept = 0;
  for (size_t i = 0; i < l.n; i++) {
    if (selected(&l.o[i], f)) l.o[kept++] = l.o[i];
    else obj_free(&l.o[i]);
  }
  if (kept) qsort(l.o, kept, sizeof *l.o, by_time);
  cat->o = l.o;
  cat->n = kept;
  return SW_OK;
}

void sw_arch_catalog_free(struct sw_arch_catalog *cat) {
  for (size_t i = 0; i < cat->n; i++) obj_free(&cat->o[i]);
  free(cat->o);
  memset(cat, 0, sizeof *cat);
}
