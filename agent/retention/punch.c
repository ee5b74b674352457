/* punch.c - compression that needs only a small, bounded amount of free space, and
 * survives a kill -9 at any instant without losing or duplicating a byte.
 *
 * Under disk pressure a file is compressed in pieces: each piece (at most PIECE_MAX bytes, less
 * when free space is short) becomes one complete zstd frame (content size and checksum in it)
 * appended to the in-progress archive TARGET.tmp-part-<source inode> and fsynced; then the
 * source's blocks that are now durable in the archive are released with
 * fallocate(PUNCH_HOLE|KEEP_SIZE) (size unchanged: readers' offsets stay valid). A 40 MB file on
 * a full filesystem needs about one compressed piece of room, not the whole archive.
 *
 * States of one compression (SOURCE = NAME.N, or the live NAME for copytruncate; D = the
 * decompressed length of the part's complete frames; P = end of the punched range):
 *
 *   NONE --create part (O_EXCL), fsync dir [start]---------------------------> PART(D=0, P=0)
 *   PART --frame of SOURCE[D, D+n), fsync part [append_piece]-----------------> PART(D+n)
 *   PART --punch SOURCE[max(P, HEAD_KEEP), min(D, committed)) [punch]--------> PART
 *        (a tailed SOURCE is archived only as far as the buffer has committed it [to_eof])
 *   PART --D == size of SOURCE, buffer caught up:
 *          live: ftruncate(SOURCE, 0) / rotated: unlink SOURCE [finish]-------> DETACHED
 *   DETACHED --rename part -> TARGET (no replace), fsync dir [finalize]--------> DONE
 *
 * Invariants: the part holds only complete frames except possibly a torn last one (the one
 * being written when a crash came); its decompressed content is SOURCE[0, D) as it was before
 * any punch; P <= D and P <= the offset the buffer has committed (a tailing source never
 * reads a hole); the first HEAD_KEEP bytes are never punched, so SOURCE keeps its head
 * fingerprint (the reader and the planner recognise it) and the part can be matched to it.
 * Once anything is punched the part is the only copy of those bytes: it is never deleted. A
 * crash, a cancel (agent stop) or a deferral (the buffer has not caught up, the writer never
 * pauses) leaves PART; the next plan (agent or `spillway rotate`) lists it as RESUME:
 *   the torn last frame is cut (its bytes are still in SOURCE: punched only after the fsync);
 *   SOURCE is the family's file with that inode whose first min(D, HEAD_KEEP) bytes equal the
 *   part's: it continues from D. No such file (SOURCE was unlinked or truncated: the crash
 *   came in DETACHED): the part is renamed to TARGET as it is.
 * Where fallocate reports EOPNOTSUPP nothing is punched and compression goes on the same way
 * (it then needs as much room as the archive, as before).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "internal.h"

#define PIECE_MAX (1u << 20)  /* bytes of source per frame when there is room */
#define PIECE_MIN (16u << 10) /* ...and when there is not */
#define HEAD_KEEP 4096u       /* never punched: the head fingerprint (SW_FP_LEN) lives here */
#define FINISH_ROUNDS 100     /* attempts (20 ms apart while the buffer lags) to finish */
#define TORN_MAX (PIECE_MAX + PIECE_MAX / 64 + 4096) /* a torn last frame is never larger */

struct job {
  struct sw__ret_ex *x;
  const struct sw_ret_action *a;
  const char *srcp;      /* SOURCE path; NULL: gone */
  char *part;            /* owned */
  int src, pfd;          /* fds or -1 */
  int live, tailed, nopunch;
  uint64_t d, d0, punched, good; /* D, D at start, P, end of the part's complete frames */
  unsigned char head[HEAD_KEEP];
  size_t headlen;
  ZSTD_CCtx *cctx;
  char *in, *out;
  size_t out_cap;
  struct stat st0;       /* SOURCE at start: the archive gets its mode and times */
  int have_st0;          /* st0 is valid (SOURCE was opened) */
};

/* ---- reading a part back ---- */

/* Decompresses the part (checksums verified): j->d and j->good at the end of its last complete
 * frame, j->head its first bytes. A bad frame is accepted only as the torn last one. */
static int part_scan(struct job *j, uint64_t size) {
  ZSTD_DCtx *d = ZSTD_createDCtx();
  size_t icap = ZSTD_DStreamInSize(), ocap = ZSTD_DStreamOutSize();
  char *in = malloc(icap), *out = malloc(ocap);
  uint64_t zoff = 0, cur = 0; /* cur: content of the frame being decoded */
  int rc = SW_ENOMEM, bad = 0;
  j->d = j->good = 0;
  j->headlen = 0;
  if (!d || !in || !out) goto cleanup;
  rc = SW_OK;
  while (!bad && zoff < size) {
    if (sw__ret_cancelled(j->x)) {
      rc = SW_EAGAIN;
      goto cleanup;
    }
    ssize_t got = pread(j->pfd, in, icap, (off_t)zoff);
    if (got <= 0) {
      rc = SW_EIO;
      goto cleanup;
    }
    ZSTD_inBuffer ib = {in, (size_t)got, 0};
    for (;;) { /* until the input is used up and the output no longer fills: all flushed */
      ZSTD_outBuffer ob = {out, ocap, 0};
      size_t left = ZSTD_decompressStream(d, &ob, &ib);
      if (ZSTD_isError(left)) {
        bad = 1;
        break;
      }
      size_t take = ob.pos < HEAD_KEEP - j->headlen ? ob.pos : HEAD_KEEP - j->headlen;
      if (j->d + cur == j->headlen && take) { /* still within the head */
        memcpy(j->head + j->headlen, out, take);
        j->headlen += take;
      }
      cur += ob.pos;
      if (left == 0) { /* a frame ended exactly here */
        j->d += cur;
        cur = 0;
        j->good = zoff + ib.pos;
      }
      if (ib.pos == ib.size && ob.pos < ob.size) break;
    }
    zoff += (uint64_t)got;
  }
  if (j->headlen > j->d) j->headlen = (size_t)j->d; /* only complete frames count */
  if (size - j->good > TORN_MAX) rc = SW_ECORRUPT;  /* not a torn last frame: leave it be */
cleanup:
  ZSTD_freeDCtx(d);
  free(in);
  free(out);
  return rc;
}

/* Is fd the file the part was made from? Its head equals the part's (never punched). */
static int same_head(struct job *j, int fd) {
  unsigned char buf[HEAD_KEEP];
  struct stat st;
  if (fstat(fd, &st) || (uint64_t)st.st_size < j->d) return 0;
  ssize_t got = pread(fd, buf, j->headlen, 0);
  return got == (ssize_t)j->headlen && !memcmp(buf, j->head, j->headlen);
}

/* ---- writing ---- */

static int cctx_init(struct job *j) {
  j->out_cap = ZSTD_compressBound(PIECE_MAX);
  j->in = malloc(PIECE_MAX);
  j->out = malloc(j->out_cap);
  if (!j->in || !j->out || !(j->cctx = ZSTD_createCCtx())) return SW_ENOMEM;
  if (ZSTD_isError(ZSTD_CCtx_setParameter(j->cctx, ZSTD_c_compressionLevel, (int)j->a->conf->level)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(j->cctx, ZSTD_c_checksumFlag, 1)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(j->cctx, ZSTD_c_contentSizeFlag, 1)))
    return SW_EINVAL;
  return SW_OK;
}

/* A piece small enough that its frame fits in what is free (a quarter of it, so the writers
 * keep some room), between PIECE_MIN and PIECE_MAX. */
static size_t piece_size(int fd) {
  struct statvfs v;
  if (fstatvfs(fd, &v)) return PIECE_MIN;
  uint64_t free4 = (uint64_t)v.f_bavail * (v.f_frsize ? v.f_frsize : v.f_bsize) / 4;
  return free4 > PIECE_MAX ? PIECE_MAX : free4 < PIECE_MIN ? PIECE_MIN : (size_t)free4;
}

/* Appends SOURCE[D, D+n), n <= max, as one frame and makes it durable. Out of space, the part
 * is cut back to its last frame (a half-written one would make the next append unreadable) and
 * a smaller piece is tried, down to 4 KiB. *n = 0: EOF. */
static int append_piece(struct job *j, uint64_t max, size_t *n) {
  size_t want = piece_size(j->pfd);
  if (want > max) want = (size_t)max;
  for (;;) {
    ssize_t got;
    do got = pread(j->src, j->in, want, (off_t)j->d);
    while (got < 0 && errno == EINTR);
    if (got < 0) return SW_EIO;
    *n = (size_t)got;
    if (!got) return SW_OK;
    size_t z = ZSTD_compress2(j->cctx, j->out, j->out_cap, j->in, (size_t)got);
    if (ZSTD_isError(z)) return SW_EIO;
    errno = 0;
    if (pwrite(j->pfd, j->out, z, (off_t)j->good) == (ssize_t)z && fsync(j->pfd) == 0) {
      j->good += z;
      j->d += (uint64_t)got;
      return SW_OK;
    }
    int e = errno ? errno : ENOSPC; /* a short write: no room for the rest */
    if (ftruncate(j->pfd, (off_t)j->good)) { /* else the next scan cuts the torn frame */
    }
    if (e != ENOSPC || want <= 4096) {
      j->x->err = e;
      return SW_EIO;
    }
    want /= 4;
  }
}

/* How far SOURCE may be archived and released: for a file a source tails, the offset the buffer
 * has committed (a reader never reads a hole, even after its own crash; and the part never
 * holds a copy of bytes that cannot be released yet: that would only take more room). */
static uint64_t committed(struct job *j) {
  const struct sw_retention_exec_opts *o = j->x->o;
  uint64_t off = 0;
  int pending = 0, found = 0;
  if (!j->tailed) return UINT64_MAX;
  if (!o || !o->file_offset || o->file_offset(o->arg, j->a->dev, j->a->ino, &off, &pending, &found) || !found)
    return 0;
  return off; /* pending partial records are stored in the buffer: their bytes are not re-read */
}

/* Releases SOURCE's blocks below min(D, cap): durable in the part, committed by the buffer. */
static void punch(struct job *j, uint64_t cap) {
  uint64_t limit = j->d < cap ? j->d : cap;
  if (j->nopunch) return;
  limit &= ~(uint64_t)(HEAD_KEEP - 1); /* whole blocks only */
  uint64_t from = j->punched > HEAD_KEEP ? j->punched : HEAD_KEEP;
  if (limit <= from) return;
  if (fallocate(j->src, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(limit - from))) {
    if (errno != EOPNOTSUPP)
      SW_LOG(SW_L_WARN, "retention", "releasing blocks of %s: %s; compressed without it",
             sw__ret_show(j->x, 0, j->srcp), strerror(errno));
    j->nopunch = 1; /* the old way: the source keeps its blocks until the end */
    return;
  }
  j->punched = limit;
}

/* Compresses SOURCE from D to its end (all) or as far as committed, releasing as it goes. */
static int to_eof(struct job *j, int all) {
  for (;;) {
    size_t n;
    if (sw__ret_cancelled(j->x)) return SW_EAGAIN;
    uint64_t cap = all ? UINT64_MAX : committed(j);
    if (j->d >= cap) return SW_OK; /* the reader is not further yet */
    int rc = append_piece(j, cap - j->d, &n);
    if (rc || !n) return rc;
    punch(j, cap);
  }
}

/* SOURCE fully archived: truncate it (live) or unlink it (rotated), once the buffer has it all
 * and nothing new arrived. *window gets the truncation's monotonic bounds. */
static int finish(struct job *j, char *window, size_t wlen) {
  for (int round = 0; round < FINISH_ROUNDS; round++) {
    struct stat st;
    int rc = to_eof(j, 0);
    if (rc) return rc;
    if (!j->tailed || sw__ret_caught_up(j->x, j->a, j->d)) {
      int64_t t0 = sw_time_mono_ns();
      if (fstat(j->src, &st)) return SW_EIO;
      if ((uint64_t)st.st_size == j->d) {
        if (j->live ? ftruncate(j->src, 0) : unlink(j->srcp)) {
          j->x->err = errno;
          return SW_EIO;
        }
        snprintf(window, wlen, "window_ns=%lld..%lld", (long long)t0, (long long)sw_time_mono_ns());
        if (j->live) return SW_OK;
        sw__ret_fsync_dir(j->srcp); /* a writer of the renamed file may still append: keep it */
        return to_eof(j, 1);
      }
    }
    struct timespec ts = {0, 20 * 1000000}; /* let the writer pause and the reader commit */
    nanosleep(&ts, NULL);
  }
  return SW_EAGAIN;
}

/* ---- start, resume, finalize ---- */

/* Opens the part: a new one (NONE -> PART), or the existing one, whose torn last frame is cut
 * and whose SOURCE is confirmed (else j->srcp becomes NULL: finalize as it is). */
static int open_part(struct job *j) {
  const struct sw_ret_action *a = j->a;
  if (a->kind != SW_RET_RESUME) {
    size_t n = strlen(a->to) + sizeof SW__RET_PART + 24;
    if (!(j->part = malloc(n))) return SW_ENOMEM;
    snprintf(j->part, n, "%s%s%llu", a->to, SW__RET_PART, (unsigned long long)j->st0.st_ino);
    j->pfd = open(j->part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (j->pfd < 0 || sw__ret_fsync_dir(j->part)) { /* the part must be found after a crash */
      j->x->err = errno;
      return SW_EIO;
    }
    sw__ret_copy_meta(j->pfd, &j->st0); /* mode and owner now: kept should SOURCE go */
    return SW_OK;
  }
  struct stat pst;
  if (!(j->part = strdup(a->path))) return SW_ENOMEM;
  j->pfd = open(j->part, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (j->pfd < 0 || fstat(j->pfd, &pst)) {
    j->x->err = errno;
    return SW_EIO;
  }
  int rc = part_scan(j, (uint64_t)pst.st_size);
  if (rc) return rc;
  if (j->good < (uint64_t)pst.st_size && (ftruncate(j->pfd, (off_t)j->good) || fsync(j->pfd))) {
    j->x->err = errno; /* the torn last frame: its bytes are still in SOURCE */
    return SW_EIO;
  }
  j->d0 = j->d;
  if (j->src >= 0 && !same_head(j, j->src)) { /* truncated or replaced: not ours any more */
    close(j->src);
    j->src = -1;
    j->have_st0 = 0;
  }
  if (j->src < 0) j->srcp = NULL;
  return SW_OK;
}

/* DETACHED -> DONE: the part becomes TARGET. A TARGET that exists is never overwritten: the
 * part stays (nothing lost) and the error is reported. */
static int finalize(struct job *j) {
  if (j->have_st0) sw__ret_copy_meta(j->pfd, &j->st0); /* else the part keeps what it was given */
  if (fsync(j->pfd) || sw__ret_rename_noreplace(j->part, j->a->to)) {
    j->x->err = errno;
    return SW_EIO;
  }
  sw__ret_fsync_dir(j->a->to);
  free(j->part);
  j->part = NULL;
  return SW_OK;
}

static void report(struct job *j, const char *window) {
  struct sw_retention_result *r = j->x->r;
  struct stat zs;
  char ex[200];
  uint64_t in = j->d - j->d0, out = fstat(j->pfd, &zs) ? 0 : (uint64_t)zs.st_size;
  uint64_t freed = j->d > out ? j->d - out : 0;
  if (j->a->kind == SW_RET_ROTATE || (j->a->kind == SW_RET_RESUME && j->live)) r->rotations++;
  if (j->a->kind == SW_RET_RESUME) r->repairs++;
  r->compressions++;
  r->compressed_in += in;
  r->compressed_out += out;
  r->bytes_freed += freed;
  snprintf(ex, sizeof ex, "%sin=%llu out=%llu pieces=yes punched=%s %s",
           j->live ? "method=copytruncate " : "", (unsigned long long)j->d, (unsigned long long)out,
           j->nopunch ? "no" : "yes", window);
  sw__ret_done(j->x, j->a, freed, ex);
}

static int open_source(struct job *j) {
  const struct sw_ret_action *a = j->a;
  j->srcp = a->kind == SW_RET_RESUME ? a->src : a->path;
  if (!j->srcp) return SW_OK;
  j->src = open(j->srcp, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (j->src < 0 && !j->live && (errno == EACCES || errno == EPERM || errno == EROFS)) {
    j->src = sw__ret_open_ro(j->srcp); /* an archive we may not write: compressed without punching */
    j->nopunch = 1;
  }
  if (j->src < 0 || fstat(j->src, &j->st0) || (uint64_t)j->st0.st_ino != a->ino ||
      (uint64_t)j->st0.st_dev != a->dev) {
    if (j->src >= 0) close(j->src);
    j->src = -1;
    return a->kind == SW_RET_RESUME ? SW_OK : SW_EAGAIN; /* resume: SOURCE gone */
  }
  j->have_st0 = 1;
  return SW_OK;
}

/* The outcome of a failed or deferred run: PART stays in every case (a later run finishes it). */
static int failed(struct job *j, int rc) {
  if (rc != SW_EAGAIN) return sw__ret_fail(j->x, j->a, "compressing", rc);
  if (!sw__ret_cancelled(j->x)) { /* the buffer has not caught up, or the writer never paused */
    j->x->r->deferred++;
    SW_LOG(SW_L_INFO, "retention", "action=defer path=%s reason=being-read archived=%llu punched=%llu",
           sw__ret_show(j->x, 0, j->a->path), (unsigned long long)j->d, (unsigned long long)j->punched);
  }
  return rc;
}

int sw__ret_pieces(struct sw__ret_ex *x, const struct sw_ret_action *a) {
  struct job j = {.x = x, .a = a, .src = -1, .pfd = -1};
  char window[80] = "";
  int rc;
  j.live = a->kind == SW_RET_ROTATE || (a->kind == SW_RET_RESUME && a->live);
  j.tailed = a->tailed;
  if ((rc = open_source(&j))) {
    SW_LOG(SW_L_WARN, "retention", "%s changed since it was planned; left alone", sw__ret_show(x, 0, a->path));
    goto cleanup;
  }
  if (a->kind != SW_RET_RESUME && access(a->to, F_OK) == 0) {
    x->err = EEXIST;
    rc = SW_EIO;
  }
  if (!rc && !(rc = cctx_init(&j)) && !(rc = open_part(&j)) && (!j.srcp || !(rc = finish(&j, window, sizeof window))))
    rc = finalize(&j);
  if (rc) rc = failed(&j, rc);
  else report(&j, window);
cleanup:
  ZSTD_freeCCtx(j.cctx);
  free(j.in);
  free(j.out);
  free(j.part);
  if (j.pfd >= 0) close(j.pfd);
  if (j.src >= 0) close(j.src);
  return rc;
}
