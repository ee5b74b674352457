/* cli_common.c - what every command shares: the help text and loading the configuration. */
#include "cli_common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

const char sw_cli_usage[] =
    "Usage: spillway COMMAND [OPTIONS]\n"
    "\n"
    "Log shipping and retention agent: tails Docker json-file, Kubernetes CRI and plain log\n"
    "files and reads the systemd journal, buffers every record durably in SQLite and ships it\n"
    "to its sinks.\n"
    "\n"
    "Commands:\n"
    "  run     [-c FILE] [--wait-lock DURATION]\n"
    "                                     run the agent until SIGTERM/SIGINT; SIGHUP reloads\n"
    "                                     FILE; serves /health, /ready, /metrics (server.listen),\n"
    "                                     and /api/v1/search and Loki's query API for Grafana\n"
    "                                     and logcli (server.enable_search; docs/loki-api.md).\n"
    "                                     One agent per data_dir: while another holds its lock\n"
    "                                     (data_dir/spillway.lock) exit 1 naming its pid, or with\n"
    "                                     --wait-lock wait up to DURATION (e.g. 60s) for it to\n"
    "                                     exit, /ready answering 503 meanwhile\n"
    "  check   [-c FILE] [--db]           validate a config (sources and their extract, filters,\n"
    "                                     log_metrics, sinks and their match...); exit 1 with\n"
    "                                     \"FILE: key.path: reason\"\n"
    "                                     --db: also check data_dir's spillway.db (reads it all); exit 1 if damaged\n"
    "  status  [-c FILE] [--output text|json]\n"
    "                                     buffer size, per-sink backlog, tailed files and offsets,\n"
    "                                     journal cursors and how far behind the journal they are\n"
    "  rotate  [-c FILE] [--dry-run]      apply rotation/compression/retention once; --dry-run\n"
    "                                     prints the plan (one line per action) and changes nothing\n"
    "  redact  [-c FILE]                  redact stdin to stdout with the configured rules, to try\n"
    "                                     them before deploying (match counts on stderr)\n"
    "  search  [-c FILE | --db FILE] [--since 1h|RFC3339] [--until ..] [--label k=v|k!=v|k=~re|k!~re]..\n"
    "          [--stream stdout|stderr|file] [--limit N] [--count] [--follow] [-i]\n"
    "          [--output text|raw|json] REGEX\n"
    "                                     grep the buffer (and the shipped history kept by\n"
    "                                     buffer.keep_shipped) in time order; exit 0 on a match,\n"
    "                                     1 on none, 2 on an error (like grep). text shows\n"
    "                                     control characters as escapes (\\e, \\r, \\x9b), raw\n"
    "                                     prints the bytes as they are; --db FILE reads a copied\n"
    "                                     database (a directory: its spillway.db)\n"
    "  archive list    [-c FILE] --sink S3SINK [--since ..] [--until ..] [--label ..].. [--output text|json]\n"
    "                                     the S3 sink's objects that can hold matching records,\n"
    "                                     from their manifests (size, records, time range)\n"
    "  archive search  [-c FILE] --sink S3SINK | --files GLOB [--since ..] [--until ..]\n"
    "          [--label ..].. [--count] [--limit N] [-i] [--threads N] [--output text|json] REGEX\n"
    "                                     grep the archive in time order (like search); --files:\n"
    "                                     local .zst/.gz/plain archives that retention wrote\n"
    "  archive restore [-c FILE] --sink S3SINK (--to SINK | --dry-run | --verify-only)\n"
    "          [--since ..] [--until ..] [--label ..]..\n"
    "                                     check each object against its manifest, then send its\n"
    "                                     records to a loki, elasticsearch or file sink exactly\n"
    "                                     once (rerun after a crash to resume); exit 2 names a\n"
    "                                     damaged object. --verify-only checks and sends nothing\n"
    "  archive rebuild-manifests [-c FILE] --sink S3SINK\n"
    "                                     write the manifest of each object that has none (from\n"
    "                                     the object as it is now), so that it can be restored\n"
    "  replay-dead-letters [-c FILE] SINK requeue what SINK's server refused for good (see\n"
    "                                     `status`); the running agent (or the next start) resends it\n"
    "  health  [-c FILE] [--address HOST:PORT] [--ready]\n"
    "                                     probe the running agent's /health (or /ready); exit\n"
    "                                     0 on 200, 1 otherwise (container health checks)\n"
    "  config-docs                        print the configuration reference (Markdown)\n"
    "  version                            print the version\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   configuration file (YAML or JSON); default ./spillway.yaml,\n"
    "                      then /etc/spillway/spillway.yaml\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 success, 1 invalid configuration or runtime failure, 2 usage error or\n"
    "unreadable database.\n";

/* The last default; sw_cli_load recognises this very pointer (not a -c that names the same
 * path) to say which paths were tried when no -c was given. */
static const char k_etc_config[] = "/etc/spillway/spillway.yaml";

const char *sw_cli_default_config(void) {
  if (access("spillway.yaml", F_OK) == 0) return "spillway.yaml";
  return k_etc_config;
}

struct sw_config *sw_cli_load(const char *path) {
  struct sw_config *cfg = NULL;
  struct sw_conf_errors errs = {0};
  if (path == k_etc_config && access(path, F_OK) != 0) {
    fprintf(stderr, "spillway: no configuration file: tried ./spillway.yaml, then %s (%s); "
                    "name one with -c FILE\n", path, strerror(errno));
    return NULL;
  }
  if (sw_config_load(path, &cfg, &errs) != 0) {
    for (size_t i = 0; i < errs.n; i++) fprintf(stderr, "%s\n", errs.msgs[i]);
    if (errs.n == 0) fprintf(stderr, "%s: cannot load configuration\n", path);
    sw_conf_errors_free(&errs);
    return NULL;
  }
  sw_conf_errors_free(&errs);
  return cfg;
}
