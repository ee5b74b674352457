/* cli.h - the `spillway` command line: argument parsing and the short commands
 * (check, status, version, config-docs). `run` lives in agent.c. */
#ifndef SW_CLI_H
#define SW_CLI_H

int sw_cli_main(int argc, char **argv);

#endif
