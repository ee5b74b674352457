/* cli.h - the `spillway` command line: argument parsing and the short commands
 * (check, status, version, config-docs). `run` lives in agent.c. */
#ifndef SW_CLI_H
#define SW_CLI_H

int sw_cli_main(int argc, char **argv);

struct sw_config;
/* The default config path: ./spillway.yaml if it exists, else /etc/spillway/spillway.yaml. */
const char *sw_cli_default_config(void);
/* Loads a config, printing every problem as "FILE: key.path: reason"; NULL on failure. */
struct sw_config *sw_cli_load(const char *path);

/* `spillway search` (cli_search.c); argv[1] is "search". */
int sw_cli_search(int argc, char **argv);

#endif
