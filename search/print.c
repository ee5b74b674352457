#include "print.h"

#include <stdio.h>

void sw_search_printer_init(struct sw_search_printer *p, enum sw_search_format format) {
  sw_search_out_init(&p->out, format);
  sw_buf_init(&p->buf, SIZE_MAX);
  p->failed = 0;
}

void sw_search_printer_free(struct sw_search_printer *p) {
  sw_search_out_free(&p->out);
  sw_buf_free(&p->buf);
}

void sw_search_printer_flush(void *arg) {
  struct sw_search_printer *p = arg;
  if (p->buf.len && fwrite(p->buf.data, 1, p->buf.len, stdout) != p->buf.len) p->failed = 1;
  sw_buf_reset(&p->buf);
  if (fflush(stdout)) p->failed = 1;
}

int sw_search_printer_emit(void *arg, const struct sw_search_hit *h) {
  struct sw_search_printer *p = arg;
  if (sw_search_out_hit(&p->out, h, &p->buf)) return 1;
  if (p->buf.len >= 64 * 1024) {
    if (fwrite(p->buf.data, 1, p->buf.len, stdout) != p->buf.len) p->failed = 1;
    sw_buf_reset(&p->buf);
  }
  return p->failed;
}
