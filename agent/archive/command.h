/* command.h - `spillway archive list|search|restore` (see docs/archive.md). */
#ifndef SW_ARCH_COMMAND_H
#define SW_ARCH_COMMAND_H

struct sw_config;

/* What the command line above lends the command (it lives above this folder). */
struct sw_arch_cli {
  const char *usage;                              /* `spillway --help` */
  const char *default_config;                     /* when no -c is given */
  struct sw_config *(*load)(const char *path);    /* errors printed; NULL on failure */
};

/* argv[1] is "archive"; returns the exit status. */
int sw_cli_archive(int argc, char **argv, const struct sw_arch_cli *cli);

#endif
