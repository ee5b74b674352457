/* print.h - search hits to stdout, buffered in 64 KiB writes: the printer of `spillway search`
 * and `spillway archive search`. A failed write (EPIPE, a full disk) sets `failed`, and emit
 * then asks the search to stop. */
#ifndef SW_SEARCH_PRINT_H
#define SW_SEARCH_PRINT_H

#include "output.h"

struct sw_search_printer {
  struct sw_search_out out;
  struct sw_buf buf;
  int failed;
};

void sw_search_printer_init(struct sw_search_printer *p, enum sw_search_format format);
void sw_search_printer_free(struct sw_search_printer *p);
/* For struct sw_search_opts.emit (arg: the printer): non-zero once output failed. */
int sw_search_printer_emit(void *arg, const struct sw_search_hit *h);
/* For .flush: writes what is buffered and flushes stdout. */
void sw_search_printer_flush(void *arg);

#endif
