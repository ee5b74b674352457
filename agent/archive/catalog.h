/* catalog.h - what an S3 sink's archive holds: its data objects and their manifests
 * (sinks/manifest.h), found by listing the sink's prefix and reading the manifests only, and
 * which of them can hold records a query asks for. Shared by `spillway archive list`,
 * `search` and `restore`. */
#ifndef SW_ARCH_CATALOG_H
#define SW_ARCH_CATALOG_H

#include <stdint.h>

#include "../../parsers/labelmatch.h"
#include "../../sinks/manifest.h"
#include "s3client.h"

struct sw_arch_filter {
  int64_t since, until;                /* INT64_MIN / INT64_MAX: open */
  const struct sw_label_match *labels; /* every one must hold */
  size_t nlabels;
};

struct sw_arch_obj {
  char *key;
  uint64_t size;
  int gzip;
  int has_manifest;     /* a manifest was found and read */
  int no_manifest;      /* none was uploaded (else: one exists but could not be read) */
  char why[256];        /* when not: why ("none uploaded", or what was wrong with it) */
  struct sw_manifest m;
};

struct sw_arch_catalog {
  struct sw_arch_obj *o; /* the selected objects, by ts_min (objects without a manifest last) */
  size_t n;
  uint64_t listed;       /* data objects under the prefix */
};

/* The longest prefix of a sink's `prefix` before any {label} or strftime field: where
 * listing starts. */
void sw_arch_list_prefix(const char *prefix, char *out, size_t n);

/* Lists c's prefix, reads the manifests (threads at once) and keeps the objects f can match.
 * An object without a readable manifest is kept (nothing rules it out) with has_manifest 0. */
int sw_arch_catalog_load(struct sw_s3c *s, const struct sw_sink_conf *c, const struct sw_arch_filter *f,
                         unsigned threads, struct sw_arch_catalog *cat, char *err, size_t errlen) SW_MUST_CHECK;
void sw_arch_catalog_free(struct sw_arch_catalog *cat);

/* Runs fn(arg, conn, i) for i in [0, n) on `threads` threads, each with its own connection;
 * the first non-zero return stops the others and is returned. */
int sw_arch_parallel(struct sw_s3c *s, size_t n, unsigned threads,
                     int (*fn)(void *arg, struct sw_s3c_conn *k, size_t i), void *arg) SW_MUST_CHECK;

#endif
