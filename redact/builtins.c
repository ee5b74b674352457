/* builtins.c - the built-in packs (pattern, replacement) and their prefilter.
 *
 * Every pack replaces the secret with "[REDACTED:<pack>]" and keeps the context around it:
 *
 *   private_key      -----BEGIN ... PRIVATE KEY----- through the matching -----END ...-----, across
 *                    lines of a multi-line record; without an END, to the end of the record. The
 *                    whole block is replaced.
 *   url_credentials  scheme://user:PASSWORD@host -> scheme://user:[REDACTED:url_credentials]@host.
 *                    The password may contain '@' (the last '@' of the authority ends it).
 *   basic_auth       "Basic <base64>" (any case, then white space; an Authorization header, curl -v
 *                    output): the base64, only when it decodes to printable "user:password" (a
 *                    callout checks it), so "Basic auth" or "basic setup" stay.
 *   bearer_token     "Bearer TOKEN" / "bearer TOKEN" (any case, then white space): the token. A
 *                    plain word ("bearer of bad news", "Bearer Token") is not a token.
 *   jwt              three base64url segments, the first starting "eyJ" (signature may be empty).
 *   aws_access_key   AKIA or ASIA + 16 upper-case letters or digits, as a whole word.
 *   aws_secret_key   a 40-character base64 value after a key such as aws_secret_access_key,
 *                    SecretAccessKey, secret_key (any case, '_' '-' '.' or nothing between the
 *                    words) and ':' or '=': only the value.
 *   password_kv      the value after a key password, passwd, pass, pwd or secret (any case,
 *                    optionally quoted, optionally with a prefix ending in '_', '-' or '.':
 *                    db_password, client_secret, x-secret; password, passwd and secret also
 *                    glued to a word: newPassword, clientSecret, PGPASSWORD, but not bypass or
 *                    compass) and ':' or '='. Never a key that goes on (password_policy=strict,
 *                    password_length=12), nor the unquoted values true, false, null
 *                    (isSecret=false). The value is the text in quotes ("..." with escapes, or
 *                    '...'), else up to white space or one of & , ; " ' } ]. Values that are
 *                    already redacted ("***", "sha256:..." tokens, [REDACTED...]) are left alone.
 *                    Also after an URL-encoded separator (password%3Dx, a key after %26 or %3F: the
 *                    value stops at %26), as a command-line flag (--password=x, --db-pass=x) and
 *                    as JSON inside a JSON string (\"password\":\"x\": the value up to the next \").
 *   token_kv         the same value forms after a key ending in "token" (token, access_token,
 *                    X-Auth-Token, accessToken) or in "key" right after api, secret, access,
 *                    private, client, auth, app, master, signing or encryption (api_key, apikey,
 *                    x-api-key, secret_key, clientKey). Never a key that goes on (tokenizer=,
 *                    token_count=, max_tokens=), a bare key= or other *key words (keyboard=,
 *                    monkey=, primary_key=), nor the unquoted values true, false, null.
 *   cli_credentials  the password of "-u user:password", "-U ...", "--user user:password",
 *                    "--user=...", "--proxy-user ..." (curl, wget, httpie), the flag after white
 *                    space or a quote. Not "-u" without a ':' in its value (sort -u file, ulimit
 *                    -u 100, git push -u origin main) nor numeric uid:gid (docker run -u
 *                    1000:1000); "docker run -u app:app" IS masked, hence opt-in.
 *   email            local@domain.tld with an alphabetic TLD, also when a '-' follows
 *                    (user@example.com-pod). Not masked: user@localhost (no dot), lodash@4.17.21
 *                    (numeric TLD), asset names such as icon@2x.png (TLD png, jpg, jpeg, gif, svg,
 *                    webp, ico, css, js).
 *   credit_card      13-19 digits, optionally grouped by single spaces or dashes, not glued to a
 *                    letter or digit (hex ids, digests), with a card network prefix and a valid
 *                    Luhn digit (luhn.c). The whole number is replaced.
 *   ipv6             full, compressed and IPv4-embedded forms, as a whole token; not MAC
 *                    addresses, times (12:34:56) or C++/Rust paths (std::string).
 *   ipv4             dotted quads with octets 0-255 and no leading zeros, as a whole token; not
 *                    v1.2.3.4 or 1.2.3.4.5 (a bare version "1.2.3.4" is indistinguishable and IS
 *                    masked: ipv4 is opt-in like every pack).
 *
 * Prefilter (prefilter.c). One pass over the line marks the anchors of the enabled packs (rare
 * triples such as "sec", "pas", "bea", pairs such as "AK", "yJ", "-B", "::", every '@', chains of
 * dots or colons, long digit runs); at an anchor, the pack's check below compares a few bytes of
 * literal context (e.g. "password" + optional quote + spaces + ':' or '='). Each check is a
 * necessary condition of the pack's regex, and the start it reports is never after the regex's
 * first match (it scans back over every byte the match could begin with), so skipping a pack the
 * prefilter rejects never skips a match. The regex then runs from that start.
 */
#include <string.h>

#include "redact_int.h"

_Static_assert(SW__NPACKS <= 16, "r->stop holds one bit per pack in 16 bits");

#define OCTET "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#define IPV4 "(?:" OCTET "\\.){3}" OCTET
#define H "[0-9A-Fa-f]{1,4}"
/* Where a key of password_kv / token_kv may begin: not inside a word, or right after a %XX escape
 * (an URL-encoded query: "%26password%3D..."); one or two dashes of a command-line flag may lead. */
#define KV_START "(?:(?<![A-Za-z0-9_.-])|(?<=%[0-9A-Fa-f]{2}))-{0,2}"
/* Words before "key" that make it a credential (api_key, secretKey, x-access-key); a bare key,
 * primary_key or monkey is not one. Lower case: the patterns using it are caseless. */
#define KEY_WORDS "(?:api|secret|access|private|client|auth|app|master|signing|encryption)"
/* After a key: the separator and the value, which is what gets replaced (\K). Either an optional
 * closing quote, white space, ':' or '=' and a value in quotes ("..." with escapes, '...') or up to
 * white space or one of & , ; " ' } ]; or an URL-encoded '=' or ':' (%3D, %3A) and a value up to
 * an encoded '&' (%26) or the same stop bytes; or JSON inside a JSON string (\"password\":\"x\",
 * a request body logged in a message field) and the value up to the next \". Values already
 * redacted ("***", "sha256:" tokens, [REDACTED...]) are left alone; skip: a further lookahead of
 * values that are no secret. */
#define KV_VALUE(skip)                                                                             \
  "(?:[\"']?\\s*[:=]\\s*(?!\"?\\[REDACTED|\"\\*\\*\\*\"|\"sha256:[0-9a-f]{16}\")" skip                   \
  "(?:\"\\K(?:[^\"\\\\]++|\\\\.?)++|'\\K[^']++|\\K[^\\s&,;\"'}\\]]++)"                                  \
  "|%3[AaDd](?!\\[REDACTED)" skip "\\K(?:(?!%26)[^\\s&,;\"'}\\]])++"                                \
  "|\\\\[\"']\\s*[:=]\\s*\\\\\"(?!\\[REDACTED|\\*\\*\\*\\\\\")\\K(?:[^\"\\\\]++|\\\\[^\"])++)"

static const struct sw__pack_def packs[SW__NPACKS] = {
    [SW__PACK_PRIVATE_KEY] = {"private_key",
                              "-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----(?s:.*?)"
                              "(?:-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\\z)",
                              "[REDACTED:private_key]"},
    [SW__PACK_URL_CREDENTIALS] = {"url_credentials",
                                  "([A-Za-z][A-Za-z0-9+.-]*://[^\\s:/?#@\"'<>\\\\]*:)[^\\s/?#\"'<>\\\\]+@",
                                  "$1[REDACTED:url_credentials]@"},
    [SW__PACK_BASIC_AUTH] = {"basic_auth", "\\b((?i:basic)\\s+)[A-Za-z0-9+/]{4,}={0,2}(?![A-Za-z0-9+/=_-])(?C2)",
                             "$1[REDACTED:basic_auth]"},
    [SW__PACK_BEARER_TOKEN] = {"bearer_token",
                               "\\b((?i:bearer)\\s+)(?![A-Za-z][a-z]{0,18}(?![A-Za-z0-9\\-._~+/=]))"
                               "[A-Za-z0-9\\-._~+/]+=*",
                               "$1[REDACTED:bearer_token]"},
    [SW__PACK_JWT] = {"jwt", "(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}\\.[A-Za-z0-9_-]{2,}\\.[A-Za-z0-9_-]*",
                      "[REDACTED:jwt]"},
    [SW__PACK_AWS_ACCESS_KEY] = {"aws_access_key", "(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])",
                                 "[REDACTED:aws_access_key]"},
    [SW__PACK_AWS_SECRET_KEY] = {"aws_secret_key",
                                 "(?i)((?:aws[_.-]?)?secret[_.-]?(?:access[_.-]?)?key[\"']?\\s*[:=]\\s*[\"']?)"
                                 "[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
                                 "$1[REDACTED:aws_secret_key]"},
    [SW__PACK_PASSWORD_KV] = {"password_kv",
                              "(?i)" KV_START "(?:[A-Za-z0-9]+[_.-])*+(?:[A-Za-z0-9]*(?:password|passwd|secret)|pass|pwd)"
                              KV_VALUE("(?!(?:true|false|null)\\b)"),
                              "[REDACTED:password_kv]"},
    [SW__PACK_TOKEN_KV] = {"token_kv",
                           "(?i)" KV_START "[A-Za-z0-9_.-]*?(?:token|" KEY_WORDS "[_.-]?key)"
                           KV_VALUE("(?!(?:true|false|null)\\b)"),
                           "[REDACTED:token_kv]"},
    [SW__PACK_CLI_CREDENTIALS] = {"cli_credentials",
                                  "(?<![^\\s\"'])(?:-[uU]\\s+|--(?:proxy-)?user(?:\\s+|=))[\"']?"
                                  "(?![0-9]+:[0-9]+(?![^\\s\"']))[^\\s:\"']+:\\K[^\\s\"']+",
                                  "[REDACTED:cli_credentials]"},
    [SW__PACK_EMAIL] = {"email",
                        "(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9][A-Za-z0-9.-]*\\.[A-Za-z]{2,24}"
                        "(?![A-Za-z0-9])"
                        "(?<!(?i)\\.png|\\.jpg|\\.jpeg|\\.gif|\\.svg|\\.webp|\\.ico|\\.css|\\.js)",
                        "[REDACTED:email]"},
    [SW__PACK_CREDIT_CARD] = {"credit_card", "(?<![0-9A-Za-z])[0-9](?:[ -]?[0-9]){12,18}(?![0-9A-Za-z])(?C1)",
                              "[REDACTED:credit_card]"},
    [SW__PACK_IPV6] = {"ipv6",
                       "(?<![0-9A-Za-z_:.])(?:"
                       "(?:" H ":){7}" H "|(?:" H ":){1,7}:|(?:" H ":){1,6}:" H
                       "|(?:" H ":){1,5}(?::" H "){1,2}|(?:" H ":){1,4}(?::" H "){1,3}"
                       "|(?:" H ":){1,3}(?::" H "){1,4}|(?:" H ":){1,2}(?::" H "){1,5}"
                       "|" H ":(?::" H "){1,6}|:(?:(?::" H "){1,7}|:)"
                       "|(?:" H ":){6}" IPV4 "|(?:(?:" H ":){1,5}|:):(?:" H ":){0,4}" IPV4
                       ")(?![0-9A-Za-z_:]|\\.[0-9])",
                       "[REDACTED:ipv6]"},
    [SW__PACK_IPV4] = {"ipv4", "(?<![A-Za-z0-9.])" IPV4 "(?![A-Za-z0-9]|\\.[0-9])", "[REDACTED:ipv4]"},
};

const struct sw__pack_def *sw__pack_def(int pack) {
  return pack >= 0 && pack < SW__NPACKS ? &packs[pack] : NULL;
}

const char *sw_redact_pack_name(size_t i) {
  return i < SW__NPACKS ? packs[i].name : NULL;
}

int sw__pack_lookup(const char *name) {
  for (int p = 0; p < SW__NPACKS; p++)
    if (!strcmp(packs[p].name, name)) return p;
  return -1;
}

static int b64_value(unsigned c) {
  if (c - 'A' < 26u) return (int)(c - 'A');
  if (c - 'a' < 26u) return (int)(c - 'a') + 26;
  if (c - '0' < 10u) return (int)(c - '0') + 52;
  return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* s[0..n) (padding optional) is the base64 of what HTTP Basic sends, "user:password": every
 * decoded byte printable (or UTF-8) and one of them a ':'. English after the word "Basic"
 * ("Basic auth", "basic setup") decodes to control bytes or has no ':', so it is left alone. */
static bool basic_valid(const unsigned char *s, size_t n) {
  uint32_t acc = 0;
  int bits = 0;
  bool colon = false;
  while (n > 0 && s[n - 1] == '=') n--;
  if (n % 4 == 1) return false;
  for (size_t i = 0; i < n; i++) {
    int v = b64_value(s[i]);
    if (v < 0) return false;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits < 8) continue;
    bits -= 8;
    unsigned c = acc >> bits & 0xffu;
    if (c < 0x20 || c == 0x7f) return false;
    colon |= c == ':';
  }
  return colon;
}

int sw__callout(pcre2_callout_block *b, void *data) {
  (void)data;
  const unsigned char *s = (const unsigned char *)b->subject;
  size_t from = b->start_match, to = b->current_position;
  /* > 0: this candidate fails, the matcher backtracks to shorter ones and later starts */
  if (b->callout_number == SW__CALLOUT_CARD) return sw__card_valid((const char *)s + from, to - from) ? 0 : 1;
  if (b->callout_number != SW__CALLOUT_BASIC) return 0;
  from += 5; /* "Basic", then the white space the pattern requires */
  while (from < to && (s[from] == ' ' || (unsigned)s[from] - '\t' < 5u)) from++;
  return basic_valid(s + from, to - from) ? 0 : 1;
}

/* ---- character classes (the checks run only at anchor bytes, so plain tests are fine) ---- */

static inline bool is_digit(unsigned c) {
  return c - '0' < 10u;
}
static inline bool is_alpha(unsigned c) {
  return (c | 0x20) - 'a' < 26u;
}
static inline bool is_alnum(unsigned c) {
  return is_digit(c) || is_alpha(c);
}
static inline bool is_upper_alnum(unsigned c) {
  return is_digit(c) || c - 'A' < 26u;
}
static inline bool is_space(unsigned c) { /* PCRE2's \s without UCP */
  return c == ' ' || c - '\t' < 5u;
}
static inline bool is_key_char(unsigned c) { /* a key and its prefix: db_password, aws_secret */
  return is_alnum(c) || c == '_' || c == '.' || c == '-';
}
static inline bool is_local_char(unsigned c) { /* e-mail local part */
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
static inline bool is_scheme_char(unsigned c) {
  return is_alnum(c) || c == '+' || c == '.' || c == '-';
}
static inline bool is_b64url(unsigned c) {
  return is_alnum(c) || c == '_' || c == '-';
}

/* s[i..] starts with the lower-case word w in any case. */
static bool word_at(const unsigned char *s, size_t n, size_t i, const char *w, size_t wl) {
  if (n - i < wl) return false;
  for (size_t k = 0; k < wl; k++)
    if ((s[i + k] | 0x20) != (unsigned char)w[k]) return false;
  return true;
}

/* After a key: an URL-encoded '=' or ':'; or an optional closing quote, white space, then ':' or
 * '='. */
static bool kv_sep(const unsigned char *s, size_t n, size_t j) {
  if (n - j >= 3 && s[j] == '%' && s[j + 1] == '3' && ((s[j + 2] | 0x20) == 'a' || (s[j + 2] | 0x20) == 'd'))
    return true;
  if (n - j >= 2 && s[j] == '\\' && (s[j + 1] == '"' || s[j + 1] == '\'')) j++; /* \"key\": JSON in a string */
  if (j < n && (s[j] == '"' || s[j] == '\'')) j++;
  while (j < n && is_space(s[j])) j++;
  return j < n && (s[j] == ':' || s[j] == '=');
}

static size_t back_over(const unsigned char *s, size_t i, bool (*in)(unsigned)) {
  while (i > 0 && in(s[i - 1])) i--;
  return i;
}

/* ---- one check per pack, at an anchor byte s[i]; *start: where the regex must begin ---- */

/* At the last '-' before "BEGIN". */
static bool check_private_key(const unsigned char *s, size_t n, size_t i, size_t *start) {
  if (i < 4 || n - i < 6 || memcmp(s + i - 4, "-----BEGIN", 10)) return false;
  *start = i - 4;
  return true;
}

static bool is_url_run_char(unsigned c) { /* what may sit between "://" and the '@' */
  return !is_space(c) && c != '/' && c != '?' && c != '#';
}

/* At an '@': the run of non-[\s/?#] bytes around it follows "://" and holds a ':' with an '@'
 * after it (user:password@). The whole run is judged at once and *resume skips the rest of it,
 * so a line of a million '@' costs one pass. */
static bool check_url(const unsigned char *s, size_t n, size_t i, size_t *start, size_t *resume) {
  size_t j = back_over(s, i, is_url_run_char), e = i;
  while (e < n && is_url_run_char(s[e])) e++;
  *resume = e;
  if (j < 3 || s[j - 1] != '/' || s[j - 2] != '/' || s[j - 3] != ':') return false;
  const unsigned char *colon = memchr(s + j, ':', e - j);
  if (!colon || !memchr(colon, '@', (size_t)(s + e - colon))) return false;
  *start = back_over(s, j - 3, is_scheme_char);
  return true;
}

static bool check_bearer(const unsigned char *s, size_t n, size_t i, size_t *start) {
  if (!word_at(s, n, i, "bearer", 6) || n - i < 7 || !is_space(s[i + 6])) return false;
  if (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '_')) return false;
  *start = i;
  return true;
}

/* At the 'y' of "eyJ". */
static bool check_jwt(const unsigned char *s, size_t n, size_t i, size_t *start) {
  if (i < 1 || n - i < 2 || s[i - 1] != 'e' || s[i + 1] != 'J' || (i > 1 && is_b64url(s[i - 2]))) return false;
  *start = i - 1;
  return true;
}

static bool check_aws_access(const unsigned char *s, size_t n, size_t i, size_t *start) {
  if (n - i < 20 || (s[i + 1] != 'K' && s[i + 1] != 'S') || s[i + 2] != 'I' || s[i + 3] != 'A') return false;
  if ((i > 0 && is_upper_alnum(s[i - 1])) || (n - i > 20 && is_upper_alnum(s[i + 20]))) return false;
  for (size_t k = 4; k < 20; k++)
    if (!is_upper_alnum(s[i + k])) return false;
  *start = i;
  return true;
}

static bool check_aws_secret(const unsigned char *s, size_t n, size_t i, size_t *start) {
  if (!word_at(s, n, i, "secret", 6)) return false;
  size_t j = i + 6;
  if (j < n && (s[j] == '_' || s[j] == '-' || s[j] == '.')) j++;
  if (word_at(s, n, j, "access", 6)) {
    j += 6;
    if (j < n && (s[j] == '_' || s[j] == '-' || s[j] == '.')) j++;
  }
  if (!word_at(s, n, j, "key", 3) || !kv_sep(s, n, j + 3)) return false;
  *start = back_over(s, i, is_key_char);
  return true;
}

/* s[i] follows a %XX escape ("%26password"): a key may begin there. */
static bool after_escape(const unsigned char *s, size_t i) {
  return i >= 3 && s[i - 3] == '%' && sw__is_hex(s[i - 2]) && sw__is_hex(s[i - 1]);
}

static bool check_password(const unsigned char *s, size_t n, size_t i, size_t *start) {
  static const struct {
    const char *w;
    size_t len;
    bool glue; /* may be glued to a word before it (newPassword); pass, pwd not (bypass=) */
  } words[] = {{"password", 8, true}, {"passwd", 6, true}, {"pass", 4, false}, {"pwd", 3, false},
               {"secret", 6, true}};
  bool glued = i > 0 && is_alnum(s[i - 1]) && !after_escape(s, i);
  for (size_t k = 0; k < sizeof words / sizeof words[0]; k++) {
    if (glued && !words[k].glue) continue;
    if (word_at(s, n, i, words[k].w, words[k].len) && kv_sep(s, n, i + words[k].len)) {
      *start = back_over(s, i, is_key_char);
      return true;
    }
  }
  return false;
}

/* At "token" or "key": the word ends the key (a separator follows), and "key" comes right after
 * (or one '_' '.' '-' after) a word of KEY_WORDS. Anything may be glued before (accessToken). */
static bool check_token_kv(const unsigned char *s, size_t n, size_t i, size_t *start) {
  static const struct {
    const char *w;
    size_t len;
  } words[] = {{"api", 3},    {"secret", 6}, {"access", 6}, {"private", 7}, {"client", 6},
               {"auth", 4},   {"app", 3},    {"master", 6}, {"signing", 7}, {"encryption", 10}};
  bool ok = false;
  if (word_at(s, n, i, "token", 5)) {
    ok = kv_sep(s, n, i + 5);
  } else if (word_at(s, n, i, "key", 3) && kv_sep(s, n, i + 3)) {
    size_t k = i > 0 && (s[i - 1] == '_' || s[i - 1] == '.' || s[i - 1] == '-') ? i - 1 : i;
    for (size_t w = 0; w < sizeof words / sizeof words[0] && !ok; w++)
      ok = k >= words[w].len && word_at(s, n, k - words[w].len, words[w].w, words[w].len);
  }
  if (ok) *start = back_over(s, i, is_key_char);
  return ok;
}

static bool is_flag_char(unsigned c) {
  return is_alnum(c) || c == '-';
}

/* At "-u"/"-U": a flag "-u " after white space or a quote, or "-user" followed by '=' or white
 * space (--user, --proxy-user); then an optional quote and "user:" with something after the ':'. */
static bool check_cli(const unsigned char *s, size_t n, size_t i, size_t *start) {
  size_t j, u;
  if (n - i < 6) return false;
  if (word_at(s, n, i + 1, "user", 4) && (s[i + 5] == '=' || is_space(s[i + 5])))
    j = i + 6;
  else if (is_space(s[i + 2]) && (i == 0 || is_space(s[i - 1]) || s[i - 1] == '"' || s[i - 1] == '\''))
    j = i + 3;
  else
    return false;
  while (j < n && is_space(s[j])) j++;
  if (j < n && (s[j] == '"' || s[j] == '\'')) j++;
  for (u = j; j < n && !is_space(s[j]) && s[j] != ':' && s[j] != '"' && s[j] != '\''; j++) continue;
  if (j == u || n - j < 2 || s[j] != ':' || is_space(s[j + 1]) || s[j + 1] == '"' || s[j + 1] == '\'') return false;
  *start = back_over(s, i, is_flag_char);
  return true;
}

/* At "basic" + white space, not inside a word, then at least 4 base64 bytes. */
static bool check_basic(const unsigned char *s, size_t n, size_t i, size_t *start) {
  if (!word_at(s, n, i, "basic", 5) || n - i < 10 || !is_space(s[i + 5])) return false;
  if (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '_')) return false;
  size_t j = i + 5, k;
  while (j < n && is_space(s[j])) j++;
  for (k = j; k < n && b64_value(s[k]) >= 0; k++) continue;
  *start = i;
  return k - j >= 4;
}

static bool check_email(const unsigned char *s, size_t n, size_t i, size_t *start) {
  if (i == 0 || !is_local_char(s[i - 1]) || n - i < 4 || !is_alnum(s[i + 1])) return false;
  for (size_t j = i + 2; j + 1 < n && (is_alnum(s[j]) || s[j] == '-' || s[j] == '.'); j++) {
    if (s[j] == '.' && is_alpha(s[j + 1])) { /* the domain has a ".<letter>" */
      *start = back_over(s, i, is_local_char);
      return true;
    }
  }
  return false;
}

/* At the first digit of a run of digits joined by single ' ' or '-': 13 digits or more from
 * the first place a match may begin (not right after a letter or digit: hex ids and digests
 * are not card numbers). */
static bool check_card(const unsigned char *s, size_t n, size_t i, size_t *start) {
  size_t digits = 0;
  bool open = i == 0 || !is_alnum(s[i - 1]);
  *start = i;
  for (size_t j = i; j < n; j++) {
    if (is_digit(s[j])) {
      digits += open;
    } else if ((s[j] == ' ' || s[j] == '-') && j + 1 < n && is_digit(s[j + 1])) {
      if (!open) *start = j + 1;
      open = true;
    } else {
      break;
    }
  }
  return digits >= 13;
}

static bool is_ipv4_char(unsigned c) {
  return is_digit(c) || c == '.';
}

/* At a '.' between digits: the run of digits and dots around it is d{1,3}.d{1,3}.d{1,3}.d{1,3}...
 * and is not glued to a letter or digit before it. Only the run's first byte can begin a match
 * (everything else follows a digit or '.'), so *resume skips the rest of the run. */
static bool check_ipv4(const unsigned char *s, size_t n, size_t i, size_t *start, size_t *resume) {
  size_t b = back_over(s, i, is_ipv4_char), j = b, e = i;
  while (e < n && is_ipv4_char(s[e])) e++;
  *resume = e;
  if (b > 0 && is_alnum(s[b - 1])) return false;
  for (int part = 0; part < 4; part++) {
    size_t d = 0;
    while (j < n && d < 4 && is_digit(s[j])) j++, d++;
    if (d == 0 || d > 3) return false;
    if (part < 3) {
      if (j >= n || s[j] != '.') return false;
      j++;
    }
  }
  *start = b;
  return true;
}

/* At a ':': the run of hex digits, ':' and '.' around it holds "::" or at least 6 ':'.
 * *resume is set past the run so its other ':' are not looked at again. */
static bool check_ipv6(const unsigned char *s, size_t n, size_t i, size_t *start, size_t *resume) {
  size_t b = i, e = i, colons = 0;
  bool dbl = false;
  while (b > 0 && (sw__is_hex(s[b - 1]) || s[b - 1] == ':' || s[b - 1] == '.')) b--;
  for (e = b; e < n && (sw__is_hex(s[e]) || s[e] == ':' || s[e] == '.'); e++) {
    if (s[e] != ':') continue;
    colons++;
    dbl |= e > b && s[e - 1] == ':';
  }
  *resume = e;
  *start = b;
  return dbl || colons >= 6; /* six: h:h:h:h:h:h:d.d.d.d */
}

/* ---- dispatch (the scan is in prefilter.c) ---- */

void sw__prefilter_init(struct sw_redactor *r) {
  static const char *const anchors[SW__NPACKS] = {
      [SW__PACK_PRIVATE_KEY] = "-",    [SW__PACK_URL_CREDENTIALS] = "@", [SW__PACK_BASIC_AUTH] = "bB",
      [SW__PACK_BEARER_TOKEN] = "bB",  [SW__PACK_JWT] = "y",             [SW__PACK_AWS_ACCESS_KEY] = "A",
      [SW__PACK_AWS_SECRET_KEY] = "sS", [SW__PACK_PASSWORD_KV] = "pPsS", [SW__PACK_TOKEN_KV] = "tTkK",
      [SW__PACK_CLI_CREDENTIALS] = "-", [SW__PACK_EMAIL] = "@",          [SW__PACK_CREDIT_CARD] = "",
      [SW__PACK_IPV6] = ":",           [SW__PACK_IPV4] = ".",
  };
  memset(r->stop, 0, sizeof r->stop);
  for (int p = 0; p < SW__NPACKS; p++)
    if (r->packs & (1u << p))
      for (const char *a = anchors[p]; *a; a++) r->stop[(unsigned char)*a] |= (uint16_t)(1u << p);
}

bool sw__pack_check(int p, const unsigned char *s, size_t n, size_t i, size_t *start, struct sw__resume *res) {
  switch (p) {
  case SW__PACK_PRIVATE_KEY: return check_private_key(s, n, i, start);
  case SW__PACK_URL_CREDENTIALS: return i >= res->url && check_url(s, n, i, start, &res->url);
  case SW__PACK_BASIC_AUTH: return check_basic(s, n, i, start);
  case SW__PACK_BEARER_TOKEN: return check_bearer(s, n, i, start);
  case SW__PACK_JWT: return check_jwt(s, n, i, start);
  case SW__PACK_AWS_ACCESS_KEY: return check_aws_access(s, n, i, start);
  case SW__PACK_AWS_SECRET_KEY: return check_aws_secret(s, n, i, start);
  case SW__PACK_PASSWORD_KV: return check_password(s, n, i, start);
  case SW__PACK_TOKEN_KV: return check_token_kv(s, n, i, start);
  case SW__PACK_CLI_CREDENTIALS: return check_cli(s, n, i, start);
  case SW__PACK_EMAIL: return check_email(s, n, i, start);
  case SW__PACK_CREDIT_CARD: return check_card(s, n, i, start);
  case SW__PACK_IPV4: return i >= res->ipv4 && check_ipv4(s, n, i, start, &res->ipv4);
  case SW__PACK_IPV6: return i >= res->ipv6 && check_ipv6(s, n, i, start, &res->ipv6);
  default: return false;
  }
}
