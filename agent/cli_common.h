/* cli_common.h - what every command of the command line shares (cli.c, cli_search.c): the help
 * text, the default configuration path and loading a configuration with its errors printed. */
#ifndef SW_CLI_COMMON_H
#define SW_CLI_COMMON_H

struct sw_config;

/* `spillway --help`; also the man page's source (packaging/deb/mkman.py). */
extern const char sw_cli_usage[];

/* The default config path: ./spillway.yaml if it exists, else /etc/spillway/spillway.yaml. */
const char *sw_cli_default_config(void);
/* Loads a config, printing every problem as "FILE: key.path: reason" (and, when no -c was given
 * and no default exists, every path tried); NULL on failure. */
struct sw_config *sw_cli_load(const char *path);

#endif
