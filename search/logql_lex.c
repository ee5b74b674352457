/* logql_lex.c - LogQL's tokens (strings with Go's escapes, numbers, durations, byte sizes,
 * operators) and the parser's errors, worded as Loki words them (see logql_parse.c). */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logql_lex.h"

static const char *const k_tk_name[] = {
    "end of input", "IDENTIFIER", "STRING", "NUMBER", "DURATION", "BYTES", "{", "}", "(", ")", "[",
    "]", ",", "=", "!=", "=~", "!~", "|=", "|~", "|", ">", ">=", "<", "<=", "==", "+", "-", "*",
    "/", "%", "^"};

int sw__lq_fail_at(struct lex *x, const char *at, const char *fmt, ...) {
  if (x->failed) return -1;
  x->failed = 1;
  int line = 1, col = 1;
  for (const char *p = x->text; p < at; p++) {
    if (*p == '\n') line++, col = 1;
    else col++;
  }
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(x->err, x->errlen, "parse error at line %d, col %d: %s", line, col, msg);
  return -1;
}

int sw__lq_unsupported(struct lex *x, const char *what) {
  if (x->failed) return -1;
  x->failed = 1;
  snprintf(x->err, x->errlen, "%s is not supported by spillway (see docs/loki-api.md for the LogQL it answers)", what);
  return -1;
}

int sw__lq_unexpected(struct lex *x, const char *expecting) {
  char got[80];
  if (x->tk == T_IDENT || x->tk == T_NUM || x->tk == T_DUR || x->tk == T_BYTES)
    snprintf(got, sizeof got, "%s", x->tk == T_IDENT ? "IDENTIFIER" : k_tk_name[x->tk]);
  else snprintf(got, sizeof got, "%s", k_tk_name[x->tk]);
  if (expecting) return sw__lq_fail_at(x, x->start, "syntax error: unexpected %s, expecting %s", got, expecting);
  return sw__lq_fail_at(x, x->start, "syntax error: unexpected %s", got);
}

int sw_lq_parse_duration(const char *s, size_t n, int64_t *ns) {
  static const struct { const char *u; double mul; } units[] = {
      {"ns", 1}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
      {"d", 86400e9}, {"w", 604800e9}, {"y", 31536000e9}};
  double total = 0;
  size_t i = 0;
  if (!n) return -1;
  while (i < n) {
    size_t j = i;
    while (j < n && (isdigit((unsigned char)s[j]) || s[j] == '.')) j++;
    if (j == i) return -1;
    char num[40];
    if (j - i >= sizeof num) return -1;
    memcpy(num, s + i, j - i);
    num[j - i] = 0;
    double v = strtod(num, NULL);
    size_t k = j;
    while (k < n && !isdigit((unsigned char)s[k]) && s[k] != '.') k++;
    int found = 0;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++)
      if (strlen(units[u].u) == k - j && !memcmp(units[u].u, s + j, k - j)) {
        total += v * units[u].mul;
        found = 1;
        break;
      }
    if (!found) return -1;
    i = k;
  }
  if (total > 9.2e18) return -1;
  *ns = (int64_t)total;
  return 0;
}

int sw_lq_parse_bytes(const char *s, size_t n, double *out) {
  static const struct { const char *u; double mul; } units[] = {
      {"b", 1}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"pb", 1e15},
      {"kib", 1024.0}, {"mib", 1048576.0}, {"gib", 1073741824.0}, {"tib", 1099511627776.0},
      {"k", 1e3}, {"m", 1e6}, {"g", 1e9}};
  size_t j = 0;
  while (j < n && (isdigit((unsigned char)s[j]) || s[j] == '.')) j++;
  if (!j || j == n || n - j > 3) return -1;
  char num[40], unit[4];
  if (j >= sizeof num) return -1;
  memcpy(num, s, j);
  num[j] = 0;
  for (size_t k = j; k < n; k++) unit[k - j] = (char)tolower((unsigned char)s[k]);
  unit[n - j] = 0;
  for (size_t u = 0; u < sizeof units / sizeof units[0]; u++)
    if (!strcmp(units[u].u, unit)) {
      *out = strtod(num, NULL) * units[u].mul;
      return 0;
    }
  return -1;
}

static int hexval(int c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int put_utf8(struct sw_buf *b, unsigned long cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) u[0] = (char)cp, n = 1;
  else if (cp < 0x800) u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
  else if (cp < 0x10000)
    u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
  else
    u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
  return sw_buf_append(b, u, n);
}

/* A Go string literal: "..." with escapes, or `raw`. */
static int lex_string(struct lex *x) {
  char q = *x->p++;
  sw_buf_reset(&x->str);
  for (;;) {
    char c = *x->p;
    if (!c || (q == '"' && c == '\n')) return sw__lq_fail_at(x, x->start, "literal not terminated");
    x->p++;
    if (c == q) break;
    if (c != '\\' || q == '`') {
      if (sw_buf_putc(&x->str, c)) return sw__lq_fail_at(x, x->start, "out of memory");
      continue;
    }
    char e = *x->p++;
    int rc = 0;
    switch (e) {
      case 'n': rc = sw_buf_putc(&x->str, '\n'); break;
      case 't': rc = sw_buf_putc(&x->str, '\t'); break;
      case 'r': rc = sw_buf_putc(&x->str, '\r'); break;
      case 'a': rc = sw_buf_putc(&x->str, '\a'); break;
      case 'b': rc = sw_buf_putc(&x->str, '\b'); break;
      case 'f': rc = sw_buf_putc(&x->str, '\f'); break;
      case 'v': rc = sw_buf_putc(&x->str, '\v'); break;
      case '\\': case '"': case '\'': rc = sw_buf_putc(&x->str, e); break;
      case 'x': case 'u': case 'U': {
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        unsigned long v = 0;
        for (int i = 0; i < digits; i++) {
          int h = hexval((unsigned char)x->p[i]);
          if (h < 0) return sw__lq_fail_at(x, x->start, "invalid syntax");
          v = v * 16 + (unsigned long)h;
        }
        x->p += digits;
        if (e == 'x') rc = sw_buf_putc(&x->str, (char)v);
        else if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return sw__lq_fail_at(x, x->start, "invalid syntax");
        else rc = put_utf8(&x->str, v);
        break;
      }
      default:
        if (e >= '0' && e <= '7' && x->p[0] >= '0' && x->p[0] <= '7' && x->p[1] >= '0' && x->p[1] <= '7') {
          rc = sw_buf_putc(&x->str, (char)(((e - '0') << 6) | ((x->p[0] - '0') << 3) | (x->p[1] - '0')));
          x->p += 2;
          break;
        }
        return sw__lq_fail_at(x, x->start, "invalid syntax");
    }
    if (rc) return sw__lq_fail_at(x, x->start, "out of memory");
  }
  if (memchr(x->str.data ? x->str.data : "", 0, x->str.len)) return sw__lq_fail_at(x, x->start, "a NUL byte in a string");
  if (sw_buf_putc(&x->str, 0)) return sw__lq_fail_at(x, x->start, "out of memory");
  x->str.len--;
  x->tk = T_STR;
  return 0;
}

int sw__lq_next(struct lex *x) {
  if (x->failed) return -1;
  while (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r') x->p++;
  if (*x->p == '#') { /* a comment runs to the end of the line */
    while (*x->p && *x->p != '\n') x->p++;
    return sw__lq_next(x);
  }
  x->start = x->p;
  const char *p = x->p;
  char c = *p;
  if (!c) return x->tk = T_EOF, 0;
  if (c == '"' || c == '`') return lex_string(x);
  if (isalpha((unsigned char)c) || c == '_') {
    while (isalnum((unsigned char)*p) || *p == '_' || *p == ':') p++;
    x->len = (size_t)(p - x->p);
    sw_buf_reset(&x->str);
    if (sw_buf_append(&x->str, x->p, x->len) || sw_buf_putc(&x->str, 0)) return sw__lq_fail_at(x, x->start, "out of memory");
    x->p = p;
    return x->tk = T_IDENT, 0;
  }
  if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)p[1]))) {
    while (isdigit((unsigned char)*p) || *p == '.') p++;
    const char *num_end = p;
    while (isalpha((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '.' ||
           (unsigned char)*p == 0xC2 || (unsigned char)*p == 0xB5) /* µ */
      p++;
    size_t n = (size_t)(p - x->p);
    x->len = n;
    if (p == num_end) {
      char buf[64];
      if (n >= sizeof buf) return sw__lq_fail_at(x, x->start, "number too long");
      memcpy(buf, x->p, n);
      buf[n] = 0;
      char *end;
      x->num = strtod(buf, &end);
      if (*end) return sw__lq_fail_at(x, x->start, "invalid number \"%s\"", buf);
      x->p = p;
      return x->tk = T_NUM, 0;
    }
    if (!sw_lq_parse_duration(x->p, n, &x->dur_ns)) {
      x->num = (double)x->dur_ns / 1e9;
      x->p = p;
      return x->tk = T_DUR, 0;
    }
    if (!sw_lq_parse_bytes(x->p, n, &x->num)) {
      x->p = p;
      return x->tk = T_BYTES, 0;
    }
    return sw__lq_fail_at(x, x->start, "invalid duration or size \"%.*s\"", (int)n, x->p);
  }
  static const struct { const char *s; int tk; } ops[] = {
      {"|=", T_PIPE_EQ}, {"|~", T_PIPE_RE}, {"!=", T_NEQ}, {"!~", T_NRE}, {"=~", T_RE}, {"==", T_EQEQ},
      {">=", T_GE}, {"<=", T_LE}, {"|", T_PIPE}, {"=", T_EQ}, {">", T_GT}, {"<", T_LT}, {"{", T_LBRACE},
      {"}", T_RBRACE}, {"(", T_LPAR}, {")", T_RPAR}, {"[", T_LBRACK}, {"]", T_RBRACK}, {",", T_COMMA},
      {"+", T_PLUS}, {"-", T_MINUS}, {"*", T_MUL}, {"/", T_DIV}, {"%", T_MOD}, {"^", T_POW}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    size_t n = strlen(ops[i].s);
    if (!strncmp(p, ops[i].s, n)) {
      x->p += n;
      return x->tk = ops[i].tk, 0;
    }
  }
  return sw__lq_fail_at(x, x->start, "syntax error: unexpected character '%c'", c);
}

/* Nesting (parentheses, unary minus, aggregations of aggregations) is bounded: the descent is
 * recursive, and a form body of 64 KiB of '(' would otherwise overflow the stack. */
#define SW_LQ_MAX_DEPTH 200
int sw__lq_enter(struct lex *x) {
  if (++x->depth <= SW_LQ_MAX_DEPTH) return 0;
  return sw__lq_fail_at(x, x->start, "expression nested too deeply (more than %d levels)", SW_LQ_MAX_DEPTH);
}

int sw__lq_expect(struct lex *x, int tk) {
  if (x->tk != tk) return sw__lq_unexpected(x, k_tk_name[tk]);
  return sw__lq_next(x);
}
