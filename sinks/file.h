/* file.h - the file sink: NDJSON appended to a local file, through its own cursor.
 *
 * Crash safety (the cursor row holds: last shipped chunk id, committed output length, inode):
 *   1. write the batch at the committed length, 2. fdatasync, 3. commit the cursor with the new
 *   length. On start, bytes beyond the committed length (a batch written but not committed
 *   before a crash) are truncated away and shipped again from the cursor: nothing is lost
 *   (chunks are deleted only after the cursor passed them) and nothing is repeated.
 * Runs on its own thread with its own database connection.
 */
#ifndef SW_FILE_SINK_H
#define SW_FILE_SINK_H

#include "../agent/config/config.h"
#include "../agent/buffer/writer.h"

struct sw_file_sink;

int sw_file_sink_start(const struct sw_sink_conf *conf, const char *data_dir, struct sw_writer *w,
                       struct sw_file_sink **out, char *err, size_t errlen) SW_MUST_CHECK;
/* New chunks were committed. Any thread. */
void sw_file_sink_notify(struct sw_file_sink *s);
/* Ships what is buffered until deadline_ms passes, then stops and frees. */
void sw_file_sink_stop(struct sw_file_sink *s, uint64_t deadline_ms);

#endif
