/* stats.c - what the reader tells /metrics: followed files and rotations (tail.h). */
#include <sys/stat.h>

#include "internal.h"

void sw_tail_files(struct sw_tail *t, void (*cb)(void *arg, const struct sw_tail_file_info *fi),
                   void *arg) {
  for (struct sw_tfile *f = t->files; f; f = f->next) {
    /* fstat of an open descriptor: no path lookup, so a scrape costs one syscall per file
     * and cannot hang on a directory. */
    struct stat st;
    uint64_t size = fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : f->read_off;
    struct sw_tail_file_info fi = {.source = f->src->conf->name, .path = f->disp,
                                   .offset = f->read_off, .size = size,
                                   .active = f->state == SW_TF_ACTIVE, .records = f->n_records,
                                   .bytes = f->n_in_bytes, .parse_errors = f->n_parse_errors};
    cb(arg, &fi);
  }
}

uint64_t sw_tail_rotations(const struct sw_tail *t, size_t i) {
  return i < t->nsrcs ? t->srcs[i].rotations : 0;
}
