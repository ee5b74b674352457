/* status.h - the journald sources in `spillway status` (agent/cli.c). */
#ifndef SW_JOURNAL_STATUS_H
#define SW_JOURNAL_STATUS_H

#include <cjson/cJSON.h>

#include "../buffer/buffer.h"
#include "../config/config.h"

/* Moves the journals' rows out of root's "files" into "journals": per journald source its
 * stored cursor, entries consumed, the time of the last entry committed, the newest entry of
 * the journal now and the lag between them (seconds; -1 when the journal cannot be opened). */
void sw_journal_status(cJSON *root, const struct sw_config *cfg, struct sw_db *db);
/* The text form of it (nothing without journald sources). */
void sw_journal_status_print(const cJSON *root);

#endif
