#include "verified.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void path_of(const char *data_dir, const char *sink, char *out, size_t n) {
  snprintf(out, n, "%s/archive/%s.verified", data_dir, sink);
}

int sw_arch_verified_load(const char *data_dir, const char *sink, struct sw_arch_verified *v) {
  char path[4200];
  path_of(data_dir, sink, path, sizeof path);
  FILE *f = fopen(path, "r");
  if (!f) return SW_ENOTFOUND;
  memset(v, 0, sizeof *v);
  long long run, ok;
  unsigned long long obj, failed, rec;
  int n = fscanf(f, "{\"last_run\":%lld,\"last_ok\":%lld,\"objects\":%llu,\"failed\":%llu,\"records\":%llu}",
                 &run, &ok, &obj, &failed, &rec);
  fclose(f);
  if (n != 5) return SW_ECORRUPT;
  *v = (struct sw_arch_verified){run, ok, obj, failed, rec};
  return SW_OK;
}

int sw_arch_verified_save(const char *data_dir, const char *sink, struct sw_arch_verified *v, char *err,
                          size_t errlen) {
  char dir[4200], path[4200], tmp[4300];
  snprintf(dir, sizeof dir, "%s/archive", data_dir);
  path_of(data_dir, sink, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  struct sw_arch_verified old;
  v->last_run = (int64_t)time(NULL);
  v->last_ok = v->failed ? (sw_arch_verified_load(data_dir, sink, &old) ? 0 : old.last_ok) : v->last_run;
  mkdir(data_dir, 0750);
  mkdir(dir, 0750);
  FILE *f = fopen(tmp, "w");
  int ok = f && fprintf(f, "{\"last_run\":%" PRId64 ",\"last_ok\":%" PRId64 ",\"objects\":%" PRIu64
                        ",\"failed\":%" PRIu64 ",\"records\":%" PRIu64 "}\n",
                        v->last_run, v->last_ok, v->objects, v->failed, v->records) > 0;
  if (f && (fflush(f) || fsync(fileno(f)))) ok = 0;
  if (f && fclose(f)) ok = 0;
  if (!ok || rename(tmp, path)) {
    snprintf(err, errlen, "cannot record the verification in %s: %s", path, strerror(errno));
    unlink(tmp);
    return SW_EIO;
  }
  return SW_OK;
}
