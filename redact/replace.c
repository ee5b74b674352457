/* replace.c - replacement templates and the rewrite loop of one rule over one line.
 *
 * A template is parsed once into segments (literal bytes or a group number), so expanding it
 * is a few appends. The rewrite copies the gaps between matches and the expanded template into
 * the destination scratch buffer; only a line with at least one match is copied at all.
 *
 * Fallbacks, so that a match is never passed through unredacted:
 *  - the result would pass the scratch limit: the line is rewritten again with each match
 *    overwritten by '*' bytes (same length, so it fits whenever the line itself fits);
 *  - the line itself is longer than the limit: SW_ETOOBIG, the caller outputs the whole-line
 *    marker;
 *  - PCRE2 gives up (match limit, JIT stack): everything from where the search stood to the end
 *    of the line is replaced by "[REDACTED:<rule>]".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact_int.h"

/* ---- templates ---- */

static int add_seg(struct sw__rule *rule, size_t *cap, int group, size_t off, size_t len) {
  if (group < 0 && len == 0) return 0;
  if (group < 0 && rule->nsegs && rule->segs[rule->nsegs - 1].group < 0) { /* extend the literal */
    rule->segs[rule->nsegs - 1].len += len;
    return 0;
  }
  if (rule->nsegs == *cap) {
    size_t ncap = *cap ? 2 * *cap : 4;
    struct sw__tmpl_seg *p = realloc(rule->segs, ncap * sizeof *p);
    if (!p) return SW_ENOMEM;
    rule->segs = p;
    *cap = ncap;
  }
  rule->segs[rule->nsegs++] = (struct sw__tmpl_seg){.group = group, .off = off, .len = len};
  return 0;
}

/* The group a "${...}" names: digits or a group name. -1 (with err set) when there is none. */
static int group_ref(const struct sw__rule *rule, const char *ref, size_t len, char *err, size_t errlen) {
  char name[64];
  if (len == 0 || len >= sizeof name) {
    snprintf(err, errlen, "bad group reference \"${%.*s}\"", (int)(len > 32 ? 32 : len), ref);
    return -1;
  }
  memcpy(name, ref, len);
  name[len] = '\0';
  if (strspn(name, "0123456789") == len) {
    long g = len > 4 ? 99999 : strtol(name, NULL, 10);
    return (int)g;
  }
  int g = pcre2_substring_number_from_name(rule->code, (PCRE2_SPTR)name);
  if (g == PCRE2_ERROR_NOUNIQUESUBSTRING) { /* duplicate names with (?J): the first one */
    PCRE2_SPTR first, last;
    int size = pcre2_substring_nametable_scan(rule->code, (PCRE2_SPTR)name, &first, &last);
    g = size > 0 ? (first[0] << 8 | first[1]) : size;
  }
  if (g < 0) snprintf(err, errlen, "unknown group name \"%s\"", name);
  return g;
}

int sw__tmpl_compile(struct sw__rule *rule, const char *replace, char *err, size_t errlen) {
  size_t n = strlen(replace), cap = 0, o = 0;
  uint32_t ngroups = 0;
  pcre2_pattern_info(rule->code, PCRE2_INFO_CAPTURECOUNT, &ngroups);
  rule->text = malloc(n + 1);
  if (!rule->text) return SW_ENOMEM;
  for (size_t i = 0; i < n;) {
    int group = -1, rc = 0;
    if (replace[i] != '$') {
      rule->text[o] = replace[i++];
      rc = add_seg(rule, &cap, -1, o++, 1);
    } else if (replace[i + 1] == '$') {
      rule->text[o] = '$';
      rc = add_seg(rule, &cap, -1, o++, 1);
      i += 2;
    } else if (replace[i + 1] >= '0' && replace[i + 1] <= '9') {
      group = replace[i + 1] - '0';
      i += 2;
    } else if (replace[i + 1] == '{' && strchr(replace + i, '}')) {
      const char *close = strchr(replace + i, '}');
      group = group_ref(rule, replace + i + 2, (size_t)(close - replace - i - 2), err, errlen);
      if (group < 0) return SW_ECONFIG;
      i = (size_t)(close - replace) + 1;
    } else {
      snprintf(err, errlen, "\"$\" at offset %zu must be followed by a digit, {name} or $ (write $$ for a $)", i);
      return SW_ECONFIG;
    }
    if (group > (int)ngroups) {
      snprintf(err, errlen, "group $%d does not exist (the pattern has %u)", group, ngroups);
      return SW_ECONFIG;
    }
    if (group >= 0) rc = add_seg(rule, &cap, group, 0, 0);
    if (rc) return rc;
  }
  return 0;
}

/* ---- matching ---- */

static int match(struct sw_redact_ctx *ctx, const struct sw__rule *rule, const char *s, size_t n, size_t off) {
  pcre2_match_context *mctx = rule->pack >= 0 ? ctx->mctx_packs : ctx->mctx_user;
  if (rule->jit)
    return pcre2_jit_match(rule->code, (PCRE2_SPTR)s, n, off, PCRE2_NOTEMPTY, ctx->md, mctx);
  return pcre2_match(rule->code, (PCRE2_SPTR)s, n, off, PCRE2_NOTEMPTY, ctx->md, mctx);
}

/* The next search offset after a match [ms, me) found from off: always forward. */
static size_t next_offset(size_t off, size_t me) {
  return me > off ? me : off + 1;
}

static int expand(struct sw_buf *dst, const struct sw__rule *rule, const char *s, const PCRE2_SIZE *ov, int rc) {
  int err = 0;
  for (size_t k = 0; k < rule->nsegs && !err; k++) {
    const struct sw__tmpl_seg *g = &rule->segs[k];
    if (g->group < 0)
      err = sw_buf_append(dst, rule->text + g->off, g->len);
    else if (g->group < rc && ov[2 * g->group] != PCRE2_UNSET)
      err = sw_buf_append(dst, s + ov[2 * g->group], ov[2 * g->group + 1] - ov[2 * g->group]);
  }
  return err;
}

static int give_up_marker(struct sw_buf *dst, const struct sw__rule *rule) {
  int err = sw_buf_append(dst, "[REDACTED:", 10);
  if (!err) err = sw_buf_append(dst, rule->name, strlen(rule->name));
  if (!err) err = sw_buf_putc(dst, ']');
  return err;
}

/* The rewrite did not fit: each match becomes '*' bytes in a copy of the line. */
static int star_fallback(struct sw_redact_ctx *ctx, size_t idx, const char *s, size_t n, size_t start,
                         struct sw_buf *dst) {
  const struct sw__rule *rule = &ctx->r->rules[idx];
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(ctx->md);
  uint64_t nmatch = 0;
  sw_buf_reset(dst);
  int err = sw_buf_append(dst, s, n);
  if (err) return err; /* SW_ETOOBIG: the line itself does not fit (the caller counts that) */
  ctx->fallbacks++;
  for (size_t off = start; off <= n;) {
    int rc = match(ctx, rule, s, n, off);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    size_t ms = rc < 0 ? off : ov[0], me = rc < 0 ? n : ov[1];
    if (ms < me) memset(dst->data + ms, '*', me - ms);
    nmatch++;
    if (rc < 0) break;
    off = next_offset(off, me);
  }
  ctx->counts[ctx->r->rule_idx + idx] += nmatch;
  return 1;
}

int sw__apply_rule(struct sw_redact_ctx *ctx, size_t idx, const char *s, size_t n, size_t start,
                   struct sw_buf *dst) {
  const struct sw__rule *rule = &ctx->r->rules[idx];
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(ctx->md);
  if (n == 0 || start > n) return 0;
  int rc = match(ctx, rule, s, n, start);
  if (rc == PCRE2_ERROR_NOMATCH) return 0;
  size_t copied = 0, off = start;
  uint64_t nmatch = 0;
  int err = 0;
  sw_buf_reset(dst);
  while (rc != PCRE2_ERROR_NOMATCH && !err) {
    if (rc < 0) { /* PCRE2 gave up: nothing after off can be trusted */
      ctx->fallbacks++;
      err = sw_buf_append(dst, s + copied, off - copied);
      if (!err) err = give_up_marker(dst, rule);
      copied = n;
      nmatch++;
      break;
    }
    size_t ms = ov[0] < copied ? copied : ov[0], me = ov[1] < ms ? ms : ov[1];
    err = sw_buf_append(dst, s + copied, ms - copied);
    if (!err) err = expand(dst, rule, s, ov, rc);
    copied = me;
    nmatch++;
    off = next_offset(off, me);
    if (off > n) break;
    rc = match(ctx, rule, s, n, off);
  }
  if (!err) err = sw_buf_append(dst, s + copied, n - copied);
  if (err == SW_ETOOBIG) return star_fallback(ctx, idx, s, n, start, dst);
  if (err) return err;
  ctx->counts[ctx->r->rule_idx + idx] += nmatch;
  return 1;
}
