/* jstate.h - what a journald source commits with each chunk, and journal cursors. Pure.
 *
 * A journal is read as one sequence of entries (those its matches select), numbered from 0 in
 * the order sd-journal gives them; `pos` counts the entries consumed. Its entries go to one
 * stream per label set (journal.h), each with its own open chunk and multiline state, so a
 * chunk of one stream is sealed while others still hold entries read earlier. The state
 * committed with every chunk of the journal is therefore:
 *   - the cursor of entry pos-1 (the file state's offset is pos);
 *   - per stream that holds anything not yet committed: its key (hash of the label set), the
 *     position after its last entry that is in a committed chunk (`committed`), and its
 *     pending multiline slots (tail/ingest.h's form: their start positions and times).
 * After a restart the reader goes back from the cursor to the earliest position any stream
 * still needs; an entry of a listed stream is replayed (records suppressed, slots rebuilt)
 * below its `committed` and read as new from there; an entry of any other stream below pos was
 * committed and is skipped. So kill -9 anywhere loses and repeats nothing.
 *
 * Blob: u8 version (1), varint cursor length, cursor bytes, then until the end per stream:
 * u64 little-endian key, varint committed, varint pending length, pending bytes.
 */
#ifndef SW_JSTATE_H
#define SW_JSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../common/error.h"

struct sw_jstate_stream {
  uint64_t key, committed;
  const void *pending; /* points into the parsed blob */
  size_t pending_len;
};

/* Starts a blob with the cursor (may be "" before any entry). */
int sw_jstate_begin(struct sw_buf *b, const char *cursor) SW_MUST_CHECK;
int sw_jstate_add(struct sw_buf *b, uint64_t key, uint64_t committed, const void *pending,
                  size_t pending_len) SW_MUST_CHECK;

/* Parses a blob: *cursor (malloc'd, NUL-terminated; caller frees) and *streams (malloc'd array
 * pointing into p; caller frees). SW_ECORRUPT on a malformed blob, SW_ENOMEM. */
int sw_jstate_parse(const void *p, size_t n, char **cursor, struct sw_jstate_stream **streams,
                    size_t *nstreams) SW_MUST_CHECK;

/* A field of a journal cursor ("s=<seqnum id>;i=<seqnum hex>;b=<boot>;m=<mono hex>;t=<realtime
 * hex>;x=<hash>"): the hex value of `i` or `t` (1), or 0 when absent or malformed. */
int sw_jcursor_hex(const char *cursor, char field, uint64_t *out);
/* The `s=` (sequence number id) of a cursor, copied into out (33 bytes); 0 when absent. */
int sw_jcursor_seqnum_id(const char *cursor, char out[33]);

#endif
