/* logql_parse_log.c - LogQL log selections: the stream selector and the pipeline (line
 * filters, parsers, label filters, line_format, label_format, keep/drop), and the regex the
 * scan can prefilter with. See logql_parse.c. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "../parsers/regex.h"
#include "logql_lex.h"
#include "logql_parse_int.h"

static int make_matcher(struct lex *x, struct sw_label_match *m, const char *name, int op, const char *value) {
  static const char *const opstr[] = {[T_EQ] = "=", [T_NEQ] = "!=", [T_RE] = "=~", [T_NRE] = "!~"};
  struct sw_buf spec;
  sw_buf_init(&spec, SIZE_MAX);
  char e[300];
  int rc = sw_buf_printf(&spec, "%s%s", name, opstr[op]) || sw_buf_append(&spec, value, strlen(value) + 1);
  if (!rc) rc = sw_label_match_parse(m, spec.data, e, sizeof e);
  sw_buf_free(&spec);
  if (rc == SW_EINVAL) return sw__lq_fail_at(x, x->start, "%s", e);
  if (rc) return sw__lq_fail_at(x, x->start, "out of memory");
  return 0;
}

int sw__lq_parse_selector(struct lex *x, struct sw_lq_log *lg) {
  const char *open = x->start;
  if (sw__lq_expect(x, T_LBRACE)) return -1;
  while (x->tk != T_RBRACE) {
    if (x->tk != T_IDENT) return sw__lq_unexpected(x, "IDENTIFIER");
    char *name = strdup(x->str.data);
    if (!name || sw__lq_next(x)) return free(name), -1;
    int op = x->tk;
    if (op != T_EQ && op != T_NEQ && op != T_RE && op != T_NRE) return free(name), sw__lq_unexpected(x, "=, !=, =~ or !~");
    if (sw__lq_next(x) || x->tk != T_STR) return free(name), sw__lq_unexpected(x, "STRING");
    if (sw_grow(&lg->sel, lg->nsel + 1, &(size_t){lg->nsel}, sizeof *lg->sel, 4))
      return free(name), sw__lq_fail_at(x, x->start, "out of memory");
    int rc = make_matcher(x, &lg->sel[lg->nsel], name, op, x->str.data);
    free(name);
    if (rc) return -1;
    lg->nsel++;
    if (sw__lq_next(x)) return -1;
    if (x->tk == T_COMMA && sw__lq_next(x)) return -1;
    else if (x->tk != T_COMMA && x->tk != T_RBRACE && x->tk != T_IDENT) return sw__lq_unexpected(x, ", or }");
  }
  /* Loki refuses selectors that match every stream. */
  int ok = 0;
  for (size_t i = 0; i < lg->nsel; i++)
    if (!sw_label_match_test(&lg->sel[i], "", 0, NULL) &&
        (lg->sel[i].op == SW_LABEL_EQ || lg->sel[i].op == SW_LABEL_RE))
      ok = 1;
  if (!ok)
    return sw__lq_fail_at(x, open, "queries require at least one regexp or equality matcher that does not have an "
                            "empty-compatible value. For instance, app=~\".*\" does not meet this requirement, "
                            "but app=~\".+\" will");
  return sw__lq_next(x);
}

static struct sw_lq_stage *add_stage(struct lex *x, struct sw_lq_log *lg, enum sw_lq_stage_kind k) {
  if (sw_grow(&lg->st, lg->nst + 1, &(size_t){lg->nst}, sizeof *lg->st, 4)) {
    sw__lq_fail_at(x, x->start, "out of memory");
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
  if (!re) sw__lq_fail_at(x, x->start, "invalid regex \"%s\": %s at offset %zu", pattern, msg, off);
  return re;
}

static int parse_line_filter(struct lex *x, struct sw_lq_log *lg) {
  int tk = x->tk;
  struct sw_lq_stage *s = add_stage(x, lg, SW_LQ_LINE_FILTER);
  if (!s) return -1;
  s->op = tk == T_PIPE_EQ ? SW_LQ_CONTAINS : tk == T_NEQ ? SW_LQ_NOT_CONTAINS : tk == T_PIPE_RE ? SW_LQ_MATCH : SW_LQ_NOT_MATCH;
  if (sw__lq_next(x)) return -1;
  if (sw__lq_is_ident(x, "ip")) return sw__lq_unsupported(x, "the ip() line filter");
  for (;;) {
    if (x->tk != T_STR) return sw__lq_unexpected(x, "STRING");
    size_t cap = s->nalt, cap2 = s->nalt;
    if (sw_grow(&s->text, s->nalt + 1, &cap, sizeof *s->text, 2) ||
        sw_grow(&s->re, s->nalt + 1, &cap2, sizeof *s->re, 2))
      return sw__lq_fail_at(x, x->start, "out of memory");
    s->re[s->nalt] = NULL;
    if (!(s->text[s->nalt] = strdup(x->str.data))) return sw__lq_fail_at(x, x->start, "out of memory");
    s->nalt++;
    if (s->op == SW_LQ_MATCH || s->op == SW_LQ_NOT_MATCH)
      if (!(s->re[s->nalt - 1] = compile(x, x->str.data, 0))) return -1;
    if (sw__lq_next(x)) return -1;
    if (!sw__lq_is_ident(x, "or")) return 0;
    if (sw__lq_next(x)) return -1;
  }
}

/* A template: {{.name}}, {{ .name }}, {{__line__}}; other actions are refused. */
static int parse_tmpl(struct lex *x, const char *t, struct sw_lq_tmpl *out) {
  const char *p = t;
  while (*p) {
    const char *o = strstr(p, "{{");
    size_t litlen = o ? (size_t)(o - p) : strlen(p);
    if (litlen) {
      if (sw_grow(&out->parts, out->n + 1, &(size_t){out->n}, sizeof *out->parts, 4)) return sw__lq_fail_at(x, x->start, "out of memory");
      out->parts[out->n] = (struct sw_lq_tpart){strndup(p, litlen), 0};
      if (!out->parts[out->n++].text) return sw__lq_fail_at(x, x->start, "out of memory");
    }
    if (!o) break;
    const char *c = strstr(o + 2, "}}");
    if (!c) return sw__lq_fail_at(x, x->start, "template: unclosed action");
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
      return sw__lq_unsupported(x, what);
    }
    if (sw_grow(&out->parts, out->n + 1, &(size_t){out->n}, sizeof *out->parts, 4)) return sw__lq_fail_at(x, x->start, "out of memory");
    out->parts[out->n] = (struct sw_lq_tpart){strndup(name, (size_t)(b - name)), 1};
    if (!out->parts[out->n++].text) return sw__lq_fail_at(x, x->start, "out of memory");
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
  if (!e) sw__lq_fail_at(x, x->start, "out of memory");
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
  struct sw_lq_lexpr *e = sw__lq_enter(x) ? NULL : lexpr_prim_in(x);
  x->depth--;
  return e;
}

static struct sw_lq_lexpr *lexpr_prim_in(struct lex *x) {
  if (x->tk == T_LPAR) {
    if (sw__lq_next(x)) return NULL;
    struct sw_lq_lexpr *e = lexpr_or(x);
    if (e && sw__lq_expect(x, T_RPAR)) return lexpr_free(e), NULL;
    return e;
  }
  if (x->tk != T_IDENT) return sw__lq_unexpected(x, "IDENTIFIER"), NULL;
  if (sw__lq_is_ident(x, "ip")) return sw__lq_unsupported(x, "the ip() label filter"), NULL;
  char *name = strdup(x->str.data);
  if (!name) return sw__lq_fail_at(x, x->start, "out of memory"), NULL;
  if (sw__lq_next(x)) return free(name), NULL;
  int op = x->tk;
  if (op != T_EQ && op != T_NEQ && op != T_RE && op != T_NRE && op != T_GT && op != T_GE && op != T_LT &&
      op != T_LE && op != T_EQEQ)
    return free(name), sw__lq_unexpected(x, "a comparison operator"), NULL;
  if (sw__lq_next(x)) return free(name), NULL;
  int neg = 0; /* `| delta > -1` */
  if (x->tk == T_MINUS && op != T_RE && op != T_NRE) {
    if (sw__lq_next(x)) return free(name), NULL;
    if (x->tk != T_NUM && x->tk != T_DUR && x->tk != T_BYTES) return free(name), sw__lq_unexpected(x, "NUMBER"), NULL;
    neg = 1;
  }
  struct sw_lq_lexpr *e = NULL;
  if (x->tk == T_STR && (op == T_EQ || op == T_NEQ || op == T_RE || op == T_NRE)) {
    if ((e = new_lexpr(x, SW_LQ_L_STR)) && make_matcher(x, &e->m, name, op, x->str.data)) lexpr_free(e), e = NULL;
    free(name);
  } else if (x->tk == T_NUM || x->tk == T_DUR || x->tk == T_BYTES) {
    if (op == T_RE || op == T_NRE) return free(name), sw__lq_unexpected(x, "STRING"), NULL;
    if (!(e = new_lexpr(x, SW_LQ_L_NUM))) return free(name), NULL;
    e->name = name;
    e->num = neg ? -x->num : x->num;
    e->unit = x->tk == T_DUR ? 1 : x->tk == T_BYTES ? 2 : 0;
    e->cmp = op == T_GT ? SW_LQ_GT : op == T_GE ? SW_LQ_GE : op == T_LT ? SW_LQ_LT : op == T_LE ? SW_LQ_LE
           : op == T_NEQ ? SW_LQ_NE : SW_LQ_EQ;
  } else {
    free(name);
    return sw__lq_unexpected(x, op == T_RE || op == T_NRE ? "STRING" : "STRING or NUMBER"), NULL;
  }
  if (e && sw__lq_next(x)) return lexpr_free(e), NULL;
  return e;
}

static struct sw_lq_lexpr *lexpr_and(struct lex *x) {
  struct sw_lq_lexpr *e = lexpr_prim(x);
  while (e) {
    /* `and`, `,` or plain juxtaposition chain filters (`| a="1" b="2"`) */
    if (sw__lq_is_ident(x, "and") || x->tk == T_COMMA) {
      if (sw__lq_next(x)) return lexpr_free(e), NULL;
    } else if (!(x->tk == T_LPAR || (x->tk == T_IDENT && !sw__lq_is_ident(x, "or")))) {
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
  while (e && sw__lq_is_ident(x, "or")) {
    if (sw__lq_next(x)) return lexpr_free(e), NULL;
    struct sw_lq_lexpr *r = lexpr_and(x), *o = r ? new_lexpr(x, SW_LQ_L_OR) : NULL;
    if (!o) return lexpr_free(r), lexpr_free(e), NULL;
    o->l = e, o->r = r;
    e = o;
  }
  return e;
}

static int add_item(struct lex *x, struct sw_lq_stage *s, const char *name) {
  if (sw_grow(&s->items, s->nitems + 1, &(size_t){s->nitems}, sizeof *s->items, 4)) return sw__lq_fail_at(x, x->start, "out of memory");
  struct sw_lq_item *it = &s->items[s->nitems++];
  memset(it, 0, sizeof *it);
  if (!(it->name = strdup(name))) return sw__lq_fail_at(x, x->start, "out of memory");
  return 0;
}

/* `label_format a=b, c="{{.x}}"` */
static int parse_label_format(struct lex *x, struct sw_lq_stage *s) {
  for (;;) {
    if (x->tk != T_IDENT) return sw__lq_unexpected(x, "IDENTIFIER");
    for (size_t i = 0; i < s->nitems; i++)
      if (!strcmp(s->items[i].name, x->str.data))
        return sw__lq_fail_at(x, x->start, "label_format: label %s specified more than once", x->str.data);
    if (add_item(x, s, x->str.data) || sw__lq_next(x) || sw__lq_expect(x, T_EQ)) return -1;
    struct sw_lq_item *it = &s->items[s->nitems - 1];
    if (x->tk == T_IDENT) {
      if (!(it->src = strdup(x->str.data))) return sw__lq_fail_at(x, x->start, "out of memory");
    } else if (x->tk == T_STR) {
      it->is_tmpl = 1;
      if (parse_tmpl(x, x->str.data, &it->tmpl)) return -1;
    } else {
      return sw__lq_unexpected(x, "IDENTIFIER or STRING");
    }
    if (sw__lq_next(x)) return -1;
    if (x->tk != T_COMMA) return 0;
    if (sw__lq_next(x)) return -1;
  }
}

/* `drop a, b="x"` and `keep a, b` */
static int parse_names(struct lex *x, struct sw_lq_stage *s) {
  for (;;) {
    if (x->tk != T_IDENT) return sw__lq_unexpected(x, "IDENTIFIER");
    if (add_item(x, s, x->str.data) || sw__lq_next(x)) return -1;
    struct sw_lq_item *it = &s->items[s->nitems - 1];
    if (x->tk == T_EQ || x->tk == T_NEQ || x->tk == T_RE || x->tk == T_NRE) {
      int op = x->tk;
      if (sw__lq_next(x)) return -1;
      if (x->tk != T_STR) return sw__lq_unexpected(x, "STRING");
      if (make_matcher(x, &it->m, it->name, op, x->str.data)) return -1;
      it->has_m = 1;
      if (sw__lq_next(x)) return -1;
    }
    if (x->tk != T_COMMA) return 0;
    if (sw__lq_next(x)) return -1;
  }
}

static int parse_pipe_stage(struct lex *x, struct sw_lq_log *lg) {
  if (sw__lq_next(x)) return -1; /* the '|' */
  if (x->tk == T_LPAR) { /* `| (a="1" or b="2")`: a label filter */
    struct sw_lq_stage *s = add_stage(x, lg, SW_LQ_LABEL_FILTER);
    return s && (s->lf = lexpr_or(x)) ? 0 : -1;
  }
  if (x->tk != T_IDENT) return sw__lq_unexpected(x, "IDENTIFIER");
  static const char *const refused[] = {"pattern", "unpack", "unwrap", "decolorize", "distinct", "ip"};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    if (sw__lq_is_ident(x, refused[i])) {
      char what[64];
      snprintf(what, sizeof what, "the %s stage", refused[i]);
      return sw__lq_unsupported(x, what);
    }
  struct sw_lq_stage *s;
  if (sw__lq_is_ident(x, "json") || sw__lq_is_ident(x, "logfmt")) {
    int json = sw__lq_is_ident(x, "json");
    if (!(s = add_stage(x, lg, json ? SW_LQ_JSON : SW_LQ_LOGFMT)) || sw__lq_next(x)) return -1;
    if (x->tk == T_MINUS) return sw__lq_unsupported(x, "logfmt flags (--strict, --keep-empty)");
    if (x->tk == T_IDENT && !sw__lq_is_ident(x, "or") && !sw__lq_is_ident(x, "and") && !sw__lq_is_ident(x, "offset")) {
      const char *save = x->p;
      if (sw__lq_next(x)) return -1;
      if (x->tk == T_EQ || x->tk == T_COMMA) return sw__lq_unsupported(x, "json/logfmt with parameters");
      return sw__lq_fail_at(x, save, "syntax error: unexpected IDENTIFIER");
    }
    return 0;
  }
  if (sw__lq_is_ident(x, "regexp")) {
    if (!(s = add_stage(x, lg, SW_LQ_REGEXP)) || sw__lq_next(x)) return -1;
    if (x->tk != T_STR) return sw__lq_unexpected(x, "STRING");
    if (!(s->re_regexp = compile(x, x->str.data, 0))) return -1;
    uint32_t names = 0;
    pcre2_pattern_info(s->re_regexp, PCRE2_INFO_NAMECOUNT, &names);
    if (!names) return sw__lq_fail_at(x, x->start, "at least one named capture must be supplied");
    return sw__lq_next(x);
  }
  if (sw__lq_is_ident(x, "line_format")) {
    if (!(s = add_stage(x, lg, SW_LQ_LINE_FORMAT)) || sw__lq_next(x)) return -1;
    if (x->tk != T_STR) return sw__lq_unexpected(x, "STRING");
    if (parse_tmpl(x, x->str.data, &s->tmpl)) return -1;
    return sw__lq_next(x);
  }
  if (sw__lq_is_ident(x, "label_format")) {
    if (!(s = add_stage(x, lg, SW_LQ_LABEL_FORMAT)) || sw__lq_next(x)) return -1;
    return parse_label_format(x, s);
  }
  if (sw__lq_is_ident(x, "drop") || sw__lq_is_ident(x, "keep")) {
    if (!(s = add_stage(x, lg, sw__lq_is_ident(x, "drop") ? SW_LQ_DROP : SW_LQ_KEEP)) || sw__lq_next(x)) return -1;
    return parse_names(x, s);
  }
  if (!(s = add_stage(x, lg, SW_LQ_LABEL_FILTER))) return -1;
  return (s->lf = lexpr_or(x)) ? 0 : -1;
}

int sw__lq_parse_pipeline(struct lex *x, struct sw_lq_log *lg) {
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

int sw__lq_parse_log(struct lex *x, struct sw_lq_query *q) {
  if (q->has_log) return sw__lq_unsupported(x, "a query with more than one log selector");
  q->has_log = 1;
  if (sw__lq_parse_selector(x, &q->log)) return -1;
  return sw__lq_parse_pipeline(x, &q->log);
}

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

void sw__lq_log_free(struct sw_lq_log *lg) {
  for (size_t i = 0; i < lg->nsel; i++) sw_label_match_free(&lg->sel[i]);
  free(lg->sel);
  for (size_t i = 0; i < lg->nst; i++) stage_free(&lg->st[i]);
  free(lg->st);
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
