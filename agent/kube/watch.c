/* watch.c - the watcher threads: list, then watch from the list's resourceVersion, over
 * blocking libcurl transfers on threads of their own (a watch is a response that never ends;
 * nothing here runs on the loop). See kube.h for the behaviour. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../common/buf.h"
#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "../../sinks/http.h"
#include "internal.h"

#define LIST_PAGE 500
#define LIST_MAX_BYTES (256u << 20)   /* one page of a list */
#define LINE_MAX_BYTES (16u << 20)    /* one watch event */
#define WATCH_SECONDS 300             /* the server ends a watch after this (jittered) */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 10000

static const char *const k_res_name[2] = {"pods", "namespaces"};
static const char *const k_res_kind[2] = {"pod", "namespace"};

enum { KW_OK = 0, KW_TRANSPORT = 1, KW_HTTP = 2, KW_EXPIRED = 3, KW_STOPPED = 4 };

struct xfer {
  struct sw__kube_watcher *w;
  struct sw_db *db;
  struct sw_buf body; /* a list page, or the watch's unfinished line */
  int watch, expired;
  char rv[128];
};

/* ---- HTTP ---- */

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  struct xfer *x = arg;
  (void)a, (void)b, (void)c, (void)d;
  return atomic_load(&x->w->k->stop) ? 1 : 0;
}

static void handle_line(struct xfer *x, const char *line, size_t n);

static size_t on_data(char *p, size_t sz, size_t nm, void *arg) {
  struct xfer *x = arg;
  size_t n = sz * nm;
  if (!x->watch) return sw_buf_append(&x->body, p, n) ? 0 : n; /* over the cap: abort */
  size_t from = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '\n') continue;
    if (x->body.len) { /* the line began in an earlier piece */
      if (sw_buf_append(&x->body, p + from, i - from)) return 0;
      handle_line(x, x->body.data, x->body.len);
      sw_buf_reset(&x->body);
    } else {
      handle_line(x, p + from, i - from);
    }
    from = i + 1;
    if (x->expired) return 0; /* relist: end this watch */
  }
  if (from < n && sw_buf_append(&x->body, p + from, n - from)) return 0;
  return n;
}

static int read_token(const char *path, char *out, size_t n) {
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  size_t got = fread(out, 1, n - 1, f);
  fclose(f);
  while (got && (out[got - 1] == '\n' || out[got - 1] == '\r' || out[got - 1] == ' ')) got--;
  out[got] = '\0';
  return got ? 0 : -1;
}

/* One GET; *status gets the HTTP status (0 on a transport error, whose text goes to why). */
static int get(struct xfer *x, const char *url, long timeout_s, long *status, char *why, size_t whyn) {
  struct sw_kube *k = x->w->k;
  const struct sw_kube_conf *c = k->conf;
  CURL *h = curl_easy_init();
  if (!h) return KW_TRANSPORT;
  x->expired = 0;
  char token[8192], auth[8300];
  struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
  /* Read every time: projected service-account tokens are rotated by the kubelet. */
  if (read_token(c->token_file, token, sizeof token) == 0) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    struct curl_slist *h2 = curl_slist_append(hdrs, auth);
    if (h2) hdrs = h2;
    explicit_bzero(token, sizeof token);
  }
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "spillway/" SW_VERSION);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  if (access(c->ca_file, R_OK) == 0) curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
  /* A watch that stays silent longer than bookmarks allow is a dead connection. */
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, x->watch ? 150L : 60L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode cc = curl_easy_perform(h);
  *status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  explicit_bzero(auth, sizeof auth);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  if (atomic_load(&k->stop)) return KW_STOPPED;
  if (x->expired) return KW_EXPIRED;
  if (cc != CURLE_OK && !(x->watch && cc == CURLE_OPERATION_TIMEDOUT && *status == 200)) {
    snprintf(why, whyn, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
    return *status && *status != 200 ? KW_HTTP : KW_TRANSPORT;
  }
  if (*status == 410) return KW_EXPIRED;
  if (*status != 200) {
    /* The API server's Status object says why ("Unauthorized", "forbidden: ..."). */
    cJSON *st = x->watch ? NULL : cJSON_ParseWithLength(x->body.data ? x->body.data : "", x->body.len);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(st, "message");
    snprintf(why, whyn, "HTTP %ld%s%.300s", *status, cJSON_IsString(msg) ? ": " : "",
             cJSON_IsString(msg) ? msg->valuestring : "");
    cJSON_Delete(st);
    return KW_HTTP;
  }
  return KW_OK;
}

/* ---- cache updates ---- */

static void persist(struct xfer *x, int replace_all, size_t n, const char *const *keys,
                    const char *const *facts) {
  if (!x->db) return;
  if (sw_db_kube_write(x->db, k_res_kind[x->w->res], replace_all, n, keys, facts))
    SW_LOG(SW_L_WARN, "kubernetes", "cannot store %s metadata: %s", k_res_kind[x->w->res],
           sw_db_errmsg(x->db));
}

static void take_rv(struct xfer *x, const cJSON *obj) {
  const cJSON *rv = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
                                                     "resourceVersion");
  if (cJSON_IsString(rv) && strlen(rv->valuestring) < sizeof x->rv) strcpy(x->rv, rv->valuestring);
}

static void handle_line(struct xfer *x, const char *line, size_t n) {
  struct sw_kube *k = x->w->k;
  int res = x->w->res;
  cJSON *ev = cJSON_ParseWithLength(line, n);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
  const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
  if (!cJSON_IsString(type) || !cJSON_IsObject(obj)) {
    if (n) SW_LOG(SW_L_WARN, "kubernetes", "unreadable %s watch event ignored", k_res_kind[res]);
    cJSON_Delete(ev);
    return;
  }
  const char *t = type->valuestring;
  if (strcmp(t, "ERROR") == 0) {
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
    if (cJSON_IsNumber(code) && code->valueint == 410) x->expired = 1;
    else SW_LOG(SW_L_WARN, "kubernetes", "%s watch: error event %.200s", k_res_kind[res], line);
    cJSON_Delete(ev);
    return;
  }
  take_rv(x, obj);
  int del = strcmp(t, "DELETED") == 0;
  if (del || strcmp(t, "ADDED") == 0 || strcmp(t, "MODIFIED") == 0) {
    char *key = NULL;
    cJSON *facts = sw__kube_facts(k, res, obj, &key);
    if (key) {
      char *text = facts && !del ? cJSON_PrintUnformatted(facts) : NULL;
      const char *keys[1] = {key}, *texts[1] = {text};
      char *kcopy = strdup(key);
      if (del) {
        cJSON_Delete(facts);
        facts = NULL;
      }
      pthread_mutex_lock(&k->mu);
      int changed = sw__kube_set_put(k, res, key, facts, sw_time_mono_ms());
      if (changed) atomic_fetch_add(&k->gen, 1);
      sw__kube_set_purge(k, sw_time_mono_ms());
      pthread_mutex_unlock(&k->mu);
      keys[0] = kcopy;
      /* Most MODIFIED events are status updates that change nothing kept: no write then. */
      if (kcopy && ((text && changed) || del)) persist(x, 0, 1, keys, texts);
      free(kcopy);
      free(text);
    }
  } /* BOOKMARK: only its resourceVersion */
  cJSON_Delete(ev);
}

/* ---- list and watch ---- */

static int url_for(struct sw_kube *k, int res, char *out, size_t n, const char *extra) {
  const char *node = k->conf->node_name;
  char *esc = curl_easy_escape(NULL, node, 0);
  int len = res == SW__KUBE_PODS
                ? snprintf(out, n, "%s/api/v1/pods?fieldSelector=spec.nodeName%%3D%s&%s", k->api,
                           esc ? esc : "", extra)
                : snprintf(out, n, "%s/api/v1/namespaces?%s", k->api, extra);
  curl_free(esc);
  return len > 0 && (size_t)len < n ? 0 : -1;
}

static int list(struct xfer *x, char *why, size_t whyn) {
  struct sw_kube *k = x->w->k;
  int res = x->w->res, rc = KW_OK;
  char cont[2048] = "", url[4096], extra[2200];
  struct sw__kube_obj *objs = NULL;
  size_t n = 0, cap = 0;
  for (int expired = 0;;) {
    char *esc = cont[0] ? curl_easy_escape(NULL, cont, 0) : NULL;
    snprintf(extra, sizeof extra, "limit=%d%s%s", LIST_PAGE, esc ? "&continue=" : "", esc ? esc : "");
    curl_free(esc);
    if (url_for(k, res, url, sizeof url, extra)) return KW_HTTP;
    long status;
    sw_buf_reset(&x->body);
    x->watch = 0;
    rc = get(x, url, 60, &status, why, whyn);
    if (rc == KW_EXPIRED && cont[0] && !expired++) { /* the continue token expired: list again */
      for (size_t i = 0; i < n; i++) free(objs[i].key), cJSON_Delete(objs[i].facts);
      n = 0;
      cont[0] = '\0';
      continue;
    }
    if (rc) break;
    cJSON *doc = cJSON_ParseWithLength(x->body.data ? x->body.data : "", x->body.len);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
    if (!doc || !cJSON_IsArray(items)) {
      snprintf(why, whyn, "the %s list is not a list", k_res_kind[res]);
      cJSON_Delete(doc);
      rc = KW_HTTP;
      break;
    }
    for (const cJSON *it = items->child; it; it = it->next) {
      char *key;
      cJSON *f = sw__kube_facts(k, res, it, &key);
      if (!f) continue;
      if (n == cap) {
        size_t nc = cap ? cap * 2 : 128;
        struct sw__kube_obj *v = realloc(objs, nc * sizeof *v);
        if (!v) {
          free(key);
          cJSON_Delete(f);
          continue;
        }
        objs = v;
        cap = nc;
      }
      objs[n++] = (struct sw__kube_obj){.key = key, .facts = f};
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(meta, "continue");
    take_rv(x, doc);
    int more = cJSON_IsString(c) && c->valuestring[0] && strlen(c->valuestring) < sizeof cont;
    if (more) strcpy(cont, c->valuestring);
    cJSON_Delete(doc);
    if (!more) break;
  }
  if (rc) {
    for (size_t i = 0; i < n; i++) free(objs[i].key), cJSON_Delete(objs[i].facts);
    free(objs);
    return rc;
  }
  /* The texts to store, before the cache takes the facts. */
  const char **keys = calloc(n ? n : 1, sizeof *keys), **texts = calloc(n ? n : 1, sizeof *texts);
  for (size_t i = 0; keys && texts && i < n; i++) {
    keys[i] = strdup(objs[i].key);
    texts[i] = cJSON_PrintUnformatted(objs[i].facts);
  }
  pthread_mutex_lock(&k->mu);
  sw__kube_set_replace(k, res, objs, n, sw_time_mono_ms());
  k->synced[res] = 1;
  k->stats.relists[res]++;
  pthread_mutex_unlock(&k->mu);
  free(objs);
  int complete = keys && texts;
  for (size_t i = 0; complete && i < n; i++) complete = keys[i] && texts[i];
  if (complete) persist(x, 1, n, keys, texts);
  for (size_t i = 0; keys && texts && i < n; i++) {
    free((char *)keys[i]);
    free((char *)texts[i]);
  }
  free(keys);
  free(texts);
  SW_LOG(SW_L_INFO, "kubernetes", "listed %zu %s (resourceVersion %s)", n, k_res_name[res], x->rv);
  sw_buf_shrink(&x->body, 0); /* a big list's pages are not kept for the watch */
  return KW_OK;
}

static int watch(struct xfer *x, char *why, size_t whyn) {
  struct sw_kube *k = x->w->k;
  char url[4096], extra[512];
  long secs = WATCH_SECONDS + rand() % 60; /* spread the reconnections of many nodes */
  char *esc = curl_easy_escape(NULL, x->rv, 0);
  snprintf(extra, sizeof extra, "watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%ld",
           esc ? esc : "", secs);
  curl_free(esc);
  if (url_for(k, x->w->res, url, sizeof url, extra)) return KW_HTTP;
  long status;
  sw_buf_reset(&x->body);
  x->watch = 1;
  int rc = get(x, url, secs + 30, &status, why, whyn);
  x->watch = 0;
  return rc;
}

/* Waits ms unless stopped; 1 when stopped. */
static int pause_ms(struct sw_kube *k, int64_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
  pthread_mutex_lock(&k->mu);
  while (!atomic_load(&k->stop))
    if (pthread_cond_timedwait(&k->cv, &k->mu, &ts)) break;
  pthread_mutex_unlock(&k->mu);
  return atomic_load(&k->stop);
}

void *sw__kube_watch_main(void *arg) {
  struct sw__kube_watcher *w = arg;
  struct sw_kube *k = w->k;
  struct xfer x = {.w = w};
  char err[512], why[512];
  sw_buf_init(&x.body, LIST_MAX_BYTES);
  if (sw_db_open(k->cfg->data_dir, 0, &x.db, err, sizeof err)) {
    SW_LOG(SW_L_WARN, "kubernetes", "metadata will not be kept across restarts: %s", err);
    x.db = NULL;
  }
  int64_t backoff = 0;
  int failing = 0;
  while (!atomic_load(&k->stop)) {
    why[0] = '\0';
    int listing = x.rv[0] == '\0';
    x.body.max = listing ? LIST_MAX_BYTES : LINE_MAX_BYTES;
    int rc = listing ? list(&x, why, sizeof why) : watch(&x, why, sizeof why);
    if (rc == KW_STOPPED) break;
    /* A list answered 410 (a continue token expired twice running) is a failure like another:
     * listing again at once could spin. */
    if (rc == KW_OK || (rc == KW_EXPIRED && !listing)) {
      if (failing) SW_LOG(SW_L_INFO, "kubernetes", "%s: the API server answers again", k_res_name[w->res]);
      failing = 0;
      backoff = 0;
      pthread_mutex_lock(&k->mu);
      if (rc == KW_EXPIRED) k->stats.api_errors[SW_KUBE_ERR_EXPIRED]++;
      else if (!listing) k->stats.watch_restarts[w->res]++;
      pthread_mutex_unlock(&k->mu);
      if (rc == KW_EXPIRED) {
        SW_LOG(SW_L_INFO, "kubernetes", "%s: resourceVersion %s expired (410 Gone): listing again",
               k_res_name[w->res], x.rv);
        x.rv[0] = '\0';
      }
      continue;
    }
    pthread_mutex_lock(&k->mu);
    k->stats.api_errors[rc == KW_TRANSPORT ? SW_KUBE_ERR_TRANSPORT
                        : rc == KW_EXPIRED  ? SW_KUBE_ERR_EXPIRED
                                            : SW_KUBE_ERR_HTTP]++;
    if (!listing) k->stats.watch_restarts[w->res]++;
    pthread_mutex_unlock(&k->mu);
    backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
    if (backoff > BACKOFF_MAX_MS) backoff = BACKOFF_MAX_MS;
    int64_t wait = backoff / 2 + rand() % (backoff / 2 + 1); /* jitter: nodes do not retry in step */
    SW_LOG(failing ? SW_L_DEBUG : SW_L_WARN, "kubernetes", "%s %s failed: %s; the cache keeps "
           "answering; retrying in %lld ms", k_res_name[w->res], listing ? "list" : "watch", why,
           (long long)wait);
    failing = 1;
    if (pause_ms(k, wait)) break;
  }
  sw_buf_free(&x.body);
  sw_db_close(x.db);
  return NULL;
}

/* ---- lifetime ---- */

static int load_cb(void *arg, const char *key, const char *facts) {
  struct sw__kube_watcher *w = arg;
  cJSON *f = cJSON_Parse(facts);
  char *k = strdup(key);
  if (!f || !k) {
    cJSON_Delete(f);
    free(k);
    return SW_OK; /* an unreadable row is skipped: the list replaces it */
  }
  sw__kube_set_put(w->k, w->res, k, f, 0);
  return SW_OK;
}

static char *default_api(void) {
  const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !host[0]) return NULL;
  char buf[512];
  int v6 = strchr(host, ':') != NULL;
  snprintf(buf, sizeof buf, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "",
           port && port[0] ? port : "443");
  return strdup(buf);
}

int sw_kube_create(const struct sw_config *cfg, struct sw_db *db, struct sw_kube **out, char *err,
                   size_t errlen) {
  struct sw_kube *k = calloc(1, sizeof *k);
  *out = NULL;
  if (!k) return SW_ENOMEM;
  k->cfg = cfg;
  k->conf = &cfg->kubernetes;
  pthread_mutex_init(&k->mu, NULL);
  pthread_cond_init(&k->cv, NULL);
  atomic_init(&k->gen, 1);
  atomic_init(&k->stop, 0);
  int rc = sw__kube_parse_labels(k);
  if (!rc) {
    k->api = k->conf->api_url && k->conf->api_url[0] ? strdup(k->conf->api_url) : default_api();
    if (k->api) {
      size_t n = strlen(k->api);
      while (n && k->api[n - 1] == '/') k->api[--n] = '\0';
    } else {
      snprintf(err, errlen, "kubernetes.api_url is not set and KUBERNETES_SERVICE_HOST is not in "
                            "the environment: pods keep only their path's labels");
    }
  }
  for (int r = 0; !rc && db && r < 2; r++) {
    struct sw__kube_watcher w = {.k = k, .res = r};
    if (sw_db_kube_load(db, k_res_kind[r], load_cb, &w))
      SW_LOG(SW_L_WARN, "kubernetes", "cannot read the stored %s metadata: %s", k_res_kind[r],
             sw_db_errmsg(db));
  }
  k->ns_loaded = k->sets[SW__KUBE_NAMESPACES].n > 0;
  if (rc) {
    sw_kube_free(k);
    return rc;
  }
  *out = k;
  return SW_OK;
}

int sw_kube_start(struct sw_kube *k) {
  if (!k->api) return SW_OK; /* logged at create: the cache alone answers */
  sw_http_global_init(); /* once per process, whichever curl user comes first */
  for (int r = 0; r < 2; r++) {
    k->w[r] = (struct sw__kube_watcher){.k = k, .res = r};
    if (pthread_create(&k->th[r], NULL, sw__kube_watch_main, &k->w[r])) return SW_EIO;
    k->started[r] = 1;
  }
  return SW_OK;
}

void sw_kube_get_stats(struct sw_kube *k, struct sw_kube_stats *s) {
  pthread_mutex_lock(&k->mu);
  *s = k->stats;
  s->pods = k->sets[SW__KUBE_PODS].n;
  s->namespaces = k->sets[SW__KUBE_NAMESPACES].n;
  s->synced = k->synced[0] && k->synced[1];
  pthread_mutex_unlock(&k->mu);
}

void sw_kube_free(struct sw_kube *k) {
  if (!k) return;
  pthread_mutex_lock(&k->mu);
  atomic_store(&k->stop, 1);
  pthread_cond_broadcast(&k->cv);
  pthread_mutex_unlock(&k->mu);
  for (int r = 0; r < 2; r++)
    if (k->started[r]) pthread_join(k->th[r], NULL);
  for (int r = 0; r < 2; r++) sw__kube_set_free(&k->sets[r]);
  for (size_t i = 0; k->labels && i < k->nlabels; i++) {
    free(k->labels[i].src);
    free(k->labels[i].text);
  }
  free(k->labels);
  free(k->api);
  pthread_cond_destroy(&k->cv);
  pthread_mutex_destroy(&k->mu);
  free(k);
}
