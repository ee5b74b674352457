/* zst.c - writing archives (zstd streaming with bounded memory, or plain), walking
 * the frames of a .zst without decompressing it, and verifying one against its source.
 *
 * Archives carry a content checksum per frame (`zstd -t` verifies it). An archive may hold
 * several frames: the bytes a writer appended while the file was being compressed, or the
 * copytruncate tail, go into a frame of their own; `zstd -dc` reads them all.
 */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getCParams: cap the window and tables below a level's */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "internal.h"

/* One window size for every level: 4 MiB, with long-distance matching. Log lines repeat far
 * apart (the same messages, the same JSON keys, minutes later), which a level's own window
 * (2 MiB at level 3) misses: on the bench workload this takes level 3 from 6.8:1 to ~10:1 at
 * the same speed. The match-finder tables stay capped so memory is bounded at any level. */
#define WINDOW_LOG 22
#define MAX_HASH_LOG 20
#define MAX_CHAIN_LOG 20
#define PLAIN_BUF (128 * 1024)

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return SW_EIO; /* errno kept for the caller's message */
    p += w;
    n -= (size_t)w;
  }
  return SW_OK;
}

static unsigned min_u(unsigned a, unsigned b) { return a < b ? a : b; }

int sw__zout_init(struct sw__zout *z, int fd, int level) {
  memset(z, 0, sizeof *z);
  z->fd = fd;
  if (level > 0) {
    ZSTD_compressionParameters p = ZSTD_getCParams(level, 0, 0);
    if (!(z->cctx = ZSTD_createCCtx())) return SW_ENOMEM;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_windowLog, WINDOW_LOG)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_enableLongDistanceMatching, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_hashLog, (int)min_u(p.hashLog, MAX_HASH_LOG))) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_chainLog, (int)min_u(p.chainLog, MAX_CHAIN_LOG)))) {
      sw__zout_free(z);
      return SW_EINVAL;
    }
    z->in_cap = ZSTD_CStreamInSize();
    z->out_cap = ZSTD_CStreamOutSize();
  } else {
    z->in_cap = PLAIN_BUF;
  }
  z->in = malloc(z->in_cap);
  z->out = z->out_cap ? malloc(z->out_cap) : NULL;
  if (!z->in || (z->out_cap && !z->out)) {
    sw__zout_free(z);
    return SW_ENOMEM;
  }
  return SW_OK;
}

void sw__zout_free(struct sw__zout *z) {
  ZSTD_freeCCtx(z->cctx);
  free(z->in);
  free(z->out);
  memset(z, 0, sizeof *z);
  z->fd = -1;
}

/* Compresses (or writes) the input buffer; with end, also ends the frame. */
static int flush(struct sw__zout *z, int end) {
  if (!z->cctx) {
    int rc = write_all(z->fd, z->in, z->in_len);
    z->out_bytes += rc ? 0 : z->in_len;
    z->in_len = 0;
    return rc;
  }
  ZSTD_inBuffer in = {z->in, z->in_len, 0};
  for (;;) {
    ZSTD_outBuffer out = {z->out, z->out_cap, 0};
    size_t left = ZSTD_compressStream2(z->cctx, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
    if (ZSTD_isError(left)) return SW_EIO;
    if (out.pos) {
      int rc = write_all(z->fd, z->out, out.pos);
      if (rc) return rc;
      z->out_bytes += out.pos;
    }
    if (end ? left == 0 : in.pos == in.size) break;
  }
  z->in_len = 0;
  if (end) z->open_frame = 0;
  return SW_OK;
}

int sw__zout_write(struct sw__zout *z, const void *p, size_t n) {
  const char *s = p;
  while (n) {
    size_t k = z->in_cap - z->in_len < n ? z->in_cap - z->in_len : n;
    memcpy(z->in + z->in_len, s, k);
    z->in_len += k;
    z->in_bytes += k;
    z->open_frame = 1;
    s += k;
    n -= k;
    if (z->in_len == z->in_cap) {
      int rc = flush(z, 0);
      if (rc) return rc;
    }
  }
  return SW_OK;
}

int sw__zout_end(struct sw__zout *z) {
  if (z->cctx && !z->open_frame) return SW_OK; /* no empty frames */
  return flush(z, 1);
}

int sw__copy_to_eof(int src, uint64_t *off, struct sw__zout *z, atomic_int *cancel, uint64_t *copied) {
  *copied = 0;
  for (;;) {
    if (cancel && atomic_load(cancel)) return SW_EAGAIN;
    ssize_t got = pread(src, z->in + z->in_len, z->in_cap - z->in_len, (off_t)*off);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return SW_EIO;
    if (got == 0) return SW_OK;
    z->in_len += (size_t)got;
    z->in_bytes += (uint64_t)got;
    z->open_frame = 1;
    *off += (uint64_t)got;
    *copied += (uint64_t)got;
    if (z->in_len == z->in_cap) {
      int rc = flush(z, 0);
      if (rc) return rc;
    }
  }
}

/* ---- reading archives ---- */

static int read_at(int fd, void *buf, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t got = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return got < 0 ? SW_EIO : SW_ECORRUPT;
    done += (size_t)got;
  }
  return SW_OK;
}

static uint32_t le32(const unsigned char *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* End of the frame starting at pos, or 0 if it is incomplete or not a frame. */
static uint64_t frame_end(int fd, uint64_t size, uint64_t pos) {
  unsigned char h[6];
  if (pos + 8 > size || read_at(fd, h, 6, pos)) return 0;
  uint32_t magic = le32(h);
  if ((magic & 0xFFFFFFF0u) == 0x184D2A50u) { /* skippable frame */
    unsigned char l[4];
    if (read_at(fd, l, 4, pos + 4)) return 0;
    uint64_t end = pos + 8 + le32(l);
    return end <= size ? end : 0;
  }
  if (magic != 0xFD2FB528u) return 0;
  unsigned fhd = h[4];
  if (fhd & 0x08) return 0; /* reserved bit */
  static const unsigned did_size[] = {0, 1, 2, 4}, fcs_size[] = {0, 2, 4, 8};
  unsigned single = (fhd >> 5) & 1, fcs = fhd >> 6;
  uint64_t p = pos + 5 + (single ? 0 : 1) + did_size[fhd & 3] + (fcs == 0 ? single : fcs_size[fcs]);
  for (;;) {
    unsigned char b[3];
    if (p + 3 > size || read_at(fd, b, 3, p)) return 0;
    uint32_t v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16;
    unsigned type = (v >> 1) & 3;
    if (type == 3) return 0;
    p += 3 + (type == 1 ? 1 : (v >> 3));
    if (p > size) return 0;
    if (v & 1) break; /* last block */
  }
  if ((fhd >> 2) & 1) p += 4; /* content checksum */
  return p <= size ? p : 0;
}

int sw__zst_walk(int fd, uint64_t size, uint64_t *good) {
  uint64_t pos = 0;
  while (pos < size) {
    uint64_t end = frame_end(fd, size, pos);
    if (!end) break;
    pos = end;
  }
  *good = pos;
  return pos == 0 && size > 0 ? SW_ECORRUPT : SW_OK;
}

int sw__zst_equal(int zfd, int src, atomic_int *cancel, int *equal) {
  ZSTD_DCtx *d = ZSTD_createDCtx();
  size_t icap = ZSTD_DStreamInSize(), ocap = ZSTD_DStreamOutSize();
  char *in = malloc(icap), *out = malloc(ocap), *ref = malloc(ocap);
  int rc = SW_ENOMEM;
  uint64_t zoff = 0, soff = 0;
  size_t last = 1;
  *equal = 0;
  if (!d || !in || !out || !ref) goto cleanup;
  rc = SW_OK;
  for (;;) {
    if (cancel && atomic_load(cancel)) {
      rc = SW_EAGAIN;
      goto cleanup;
    }
    ssize_t got = pread(zfd, in, icap, (off_t)zoff);
    if (got < 0) {
      rc = SW_EIO;
      goto cleanup;
    }
    if (got == 0) break;
    zoff += (uint64_t)got;
    ZSTD_inBuffer ib = {in, (size_t)got, 0};
    for (;;) { /* until the input is used up and the output no longer fills: all flushed */
      ZSTD_outBuffer ob = {out, ocap, 0};
      last = ZSTD_decompressStream(d, &ob, &ib);
      if (ZSTD_isError(last)) goto cleanup; /* corrupt or bad checksum: not equal */
      if (ob.pos) {
        ssize_t r = pread(src, ref, ob.pos, (off_t)soff);
        if (r != (ssize_t)ob.pos || memcmp(ref, out, ob.pos)) goto cleanup;
        soff += ob.pos;
      }
      if (ib.pos == ib.size && ob.pos < ob.size) break;
    }
  }
  if (last == 0) { /* the last frame is complete: does src end here too? */
    char c;
    *equal = pread(src, &c, 1, (off_t)soff) == 0;
  }
cleanup:
  ZSTD_freeDCtx(d);
  free(in);
  free(out);
  free(ref);
  return rc;
}
