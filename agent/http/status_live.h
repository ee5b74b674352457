/* status_live.h - `spillway status` with a running agent: its /metrics merged into the
 * database's status document.
 *
 * The database says what is committed; the agent knows more and fresher: how far it has read
 * each file (committed offsets lag behind by up to a chunk), the files' sizes now, the network
 * sinks' requests, retries and failures, its memory and uptime. Pure: text in, JSON changed. */
#ifndef SW_STATUS_LIVE_H
#define SW_STATUS_LIVE_H

#include <cjson/cJSON.h>

#include "../../common/error.h"

/* Adds to root (the sw_db_status_json document, parsed): "agent" {running, address, version,
 * uptime_seconds, rss_bytes, open_fds, files_not_committed (followed files the database has no
 * row for yet)}; in each "files" entry the agent follows, "read_offset", "live_size" and
 * "live_lag_bytes"; in each "sinks" entry with HTTP figures, "requests", "retries", "failures"
 * {4xx, 5xx, network}. metrics (modified: parsed in place) is the exposition text. now_s is
 * the current Unix time. SW_EPARSE if a line did not parse (the others are merged). */
int sw_status_add_live(cJSON *root, const char *address, char *metrics, double now_s) SW_MUST_CHECK;

#endif
