/* cli_search.c - `spillway search`: options -> query, hits -> stdout, grep's exit codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/timefmt.h"
#include "../search/print.h"
#include "../search/search.h"
#include "cli_common.h"
#include "cli_search.h"
#include "config/config.h"

static int usage(const char *msg, const char *arg) {
  fprintf(stderr, "spillway search: %s%s%s\n(see spillway --help)\n", msg, arg ? ": " : "", arg ? arg : "");
  return 2;
}

int sw_cli_search(int argc, char **argv) {
  const char *config = NULL, *dbfile = NULL, *since = NULL, *until = NULL, *output = "text";
  const char *pattern = NULL, *labels[64], *streams[3];
  size_t nlabels = 0, nstreams = 0;
  unsigned long long limit = 0, threads = 0;
  int count = 0, follow = 0, icase = 0, rest = 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!rest && !strcmp(a, name) && v && (i++, 1))
    if (!rest && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
      fputs(sw_cli_usage, stdout);
      return 0;
    } else if (OPT("-c") || OPT("--config")) {
      config = v;
    } else if (OPT("--db")) {
      dbfile = v;
    } else if (OPT("--since")) {
      since = v;
    } else if (OPT("--until")) {
      until = v;
    } else if (OPT("--label") || OPT("-l")) {
      if (nlabels == sizeof labels / sizeof labels[0]) return usage("too many --label", NULL);
      labels[nlabels++] = v;
    } else if (OPT("--stream")) {
      if (nstreams == 3) return usage("too many --stream", NULL);
      streams[nstreams++] = v;
    } else if (OPT("--limit") || OPT("-n")) {
      char *end;
      limit = strtoull(v, &end, 10);
      if (*end || !*v || v[0] == '-') return usage("--limit needs a positive number", v);
    } else if (OPT("--threads")) {
      char *end;
      threads = strtoull(v, &end, 10);
      if (*end || !*v || threads > 64) return usage("--threads needs a number from 0 to 64", v);
    } else if (OPT("--output") || OPT("-o")) {
      output = v;
      if (strcmp(v, "text") && strcmp(v, "json") && strcmp(v, "raw"))
        return usage("--output must be text, raw or json", v);
    } else if (!rest && !strcmp(a, "--count")) {
      count = 1;
    } else if (!rest && !strcmp(a, "--follow")) {
      follow = 1;
    } else if (!rest && (!strcmp(a, "-i") || !strcmp(a, "--ignore-case"))) {
      icase = 1;
    } else if (!rest && !strcmp(a, "--")) {
      rest = 1;
    } else if ((rest || a[0] != '-' || !a[1]) && !pattern) {
      pattern = a;
    } else {
      return usage(pattern && (rest || a[0] != '-') ? "only one REGEX may be given" : "unknown option or missing value", a);
    }
#undef OPT
  }
  if (!pattern) return usage("missing REGEX (use '' to match every record)", NULL);
  if (count && follow) return usage("--count and --follow do not go together", NULL);

  struct sw_search_query q;
  char err[1024];
  if (sw_search_query_init(&q, pattern, icase ? SW_SEARCH_ICASE : 0, err, sizeof err)) {
    fprintf(stderr, "spillway search: bad REGEX: %s\n", err);
    return 2;
  }
  int code = 2;
  struct sw_config *cfg = NULL;
  int64_t now = sw_time_now_ns();
  if (since && sw_search_parse_time(since, now, &q.since)) {
    usage("--since needs RFC 3339 or a duration like 15m, 1h, 2d", since);
    goto done;
  }
  if (until && sw_search_parse_time(until, now, &q.until)) {
    usage("--until needs RFC 3339 or a duration like 15m, 1h, 2d", until);
    goto done;
  }
  for (size_t i = 0; i < nlabels; i++)
    if (sw_search_query_label(&q, labels[i], err, sizeof err)) {
      fprintf(stderr, "spillway search: %s\n", err);
      goto done;
    }
  for (size_t i = 0; i < nstreams; i++)
    if (sw_search_query_stream(&q, streams[i])) {
      usage("--stream must be stdout, stderr or file", streams[i]);
      goto done;
    }
  struct sw_search_opts so = {.threads = (unsigned)threads, .limit = limit, .count_only = count,
                              .follow = follow, .emit = sw_search_printer_emit,
                              .flush = sw_search_printer_flush};
  int dbflags = SW_DB_READONLY;
  if (dbfile) {
    struct stat sb;
    so.data_dir = dbfile;
    /* A directory is a data_dir (its spillway.db); anything else, missing included, is the
     * database file itself, so that errors name the path that was given. */
    if (stat(dbfile, &sb) != 0 || !S_ISDIR(sb.st_mode)) dbflags |= SW_DB_FILE;
  } else {
    if (!(cfg = sw_cli_load(config ? config : sw_cli_default_config()))) goto done;
    so.data_dir = cfg->data_dir;
    sw_search_query_extractable(&q, cfg);
  }
  struct sw_search_printer p;
  sw_search_printer_init(&p, !strcmp(output, "json")  ? SW_SEARCH_OUT_JSON
                             : !strcmp(output, "raw") ? SW_SEARCH_OUT_RAW
                                                      : SW_SEARCH_OUT_TEXT);
  so.arg = &p;
  so.db_flags = dbflags;
  struct sw_search_stats st;
  int rc = sw_search_run(&q, &so, &st, err, sizeof err);
  sw_search_printer_flush(&p);
  sw_search_printer_free(&p);
  if (rc) {
    fprintf(stderr, "spillway search: %s\n", err[0] ? err : sw_strerror(rc));
    goto done;
  }
  if (count) {
    printf("%llu\n", (unsigned long long)st.matches);
    fflush(stdout);
  }
  if (st.match_limit_skipped)
    fprintf(stderr, "spillway search: note: %llu records skipped: the regex hit PCRE2's match "
                    "limit on them (simplify it, e.g. avoid nested quantifiers like (a+)+)\n",
            (unsigned long long)st.match_limit_skipped);
  if (st.corrupt_chunks)
    fprintf(stderr, "spillway search: %llu damaged chunks could not be read and were skipped\n",
            (unsigned long long)st.corrupt_chunks);
  code = st.corrupt_chunks || p.failed ? 2 : st.matches ? 0 : 1;
done:
  sw_search_query_free(&q);
  sw_config_free(cfg);
  return code;
}
