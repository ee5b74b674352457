/* redact_int.h - private to the redact/ sources: the compiled redactor, the per-thread context, and the
 * functions the engine's files share (sw__ prefix).
 *
 * Invariants:
 *  - A redactor is never written after sw_redactor_create() returns; everything mutable lives
 *    in a context.
 *  - rules[0..npacks) are the enabled built-in packs in application order (their `pack` id
 *    increases), rules[npacks..nrules) the user rules in configuration order.
 *  - The prefilter is a necessary condition: when it reports no candidate for a pack, that
 *    pack's regex cannot match the text; when it reports start s, no match begins before s.
 *  - The result of a step is either the text it was given (untouched) or one of the two scratch
 *    buffers, the one that does not hold its input.
 */
#ifndef SW_REDACT_INT_H
#define SW_REDACT_INT_H

#include <stdbool.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "../common/buf.h"
#include "../common/sha256.h"
#include "redact.h"

/* Built-in packs; the order is the application order. */
enum sw__pack {
  SW__PACK_PRIVATE_KEY,
  SW__PACK_URL_CREDENTIALS,
  SW__PACK_BASIC_AUTH,
  SW__PACK_BEARER_TOKEN,
  SW__PACK_JWT,
  SW__PACK_AWS_ACCESS_KEY,
  SW__PACK_AWS_SECRET_KEY,
  SW__PACK_PASSWORD_KV,
  SW__PACK_TOKEN_KV,
  SW__PACK_CLI_CREDENTIALS,
  SW__PACK_EMAIL,
  SW__PACK_CREDIT_CARD,
  SW__PACK_IPV6,
  SW__PACK_IPV4,
  SW__NPACKS
};

#define SW__CALLOUT_CARD 1  /* (?C1) in the credit_card pattern: Luhn and network prefix */
#define SW__CALLOUT_BASIC 2 /* (?C2) in the basic_auth pattern: the base64 decodes to "user:password" */

struct sw__pack_def {
  const char *name;
  const char *pattern;
  const char *replace;
};

/* One part of a replacement: literal bytes text[off, off+len) when group < 0, else a group. */
struct sw__tmpl_seg {
  int group;
  size_t off, len;
};

struct sw__rule {
  char *name;
  int pack;                /* enum sw__pack, or -1 for a user rule */
  pcre2_code *code;
  bool jit;                /* JIT compiled; else the interpreter runs it */
  char *text;              /* replacement literals */
  struct sw__tmpl_seg *segs;
  size_t nsegs;
};

struct sw_redactor {
  struct sw__rule *rules;
  size_t nrules, npacks;
  uint32_t packs;          /* bit p set: pack p enabled */
  uint16_t stop[256];      /* prefilter: bit p set when byte b may anchor pack p (SW__NPACKS <= 16) */
  const char **names;      /* counter names (borrowed from rules / "fields") */
  size_t nnames;
  size_t fields_idx;       /* counter of JSON key masking, or SIZE_MAX */
  size_t rule_idx;         /* counter of rules[0] */
  char **keys;             /* JSON keys, lower-cased */
  size_t *keylens;
  size_t nkeys, key_min, key_max;
  uint8_t key_first[32];   /* bitset of the keys' first bytes (lower-cased) */
  int action;
  uint8_t *salt;
  size_t salt_len;
  size_t scratch_max;
  uint32_t max_groups;     /* largest capture count of any rule */
};

struct sw_redact_ctx {
  const struct sw_redactor *r;
  pcre2_match_data *md;
  pcre2_match_context *mctx_packs; /* with the credit_card callout */
  pcre2_match_context *mctx_user;  /* without: callouts in user patterns are not taken */
  pcre2_jit_stack *jit_stack;
  struct sw_buf buf[2];
  struct sw_buf tmp;               /* decoded JSON strings for hashing */
  uint64_t *counts;
  uint64_t fallbacks;
};

/* Prefilter result: bit p of mask set when pack p may match, from start[p] on. */
struct sw__cand {
  uint32_t mask;
  size_t start[SW__NPACKS];
};

/* Byte classes shared by the checks and the JSON scanner. */
static inline bool sw__is_hex(unsigned c) {
  return c - '0' < 10u || (c | 0x20u) - 'a' < 6u;
}
static inline unsigned sw__lower(unsigned c) { /* ASCII only */
  return c - 'A' < 26u ? c | 0x20u : c;
}

/* builtins.c */
const struct sw__pack_def *sw__pack_def(int pack);
int sw__pack_lookup(const char *name); /* -1 if unknown */
void sw__prefilter_init(struct sw_redactor *r);
/* Where the url_credentials, IPv4 and IPv6 checks may look next (they judge a whole run at
 * once, which keeps a line of a million anchors linear); zero at the start of a line. */
struct sw__resume {
  size_t url, ipv4, ipv6;
};
/* Pack p's literal check at anchor s[i] (see builtins.c); *start: where its regex must begin. */
bool sw__pack_check(int p, const unsigned char *s, size_t n, size_t i, size_t *start, struct sw__resume *res);
int sw__callout(pcre2_callout_block *b, void *data);

/* prefilter.c: looks for candidates of the packs in `want` (a subset of r->packs) in s[0..n). */
void sw__prefilter(const struct sw_redactor *r, const char *s, size_t n, uint32_t want, struct sw__cand *c);

/* luhn.c: s[0..n) is digits with single ' ' or '-' between them; true when it is a card number
 * (13-19 digits, a card network prefix, a valid Luhn check digit). */
bool sw__card_valid(const char *s, size_t n);

/* replace.c */
int sw__tmpl_compile(struct sw__rule *rule, const char *replace, char *err, size_t errlen);
/* Applies rule i (of ctx->r) to s[0..n) from offset start. Returns 0 when nothing matched, 1
 * when the result was written to dst (which must not hold s), or SW_ENOMEM. Counts matches and
 * fallbacks. */
int sw__apply_rule(struct sw_redact_ctx *ctx, size_t i, const char *s, size_t n, size_t start,
                   struct sw_buf *dst) SW_MUST_CHECK;

/* jsonmask.c: masks configured keys of the JSON object s[0..n) with `action`. Returns 0 when the
 * line is not a JSON object or has none of the keys, 1 when the result was written to dst,
 * SW_ETOOBIG when it would pass dst's limit (dst is then garbage), SW_ENOMEM. */
int sw__json_mask(struct sw_redact_ctx *ctx, const char *s, size_t n, int action, struct sw_buf *dst) SW_MUST_CHECK;


/* Edit distance (with transpositions), capped at 99 for long inputs (suggestions). */

#endif
