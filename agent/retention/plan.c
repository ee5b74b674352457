/* plan.c - PLAN: from the scanned families, the config, a buffer snapshot and the
 * disk pressure level, the ordered list of actions (see retention/retention.h for the order and the
 * rules). Nothing here changes a file: files are only listed, stat'ed, and (O_NOATIME) read
 * for a head fingerprint or the frame headers of NAME.1.zst.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/text.h"
#include "internal.h"
#include "../tail/tfile.h"

#define MS 1000000LL /* ns per ms */

/* An archive as the plan sees it after recovery. */
struct arch {
  struct sw__ret_file *f; /* borrowed from the scan */
  uint64_t size;          /* after a planned CUT */
  int deleted, protect, tailed;
  uint64_t offset;
};

struct fam {
  struct sw__ret_family *sf;
  struct arch *a; /* ascending number: newest first */
  size_t n;
  int rotate, tailed;
  int resuming; /* an in-progress archive: finished first, no rotation or compression this pass */
  const char *why;
};

struct ctx {
  const struct sw_config *cfg;
  const struct sw_db_view *view;
  int64_t now;
  enum sw_pressure pressure;
  uint64_t pdev; /* st_dev of disk_pressure.path; relief acts only there */
  int has_pdev;
  struct sw_retention_plan *p;
  int nomem;
};

static struct sw_ret_action *add(struct ctx *c, enum sw_ret_kind kind, const struct sw_retention_conf *rc,
                                 const struct sw__ret_file *f, const char *path, char *to, const char *reason,
                                 int family) {
  struct sw_retention_plan *p = c->p;
  if (c->nomem) goto oom;
  if (p->n == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 32;
    struct sw_ret_action *a = realloc(p->acts, cap * sizeof *a);
    if (!a) goto oom;
    p->acts = a;
    p->cap = cap;
  }
  struct sw_ret_action *a = &p->acts[p->n];
  memset(a, 0, sizeof *a);
  a->path = path ? strdup(path) : NULL;
  if (path && !a->path) goto oom;
  a->kind = kind;
  a->conf = rc;
  a->to = to;
  a->reason = reason;
  a->family = family;
  if (f) {
    a->bytes = f->size;
    a->dev = f->dev;
    a->ino = f->ino;
  }
  p->n++;
  return a;
oom:
  free(to);
  c->nomem = 1;
  return NULL;
}

static char *arch_name(const char *base, unsigned num, int zst) {
  size_t n = strlen(base) + 16;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s.%u%s", base, num, zst ? ".zst" : "");
  return s;
}

/* Does freeing bytes of a file on dev relieve the filesystem under pressure? */
static int relieves(const struct ctx *c, uint64_t dev) { return !c->has_pdev || dev == c->pdev; }

static void frees(struct ctx *c, struct sw_ret_action *a, uint64_t n, int upto) {
  if (!a) return;
  a->frees = n;
  a->frees_upto = upto;
  if (!upto && relieves(c, a->dev)) c->p->planned += n; /* only bytes freed there count */
}

/* Does a source still have to read f? *tailed: a source follows or will follow it; *seen (may
 * be NULL): the buffer has a row for it. */
static int still_read2(struct ctx *c, const struct sw__ret_file *f, int *tailed, uint64_t *offset, int *seen) {
  const struct sw_db_file_row *best = NULL;
  int dummy;
  if (!seen) seen = &dummy;
  *tailed = *seen = 0;
  *offset = 0;
  for (size_t i = 0; c->view && i < c->view->nfiles; i++) {
    const struct sw_db_file_row *r = &c->view->files[i];
    if (r->dev == f->dev && r->ino == f->ino && (!best || r->id > best->id)) best = r;
  }
  if (best) { /* confirm it is the same file, not a reused inode */
    char head[SW_FP_LEN];
    int fd = sw__ret_open_ro(f->path);
    ssize_t got = fd >= 0 ? pread(fd, head, best->fp_len, 0) : -1;
    if (fd >= 0) close(fd);
    if (got == (ssize_t)best->fp_len && sw_fp_hash(head, (size_t)got) == best->fp_hash) {
      *tailed = *seen = 1;
      *offset = best->offset;
      return best->offset < f->size || best->has_pending;
    }
  }
  if (sw__ret_source_matches(c->cfg, f->path)) { /* not read yet */
    *tailed = 1;
    return f->size > 0;
  }
  return 0;
}

static int still_read(struct ctx *c, const struct sw__ret_file *f, int *tailed, uint64_t *offset) {
  return still_read2(c, f, tailed, offset, NULL);
}

static void defer(struct ctx *c, const struct sw_retention_conf *rc, const struct sw__ret_file *f, uint64_t off,
                  int family) {
  struct sw_ret_action *a = add(c, SW_RET_DEFER, rc, f, f->path, NULL, "being-read", family);
  if (a) a->keep = off;
}

static int cmp_num(const void *x, const void *y) {
  const struct arch *a = x, *b = y;
  return a->f->num < b->f->num ? -1 : a->f->num > b->f->num;
}

/* The file an in-progress archive compresses: the live file or a plain archive of its inode. */
static struct sw__ret_file *part_source(struct sw__ret_family *f, const struct sw__ret_file *part) {
  if (f->live.path && f->live.ino == part->src_ino && f->live.dev == part->dev) return &f->live;
  for (size_t i = 0; i < f->narch; i++)
    if (!f->arch[i].zst && f->arch[i].ino == part->src_ino && f->arch[i].dev == part->dev) return &f->arch[i];
  return NULL;
}

/* In-progress archives (punch.c) are finished, never deleted: once the source's
 * blocks are released they hold the only copy. */
static void resume_parts(struct ctx *c, struct fam *fm, int fi) {
  struct sw__ret_family *f = fm->sf;
  for (size_t i = 0; i < f->npart; i++) {
    struct sw__ret_file *pt = &f->parts[i], *src = part_source(f, pt);
    size_t n = strlen(pt->path) - strlen(strstr(pt->path, SW__RET_PART));
    struct sw_ret_action *a = add(c, SW_RET_RESUME, f->conf, pt, pt->path, strndup(pt->path, n), "recovery", fi);
    if (!a) return;
    if (!a->to || (src && !(a->src = strdup(src->path)))) c->nomem = 1;
    if (src) { /* the identity exec checks and the buffer's offset are the source's */
      int seen;
      uint64_t off;
      a->dev = src->dev;
      a->ino = src->ino;
      a->live = src == &f->live;
      (void)still_read2(c, src, &a->tailed, &off, &seen);
      frees(c, a, src->size, 1);
    }
    fm->resuming = 1;
  }
}

/* Recovery of what a crash interrupted; fills fm->a with the archives that remain. */
static void recover(struct ctx *c, struct fam *fm, int fi) {
  struct sw__ret_family *f = fm->sf;
  const struct sw_retention_conf *rc = f->conf;
  for (size_t i = 0; i < f->ntmp; i++)
    frees(c, add(c, SW_RET_DROP_TMP, rc, &f->tmps[i], f->tmps[i].path, NULL, "recovery", fi), f->tmps[i].size, 0);
  resume_parts(c, fm, fi);
  for (size_t i = 0; i < f->narch; i++) {
    struct sw__ret_file *x = &f->arch[i], *twin = NULL;
    int is_src = 0;
    for (size_t k = 0; k < f->npart; k++) is_src |= part_source(f, &f->parts[k]) == x;
    if (is_src) continue; /* being compressed: not an archive to keep, delete or compress */
    for (size_t k = 0; k < f->narch; k++)
      if (k != i && f->arch[k].num == x->num && f->arch[k].zst != x->zst) twin = &f->arch[k];
    if (twin && !x->zst) { /* NAME.N and NAME.N.zst: the compression got as far as its rename */
      int tailed;
      uint64_t off;
      if (still_read(c, x, &tailed, &off)) {
        defer(c, rc, x, off, fi);
      } else {
        struct sw_ret_action *a = add(c, SW_RET_FINISH, rc, x, x->path, strdup(twin->path), "recovery", fi);
        if (a && !a->to) c->nomem = 1;
        frees(c, a, x->size, 0);
      }
      continue; /* the .zst stands for this number */
    }
    fm->a[fm->n++] = (struct arch){.f = x, .size = x->size};
  }
  qsort(fm->a, fm->n, sizeof *fm->a, cmp_num);
  if (fm->n && fm->a[0].f->num == 1 && fm->a[0].f->zst) { /* a copytruncate tail may be cut */
    struct sw__ret_file *z = fm->a[0].f;
    uint64_t good = 0;
    int fd = sw__ret_open_ro(z->path);
    int rc2 = fd >= 0 ? sw__zst_walk(fd, z->size, &good) : SW_EIO;
    if (fd >= 0) close(fd);
    if (!rc2 && good < z->size) {
      struct sw_ret_action *a = add(c, SW_RET_CUT, rc, z, z->path, NULL, "recovery", fi);
      if (a) a->keep = good;
      frees(c, a, z->size - good, 0);
      fm->a[0].size = good;
    }
  }
}

static int64_t age_start(const struct fam *fm) {
  int64_t t = fm->sf->live.btime_ns;
  for (size_t i = 0; i < fm->n; i++) /* the newest archive's mtime: when the live file began */
    if (fm->a[i].f->mtime_ns > t) t = fm->a[i].f->mtime_ns;
  return t;
}

static void decide_rotation(struct ctx *c, struct fam *fm, int fi) {
  const struct sw__ret_file *l = &fm->sf->live;
  const struct sw_retention_conf *rc = fm->sf->conf;
  if (!l->path || l->size == 0 || fm->resuming) return;
  int64_t start = age_start(fm);
  if (rc->max_size && l->size >= rc->max_size) fm->why = "size";
  else if (rc->max_age_ms && start > 0 && c->now - start >= (int64_t)rc->max_age_ms * MS) fm->why = "age";
  else if (c->pressure >= SW_PRESSURE_SOFT && l->size >= c->cfg->disk_pressure.rotate_min_size &&
           relieves(c, l->dev))
    fm->why = "pressure";
  if (!fm->why) return;
  int tailed, seen;
  uint64_t off;
  int reading = still_read2(c, l, &tailed, &off, &seen);
  fm->tailed = tailed;
  /* copytruncate: truncation would lose unread bytes. rename: a file its source has not found
   * yet would be hidden from it under a name its glob does not match. */
  /* Under pressure a compressing copytruncate goes in pieces (punch.c): it releases
   * only what the buffer has committed and truncates only once it has all, so it need not wait. */
  int pieces = c->pressure >= SW_PRESSURE_SOFT && rc->codec == SW_CODEC_ZSTD;
  if ((rc->method == SW_ROTATE_COPYTRUNCATE && reading && !pieces) || (tailed && !seen)) {
    struct sw_ret_action *a = add(c, SW_RET_DEFER, rc, l, l->path, NULL, seen ? "being-read" : "not-yet-read", fi);
    if (a) a->keep = off;
    fm->why = NULL;
    return;
  }
  fm->rotate = 1;
}

static void keep_rules(struct ctx *c, struct fam *fm, int fi) {
  const struct sw_retention_conf *rc = fm->sf->conf;
  uint64_t cum = 0;
  int over = 0;
  for (size_t i = 0; i < fm->n; i++) {
    struct arch *a = &fm->a[i];
    const char *why = NULL;
    if (i + (size_t)fm->rotate >= rc->keep_count) why = "count";
    else if (rc->keep_max_age_ms && c->now - a->f->mtime_ns > (int64_t)rc->keep_max_age_ms * MS) why = "max-age";
    else if (rc->keep_max_total_bytes && (over || cum + a->size > rc->keep_max_total_bytes)) why = "max-total-bytes";
    if (why && !strcmp(why, "max-total-bytes")) over = 1;
    a->protect = still_read(c, a->f, &a->tailed, &a->offset);
    if (!why || a->protect) {
      if (why) defer(c, rc, a->f, a->offset, fi);
      cum += a->size;
      continue;
    }
    a->deleted = 1;
    frees(c, add(c, SW_RET_DELETE, rc, a->f, a->f->path, NULL, why, fi), a->size, 0);
  }
}

/* ---- hard pressure: oldest archives of all families, already-shipped data first ---- */

struct cand {
  struct arch *a;
  int fi, unshipped;
};

static int cmp_cand(const void *x, const void *y) {
  const struct cand *a = x, *b = y;
  if (a->unshipped != b->unshipped) return a->unshipped - b->unshipped;
  if (a->a->f->mtime_ns != b->a->f->mtime_ns) return a->a->f->mtime_ns < b->a->f->mtime_ns ? -1 : 1;
  return strcmp(a->a->f->path, b->a->f->path);
}

/* Is every record of archive a acknowledged by every sink (or never to be shipped)? */
static int unshipped(struct ctx *c, const struct fam *fm, const struct arch *a) {
  const struct sw_db_view *v = c->view;
  int family_tailed = sw__ret_source_matches(c->cfg, fm->sf->base) || a->tailed;
  if (!family_tailed || !v || v->nsinks == 0) return 0; /* nothing of it will ever ship */
  for (size_t i = 0; i < v->nfiles; i++)
    if (v->files[i].dev == a->f->dev && v->files[i].ino == a->f->ino) return v->files[i].has_unacked;
  /* A new inode (NAME.N.zst): compressed only once fully read, so its records were committed
   * before its ctime; chunks committed before the oldest unacknowledged one are all acked. */
  return v->oldest_unacked_ns && a->f->ctime_ns >= v->oldest_unacked_ns;
}

static void pressure_deletes(struct ctx *c, struct fam *fams, size_t nf, uint64_t need) {
  if (c->pressure < SW_PRESSURE_HARD || need <= c->p->planned) return;
  size_t total = 0, k = 0;
  for (size_t i = 0; i < nf; i++) total += fams[i].n;
  struct cand *cs = calloc(total ? total : 1, sizeof *cs);
  if (!cs) {
    c->nomem = 1;
    return;
  }
  for (size_t i = 0; i < nf; i++)
    for (size_t j = 0; j < fams[i].n; j++) {
      struct arch *a = &fams[i].a[j];
      if (a->deleted || a->protect || !relieves(c, a->f->dev)) continue; /* frees nothing there */
      cs[k++] = (struct cand){.a = a, .fi = (int)i, .unshipped = unshipped(c, &fams[i], a)};
    }
  qsort(cs, k, sizeof *cs, cmp_cand);
  for (size_t i = 0; i < k && c->p->planned < need; i++) {
    struct arch *a = cs[i].a;
    a->deleted = 1;
    struct sw_ret_action *act = add(c, SW_RET_DELETE, fams[cs[i].fi].sf->conf, a->f, a->f->path, NULL,
                                    cs[i].unshipped ? "pressure-unshipped" : "pressure-shipped", cs[i].fi);
    frees(c, act, a->size, 0);
  }
  free(cs);
}

/* ---- shifts, rotations, compressions ---- */

static void rotate_family(struct ctx *c, struct fam *fm, int fi) {
  struct sw__ret_family *f = fm->sf;
  const struct sw_retention_conf *rc = f->conf;
  for (size_t i = fm->n; i-- > 0;) { /* highest number first: nothing is overwritten */
    struct arch *a = &fm->a[i];
    if (a->deleted) continue;
    add(c, SW_RET_SHIFT, rc, a->f, a->f->path, arch_name(f->base, a->f->num + 1, a->f->zst), "shift", fi);
  }
  int zst = rc->method == SW_ROTATE_COPYTRUNCATE && rc->codec == SW_CODEC_ZSTD &&
            (!rc->delay_compress || c->pressure >= SW_PRESSURE_SOFT);
  struct sw_ret_action *a = add(c, SW_RET_ROTATE, rc, &f->live, f->live.path, arch_name(f->base, 1, zst), fm->why, fi);
  if (!a) return;
  a->compress = zst;
  a->tailed = fm->tailed;
  frees(c, a, zst ? f->live.size : 0, zst);
}

static void compress_family(struct ctx *c, struct fam *fm, int fi) {
  struct sw__ret_family *f = fm->sf;
  const struct sw_retention_conf *rc = f->conf;
  if (rc->codec != SW_CODEC_ZSTD || fm->resuming) return;
  int delay = rc->delay_compress && c->pressure == SW_PRESSURE_NONE;
  if (fm->rotate && rc->method == SW_ROTATE_RENAME && !delay) { /* the file just renamed */
    char *path = arch_name(f->base, 1, 0);
    int tailed;
    uint64_t off;
    if (!path) {
      c->nomem = 1;
      return;
    }
    struct sw__ret_file l = f->live;
    l.path = path;
    if (still_read(c, &f->live, &tailed, &off)) {
      defer(c, rc, &l, off, fi);
      free(path);
    } else {
      struct sw_ret_action *a = add(c, SW_RET_COMPRESS, rc, &l, path, arch_name(f->base, 1, 1), "rotated", fi);
      free(path);
      if (a) a->fresh = 1;
      frees(c, a, l.size, 1);
    }
  }
  for (size_t i = 0; i < fm->n; i++) {
    struct arch *a = &fm->a[i];
    unsigned num = a->f->num + (unsigned)fm->rotate;
    if (a->deleted || a->f->zst || (delay && num == 1)) continue;
    if (a->protect) {
      defer(c, rc, a->f, a->offset, fi);
      continue;
    }
    char *path = arch_name(f->base, num, 0);
    if (!path) {
      c->nomem = 1;
      return;
    }
    struct sw__ret_file x = *a->f;
    x.path = path;
    frees(c, add(c, SW_RET_COMPRESS, rc, &x, path, arch_name(f->base, num, 1), "archive", fi), a->size, 1);
    free(path);
  }
}

static void plan_entries(struct ctx *c, struct fam *fams, size_t nf) {
  for (size_t e = 0; e < c->cfg->nretention; e++) {
    const struct sw_retention_conf *rc = &c->cfg->retention[e];
    int renamed = 0;
    for (size_t i = 0; i < nf; i++) {
      if (fams[i].sf->conf != rc || !fams[i].rotate) continue;
      rotate_family(c, &fams[i], (int)i);
      renamed |= rc->method == SW_ROTATE_RENAME;
    }
    if (renamed && rc->signal_pid_file) add(c, SW_RET_SIGNAL, rc, NULL, rc->signal_pid_file, NULL, "rotated", -1);
    for (size_t i = 0; i < nf; i++)
      if (fams[i].sf->conf == rc) compress_family(c, &fams[i], (int)i);
  }
}

int sw_retention_plan(const struct sw_config *cfg, int64_t now_ns, const struct sw_db_view *view,
                      enum sw_pressure pressure, uint64_t need, struct sw_retention_plan **out) {
  struct sw__ret_scan scan;
  struct fam *fams = NULL;
  struct ctx c = {.cfg = cfg, .view = view, .now = now_ns, .pressure = pressure};
  *out = NULL;
  int rc = sw__ret_scan(cfg, &scan);
  if (rc) return rc;
  c.p = calloc(1, sizeof *c.p);
  fams = calloc(scan.n ? scan.n : 1, sizeof *fams);
  if (!c.p || !fams) goto oom;
  c.p->pressure = pressure;
  struct stat pst;
  if (cfg->disk_pressure.path && stat(cfg->disk_pressure.path, &pst) == 0) {
    c.pdev = (uint64_t)pst.st_dev;
    c.has_pdev = 1;
  }
  c.p->need = need;
  c.p->nfamilies = (int)scan.n;
  for (size_t i = 0; i < scan.n; i++) {
    fams[i].sf = &scan.fam[i];
    fams[i].a = calloc(scan.fam[i].narch ? scan.fam[i].narch : 1, sizeof *fams[i].a);
    if (!fams[i].a) goto oom;
    recover(&c, &fams[i], (int)i);
    decide_rotation(&c, &fams[i], (int)i);
    keep_rules(&c, &fams[i], (int)i);
  }
  pressure_deletes(&c, fams, scan.n, need);
  plan_entries(&c, fams, scan.n);
  if (c.nomem) goto oom;
  *out = c.p;
  c.p = NULL;
  rc = SW_OK;
  goto cleanup;
oom:
  rc = SW_ENOMEM;
cleanup:
  for (size_t i = 0; fams && i < scan.n; i++) free(fams[i].a);
  free(fams);
  sw_retention_plan_free(c.p);
  /* Actions keep their own copies of paths: the scan can go. */
  sw__ret_scan_free(&scan);
  return rc;
}

void sw_retention_plan_free(struct sw_retention_plan *p) {
  if (!p) return;
  for (size_t i = 0; i < p->n; i++) {
    free(p->acts[i].path);
    free(p->acts[i].to);
    free(p->acts[i].src);
  }
  free(p->acts);
  free(p);
}

static const char *const kind_names[] = {"drop-tmp", "finish", "cut", "delete", "rename",
                                         "rotate", "signal", "compress", "defer", "resume"};

void sw_retention_plan_print(const struct sw_retention_plan *p, FILE *f) {
  static const char *const sig_names[] = {"HUP", "USR1", "USR2", "INT", "TERM", "QUIT", "WINCH"};
  struct sw_buf from, to; /* file names as they may reach a terminal: controls escaped */
  sw_buf_init(&from, 64 << 10);
  sw_buf_init(&to, 64 << 10);
  for (size_t i = 0; i < p->n; i++) {
    const struct sw_ret_action *a = &p->acts[i];
    if (a->kind == SW_RET_SIGNAL) {
      fprintf(f, "signal %s pid_file=%s reason=%s\n", sig_names[a->conf->signal],
              sw_visible_cstr(&from, a->path), a->reason);
      continue;
    }
    fprintf(f, "%s %s%s%s bytes=%llu", kind_names[a->kind], sw_visible_cstr(&from, a->path),
            a->to ? " -> " : "", a->to ? sw_visible_cstr(&to, a->to) : "", (unsigned long long)a->bytes);
    if (a->kind == SW_RET_DEFER)
      fprintf(f, " offset=%llu", (unsigned long long)a->keep);
    else
      fprintf(f, " frees=%s%llu", a->frees_upto ? "0.." : "", (unsigned long long)a->frees);
    if (a->kind == SW_RET_ROTATE)
      fprintf(f, " method=%s", a->conf->method == SW_ROTATE_RENAME ? "rename" : "copytruncate");
    fprintf(f, " reason=%s\n", a->reason);
  }
  sw_buf_free(&from);
  sw_buf_free(&to);
}
