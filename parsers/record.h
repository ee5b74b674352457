/* record.h - what the parsers produce and the rest of the pipeline carries.
 *
 * A record is one log event: a timestamp, the stream it came from, flags, and the line bytes.
 * Parsers never allocate records; they describe the bytes of one physical line, and the
 * tail/pipeline joins partial lines into records.
 */
#ifndef SW_RECORD_H
#define SW_RECORD_H

#include <stddef.h>
#include <stdint.h>

enum sw_stream {
  SW_STREAM_STDOUT = 0,
  SW_STREAM_STDERR = 1,
  SW_STREAM_FILE = 2 /* plain files have no stdout/stderr */
};

/* Per-record flags, stored with the record in the buffer (one byte with the stream). */
enum sw_rec_flag {
  SW_REC_PARSE_ERROR = 1 << 0, /* line did not parse in the source's format; kept as text */
  SW_REC_TRUNCATED = 1 << 1,   /* record hit max_record_bytes and was split; this is a piece */
  SW_REC_INVALID_UTF8 = 1 << 2 /* line bytes are not valid UTF-8 (kept as they are) */
};

/* Name used in the "stream" field of outputs; never NULL. */
const char *sw_stream_name(int stream);

#endif
