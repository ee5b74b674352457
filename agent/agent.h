/* agent.h - `spillway run`: wires config, buffer writer, tail/ingest and sinks on one loop.
 *
 * Threads: the loop thread (tail, ingest, timers, signals), the writer thread (zstd + SQLite
 * commits), one thread per file sink. Shutdown on SIGTERM/SIGINT: stop reading, seal open
 * chunks, commit, let sinks ship what they can within the deadline, exit 0 within 5 s.
 */
#ifndef SW_AGENT_H
#define SW_AGENT_H

#include "config.h"

/* Runs until a stop signal. Returns a process exit code. */
int sw_agent_run(const struct sw_config *cfg);

#endif
