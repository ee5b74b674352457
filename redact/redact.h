/* redact.h - the redaction engine: secrets and personal data out of log lines.
 *
 * Pure: no I/O, no globals. A redactor is compiled once from a configuration (PCRE2 + JIT) and is
 * immutable afterwards, so any number of threads may share it. Each thread owns a context with
 * its mutable state: PCRE2 match data and JIT stack, two scratch buffers for rewritten lines, and
 * per-rule match counters.
 *
 * What one call of sw_redact_line() does, in this order:
 *  1. JSON key masking ("fields"), only when try_json is set, keys are configured and the line is
 *     one JSON object (RFC 8259, nesting depth <= SW_REDACT_JSON_MAX_DEPTH, surrounding
 *     whitespace allowed). The value of every member whose key equals a configured key (ASCII
 *     case-insensitive, after decoding escapes) is replaced, at any depth and inside arrays:
 *       mask: the value becomes "***";
 *       hash: the value becomes "sha256:<16 hex>", the first 8 bytes of SHA-256(salt || value) in
 *             lower-case hex, where value is the decoded string (escapes resolved, without the
 *             quotes) for a string, else the value's JSON text as written (42, true, {"a":1});
 *             equal values and salt give equal tokens, so joins on the token still work;
 *       drop: the member (key, value and one adjacent comma) is removed; the line stays valid
 *             JSON.
 *     Anything else (plain text, arrays, invalid JSON) is left to step 2 unchanged.
 *  2. Built-in packs, in this fixed order whatever the order of the configuration: private_key,
 *     url_credentials, basic_auth, bearer_token, jwt, aws_access_key, aws_secret_key, password_kv,
 *     token_kv, cli_credentials, email, credit_card, ipv6, ipv4 (see sw_redact_pack_name() and builtins.c for what each matches).
 *     Each replaces the secret with "[REDACTED:<pack>]" and keeps its context (the key, the
 *     "Bearer " prefix, the URL's scheme, user and host).
 *  3. User rules, in configuration order. Empty matches are ignored.
 * Each step works on the output of the one before. A prefilter (one pass over the line) finds
 * which packs can match at all, so a line without a candidate costs no regex.
 *
 * Never fails on any bytes (invalid UTF-8, NULs, any length). When a rewritten line would pass
 * the scratch limit, the step falls back to a form that cannot grow and cannot leak: JSON key
 * masking switches to drop, a regex rule replaces each match by as many '*' bytes; a match
 * error (PCRE2 match or JIT stack limit) replaces everything from where the search stood to the
 * end of the line by "[REDACTED:<rule>]". A line that needs a rewrite but is itself longer than
 * the scratch limit, or a failed allocation, gives the whole-line marker SW_REDACT_LINE_MARKER.
 * Every fallback is counted in sw_redact_ctx_fallbacks().
 */
#ifndef SW_REDACT_H
#define SW_REDACT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

/* Action on the values of configured JSON keys; the values match the config's enum index. */
enum sw_redact_action { SW_REDACT_MASK = 0, SW_REDACT_HASH = 1, SW_REDACT_DROP = 2 };

#define SW_REDACT_DEFAULT_REPLACE "[REDACTED]"     /* user rule without `replace` */
#define SW_REDACT_DEFAULT_SCRATCH_MAX (4u << 20)  /* largest rewritten line, per scratch buffer */
#define SW_REDACT_LINE_MARKER "[REDACTED:line]"    /* output when a line cannot be rewritten */
#define SW_REDACT_JSON_MAX_DEPTH 128               /* deeper JSON is not key-masked (step 2 runs) */
#define SW_REDACT_MAX_KEY 256                      /* longest JSON key that can be configured */

struct sw_redact_rule_conf {
  const char *name;    /* required, non-empty, unique among rules, packs and "fields" */
  const char *pattern; /* PCRE2, compiled with no options: it matches bytes, not UTF-8 */
  const char *replace; /* NULL: SW_REDACT_DEFAULT_REPLACE. "$1".."$9", "${12}" and "${name}"
                        * insert a group (empty when unset), "$$" is "$"; any other "$" is an
                        * error */
};

struct sw_redact_conf {
  const char *const *builtins; /* pack names, see sw_redact_pack_name(); no duplicates */
  size_t nbuiltins;
  const struct sw_redact_rule_conf *rules;
  size_t nrules;
  const char *const *keys;     /* JSON keys whose values are redacted (1..SW_REDACT_MAX_KEY bytes) */
  size_t nkeys;
  int action;                  /* enum sw_redact_action */
  const void *salt;            /* hash action: required, borrowed during create only */
  size_t salt_len;
  size_t scratch_max;          /* 0: SW_REDACT_DEFAULT_SCRATCH_MAX; at least 4096 */
};

struct sw_redactor;
struct sw_redact_ctx;

/* Compiles c (borrowed; nothing is kept pointing into it). On success *out is a new redactor
 * (free with sw_redactor_destroy) and returns 0. On failure *out is NULL, returns SW_ECONFIG with
 * "<key path>: <reason>" in err (e.g. `rules[2].pattern: bad pattern at offset 3: missing closing
 * parenthesis`, `builtin[1]: unknown pack "emial" (did you mean "email"?)`), or SW_ENOMEM. err
 * may be NULL when errlen is 0. */
int sw_redactor_create(const struct sw_redact_conf *c, struct sw_redactor **out, char *err,
                       size_t errlen) SW_MUST_CHECK;
void sw_redactor_destroy(struct sw_redactor *r); /* NULL is fine; no context may still use r */

/* Named counters, in a fixed order: "fields" first when keys are configured, then the enabled
 * packs in application order, then the user rules by name in configuration order. */
size_t sw_redactor_nrules(const struct sw_redactor *r);
const char *sw_redactor_rule_name(const struct sw_redactor *r, size_t i); /* NULL past the end */

/* A pack name by index (application order), NULL past the end: for docs and suggestions. */
const char *sw_redact_pack_name(size_t i);

/* A context for one thread at a time; r is borrowed and must outlive it. NULL on ENOMEM.
 * Memory: about 1 KiB plus a PCRE2 JIT stack (1 MiB of address space, pages touched as needed,
 * typically 32 KiB); the two scratch buffers (and a decode buffer for hashing) are allocated only
 * when a line is rewritten, grow up to scratch_max each, and shrink back to 64 KiB at the next
 * call after a line larger than 256 KiB. */
struct sw_redact_ctx *sw_redact_ctx_create(const struct sw_redactor *r);
void sw_redact_ctx_destroy(struct sw_redact_ctx *ctx); /* NULL is fine */

/* Redacts line[0..len) (borrowed; any bytes, may be NULL when len is 0). Sets *out and *out_len to
 * the result: line itself when nothing changed (zero copy), else memory inside ctx that stays
 * valid until the next call with ctx. try_json: apply JSON key masking when the line is a JSON
 * object. Returns 0, or SW_ENOMEM when an allocation failed; the result is safe to use either
 * way (then it is SW_REDACT_LINE_MARKER). */
int sw_redact_line(struct sw_redact_ctx *ctx, const char *line, size_t len, int try_json, const char **out,
                   size_t *out_len);

/* Replacements made through ctx, indexed like sw_redactor_rule_name() (JSON: values masked,
 * hashed or dropped). Owned by ctx; read it from the thread that uses ctx. */
const uint64_t *sw_redact_ctx_counts(const struct sw_redact_ctx *ctx);
/* Lines or steps that took a conservative fallback (see above). */
uint64_t sw_redact_ctx_fallbacks(const struct sw_redact_ctx *ctx);

#endif
