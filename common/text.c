#include "text.h"

#include <stdio.h>
#include <string.h>

char *sw_human_bytes(double n, char out[SW_HUMAN_BYTES_LEN]) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (n < 1024) {
    snprintf(out, SW_HUMAN_BYTES_LEN, "%.0f B", n < 0 ? 0 : n);
    return out;
  }
  size_t u = 0;
  n /= 1024;
  while (n >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
    n /= 1024;
    u++;
  }
  snprintf(out, SW_HUMAN_BYTES_LEN, "%.1f %s", n, units[u]);
  return out;
}

/* Length of the valid UTF-8 sequence at p (1..4) and its code point, or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp) {
  unsigned char c = p[0];
  size_t len;
  uint32_t v, min;
  if (c >= 0xc2 && c <= 0xdf) len = 2, v = c & 0x1f, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) len = 3, v = c & 0x0f, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, v = c & 0x07, min = 0x10000;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    v = v << 6 | (p[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return len;
}

static int hidden_cp(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

static int put_ctl(struct sw_buf *b, unsigned char c) {
  static const char names[] = "\n\r\t\b\f\v\a\033", letters[] = "nrtbfvae";
  for (size_t i = 0; i < sizeof names - 1; i++)
    if (c == (unsigned char)names[i]) return sw_buf_append(b, (char[]){'\\', letters[i]}, 2);
  return sw_buf_printf(b, "\\x%02x", c);
}

const char *sw_visible_cstr(struct sw_buf *b, const char *s) {
  sw_buf_reset(b);
  if (sw_buf_put_visible(b, s, strlen(s), 0) || sw_buf_putc(b, '\0')) return "?";
  return b->data;
}

int sw_buf_put_visible(struct sw_buf *b, const char *s, size_t n, int flags) {
  const unsigned char *p = (const unsigned char *)s;
  int keep_nl = (flags & SW_VISIBLE_KEEP_NEWLINES) != 0;
  size_t i = 0, run = 0; /* [run, i) is printable and not yet appended */
  int rc = SW_OK;
  while (i < n && !rc) {
    unsigned char c = p[i];
    if (c >= 0x20 && c < 0x7f) {
      i++;
      continue;
    }
    if (keep_nl && (c == '\n' || c == '\t')) {
      i++;
      continue;
    }
    uint32_t cp = 0;
    size_t len = c >= 0x80 ? utf8_seq(p + i, n - i, &cp) : 0;
    if (len && !hidden_cp(cp)) {
      i += len;
      continue;
    }
    rc = sw_buf_append(b, s + run, i - run);
    if (rc) break;
    if (len)
      rc = sw_buf_printf(b, "\\u%04x", (unsigned)cp);
    else
      rc = put_ctl(b, c);
    i += len ? len : 1;
    run = i;
  }
  if (!rc) rc = sw_buf_append(b, s + run, i - run);
  return rc;
}

int sw_listen_split(const char *s, char *host, size_t cap, unsigned *port) {
  const char *h = s, *p;
  size_t hl;
  if (strpbrk(s, " \t\r\n")) return -1;
  if (*s == '[') {
    const char *e = strchr(s, ']');
    if (!e || e[1] != ':') return -1;
    h = s + 1;
    hl = (size_t)(e - h);
    p = e + 2;
  } else {
    p = strrchr(s, ':');
    if (!p || memchr(s, ':', (size_t)(p - s))) return -1;
    hl = (size_t)(p - s);
    p++;
  }
  size_t n = strspn(p, "0123456789");
  if (!n || n > 5 || p[n] || hl >= cap) return -1;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) v = v * 10 + (unsigned)(p[i] - '0');
  if (v > 65535) return -1;
  memcpy(host, h, hl);
  host[hl] = 0;
  *port = v;
  return 0;
}
