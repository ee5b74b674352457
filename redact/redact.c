/* redact.c - compiling a redactor, per-thread contexts, and the steps of sw_redact_line().
 *
 * Lifecycle: sw_redactor_create() compiles every pattern (PCRE2, then JIT; a pattern the JIT
 * refuses runs on the interpreter) and template, builds the prefilter table and the counter
 * names; after that the redactor is read-only. sw_redact_ctx_create() allocates what matching
 * mutates. sw_redact_line() runs the steps described in redact.h, alternating between the two
 * scratch buffers of the context so that each step reads the previous step's result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/strdist.h"
#include "redact_int.h"

#define SCRATCH_KEEP (64u << 10)  /* what a scratch buffer shrinks back to */
#define SCRATCH_SPIKE (256u << 10) /* ... once it grew past this */
#define JIT_STACK_MIN (32u << 10)
#define JIT_STACK_MAX (1u << 20)

/* ---- create / destroy ---- */

static int compile_rule(struct sw__rule *rule, const char *name, int pack, const char *pattern,
                        const char *replace, char *err, size_t errlen) {
  int ec;
  PCRE2_SIZE eoff;
  rule->pack = pack;
  rule->name = strdup(name);
  if (!rule->name) return SW_ENOMEM;
  rule->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &ec, &eoff, NULL);
  if (!rule->code) {
    PCRE2_UCHAR msg[160];
    if (ec == PCRE2_ERROR_HEAP_FAILED) return SW_ENOMEM;
    if (pcre2_get_error_message(ec, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "error %d", ec);
    snprintf(err, errlen, "pattern: bad pattern at offset %zu: %s", (size_t)eoff, (const char *)msg);
    return SW_ECONFIG;
  }
  int rc = pcre2_jit_compile(rule->code, PCRE2_JIT_COMPLETE);
  if (rc == PCRE2_ERROR_NOMEMORY) return SW_ENOMEM;
  rule->jit = rc == 0; /* else no JIT on this machine: the interpreter runs the pattern */
  rc = sw__tmpl_compile(rule, replace, err, errlen);
  if (rc == SW_ECONFIG) { /* prefix the key the message is about */
    char tmp[200];
    snprintf(tmp, sizeof tmp, "%s", err);
    snprintf(err, errlen, "replace: %s", tmp);
  }
  return rc;
}

static bool name_taken(const struct sw_redactor *r, size_t nrules, const char *name) {
  if (r->nkeys && !strcmp(name, "fields")) return true;
  for (size_t i = 0; i < nrules; i++)
    if (!strcmp(r->rules[i].name, name)) return true;
  return false;
}

/* Enabled packs -> r->packs; "builtin[i]: ..." on a problem. */
static int select_packs(struct sw_redactor *r, const struct sw_redact_conf *c, char *err, size_t errlen) {
  for (size_t i = 0; i < c->nbuiltins; i++) {
    const char *name = c->builtins[i] ? c->builtins[i] : "";
    int p = sw__pack_lookup(name);
    if (p >= 0 && (r->packs & (1u << p))) {
      snprintf(err, errlen, "builtin[%zu]: pack \"%s\" is listed twice", i, name);
      return SW_ECONFIG;
    }
    if (p >= 0) {
      r->packs |= 1u << p;
      continue;
    }
    const char *best = NULL;
    unsigned bestd = 99;
    for (size_t k = 0; sw_redact_pack_name(k); k++) {
      unsigned d = sw_edit_distance(name, sw_redact_pack_name(k));
      if (d < bestd) bestd = d, best = sw_redact_pack_name(k);
    }
    if (best && bestd <= 3)
      snprintf(err, errlen, "builtin[%zu]: unknown pack \"%.64s\" (did you mean \"%s\"?)", i, name, best);
    else
      snprintf(err, errlen, "builtin[%zu]: unknown pack \"%.64s\"", i, name);
    return SW_ECONFIG;
  }
  return 0;
}

static int copy_keys(struct sw_redactor *r, const struct sw_redact_conf *c, char *err, size_t errlen) {
  r->keys = calloc(c->nkeys ? c->nkeys : 1, sizeof *r->keys);
  r->keylens = calloc(c->nkeys ? c->nkeys : 1, sizeof *r->keylens);
  if (!r->keys || !r->keylens) return SW_ENOMEM;
  r->key_min = SIZE_MAX;
  for (size_t i = 0; i < c->nkeys; i++) {
    size_t n = c->keys[i] ? strlen(c->keys[i]) : 0;
    if (n == 0 || n > SW_REDACT_MAX_KEY) {
      snprintf(err, errlen, "keys[%zu]: %s", i, n ? "longer than 256 bytes" : "must not be empty");
      return SW_ECONFIG;
    }
    r->keys[i] = malloc(n + 1);
    if (!r->keys[i]) return SW_ENOMEM;
    for (size_t k = 0; k <= n; k++) {
      unsigned char ch = (unsigned char)c->keys[i][k];
      r->keys[i][k] = (char)sw__lower(ch);
    }
    r->keylens[i] = n;
    r->nkeys = i + 1;
    r->key_min = n < r->key_min ? n : r->key_min;
    r->key_max = n > r->key_max ? n : r->key_max;
    r->key_first[(unsigned char)r->keys[i][0] >> 3] |= (uint8_t)(1u << (r->keys[i][0] & 7));
  }
  return 0;
}

static int check_fields(struct sw_redactor *r, const struct sw_redact_conf *c, char *err, size_t errlen) {
  if (c->action < SW_REDACT_MASK || c->action > SW_REDACT_DROP) {
    snprintf(err, errlen, "action: must be mask, hash or drop");
    return SW_ECONFIG;
  }
  r->action = c->action;
  if (c->action == SW_REDACT_HASH && c->nkeys && (!c->salt || !c->salt_len)) {
    snprintf(err, errlen, "salt: required when action is hash");
    return SW_ECONFIG;
  }
  if (c->salt_len) {
    r->salt = malloc(c->salt_len);
    if (!r->salt) return SW_ENOMEM;
    memcpy(r->salt, c->salt, c->salt_len);
    r->salt_len = c->salt_len;
  }
  r->scratch_max = c->scratch_max ? c->scratch_max : SW_REDACT_DEFAULT_SCRATCH_MAX;
  if (r->scratch_max < 4096) {
    snprintf(err, errlen, "scratch_max: must be at least 4096");
    return SW_ECONFIG;
  }
  return copy_keys(r, c, err, errlen);
}

static int compile_all(struct sw_redactor *r, const struct sw_redact_conf *c, char *err, size_t errlen) {
  char why[256] = "";
  int rc = 0;
  r->rules = calloc(r->npacks + c->nrules ? r->npacks + c->nrules : 1, sizeof *r->rules);
  if (!r->rules) return SW_ENOMEM;
  for (int p = 0; p < SW__NPACKS && !rc; p++) {
    if (!(r->packs & (1u << p))) continue;
    const struct sw__pack_def *d = sw__pack_def(p);
    rc = compile_rule(&r->rules[r->nrules++], d->name, p, d->pattern, d->replace, why, sizeof why);
    if (rc == SW_ECONFIG) snprintf(err, errlen, "builtin \"%s\": %s", d->name, why); /* a bug */
  }
  for (size_t i = 0; i < c->nrules && !rc; i++) {
    const struct sw_redact_rule_conf *u = &c->rules[i];
    if (!u->name || !*u->name || !u->pattern) {
      snprintf(err, errlen, "rules[%zu].%s: required", i, !u->name || !*u->name ? "name" : "pattern");
      return SW_ECONFIG;
    }
    if (name_taken(r, r->nrules, u->name)) {
      snprintf(err, errlen, "rules[%zu].name: duplicate rule name \"%.64s\"", i, u->name);
      return SW_ECONFIG;
    }
    const char *replace = u->replace ? u->replace : SW_REDACT_DEFAULT_REPLACE;
    rc = compile_rule(&r->rules[r->nrules++], u->name, -1, u->pattern, replace, why, sizeof why);
    if (rc == SW_ECONFIG) snprintf(err, errlen, "rules[%zu].%s", i, why);
  }
  for (size_t i = 0; i < r->nrules && !rc; i++) {
    uint32_t g = 0;
    pcre2_pattern_info(r->rules[i].code, PCRE2_INFO_CAPTURECOUNT, &g);
    r->max_groups = g > r->max_groups ? g : r->max_groups;
  }
  return rc;
}

static int make_names(struct sw_redactor *r) {
  r->nnames = r->nrules + (r->nkeys ? 1 : 0);
  r->names = calloc(r->nnames ? r->nnames : 1, sizeof *r->names);
  if (!r->names) return SW_ENOMEM;
  r->fields_idx = r->nkeys ? 0 : SIZE_MAX;
  r->rule_idx = r->nkeys ? 1 : 0;
  if (r->nkeys) r->names[0] = "fields";
  for (size_t i = 0; i < r->nrules; i++) r->names[r->rule_idx + i] = r->rules[i].name;
  return 0;
}

int sw_redactor_create(const struct sw_redact_conf *c, struct sw_redactor **out, char *err, size_t errlen) {
  char dummy[1];
  struct sw_redactor *r = NULL;
  int rc = SW_ENOMEM;
  *out = NULL;
  if (!err || !errlen) err = dummy, errlen = sizeof dummy;
  err[0] = '\0';
  r = calloc(1, sizeof *r);
  if (!r) goto cleanup;
  rc = select_packs(r, c, err, errlen);
  if (!rc) rc = check_fields(r, c, err, errlen);
  for (int p = 0; p < SW__NPACKS; p++) r->npacks += (r->packs >> p) & 1;
  if (!rc) rc = compile_all(r, c, err, errlen);
  if (!rc) rc = make_names(r);
  if (rc) goto cleanup;
  sw__prefilter_init(r);
  *out = r;
  r = NULL;
cleanup:
  if (rc == SW_ENOMEM) snprintf(err, errlen, "out of memory");
  sw_redactor_destroy(r);
  return rc;
}

void sw_redactor_destroy(struct sw_redactor *r) {
  if (!r) return;
  for (size_t i = 0; i < r->nrules; i++) {
    free(r->rules[i].name);
    pcre2_code_free(r->rules[i].code);
    free(r->rules[i].text);
    free(r->rules[i].segs);
  }
  free(r->rules);
  for (size_t i = 0; i < r->nkeys; i++) free(r->keys[i]);
  free(r->keys);
  free(r->keylens);
  if (r->salt) explicit_bzero(r->salt, r->salt_len);
  free(r->salt);
  free(r->names);
  free(r);
}

size_t sw_redactor_nrules(const struct sw_redactor *r) {
  return r->nnames;
}

const char *sw_redactor_rule_name(const struct sw_redactor *r, size_t i) {
  return i < r->nnames ? r->names[i] : NULL;
}

/* ---- contexts ---- */

struct sw_redact_ctx *sw_redact_ctx_create(const struct sw_redactor *r) {
  struct sw_redact_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return NULL;
  ctx->r = r;
  for (int i = 0; i < 2; i++) sw_buf_init(&ctx->buf[i], r->scratch_max);
  sw_buf_init(&ctx->tmp, r->scratch_max);
  ctx->md = pcre2_match_data_create(r->max_groups + 1, NULL);
  ctx->mctx_packs = pcre2_match_context_create(NULL);
  ctx->mctx_user = pcre2_match_context_create(NULL);
  ctx->jit_stack = pcre2_jit_stack_create(JIT_STACK_MIN, JIT_STACK_MAX, NULL);
  ctx->counts = calloc(r->nnames ? r->nnames : 1, sizeof *ctx->counts);
  if (!ctx->md || !ctx->mctx_packs || !ctx->mctx_user || !ctx->jit_stack || !ctx->counts) {
    sw_redact_ctx_destroy(ctx);
    return NULL;
  }
  pcre2_set_callout(ctx->mctx_packs, sw__callout, NULL);
  pcre2_jit_stack_assign(ctx->mctx_packs, NULL, ctx->jit_stack);
  pcre2_jit_stack_assign(ctx->mctx_user, NULL, ctx->jit_stack);
  return ctx;
}

void sw_redact_ctx_destroy(struct sw_redact_ctx *ctx) {
  if (!ctx) return;
  pcre2_match_data_free(ctx->md);
  pcre2_match_context_free(ctx->mctx_packs);
  pcre2_match_context_free(ctx->mctx_user);
  pcre2_jit_stack_free(ctx->jit_stack);
  for (int i = 0; i < 2; i++) sw_buf_free(&ctx->buf[i]);
  sw_buf_free(&ctx->tmp);
  free(ctx->counts);
  free(ctx);
}

const uint64_t *sw_redact_ctx_counts(const struct sw_redact_ctx *ctx) {
  return ctx->counts;
}

uint64_t sw_redact_ctx_fallbacks(const struct sw_redact_ctx *ctx) {
  return ctx->fallbacks;
}

/* ---- one line ---- */

/* The text a step reads: the input or one of the scratch buffers. */
struct text {
  const char *s;
  size_t n;
  int slot; /* buf index holding s, or -1 for the caller's line */
};

static struct sw_buf *other_buf(struct sw_redact_ctx *ctx, const struct text *t) {
  return &ctx->buf[t->slot == 0 ? 1 : 0];
}

static void take(struct sw_redact_ctx *ctx, struct text *t, struct sw_buf *b) {
  t->s = b->data ? b->data : "";
  t->n = b->len;
  t->slot = b == &ctx->buf[0] ? 0 : 1;
}

static int json_step(struct sw_redact_ctx *ctx, struct text *t) {
  struct sw_buf *dst = other_buf(ctx, t);
  int rc = sw__json_mask(ctx, t->s, t->n, ctx->r->action, dst);
  if (rc == SW_ETOOBIG && ctx->r->action != SW_REDACT_DROP) { /* drop never grows the line */
    ctx->fallbacks++;
    rc = sw__json_mask(ctx, t->s, t->n, SW_REDACT_DROP, dst);
  }
  if (rc == 1) take(ctx, t, dst);
  return rc < 0 ? rc : 0;
}

static int pack_steps(struct sw_redact_ctx *ctx, struct text *t) {
  const struct sw_redactor *r = ctx->r;
  struct sw__cand cand;
  sw__prefilter(r, t->s, t->n, r->packs, &cand);
  for (size_t i = 0; i < r->npacks && cand.mask; i++) {
    uint32_t bit = 1u << r->rules[i].pack;
    if (!(cand.mask & bit)) continue;
    struct sw_buf *dst = other_buf(ctx, t);
    int rc = sw__apply_rule(ctx, i, t->s, t->n, cand.start[r->rules[i].pack], dst);
    if (rc < 0) return rc;
    if (rc == 0) {
      cand.mask &= ~bit;
      continue;
    }
    take(ctx, t, dst);
    uint32_t later = r->packs & ~((bit << 1) - 1);
    if (later) sw__prefilter(r, t->s, t->n, later, &cand); /* the text changed: look again */
    else cand.mask = 0;
  }
  return 0;
}

int sw_redact_line(struct sw_redact_ctx *ctx, const char *line, size_t len, int try_json, const char **out,
                   size_t *out_len) {
  const struct sw_redactor *r = ctx->r;
  struct text t = {.s = line, .n = len, .slot = -1};
  int rc = 0;
  *out = line;
  *out_len = len;
  if (len == 0) return 0;
  for (int i = 0; i < 3; i++) { /* the previous result is no longer needed */
    struct sw_buf *b = i < 2 ? &ctx->buf[i] : &ctx->tmp;
    if (b->cap > SCRATCH_SPIKE) {
      sw_buf_reset(b);
      sw_buf_shrink(b, SCRATCH_KEEP);
    }
  }
  if (try_json && r->nkeys) rc = json_step(ctx, &t);
  if (!rc && r->npacks) rc = pack_steps(ctx, &t);
  for (size_t i = r->npacks; i < r->nrules && !rc; i++) {
    struct sw_buf *dst = other_buf(ctx, &t);
    rc = sw__apply_rule(ctx, i, t.s, t.n, 0, dst);
    if (rc == 1) take(ctx, &t, dst);
    rc = rc < 0 ? rc : 0;
  }
  if (rc) { /* SW_ETOOBIG (a line longer than the scratch limit needs a rewrite) or SW_ENOMEM */
    ctx->fallbacks++;
    *out = SW_REDACT_LINE_MARKER;
    *out_len = sizeof SW_REDACT_LINE_MARKER - 1;
    return rc == SW_ENOMEM ? SW_ENOMEM : 0;
  }
  *out = t.s;
  *out_len = t.n;
  return 0;
}
