/* jstate.c - see jstate.h. */
#include "jstate.h"

#include <stdlib.h>
#include <string.h>

#define VERSION 1

int sw_jstate_begin(struct sw_buf *b, const char *cursor) {
  size_t n = strlen(cursor);
  int rc = sw_buf_putc(b, VERSION);
  if (!rc) rc = sw_buf_put_varint(b, n);
  if (!rc) rc = sw_buf_append(b, cursor, n);
  return rc;
}

int sw_jstate_add(struct sw_buf *b, uint64_t key, uint64_t committed, const void *pending,
                  size_t pending_len) {
  uint8_t k[8];
  for (int i = 0; i < 8; i++) k[i] = (uint8_t)(key >> (8 * i));
  int rc = sw_buf_append(b, k, 8);
  if (!rc) rc = sw_buf_put_varint(b, committed);
  if (!rc) rc = sw_buf_put_varint(b, pending_len);
  if (!rc && pending_len) rc = sw_buf_append(b, pending, pending_len);
  return rc;
}

int sw_jstate_parse(const void *data, size_t n, char **cursor, struct sw_jstate_stream **streams,
                    size_t *nstreams) {
  const uint8_t *p = data, *end = p + n;
  uint64_t clen;
  *cursor = NULL;
  *streams = NULL;
  *nstreams = 0;
  if (n < 1 || *p++ != VERSION || sw_get_varint(&p, end, &clen) || clen > (uint64_t)(end - p))
    return SW_ECORRUPT;
  if (memchr(p, 0, (size_t)clen)) return SW_ECORRUPT;
  char *c = malloc((size_t)clen + 1);
  if (!c) return SW_ENOMEM;
  memcpy(c, p, (size_t)clen);
  c[clen] = 0;
  p += clen;
  struct sw_jstate_stream *s = NULL;
  size_t ns = 0, cap = 0;
  int rc = SW_OK;
  while (p < end) {
    uint64_t committed, plen;
    if (end - p < 8) {
      rc = SW_ECORRUPT;
      break;
    }
    uint64_t key = 0;
    for (int i = 0; i < 8; i++) key |= (uint64_t)p[i] << (8 * i);
    p += 8;
    if (sw_get_varint(&p, end, &committed) || sw_get_varint(&p, end, &plen) ||
        plen > (uint64_t)(end - p)) {
      rc = SW_ECORRUPT;
      break;
    }
    if ((rc = sw_grow(&s, ns, &cap, sizeof *s, 8))) break;
    s[ns++] = (struct sw_jstate_stream){.key = key, .committed = committed,
                                        .pending = plen ? p : NULL, .pending_len = (size_t)plen};
    p += plen;
  }
  if (rc) {
    free(c);
    free(s);
    return rc;
  }
  *cursor = c;
  *streams = s;
  *nstreams = ns;
  return SW_OK;
}

/* The value of `field=` in a cursor's ';'-separated list, and its length. */
static const char *cursor_field(const char *cursor, char field, size_t *len) {
  for (const char *p = cursor; p && *p;) {
    const char *semi = strchr(p, ';');
    size_t n = semi ? (size_t)(semi - p) : strlen(p);
    if (n >= 2 && p[0] == field && p[1] == '=') {
      *len = n - 2;
      return p + 2;
    }
    p = semi ? semi + 1 : NULL;
  }
  return NULL;
}

int sw_jcursor_hex(const char *cursor, char field, uint64_t *out) {
  size_t n;
  const char *v = cursor_field(cursor, field, &n);
  if (!v || n == 0 || n > 16) return 0;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = v[i];
    int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    if (d < 0) return 0;
    x = x << 4 | (uint64_t)d;
  }
  *out = x;
  return 1;
}

int sw_jcursor_seqnum_id(const char *cursor, char out[33]) {
  size_t n;
  const char *v = cursor_field(cursor, 's', &n);
  if (!v || n == 0 || n > 32) return 0;
  memcpy(out, v, n);
  out[n] = 0;
  return 1;
}
