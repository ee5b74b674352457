/* object.h - one archived object's bytes: checked against its manifest, and read back as
 * records. Pure apart from memory (no I/O): the commands fetch the bytes. */
#ifndef SW_ARCH_OBJECT_H
#define SW_ARCH_OBJECT_H

#include <stdint.h>

#include "../../parsers/ndjsonrec.h"
#include "catalog.h"

/* SW_OK when data (the object as downloaded) has the size and SHA-256 o's manifest gives: a
 * cheap check of the compressed bytes (archive search makes only this one). SW_ECORRUPT with
 * why otherwise; SW_ENOTFOUND without a manifest. */
int sw_arch_check_bytes(const struct sw_arch_obj *o, const void *data, size_t n, char *why,
                        size_t whylen) SW_MUST_CHECK;

/* SW_OK when data (the object as downloaded) is what o's manifest describes: its size and
 * SHA-256, and once decompressed its NDJSON's size, SHA-256, record count and time range, with
 * every line readable. Otherwise SW_ECORRUPT and why says what differed ("records 999, manifest
 * says 1000"); an object without a manifest cannot be checked (SW_ENOTFOUND). */
int sw_arch_verify(const struct sw_arch_obj *o, const void *data, size_t n, char *why,
                   size_t whylen) SW_MUST_CHECK;

enum sw_arch_codec { SW_ARCH_ZSTD, SW_ARCH_GZIP, SW_ARCH_PLAIN };

/* Calls cb for each line (without its '\n'; a last line without one too) of data decompressed
 * with codec, from byte `from` of the decompressed text on (a line boundary); end is the
 * offset just past the line. cb's non-zero return stops (returned). */
int sw_arch_lines(const void *data, size_t n, enum sw_arch_codec codec, uint64_t from,
                  int (*cb)(void *arg, const char *line, size_t len, uint64_t end), void *arg) SW_MUST_CHECK;

/* Calls cb for each line of the decompressed object from byte `from` of its NDJSON on (a line
 * boundary): r is the parsed line (NULL when it does not parse: counted, never silently
 * passed over), end the NDJSON offset just past its '\n'. cb's non-zero return stops
 * (returned). */
int sw_arch_records(const void *data, size_t n, int gzip, uint64_t from,
                    int (*cb)(void *arg, const struct sw_ndjson_rec *r, uint64_t end), void *arg) SW_MUST_CHECK;

#endif
