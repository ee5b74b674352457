/* command.c - `spillway archive list|search|restore`: options -> catalog -> output. */
#include "command.h"

#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/sha256.h"
#include "../../common/timefmt.h"
#include "../../search/print.h"
#include "asearch.h"
#include "catalog.h"
#include "restore.h"
#include "../config/config.h"

struct aopts {
  const char *cmd, *config, *sink, *to, *since, *until, *output, *files, *pattern;
  const char *labels[64];
  size_t nlabels;
  unsigned long long limit, threads;
  int count, icase, dry_run, verify_only;
};

static int usage(const char *msg, const char *arg) {
  fprintf(stderr, "spillway archive: %s%s%s\n(see spillway --help)\n", msg, arg ? ": " : "", arg ? arg : "");
  return 2;
}

static int parse(int argc, char **argv, struct aopts *a, const struct sw_arch_cli *cli) {
  if (argc < 3) return usage("needs list, search, restore or rebuild-manifests", NULL);
  a->cmd = argv[2];
  a->output = "text";
  int search = !strcmp(a->cmd, "search"), restore = !strcmp(a->cmd, "restore");
  if (!search && !restore && strcmp(a->cmd, "list") && strcmp(a->cmd, "rebuild-manifests"))
    return usage("unknown archive command", a->cmd);
  int rest = 0;
  for (int i = 3; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!rest && !strcmp(o, name) && v && (i++, 1))
    if (!rest && (!strcmp(o, "-h") || !strcmp(o, "--help"))) {
      fputs(cli->usage, stdout);
      exit(0);
    } else if (OPT("-c") || OPT("--config")) {
      a->config = v;
    } else if (OPT("--sink")) {
      a->sink = v;
    } else if (OPT("--since")) {
      a->since = v;
    } else if (OPT("--until")) {
      a->until = v;
    } else if (OPT("--label") || OPT("-l")) {
      if (a->nlabels == 64) return usage("too many --label", NULL);
      a->labels[a->nlabels++] = v;
    } else if (OPT("--output") || OPT("-o")) {
      a->output = v;
      if (strcmp(v, "text") && strcmp(v, "json")) return usage("--output must be text or json", v);
    } else if (OPT("--threads")) {
      char *end;
      a->threads = strtoull(v, &end, 10);
      if (*end || !*v || a->threads > 64) return usage("--threads needs a number from 0 to 64", v);
    } else if (search && (OPT("--limit") || OPT("-n"))) {
      char *end;
      a->limit = strtoull(v, &end, 10);
      if (*end || !*v || v[0] == '-') return usage("--limit needs a positive number", v);
    } else if (search && OPT("--files")) {
      a->files = v;
    } else if (search && !rest && !strcmp(o, "--count")) {
      a->count = 1;
    } else if (search && !rest && (!strcmp(o, "-i") || !strcmp(o, "--ignore-case"))) {
      a->icase = 1;
    } else if (restore && OPT("--to")) {
      a->to = v;
    } else if (restore && !rest && !strcmp(o, "--dry-run")) {
      a->dry_run = 1;
    } else if (restore && !rest && !strcmp(o, "--verify-only")) {
      a->verify_only = 1;
    } else if (search && !rest && !strcmp(o, "--")) {
      rest = 1;
    } else if (search && (rest || o[0] != '-' || !o[1]) && !a->pattern) {
      a->pattern = o;
    } else {
      return usage("unknown option or missing value", o);
    }
#undef OPT
  }
  if (search && !a->pattern) return usage("missing REGEX (use '' to match every record)", NULL);
  if (!a->files && !a->sink) return usage(search ? "needs --sink NAME (an s3 sink) or --files GLOB" : "needs --sink NAME (an s3 sink)", NULL);
  if (a->files && a->sink) return usage("--files and --sink do not go together", NULL);
  if (restore && !a->to && !a->verify_only && !a->dry_run) return usage("restore needs --to SINK", NULL);
  if (a->dry_run && a->verify_only) return usage("--dry-run and --verify-only do not go together", NULL);
  return 0;
}

static void fmt_time(int64_t ns, char out[40]) {
  if (ns == INT64_MIN || ns == INT64_MAX) {
    snprintf(out, 40, "-");
    return;
  }
  out[sw_time_format_rfc3339(ns, out)] = 0;
}

static int cmd_list(const struct aopts *a, const struct sw_arch_catalog *cat) {
  int json = !strcmp(a->output, "json");
  uint64_t bytes = 0, records = 0;
  struct sw_buf line;
  sw_buf_init(&line, SIZE_MAX);
  if (!json) printf("%-12s %-10s %-30s %-30s %s\n", "BYTES", "RECORDS", "FIRST", "LAST", "OBJECT");
  for (size_t i = 0; i < cat->n; i++) {
    const struct sw_arch_obj *o = &cat->o[i];
    char t0[40], t1[40];
    fmt_time(o->has_manifest ? o->m.ts_min : INT64_MIN, t0);
    fmt_time(o->has_manifest ? o->m.ts_max : INT64_MIN, t1);
    bytes += o->size;
    records += o->has_manifest ? o->m.records : 0;
    if (!json) {
      char rec[24];
      snprintf(rec, sizeof rec, o->has_manifest ? "%" PRIu64 : "?", o->m.records);
      printf("%-12" PRIu64 " %-10s %-30s %-30s %s%s%s%s\n", o->size, rec, t0, t1, o->key,
             o->has_manifest ? "" : " (", o->has_manifest ? "" : o->why, o->has_manifest ? "" : ")");
      continue;
    }
    sw_buf_reset(&line);
    int rc = sw_buf_append(&line, "{\"object\":\"", 11);
    if (!rc) rc = sw_buf_put_json_str(&line, o->key, strlen(o->key), NULL);
    if (!rc) rc = sw_buf_printf(&line, "\",\"bytes\":%" PRIu64 ",\"manifest\":%s", o->size,
                                o->has_manifest ? "true" : "false");
    if (!rc && o->has_manifest) {
      rc = sw_buf_printf(&line, ",\"records\":%" PRIu64 ",\"ts_min\":\"%s\",\"ts_max\":\"%s\",\"label_sets\":[",
                         o->m.records, t0, t1);
      for (size_t k = 0; k < o->m.nsets && !rc; k++)
        rc = sw_buf_printf(&line, "%s%s", k ? "," : "", o->m.sets[k]);
      if (!rc) rc = sw_buf_printf(&line, "],\"label_sets_complete\":%s", o->m.sets_complete ? "true" : "false");
    } else if (!rc) {
      rc = sw_buf_append(&line, ",\"why\":\"", 8);
      if (!rc) rc = sw_buf_put_json_str(&line, o->why, strlen(o->why), NULL);
      if (!rc) rc = sw_buf_putc(&line, '"');
    }
    if (!rc) rc = sw_buf_append(&line, "}\n", 2);
    if (rc || fwrite(line.data, 1, line.len, stdout) != line.len) {
      sw_buf_free(&line);
      return 1;
    }
  }
  sw_buf_free(&line);
  fprintf(stderr, "%zu of %" PRIu64 " objects can hold matching records: %" PRIu64 " bytes, %" PRIu64
                  " records\n", cat->n, cat->listed, bytes, records);
  return fflush(stdout) ? 1 : 0;
}

static void report(void *arg, const char *key, const char *why) {
  (void)arg;
  fprintf(stderr, "spillway archive: %s: %s\n", key, why);
}

static int cmd_search(const struct aopts *a, struct sw_s3c *s, const struct sw_arch_catalog *cat,
                      const struct sw_search_query *q) {
  struct sw_search_printer p;
  sw_search_printer_init(&p, !strcmp(a->output, "json") ? SW_SEARCH_OUT_JSON : SW_SEARCH_OUT_TEXT);
  struct sw_arch_search_opts so = {.threads = (unsigned)a->threads, .limit = a->limit,
                                   .count_only = a->count, .emit = sw_search_printer_emit, .arg = &p};
  struct sw_arch_search_stats st;
  char err[1024] = "";
  int64_t t0 = sw_time_mono_ns();
  int rc = sw_arch_search(s, cat, q, &so, report, NULL, &st, err, sizeof err);
  double secs = (double)(sw_time_mono_ns() - t0) / 1e9;
  sw_search_printer_flush(&p);
  if (a->count) printf("%" PRIu64 "\n", st.matches);
  if (fflush(stdout)) p.failed = 1;
  sw_search_printer_free(&p);
  if (rc) {
    fprintf(stderr, "spillway archive search: %s\n", err);
    return 2;
  }
  fprintf(stderr, "searched %" PRIu64 " objects, %" PRIu64 " records, %.1f MB in %.2f s (%.0f MB/s)\n",
          st.objects, st.records, (double)st.raw_bytes / 1e6, secs, secs > 0 ? (double)st.raw_bytes / 1e6 / secs : 0.0);
  if (st.match_limit_skipped)
    fprintf(stderr, "spillway archive search: note: %" PRIu64 " records skipped: the regex hit PCRE2's match limit on them\n",
            st.match_limit_skipped);
  return st.failed || st.bad_lines || p.failed ? 2 : st.matches ? 0 : 1;
}

/* Manifests for the objects that have none (uploaded before manifests existed, or whose
 * manifest was lost), made from the objects as they are now. */
static int cmd_rebuild(struct sw_s3c *s, const struct sw_arch_catalog *cat) {
  struct sw_s3c_conn *k = sw_s3c_conn_new(s);
  if (!k) return 1;
  struct sw_buf blob, js;
  sw_buf_init(&blob, SIZE_MAX);
  sw_buf_init(&js, SIZE_MAX);
  uint64_t rebuilt = 0, failed = 0;
  int rc = SW_OK;
  for (size_t i = 0; i < cat->n && rc != SW_ENOMEM; i++) {
    const struct sw_arch_obj *o = &cat->o[i];
    if (!o->no_manifest) {
      if (!o->has_manifest) printf("skipped %s: %s (delete it to have it rebuilt)\n", o->key, o->why);
      continue;
    }
    char err[1024], hex[65], mkey[4200];
    struct sw_manifest_acc acc;
    sw_manifest_acc_init(&acc);
    sw_buf_reset(&js);
    rc = sw_s3c_get(k, o->key, &blob, err, sizeof err);
    if (!rc && (rc = sw_manifest_acc_object(&acc, blob.data, blob.len, o->gzip)))
      snprintf(err, sizeof err, "does not decompress (%s)", sw_strerror(rc));
    if (!rc && acc.bad_lines) {
      snprintf(err, sizeof err, "%" PRIu64 " lines are not records", acc.bad_lines);
      rc = SW_ECORRUPT;
    }
    if (!rc) {
      sw_sha256_hex(blob.data, blob.len, hex);
      struct sw_manifest_meta m = {.object = o->key, .compression = o->gzip ? "gzip" : "zstd", .agent_id = "",
                                   .host = "", .object_bytes = blob.len, .object_sha256 = hex};
      sw_manifest_key_range(o->key, &m.first_chunk, &m.last_chunk);
      snprintf(mkey, sizeof mkey, "%s%s", o->key, SW_MANIFEST_SUFFIX);
      rc = sw_manifest_write(&acc, &m, &js);
      if (!rc) rc = sw_s3c_put(k, mkey, js.data, js.len, "application/json", err, sizeof err);
      else snprintf(err, sizeof err, "%s", sw_strerror(rc));
    }
    if (rc) {
      failed++;
      printf("FAILED %s: %s\n", o->key, err);
    } else {
      rebuilt++;
      printf("rebuilt %s records=%" PRIu64 "\n", o->key, acc.records);
    }
    sw_manifest_acc_free(&acc);
  }
  sw_buf_free(&blob);
  sw_buf_free(&js);
  sw_s3c_conn_free(k);
  printf("%" PRIu64 " manifests rebuilt, %" PRIu64 " failed\n", rebuilt, failed);
  return fflush(stdout) || rc == SW_ENOMEM ? 1 : failed ? 2 : 0;
}

/* --files: the local files the glob names, oldest first, as a catalog without manifests. */
static int local_catalog(const char *pattern, struct sw_arch_catalog *cat) {
  glob_t g;
  memset(cat, 0, sizeof *cat);
  int gr = glob(pattern, 0, NULL, &g);
  if (gr == GLOB_NOMATCH) return SW_OK;
  if (gr) return SW_EIO;
  if (!(cat->o = calloc(g.gl_pathc + 1, sizeof *cat->o))) {
    globfree(&g);
    return SW_ENOMEM;
  }
  for (size_t i = 0; i < g.gl_pathc; i++) {
    struct stat st;
    if (stat(g.gl_pathv[i], &st) || !S_ISREG(st.st_mode)) continue;
    struct sw_arch_obj *o = &cat->o[cat->n];
    if (!(o->key = strdup(g.gl_pathv[i]))) break;
    o->size = (uint64_t)st.st_size;
    o->m.ts_min = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec; /* for the order only */
    cat->n++;
  }
  globfree(&g);
  cat->listed = cat->n;
  for (size_t i = 1; i < cat->n; i++) /* insertion sort by mtime: a handful of files */
    for (size_t j = i; j > 0 && cat->o[j].m.ts_min < cat->o[j - 1].m.ts_min; j--) {
      struct sw_arch_obj t = cat->o[j];
      cat->o[j] = cat->o[j - 1];
      cat->o[j - 1] = t;
    }
  for (size_t i = 0; i < cat->n; i++) cat->o[i].m.ts_min = 0;
  return SW_OK;
}

int sw_cli_archive(int argc, char **argv, const struct sw_arch_cli *cli) {
  struct aopts a = {0};
  int code = parse(argc, argv, &a, cli);
  if (code) return code;
  struct sw_search_query q;
  char err[1024] = "";
  if (sw_search_query_init(&q, a.pattern ? a.pattern : "", a.icase ? SW_SEARCH_ICASE : 0, err, sizeof err)) {
    fprintf(stderr, "spillway archive: bad REGEX: %s\n", err);
    return 2;
  }
  code = 2;
  struct sw_config *cfg = NULL;
  struct sw_s3c *s = NULL;
  struct sw_arch_catalog cat = {0};
  int64_t now = sw_time_now_ns();
  if (a.since && sw_search_parse_time(a.since, now, &q.since)) {
    usage("--since needs RFC 3339 or a duration like 15m, 1h, 2d", a.since);
    goto done;
  }
  if (a.until && sw_search_parse_time(a.until, now, &q.until)) {
    usage("--until needs RFC 3339 or a duration like 15m, 1h, 2d", a.until);
    goto done;
  }
  /* A restore's state is kept per plan, and a duration would make every rerun (the resume
   * after a crash among them) a plan of its own that sends everything again. */
  int64_t ignored;
  if (a.to && ((a.since && sw_time_parse_rfc3339(a.since, strlen(a.since), &ignored)) ||
               (a.until && sw_time_parse_rfc3339(a.until, strlen(a.until), &ignored)))) {
    usage("restore --to takes --since and --until as RFC 3339 times, not durations (a rerun must be the same plan)",
          NULL);
    goto done;
  }
  for (size_t i = 0; i < a.nlabels; i++)
    if (sw_search_query_label(&q, a.labels[i], err, sizeof err)) {
      fprintf(stderr, "spillway archive: %s\n", err);
      goto done;
    }
  if (a.files) {
    if (local_catalog(a.files, &cat)) {
      fprintf(stderr, "spillway archive: --files %s: cannot expand the pattern\n", a.files);
      goto done;
    }
    code = cmd_search(&a, NULL, &cat, &q);
    goto done;
  }
  code = 1;
  if (!(cfg = cli->load(a.config ? a.config : cli->default_config))) goto done;
  const struct sw_sink_conf *sc = sw_config_sink(cfg, a.sink);
  if (!sc || sc->type != SW_SINK_S3) {
    fprintf(stderr, "spillway archive: --sink %s: %s\n", a.sink, sc ? "not an s3 sink" : "no such sink in the configuration");
    code = 2;
    goto done;
  }
  const struct sw_sink_conf *to = a.to ? sw_config_sink(cfg, a.to) : NULL;
  if (a.to && (!to || to->type == SW_SINK_S3)) {
    fprintf(stderr, "spillway archive: --to %s: %s\n", a.to,
            to ? "an s3 sink: restore into loki, elasticsearch or a file sink" : "no such sink in the configuration");
    code = 2;
    goto done;
  }
  if (sw_s3c_new(sc, &s, err, sizeof err)) {
    fprintf(stderr, "spillway archive: %s\n", err);
    goto done;
  }
  struct sw_arch_filter f = {q.since, q.until, q.labels, q.nlabels};
  if (sw_arch_catalog_load(s, sc, &f, a.threads ? (unsigned)a.threads : 8, &cat, err, sizeof err)) {
    fprintf(stderr, "spillway archive: sink %s: %s\n", sc->name, err);
    goto done;
  }
  if (!strcmp(a.cmd, "list")) {
    code = cmd_list(&a, &cat);
  } else if (!strcmp(a.cmd, "rebuild-manifests")) {
    code = cmd_rebuild(s, &cat);
  } else if (!strcmp(a.cmd, "search")) {
    code = cmd_search(&a, s, &cat, &q);
  } else {
    struct sw_arch_restore_opts ro = {.cfg = cfg, .from = sc, .to = to, .q = &q, .dry_run = a.dry_run,
                                      .verify_only = a.verify_only, .threads = (unsigned)a.threads,
                                      .argv = argv, .argc = argc};
    code = sw_arch_restore(s, &cat, &ro);
  }
done:
  sw_arch_catalog_free(&cat);
  sw_s3c_free(s);
  sw_config_free(cfg);
  sw_search_query_free(&q);
  return code;
}
