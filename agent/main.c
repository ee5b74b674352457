/* main.c - process entry point. */
#include <malloc.h>

#include "cli.h"

int main(int argc, char **argv) {
#ifdef __GLIBC__
  /* glibc gives each thread that allocates its own heap (up to 8 per core), and a heap keeps
   * the pages of the chunks and request bodies freed in it: with the writer, the sinks' pool
   * threads and the loop all handling big buffers, peak RSS grew with the thread count. One
   * heap costs no measurable CPU here (allocations are few and large). */
  mallopt(M_ARENA_MAX, 1);
#endif
  return sw_cli_main(argc, argv);
}
