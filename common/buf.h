/* buf.h - growable byte buffer with a hard size cap fixed at creation.
 *
 * Owner frees with sw_buf_free(). Appends that would pass `max` fail with SW_ETOOBIG and leave
 * the buffer unchanged, so memory stays bounded whatever the input.
 */
#ifndef SW_BUF_H
#define SW_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct sw_buf {
  char *data;
  size_t len, cap, max;
};

void sw_buf_init(struct sw_buf *b, size_t max);
void sw_buf_free(struct sw_buf *b);
static inline void sw_buf_reset(struct sw_buf *b) { b->len = 0; }
/* Ensures room for `extra` more bytes. */
int sw_buf_reserve(struct sw_buf *b, size_t extra) SW_MUST_CHECK;
int sw_buf_append(struct sw_buf *b, const void *p, size_t n) SW_MUST_CHECK;
int sw_buf_putc(struct sw_buf *b, char c) SW_MUST_CHECK;
int sw_buf_printf(struct sw_buf *b, const char *fmt, ...) SW_MUST_CHECK
    __attribute__((format(printf, 2, 3)));
/* v in decimal, without printf. */
int sw_buf_put_u64(struct sw_buf *b, uint64_t v) SW_MUST_CHECK;
/* LEB128 unsigned varint. */
int sw_buf_put_varint(struct sw_buf *b, uint64_t v) SW_MUST_CHECK;
/* Appends s as the body of a JSON string (no quotes): escapes ", \ and control bytes;
 * invalid UTF-8 bytes become U+FFFD. Returns SW_OK and sets *invalid if any byte was replaced. */
int sw_buf_put_json_str(struct sw_buf *b, const char *s, size_t n, int *invalid) SW_MUST_CHECK;
/* Frees memory beyond `keep` bytes of capacity (for buffers that spiked). */
void sw_buf_shrink(struct sw_buf *b, size_t keep);

/* Makes room for one more element in a doubling array: *arrp (a pointer to the array pointer)
 * holds n elements of elem bytes in *cap (0 at first; then `first`, doubling). */
int sw_grow(void *arrp, size_t n, size_t *cap, size_t elem, size_t first) SW_MUST_CHECK;

/* Reads a varint from [*p, end); advances *p. Returns 0 or SW_ECORRUPT. */
int sw_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) SW_MUST_CHECK;

#endif
