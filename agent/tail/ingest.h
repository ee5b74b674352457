/* ingest.h - bytes of a tailed file -> records -> chunks -> writer jobs. Loop thread only.
 *
 * Per line: parse in the source's format (docker, cri, json, logfmt, text), join docker/CRI
 * partials per stream, group multi-line records, split records over max_record_bytes, and add
 * the result to the file's open chunk. Chunks are sealed only at line boundaries (see
 * tail/tfile.h), when full, when older than buffer.chunk.max_wait, or on release/shutdown.
 */
#ifndef SW_INGEST_H
#define SW_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "../../redact/redact.h"
#include "../config/config.h"
#include "tfile.h"
#include "../buffer/writer.h"

struct sw_ingest;

/* redactor (borrowed, may be NULL) is applied to every record before it enters a chunk. */
int sw_ingest_create(const struct sw_config *cfg, struct sw_writer *w,
                     const struct sw_redactor *redactor, size_t max_line,
                     struct sw_ingest **out) SW_MUST_CHECK;
void sw_ingest_destroy(struct sw_ingest *ing);

/* Feeds [data, data+len) which starts at file offset f->read_off. Consumes complete lines; if
 * `force` is set, also consumes a trailing incomplete line (buffer full: as a piece of an
 * overlong line; at release: as the file's last line). Returns bytes consumed. */
size_t sw_ingest_feed(struct sw_ingest *ing, struct sw_tfile *f, const char *data, size_t len,
                      int force, int at_release);
/* Emits all pending slots of f as records (the file will get no more bytes). */
void sw_ingest_flush_pending(struct sw_ingest *ing, struct sw_tfile *f);
/* Seals f's open chunk (if any) and submits it with f's state; with `forget`, also submits
 * the removal of f's state. State-only commits (no records) are submitted when `force`. */
int sw_ingest_seal(struct sw_ingest *ing, struct sw_tfile *f, int force, int forget) SW_MUST_CHECK;
/* Switches f's multiline preset (a pod's spillway.io/multiline): the group pending so far is
 * finished as it is. */
void sw_ingest_set_preset(struct sw_ingest *ing, struct sw_tfile *f, enum sw_ml_preset p);
/* Seals chunks past max_wait and flushes multiline groups past their timeout. */
void sw_ingest_tick(struct sw_ingest *ing, struct sw_tfile *files, int64_t now_ms);
/* Restores a stored position: offset, and the pending slots' start offsets and times, so that
 * reading resumes at the earliest slot start and replays up to offset (see tail/tfile.h). */
int sw_ingest_restore_pending(struct sw_tfile *f, const void *p, size_t n,
                              uint64_t offset) SW_MUST_CHECK;
void sw_ingest_file_free(struct sw_tfile *f);
/* The redaction context records go through (NULL without a redactor), lent to the reader for
 * what else leaves the agent about a file: its label values and the path its log lines quote
 * (computed once per file). Loop thread; a result is valid until the context's next use. */
struct sw_redact_ctx *sw_ingest_redact_ctx(struct sw_ingest *ing);
/* Extraction, filters and log metrics (NULL: none configured), for /metrics. Loop thread. */
struct sw_process *sw_ingest_process(struct sw_ingest *ing);
/* Raw bytes in open chunks. */
uint64_t sw_ingest_open_bytes(const struct sw_ingest *ing);
int64_t sw_ingest_now_ms(void);

#endif
