/* cli_search.h - `spillway search`: options -> query, hits -> stdout, grep's exit codes. */
#ifndef SW_CLI_SEARCH_H
#define SW_CLI_SEARCH_H

/* argv[1] is "search". Returns the exit status: 0 a match, 1 none, 2 an error. */
int sw_cli_search(int argc, char **argv);

#endif
