/* cache.c - what is kept of pods and namespaces ("facts") and the views built from them.
 *
 * Facts of a pod: {"ns", "name", "node", "owner", "l": {labels}, "a": {annotations}} with only
 * the label and annotation keys the configured labels name, plus the spillway.io/ annotations
 * (exclusion and hints); of a namespace: {"l", "a"} the same way. A pod's full object (often
 * tens of KiB with managedFields) is never kept: 110 pods' facts take a few hundred KiB at most.
 */
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "internal.h"

#define SPILLWAY_PREFIX "spillway.io/"

/* In enum sw_kube_source order; the ones ending in ':' take a key. */
static const char *const k_sources[] = {"pod_label:", "pod_annotation:", "namespace_label:",
                                        "namespace_annotation:", "owner", "node", NULL};

int sw_kube_source_parse(const char *s, size_t n, size_t *key_at) {
  for (int i = 0; k_sources[i]; i++) {
    size_t l = strlen(k_sources[i]);
    int keyed = k_sources[i][l - 1] == ':';
    if (keyed ? n > l && memcmp(s, k_sources[i], l) == 0 : n == l && memcmp(s, k_sources[i], l) == 0) {
      *key_at = keyed ? l : n;
      return i;
    }
  }
  return -1;
}

int sw__kube_parse_labels(struct sw_kube *k) {
  const struct sw_kube_conf *c = k->conf;
  k->labels = calloc(c->nlabels ? c->nlabels : 1, sizeof *k->labels);
  if (!k->labels) return SW_ENOMEM;
  k->nlabels = c->nlabels;
  for (size_t i = 0; i < c->nlabels; i++) {
    struct sw__kube_label *l = &k->labels[i];
    l->name = c->labels[i].key;
    size_t n = 1;
    for (const char *p = c->labels[i].value; *p; p++) n += *p == '\n';
    l->src = calloc(n, sizeof *l->src);
    if (!l->src) return SW_ENOMEM;
    /* The config checked each source; keys point into a copy cut at each '\n'. */
    l->text = strdup(c->labels[i].value);
    if (!l->text) return SW_ENOMEM;
    for (char *s = l->text; s && *s;) {
      char *e = strchr(s, '\n');
      if (e) *e = '\0';
      size_t key_at;
      struct sw__kube_src *src = &l->src[l->nsrc++];
      src->kind = (enum sw_kube_source)sw_kube_source_parse(s, strlen(s), &key_at); /* checked by the config */
      src->key = s + key_at;
      s = e ? e + 1 : NULL;
    }
  }
  return SW_OK;
}

/* ---- facts ---- */

static const char *str_at(const cJSON *o, const char *a, const char *b) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
  if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
  return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* Does a configured label of this resource and kind want key? */
static int wanted(const struct sw_kube *k, enum sw_kube_source kind, const char *key) {
  for (size_t i = 0; i < k->nlabels; i++)
    for (size_t j = 0; j < k->labels[i].nsrc; j++)
      if (k->labels[i].src[j].kind == kind && strcmp(k->labels[i].src[j].key, key) == 0) return 1;
  return 0;
}

/* Copies the wanted entries of the string map `from` into a new object added to facts as name. */
static int keep_map(const struct sw_kube *k, cJSON *facts, const char *name, const cJSON *from,
                    enum sw_kube_source kind, int keep_ours) {
  cJSON *to = cJSON_AddObjectToObject(facts, name);
  if (!to) return SW_ENOMEM;
  for (const cJSON *e = from ? from->child : NULL; e; e = e->next) {
    if (!cJSON_IsString(e) || !e->string) continue;
    int ours = keep_ours && strncmp(e->string, SPILLWAY_PREFIX, strlen(SPILLWAY_PREFIX)) == 0;
    if (!ours && !wanted(k, kind, e->string)) continue;
    if (!cJSON_AddStringToObject(to, e->string, e->valuestring)) return SW_ENOMEM;
  }
  return SW_OK;
}

/* The workload that owns the pod: a ReplicaSet's name loses its pod-template-hash, so pods of
 * a Deployment name the Deployment. */
static char *owner_of(const cJSON *meta) {
  const cJSON *refs = cJSON_GetObjectItemCaseSensitive(meta, "ownerReferences"), *pick = NULL;
  for (const cJSON *r = refs ? refs->child : NULL; r; r = r->next) {
    if (!pick) pick = r;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "controller"))) {
      pick = r;
      break;
    }
  }
  const char *name = str_at(pick, "name", NULL), *kind = str_at(pick, "kind", NULL);
  if (!name) return NULL;
  size_t n = strlen(name);
  if (kind && strcmp(kind, "ReplicaSet") == 0) {
    const char *hash = str_at(meta, "labels", "pod-template-hash");
    size_t hl = hash ? strlen(hash) : 0;
    if (hl && n > hl + 1 && name[n - hl - 1] == '-' && strcmp(name + n - hl, hash) == 0) {
      n -= hl + 1;
    } else { /* no label: the last dash-separated part when it looks like a hash */
      const char *dash = strrchr(name, '-');
      if (dash && dash > name && strlen(dash + 1) >= 5 && strlen(dash + 1) <= 10) n = (size_t)(dash - name);
    }
  }
  char *out = malloc(n + 1);
  if (out) {
    memcpy(out, name, n);
    out[n] = '\0';
  }
  return out;
}

cJSON *sw__kube_facts(struct sw_kube *k, int res, const cJSON *obj, char **key) {
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
  const char *id = str_at(meta, res == SW__KUBE_PODS ? "uid" : "name", NULL);
  *key = NULL;
  if (!id || !id[0]) return NULL;
  cJSON *f = cJSON_CreateObject();
  int rc = f ? SW_OK : SW_ENOMEM;
  const cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
  const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
  if (!rc && res == SW__KUBE_PODS) {
    const char *ns = str_at(meta, "namespace", NULL), *name = str_at(meta, "name", NULL);
    const char *node = str_at(obj, "spec", "nodeName");
    char *owner = owner_of(meta);
    if ((ns && !cJSON_AddStringToObject(f, "ns", ns)) || (name && !cJSON_AddStringToObject(f, "name", name)) ||
        (node && !cJSON_AddStringToObject(f, "node", node)) ||
        (owner && !cJSON_AddStringToObject(f, "owner", owner)))
      rc = SW_ENOMEM;
    free(owner);
    if (!rc) rc = keep_map(k, f, "l", labels, SW_KUBE_SRC_POD_LABEL, 0);
    if (!rc) rc = keep_map(k, f, "a", ann, SW_KUBE_SRC_POD_ANN, 1);
  } else if (!rc) {
    rc = keep_map(k, f, "l", labels, SW_KUBE_SRC_NS_LABEL, 1);
    if (!rc) rc = keep_map(k, f, "a", ann, SW_KUBE_SRC_NS_ANN, 0);
  }
  if (!rc) *key = strdup(id);
  if (rc || !*key) {
    cJSON_Delete(f);
    return NULL;
  }
  return f;
}

/* ---- the sets ---- */

static struct sw__kube_obj *find(struct sw__kube_set *s, const char *key) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->v[i].key, key) == 0) return &s->v[i];
  return NULL;
}

static void obj_free(struct sw__kube_obj *o) {
  free(o->key);
  cJSON_Delete(o->facts);
}

int sw__kube_set_put(struct sw_kube *k, int res, char *key, cJSON *facts, int64_t now_ms) {
  struct sw__kube_set *s = &k->sets[res];
  struct sw__kube_obj *o = find(s, key);
  if (!facts) { /* deleted: a pod stays for its files' last lines; a namespace goes */
    free(key);
    if (!o || o->deleted_ms) return 0;
    if (res == SW__KUBE_PODS) {
      o->deleted_ms = now_ms;
      return 0; /* nothing a lookup returns changed */
    }
    obj_free(o);
    *o = s->v[--s->n];
    return 1;
  }
  if (o) {
    int same = !o->deleted_ms && cJSON_Compare(o->facts, facts, 1);
    cJSON_Delete(o->facts);
    o->facts = facts;
    o->deleted_ms = 0;
    free(key);
    return !same;
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    struct sw__kube_obj *v = realloc(s->v, cap * sizeof *v);
    if (!v) {
      SW_LOG(SW_L_ERROR, "kubernetes", "out of memory caching an object");
      free(key);
      cJSON_Delete(facts);
      return 0;
    }
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = (struct sw__kube_obj){.key = key, .facts = facts};
  return 1;
}

void sw__kube_set_replace(struct sw_kube *k, int res, struct sw__kube_obj *objs, size_t n, int64_t now_ms) {
  struct sw__kube_set *s = &k->sets[res];
  int changed = 0;
  for (size_t i = 0; i < s->n; i++) { /* gone while the watch was down: deleted */
    int listed = 0;
    for (size_t j = 0; j < n && !listed; j++) listed = strcmp(objs[j].key, s->v[i].key) == 0;
    if (listed) continue;
    if (res == SW__KUBE_PODS) {
      if (!s->v[i].deleted_ms) s->v[i].deleted_ms = now_ms;
    } else {
      obj_free(&s->v[i]);
      s->v[i--] = s->v[--s->n];
      changed = 1;
    }
  }
  for (size_t j = 0; j < n; j++) changed |= sw__kube_set_put(k, res, objs[j].key, objs[j].facts, now_ms);
  if (changed) atomic_fetch_add(&k->gen, 1);
}

void sw__kube_set_purge(struct sw_kube *k, int64_t now_ms) {
  struct sw__kube_set *s = &k->sets[SW__KUBE_PODS];
  for (size_t i = 0; i < s->n; i++) {
    if (!s->v[i].deleted_ms || now_ms - s->v[i].deleted_ms < SW_KUBE_DELETED_GRACE_S * 1000LL) continue;
    obj_free(&s->v[i]);
    s->v[i--] = s->v[--s->n];
  }
}

void sw__kube_set_free(struct sw__kube_set *s) {
  for (size_t i = 0; i < s->n; i++) obj_free(&s->v[i]);
  free(s->v);
  *s = (struct sw__kube_set){0};
}

/* ---- views ---- */

void sw_kube_view_free(struct sw_kube_view *v) {
  for (size_t i = 0; i < v->nlabels; i++) free(v->labels[i].value);
  free(v->labels);
  *v = (struct sw_kube_view){0};
}

static int is_true(const char *v) { return v && strcmp(v, "true") == 0; }

int sw_kube_lookup(struct sw_kube *k, const char *pod_uid, const char *container, struct sw_kube_view *v) {
  *v = (struct sw_kube_view){0};
  int rc = 0;
  pthread_mutex_lock(&k->mu);
  struct sw__kube_obj *pod = find(&k->sets[SW__KUBE_PODS], pod_uid);
  if (!pod) goto done;
  const cJSON *pf = pod->facts;
  const char *nsname = str_at(pf, "ns", NULL);
  struct sw__kube_obj *ns = nsname ? find(&k->sets[SW__KUBE_NAMESPACES], nsname) : NULL;
  /* Until the namespaces are known (listed, or kept from the last run) a pod is not known
   * either: its namespace may exclude it, or carry a label it is to get. */
  if (!ns && !k->synced[SW__KUBE_NAMESPACES] && !k->ns_loaded) goto done;
  const cJSON *nf = ns ? ns->facts : NULL;
  char excl[320];
  snprintf(excl, sizeof excl, SPILLWAY_PREFIX "exclude-%s", container ? container : "");
  v->excluded = is_true(str_at(pf, "a", SPILLWAY_PREFIX "exclude")) ||
                (container && is_true(str_at(pf, "a", excl))) ||
                is_true(str_at(nf, "l", SPILLWAY_PREFIX "exclude"));
  const char *ml = str_at(pf, "a", SPILLWAY_PREFIX "multiline");
  if (ml) v->multiline = sw_ml_preset_parse(ml, strlen(ml));
  const char *fmt = str_at(pf, "a", SPILLWAY_PREFIX "format");
  if (fmt && (!strcmp(fmt, "json") || !strcmp(fmt, "logfmt") || !strcmp(fmt, "text")))
    snprintf(v->format, sizeof v->format, "%s", fmt);
  v->labels = calloc(k->nlabels ? k->nlabels : 1, sizeof *v->labels);
  if (!v->labels) {
    rc = SW_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < k->nlabels; i++) {
    const struct sw__kube_label *l = &k->labels[i];
    const char *val = NULL;
    for (size_t j = 0; j < l->nsrc && !val; j++) {
      const struct sw__kube_src *s = &l->src[j];
      switch (s->kind) {
      case SW_KUBE_SRC_POD_LABEL: val = str_at(pf, "l", s->key); break;
      case SW_KUBE_SRC_POD_ANN: val = str_at(pf, "a", s->key); break;
      case SW_KUBE_SRC_NS_LABEL: val = str_at(nf, "l", s->key); break;
      case SW_KUBE_SRC_NS_ANN: val = str_at(nf, "a", s->key); break;
      case SW_KUBE_SRC_OWNER: val = str_at(pf, "owner", NULL); break;
      case SW_KUBE_SRC_NODE: val = str_at(pf, "node", NULL); break;
      }
    }
    if (!val) continue;
    struct sw_kv *kv = &v->labels[v->nlabels];
    kv->key = (char *)l->name; /* borrowed from the config */
    kv->value = strdup(val);
    if (!kv->value) {
      rc = SW_ENOMEM;
      goto done;
    }
    v->nlabels++;
  }
  rc = 1;
done:
  pthread_mutex_unlock(&k->mu);
  if (rc < 0) sw_kube_view_free(v);
  return rc;
}

uint64_t sw_kube_generation(struct sw_kube *k) { return k ? atomic_load(&k->gen) : 0; }
