/* libFuzzer harness for the redaction engine (sw_redact_line), both values of try_json.
 * Invariants, on any bytes:
 *  - every call returns 0 (no allocation fails here) and the result is the input itself when
 *    nothing changed;
 *  - all packs, no JSON keys: the result equals a brute-force reference, every pack's regex run
 *    over the whole line in order with pcre2_substitute, so the prefilter never skips a match
 *    and the rewrite loop agrees with PCRE2's own substitution;
 *  - JSON key masking alone: a rewritten line is valid JSON (cJSON parses it); with drop no key
 *    of the set is left at any depth, with mask every such value is "***";
 *  - everything at once (packs, keys with the hash action, a user rule): no crash, no leak, and
 *    counters only grow.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redact/redact.h"
#include "redact/redact_int.h" /* sw__pack_def, sw__callout: the reference */

#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const packs[] = {"email", "bearer_token", "jwt", "aws_access_key", "aws_secret_key", "credit_card",
                                    "password_kv", "url_credentials", "private_key", "ipv4", "ipv6",
                                    "basic_auth", "token_kv", "cli_credentials"};
_Static_assert(sizeof packs / sizeof packs[0] == SW__NPACKS, "the harness enables every pack");
static const char *const keys[] = {"password", "token", "secret"};

static struct sw_redact_ctx *all_ctx, *mask_ctx, *drop_ctx, *mixed_ctx;
static pcre2_code *ref_code[SW__NPACKS];
static pcre2_match_context *ref_mctx;

static struct sw_redact_ctx *make(const struct sw_redact_conf *c) {
  struct sw_redactor *r = NULL;
  CHECK(sw_redactor_create(c, &r, NULL, 0) == 0);
  struct sw_redact_ctx *ctx = sw_redact_ctx_create(r);
  CHECK(ctx != NULL);
  return ctx; /* lives as long as the process */
}

static void init(void) {
  static const struct sw_redact_rule_conf rules[] = {{"ssn", "\\b(\\d{3})-\\d{2}-(?<last>\\d{4})\\b", "$1-**-${last}$$"}};
  struct sw_redact_conf all = {.builtins = packs, .nbuiltins = SW__NPACKS};
  struct sw_redact_conf mask = {.keys = keys, .nkeys = 3, .action = SW_REDACT_MASK};
  struct sw_redact_conf drop = {.keys = keys, .nkeys = 3, .action = SW_REDACT_DROP};
  struct sw_redact_conf mixed = {.builtins = packs, .nbuiltins = SW__NPACKS, .rules = rules, .nrules = 1,
                                 .keys = keys, .nkeys = 3, .action = SW_REDACT_HASH, .salt = "salt", .salt_len = 4};
  all_ctx = make(&all);
  mask_ctx = make(&mask);
  drop_ctx = make(&drop);
  mixed_ctx = make(&mixed);
  ref_mctx = pcre2_match_context_create(NULL);
  CHECK(ref_mctx != NULL);
  pcre2_set_callout(ref_mctx, sw__callout, NULL);
  for (int p = 0; p < SW__NPACKS; p++) {
    int ec;
    PCRE2_SIZE eo;
    ref_code[p] = pcre2_compile((PCRE2_SPTR)sw__pack_def(p)->pattern, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    CHECK(ref_code[p] != NULL);
    CHECK(pcre2_jit_compile(ref_code[p], PCRE2_JIT_COMPLETE) == 0);
  }
}

/* Every pack in order over the whole line. Caller frees. */
static char *reference(const char *in, size_t n, size_t *out_len) {
  char *cur = malloc(n + 1);
  CHECK(cur != NULL);
  if (n) memcpy(cur, in, n);
  size_t len = n;
  for (int p = 0; p < SW__NPACKS; p++) {
    PCRE2_SIZE cap = len + 64;
    char *out = NULL;
    int rc = PCRE2_ERROR_NOMEMORY;
    for (int attempt = 0; attempt < 2 && rc == PCRE2_ERROR_NOMEMORY; attempt++) {
      free(out);
      out = malloc(cap + 1);
      CHECK(out != NULL);
      rc = pcre2_substitute(ref_code[p], (PCRE2_SPTR)cur, len, 0,
                            PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, NULL, ref_mctx,
                            (PCRE2_SPTR)sw__pack_def(p)->replace, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)out, &cap);
    }
    CHECK(rc >= 0);
    free(cur);
    cur = out;
    len = cap;
  }
  *out_len = len;
  return cur;
}

/* With mask (want_mask) every value of a masked key is "***"; with drop there is none. */
static void check_keys(const cJSON *it, int want_mask) {
  for (const cJSON *c = it->child; c; c = c->next) {
    int hit = cJSON_IsObject(it) && c->string &&
              (!strcasecmp(c->string, "password") || !strcasecmp(c->string, "token") || !strcasecmp(c->string, "secret"));
    if (hit) {
      CHECK(want_mask && cJSON_IsString(c) && !strcmp(c->valuestring, "***"));
      continue;
    }
    check_keys(c, want_mask);
  }
}

static void check_json(struct sw_redact_ctx *ctx, const char *line, size_t size, int want_mask) {
  const char *out;
  size_t n;
  CHECK(sw_redact_line(ctx, line, size, 1, &out, &n) == 0);
  if (out == line) return;
  /* cJSON refuses some valid JSON (lone surrogates): judge only what it reads in the input */
  cJSON *in = cJSON_ParseWithLength(line, size);
  if (!in) return;
  cJSON_Delete(in);
  cJSON *j = cJSON_ParseWithLength(out, n);
  CHECK(j != NULL && cJSON_IsObject(j));
  /* cJSON cuts names at a NUL ("\u0000"): check the keys only without one */
  if (!memchr(out, '\0', n) && !memmem(out, n, "\\u0000", 6)) check_keys(j, want_mask);
  cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    init();
    ready = 1;
  }
  const char *line = size ? (const char *)data : "";
  const char *out;
  size_t n, rn;

  /* all packs against the reference */
  CHECK(sw_redact_line(all_ctx, line, size, 0, &out, &n) == 0);
  char *want = reference(line, size, &rn);
  CHECK(rn == n && (n == 0 || !memcmp(out, want, n)));
  free(want);

  check_json(mask_ctx, line, size, 1);
  check_json(drop_ctx, line, size, 0);

  uint64_t before = sw_redact_ctx_counts(mixed_ctx)[0];
  for (int json = 0; json < 2; json++) CHECK(sw_redact_line(mixed_ctx, line, size, json, &out, &n) == 0);
  CHECK(sw_redact_ctx_counts(mixed_ctx)[0] >= before);
  return 0;
}
