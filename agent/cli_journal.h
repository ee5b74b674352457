/* cli_journal.h - the journald sources in `spillway status` (cli.c). */
#ifndef SW_CLI_JOURNAL_H
#define SW_CLI_JOURNAL_H

#include <cjson/cJSON.h>

#include "buffer/buffer.h"
#include "config/config.h"

/* Moves the journals' rows out of root's "files" into "journals": per journald source its
 * stored cursor, entries consumed, the time of the last entry committed, the newest entry of
 * the journal now and the lag between them (seconds; -1 when the journal cannot be opened). */
void sw_cli_status_journals(cJSON *root, const struct sw_config *cfg, struct sw_db *db);
/* The text form of it (nothing without journald sources). */
void sw_cli_print_journals(const cJSON *root);

#endif
