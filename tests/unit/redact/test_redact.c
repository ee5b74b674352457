/* test_redact.c - the redaction engine: every built-in pack (true positives with the exact output,
 * near misses that must stay), JSON key masking (mask, hash, drop), replacement templates,
 * configuration errors, counters, hostile input (invalid UTF-8, NULs, 1 MiB lines), the scratch
 * limit fallbacks, allocation failures, and the prefilter checked against a brute-force reference
 * (every pack's regex run over the whole line with pcre2_substitute).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redact/redact.h"
#include "redact/redact_int.h" /* sw_sha256, sw__pack_def, sw__callout: the reference */

/* Allocation failure injection, as in test_config.c: without a sanitizer this file replaces
 * malloc & co. to fail the Nth allocation and to count live blocks. */
#include "../alloc_inject.h"

#define S(lit) lit, sizeof(lit) - 1
#define NPACKS 14

static const char *const all_packs[NPACKS] = {"email",         "bearer_token", "jwt",         "aws_access_key",
                                              "aws_secret_key", "credit_card", "password_kv", "url_credentials",
                                              "private_key",   "ipv4",         "ipv6",        "basic_auth",
                                              "token_kv",      "cli_credentials"};

/* ---- helpers ---- */

static struct sw_redactor *make(const struct sw_redact_conf *c) {
  struct sw_redactor *r = NULL;
  char err[256] = "";
  int rc = sw_redactor_create(c, &r, err, sizeof err);
  if (rc) fail_msg("sw_redactor_create: %d %s", rc, err);
  return r;
}

static struct sw_redactor *make_packs(const char *const *packs, size_t n) {
  struct sw_redact_conf c = {.builtins = packs, .nbuiltins = n};
  return make(&c);
}

/* Redacts in[0..n) with a fresh context; returns a NUL-terminated copy (caller frees). */
static char *redact_n(const struct sw_redactor *r, const char *in, size_t n, int json, size_t *out_len) {
  struct sw_redact_ctx *ctx = sw_redact_ctx_create(r);
  assert_non_null(ctx);
  const char *out = NULL;
  size_t len = 0;
  assert_int_equal(sw_redact_line(ctx, in, n, json, &out, &len), 0);
  char *copy = malloc(len + 1);
  assert_non_null(copy);
  memcpy(copy, out, len);
  copy[len] = '\0';
  if (out_len) *out_len = len;
  sw_redact_ctx_destroy(ctx);
  return copy;
}

static char *redact_s(const struct sw_redactor *r, const char *in, int json) {
  return redact_n(r, in, strlen(in), json, NULL);
}

/* ---- the packs ---- */

struct pack_case {
  const char *pack, *in, *want; /* want NULL: the line must come out unchanged */
};

static const struct pack_case pack_cases[] = {
    /* email */
    {"email", "contact john.doe@example.com now", "contact [REDACTED:email] now"},
    {"email", "<a.b+tag@sub.example.co.uk>", "<[REDACTED:email]>"},
    {"email", "mailto:X_Y%z@Example.ORG.", "mailto:[REDACTED:email]."},
    {"email", "GET /api/users/jane@corp.example/profile", "GET /api/users/[REDACTED:email]/profile"},
    {"email", "{\"to\":\"ops@example.com\",\"cc\":\"b@c.io\"}", "{\"to\":\"[REDACTED:email]\",\"cc\":\"[REDACTED:email]\"}"},
    {"email", "/var/lib/foo@2x.png", NULL},
    {"email", "icon@2X.PNG sprite@3x.webp app@1.2.js", NULL},
    {"email", "user@localhost", NULL},
    {"email", "lodash@4.17.21 and @types/node@18.0.0", NULL},
    {"email", "image nginx@sha256:0123abcd", NULL},
    {"email", "@example.com foo@.com foo@-x.com a@b.c", NULL},
    {"email", "john%40example.com", NULL},
    /* a '-' after the TLD ends the address (a pod or host name glued on): the address is masked */
    {"email", "contact user@example.com-pod now", "contact [REDACTED:email]-pod now"},
    {"email", "a@host.co-op.org x", "[REDACTED:email] x"},
    /* bearer_token */
    {"bearer_token", "Authorization: Bearer abc.DEF-123_~+/xyz== next",
     "Authorization: Bearer [REDACTED:bearer_token] next"},
    {"bearer_token", "authorization: bearer s3cr3tT0k3n", "authorization: bearer [REDACTED:bearer_token]"},
    {"bearer_token", "BEARER\tAAAAAAAAAAAAAAAAAAAAAAAA", "BEARER\t[REDACTED:bearer_token]"},
    {"bearer_token", "token: Bearer abcdefghijklmnopqrstuvwxyz", "token: Bearer [REDACTED:bearer_token]"},
    {"bearer_token", "got bearer x9", "got bearer [REDACTED:bearer_token]"},
    {"bearer_token", "the bearer of bad news", NULL},
    {"bearer_token", "Bearer Token expired; bearer authentication failed", NULL},
    {"bearer_token", "bearer_token=abc123 cupbearer abc123 bearer", NULL},
    /* jwt */
    {"jwt",
     "id_token=eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U&x=1",
     "id_token=[REDACTED:jwt]&x=1"},
    {"jwt", "unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. done", "unsigned [REDACTED:jwt] done"},
    {"jwt", "header only eyJhbGciOiJIUzI1NiJ9 here", NULL},
    {"jwt", "keyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig eyJa.bc.d", NULL},
    /* aws_access_key */
    {"aws_access_key", "key AKIAIOSFODNN7EXAMPLE end", "key [REDACTED:aws_access_key] end"},
    {"aws_access_key", "{\"AccessKeyId\":\"ASIAY34FZKBOKMUTVV7A\"}", "{\"AccessKeyId\":\"[REDACTED:aws_access_key]\"}"},
    {"aws_access_key", "AKIAIOSFODNN7EXAMPLE1 XAKIAIOSFODNN7EXAMPLE AKIAIOSFODNN7EXAMPLe AKIA1234", NULL},
    /* aws_secret_key */
    {"aws_secret_key", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "aws_secret_access_key=[REDACTED:aws_secret_key]"},
    {"aws_secret_key", "AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'",
     "AWS_SECRET_ACCESS_KEY: '[REDACTED:aws_secret_key]'"},
    {"aws_secret_key", "{\"SecretAccessKey\": \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"}",
     "{\"SecretAccessKey\": \"[REDACTED:aws_secret_key]\"}"},
    {"aws_secret_key", "secret-key = wJalrXUtnFEMI+K7MDENG/bPxRfiCYEXAMPLEKEY;",
     "secret-key = [REDACTED:aws_secret_key];"},
    {"aws_secret_key", "value wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL},
    {"aws_secret_key", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYX", NULL},
    {"aws_secret_key", "aws_secret_access_key_id=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL},
    /* credit_card */
    {"credit_card", "card 4111111111111111 ok", "card [REDACTED:credit_card] ok"},
    {"credit_card", "4111 1111 1111 1111", "[REDACTED:credit_card]"},
    {"credit_card", "pan=5555-5555-5555-4444;", "pan=[REDACTED:credit_card];"},
    {"credit_card", "amex 378282246310005, jcb 3530111333300000", "amex [REDACTED:credit_card], jcb [REDACTED:credit_card]"},
    {"credit_card", "disc 6011111111111117 mc2 2223003122003222 visa13 4222222222222",
     "disc [REDACTED:credit_card] mc2 [REDACTED:credit_card] visa13 [REDACTED:credit_card]"},
    {"credit_card", "diners 30569309025904 36227206271667", "diners [REDACTED:credit_card] [REDACTED:credit_card]"},
    {"credit_card", "4111111111111111 12/26", "[REDACTED:credit_card] 12/26"},
    {"credit_card", "x_4111111111111111 order-4111111111111111", "x_[REDACTED:credit_card] order-[REDACTED:credit_card]"},
    {"credit_card", "4111111111111112 (bad check digit)", NULL},
    {"credit_card", "ts 20261123153352123 and 20261123153352127", NULL}, /* the second passes Luhn */
    {"credit_card", "order 1234567812345670 ref 9999999999999995 ms 1700000000004", NULL},
    {"credit_card", "uuid 550e8400-e29b-41d4-a716-446655440000", NULL},
    {"credit_card", "trace c5a2c9dd2169b94111111111111111 abc4111111111111111def", NULL},
    {"credit_card", "41111111111111111111 is 20 digits", NULL},
    {"credit_card", "phone +1 415 555 2671, 2026-11-23 15:33:52", NULL},
    /* password_kv */
    {"password_kv", "password=hunter2 user=bob", "password=[REDACTED:password_kv] user=bob"},
    {"password_kv", "pwd: s3cret", "pwd: [REDACTED:password_kv]"},
    {"password_kv", "passwd='two words'", "passwd='[REDACTED:password_kv]'"},
    {"password_kv", "{\"password\":\"hun\\\"ter2\",\"user\":\"bob\"}",
     "{\"password\":\"[REDACTED:password_kv]\",\"user\":\"bob\"}"},
    {"password_kv", "GET /login?user=bob&pass=x1&next=2", "GET /login?user=bob&pass=[REDACTED:password_kv]&next=2"},
    {"password_kv", "SECRET = abc;", "SECRET = [REDACTED:password_kv];"},
    {"password_kv", "db_password=zz client.secret=yy x-secret: ww",
     "db_password=[REDACTED:password_kv] client.secret=[REDACTED:password_kv] x-secret: [REDACTED:password_kv]"},
    {"password_kv", "password=\"unterminated", "password=\"[REDACTED:password_kv]"},
    {"password_kv", "{\"pwd\":12345}", "{\"pwd\":[REDACTED:password_kv]}"},
    {"password_kv", "password_policy=strict password_length=12 passwords=3", NULL},
    {"password_kv", "bypass=true secretary: Jane, password reset requested, pass through", NULL},
    {"password_kv", "{\"password\":\"***\",\"secret\":\"sha256:0123456789abcdef\"} password=[REDACTED]", NULL},
    {"password_kv", "password= ", NULL},
    /* password, passwd and secret glued to a word: camelCase JSON keys, environment variables */
    {"password_kv", "{\"newPassword\":\"hunter2\",\"clientSecret\":\"abc\"} adminPassword: x1",
     "{\"newPassword\":\"[REDACTED:password_kv]\",\"clientSecret\":\"[REDACTED:password_kv]\"} adminPassword: [REDACTED:password_kv]"},
    {"password_kv", "PGPASSWORD=hunter2 psql; MYSQLPASSWD=zz x_newPassword=yy",
     "PGPASSWORD=[REDACTED:password_kv] psql; MYSQLPASSWD=[REDACTED:password_kv] x_newPassword=[REDACTED:password_kv]"},
    /* JSON inside a JSON string: the value up to the next \" (the line stays valid JSON) */
    {"password_kv", "{\"msg\":\"body={\\\"password\\\":\\\"hun\\\\ter2\\\", \\\"x\\\": 1}\"}",
     "{\"msg\":\"body={\\\"password\\\":\\\"[REDACTED:password_kv]\\\", \\\"x\\\": 1}\"}"},
    {"password_kv", "{\"m\":\"{\\\"password\\\":\\\"\\\",\\\"secret\\\":\\\"***\\\"}\"}", NULL},
    /* not glued: pass and pwd (bypass, compass, surpass); not a password: true, false, null */
    {"password_kv", "bypass=1 compass: north userpass=x isSecret=true password: null hasPassword=FALSE", NULL},
    /* password_kv: URL-encoded separators (a form body or query logged encoded), CLI flags */
    {"password_kv", "body=user%3Dbob%26password%3Dhunter2%26next%3D%2F",
     "body=user%3Dbob%26password%3D[REDACTED:password_kv]%26next%3D%2F"},
    {"password_kv", "q=passwd%3ds3cr3t&x=1 PWD%3A%22a%22 db_pass%3Dzz",
     "q=passwd%3d[REDACTED:password_kv]&x=1 PWD%3A[REDACTED:password_kv] db_pass%3D[REDACTED:password_kv]"},
    {"password_kv", "mysqldump --password=hunter2 --db-password='x y' -pass=z",
     "mysqldump --password=[REDACTED:password_kv] --db-password='[REDACTED:password_kv]' -pass=[REDACTED:password_kv]"},
    {"password_kv", "password%3D[REDACTED:password_kv] password%20reset bypass%3Dtrue password%3D --password-file=/run/p", NULL},
    /* basic_auth */
    {"basic_auth", "Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic [REDACTED:basic_auth]"},
    {"basic_auth", "> authorization: basic YWxhZGRpbjpvcGVuc2VzYW1l\r\n", "> authorization: basic [REDACTED:basic_auth]\r\n"},
    {"basic_auth", "{\"Authorization\":\"Basic Ym9iOmh1bnRlcjI=\"} BASIC\tOmFwaWtleQ",
     "{\"Authorization\":\"Basic [REDACTED:basic_auth]\"} BASIC\t[REDACTED:basic_auth]"},
    {"basic_auth", "Basic auth failed for user bob; basic setup done; Basic configuration loaded", NULL},
    {"basic_auth", "Basic dGVzdA== Basic YWJj Basic dXNlcjpwYXNz_x BasicdXNlcjpwYXNz xBasic dXNlcjpwYXNz", NULL},
    {"basic_auth", "WWW-Authenticate: Basic realm=\"api\", charset=\"UTF-8\"", NULL},
    /* token_kv */
    {"token_kv", "token=abc123 user=bob", "token=[REDACTED:token_kv] user=bob"},
    {"token_kv", "{\"m\":\"{\\\"api_key\\\":\\\"abc\\\",\\\"accessToken\\\": \\\"t1\\\"}\"}",
     "{\"m\":\"{\\\"api_key\\\":\\\"[REDACTED:token_kv]\\\",\\\"accessToken\\\": \\\"[REDACTED:token_kv]\\\"}\"}"},
    {"token_kv", "{\"access_token\": \"ya29.a0Af\", \"expires_in\": 3599}",
     "{\"access_token\": \"[REDACTED:token_kv]\", \"expires_in\": 3599}"},
    {"token_kv", "api_key=k1 apikey: k2 X-Api-Key: k3 secret_key='k4' stripeSecretKey=k5",
     "api_key=[REDACTED:token_kv] apikey: [REDACTED:token_kv] X-Api-Key: [REDACTED:token_kv] "
     "secret_key='[REDACTED:token_kv]' stripeSecretKey=[REDACTED:token_kv]"},
    {"token_kv", "GET /cb?code=1&refresh_token=r1&state=2 accessToken:t2",
     "GET /cb?code=1&refresh_token=[REDACTED:token_kv]&state=2 accessToken:[REDACTED:token_kv]"},
    {"token_kv", "u=/x%3Fapi_key%3Dabc%26v%3D1", "u=/x%3Fapi_key%3D[REDACTED:token_kv]%26v%3D1"},
    {"token_kv", "tokenizer=bert token_count=5 max_tokens=512 token_type=Bearer tokens: 3", NULL},
    {"token_kv", "key=value keyboard=us monkey=3 primary_key=id sort_key: ts public_key=ssh-ed25519", NULL},
    {"token_kv", "token=true api_key: null {\"token\":false} token=[REDACTED:jwt] token: \"***\"", NULL},
    /* cli_credentials */
    {"cli_credentials", "exec: curl -u bob:hunter2 https://api", "exec: curl -u bob:[REDACTED:cli_credentials] https://api"},
    {"cli_credentials", "curl --user 'admin:p@ss:w0rd' -U proxy:pw --proxy-user=p2:x2",
     "curl --user 'admin:[REDACTED:cli_credentials]' -U proxy:[REDACTED:cli_credentials] "
     "--proxy-user=p2:[REDACTED:cli_credentials]"},
    {"cli_credentials", "[\"curl\",\"--user=ci:tok3n\"]", "[\"curl\",\"--user=ci:[REDACTED:cli_credentials]\"]"},
    {"cli_credentials", "sort -u file; ulimit -u 100; ps -u root; git push -u origin main; python -u app.py", NULL},
    {"cli_credentials", "docker run -u 1000:1000 img; pip install -U pkg; useradd -u 1001 bob; x-u a:b; --users a:b", NULL},
    /* url_credentials */
    {"url_credentials", "postgres://bob:hunter2@db.example.com:5432/app",
     "postgres://bob:[REDACTED:url_credentials]@db.example.com:5432/app"},
    {"url_credentials", "redis://:s3cret@cache:6379", "redis://:[REDACTED:url_credentials]@cache:6379"},
    {"url_credentials", "amqp://u:p@ss@rabbit/vh", "amqp://u:[REDACTED:url_credentials]@rabbit/vh"},
    {"url_credentials", "{\"dsn\":\"mysql://root:pw@localhost/db\",\"x\":\"a@b\"}",
     "{\"dsn\":\"mysql://root:[REDACTED:url_credentials]@localhost/db\",\"x\":\"a@b\"}"},
    {"url_credentials", "https://user@example.com/x http://host:8080/p?email=a@b.com https://e.com:443/@u", NULL},
    /* private_key */
    {"private_key",
     "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc==\n-----END RSA PRIVATE KEY----- loaded",
     "key: [REDACTED:private_key] loaded"},
    {"private_key", "{\"k\":\"-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n\"}",
     "{\"k\":\"[REDACTED:private_key]\\n\"}"},
    {"private_key", "oops -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
     "oops [REDACTED:private_key]"},
    {"private_key",
     "-----BEGIN ENCRYPTED PRIVATE KEY-----x-----END ENCRYPTED PRIVATE KEY----- and "
     "-----BEGIN PGP PRIVATE KEY BLOCK-----\ny\n-----END PGP PRIVATE KEY BLOCK-----",
     "[REDACTED:private_key] and [REDACTED:private_key]"},
    {"private_key", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE----- -----BEGIN PUBLIC KEY-----", NULL},
    /* ipv4 */
    {"ipv4", "client 10.0.0.1 connected", "client [REDACTED:ipv4] connected"},
    {"ipv4", "ip=192.168.1.254, [255.255.255.255]:80 0.0.0.0", "ip=[REDACTED:ipv4], [[REDACTED:ipv4]]:80 [REDACTED:ipv4]"},
    {"ipv4", "v1.2.3.4 1.2.3.4.5 999.1.1.1 10.0.0 010.1.1.1 1.2.3.256 abc1.2.3.4", NULL},
    {"ipv4", "OID 1.3.6.1.4.1.2620 version 2.14.5", NULL},
    /* ipv6 */
    {"ipv6", "peer 2001:db8::1 up", "peer [REDACTED:ipv6] up"},
    {"ipv6", "[::1]:8080 fe80::1%eth0", "[[REDACTED:ipv6]]:8080 [REDACTED:ipv6]%eth0"},
    {"ipv6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[REDACTED:ipv6]"},
    {"ipv6", "mapped ::ffff:192.0.2.128 ok", "mapped [REDACTED:ipv6] ok"},
    /* regression (fuzz): a full address before a "::" one was skipped */
    {"ipv6", "a 2001:db8:0:0:1:2:3:4 b ::1", "a [REDACTED:ipv6] b [REDACTED:ipv6]"},
    {"ipv6", "x 0:0:0:0:0:ffff:192.0.2.1 y", "x [REDACTED:ipv6] y"}, /* six colons, no "::" */
    {"ipv6", "12:34:56 2026-11-23T15:33:52Z 00:1a:2b:3c:4d:5e std::string Foo::Bar::baz a:b:c", NULL},
};

static void run_pack_case(const struct pack_case *pc) {
  const char *packs[1] = {pc->pack};
  struct sw_redactor *r = make_packs(packs, 1);
  struct sw_redact_ctx *ctx = sw_redact_ctx_create(r);
  assert_non_null(ctx);
  const char *out;
  size_t len;
  assert_int_equal(sw_redact_line(ctx, pc->in, strlen(pc->in), 1, &out, &len), 0);
  if (!pc->want) {
    if (out != pc->in) fail_msg("[%s] %s\n  was changed into %.*s", pc->pack, pc->in, (int)len, out);
  } else if (len != strlen(pc->want) || memcmp(out, pc->want, len)) {
    fail_msg("[%s] %s\n  got  %.*s\n  want %s", pc->pack, pc->in, (int)len, out, pc->want);
  }
  sw_redact_ctx_destroy(ctx);
  sw_redactor_destroy(r);
}

static void test_packs(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof pack_cases / sizeof pack_cases[0]; i++) run_pack_case(&pack_cases[i]);
  for (size_t i = 0; sw_redact_pack_name(i); i++) { /* every pack has cases */
    size_t hits = 0, misses = 0;
    for (size_t k = 0; k < sizeof pack_cases / sizeof pack_cases[0]; k++) {
      if (strcmp(pack_cases[k].pack, sw_redact_pack_name(i))) continue;
      hits += pack_cases[k].want != NULL;
      misses += pack_cases[k].want == NULL;
    }
    if (!hits || !misses) fail_msg("pack %s lacks positive or near-miss cases", sw_redact_pack_name(i));
  }
}

/* With every pack on: how packs work together, and lines no pack may touch. */
static void test_all_packs(void **state) {
  (void)state;
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "Authorization: Bearer [REDACTED:bearer_token]"},
      {"postgres://bob:p4ss@db.example.com/x", "postgres://bob:[REDACTED:url_credentials]@db.example.com/x"},
      {"password=john@example.com", "password=[REDACTED:password_kv]"},
      {"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY key=AKIAIOSFODNN7EXAMPLE",
       "aws_secret_access_key=[REDACTED:aws_secret_key] key=[REDACTED:aws_access_key]"},
      {"from 10.1.2.3 and ::ffff:10.1.2.3 user a@b.example card 4111-1111-1111-1111",
       "from [REDACTED:ipv4] and [REDACTED:ipv6] user [REDACTED:email] card [REDACTED:credit_card]"},
      {"2026-11-23T15:33:52.123456789Z INFO request id 550e8400-e29b-41d4-a716-446655440000 took 12 ms", NULL},
      {"{\"ts\":\"2026-11-23T15:33:52Z\",\"msg\":\"test suite passed\",\"order\":20261123153352127,\"v\":\"v2.1.0.3\"}",
       NULL},
      {"pulled registry.local/web:1.25.7@sha256:a7d5ea78af77f3e85c6dda0f597045c9abed5904473779315014e865fa9023c7", NULL},
      {"password_policy=strict; session renewed; bypassed cache; secretary=Ann; at std::vector<int>::at", NULL},
      {"curl -v -u ci:s3cret -H 'Authorization: Basic Y2k6czNjcmV0' 'https://h/x?api_key=k&password%3Dp'",
       "curl -v -u ci:[REDACTED:cli_credentials] -H 'Authorization: Basic [REDACTED:basic_auth]' "
       "'https://h/x?api_key=[REDACTED:token_kv]&password%3D[REDACTED:password_kv]'"},
      {"id_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig secret_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
       "id_token=[REDACTED:jwt] secret_key=[REDACTED:aws_secret_key]"},
      {"tokenizer=bert token_count=5 keyboard=us monkey=3 sort -u f; ulimit -u 100; Basic auth failed", NULL},
  };
  struct sw_redactor *r = make_packs(all_packs, NPACKS);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *got = redact_s(r, cases[i].in, 1);
    const char *want = cases[i].want ? cases[i].want : cases[i].in;
    if (strcmp(got, want)) fail_msg("%s\n  got  %s\n  want %s", cases[i].in, got, want);
    free(got);
  }
  sw_redactor_destroy(r);
}

/* ---- JSON key masking ---- */

static struct sw_redactor *make_keys(int action, const char *salt) {
  static const char *const keys[] = {"password", "Token", "SECRET"};
  struct sw_redact_conf c = {.keys = keys, .nkeys = 3, .action = action, .salt = salt,
                             .salt_len = salt ? strlen(salt) : 0};
  return make(&c);
}

static void expect(const struct sw_redactor *r, const char *in, int json, const char *want) {
  char *got = redact_s(r, in, json);
  if (strcmp(got, want ? want : in)) fail_msg("%s\n  got  %s\n  want %s", in, got, want ? want : in);
  free(got);
}

static void test_json_mask(void **state) {
  (void)state;
  struct sw_redactor *r = make_keys(SW_REDACT_MASK, NULL);
  expect(r,
         "{\"user\":\"bob\",\"Password\":\"x\",\"nested\":{\"deeper\":{\"TOKEN\":123}},"
         "\"list\":[{\"password\":null},{\"other\":[{\"secret\":{\"a\":[1,{\"token\":2}]}}]}]}",
         1,
         "{\"user\":\"bob\",\"Password\":\"***\",\"nested\":{\"deeper\":{\"TOKEN\":\"***\"}},"
         "\"list\":[{\"password\":\"***\"},{\"other\":[{\"secret\":\"***\"}]}]}");
  expect(r, "{\"pass\\u0077ord\":\"x\",\"t\\u006Fken\":true}", 1, "{\"pass\\u0077ord\":\"***\",\"t\\u006Fken\":\"***\"}");
  expect(r, "  { \"password\" : \"x\" , \"a\" : [ ] }\t", 1, "  { \"password\" : \"***\" , \"a\" : [ ] }\t");
  expect(r, "{\"password\":\"\",\"token\":-1.5e3,\"secret\":[]}", 1,
         "{\"password\":\"***\",\"token\":\"***\",\"secret\":\"***\"}");
  /* not a JSON object, or not JSON at all: untouched (no regex rules here) */
  expect(r, "[{\"password\":\"x\"}]", 1, NULL);
  expect(r, "\"password\"", 1, NULL);
  expect(r, "{\"password\":\"x\"", 1, NULL);
  expect(r, "{\"password\":\"x\"} tail", 1, NULL);
  expect(r, "{\"password\":\"x\",}", 1, NULL);
  expect(r, "{\"password\":01}", 1, NULL);
  expect(r, "{\"password\":\"a\x01\"}", 1, NULL);
  expect(r, "{\"password\":\"\\x\"}", 1, NULL);
  expect(r, "{'password':'x'}", 1, NULL);
  expect(r, "{\"password\":\"x\"}", 0, NULL); /* try_json off */
  expect(r, "{\"passwords\":\"x\",\"my_token\":1}", 1, NULL);
  /* depth: SW_REDACT_JSON_MAX_DEPTH levels are masked, one more is not JSON to us */
  static char deep[8 * SW_REDACT_JSON_MAX_DEPTH], want[8 * SW_REDACT_JSON_MAX_DEPTH];
  for (size_t extra = 0; extra < 2; extra++) {
    size_t levels = SW_REDACT_JSON_MAX_DEPTH - 1 + extra, n = 0, w = 0;
    for (size_t i = 0; i < levels; i++) {
      n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"a\":");
      w += (size_t)snprintf(want + w, sizeof want - w, "{\"a\":");
    }
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"token\":1}");
    w += (size_t)snprintf(want + w, sizeof want - w, "{\"token\":\"***\"}");
    memset(deep + n, '}', levels);
    memset(want + w, '}', levels);
    deep[n + levels] = want[w + levels] = '\0';
    expect(r, deep, 1, extra ? NULL : want);
  }
  sw_redactor_destroy(r);
}

static void token_of(const char *salt, const char *value, size_t n, char out[26]) {
  struct sw_sha256 h;
  uint8_t d[32];
  sw_sha256_init(&h);
  sw_sha256_update(&h, salt, strlen(salt));
  sw_sha256_update(&h, value, n);
  sw_sha256_final(&h, d);
  int k = snprintf(out, 26, "\"sha256:");
  for (int i = 0; i < 8; i++) k += snprintf(out + k, 26 - (size_t)k, "%02x", d[i]);
  snprintf(out + k, 26 - (size_t)k, "\"");
}

static void test_json_hash(void **state) {
  (void)state;
  struct sw_redactor *r = make_keys(SW_REDACT_HASH, "pepper"), *r2 = make_keys(SW_REDACT_HASH, "salt2");
  /* the values below were computed with python3's hashlib */
  expect(r, "{\"password\":\"hunter2\"}", 1, "{\"password\":\"sha256:ca458f67a1e64e60\"}");
  expect(r2, "{\"password\":\"hunter2\"}", 1, "{\"password\":\"sha256:f70cd5fcff348f88\"}");
  expect(r, "{\"token\":1234}", 1, "{\"token\":\"sha256:a93de70907c26039\"}");
  expect(r, "{\"secret\":{\"a\": [1, 2]}}", 1, "{\"secret\":\"sha256:b69130212cc6b87f\"}");
  /* strings are hashed decoded: equal values in any spelling give one token */
  expect(r, "{\"password\":\"h\\u00e9\\/\\\"x\"}", 1, "{\"password\":\"sha256:4d0a8d93ef845600\"}");
  expect(r, "{\"password\":\"h\xc3\xa9/\\\"x\"}", 1, "{\"password\":\"sha256:4d0a8d93ef845600\"}");
  expect(r, "{\"password\":\"\\ud83d\\ude00\"}", 1, "{\"password\":\"sha256:f1c1bfbc5481cdde\"}");
  /* determinism across calls and contexts, and the token equals our own SHA-256 */
  char tok[26], line[64];
  token_of("pepper", "hunter2", 7, tok);
  snprintf(line, sizeof line, "{\"password\":%s}", tok);
  expect(r, "{\"password\":\"hunter2\"}", 1, line);
  char *a = redact_s(r, "{\"a\":[{\"Token\":\"v\"},{\"token\":\"v\"}]}", 1);
  const char *t1 = strstr(a, "sha256:"), *t2 = t1 ? strstr(t1 + 1, "sha256:") : NULL;
  assert_non_null(t2);
  assert_memory_equal(t1, t2, 23);
  free(a);
  sw_redactor_destroy(r);
  sw_redactor_destroy(r2);
}

static bool masked_key(const char *k) {
  return !strcasecmp(k, "password") || !strcasecmp(k, "token") || !strcasecmp(k, "secret");
}

/* What drop must leave: the tree without the members of masked keys, at any depth. */
static void drop_keys(cJSON *it) {
  for (cJSON *c = it ? it->child : NULL, *next; c; c = next) {
    next = c->next;
    if (cJSON_IsObject(it) && masked_key(c->string)) cJSON_Delete(cJSON_DetachItemViaPointer(it, c));
    else drop_keys(c);
  }
}

static void test_json_drop(void **state) {
  (void)state;
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"{\"password\":\"x\"}", "{}"},
      {"{\"a\":1,\"password\":\"x\"}", "{\"a\":1}"},
      {"{\"password\":\"x\",\"a\":1}", "{\"a\":1}"},
      {"{\"password\":1,\"secret\":2,\"a\":3}", "{\"a\":3}"},
      {"{\"password\":1,\"secret\":2}", "{}"},
      {"{\"a\":1,\"password\":2,\"b\":3,\"secret\":4}", "{\"a\":1,\"b\":3}"},
      {"{\"a\":1,\"password\":2,\"secret\":3,\"b\":4}", "{\"a\":1,\"b\":4}"},
      {"{ \"password\" : 1 , \"a\" : 2 }", "{ \"a\" : 2 }"},
      {"{\"a\":1 , \"password\":2 }", "{\"a\":1  }"},
      {"{\"x\":{\"password\":1},\"y\":[{\"secret\":{\"token\":2},\"z\":3}]}", "{\"x\":{},\"y\":[{\"z\":3}]}"},
  };
  struct sw_redactor *r = make_keys(SW_REDACT_DROP, NULL);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    expect(r, cases[i].in, 1, cases[i].want);
    cJSON *j = cJSON_Parse(cases[i].want);
    assert_non_null(j);
    cJSON_Delete(j);
  }
  /* random objects, compact and pretty: the result is exactly the input without the members
   * of masked keys (compared as parsed trees) */
  static const char *const names[] = {"password", "a", "Token", "b", "SECRET", "c"};
  uint64_t rng = 42;
  for (int round = 0; round < 400; round++) {
    cJSON *root = cJSON_CreateObject(), *stack[4] = {root};
    int depth = 1;
    for (int m = 0; m < 12; m++) {
      rng = rng * 6364136223846793005u + 1442695040888963407u;
      unsigned x = (unsigned)(rng >> 33);
      cJSON *parent = stack[x % (unsigned)depth], *v;
      if (x / 7 % 5 == 0 && depth < 4) v = stack[depth++] = cJSON_CreateObject();
      else if (x / 7 % 5 == 1 && depth < 4) v = stack[depth++] = cJSON_CreateArray();
      else if (x / 7 % 5 == 2) v = cJSON_CreateString("v\"\\x");
      else v = cJSON_CreateNumber((double)(x % 100));
      if (cJSON_IsArray(parent)) cJSON_AddItemToArray(parent, v);
      else cJSON_AddItemToObject(parent, names[x / 3 % 6], v);
    }
    cJSON *expected = cJSON_Duplicate(root, 1); /* duplicate keys too: compared as text below */
    drop_keys(expected);
    for (int pretty = 0; pretty < 2; pretty++) {
      char *text = pretty ? cJSON_Print(root) : cJSON_PrintUnformatted(root);
      char *got = redact_s(r, text, 1);
      cJSON *back = cJSON_Parse(got);
      char *have = back ? cJSON_PrintUnformatted(back) : NULL, *want = cJSON_PrintUnformatted(expected);
      if (!have || strcmp(have, want)) fail_msg("drop turned %s\n  into %s", text, got);
      free(have);
      free(want);
      cJSON_Delete(back);
      free(got);
      free(text);
    }
    cJSON_Delete(expected);
    cJSON_Delete(root);
  }
  sw_redactor_destroy(r);
}

/* ---- user rules: templates, counters, configuration errors ---- */

static void test_replacements(void **state) {
  (void)state;
  static const struct {
    const char *pattern, *replace, *in, *want;
  } cases[] = {
      {"(\\w+)@(?<dom>\\w+)\\.com", "$2/${1}/${dom}/$$/$0", "x bob@corp.com y", "x corp/bob/corp/$/bob@corp.com y"},
      {"a(b)?c", "[$1]", "ac abc", "[] [b]"},
      {"(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)", "${10}$9$1", "abcdefghij", "jia"},
      {"(?|(x)|(y))", "<$1>", "xyz", "<x><y>z"},
      {"(?J)(?<n>a)|(?<n>b)", "${n}!", "ab", "a!!"},
      {"x*", "-", "abc", NULL}, /* empty matches are ignored */
      {"x*", "-", "axxb", "a-b"},
      {"user=\\K\\w+", "***", "user=bob user=al", "user=*** user=***"},
      {"\\d", "", "a1b22c", "abc"},
      {"^", "X", "abc", NULL},
      {"(?m)^\\s+", "", "a\n  b", "a\nb"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct sw_redact_rule_conf rule = {"r", cases[i].pattern, cases[i].replace};
    struct sw_redact_conf c = {.rules = &rule, .nrules = 1};
    struct sw_redactor *r = make(&c);
    expect(r, cases[i].in, 0, cases[i].want);
    sw_redactor_destroy(r);
  }
  struct sw_redact_rule_conf nul = {"nul", "\\x00", "<0>"};
  struct sw_redact_conf c = {.rules = &nul, .nrules = 1};
  struct sw_redactor *r = make(&c);
  size_t n;
  char *got = redact_n(r, S("a\0b\0"), 0, &n);
  assert_int_equal(n, 8);
  assert_memory_equal(got, "a<0>b<0>", 8);
  free(got);
  sw_redactor_destroy(r);
}

static void test_create_errors(void **state) {
  (void)state;
  static const char *const bad_pack[] = {"email", "emial"}, *const twice[] = {"jwt", "ipv4", "jwt"};
  static const char *const far[] = {"frobnicator"}, *const empty_key[] = {"a", ""};
  static const struct sw_redact_rule_conf paren[] = {{"ok", "x", NULL}, {"a", "x", NULL}, {"b", "ab(c", NULL}};
  static const struct sw_redact_rule_conf noname[] = {{"", "x", NULL}}, nopat[] = {{"a", NULL, NULL}};
  static const struct sw_redact_rule_conf dup[] = {{"a", "x", NULL}, {"a", "y", NULL}};
  static const struct sw_redact_rule_conf clash[] = {{"email", "x", NULL}}, fields[] = {{"fields", "x", NULL}};
  static const struct sw_redact_rule_conf g3[] = {{"a", "(x)(y)", "$3"}}, gname[] = {{"a", "(?<u>x)", "${v}"}};
  static const struct sw_redact_rule_conf dollar[] = {{"a", "x", "US$ 5"}}, brace[] = {{"a", "x", "${}"}};
  char longkey[SW_REDACT_MAX_KEY + 2];
  memset(longkey, 'k', sizeof longkey - 1);
  longkey[sizeof longkey - 1] = '\0';
  const char *long_keys[] = {longkey};
  const struct {
    struct sw_redact_conf conf;
    const char *want;
  } cases[] = {
      {{.builtins = bad_pack, .nbuiltins = 2}, "builtin[1]: unknown pack \"emial\" (did you mean \"email\"?)"},
      {{.builtins = far, .nbuiltins = 1}, "builtin[0]: unknown pack \"frobnicator\""},
      {{.builtins = twice, .nbuiltins = 3}, "builtin[2]: pack \"jwt\" is listed twice"},
      {{.rules = paren, .nrules = 3}, "rules[2].pattern: bad pattern at offset 4: missing closing parenthesis"},
      {{.rules = noname, .nrules = 1}, "rules[0].name: required"},
      {{.rules = nopat, .nrules = 1}, "rules[0].pattern: required"},
      {{.rules = dup, .nrules = 2}, "rules[1].name: duplicate rule name \"a\""},
      {{.builtins = bad_pack, .nbuiltins = 1, .rules = clash, .nrules = 1}, "rules[0].name: duplicate rule name \"email\""},
      {{.keys = far, .nkeys = 1, .rules = fields, .nrules = 1}, "rules[0].name: duplicate rule name \"fields\""},
      {{.rules = g3, .nrules = 1}, "rules[0].replace: group $3 does not exist (the pattern has 2)"},
      {{.rules = gname, .nrules = 1}, "rules[0].replace: unknown group name \"v\""},
      {{.rules = dollar, .nrules = 1},
       "rules[0].replace: \"$\" at offset 2 must be followed by a digit, {name} or $ (write $$ for a $)"},
      {{.rules = brace, .nrules = 1}, "rules[0].replace: bad group reference \"${}\""},
      {{.keys = empty_key, .nkeys = 2}, "keys[1]: must not be empty"},
      {{.keys = long_keys, .nkeys = 1}, "keys[0]: longer than 256 bytes"},
      {{.keys = far, .nkeys = 1, .action = SW_REDACT_HASH}, "salt: required when action is hash"},
      {{.action = 7}, "action: must be mask, hash or drop"},
      {{.scratch_max = 100}, "scratch_max: must be at least 4096"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct sw_redactor *r = (struct sw_redactor *)1;
    char err[256] = "";
    assert_int_equal(sw_redactor_create(&cases[i].conf, &r, err, sizeof err), SW_ECONFIG);
    assert_null(r);
    if (strcmp(err, cases[i].want)) fail_msg("case %zu:\n  got  %s\n  want %s", i, err, cases[i].want);
  }
  struct sw_redactor *r = NULL; /* err may be omitted */
  assert_int_equal(sw_redactor_create(&cases[0].conf, &r, NULL, 0), SW_ECONFIG);
}

static void test_counts(void **state) {
  (void)state;
  static const char *const packs[] = {"ipv4", "email"}, *const keys[] = {"token"};
  static const struct sw_redact_rule_conf rules[] = {{"ticket", "T-\\d+", NULL}, {"never", "zzz", NULL}};
  struct sw_redact_conf c = {.builtins = packs, .nbuiltins = 2, .rules = rules, .nrules = 2, .keys = keys, .nkeys = 1};
  struct sw_redactor *r = make(&c);
  static const char *const names[] = {"fields", "email", "ipv4", "ticket", "never"};
  assert_int_equal(sw_redactor_nrules(r), 5);
  for (size_t i = 0; i < 5; i++) assert_string_equal(sw_redactor_rule_name(r, i), names[i]);
  assert_null(sw_redactor_rule_name(r, 5));
  assert_string_equal(sw_redact_pack_name(0), "private_key");
  assert_null(sw_redact_pack_name(NPACKS));
  struct sw_redact_ctx *ctx = sw_redact_ctx_create(r);
  const char *lines[] = {"{\"token\":1,\"a\":{\"token\":2},\"m\":\"a@b.example 1.2.3.4 T-1 T-2\"}",
                         "no secret here", "T-3 x@y.example"};
  for (size_t i = 0; i < 3; i++) {
    const char *out;
    size_t n;
    assert_int_equal(sw_redact_line(ctx, lines[i], strlen(lines[i]), 1, &out, &n), 0);
    if (i == 1) assert_ptr_equal(out, lines[1]); /* zero copy */
  }
  const uint64_t *cnt = sw_redact_ctx_counts(ctx);
  const uint64_t want[] = {2, 2, 1, 3, 0};
  for (size_t i = 0; i < 5; i++)
    if (cnt[i] != want[i])
      fail_msg("%s: %llu, want %llu", names[i], (unsigned long long)cnt[i], (unsigned long long)want[i]);
  assert_int_equal(sw_redact_ctx_fallbacks(ctx), 0);
  sw_redact_ctx_destroy(ctx);
  sw_redactor_destroy(r);
  /* nothing configured: a pass-through */
  struct sw_redact_conf none = {0};
  r = make(&none);
  assert_int_equal(sw_redactor_nrules(r), 0);
  ctx = sw_redact_ctx_create(r);
  const char *out = "x";
  size_t n = 1;
  assert_int_equal(sw_redact_line(ctx, NULL, 0, 1, &out, &n), 0);
  assert_null(out);
  assert_int_equal(n, 0);
  sw_redact_ctx_destroy(ctx);
  sw_redactor_destroy(r);
  sw_redactor_destroy(NULL);
  sw_redact_ctx_destroy(NULL);
}

/* ---- SHA-256 ---- */

static void test_sha256(void **state) {
  (void)state;
  static const struct {
    const char *in;
    size_t reps;
    const char *hex;
  } v[] = { /* FIPS 180-2 examples */
      {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    struct sw_sha256 h;
    uint8_t d[32];
    char hex[65];
    sw_sha256_init(&h);
    for (size_t k = 0; k < v[i].reps; k++) sw_sha256_update(&h, v[i].in, strlen(v[i].in));
    sw_sha256_final(&h, d);
    for (int k = 0; k < 32; k++) snprintf(hex + 2 * k, 3, "%02x", d[k]);
    assert_string_equal(hex, v[i].hex);
  }
}

/* ---- hostile input ---- */

static void test_bytes(void **state) {
  (void)state;
  struct sw_redactor *r = make_packs(all_packs, NPACKS);
  size_t n;
  char *got = redact_n(r, S("\xff\xfe password=\x00" "abc \xc3\x28 a@b.example\x00" "4111111111111111"), 1, &n);
  static const char want[] = "\xff\xfe password=[REDACTED:password_kv] \xc3\x28 [REDACTED:email]\x00"
                             "[REDACTED:credit_card]";
  assert_int_equal(n, sizeof want - 1);
  assert_memory_equal(got, want, n);
  free(got);
  sw_redactor_destroy(r);
}

/* A secret at every offset around the 64-byte blocks of the prefilter, in a line of filler. */
static void test_block_boundaries(void **state) {
  (void)state;
  static const struct {
    const char *secret, *want;
  } s[] = {
      {"4111 1111 1111 1111", "[REDACTED:credit_card]"}, {"4111111111111111", "[REDACTED:credit_card]"},
      {"a@b.example", "[REDACTED:email]"},               {"password=x", "password=[REDACTED:password_kv]"},
      {"10.20.30.40", "[REDACTED:ipv4]"},                {"2001:db8:0:0:1:2:3:4", "[REDACTED:ipv6]"},
      {"fe80::1", "[REDACTED:ipv6]"},                    {"AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws_access_key]"},
      {"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.s", "[REDACTED:jwt]"},
      {"-----BEGIN PRIVATE KEY-----x-----END PRIVATE KEY-----", "[REDACTED:private_key]"},
  };
  struct sw_redactor *r = make_packs(all_packs, NPACKS);
  struct sw_redact_ctx *ctx = sw_redact_ctx_create(r);
  char line[400], want[400];
  for (size_t k = 0; k < sizeof s / sizeof s[0]; k++) {
    for (size_t off = 0; off < 200; off++) {
      size_t sl = strlen(s[k].secret), wl = strlen(s[k].want), tail = off % 67;
      memset(line, 'x', off);
      if (off) line[off - 1] = ' ';
      memcpy(line + off, s[k].secret, sl);
      line[off + sl] = ' ';
      memset(line + off + sl + 1, 'y', tail);
      size_t n = off + sl + 1 + tail;
      memcpy(want, line, off);
      memcpy(want + off, s[k].want, wl);
      memcpy(want + off + wl, line + off + sl, sl ? n - off - sl : 0);
      const char *out;
      size_t on;
      assert_int_equal(sw_redact_line(ctx, line, n, 0, &out, &on), 0);
      if (on != n - sl + wl || memcmp(out, want, on))
        fail_msg("offset %zu: %.*s\n  got %.*s", off, (int)n, line, (int)on, out);
    }
  }
  sw_redact_ctx_destroy(ctx);
  sw_redactor_destroy(r);
}

#define MIB (1u << 20)

static void test_huge_lines(void **state) {
  (void)state;
  static const char *const keys[] = {"password"};
  struct sw_redact_conf c = {.builtins = all_packs, .nbuiltins = NPACKS, .keys = keys, .nkeys = 1};
  struct sw_redactor *r = make(&c);
  struct sw_redact_ctx *ctx = sw_redact_ctx_create(r);
  char *line = malloc(MIB + 1);
  assert_non_null(line);
  const char *out;
  size_t n;
  /* plain filler: zero copy */
  memset(line, 'a', MIB);
  assert_int_equal(sw_redact_line(ctx, line, MIB, 1, &out, &n), 0);
  assert_ptr_equal(out, line);
  /* secrets at the start, the middle and the end */
  memcpy(line, "a@b.example ", 12);
  memcpy(line + MIB / 2, " 4111111111111111 ", 18);
  memcpy(line + MIB - 11, " password=x", 11);
  assert_int_equal(sw_redact_line(ctx, line, MIB, 1, &out, &n), 0);
  assert_null(memmem(out, n, "a@b.example", 11));
  assert_null(memmem(out, n, "4111111111111111", 16));
  assert_int_equal(memcmp(out + n - 32, " password=[REDACTED:password_kv]", 32), 0);
  /* pathological shapes: each is masked, by the regex or by a fallback, never passed through */
  static const struct {
    const char *unit, *tail, *secret;
  } shapes[] = {
      {"a_", "password=hunter2", "hunter2"},   /* a 1 MiB key prefix */
      {"a-", "=x password=hunter2", "hunter2"},
      {"@a", " x@y.example", "x@y.example"},   /* '@' everywhere */
      {"1 ", " 4111111111111111", "4111111111111111"}, /* one long digit run with separators */
      {"::", " 1.2.3.4", "1.2.3.4"},
      {"1.", " 10.9.8.7", "10.9.8.7"},
      {"eyJ", " AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"},
      {"se", " secret=s3", "secret=s3"},
  };
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
    size_t ul = strlen(shapes[k].unit), tl = strlen(shapes[k].tail), len = 0;
    while (len + ul + tl <= MIB) {
      memcpy(line + len, shapes[k].unit, ul);
      len += ul;
    }
    memcpy(line + len, shapes[k].tail, tl);
    len += tl;
    assert_int_equal(sw_redact_line(ctx, line, len, 1, &out, &n), 0);
    if (memmem(out, n, shapes[k].secret, strlen(shapes[k].secret)))
      fail_msg("shape %zu (\"%s\"...): the secret survived", k, shapes[k].unit);
  }
  /* a quoted password value of 1 MiB, and a JSON object of 1 MiB */
  memcpy(line, "password=\"", 10);
  memset(line + 10, 'p', MIB - 10);
  assert_int_equal(sw_redact_line(ctx, line, MIB, 1, &out, &n), 0);
  assert_int_equal(n, 32);
  assert_memory_equal(out, "password=\"[REDACTED:password_kv]", 32);
  memset(line, ' ', MIB);
  memcpy(line, "{\"password\":\"", 13);
  memset(line + 13, 'q', MIB - 15);
  memcpy(line + MIB - 2, "\"}", 2);
  assert_int_equal(sw_redact_line(ctx, line, MIB, 1, &out, &n), 0);
  assert_int_equal(n, 18);
  assert_memory_equal(out, "{\"password\":\"***\"}", 18);
  /* random bytes: no crash, no leak (ASan), no fallback needed */
  uint64_t x = 7;
  for (size_t i = 0; i < MIB; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    line[i] = (char)(x >> 56);
  }
  for (int json = 0; json < 2; json++) assert_int_equal(sw_redact_line(ctx, line, MIB, json, &out, &n), 0);
  free(line);
  sw_redact_ctx_destroy(ctx);
  sw_redactor_destroy(r);
}

/* The scratch limit: rewrites that would pass it fall back, never leak. */
static void test_scratch_limit(void **state) {
  (void)state;
  static const char *const packs[] = {"email"}, *const keys[] = {"password"};
  struct sw_redact_conf c = {.builtins = packs, .nbuiltins = 1, .keys = keys, .nkeys = 1, .scratch_max = 4096};
  struct sw_redactor *r = make(&c);
  struct sw_redact_ctx *ctx = sw_redact_ctx_create(r);
  char line[8192];
  const char *out;
  size_t n, len = 0;
  /* 400 short e-mails: "[REDACTED:email]" would need more than 4096 bytes -> '*' of the same length */
  while (len < 2800) len += (size_t)snprintf(line + len, sizeof line - len, "a@b.co ");
  assert_int_equal(sw_redact_line(ctx, line, len, 0, &out, &n), 0);
  assert_int_equal(n, len);
  assert_null(memchr(out, '@', n));
  assert_int_equal(out[0], '*');
  assert_int_equal(sw_redact_line(ctx, line, len, 0, &out, &n), 0); /* repeatable */
  assert_int_equal(sw_redact_ctx_fallbacks(ctx), 2);
  assert_int_equal(sw_redact_ctx_counts(ctx)[1], 800);
  /* a line longer than the limit: unchanged lines stay zero-copy, a secret gives the marker */
  memset(line, 'x', 6000);
  assert_int_equal(sw_redact_line(ctx, line, 6000, 0, &out, &n), 0);
  assert_ptr_equal(out, line);
  memcpy(line + 3000, " a@b.co ", 8);
  assert_int_equal(sw_redact_line(ctx, line, 6000, 0, &out, &n), 0);
  assert_int_equal(n, strlen(SW_REDACT_LINE_MARKER));
  assert_memory_equal(out, SW_REDACT_LINE_MARKER, n);
  /* JSON masking that would grow past the limit falls back to dropping the keys */
  len = (size_t)snprintf(line, sizeof line, "{\"a\":0");
  while (len < 4000) len += (size_t)snprintf(line + len, sizeof line - len, ",\"password\":1");
  line[len++] = '}';
  assert_int_equal(sw_redact_line(ctx, line, len, 1, &out, &n), 0);
  assert_int_equal(n, 7);
  assert_memory_equal(out, "{\"a\":0}", 7);
  assert_int_equal(sw_redact_ctx_fallbacks(ctx), 4);
  sw_redact_ctx_destroy(ctx);
  sw_redactor_destroy(r);
}

/* ---- the prefilter against a brute-force reference ---- */

/* Every enabled pack's regex over the whole line, in order, with pcre2_substitute: what the
 * engine must produce when the prefilter never skips a match. */
static char *reference(pcre2_code *const codes[SW__NPACKS], pcre2_match_context *mctx, const char *in, size_t n,
                       size_t *out_len) {
  char *cur = malloc(n + 1);
  assert_non_null(cur);
  memcpy(cur, in, n);
  size_t len = n;
  for (int p = 0; p < SW__NPACKS; p++) {
    PCRE2_SIZE cap = len + 64;
    char *out = NULL;
    int rc = PCRE2_ERROR_NOMEMORY;
    for (int attempt = 0; attempt < 2 && rc == PCRE2_ERROR_NOMEMORY; attempt++) {
      free(out);
      out = malloc(cap + 1);
      assert_non_null(out);
      rc = pcre2_substitute(codes[p], (PCRE2_SPTR)cur, len, 0,
                            PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, NULL, mctx,
                            (PCRE2_SPTR)sw__pack_def(p)->replace, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)out, &cap);
    }
    if (rc < 0) fail_msg("reference %s: error %d", sw__pack_def(p)->name, rc);
    free(cur);
    cur = out;
    len = cap;
  }
  *out_len = len;
  return cur;
}

static void test_prefilter_equivalence(void **state) {
  (void)state;
  static const char *const frags[] = {
      "a@b.example", "x@y", "@", "foo@2x.png", "Bearer abc123", "bearer ", "Bearer Token", "eyJ", "eyJhb.eyJz.sig",
      "AKIAIOSFODNN7EXAMPLE", "AKIA", "ASIA", "aws_secret_access_key=", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      "4111111111111111", "4111 1111", " 1111 1111", "-", "20261123153352127", "password", "=", ":", "pwd", "secret",
      "pass", "passwd:", "\"", "'", "x", " ", "\n", ",", "&", "://", "https://u:p@h", "p@ss@", "-----BEGIN",
      " PRIVATE KEY-----", "-----END PRIVATE KEY-----", "10.0.0.1", "1.", "2.", "255", "::", "fe80", ":1", "2001:db8",
      "0:0:0:0:0:0:0", "0:0:0:0:0:ffff:", "1.2.3.4", "12:34:56", "std::", "v1.2.3.4", "_", "s", "e", "p", "a",
      "y", "J", "B", "K", "S", "9",
      "\xff", "{\"password\":\"x\"}", "db_", "T", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "Basic ", "basic", "dXNlcjpwYXNz", "YWJj", "==", "%3D", "%3a", "%26", "token", "Token", "api_", "key", "Key",
      "secret_key", "-u ", "-U", "--user", "--proxy-user=", "-", "u", "1000:1000", "bob:pw", "true", "null", "%",
  };
  const size_t nf = sizeof frags / sizeof frags[0];
  struct sw_redactor *r = make_packs(all_packs, NPACKS);
  struct sw_redact_ctx *ctx = sw_redact_ctx_create(r);
  pcre2_code *codes[SW__NPACKS];
  pcre2_match_context *mctx = pcre2_match_context_create(NULL);
  pcre2_set_callout(mctx, sw__callout, NULL);
  for (int p = 0; p < SW__NPACKS; p++) {
    int ec;
    PCRE2_SIZE eo;
    codes[p] = pcre2_compile((PCRE2_SPTR)sw__pack_def(p)->pattern, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    assert_non_null(codes[p]);
  }
  uint64_t x = 12345;
  char line[4096];
  for (int round = 0; round < 30000; round++) {
    size_t len = 0;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t parts = 1 + x % 40;
    for (size_t k = 0; k < parts; k++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      const char *f = frags[x % nf];
      size_t fl = strlen(f);
      if (len + fl > sizeof line) break;
      memcpy(line + len, f, fl);
      len += fl;
    }
    const char *out;
    size_t n, rn;
    assert_int_equal(sw_redact_line(ctx, line, len, 0, &out, &n), 0);
    char *want = reference(codes, mctx, line, len, &rn);
    if (rn != n || memcmp(out, want, n))
      fail_msg("round %d: %.*s\n  engine    %.*s\n  reference %.*s", round, (int)len, line, (int)n, out, (int)rn, want);
    free(want);
  }
  for (int p = 0; p < SW__NPACKS; p++) pcre2_code_free(codes[p]);
  pcre2_match_context_free(mctx);
  sw_redact_ctx_destroy(ctx);
  sw_redactor_destroy(r);
}

/* ---- allocation failures ---- */

static void test_alloc_failures(void **state) {
  (void)state;
#if INJECT_ALLOC
  static const char *const keys[] = {"password"};
  static const struct sw_redact_rule_conf rules[] = {{"r", "(?<a>T)-(\\d+)", "${a}$2"}};
  static const char line[] = "{\"password\":\"hunter2\",\"m\":\"a@b.example T-1 4111111111111111\"}";
  for (long n = 0;; n++) {
    long live = alloc_live;
    alloc_count = 0;
    alloc_fail_at = n;
    struct sw_redact_conf c = {.builtins = all_packs, .nbuiltins = NPACKS, .rules = rules, .nrules = 1,
                               .keys = keys, .nkeys = 1, .action = SW_REDACT_HASH, .salt = "s", .salt_len = 1};
    struct sw_redactor *r = NULL;
    struct sw_redact_ctx *ctx = NULL;
    int rc = sw_redactor_create(&c, &r, NULL, 0);
    if (!rc) ctx = sw_redact_ctx_create(r);
    if (ctx) {
      for (int i = 0; i < 3; i++) {
        const char *out;
        size_t on;
        int lrc = sw_redact_line(ctx, line, sizeof line - 1, 1, &out, &on);
        assert_true(lrc == 0 || lrc == SW_ENOMEM);
        if (memmem(out, on, "hunter2", 7) || memmem(out, on, "a@b", 3) || memmem(out, on, "41111", 5))
          fail_msg("failing allocation %ld: a secret passed: %.*s", n, (int)on, out);
      }
    }
    alloc_fail_at = -1;
    bool injected = alloc_count > n;
    sw_redact_ctx_destroy(ctx);
    sw_redactor_destroy(r);
    if (alloc_live != live) fail_msg("failing allocation %ld: %ld blocks leaked", n, alloc_live - live);
    if (!injected) {
      assert_int_equal(rc, 0);
      break;
    }
    if (rc && rc != SW_ENOMEM) fail_msg("failing allocation %ld: rc %d", n, rc);
  }
#else
  skip();
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_packs),
      cmocka_unit_test(test_all_packs),
      cmocka_unit_test(test_json_mask),
      cmocka_unit_test(test_json_hash),
      cmocka_unit_test(test_json_drop),
      cmocka_unit_test(test_replacements),
      cmocka_unit_test(test_create_errors),
      cmocka_unit_test(test_counts),
      cmocka_unit_test(test_sha256),
      cmocka_unit_test(test_bytes),
      cmocka_unit_test(test_block_boundaries),
      cmocka_unit_test(test_huge_lines),
      cmocka_unit_test(test_scratch_limit),
      cmocka_unit_test(test_prefilter_equivalence),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
