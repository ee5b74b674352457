/* text.h - text for people: plural suffixes, byte sizes in binary units, and control characters
 * made visible so that log content printed to a terminal cannot drive it.
 *
 * Pure. Log lines and file names are attacker-controlled: printed raw, ESC sequences clear the
 * screen, OSC 52 writes the clipboard, CR/BS overwrite what was printed, a newline in a file
 * name fakes an extra line. sw_buf_put_visible writes them as escapes instead (like journalctl
 * and `ls -b`), keeping valid UTF-8 text (accents, CJK, emoji) as it is.
 */
#ifndef SW_TEXT_H
#define SW_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

/* Whether s ends with suffix. */
static inline int sw_ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !memcmp(s + a - b, suffix, b);
}

/* "" for 1, "s" otherwise: "%zu source%s". */
static inline const char *sw_plural(uint64_t n) { return n == 1 ? "" : "s"; }

#define SW_HUMAN_BYTES_LEN 24
/* n as "812 B", "247.8 KiB", "256.0 MiB", "1.5 GiB", "2.0 TiB" into out; returns out. */
char *sw_human_bytes(double n, char out[SW_HUMAN_BYTES_LEN]);

enum {
  SW_VISIBLE_KEEP_NEWLINES = 1, /* \n and \t stay (a multi-line record prints as it was) */
};
/* Appends s with every C0 control (but those kept by flags), DEL, C1 control (U+0080..U+009F),
 * bidirectional override (U+202A..U+202E, U+2066..U+2069) and invalid UTF-8 byte written as an
 * escape: \n \r \t \b \f \v \a \e, else \xNN for bytes and \uNNNN for code points; a backslash
 * stays as it is (escapes are for the eye, not for a parser: --output json is for that). */
int sw_buf_put_visible(struct sw_buf *b, const char *s, size_t n, int flags) SW_MUST_CHECK;
/* The string s made visible (flags 0) in b, NUL-terminated: b's data, valid until b changes;
 * "?" if b's cap is reached. For printing one name or message. */
const char *sw_visible_cstr(struct sw_buf *b, const char *s);

/* server.listen: HOST:PORT or [V6]:PORT, PORT 0-65535 in digits only, no blanks, no bare IPv6.
 * host gets HOST without brackets. 0 when valid; -1 otherwise (or HOST longer than cap - 1). */
int sw_listen_split(const char *s, char *host, size_t cap, unsigned *port);

#endif
