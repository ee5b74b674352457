/* logql_parse.c - LogQL text to struct sw_lq_query (see logql.h for the subset).
 *
 * A hand-written lexer and recursive-descent parser. Errors carry Loki's wording ("parse error
 * at line L, col C: syntax error: unexpected X") so Grafana shows what Loki would; constructs
 * of LogQL that spillway does not evaluate are named ("... is not supported by spillway")
 * rather than reported as syntax errors, so a user knows the query is valid Loki. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include <pcre2.h>

#include "../parsers/regex.h"
#include "logql.h"

enum tk {
  T_EOF, T_IDENT, T_STR, T_NUM, T_DUR, T_BYTES, T_LBRACE, T_RBRACE, T_LPAR, T_RPAR, T_LBRACK,
  T_RBRACK, T_COMMA, T_EQ, T_NEQ, T_RE, T_NRE, T_PIPE_EQ, T_PIPE_RE, T_PIPE, T_GT, T_GE, T_LT,
  T_LE, T_EQEQ, T_PLUS, T_MINUS, T_MUL, T_DIV, T_MOD, T_POW
};

static const char *const k_tk_name[] = {
    "end of input", "IDENTIFIER", "STRING", "NUMBER", "DURATION", "BYTES", "{", "}", "(", ")", "[",
    "]", ",", "=", "!=", "=~", "!~", "|=", "|~", "|", ">", ">=", "<", "<=", "==", "+", "-", "*",
    "/", "%", "^"};

struct lex {
  const char *text, *p;
  int tk;
  const char *start; /* of the current token */
  size_t len;
  struct sw_buf str; /* T_STR: the decoded string; T_IDENT: the name */
  double num;        /* T_NUM; T_DUR: seconds; T_BYTES: bytes */
  int64_t dur_ns;    /* T_DUR */
  int failed;
  char *err;
  size_t errlen;
  int depth; /* of the recursive descent: see enter() */
};

static int fail_at(struct lex *x, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail_at(struct lex *x, const char *at, const char *fmt, ...) {
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

static int unsupported(struct lex *x, const char *what) {
  if (x->failed) return -1;
  x->failed = 1;
  snprintf(x->err, x->errlen, "%s is not supported by spillway (see docs/loki-api.md for the LogQL it answers)", what);
  return -1;
}

static int unexpected(struct lex *x, const char *expecting) {
  char got[80];
  if (x->tk == T_IDENT || x->tk == T_NUM || x->tk == T_DUR || x->tk == T_BYTES)
    snprintf(got, sizeof got, "%s", x->tk == T_IDENT ? "IDENTIFIER" : k_tk_name[x->tk]);
  else snprintf(got, sizeof got, "%s", k_tk_name[x->tk]);
  if (expecting) return fail_at(x, x->start, "syntax error: unexpected %s, expecting %s", got, expecting);
  return fail_at(x, x->start, "syntax error: unexpected %s", got);
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
    if (!c || (q == '"' && c == '\n')) return fail_at(x, x->start, "literal not terminated");
    x->p++;
    if (c == q) break;
    if (c != '\\' || q == '`') {
      if (sw_buf_putc(&x->str, c)) return fail_at(x, x->start, "out of memory");
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
          if (h < 0) return fail_at(x, x->start, "invalid syntax");
          v = v * 16 + (unsigned long)h;
        }
        x->p += digits;
        if (e == 'x') rc = sw_buf_putc(&x->str, (char)v);
        else if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return fail_at(x, x->start, "invalid syntax");
        else rc = put_utf8(&x->str, v);
        break;
      }
      default:
        if (e >= '0' && e <= '7' && x->p[0] >= '0' && x->p[0] <= '7' && x->p[1] >= '0' && x->p[1] <= '7') {
          rc = sw_buf_putc(&x->str, (char)(((e - '0') << 6) | ((x->p[0] - '0') << 3) | (x->p[1] - '0')));
          x->p += 2;
          break;
        }
        return fail_at(x, x->start, "invalid syntax");
    }
    if (rc) return fail_at(x, x->start, "out of memory");
  }
  if (memchr(x->str.data ? x->str.data : "", 0, x->str.len)) return fail_at(x, x->start, "a NUL byte in a string");
  if (sw_buf_putc(&x->str, 0)) return fail_at(x, x->start, "out of memory");
  x->str.len--;
  x->tk = T_STR;
  return 0;
}

static int next(struct lex *x) {
  if (x->failed) return -1;
  while (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r') x->p++;
  if (*x->p == '#') { /* a comment runs to the end of the line */
    while (*x->p && *x->p != '\n') x->p++;
    return next(x);
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
    if (sw_buf_append(&x->str, x->p, x->len) || sw_buf_putc(&x->str, 0)) return fail_at(x, x->start, "out of memory");
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
      if (n >= sizeof buf) return fail_at(x, x->start, "number too long");
      memcpy(buf, x->p, n);
      buf[n] = 0;
      char *end;
      x->num = strtod(buf, &end);
      if (*end) return fail_at(x, x->start, "invalid number \"%s\"", buf);
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
    return fail_at(x, x->start, "invalid duration or size \"%.*s\"", (int)n, x->p);
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
  return fail_at(x, x->start, "syntax error: unexpected character '%c'", c);
}

/* Nesting (parentheses, unary minus, aggregations of aggregations) is bounded: the descent is
 * recursive, and a form body of 64 KiB of '(' would otherwise overflow the stack. */
#define SW_LQ_MAX_DEPTH 200
static int enter(struct lex *x) {
  if (++x->depth <= SW_LQ_MAX_DEPTH) return 0;
  return fail_at(x, x->start, "expression nested too deeply (more than %d levels)", SW_LQ_MAX_DEPTH);
}

static int is_ident(const struct lex *x, const char *word) { return x->tk == T_IDENT && !strcmp(x->str.data, word); }

static int expect(struct lex *x, int tk) {
  if (x->tk != tk) return unexpected(x, k_tk_name[tk]);
  return next(x);
}

/* ---- log selections ---- */

static int make_matcher(struct lex *x, struct sw_label_match *m, const char *name, int op, const char *value) {
  static const char *const opstr[] = {[T_EQ] = "=", [T_NEQ] = "!=", [T_RE] = "=~", [T_NRE] = "!~"};
  struct sw_buf spec;
  sw_buf_init(&spec, SIZE_MAX);
  char e[300];
  int rc = sw_buf_printf(&spec, "%s%s", name, opstr[op]) || sw_buf_append(&spec, value, strlen(value) + 1);
  if (!rc) rc = sw_label_match_parse(m, spec.data, e, sizeof e);
  sw_buf_free(&spec);
  if (rc == SW_EINVAL) return fail_at(x, x->start, "%s", e);
  if (rc) return fail_at(x, x->start, "out of memory");
  return 0;
}

static int parse_selector(struct lex *x, struct sw_lq_log *lg) {
  const char *open = x->start;
  if (expect(x, T_LBRACE)) return -1;
  while (x->tk != T_RBRACE) {
    if (x->tk != T_IDENT) return unexpected(x, "IDENTIFIER");
    char *name = strdup(x->str.data);
    if (!name || next(x)) return free(name), -1;
    int op = x->tk;
    if (op != T_EQ && op != T_NEQ && op != T_RE && op != T_NRE) return free(name), unexpected(x, "=, !=, =~ or !~");
    if (next(x) || x->tk != T_STR) return free(name), unexpected(x, "STRING");
    if (sw_grow(&lg->sel, lg->nsel + 1, &(size_t){lg->nsel}, sizeof *lg->sel, 4))
      return free(name), fail_at(x, x->start, "out of memory");
    int rc = make_matcher(x, &lg->sel[lg->nsel], name, op, x->str.data);
    free(name);
    if (rc) return -1;
    lg->nsel++;
    if (next(x)) return -1;
    if (x->tk == T_COMMA && next(x)) return -1;
    else if (x->tk != T_COMMA && x->tk != T_RBRACE && x->tk != T_IDENT) return unexpected(x, ", or }");
  }
  /* Loki refuses selectors that match every stream. */
  int ok = 0;
  for (size_t i = 0; i < lg->nsel; i++)
    if (!sw_label_match_test(&lg->sel[i], "", 0, NULL) &&
        (lg->sel[i].op == SW_LABEL_EQ || lg->sel[i].op == SW_LABEL_RE))
      ok = 1;
  if (!ok)
    return fail_at(x, open, "queries require at least one regexp or equality matcher that does not have an "
                            "empty-compatible value. For instance, app=~\".*\" does not meet this requirement, "
                            "but app=~\".+\" will");
  return next(x);
}

static struct sw_lq_stage *add_stage(struct lex *x, struct sw_lq_log *lg, enum sw_lq_stage_kind k) {
  if (sw_grow(&lg->st, lg->nst + 1, &(size_t){lg->nst}, sizeof *lg->st, 4)) {
    fail_at(x, x->start, "out of memory");
    return NULL;
  }
  struct sw_lq_stage *s = &lg->st[lg->nst++];
  memset(s, 0, sizeof *s);
  s->kind = k;
  return s;
}

static void *compile(struct lex *x, const char *pattern, uint32_t opts) {
  char msg[200];
  size_t off = 0;
  void *re = sw_re_compile(pattern, opts, msg, sizeof msg, &off);
  if (!re) fail_at(x, x->start, "invalid regex \"%s\": %s at offset %zu", pattern, msg, off);
  return re;
}

static int parse_line_filter(struct lex *x, struct sw_lq_log *lg) {
  int tk = x->tk;
  struct sw_lq_stage *s = add_stage(x, lg, SW_LQ_LINE_FILTER);
  if (!s) return -1;
  s->op = tk == T_PIPE_EQ ? SW_LQ_CONTAINS : tk == T_NEQ ? SW_LQ_NOT_CONTAINS : tk == T_PIPE_RE ? SW_LQ_MATCH : SW_LQ_NOT_MATCH;
  if (next(x)) return -1;
  if (is_ident(x, "ip")) return unsupported(x, "the ip() line filter");
  for (;;) {
    if (x->tk != T_STR) return unexpected(x, "STRING");
    size_t cap = s->nalt, cap2 = s->nalt;
    if (sw_grow(&s->text, s->nalt + 1, &cap, sizeof *s->text, 2) ||
        sw_grow(&s->re, s->nalt + 1, &cap2, sizeof *s->re, 2))
      return fail_at(x, x->start, "out of memory");
    s->re[s->nalt] = NULL;
    if (!(s->text[s->nalt] = strdup(x->str.data))) return fail_at(x, x->start, "out of memory");
    s->nalt++;
    if (s->op == SW_LQ_MATCH || s->op == SW_LQ_NOT_MATCH)
      if (!(s->re[s->nalt - 1] = compile(x, x->str.data, 0))) return -1;
    if (next(x)) return -1;
    if (!is_ident(x, "or")) return 0;
    if (next(x)) return -1;
  }
}

/* A template: {{.name}}, {{ .name }}, {{__line__}}; other actions are refused. */
static int parse_tmpl(struct lex *x, const char *t, struct sw_lq_tmpl *out) {
  const char *p = t;
  while (*p) {
    const char *o = strstr(p, "{{");
    size_t litlen = o ? (size_t)(o - p) : strlen(p);
    if (litlen) {
      if (sw_grow(&out->parts, out->n + 1, &(size_t){out->n}, sizeof *out->parts, 4)) return fail_at(x, x->start, "out of memory");
      out->parts[out->n] = (struct sw_lq_tpart){strndup(p, litlen), 0};
      if (!out->parts[out->n++].text) return fail_at(x, x->start, "out of memory");
    }
    if (!o) break;
    const char *c = strstr(o + 2, "}}");
    if (!c) return fail_at(x, x->start, "template: unclosed action");
    const char *a = o + 2, *b = c;
    if (*a == '-') a++;
    if (b > a && b[-1] == '-') b--;
    while (a < b && isspace((unsigned char)*a)) a++;
    while (b > a && isspace((unsigned char)b[-1])) b--;
    int ok = b > a;
    const char *name = a;
    if (ok && *name == '.') name++;
    else if (ok && !(b - a == 8 && !memcmp(a, "__line__", 8))) ok = 0;
    for (const char *q = name; ok && q < b; q++)
      if (!isalnum((unsigned char)*q) && *q != '_') ok = 0;
    if (!ok || name == b) {
      char what[160];
      snprintf(what, sizeof what, "the template action \"{{%.*s}}\" (only {{.label}} and {{__line__}})", (int)(c - o - 2), o + 2);
      return unsupported(x, what);
    }
    if (sw_grow(&out->parts, out->n + 1, &(size_t){out->n}, sizeof *out->parts, 4)) return fail_at(x, x->start, "out of memory");
    out->parts[out->n] = (struct sw_lq_tpart){strndup(name, (size_t)(b - name)), 1};
    if (!out->parts[out->n++].text) return fail_at(x, x->start, "out of memory");
    p = c + 2;
  }
  return 0;
}

static void tmpl_free(struct sw_lq_tmpl *t) {
  for (size_t i = 0; i < t->n; i++) free(t->parts[i].text);
  free(t->parts);
  memset(t, 0, sizeof *t);
}

static struct sw_lq_lexpr *lexpr_or(struct lex *x);

static struct sw_lq_lexpr *new_lexpr(struct lex *x, int kind) {
  struct sw_lq_lexpr *e = calloc(1, sizeof *e);
  if (!e) fail_at(x, x->start, "out of memory");
  else e->kind = kind;
  return e;
}

static void lexpr_free(struct sw_lq_lexpr *e) {
  if (!e) return;
  lexpr_free(e->l);
  lexpr_free(e->r);
  sw_label_match_free(&e->m);
  free(e->name);
  free(e);
}

static struct sw_lq_lexpr *lexpr_prim_in(struct lex *x);

static struct sw_lq_lexpr *lexpr_prim(struct lex *x) {
  struct sw_lq_lexpr *e = enter(x) ? NULL : lexpr_prim_in(x);
  x->depth--;
  return e;
}

static struct sw_lq_lexpr *lexpr_prim_in(struct lex *x) {
  if (x->tk == T_LPAR) {
    if (next(x)) return NULL;
    struct sw_lq_lexpr *e = lexpr_or(x);
    if (e && expect(x, T_RPAR)) return lexpr_free(e), NULL;
    return e;
  }
  if (x->tk != T_IDENT) return unexpected(x, "IDENTIFIER"), NULL;
  if (is_ident(x, "ip")) return unsupported(x, "the ip() label filter"), NULL;
  char *name = strdup(x->str.data);
  if (!name) return fail_at(x, x->start, "out of memory"), NULL;
  if (next(x)) return free(name), NULL;
  int op = x->tk;
  if (op != T_EQ && op != T_NEQ && op != T_RE && op != T_NRE && op != T_GT && op != T_GE && op != T_LT &&
      op != T_LE && op != T_EQEQ)
    return free(name), unexpected(x, "a comparison operator"), NULL;
  if (next(x)) return free(name), NULL;
  int neg = 0; /* `| delta > -1` */
  if (x->tk == T_MINUS && op != T_RE && op != T_NRE) {
    if (next(x)) return free(name), NULL;
    if (x->tk != T_NUM && x->tk != T_DUR && x->tk != T_BYTES) return free(name), unexpected(x, "NUMBER"), NULL;
    neg = 1;
  }
  struct sw_lq_lexpr *e = NULL;
  if (x->tk == T_STR && (op == T_EQ || op == T_NEQ || op == T_RE || op == T_NRE)) {
    if ((e = new_lexpr(x, SW_LQ_L_STR)) && make_matcher(x, &e->m, name, op, x->str.data)) lexpr_free(e), e = NULL;
    free(name);
  } else if (x->tk == T_NUM || x->tk == T_DUR || x->tk == T_BYTES) {
    if (op == T_RE || op == T_NRE) return free(name), unexpected(x, "STRING"), NULL;
    if (!(e = new_lexpr(x, SW_LQ_L_NUM))) return free(name), NULL;
    e->name = name;
    e->num = neg ? -x->num : x->num;
    e->unit = x->tk == T_DUR ? 1 : x->tk == T_BYTES ? 2 : 0;
    e->cmp = op == T_GT ? SW_LQ_GT : op == T_GE ? SW_LQ_GE : op == T_LT ? SW_LQ_LT : op == T_LE ? SW_LQ_LE
           : op == T_NEQ ? SW_LQ_NE : SW_LQ_EQ;
  } else {
    free(name);
    return unexpected(x, op == T_RE || op == T_NRE ? "STRING" : "STRING or NUMBER"), NULL;
  }
  if (e && next(x)) return lexpr_free(e), NULL;
  return e;
}

static struct sw_lq_lexpr *lexpr_and(struct lex *x) {
  struct sw_lq_lexpr *e = lexpr_prim(x);
  while (e) {
    /* `and`, `,` or plain juxtaposition chain filters (`| a="1" b="2"`) */
    if (is_ident(x, "and") || x->tk == T_COMMA) {
      if (next(x)) return lexpr_free(e), NULL;
    } else if (!(x->tk == T_LPAR || (x->tk == T_IDENT && !is_ident(x, "or")))) {
      break;
    }
    struct sw_lq_lexpr *r = lexpr_prim(x), *a = r ? new_lexpr(x, SW_LQ_L_AND) : NULL;
    if (!a) return lexpr_free(r), lexpr_free(e), NULL;
    a->l = e, a->r = r;
    e = a;
  }
  return e;
}

static struct sw_lq_lexpr *lexpr_or(struct lex *x) {
  struct sw_lq_lexpr *e = lexpr_and(x);
  while (e && is_ident(x, "or")) {
    if (next(x)) return lexpr_free(e), NULL;
    struct sw_lq_lexpr *r = lexpr_and(x), *o = r ? new_lexpr(x, SW_LQ_L_OR) : NULL;
    if (!o) return lexpr_free(r), lexpr_free(e), NULL;
    o->l = e, o->r = r;
    e = o;
  }
  return e;
}

static int add_item(struct lex *x, struct sw_lq_stage *s, const char *name) {
  if (sw_grow(&s->items, s->nitems + 1, &(size_t){s->nitems}, sizeof *s->items, 4)) return fail_at(x, x->start, "out of memory");
  struct sw_lq_item *it = &s->items[s->nitems++];
  memset(it, 0, sizeof *it);
  if (!(it->name = strdup(name))) return fail_at(x, x->start, "out of memory");
  return 0;
}

/* `label_format a=b, c="{{.x}}"` */
static int parse_label_format(struct lex *x, struct sw_lq_stage *s) {
  for (;;) {
    if (x->tk != T_IDENT) return unexpected(x, "IDENTIFIER");
    for (size_t i = 0; i < s->nitems; i++)
      if (!strcmp(s->items[i].name, x->str.data))
        return fail_at(x, x->start, "label_format: label %s specified more than once", x->str.data);
    if (add_item(x, s, x->str.data) || next(x) || expect(x, T_EQ)) return -1;
    struct sw_lq_item *it = &s->items[s->nitems - 1];
    if (x->tk == T_IDENT) {
      if (!(it->src = strdup(x->str.data))) return fail_at(x, x->start, "out of memory");
    } else if (x->tk == T_STR) {
      it->is_tmpl = 1;
      if (parse_tmpl(x, x->str.data, &it->tmpl)) return -1;
    } else {
      return unexpected(x, "IDENTIFIER or STRING");
    }
    if (next(x)) return -1;
    if (x->tk != T_COMMA) return 0;
    if (next(x)) return -1;
  }
}

/* `drop a, b="x"` and `keep a, b` */
static int parse_names(struct lex *x, struct sw_lq_stage *s) {
  for (;;) {
    if (x->tk != T_IDENT) return unexpected(x, "IDENTIFIER");
    if (add_item(x, s, x->str.data) || next(x)) return -1;
    struct sw_lq_item *it = &s->items[s->nitems - 1];
    if (x->tk == T_EQ || x->tk == T_NEQ || x->tk == T_RE || x->tk == T_NRE) {
      int op = x->tk;
      if (next(x)) return -1;
      if (x->tk != T_STR) return unexpected(x, "STRING");
      if (make_matcher(x, &it->m, it->name, op, x->str.data)) return -1;
      it->has_m = 1;
      if (next(x)) return -1;
    }
    if (x->tk != T_COMMA) return 0;
    if (next(x)) return -1;
  }
}

static int parse_pipe_stage(struct lex *x, struct sw_lq_log *lg) {
  if (next(x)) return -1; /* the '|' */
  if (x->tk == T_LPAR) { /* `| (a="1" or b="2")`: a label filter */
    struct sw_lq_stage *s = add_stage(x, lg, SW_LQ_LABEL_FILTER);
    return s && (s->lf = lexpr_or(x)) ? 0 : -1;
  }
  if (x->tk != T_IDENT) return unexpected(x, "IDENTIFIER");
  static const char *const refused[] = {"pattern", "unpack", "unwrap", "decolorize", "distinct", "ip"};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    if (is_ident(x, refused[i])) {
      char what[64];
      snprintf(what, sizeof what, "the %s stage", refused[i]);
      return unsupported(x, what);
    }
  struct sw_lq_stage *s;
  if (is_ident(x, "json") || is_ident(x, "logfmt")) {
    int json = is_ident(x, "json");
    if (!(s = add_stage(x, lg, json ? SW_LQ_JSON : SW_LQ_LOGFMT)) || next(x)) return -1;
    if (x->tk == T_MINUS) return unsupported(x, "logfmt flags (--strict, --keep-empty)");
    if (x->tk == T_IDENT && !is_ident(x, "or") && !is_ident(x, "and") && !is_ident(x, "offset")) {
      const char *save = x->p;
      if (next(x)) return -1;
      if (x->tk == T_EQ || x->tk == T_COMMA) return unsupported(x, "json/logfmt with parameters");
      return fail_at(x, save, "syntax error: unexpected IDENTIFIER");
    }
    return 0;
  }
  if (is_ident(x, "regexp")) {
    if (!(s = add_stage(x, lg, SW_LQ_REGEXP)) || next(x)) return -1;
    if (x->tk != T_STR) return unexpected(x, "STRING");
    if (!(s->re_regexp = compile(x, x->str.data, 0))) return -1;
    uint32_t names = 0;
    pcre2_pattern_info(s->re_regexp, PCRE2_INFO_NAMECOUNT, &names);
    if (!names) return fail_at(x, x->start, "at least one named capture must be supplied");
    return next(x);
  }
  if (is_ident(x, "line_format")) {
    if (!(s = add_stage(x, lg, SW_LQ_LINE_FORMAT)) || next(x)) return -1;
    if (x->tk != T_STR) return unexpected(x, "STRING");
    if (parse_tmpl(x, x->str.data, &s->tmpl)) return -1;
    return next(x);
  }
  if (is_ident(x, "label_format")) {
    if (!(s = add_stage(x, lg, SW_LQ_LABEL_FORMAT)) || next(x)) return -1;
    return parse_label_format(x, s);
  }
  if (is_ident(x, "drop") || is_ident(x, "keep")) {
    if (!(s = add_stage(x, lg, is_ident(x, "drop") ? SW_LQ_DROP : SW_LQ_KEEP)) || next(x)) return -1;
    return parse_names(x, s);
  }
  if (!(s = add_stage(x, lg, SW_LQ_LABEL_FILTER))) return -1;
  return (s->lf = lexpr_or(x)) ? 0 : -1;
}

static int parse_pipeline(struct lex *x, struct sw_lq_log *lg) {
  for (;;) {
    if (x->tk == T_PIPE_EQ || x->tk == T_NEQ || x->tk == T_PIPE_RE || x->tk == T_NRE) {
      if (parse_line_filter(x, lg)) return -1;
    } else if (x->tk == T_PIPE) {
      if (parse_pipe_stage(x, lg)) return -1;
    } else {
      return 0;
    }
  }
}

static int parse_log(struct lex *x, struct sw_lq_query *q) {
  if (q->has_log) return unsupported(x, "a query with more than one log selector");
  q->has_log = 1;
  if (parse_selector(x, &q->log)) return -1;
  return parse_pipeline(x, &q->log);
}

/* ---- metric expressions ---- */

static struct sw_lq_metric *new_metric(struct lex *x, enum sw_lq_mkind k) {
  struct sw_lq_metric *m = calloc(1, sizeof *m);
  if (!m) fail_at(x, x->start, "out of memory");
  else m->kind = k;
  return m;
}

static void metric_free(struct sw_lq_metric *m) {
  if (!m) return;
  metric_free(m->a);
  metric_free(m->b);
  for (size_t i = 0; i < m->ngroup; i++) free(m->group[i]);
  free(m->group);
  free(m);
}

static struct sw_lq_metric *metric_expr(struct lex *x, struct sw_lq_query *q);

static int parse_range(struct lex *x, struct sw_lq_metric *m) {
  if (x->tk != T_LBRACK) return unexpected(x, "[");
  if (next(x)) return -1;
  if (x->tk != T_DUR) return unexpected(x, "DURATION");
  if (x->dur_ns <= 0) return fail_at(x, x->start, "the range must be positive");
  m->range_ns = x->dur_ns;
  if (next(x) || expect(x, T_RBRACK)) return -1;
  return 0;
}

static struct sw_lq_metric *range_agg(struct lex *x, struct sw_lq_query *q, enum sw_lq_range_op op) {
  struct sw_lq_metric *m = new_metric(x, SW_LQ_M_RANGE);
  if (!m) return NULL;
  m->rop = op;
  if (next(x) || expect(x, T_LPAR)) goto bad;
  int paren = 0; /* count_over_time(({app="a"} |= "x")[5m]) */
  if (x->tk == T_LPAR) {
    paren = 1;
    if (next(x)) goto bad;
  }
  if (x->tk != T_LBRACE) {
    unexpected(x, "{");
    goto bad;
  }
  if (q->has_log) {
    unsupported(x, "a query with more than one log selector");
    goto bad;
  }
  q->has_log = 1;
  if (parse_selector(x, &q->log)) goto bad;
  int have_range = 0;
  if (x->tk == T_LBRACK) { /* {sel}[5m] | pipeline */
    if (parse_range(x, m)) goto bad;
    have_range = 1;
  }
  if (parse_pipeline(x, &q->log)) goto bad;
  if (paren && expect(x, T_RPAR)) goto bad;
  if (!have_range && parse_range(x, m)) goto bad;
  if (is_ident(x, "offset")) {
    if (next(x)) goto bad;
    if (x->tk != T_DUR) {
      unexpected(x, "DURATION");
      goto bad;
    }
    m->offset_ns = x->dur_ns;
    if (next(x)) goto bad;
  }
  if (expect(x, T_RPAR)) goto bad;
  return m;
bad:
  metric_free(m);
  return NULL;
}

static int parse_grouping(struct lex *x, struct sw_lq_metric *m) {
  if (m->grouped) return unexpected(x, NULL);
  m->grouped = 1;
  m->without = is_ident(x, "without");
  if (next(x) || expect(x, T_LPAR)) return -1;
  while (x->tk != T_RPAR) {
    if (x->tk != T_IDENT) return unexpected(x, "IDENTIFIER");
    size_t cap = m->ngroup;
    if (sw_grow(&m->group, m->ngroup + 1, &cap, sizeof *m->group, 4) || !(m->group[m->ngroup] = strdup(x->str.data)))
      return fail_at(x, x->start, "out of memory");
    m->ngroup++;
    if (next(x)) return -1;
    if (x->tk == T_COMMA && next(x)) return -1;
  }
  return next(x);
}

static struct sw_lq_metric *vector_agg(struct lex *x, struct sw_lq_query *q, enum sw_lq_agg_op op) {
  struct sw_lq_metric *m = new_metric(x, SW_LQ_M_AGG);
  if (!m) return NULL;
  m->aop = op;
  if (next(x)) goto bad;
  if ((is_ident(x, "by") || is_ident(x, "without")) && parse_grouping(x, m)) goto bad;
  if (expect(x, T_LPAR)) goto bad;
  if (op == SW_LQ_TOPK || op == SW_LQ_BOTTOMK) {
    if (x->tk != T_NUM) {
      unexpected(x, "NUMBER");
      goto bad;
    }
    if (x->num < 1 || x->num != floor(x->num) || x->num > 1e6) {
      fail_at(x, x->start, "invalid parameter for %s: must be a positive integer", op == SW_LQ_TOPK ? "topk" : "bottomk");
      goto bad;
    }
    m->k = (long)x->num;
    if (next(x) || expect(x, T_COMMA)) goto bad;
  }
  if (x->tk == T_LBRACE) {
    fail_at(x, x->start, "syntax error: unexpected {, a vector aggregation needs a metric expression "
                         "(count_over_time({...}[5m]), not a log query)");
    goto bad;
  }
  if (!(m->a = metric_expr(x, q)) || expect(x, T_RPAR)) goto bad;
  if ((is_ident(x, "by") || is_ident(x, "without")) && parse_grouping(x, m)) goto bad;
  return m;
bad:
  metric_free(m);
  return NULL;
}

static struct sw_lq_metric *metric_primary_in(struct lex *x, struct sw_lq_query *q);

static struct sw_lq_metric *metric_primary(struct lex *x, struct sw_lq_query *q) {
  struct sw_lq_metric *m = enter(x) ? NULL : metric_primary_in(x, q);
  x->depth--;
  return m;
}

static struct sw_lq_metric *metric_primary_in(struct lex *x, struct sw_lq_query *q) {
  if (x->tk == T_NUM) {
    struct sw_lq_metric *m = new_metric(x, SW_LQ_M_NUMBER);
    if (m) m->num = x->num;
    if (m && next(x)) return metric_free(m), NULL;
    return m;
  }
  if (x->tk == T_MINUS) {
    if (next(x)) return NULL;
    struct sw_lq_metric *inner = metric_primary(x, q);
    if (!inner) return NULL;
    if (inner->kind == SW_LQ_M_NUMBER) {
      inner->num = -inner->num;
      return inner;
    }
    struct sw_lq_metric *zero = new_metric(x, SW_LQ_M_NUMBER), *m = zero ? new_metric(x, SW_LQ_M_BIN) : NULL;
    if (!m) return metric_free(zero), metric_free(inner), NULL;
    m->op = '-', m->a = zero, m->b = inner;
    return m;
  }
  if (x->tk == T_LPAR) {
    if (next(x)) return NULL;
    struct sw_lq_metric *m = metric_expr(x, q);
    if (m && expect(x, T_RPAR)) return metric_free(m), NULL;
    return m;
  }
  if (x->tk == T_LBRACE) return unexpected(x, NULL), NULL;
  if (x->tk != T_IDENT) return unexpected(x, NULL), NULL;
  static const char *const ranges[] = {"count_over_time", "rate", "bytes_over_time", "bytes_rate"};
  for (int i = 0; i < 4; i++)
    if (is_ident(x, ranges[i])) return range_agg(x, q, (enum sw_lq_range_op)i);
  static const char *const aggs[] = {"sum", "count", "min", "max", "avg", "topk", "bottomk"};
  for (int i = 0; i < 7; i++)
    if (is_ident(x, aggs[i])) return vector_agg(x, q, (enum sw_lq_agg_op)i);
  if (is_ident(x, "vector")) {
    if (next(x) || expect(x, T_LPAR)) return NULL;
    if (x->tk != T_NUM) return unexpected(x, "NUMBER"), NULL;
    struct sw_lq_metric *m = new_metric(x, SW_LQ_M_VECTOR);
    if (m) m->num = x->num;
    if (m && (next(x) || expect(x, T_RPAR))) return metric_free(m), NULL;
    return m;
  }
  static const char *const refused[] = {
      "sum_over_time", "avg_over_time", "max_over_time", "min_over_time", "first_over_time",
      "last_over_time", "stdvar_over_time", "stddev_over_time", "quantile_over_time",
      "absent_over_time", "rate_counter", "stddev", "stdvar", "sort", "sort_desc",
      "label_replace", "approx_topk"};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    if (is_ident(x, refused[i])) {
      char what[64];
      snprintf(what, sizeof what, "%s", refused[i]);
      return unsupported(x, what), NULL;
    }
  return unexpected(x, NULL), NULL;
}

static struct sw_lq_metric *bin(struct lex *x, struct sw_lq_metric *a, char op, struct sw_lq_metric *b) {
  struct sw_lq_metric *m = b ? new_metric(x, SW_LQ_M_BIN) : NULL;
  if (!m) return metric_free(a), metric_free(b), NULL;
  if (a->kind == SW_LQ_M_NUMBER && b->kind == SW_LQ_M_NUMBER) { /* fold constants */
    double v = op == '+' ? a->num + b->num : op == '-' ? a->num - b->num : op == '*' ? a->num * b->num
             : op == '/' ? a->num / b->num : fmod(a->num, b->num);
    metric_free(b);
    free(m);
    a->num = v;
    return a;
  }
  m->op = op, m->a = a, m->b = b;
  return m;
}

static int refuse_comparison(struct lex *x) {
  if (x->tk == T_GT || x->tk == T_GE || x->tk == T_LT || x->tk == T_LE || x->tk == T_EQEQ || x->tk == T_NEQ ||
      x->tk == T_POW || is_ident(x, "and") || is_ident(x, "or") || is_ident(x, "unless"))
    return unsupported(x, "this binary operator (spillway answers + - * / %)");
  return 0;
}

static struct sw_lq_metric *metric_mul(struct lex *x, struct sw_lq_query *q) {
  struct sw_lq_metric *m = metric_primary(x, q);
  while (m && (x->tk == T_MUL || x->tk == T_DIV || x->tk == T_MOD)) {
    char op = x->tk == T_MUL ? '*' : x->tk == T_DIV ? '/' : '%';
    if (next(x)) return metric_free(m), NULL;
    if (is_ident(x, "bool")) return metric_free(m), unsupported(x, "bool"), NULL;
    m = bin(x, m, op, metric_primary(x, q));
  }
  return m;
}

static struct sw_lq_metric *metric_expr(struct lex *x, struct sw_lq_query *q) {
  struct sw_lq_metric *m = metric_mul(x, q);
  while (m && (x->tk == T_PLUS || x->tk == T_MINUS)) {
    char op = x->tk == T_PLUS ? '+' : '-';
    if (next(x)) return metric_free(m), NULL;
    if (is_ident(x, "bool")) return metric_free(m), unsupported(x, "bool"), NULL;
    m = bin(x, m, op, metric_mul(x, q));
  }
  if (m && refuse_comparison(x)) return metric_free(m), NULL;
  return m;
}

/* ---- the query ---- */

static void stage_free(struct sw_lq_stage *s) {
  for (size_t i = 0; i < s->nalt; i++) {
    free(s->text[i]);
    if (s->re[i]) pcre2_code_free(s->re[i]);
  }
  free(s->text);
  free(s->re);
  if (s->re_regexp) pcre2_code_free(s->re_regexp);
  lexpr_free(s->lf);
  tmpl_free(&s->tmpl);
  for (size_t i = 0; i < s->nitems; i++) {
    free(s->items[i].name);
    free(s->items[i].src);
    tmpl_free(&s->items[i].tmpl);
    if (s->items[i].has_m) sw_label_match_free(&s->items[i].m);
  }
  free(s->items);
}

void sw_lq_free(struct sw_lq_query *q) {
  for (size_t i = 0; i < q->log.nsel; i++) sw_label_match_free(&q->log.sel[i]);
  free(q->log.sel);
  for (size_t i = 0; i < q->log.nst; i++) stage_free(&q->log.st[i]);
  free(q->log.st);
  metric_free(q->metric);
  memset(q, 0, sizeof *q);
}

int sw_lq_parse(const char *text, struct sw_lq_query *q, char *err, size_t errlen) {
  memset(q, 0, sizeof *q);
  struct lex x = {.text = text, .p = text, .err = err, .errlen = errlen};
  sw_buf_init(&x.str, SIZE_MAX);
  int rc = next(&x);
  if (!rc && x.tk == T_EOF) rc = fail_at(&x, x.start, "syntax error: unexpected $end");
  if (!rc && x.tk == T_LBRACE) {
    rc = parse_log(&x, q);
  } else if (!rc) {
    q->metric = metric_expr(&x, q);
    if (!q->metric) rc = -1;
    else if (!q->has_log && q->metric->kind == SW_LQ_M_NUMBER) rc = unsupported(&x, "a scalar query");
  }
  if (!rc && x.tk != T_EOF) rc = x.tk == T_LBRACK ? unsupported(&x, "a range on this expression (subquery)") : unexpected(&x, NULL);
  sw_buf_free(&x.str);
  if (rc) {
    if (!x.failed) snprintf(err, errlen, "parse error : out of memory");
    sw_lq_free(q);
    return SW_EINVAL;
  }
  return SW_OK;
}

/* Whether s is UTF-8 as PCRE2 wants a UTF pattern: no overlong forms, surrogates or code points
 * past U+10FFFF. */
static int utf8_valid(const unsigned char *s) {
  while (*s) {
    unsigned c = *s;
    int n = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
    if (n < 0) return 0;
    unsigned long cp = n == 0 ? c : n == 1 ? c & 0x1F : n == 2 ? c & 0x0F : c & 0x07;
    for (int i = 1; i <= n; i++) {
      if ((s[i] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
      return 0;
    s += n + 1;
  }
  return 1;
}

/* The first positive line filter before any line_format, as a regex. A literal that is not
 * valid UTF-8 ("\xff") is left to the pipeline: the scan compiles its regex in UTF mode. */
char *sw_lq_scan_pattern(const struct sw_lq_query *q) {
  for (size_t i = 0; i < q->log.nst; i++) {
    const struct sw_lq_stage *s = &q->log.st[i];
    if (s->kind == SW_LQ_LINE_FORMAT) break;
    if (s->kind != SW_LQ_LINE_FILTER || s->nalt != 1 || (s->op != SW_LQ_CONTAINS && s->op != SW_LQ_MATCH)) continue;
    if (s->op == SW_LQ_CONTAINS && !utf8_valid((const unsigned char *)s->text[0])) continue;
    if (s->op == SW_LQ_MATCH) return strdup(s->text[0]);
    struct sw_buf b;
    sw_buf_init(&b, SIZE_MAX);
    int rc = 0;
    for (const char *p = s->text[0]; !rc && *p; p++) {
      unsigned char c = (unsigned char)*p;
      if (c < 0x80 && !isalnum(c) && c != ' ' && c != '_') rc = sw_buf_putc(&b, '\\');
      if (!rc) rc = sw_buf_putc(&b, (char)c);
    }
    if (!rc) rc = sw_buf_putc(&b, 0);
    if (rc) {
      sw_buf_free(&b);
      return NULL;
    }
    return b.data ? b.data : strdup("");
  }
  return NULL;
}
