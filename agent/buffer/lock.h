/* lock.h - one agent per data_dir: an exclusive flock on data_dir/spillway.lock.
 *
 * Two agents on one data_dir would each read every file and ship every record (their buffers
 * are one database, their offsets race). `spillway run` takes the lock before it opens the
 * buffer and holds it for the life of the process, across live reloads (data_dir cannot change
 * on reload); the kernel drops it when the process exits, however it exits, so a stale lock
 * file never blocks anyone. The holder writes its PID (and host name, which tells pods apart
 * when every agent is PID 1) into the file for the message of the one refused. Commands that
 * only read (status, search, check) or take their own locks (rotate) never touch it.
 * Not the flock retention takes on the data_dir directory itself: that one serialises
 * retention passes between the agent and `spillway rotate`.
 */
#ifndef SW_DATALOCK_H
#define SW_DATALOCK_H

#include <stddef.h>

#include "../../common/error.h"

#define SW_DATALOCK_NAME "spillway.lock"

struct sw_datalock_holder {
  long pid;      /* 0: not written yet (the holder is between its flock and its write) */
  char host[64]; /* "" when unknown */
};

/* Opens data_dir/spillway.lock (creating data_dir and the file) into *fd (caller closes with
 * sw_datalock_close) and tries the lock once: SW_OK held (our PID written), SW_EAGAIN held by
 * another process (*holder filled; retry with sw_datalock_try), SW_EIO with err set. */
int sw_datalock_open(const char *data_dir, int *fd, struct sw_datalock_holder *holder, char *err,
                     size_t errlen) SW_MUST_CHECK;
/* One more attempt on an fd from sw_datalock_open: SW_OK, SW_EAGAIN (holder filled) or SW_EIO. */
int sw_datalock_try(int fd, struct sw_datalock_holder *holder) SW_MUST_CHECK;
/* Releases the lock (if held) and closes fd; -1 is fine. */
void sw_datalock_close(int fd);

#endif
