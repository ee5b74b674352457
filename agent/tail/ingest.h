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
/* A source's runtime part (its multiline start pattern compiled). SW_ECONFIG: bad pattern. */
int sw_ingest_source_init(struct sw_source_rt *rt, const struct sw_source_conf *c, char *err,
                          size_t errlen) SW_MUST_CHECK;
void sw_ingest_source_free(struct sw_source_rt *rt);
/* 1 while reading must wait: the writer is behind (SW_INFLIGHT_MAX queued), the disk under
 * data_dir is full, or (when_full: block) the buffer with what is queued and open reached
 * max_bytes. The bytes stay in the sources; the writer's progress wakes the readers. */
int sw_ingest_blocked(const struct sw_ingest *ing);

/* Feeds [data, data+len) which starts at file offset f->read_off. Consumes complete lines; if
 * `force` is set, also consumes a trailing incomplete line (buffer full: as a piece of an
 * overlong line; at release: as the file's last line). Returns bytes consumed. */
size_t sw_ingest_feed(struct sw_ingest *ing, struct sw_tfile *f, const char *data, size_t len,
                      int force, int at_release);
/* One journal entry (agent/journal/): a whole logical line at position `pos` of its journal
 * (entries counted from the first read), in its stream f: multiline, redaction, the chunk.
 * While f replays (sw_ingest_restore_pending), records it completes are suppressed. Seals
 * are left to the caller (f->seal_wanted), at batch ends. now_ns: read time. */
void sw_ingest_entry(struct sw_ingest *ing, struct sw_tfile *f, int64_t ts, const char *msg,
                     size_t len, uint64_t pos, int64_t now_ns, int64_t now_ms);
/* f's pending slots as sw_ingest_restore_pending takes them back. */
int sw_ingest_pending(const struct sw_tfile *f, struct sw_buf *out) SW_MUST_CHECK;
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
/* Where a replay of stored pending slots p must begin: the earliest slot start, else offset.
 * SW_ECORRUPT as sw_ingest_restore_pending. */
int sw_ingest_pending_from(const void *p, size_t n, uint64_t offset, uint64_t *from) SW_MUST_CHECK;
/* 1 when a slot of f holds part of a record (a partial line, a multiline group). */
int sw_ingest_has_pending(const struct sw_tfile *f);
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
