/* luhn.c - is a digit run a payment card number? Used by the credit_card pack's callout, so the
 * regex only proposes candidates and this decides.
 *
 * A card number here is 13-19 digits that start with a card network prefix and end with a valid
 * Luhn check digit. The prefix test is what keeps timestamps (20261123153352123), epoch
 * milliseconds (1700000000000) and most order ids (1xxx, 7xxx-9xxx) from being masked even when
 * their check digit happens to be right (one in ten). Accepted prefixes: 2221-2720
 * (Mastercard 2-series), 30, 34-38 (Diners, Amex, JCB), 4 (Visa), 5 (Mastercard 51-55,
 * Maestro 50, 56-59), 6 (Discover, UnionPay, Maestro).
 */
#include "redact_int.h"

static bool network_prefix(const unsigned char *d) {
  unsigned two = d[0] * 10u + d[1], four = two * 100u + d[2] * 10u + d[3];
  switch (d[0]) {
  case 2: return four >= 2221 && four <= 2720;
  case 3: return two == 30 || (two >= 34 && two <= 38);
  case 4:
  case 5:
  case 6: return true;
  default: return false;
  }
}

bool sw__card_valid(const char *s, size_t n) {
  unsigned char d[19];
  size_t nd = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned v = (unsigned)(unsigned char)s[i] - '0';
    if (v > 9) continue; /* a separator */
    if (nd == sizeof d) return false;
    d[nd++] = (unsigned char)v;
  }
  if (nd < 13 || !network_prefix(d)) return false;
  unsigned sum = 0;
  for (size_t i = 0; i < nd; i++) { /* from the right: every second digit doubled */
    unsigned v = d[nd - 1 - i];
    if (i & 1) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
    sum += v;
  }
  return sum % 10 == 0;
}
