/* agent.h - `spillway run`: wires config, buffer writer, tail/ingest and sinks on one loop.
 *
 * Threads: the loop thread (tail, ingest, timers, signals), the writer thread (zstd + SQLite
 * commits), one thread per file sink. Shutdown on SIGTERM/SIGINT: stop reading, seal open
 * chunks, commit, let sinks ship what they can within the deadline, exit 0 within 5 s.
 */
#ifndef SW_AGENT_H
#define SW_AGENT_H

#include <stdint.h>

#include "config/config.h"

/* Runs until a stop signal. Another agent holding data_dir's lock (buffer/lock.h) makes it return
 * 1 at once, or after waiting up to wait_lock_ms for it (0: no wait). Returns a process exit
 * code. */
int sw_agent_run(const struct sw_config *cfg, uint64_t wait_lock_ms);

#endif
