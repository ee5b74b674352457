/* kube.c - the tail's side of Kubernetes metadata (agent/kube/kube.h): a CRI file's pod is
 * looked up when the file is opened and again whenever the cache changes. A pod not known yet
 * keeps its file unread for kubernetes.wait; an excluded pod's file is not read at all, and
 * reading resumes at its end if the exclusion is lifted. New labels apply from the next chunk:
 * the open chunk is sealed with the labels its records were read under. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/log.h"
#include "internal.h"
#include "labels.h"

void sw_tail_set_kube(struct sw_tail *t, struct sw_kube *k) { t->kube = k; }

void sw_tail_kube_counts(const struct sw_tail *t, uint64_t *excluded, uint64_t *waiting,
                         uint64_t *misses) {
  *excluded = *waiting = 0;
  for (const struct sw_tfile *f = t->files; f; f = f->next) {
    *excluded += f->excluded != 0;
    *waiting += f->kube_wait != 0;
  }
  *misses = t->kube_misses;
}

static void seal(struct sw_tail *t, struct sw_tfile *f, int force) {
  if (sw_ingest_seal(t->ing, f, force, 0)) SW_LOG(SW_L_ERROR, "tail", "cannot seal %s", f->disp);
}

static void set_excluded(struct sw_tail *t, struct sw_tfile *f, int excluded) {
  if (excluded == f->excluded) return;
  if (excluded) { /* what was read is committed; nothing more is */
    sw_ingest_flush_pending(t->ing, f);
    seal(t, f, 1);
    SW_LOG(SW_L_INFO, "kubernetes", "%s: excluded by annotation or namespace label, not read", f->disp);
  } else {
    struct stat st;
    uint64_t end = fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : f->read_off;
    if (end > f->read_off && !f->replay_until) {
      f->read_off = f->line_off = f->size = end; /* what was written meanwhile stays unread */
      for (int i = 0; i < SW_PEND_N; i++) f->pend[i].active = 0;
      seal(t, f, 1);
    }
    SW_LOG(SW_L_INFO, "kubernetes", "%s: no longer excluded, reading from offset %llu", f->disp,
           (unsigned long long)f->read_off);
  }
  f->excluded = excluded;
}

/* The pod's view applied to f: exclusion, multiline hint, labels. */
static void apply(struct sw_tail *t, struct sw_tfile *f, const struct sw_kube_view *v) {
  f->kube_wait = 0;
  set_excluded(t, f, v->excluded);
  enum sw_ml_preset p = v->multiline ? v->multiline : (enum sw_ml_preset)f->src->conf->multiline.preset;
  sw_ingest_set_preset(t->ing, f, p);
  if (strcmp(f->payload_format, v->format) != 0) {
    if (f->cb_ready && f->cb.count > 0) seal(t, f, 0); /* a chunk's records share one format */
    memcpy(f->payload_format, v->format, sizeof f->payload_format);
  }
  char *lj = sw_labels_build(f->src->conf, t->cfg->hostname, f->path, NULL, v->labels, v->nlabels,
                             sw_ingest_redact_ctx(t->ing));
  if (!lj) {
    SW_LOG(SW_L_WARN, "kubernetes", "out of memory labelling %s: its labels stay as they were", f->disp);
    return;
  }
  if (strcmp(lj, f->labels_json) == 0) {
    free(lj);
    return;
  }
  if (f->cb_ready && f->cb.count > 0) seal(t, f, 0); /* records so far keep the labels they had */
  free(f->labels_json);
  f->labels_json = lj;
  f->labels_gen++;
}

static void refresh(struct sw_tail *t, struct sw_tfile *f, int64_t now) {
  struct sw_kube_view v;
  int known = sw_kube_lookup(t->kube, f->kube_uid, f->kube_ctr, &v);
  if (known == 1) {
    apply(t, f, &v);
    sw_kube_view_free(&v);
  } else if (known == 0 && f->kube_wait && now >= f->kube_deadline_ms) {
    f->kube_wait = 0;
    t->kube_misses++;
    SW_LOG(SW_L_INFO, "kubernetes", "%s: no metadata for pod %s after %llu ms: read with its path's "
           "labels until it is known", f->disp, f->kube_uid, (unsigned long long)t->cfg->kubernetes.wait_ms);
  }
}

void sw__tail_kube_open(struct sw_tail *t, struct sw_tfile *f) {
  if (!t->kube || f->src->conf->type != SW_SOURCE_CRI) return;
  if (sw_labels_cri_ids(f->path, &f->kube_uid, &f->kube_ctr)) return; /* not a pod's log path */
  f->kube_wait = 1;
  f->kube_deadline_ms = sw_ingest_now_ms() + (int64_t)t->cfg->kubernetes.wait_ms;
  refresh(t, f, sw_ingest_now_ms());
}

int sw__tail_kube_poll(struct sw_tail *t) {
  if (!t->kube) return 0;
  uint64_t gen = sw_kube_generation(t->kube);
  int changed = gen != t->kube_gen, waiting = 0;
  t->kube_gen = gen;
  int64_t now = sw_ingest_now_ms();
  for (struct sw_tfile *f = t->files; f; f = f->next) {
    if (f->kube_uid && (changed || f->kube_wait)) refresh(t, f, now);
    waiting |= f->kube_wait;
  }
  return waiting;
}
