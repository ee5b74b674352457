/* cli_archive.h - `spillway archive list|search|restore` (see docs/archive.md). */
#ifndef SW_CLI_ARCHIVE_H
#define SW_CLI_ARCHIVE_H

/* argv[1] is "archive"; returns the exit status. */
int sw_cli_archive(int argc, char **argv);

#endif
