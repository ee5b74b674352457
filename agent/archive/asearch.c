#include "asearch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/text.h"
#include "../../parsers/cri.h"
#include "../../parsers/docker.h"
#include "../../parsers/record.h"
#include "../../sinks/manifest.h"
#include "object.h"

#define GROUP_BYTES (4u << 20) /* a chunk of one label set, as the buffer's */

struct hit {
  int64_t ts;
  uint64_t off;    /* line in res.text */
  uint32_t len, grp;
  uint32_t seq;
  uint8_t stream;
};

struct res {
  struct hit *h;
  size_t n, cap, next; /* next: the first not yet merged */
  struct sw_buf text, labels; /* labels: each group's label text, NUL-terminated */
  size_t *grp_off;
  size_t ngrp, capg;
  uint64_t raw_bytes, records, matches, bad_lines, limit_skipped;
  int failed;
  char why[400];
};

struct ctx {
  struct sw_s3c *s;
  const struct sw_arch_catalog *cat;
  const struct sw_search_query *q;
  const struct sw_arch_search_opts *o;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  size_t next, merged, window;
  struct res **done; /* per object once scanned */
  atomic_int stop;
  int rc;
};

/* One worker's scan of one object: lines grouped into chunks by label set. */
struct scan {
  struct ctx *c;
  struct res *r;
  struct sw_search_scratch sc;
  struct sw_chunk_builder b;
  struct sw_buf raw, line, cur; /* cur: the group's labels text (NUL-terminated) */
  int cur_ok;                   /* the group's labels pass the matchers */
  uint32_t grp, seq;
  int64_t file_ts;              /* local files: the time of lines without one */
  const char *file_labels;
};

static int on_hit(void *arg, const struct sw_record_view *v) {
  struct scan *s = arg;
  struct res *r = s->r;
  r->matches++;
  if (s->c->o->count_only) return SW_OK;
  int rc = sw_grow(&r->h, r->n, &r->cap, sizeof *r->h, 256);
  if (rc) return rc;
  r->h[r->n++] = (struct hit){v->ts_ns, r->text.len, (uint32_t)v->len, s->grp, s->seq++, (uint8_t)v->stream};
  return sw_buf_append(&r->text, v->line, v->len);
}

static int flush_group(struct scan *s) {
  if (!s->b.count) return SW_OK;
  sw_buf_reset(&s->raw);
  int rc = sw_chunk_finish(&s->b, &s->raw);
  if (!rc) rc = sw_search_chunk(s->c->q, &s->sc, s->raw.data, s->raw.len, on_hit, s);
  sw_chunk_builder_reset(&s->b);
  return rc;
}

/* A record of label set labels (n bytes): into the group of its set. */
static int add(struct scan *s, const char *labels, size_t n, int64_t ts, int stream, const char *line,
               size_t len) {
  struct res *r = s->r;
  r->records++;
  r->raw_bytes += len + 1;
  int rc;
  if (s->cur.len != n + 1 || memcmp(s->cur.data, labels, n)) { /* another label set */
    if ((rc = flush_group(s))) return rc;
    sw_buf_reset(&s->cur);
    if ((rc = sw_buf_append(&s->cur, labels, n)) || (rc = sw_buf_putc(&s->cur, 0))) return rc;
    uint64_t deferred = 0;
    s->cur_ok = sw_label_match_chunk(s->c->q->labels, s->c->q->nlabels, s->cur.data, 0, &deferred);
    if (s->cur_ok && !s->c->o->count_only) {
      if ((rc = sw_grow(&r->grp_off, r->ngrp, &r->capg, sizeof *r->grp_off, 16))) return rc;
      r->grp_off[r->ngrp] = r->labels.len;
      s->grp = (uint32_t)r->ngrp++;
      if ((rc = sw_buf_append(&r->labels, s->cur.data, s->cur.len))) return rc;
    }
  }
  if (!s->cur_ok || ts < s->c->q->since || ts >= s->c->q->until) return SW_OK;
  if (sw_chunk_raw_size(&s->b) + len > GROUP_BYTES && (rc = flush_group(s))) return rc;
  return sw_chunk_add(&s->b, ts, stream, 0, line, len);
}

static int on_rec(void *arg, const struct sw_ndjson_rec *nr, uint64_t end) {
  (void)end;
  struct scan *s = arg;
  if (atomic_load(&s->c->stop)) return SW_ECANCELED;
  if (!nr) {
    s->r->bad_lines++;
    return SW_OK;
  }
  sw_buf_reset(&s->line);
  int rc = sw_ndjson_rec_line(nr, &s->line);
  if (rc) {
    s->r->bad_lines++;
    return rc == SW_ECORRUPT ? SW_OK : rc;
  }
  return add(s, nr->labels, nr->labels_len, nr->ts_ns, nr->stream, s->line.data, s->line.len);
}

/* A line of a local file: docker json-file, CRI, or plain text. */
static int on_text(void *arg, const char *p, size_t n, uint64_t end) {
  (void)end;
  struct scan *s = arg;
  if (atomic_load(&s->c->stop)) return SW_ECANCELED;
  if (n && p[n - 1] == '\r') n--;
  struct sw_docker_line d;
  struct sw_cri_line c;
  int rc;
  size_t ll = strlen(s->file_labels);
  if (n && p[0] == '{') {
    if ((rc = sw_buf_reserve(&s->line, n + 1))) return rc;
    if (!sw_docker_parse(p, n, s->line.data, s->line.cap, &d))
      return add(s, s->file_labels, ll, d.ts_ns ? d.ts_ns : s->file_ts, d.stream, d.log, d.log_len);
  }
  if (!sw_cri_parse(p, n, &c)) return add(s, s->file_labels, ll, c.ts_ns, c.stream, c.content, c.content_len);
  return add(s, s->file_labels, ll, s->file_ts, SW_STREAM_FILE, p, n);
}

static int read_file(const char *path, struct sw_buf *out, int64_t *mtime, char *why, size_t n) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (!f || fstat(fileno(f), &st)) {
    snprintf(why, n, "cannot open: %s", strerror(errno));
    if (f) fclose(f);
    return SW_EIO;
  }
  *mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  int rc = sw_buf_reserve(out, (size_t)st.st_size + 1);
  while (!rc) {
    if (sw_buf_reserve(out, 1 << 16)) {
      rc = SW_ENOMEM;
      break;
    }
    size_t got = fread(out->data + out->len, 1, out->cap - out->len, f);
    out->len += got;
    if (!got) break;
  }
  if (!rc && ferror(f)) {
    snprintf(why, n, "read error: %s", strerror(errno));
    rc = SW_EIO;
  }
  fclose(f);
  return rc;
}

static int scan_object(struct ctx *c, struct sw_s3c_conn *k, size_t i, struct res *r, struct scan *s,
                       struct sw_buf *blob) {
  const struct sw_arch_obj *o = &c->cat->o[i];
  sw_buf_reset(blob);
  int rc;
  if (c->s) {
    rc = sw_s3c_get(k, o->key, blob, r->why, sizeof r->why);
    if (rc == SW_EIO || rc == SW_ENOTFOUND) {
      r->failed = 1;
      return SW_OK;
    }
    if (rc) return rc;
    char why[300];
    if (o->has_manifest && sw_arch_check_bytes(o, blob->data, blob->len, why, sizeof why)) {
      snprintf(r->why, sizeof r->why, "%s: skipped", why);
      r->failed = 1;
      return SW_OK;
    }
    rc = sw_arch_records(blob->data, blob->len, o->gzip, 0, on_rec, s);
  } else {
    struct sw_buf lb; /* the file's label set, {"file":PATH}: add() copies it into its group */
    sw_buf_init(&lb, SIZE_MAX);
    rc = sw_buf_append(&lb, "{\"file\":\"", 9);
    if (!rc) rc = sw_buf_put_json_str(&lb, o->key, strlen(o->key), NULL);
    if (!rc) rc = sw_buf_append(&lb, "\"}", 3);
    if (!rc) rc = read_file(o->key, blob, &s->file_ts, r->why, sizeof r->why);
    if (!rc) {
      s->file_labels = lb.data;
      enum sw_arch_codec codec = sw_ends_with(o->key, ".zst")  ? SW_ARCH_ZSTD
                                 : sw_ends_with(o->key, ".gz") ? SW_ARCH_GZIP
                                                               : SW_ARCH_PLAIN;
      rc = sw_arch_lines(blob->data, blob->len, codec, 0, on_text, s);
      s->file_labels = NULL;
    }
    sw_buf_free(&lb);
    if (rc == SW_EIO) { /* unreadable: named, the others are searched */
      r->failed = 1;
      return SW_OK;
    }
  }
  if (rc == SW_ECORRUPT) {
    snprintf(r->why, sizeof r->why, "does not decompress (damaged or cut short): what was read before is searched");
    r->failed = 1;
    rc = SW_OK;
  }
  if (!rc) rc = flush_group(s);
  if (!rc && r->bad_lines && !r->failed)
    snprintf(r->why, sizeof r->why, "%llu lines are not records: skipped", (unsigned long long)r->bad_lines);
  return rc;
}

static void res_free(struct res *r) {
  if (!r) return;
  free(r->h);
  free(r->grp_off);
  sw_buf_free(&r->text);
  sw_buf_free(&r->labels);
  free(r);
}

static int cmp_hit(const void *a, const void *b) {
  const struct hit *x = a, *y = b;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void *worker(void *arg) {
  struct ctx *c = arg;
  struct sw_s3c_conn *k = c->s ? sw_s3c_conn_new(c->s) : NULL;
  struct scan s = {.c = c};
  struct sw_buf blob;
  sw_buf_init(&blob, SIZE_MAX);
  sw_buf_init(&s.raw, SIZE_MAX);
  sw_buf_init(&s.line, SIZE_MAX);
  sw_buf_init(&s.cur, SIZE_MAX);
  sw_chunk_builder_init(&s.b, GROUP_BYTES * 2);
  int rc = (c->s && !k) ? SW_ENOMEM : sw_search_scratch_init(&s.sc, c->q);
  for (;;) {
    pthread_mutex_lock(&c->mu);
    while (!rc && !c->rc && !atomic_load(&c->stop) && c->next < c->cat->n && c->next >= c->merged + c->window)
      pthread_cond_wait(&c->cv, &c->mu);
    size_t i = c->next;
    int go = !rc && !c->rc && !atomic_load(&c->stop) && i < c->cat->n;
    if (go) c->next++;
    pthread_mutex_unlock(&c->mu);
    if (!go) break;
    struct res *r = calloc(1, sizeof *r);
    if (!r) {
      rc = SW_ENOMEM;
      break;
    }
    sw_buf_init(&r->text, SIZE_MAX);
    sw_buf_init(&r->labels, SIZE_MAX);
    s.r = r;
    s.cur.len = 0;
    s.seq = 0;
    sw_chunk_builder_reset(&s.b);
    uint64_t before = s.sc.limit_skipped;
    rc = scan_object(c, k, i, r, &s, &blob);
    r->limit_skipped = s.sc.limit_skipped - before;
    if (!rc && r->n) qsort(r->h, r->n, sizeof *r->h, cmp_hit);
    if (blob.cap > (64u << 20)) sw_buf_shrink(&blob, 0);
    pthread_mutex_lock(&c->mu);
    if (rc) res_free(r);
    else c->done[i] = r;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
  }
  pthread_mutex_lock(&c->mu);
  if (rc && rc != SW_ECANCELED && !c->rc) c->rc = rc;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  sw_search_scratch_free(&s.sc);
  sw_chunk_builder_free(&s.b);
  sw_buf_free(&blob);
  sw_buf_free(&s.raw);
  sw_buf_free(&s.line);
  sw_buf_free(&s.cur);
  sw_s3c_conn_free(k);
  return NULL;
}

/* ---- merging: a heap of the next unmerged hit of each scanned object ---- */

struct heap {
  size_t *obj; /* object indices */
  size_t n;
};

static int before(struct res **done, size_t a, size_t b) {
  const struct hit *x = &done[a]->h[done[a]->next], *y = &done[b]->h[done[b]->next];
  return x->ts != y->ts ? x->ts < y->ts : a < b;
}

static void heap_push(struct heap *hp, struct res **done, size_t v) {
  size_t i = hp->n++;
  hp->obj[i] = v;
  while (i && before(done, hp->obj[i], hp->obj[(i - 1) / 2])) {
    size_t p = (i - 1) / 2, t = hp->obj[p];
    hp->obj[p] = hp->obj[i];
    hp->obj[i] = t;
    i = p;
  }
}

static void heap_fix_top(struct heap *hp, struct res **done) {
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < hp->n && before(done, hp->obj[l], hp->obj[m])) m = l;
    if (r < hp->n && before(done, hp->obj[r], hp->obj[m])) m = r;
    if (m == i) return;
    size_t t = hp->obj[m];
    hp->obj[m] = hp->obj[i];
    hp->obj[i] = t;
    i = m;
  }
}

int sw_arch_search(struct sw_s3c *s, const struct sw_arch_catalog *cat, const struct sw_search_query *q,
                   const struct sw_arch_search_opts *o,
                   void (*report)(void *arg, const char *key, const char *why), void *report_arg,
                   struct sw_arch_search_stats *st, char *err, size_t errlen) {
  memset(st, 0, sizeof *st);
  unsigned threads = o->threads;
  if (!threads) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n > 0 ? (unsigned)n : 1;
  }
  if (threads > 64) threads = 64;
  struct ctx c = {.s = s, .cat = cat, .q = q, .o = o, .window = 2 * (size_t)threads};
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.cv, NULL);
  atomic_init(&c.stop, 0);
  c.done = calloc(cat->n + 1, sizeof *c.done);
  struct heap hp = {calloc(cat->n + 1, sizeof(size_t)), 0};
  if (!c.done || !hp.obj) {
    free(c.done);
    free(hp.obj);
    return SW_ENOMEM;
  }
  pthread_t t[64];
  unsigned started = 0;
  for (; started < threads; started++)
    if (pthread_create(&t[started], NULL, worker, &c)) break;
  int rc = started ? SW_OK : SW_ENOMEM, stop = 0;
  uint64_t emitted = 0;
  for (size_t i = 0; i < cat->n && !rc && !stop; i++) {
    pthread_mutex_lock(&c.mu);
    while (!c.done[i] && !c.rc) pthread_cond_wait(&c.cv, &c.mu);
    rc = c.rc;
    struct res *r = c.done[i];
    pthread_mutex_unlock(&c.mu);
    if (rc) break;
    st->objects++;
    st->raw_bytes += r->raw_bytes;
    st->records += r->records;
    st->bad_lines += r->bad_lines;
    st->match_limit_skipped += r->limit_skipped;
    st->failed += r->failed;
    if ((r->failed || r->bad_lines) && report) report(report_arg, cat->o[i].key, r->why);
    if (o->count_only) {
      st->matches += r->matches;
    } else if (r->n) {
      heap_push(&hp, c.done, i);
    }
    /* Everything earlier than what the next object may hold can go out. */
    int64_t bound = i + 1 < cat->n && cat->o[i + 1].has_manifest ? cat->o[i + 1].m.ts_min : INT64_MAX;
    while (hp.n && !stop) {
      size_t top = hp.obj[0];
      struct res *tr = c.done[top];
      const struct hit *h = &tr->h[tr->next];
      if (h->ts >= bound) break;
      struct sw_search_hit sh = {.chunk_id = (int64_t)(top << 24 | h->grp), .source = "",
                                 .labels_json = tr->labels.data + tr->grp_off[h->grp], .format = "archive"};
      sh.rec = (struct sw_record_view){.ts_ns = h->ts, .stream = h->stream, .line = tr->text.data + h->off,
                                       .len = h->len};
      st->matches++;
      if (o->emit(o->arg, &sh) || (o->limit && ++emitted >= o->limit)) stop = 1;
      if (++tr->next == tr->n) {
        hp.obj[0] = hp.obj[--hp.n];
        res_free(tr);
        c.done[top] = (struct res *)1; /* merged; never read again */
      }
      if (hp.n) heap_fix_top(&hp, c.done);
    }
    pthread_mutex_lock(&c.mu);
    if (c.done[i] == r && (o->count_only || !r->n)) {
      res_free(r);
      c.done[i] = (struct res *)1;
    }
    c.merged = i + 1;
    pthread_cond_broadcast(&c.cv);
    pthread_mutex_unlock(&c.mu);
  }
  atomic_store(&c.stop, 1);
  pthread_mutex_lock(&c.mu);
  pthread_cond_broadcast(&c.cv);
  pthread_mutex_unlock(&c.mu);
  for (unsigned i = 0; i < started; i++) pthread_join(t[i], NULL);
  for (size_t i = 0; i < cat->n; i++)
    if (c.done[i] != (struct res *)1) res_free(c.done[i]);
  free(c.done);
  free(hp.obj);
  pthread_mutex_destroy(&c.mu);
  pthread_cond_destroy(&c.cv);
  if (rc) snprintf(err, errlen, "%s", sw_strerror(rc));
  return rc;
}
