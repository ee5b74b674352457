#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/text.h"
#include "../common/timefmt.h"
#include "agent.h"
#include "archive/command.h"
#include "cli_common.h"
#include "journal/status.h"
#include "cli_search.h"
#include "buffer/buffer.h"
#include "config/config.h"
#include "http/health.h"
#include "http/status_live.h"
#include "retention/retention.h"


struct opts {
  const char *config;
  const char *output;
  const char *sink; /* replay-dead-letters */
  const char *address;
  int dry_run, ready, db; /* check --db */
  uint64_t wait_lock_ms; /* run --wait-lock */
};

static int parse_opts(int argc, char **argv, struct opts *o) {
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) {
      o->config = argv[++i];
    } else if (!strncmp(a, "--config=", 9)) {
      o->config = a + 9;
    } else if (!strcmp(a, "--output") && i + 1 < argc) {
      o->output = argv[++i];
    } else if (!strncmp(a, "--output=", 9)) {
      o->output = a + 9;
    } else if (!strcmp(a, "--dry-run") && !strcmp(argv[1], "rotate")) {
      o->dry_run = 1;
    } else if (!strcmp(a, "--address") && i + 1 < argc && !strcmp(argv[1], "health")) {
      o->address = argv[++i];
    } else if (!strcmp(a, "--db") && !strcmp(argv[1], "check")) {
      o->db = 1;
    } else if (!strcmp(a, "--ready") && !strcmp(argv[1], "health")) {
      o->ready = 1;
    } else if ((!strcmp(a, "--wait-lock") && i + 1 < argc) || !strncmp(a, "--wait-lock=", 12)) {
      const char *v = a[11] == '=' ? a + 12 : argv[++i];
      if (strcmp(argv[1], "run") || sw_parse_duration(v, &o->wait_lock_ms) || !o->wait_lock_ms) {
        fprintf(stderr, "spillway: --wait-lock (run only) wants a duration like 60s, got '%s'\n", v);
        return -1;
      }
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(sw_cli_usage, stdout);
      exit(0);
    } else if (a[0] != '-' && !o->sink && !strcmp(argv[1], "replay-dead-letters")) {
      o->sink = a;
    } else {
      fprintf(stderr, "spillway: unknown option '%s'\n%s", a, sw_cli_usage);
      return -1;
    }
  }
  if (!o->config) o->config = sw_cli_default_config();
  if (!strcmp(argv[1], "replay-dead-letters") && !o->sink) {
    fprintf(stderr, "spillway: replay-dead-letters needs the name of a sink\n");
    return -1;
  }
  if (o->output && strcmp(o->output, "text") && strcmp(o->output, "json")) { /* status */
    fprintf(stderr, "spillway: --output must be text or json\n");
    return -1;
  }
  return 0;
}

/* check --db: opens the buffer read-only (an agent may be running) and runs SQLite's
 * quick_check, which reads every page once. The agent runs the same check at start and
 * salvages what fails it; this tells before. Returns the exit code. */
static int check_db(const struct sw_config *cfg) {
  struct sw_db *db = NULL;
  char err[1024] = "", why[512] = "", path[4200];
  snprintf(path, sizeof path, "%s/spillway.db", cfg->data_dir);
  int rc = sw_db_open(cfg->data_dir, SW_DB_READONLY, &db, err, sizeof err);
  if (rc == SW_ENOTFOUND) {
    printf("%s: none yet (the agent creates it)\n", path);
    return 0;
  }
  if (!rc) rc = sw_db_quick_check(db, why, sizeof why);
  if (rc == SW_ECORRUPT)
    fprintf(stderr, "spillway: %s: damaged: %s; `spillway run` moves it aside and salvages it\n",
            path, why[0] ? why : err);
  else if (rc)
    fprintf(stderr, "spillway: %s\n", err[0] ? err : why);
  else
    printf("%s: ok (quick_check)\n", path);
  sw_db_close(db);
  return rc ? 1 : 0;
}

static int cmd_check(const struct opts *o) {
  struct sw_config *cfg = sw_cli_load(o->config);
  if (!cfg) return 1;
  printf("%s: ok (%zu source%s, %zu sink%s)\n", o->config, cfg->nsources,
         sw_plural(cfg->nsources), cfg->nsinks, sw_plural(cfg->nsinks));
  int code = o->db ? check_db(cfg) : 0;
  sw_config_free(cfg);
  return code;
}

static double num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItem(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItem(o, k);
  return cJSON_IsString(v) ? v->valuestring : "";
}

/* A string of the status as it may be printed to a terminal: file names, label values and
 * servers' error messages come from outside and may hold escape sequences or newlines. Each
 * call reuses one of a few buffers in turn, so a printf may take up to VIS_SLOTS of them. */
#define VIS_SLOTS 8
struct vis {
  struct sw_buf b[VIS_SLOTS];
  unsigned next;
};

static const char *vis(struct vis *v, const char *s) {
  return sw_visible_cstr(&v->b[v->next++ % VIS_SLOTS], s);
}

/* A size for people (KiB, MiB, GiB); same rotation of slots as vis. */
static const char *hb(struct vis *v, double n) {
  struct sw_buf *b = &v->b[v->next++ % VIS_SLOTS];
  char tmp[SW_HUMAN_BYTES_LEN];
  sw_buf_reset(b);
  if (sw_buf_printf(b, "%s", sw_human_bytes(n, tmp)) || sw_buf_putc(b, '\0')) return "?";
  return b->data;
}

static void print_counters(struct vis *v, const char *title, const cJSON *o) {
  const cJSON *it;
  if (cJSON_GetArraySize(o) <= 0) return;
  printf("%s", title);
  cJSON_ArrayForEach(it, o) printf("  %s %.0f", vis(v, it->string), it->valuedouble);
  printf("\n\n");
}

static void print_sinks(struct vis *v, const cJSON *root) {
  const cJSON *it;
  printf("%-20s %-13s %12s %14s %15s %12s  %s\n", "SINK", "TYPE", "ACKED_CHUNK", "BACKLOG_CHUNKS",
         "BACKLOG_RECORDS", "DEAD_LETTERS", "LAST_ERROR");
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "sinks"))
    printf("%-20s %-13s %12.0f %14.0f %15.0f %12.0f  %s\n", vis(v, str(it, "name")),
           str(it, "type"), num(it, "acked_chunk"), num(it, "backlog_chunks"),
           num(it, "backlog_records"), num(it, "dead_letters"),
           *str(it, "last_error") ? vis(v, str(it, "last_error")) : "-");
  int running = cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "agent"), "running"));
  int nhttp = 0;
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "sinks")) nhttp += cJSON_GetObjectItem(it, "requests") != NULL;
  if (!running || !nhttp) return;
  printf("\n%-20s %10s %10s %10s %10s %10s\n", "SINK", "REQUESTS", "RETRIES", "4XX", "5XX",
         "NETWORK");
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "sinks")) {
    const cJSON *fl = cJSON_GetObjectItem(it, "failures");
    if (cJSON_GetObjectItem(it, "requests"))
      printf("%-20s %10.0f %10.0f %10.0f %10.0f %10.0f\n", vis(v, str(it, "name")),
             num(it, "requests"), num(it, "retries"), num(fl, "4xx"), num(fl, "5xx"),
             num(fl, "network"));
  }
}

/* OFFSET is committed to the buffer; READ, SIZE and LAG come from the running agent when it
 * answers (it has read further than it committed), else from the database and a stat. */
static void print_files(struct vis *v, const cJSON *root) {
  const cJSON *it;
  printf("\n%-12s %12s %12s %12s %12s  %s\n", "SOURCE", "OFFSET", "READ", "SIZE", "LAG", "FILE");
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "files")) {
    int has_live = cJSON_GetObjectItem(it, "read_offset") != NULL;
    double size = has_live ? num(it, "live_size") : num(it, "size");
    const char *read = has_live ? hb(v, num(it, "read_offset")) : "-";
    if (size < 0)
      printf("%-12s %12s %12s %12s %12s  %s (not present)\n", vis(v, str(it, "source")),
             hb(v, num(it, "offset")), read, "-", "-", vis(v, str(it, "path")));
    else
      printf("%-12s %12s %12s %12s %12s  %s\n", vis(v, str(it, "source")),
             hb(v, num(it, "offset")), read, hb(v, size),
             hb(v, has_live ? num(it, "live_lag_bytes") : num(it, "lag_bytes")),
             vis(v, str(it, "path")));
  }
}

/* Sizes in binary units and every outside string made visible; --output json keeps bytes and
 * raw strings for scripts. */
static void print_status_text(const cJSON *root) {
  const cJSON *b = cJSON_GetObjectItem(root, "buffer"), *it;
  struct vis v = {0};
  for (int i = 0; i < VIS_SLOTS; i++) sw_buf_init(&v.b[i], 1 << 20);
  printf("agent %s  database %s\n\n", vis(&v, str(root, "agent_id")), vis(&v, str(root, "database")));
  printf("BUFFER  chunks %.0f  records %.0f  bytes %s / max %s", num(b, "chunks"),
         num(b, "records"), hb(&v, num(b, "bytes")), hb(&v, num(b, "max_bytes")));
  printf("  dropped chunks %.0f\n", num(b, "dropped_chunks"));
  printf("SEARCH  shipped history chunks %.0f  bytes %s  oldest record %s\n\n",
         num(b, "history_chunks"), hb(&v, num(b, "history_bytes")),
         *str(b, "oldest_record") ? str(b, "oldest_record") : "-");
  print_counters(&v, "REDACTIONS", cJSON_GetObjectItem(root, "redactions"));
  print_counters(&v, "RETENTION", cJSON_GetObjectItem(root, "retention"));
  print_sinks(&v, root);
  printf("\n%-20s %7s %14s %12s %12s %10s\n", "SOURCE", "FILES", "RECORDS", "BYTES",
         "PARSE_ERRORS", "TRUNCATED");
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "sources"))
    printf("%-20s %7.0f %14.0f %12s %12.0f %10.0f\n", vis(&v, str(it, "name")), num(it, "files"),
           num(it, "records"), hb(&v, num(it, "bytes")), num(it, "parse_errors"),
           num(it, "truncated"));
  print_files(&v, root);
  sw_journal_status_print(root);
  for (int i = 0; i < VIS_SLOTS; i++) sw_buf_free(&v.b[i]);
}

static void print_agent_line(const cJSON *root) {
  const cJSON *a = cJSON_GetObjectItem(root, "agent");
  if (!a) return;
  if (cJSON_IsTrue(cJSON_GetObjectItem(a, "running")))
    printf("AGENT   running at %s  version %s  up %.0f s  rss %.1f MiB  fds %.0f  (live figures "
           "from /metrics)\n\n", str(a, "address"), str(a, "version"), num(a, "uptime_seconds"),
           num(a, "rss_bytes") / 1048576.0, num(a, "open_fds"));
  else
    printf("AGENT   not answering: %s (committed figures only)\n\n", str(a, "reason"));
}

#define STATUS_METRICS_MAX ((size_t)32 << 20)

/* Every configured source is listed, the ones that never committed a record too (a glob that
 * matches nothing must show, with 0 files), with "files": its files present on disk among the
 * buffer's (a running agent's own count replaces it in add_live). */
static void add_sources(cJSON *root, const struct sw_config *cfg) {
  cJSON *srcs = cJSON_GetObjectItem(root, "sources"), *s, *f;
  if (!srcs) return;
  for (size_t i = 0; i < cfg->nsources; i++) {
    const char *name = cfg->sources[i].name;
    int found = 0;
    cJSON_ArrayForEach(s, srcs) found |= !strcmp(str(s, "name"), name);
    if (found) continue;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    static const char *const zero[] = {"records", "bytes", "parse_errors", "truncated"};
    for (size_t k = 0; k < sizeof zero / sizeof *zero; k++) cJSON_AddNumberToObject(o, zero[k], 0);
    cJSON_AddItemToArray(srcs, o);
  }
  cJSON_ArrayForEach(s, srcs) {
    double n = 0;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(root, "files")) n +=
        !strcmp(str(f, "source"), str(s, "name")) && num(f, "size") >= 0;
    cJSON_AddNumberToObject(s, "files", n);
  }
}

/* The running agent's /metrics merged into the status (http/status_live.h), or why not. */
static void add_live(cJSON *root, const struct sw_config *cfg) {
  const char *listen = cfg->server.listen;
  const char *colon = listen ? strrchr(listen, ':') : NULL;
  char err[512] = "", *body = NULL;
  size_t len = 0;
  int status = -1;
  if (!listen || !*listen || !strcmp(listen, "0"))
    snprintf(err, sizeof err, "server.listen is off");
  else if (colon && !strcmp(colon, ":0"))
    snprintf(err, sizeof err, "server.listen has port 0 (the agent's port is unknown)");
  else if ((status = sw_health_get(listen, "/metrics", 2000, STATUS_METRICS_MAX, &body, &len, err,
                                   sizeof err)) >= 0 && status != 200)
    snprintf(err, sizeof err, "%s/metrics answered %d", listen, status);
  if (status == 200 && sw_status_add_live(root, listen, body, (double)time(NULL)) == SW_OK) {
    free(body);
    return;
  }
  if (status == 200) snprintf(err, sizeof err, "%s/metrics: unexpected exposition", listen);
  free(body);
  cJSON_DeleteItemFromObject(root, "agent");
  cJSON *a = cJSON_AddObjectToObject(root, "agent");
  cJSON_AddBoolToObject(a, "running", 0);
  cJSON_AddStringToObject(a, "address", listen ? listen : "");
  cJSON_AddStringToObject(a, "reason", err);
}

/* Marks the sink's dead letters for resending; the agent's shipper picks them up. */
static int cmd_replay(const struct opts *o) {
  struct sw_config *cfg = sw_cli_load(o->config);
  if (!cfg) return 1;
  const struct sw_sink_conf *sc = sw_config_sink(cfg, o->sink);
  if (!sc || sc->type == SW_SINK_FILE) {
    fprintf(stderr, "spillway: %s: no loki, elasticsearch or s3 sink named \"%s\"\n", o->config, o->sink);
    sw_config_free(cfg);
    return 1;
  }
  struct sw_db *db = NULL;
  char err[512];
  uint64_t letters = 0, records = 0;
  int rc = sw_db_open(cfg->data_dir, 0, &db, err, sizeof err);
  if (rc) {
    fprintf(stderr, "spillway: %s\n", err);
    sw_config_free(cfg);
    return 2;
  }
  rc = sw_db_dead_letters_requeue(db, o->sink, &letters, &records);
  if (rc)
    fprintf(stderr, "spillway: cannot requeue: %s\n", sw_db_errmsg(db));
  else
    printf("%s: %llu dead letters (%llu records) queued for resending; the running agent sends them "
           "within seconds, or at its next start\n",
           o->sink, (unsigned long long)letters, (unsigned long long)records);
  sw_db_close(db);
  sw_config_free(cfg);
  return rc ? 2 : 0;
}

/* The buffer's file states hold real paths (identity and offsets need them); what status shows
 * goes through the configured redaction like the labels and the agent's log, so an e-mail in a
 * file name does not leak here. Without a usable redactor the paths are withheld. */
static void redact_status_paths(cJSON *root, const struct sw_config *cfg) {
  struct sw_redactor *r = NULL;
  struct sw_redact_ctx *ctx = NULL;
  char err[512];
  if (sw_config_redactor(cfg, &r, err, sizeof err)) fprintf(stderr, "spillway: redact.%s: paths withheld\n", err);
  else ctx = sw_redact_ctx_create(r);
  cJSON *f;
  cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(root, "files")) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "path");
    if (!cJSON_IsString(p)) continue;
    const char *out = SW_REDACT_LINE_MARKER;
    size_t n = sizeof SW_REDACT_LINE_MARKER - 1;
    if (ctx) (void)sw_redact_line(ctx, p->valuestring, strlen(p->valuestring), 0, &out, &n);
    char *copy = strndup(out, n);
    cJSON_ReplaceItemInObjectCaseSensitive(f, "path", cJSON_CreateString(copy ? copy : SW_REDACT_LINE_MARKER));
    free(copy);
  }
  sw_redact_ctx_destroy(ctx);
  sw_redactor_destroy(r);
}

static int cmd_status(const struct opts *o) {
  struct sw_config *cfg = sw_cli_load(o->config);
  if (!cfg) return 1;
  struct sw_db *db = NULL;
  char err[512];
  int rc;
  for (int tries = 0;; tries++) { /* an agent creating the database: give it a moment */
    rc = sw_db_open(cfg->data_dir, SW_DB_READONLY, &db, err, sizeof err);
    if (rc != SW_EAGAIN || tries >= 40) break;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (rc) {
    fprintf(stderr, "spillway: %s\n", err);
    sw_config_free(cfg);
    return 2;
  }
  const char **names = calloc(cfg->nsinks + 1, sizeof *names);
  const char **types = calloc(cfg->nsinks + 1, sizeof *types);
  for (size_t i = 0; names && types && i < cfg->nsinks; i++) {
    names[i] = cfg->sinks[i].name;
    types[i] = sw_sink_type_name(cfg->sinks[i].type);
  }
  char *json = NULL;
  rc = names && types ? sw_db_status_json(db, names, types, cfg->nsinks, cfg->buffer.max_bytes, &json)
                      : SW_ENOMEM;
  int code = 0;
  if (rc) {
    fprintf(stderr, "spillway: cannot read %s: %s\n", sw_db_path(db), sw_db_errmsg(db));
    code = 2;
  } else {
    cJSON *root = cJSON_Parse(json);
    if (root) sw_journal_status(root, cfg, db);
    if (root) redact_status_paths(root, cfg);
    if (root) add_sources(root, cfg);
    if (root) add_live(root, cfg);
    char *out = root && o->output && !strcmp(o->output, "json") ? cJSON_PrintUnformatted(root) : NULL;
    if (out) {
      printf("%s\n", out);
    } else if (root) {
      print_agent_line(root);
      print_status_text(root);
    }
    free(out);
    cJSON_Delete(root);
  }
  free(json);
  free(names);
  free(types);
  sw_db_close(db);
  sw_config_free(cfg);
  return code;
}

static void setup_log(const struct sw_config *cfg) {
  sw_log_setup(cfg->log.level == SW_LOG_DEBUG  ? SW_L_DEBUG
               : cfg->log.level == SW_LOG_WARN ? SW_L_WARN
               : cfg->log.level == SW_LOG_ERROR ? SW_L_ERROR
                                                : SW_L_INFO,
               cfg->log.format == SW_LOG_FORMAT_JSON);
}

static int cmd_rotate(const struct opts *o) {
  struct sw_config *cfg = sw_cli_load(o->config);
  if (!cfg) return 1;
  setup_log(cfg);
  int rc = sw_retention_cli(cfg, o->dry_run, stdout);
  sw_config_free(cfg);
  return rc;
}

/* Lines of stdin (any length, any bytes) through the configured redaction, to stdout. */
static int cmd_redact(const struct opts *o) {
  struct sw_config *cfg = sw_cli_load(o->config);
  if (!cfg) return 1;
  struct sw_redactor *r = NULL;
  struct sw_redact_ctx *ctx = NULL;
  char err[512];
  int code = 1;
  char *line = NULL;
  size_t cap = 0;
  if (sw_config_redactor(cfg, &r, err, sizeof err)) {
    fprintf(stderr, "%s: redact.%s\n", o->config, err);
    goto done;
  }
  if (!(ctx = sw_redact_ctx_create(r))) goto done;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) >= 0) {
    int nl = n > 0 && line[n - 1] == '\n';
    const char *out;
    size_t olen;
    if (sw_redact_line(ctx, line, (size_t)n - (size_t)nl, 1, &out, &olen))
      fprintf(stderr, "spillway: out of memory: line replaced whole\n");
    if (fwrite(out, 1, olen, stdout) != olen || (nl && putchar('\n') == EOF)) goto done;
  }
  const uint64_t *counts = sw_redact_ctx_counts(ctx);
  for (size_t i = 0; i < sw_redactor_nrules(r); i++)
    if (counts[i]) fprintf(stderr, "%s: %llu\n", sw_redactor_rule_name(r, i), (unsigned long long)counts[i]);
  code = fflush(stdout) == 0 ? 0 : 1;
done:
  free(line);
  sw_redact_ctx_destroy(ctx);
  sw_redactor_destroy(r);
  sw_config_free(cfg);
  return code;
}

/* The address comes from --address, else from server.listen of the config. */
static int cmd_health(const struct opts *o) {
  struct sw_config *cfg = NULL;
  const char *addr = o->address;
  if (!addr) {
    if (!(cfg = sw_cli_load(o->config))) return 1;
    addr = cfg->server.listen;
  }
  char body[256], err[512];
  const char *path = o->ready ? "/ready" : "/health";
  int status = sw_health_probe(addr, path, 3000, body, sizeof body, err, sizeof err);
  if (status < 0)
    fprintf(stderr, "spillway: health: %s\n", err);
  else
    printf("%d %s", status, body[0] ? body : "\n");
  sw_config_free(cfg);
  return status == 200 ? 0 : 1;
}

static int cmd_run(const struct opts *o) {
  struct sw_config *cfg = sw_cli_load(o->config);
  if (!cfg) return 1;
  setup_log(cfg);
  /* Three busy threads need no more than two malloc arenas; each extra arena keeps its own
   * high-water mark of chunk-sized buffers. (A fixed mmap threshold was tried: it halves
   * throughput through page-fault churn.) */
  mallopt(M_ARENA_MAX, 2);
  int rc = sw_agent_run(cfg, o->wait_lock_ms);
  sw_config_free(cfg);
  return rc;
}

int sw_cli_main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    fputs(sw_cli_usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("spillway %s\n", SW_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "config-docs")) {
    sw_config_write_docs(stdout);
    return 0;
  }
  if (!strcmp(cmd, "search")) return sw_cli_search(argc, argv);
  if (!strcmp(cmd, "archive")) {
    struct sw_arch_cli ac = {sw_cli_usage, sw_cli_default_config(), sw_cli_load};
    return sw_cli_archive(argc, argv, &ac);
  }
  struct opts o = {0};
  if (strcmp(cmd, "run") && strcmp(cmd, "check") && strcmp(cmd, "status") &&
      strcmp(cmd, "redact") && strcmp(cmd, "rotate") && strcmp(cmd, "replay-dead-letters") &&
      strcmp(cmd, "health")) {
    fprintf(stderr, "spillway: unknown command '%s'\n%s", cmd, sw_cli_usage);
    return 2;
  }
  if (!strcmp(cmd, "run")) {
    /* A stop signal during start-up must still mean a clean stop: hold SIGTERM/SIGINT pending
     * until the agent's handlers are installed (sw_agent_run unblocks them). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
  }
  if (parse_opts(argc, argv, &o)) return 2;
  if (!strcmp(cmd, "run")) return cmd_run(&o);
  if (!strcmp(cmd, "check")) return cmd_check(&o);
  if (!strcmp(cmd, "redact")) return cmd_redact(&o);
  if (!strcmp(cmd, "rotate")) return cmd_rotate(&o);
  if (!strcmp(cmd, "replay-dead-letters")) return cmd_replay(&o);
  if (!strcmp(cmd, "health")) return cmd_health(&o);
  return cmd_status(&o);
}
