/* prefilter.c - one pass over a line: which packs can match it, and from where.
 *
 * The line is cut into 64-byte blocks. For each block, bit masks (bit j = byte j) mark the
 * anchors of the packs still wanted:
 *  - the first byte of a rare triple or pair: "sec" (secret), "pas"/"pwd" (password keys),
 *    "bea" (bearer), "bas" (basic), "tok"/"key" (token_kv), "-u"/"-U" (cli_credentials), "AK"/"AS",
 *    "yJ" (of "eyJ"), "-B" (of "-----BEGIN"), "::";
 *  - every '@';
 *  - the first '.' of three dots between digits, 2-4 bytes apart (d.d.d.d: IPv4);
 *  - the first ':' of six colons 2-5 bytes apart (an IPv6 address without "::");
 *  - the start of each run of digits joined by single ' ' or '-' that holds 13 bytes or more
 *    (cards), carried across blocks.
 * Chains are computed with shifts inside the block; a chain that may go on past the block's
 * end is kept (its start is marked), so nothing is lost at block edges, at the price of a few
 * extra checks there. Only marked positions are looked at, by the pack's literal check in
 * builtins.c (r->stop says which packs an anchor byte stands for). With SSE2 (every x86-64) a
 * block costs a few dozen vector instructions and no branch per byte; elsewhere a scalar loop
 * computes the same masks.
 *
 * Why it is safe to skip what is not marked: every match of a pack's regex contains its anchor
 * (private_key "-----BEGIN", jwt "eyJ", aws_access_key "AKIA"/"ASIA", bearer_token "bearer",
 * aws_secret_key "secret", password_kv "pass", "pwd" or "secret", basic_auth "basic", token_kv
 * "token" or "key", cli_credentials "-u" (or "-user"), email and url_credentials '@',
 * ipv4 its three dots, ipv6 "::" or six colons, credit_card a run of 13+ digits and separators),
 * the check at an anchor is a necessary condition of the regex, and the start it reports is never
 * after the first match (see builtins.c). Anchors are visited in line order, so the first one
 * that passes gives the start.
 */
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "redact_int.h"

#define BIT(p) (1u << (p))
#define CARD BIT(SW__PACK_CREDIT_CARD)
#define IPV4 BIT(SW__PACK_IPV4)
#define IPV6 BIT(SW__PACK_IPV6)
#define MORE (BIT(SW__PACK_BASIC_AUTH) | BIT(SW__PACK_TOKEN_KV) | BIT(SW__PACK_CLI_CREDENTIALS))
#define CARD_MIN 13 /* digits in the shortest card number */
#define READ 66     /* bytes scan_block reads: the block and two after it (triples) */

/* Raw masks of one block. */
struct block {
  uint64_t anchors; /* triples, pairs, '@' */
  uint64_t digits;  /* '0'..'9' (cards, IPv4) */
  uint64_t dots;    /* '.' (IPv4) */
  uint64_t seps;    /* ' ' and '-' (cards) */
  uint64_t colons;  /* ':' (IPv6) */
};

#if defined(__SSE2__)
/* p[0..READ) readable. */
static void scan_block(const unsigned char *p, uint32_t want, struct block *b) {
  const __m128i bias = _mm_set1_epi8((char)(0x80 - '0')), ten = _mm_set1_epi8((char)(-128 + 10));
  const __m128i lower = _mm_set1_epi8(0x20);
  memset(b, 0, sizeof *b);
  for (int k = 0; k < 4; k++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
    __m128i n1 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k + 1));
    __m128i n2 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k + 2));
    __m128i lc = _mm_or_si128(v, lower), lc1 = _mm_or_si128(n1, lower), lc2 = _mm_or_si128(n2, lower);
    __m128i m = _mm_setzero_si128();
#define EQ(x, c) _mm_cmpeq_epi8(x, _mm_set1_epi8((char)(c)))
#define AND3(a, b, c) _mm_and_si128(_mm_and_si128(a, b), c)
#define MASK(x) ((uint64_t)(unsigned)_mm_movemask_epi8(x) << (16 * k))
    if (want & (BIT(SW__PACK_EMAIL) | BIT(SW__PACK_URL_CREDENTIALS))) m = _mm_or_si128(m, EQ(v, '@'));
    if (want & (BIT(SW__PACK_AWS_SECRET_KEY) | BIT(SW__PACK_PASSWORD_KV)))
      m = _mm_or_si128(m, AND3(EQ(lc, 's'), EQ(lc1, 'e'), EQ(lc2, 'c')));
    if (want & BIT(SW__PACK_PASSWORD_KV))
      m = _mm_or_si128(m, _mm_and_si128(EQ(lc, 'p'), _mm_or_si128(_mm_and_si128(EQ(lc1, 'a'), EQ(lc2, 's')),
                                                                 _mm_and_si128(EQ(lc1, 'w'), EQ(lc2, 'd')))));
    if (want & BIT(SW__PACK_BEARER_TOKEN)) m = _mm_or_si128(m, AND3(EQ(lc, 'b'), EQ(lc1, 'e'), EQ(lc2, 'a')));
    if (want & BIT(SW__PACK_AWS_ACCESS_KEY))
      m = _mm_or_si128(m, _mm_and_si128(EQ(v, 'A'), _mm_or_si128(EQ(n1, 'K'), EQ(n1, 'S'))));
    if (want & BIT(SW__PACK_JWT)) m = _mm_or_si128(m, _mm_and_si128(EQ(v, 'y'), EQ(n1, 'J')));
    if (want & BIT(SW__PACK_PRIVATE_KEY)) m = _mm_or_si128(m, _mm_and_si128(EQ(v, '-'), EQ(n1, 'B')));
    if (want & IPV6) {
      __m128i c = EQ(v, ':');
      m = _mm_or_si128(m, _mm_and_si128(c, EQ(n1, ':')));
      b->colons |= MASK(c);
    }
    b->anchors |= MASK(m);
    if (want & (CARD | IPV4)) b->digits |= MASK(_mm_cmplt_epi8(_mm_add_epi8(v, bias), ten));
    if (want & IPV4) b->dots |= MASK(EQ(v, '.'));
    if (want & CARD) b->seps |= MASK(_mm_or_si128(EQ(v, ' '), EQ(v, '-')));
#undef MASK
#undef AND3
#undef EQ
  }
}

/* The anchors of basic_auth, token_kv and cli_credentials, added to b->anchors. A pass of its
 * own, taken only when one of them is wanted, so that the loop above (the default packs) stays
 * as tight as it was. */
static void scan_block_more(const unsigned char *p, uint32_t want, struct block *b) {
  const __m128i lower = _mm_set1_epi8(0x20);
  for (int k = 0; k < 4; k++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
    __m128i lc = _mm_or_si128(v, lower);
    __m128i lc1 = _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k + 1)), lower);
    __m128i lc2 = _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k + 2)), lower);
    __m128i m = _mm_setzero_si128();
#define EQ(x, c) _mm_cmpeq_epi8(x, _mm_set1_epi8((char)(c)))
#define AND3(a, b, c) _mm_and_si128(_mm_and_si128(a, b), c)
    if (want & BIT(SW__PACK_BASIC_AUTH)) m = _mm_or_si128(m, AND3(EQ(lc, 'b'), EQ(lc1, 'a'), EQ(lc2, 's')));
    if (want & BIT(SW__PACK_TOKEN_KV))
      m = _mm_or_si128(m, _mm_or_si128(AND3(EQ(lc, 't'), EQ(lc1, 'o'), EQ(lc2, 'k')),
                                       AND3(EQ(lc, 'k'), EQ(lc1, 'e'), EQ(lc2, 'y'))));
    if (want & BIT(SW__PACK_CLI_CREDENTIALS)) m = _mm_or_si128(m, _mm_and_si128(EQ(v, '-'), EQ(lc1, 'u')));
    b->anchors |= (uint64_t)(unsigned)_mm_movemask_epi8(m) << (16 * k);
#undef AND3
#undef EQ
  }
}
#else
static void scan_block(const unsigned char *p, uint32_t want, struct block *b) {
  memset(b, 0, sizeof *b);
  for (int j = 0; j < 64; j++) {
    unsigned c = p[j], c1 = p[j + 1], lc = c | 0x20, lc1 = c1 | 0x20, lc2 = p[j + 2] | 0x20u;
    bool a = false;
    if (want & (BIT(SW__PACK_EMAIL) | BIT(SW__PACK_URL_CREDENTIALS))) a |= c == '@';
    if (want & (BIT(SW__PACK_AWS_SECRET_KEY) | BIT(SW__PACK_PASSWORD_KV)))
      a |= lc == 's' && lc1 == 'e' && lc2 == 'c';
    if (want & BIT(SW__PACK_PASSWORD_KV)) a |= lc == 'p' && ((lc1 == 'a' && lc2 == 's') || (lc1 == 'w' && lc2 == 'd'));
    if (want & BIT(SW__PACK_BEARER_TOKEN)) a |= lc == 'b' && lc1 == 'e' && lc2 == 'a';
    if (want & BIT(SW__PACK_AWS_ACCESS_KEY)) a |= c == 'A' && (c1 == 'K' || c1 == 'S');
    if (want & BIT(SW__PACK_JWT)) a |= c == 'y' && c1 == 'J';
    if (want & BIT(SW__PACK_PRIVATE_KEY)) a |= c == '-' && c1 == 'B';
    if (want & IPV6) {
      a |= c == ':' && c1 == ':';
      b->colons |= (uint64_t)(c == ':') << j;
    }
    b->anchors |= (uint64_t)a << j;
    if (want & (CARD | IPV4)) b->digits |= (uint64_t)(c - '0' < 10u) << j;
    if (want & IPV4) b->dots |= (uint64_t)(c == '.') << j;
    if (want & CARD) b->seps |= (uint64_t)(c == ' ' || c == '-') << j;
  }
}

static void scan_block_more(const unsigned char *p, uint32_t want, struct block *b) {
  for (int j = 0; j < 64; j++) {
    unsigned c = p[j], lc = c | 0x20, lc1 = p[j + 1] | 0x20u, lc2 = p[j + 2] | 0x20u;
    bool a = false;
    if (want & BIT(SW__PACK_BASIC_AUTH)) a |= lc == 'b' && lc1 == 'a' && lc2 == 's';
    if (want & BIT(SW__PACK_TOKEN_KV)) a |= (lc == 't' && lc1 == 'o' && lc2 == 'k') || (lc == 'k' && lc1 == 'e' && lc2 == 'y');
    if (want & BIT(SW__PACK_CLI_CREDENTIALS)) a |= c == '-' && lc1 == 'u';
    b->anchors |= (uint64_t)a << j;
  }
}
#endif

/* Bit i: m has bits i = b0 < b1 < ... < b_links, each lo..hi after the one before. Positions past
 * the block count as set: a chain that may continue in the next block is kept. */
static uint64_t chains(uint64_t m, int links, int lo, int hi) {
  uint64_t c = m;
  for (int l = 0; l < links && c; l++) {
    uint64_t next = 0;
    for (int g = lo; g <= hi; g++) next |= c >> g | ~(~(uint64_t)0 >> g);
    c = m & next;
  }
  return c;
}

/* State carried from one block to the next. */
struct carry {
  uint64_t digit;  /* 1 when the last byte of the previous block was a digit */
  size_t card_run; /* length of the card-like run ending at the previous block's end */
};

/* Starts of card-like runs (digits joined by single separators) of at least CARD_MIN bytes
 * inside the block. A run that began in an earlier block and reaches CARD_MIN here sets
 * *before to its start (else SIZE_MAX). */
static uint64_t card_runs(const struct block *b, size_t base, uint64_t next_digit, struct carry *cy, size_t *before) {
  uint64_t dn = b->digits >> 1 | next_digit << 63; /* the next byte is a digit */
  uint64_t j = b->digits | (b->seps & dn & (b->digits << 1 | cy->digit));
  uint64_t lead = j == ~(uint64_t)0 ? 64 : (uint64_t)__builtin_ctzll(~j), y = j;
  *before = cy->card_run && lead && cy->card_run + lead >= CARD_MIN ? base - cy->card_run : SIZE_MAX;
  for (int k = 1; k < CARD_MIN; k++) y &= j >> k; /* bit i: bytes i..i+12 all in a run */
  y &= ~(y << 1);                                 /* the first such bit of each run */
  if (cy->card_run) y &= ~(uint64_t)1;            /* bit 0 continues the previous run */
  if (j == ~(uint64_t)0) cy->card_run += 64;
  else cy->card_run = j >> 63 ? (size_t)__builtin_clzll(~j) : 0;
  return y;
}

static void found(struct sw__cand *c, uint32_t *pending, int p, size_t start) {
  c->start[p] = start;
  c->mask |= BIT(p);
  *pending &= ~BIT(p);
}

/* Runs the checks of the packs an anchor stands for, in line order. */
static void visit(const struct sw_redactor *r, const unsigned char *s, size_t n, size_t base, uint64_t marks,
                  uint32_t *pending, struct sw__resume *res, struct sw__cand *c) {
  while (marks && *pending) {
    size_t i = base + (size_t)__builtin_ctzll(marks);
    marks &= marks - 1;
    uint32_t m = r->stop[s[i]] & *pending;
    while (m) {
      int p = __builtin_ctz(m);
      size_t start = 0;
      m &= m - 1;
      if (sw__pack_check(p, s, n, i, &start, res)) found(c, pending, p, start);
    }
  }
}

static void card_check(const unsigned char *s, size_t n, size_t at, uint32_t *pending, struct sw__cand *c) {
  size_t start = 0;
  struct sw__resume unused = {0, 0, 0};
  if (sw__pack_check(SW__PACK_CREDIT_CARD, s, n, at, &start, &unused)) found(c, pending, SW__PACK_CREDIT_CARD, start);
}

void sw__prefilter(const struct sw_redactor *r, const char *str, size_t n, uint32_t want, struct sw__cand *c) {
  const unsigned char *s = (const unsigned char *)str;
  uint32_t pending = want;
  struct sw__resume res = {0, 0, 0};
  struct carry cy = {0, 0};
  struct block b;
  c->mask = 0;
  for (size_t base = 0; base < n && pending; base += 64) {
    unsigned char pad[80];
    size_t len = n - base;
    const unsigned char *p = s + base;
    if (len < READ) { /* the tail, zero-padded: NUL is no anchor, digit or separator */
      memset(pad, 0, sizeof pad);
      memcpy(pad, p, len);
      p = pad;
    }
    scan_block(p, pending, &b);
    if (pending & MORE) scan_block_more(p, pending, &b);
    uint64_t next_digit = (unsigned)(p[64] - '0') < 10u, marks = b.anchors;
    if (pending & IPV4) { /* '.' between digits, then three of them: d.d.d.d */
      uint64_t dot = b.dots & (b.digits >> 1 | next_digit << 63) & (b.digits << 1 | cy.digit);
      marks |= chains(dot, 2, 2, 4);
    }
    if (pending & IPV6) marks |= chains(b.colons, 5, 2, 5);
    if (pending & CARD) {
      size_t before;
      uint64_t runs = card_runs(&b, base, next_digit, &cy, &before);
      if (before != SIZE_MAX) card_check(s, n, before, &pending, c);
      for (; runs && (pending & CARD); runs &= runs - 1)
        card_check(s, n, base + (size_t)__builtin_ctzll(runs), &pending, c);
    }
    cy.digit = b.digits >> 63;
    visit(r, s, n, base, marks, &pending, &res, c);
  }
}
