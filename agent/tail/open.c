/* open.c - a file's identity and opening: the stored states of files not open yet
 * (`known`), matching a newly seen file against them by device, inode and head fingerprint,
 * opening it at the right offset, and the ends of a file's life (truncated, released). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "labels.h"
#include "internal.h"

int sw__tail_fingerprint(int fd, uint32_t want, uint64_t *hash, uint32_t *len) {
  char buf[SW_FP_LEN];
  if (want > SW_FP_LEN) want = SW_FP_LEN;
  ssize_t n = pread(fd, buf, want, 0);
  if (n < 0) return SW_EIO;
  *hash = sw_fp_hash(buf, (size_t)n);
  *len = (uint32_t)n;
  return SW_OK;
}

void sw__tail_known_free(struct sw_known *k) {
  free(k->source);
  free(k->path);
  free(k->pending);
  free(k);
}

int sw_tail_add_known(struct sw_tail *t, const struct sw_file_state *st) {
  struct sw_known *k = calloc(1, sizeof *k);
  if (!k) return SW_ENOMEM;
  k->id = st->id;
  k->source = strdup(st->source);
  k->path = strdup(st->path);
  k->dev = st->dev;
  k->ino = st->ino;
  k->fp_hash = st->fp_hash;
  k->fp_len = st->fp_len;
  k->offset = st->offset;
  if (st->pending_len) {
    k->pending = malloc(st->pending_len);
    if (k->pending) memcpy(k->pending, st->pending, st->pending_len);
    k->pending_len = st->pending_len;
  }
  if (!k->source || !k->path || (st->pending_len && !k->pending)) {
    sw__tail_known_free(k);
    return SW_ENOMEM;
  }
  k->next = t->known;
  t->known = k;
  t->nknown++;
  if (st->id >= t->next_id) t->next_id = st->id + 1;
  return SW_OK;
}

void sw_tail_reserve_id(struct sw_tail *t, int64_t id) {
  if (id >= t->next_id) t->next_id = id + 1;
}

int64_t sw_tail_new_id(struct sw_tail *t) { return t->next_id++; }

static void unlink_known(struct sw_tail *t, struct sw_known *k) {
  for (struct sw_known **pp = &t->known; *pp; pp = &(*pp)->next)
    if (*pp == k) {
      *pp = k->next;
      t->nknown--;
      return;
    }
}

/* Keeps a released/truncated file's state for fingerprint matching (bounded). */
static void add_orphan(struct sw_tail *t, const struct sw_tfile *f) {
  struct sw_file_state st = {.id = f->id, .source = f->src->conf->name, .path = f->path,
                             .dev = f->dev, .ino = f->ino, .fp_hash = f->fp_hash,
                             .fp_len = f->fp_len, .offset = f->line_off};
  if (sw_tail_add_known(t, &st)) return;
  while (t->nknown > SW_MAX_ORPHANS) { /* drop the oldest (list tail) */
    struct sw_known **pp = &t->known;
    while ((*pp)->next) pp = &(*pp)->next;
    struct sw_known *old = *pp;
    *pp = NULL;
    t->nknown--;
    sw__tail_known_free(old);
  }
}

static char *read_docker_name(const char *path) {
  char cfgpath[4096];
  const char *slash = strrchr(path, '/');
  if (!slash) return NULL;
  int n = snprintf(cfgpath, sizeof cfgpath, "%.*s/config.v2.json", (int)(slash - path), path);
  if (n < 0 || (size_t)n >= sizeof cfgpath) return NULL;
  int fd = open(cfgpath, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  char *buf = malloc(1 << 20);
  ssize_t got = buf ? read(fd, buf, 1 << 20) : -1;
  close(fd);
  char *name = got > 0 ? sw_labels_docker_name(buf, (size_t)got) : NULL;
  free(buf);
  return name;
}

static struct sw_known *match_known(struct sw_tail *t, struct sw_source_rt *src, int fd,
                                    const struct stat *st) {
  /* Same inode: trust it when the head still matches (else: inode reuse, start over). */
  for (struct sw_known *k = t->known; k; k = k->next) {
    if (k->dev != (uint64_t)st->st_dev || k->ino != (uint64_t)st->st_ino) continue;
    if (strcmp(k->source, src->conf->name) != 0) continue;
    uint64_t h;
    uint32_t l;
    if (sw__tail_fingerprint(fd, k->fp_len, &h, &l) == 0 && l == k->fp_len && h == k->fp_hash &&
        (uint64_t)st->st_size >= k->offset)
      return k;
  }
  /* Another inode with the same full head: a renamed or copied file, continue it. */
  uint64_t h;
  uint32_t l;
  if (sw__tail_fingerprint(fd, SW_FP_LEN, &h, &l) || l < SW_FP_LEN) return NULL;
  for (struct sw_known *k = t->known; k; k = k->next)
    if (k->fp_len == SW_FP_LEN && k->fp_hash == h && (uint64_t)st->st_size >= k->offset &&
        strcmp(k->source, src->conf->name) == 0)
      return k;
  return NULL;
}

/* A new inode whose full head equals a live file's: a copy in progress (copytruncate) or a
 * plain copy. Wait a few scans for the original to be truncated; then treat it as a copy. */
static struct sw_tfile *live_twin(struct sw_tail *t, int fd, const struct stat *st, int *defer) {
  uint64_t h;
  uint32_t l;
  *defer = 0;
  if (sw__tail_fingerprint(fd, SW_FP_LEN, &h, &l) || l < SW_FP_LEN) return NULL;
  struct sw_tfile *twin = NULL;
  for (struct sw_tfile *f = t->files; f; f = f->next)
    if (f->fp_len == SW_FP_LEN && f->fp_hash == h) twin = f;
  if (!twin) return NULL;
  for (size_t i = 0; i < t->ndeferred; i++) {
    struct sw_deferred *d = &t->deferred[i];
    if (d->dev == (uint64_t)st->st_dev && d->ino == (uint64_t)st->st_ino) {
      if (++d->scans >= SW_COPY_DEFER_SCANS) {
        *d = t->deferred[--t->ndeferred];
        return twin;
      }
      *defer = 1;
      return NULL;
    }
  }
  struct sw_deferred *nd = realloc(t->deferred, (t->ndeferred + 1) * sizeof *nd);
  if (!nd) return NULL;
  t->deferred = nd;
  nd[t->ndeferred++] = (struct sw_deferred){(uint64_t)st->st_dev, (uint64_t)st->st_ino, 0};
  *defer = 1;
  return NULL;
}

static void submit_state(struct sw_tail *t, struct sw_tfile *f) {
  if (sw_ingest_seal(t->ing, f, 1, 0)) SW_LOG(SW_L_ERROR, "tail", "cannot save state of %s", f->disp);
}

char *sw__tail_redacted(struct sw_tail *t, const char *path) {
  return sw_labels_redact_dup(sw_ingest_redact_ctx(t->ing), path);
}

/* Sets f's real path (rp: f keeps it) and what of f leaves the agent: its labels (stored with
 * every chunk) and the path its log lines and /metrics show, both redacted here, once per file
 * rather than per record. Identity and offsets keep using f->path. */
static int describe(struct sw_tail *t, struct sw_tfile *f, char *rp) {
  struct sw_redact_ctx *rctx = sw_ingest_redact_ctx(t->ing);
  f->path = rp;
  f->disp = sw_labels_redact_dup(rctx, rp);
  char *cname = f->src->conf->type == SW_SOURCE_DOCKER ? read_docker_name(rp) : NULL;
  f->labels_json = f->disp ? sw_labels_build(f->src->conf, t->cfg->hostname, rp, cname, NULL, 0, rctx) : NULL;
  free(cname);
  return f->labels_json ? SW_OK : SW_ENOMEM;
}

void sw__tail_open_new(struct sw_tail *t, struct sw_source_rt *src, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ELOOP) fd = open(path, O_RDONLY | O_CLOEXEC); /* symlink: target identity */
  if (fd < 0) {
    int e = errno;
    if (sw_log_enabled(SW_L_WARN)) { /* a path no followed file has a redacted form of yet */
      char *shown = sw__tail_redacted(t, path);
      sw_log(SW_L_WARN, "tail", "cannot open %s: %s", shown ? shown : "(a file)", strerror(e));
      free(shown);
    }
    return;
  }
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    close(fd);
    return;
  }
  for (struct sw_tfile *f = t->files; f; f = f->next)
    if (f->dev == (uint64_t)st.st_dev && f->ino == (uint64_t)st.st_ino) {
      close(fd); /* already followed (another name, e.g. a symlink, or another source) */
      return;
    }
  int defer = 0, save = 0;
  struct sw_known *k = match_known(t, src, fd, &st);
  struct sw_tfile *twin = k ? NULL : live_twin(t, fd, &st, &defer);
  if (defer) { /* a copy in progress: the next scans look at it again */
    close(fd);
    return;
  }
  struct sw_tfile *f = calloc(1, sizeof *f);
  char *rp = realpath(path, NULL);
  if (!f || !rp) goto oom;
  f->fd = fd;
  f->src = src;
  f->dev = (uint64_t)st.st_dev;
  f->ino = (uint64_t)st.st_ino;
  f->size = (uint64_t)st.st_size;
  f->ml_preset = (enum sw_ml_preset)src->conf->multiline.preset;
  for (int i = 0; i < SW_PEND_N; i++) sw_buf_init(&f->pend[i].buf, SIZE_MAX);
  if (describe(t, f, rp)) goto oom;
  if (k) {
    f->id = k->id;
    f->read_off = f->line_off = k->offset;
    if (k->pending_len && sw_ingest_restore_pending(f, k->pending, k->pending_len, k->offset)) {
      SW_LOG(SW_L_WARN, "tail", "unreadable pending state of %s; resuming at its offset", f->disp);
      f->read_off = f->line_off = k->offset;
      f->replay_until = 0;
    }
    save = k->dev != f->dev || k->ino != f->ino || strcmp(k->path, rp) != 0;
    unlink_known(t, k);
    sw__tail_known_free(k);
  } else {
    f->id = t->next_id++;
    save = 1;
    if (twin) {
      f->read_off = f->line_off = twin->line_off;
    } else if (src->conf->read_from == SW_READ_TAIL && !t->first_scan_done) {
      f->read_off = f->line_off = f->size; /* only files present at the first start */
    }
  }
  sw__tail_fingerprint(fd, SW_FP_LEN, &f->fp_hash, &f->fp_len);
  f->last_growth_ms = sw_ingest_now_ms();
  sw__tail_kube_open(t, f);
  struct stat lst;
  f->via_link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
  f->seen = 1;
  f->next = t->files;
  t->files = f;
  SW_LOG(SW_L_INFO, "tail", "following %s from offset %llu (source %s)", f->disp,
         (unsigned long long)f->read_off, src->conf->name);
  if (save) submit_state(t, f);
  return;
oom:
  SW_LOG(SW_L_ERROR, "tail", "out of memory following a file of source %s", src->conf->name);
  free(rp);
  if (f) {
    f->path = NULL;
    sw_ingest_file_free(f);
  }
  close(fd);
}

/* A rotated or deleted file read to its end: its last state is saved (rotated ones stay known
 * as orphans, so a copy found later continues where it ended) and it is closed. */
void sw__tail_release(struct sw_tail *t, struct sw_tfile **pp) {
  struct sw_tfile *f = *pp;
  int deleted = f->state == SW_TF_DELETED;
  sw_ingest_flush_pending(t->ing, f);
  if (sw_ingest_seal(t->ing, f, 1, deleted))
    SW_LOG(SW_L_ERROR, "tail", "cannot save final state of %s", f->disp);
  if (!deleted) add_orphan(t, f);
  SW_LOG(SW_L_INFO, "tail", "released %s file %s at offset %llu",
         deleted ? "deleted" : "rotated", f->disp, (unsigned long long)f->line_off);
  close(f->fd);
  *pp = f->next;
  sw_ingest_file_free(f);
}

/* copytruncate: the old content (maybe in a visible copy) keeps the old state as an orphan. */
void sw__tail_truncated(struct sw_tail *t, struct sw_tfile *f, uint64_t size) {
  SW_LOG(SW_L_INFO, "tail", "%s was truncated (size %llu < offset %llu); reading from the start",
         f->disp, (unsigned long long)size, (unsigned long long)f->read_off);
  if (sw_ingest_seal(t->ing, f, 0, 0)) SW_LOG(SW_L_ERROR, "tail", "cannot seal %s", f->disp);
  add_orphan(t, f);
  f->src->rotations++;
  sw_ingest_flush_pending(t->ing, f); /* pieces of the old content: keep them */
  f->id = t->next_id++;
  f->read_off = f->line_off = 0;
  sw__tail_fingerprint(f->fd, SW_FP_LEN, &f->fp_hash, &f->fp_len);
  submit_state(t, f);
}
