/* process.c - schema rows of processing: a source's `extract`, `filters`, `log_metrics`, and
 * the label matchers of sinks' `match` (their meaning: agent/process/process.h and
 * docs/processing.md). Kept apart from config/schema.c like config/kube.c. */
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "../../parsers/extract.h"
#include "../../parsers/labelmatch.h"
#include "../process/process.h"
#include "schema.h"

#define ROWS(r) .rows = r, .nrows = sizeof r / sizeof r[0]
#define WIDTH(T, f) sizeof(((T *)0)->f)
#define ONLY(x) (1u << (x))
#define SC struct sw_source_conf
#define FC struct sw_filter_conf
#define MC struct sw_log_metric_conf

static const char *const extract_formats[] = {"json", "logfmt", "regex", NULL};
static const char *const filter_actions[] = {"drop", "keep", "sample", "rate_limit", NULL};

/* Each entry of list[n] (under key) must be a label matcher. */
static void check_matchers(struct sw__conf_ctx *c, const char *key, char **list, size_t n) {
  for (size_t i = 0; i < n; i++) {
    struct sw_label_match m;
    char err[256];
    int rc = sw_label_match_parse(&m, list[i], err, sizeof err);
    if (rc == SW_ENOMEM) c->nomem = true;
    if (rc == SW_OK) {
      if (!sw__conf_valid_label_name(m.key)) {
        snprintf(err, sizeof err, "label matcher \"%s\": \"%s\" is not a label name", list[i], m.key);
        rc = SW_EINVAL;
      }
      sw_label_match_free(&m);
    }
    if (rc != SW_EINVAL) continue;
    size_t saved = sw__conf_path_key(c, key);
    sw__conf_path_index(c, i);
    sw__conf_err(c, "%s", err);
    sw__conf_path_pop(c, saved);
  }
}

static void check_label_names(struct sw__conf_ctx *c, const char *key, char **list, size_t n) {
  char q[96];
  for (size_t i = 0; i < n; i++) {
    if (sw__conf_valid_label_name(list[i])) continue;
    size_t saved = sw__conf_path_key(c, key);
    sw__conf_path_index(c, i);
    sw__conf_err(c, "%s is not a label name (letters, digits, `_`, not starting with a digit)",
                 sw__conf_quote(q, sizeof q, list[i]));
    sw__conf_path_pop(c, saved);
  }
}

/* ---- sources[].extract ---- */

static void check_extract(struct sw__conf_ctx *c, void *base, const cJSON *obj, int kind) {
  struct sw_extract_conf *x = &((SC *)base)->extract;
  (void)kind;
  if (!obj) return;
  size_t saved = sw__conf_path_key(c, "extract");
  if (x->format == SW_EXTRACT_REGEX) {
    if (!x->pattern) sw__conf_err(c, "format regex needs a pattern with named groups: '^(?P<level>\\w+) '");
    if (x->nfields) sw__conf_err(c, "format regex takes its labels from the pattern's named groups, not from fields");
    struct sw_extract_spec sp;
    if (x->pattern && sw_process_extract_spec(x, &sp) != SW_OK) /* it compiles: SW__CF_REGEX */
      sw__conf_err(c, "pattern: needs between 1 and %d named groups ((?P<name>...))", SW_EXTRACT_MAX_FIELDS);
    else if (x->pattern)
      for (size_t i = 0; i < sp.n; i++)
        if (!sw__conf_valid_label_name(sp.name[i]))
          sw__conf_err(c, "pattern: group name \"%s\" is not a label name", sp.name[i]);
    if (x->pattern) pcre2_code_free(sp.re);
  } else {
    if (x->pattern) sw__conf_err(c, "pattern is for format regex");
    if (!x->nfields) sw__conf_err(c, "fields: name the labels to extract (level: level, trace_id: trace.id)");
    if (x->nfields > SW_EXTRACT_MAX_FIELDS) sw__conf_err(c, "fields: at most %d", SW_EXTRACT_MAX_FIELDS);
    for (size_t i = 0; i < x->nfields; i++) {
      const char *p = x->fields[i].value;
      if (p && *p && !strstr(p, "..") && p[0] != '.' && p[strlen(p) - 1] != '.') continue;
      size_t s2 = sw__conf_path_key(c, "fields");
      sw__conf_path_key(c, x->fields[i].key);
      sw__conf_err(c, "a %s (\"level\", \"trace.id\")", x->format == SW_EXTRACT_JSON ? "dotted JSON path" : "logfmt key");
      sw__conf_path_pop(c, s2);
    }
  }
  sw__conf_path_pop(c, saved);
}

static const struct sw__conf_row extract_rows[] = {
    {.key = "format", .type = SW__CT_ENUM, .def = "json", .values = extract_formats,
     .offset = offsetof(SC, extract.format),
     .help = "How the payload (a container's log line, or a file's line) is read: `json`, `logfmt` or "
             "`regex`. A payload that does not parse simply gives no labels."},
    {.key = "fields", .type = SW__CT_KVMAP, .offset = offsetof(SC, extract.fields),
     .count_offset = offsetof(SC, extract.nfields),
     .help = "json, logfmt: label name ← where its value is: a dotted path into nested JSON objects "
             "(`trace.id`) or a logfmt key. Values are cut to 1 KiB."},
    {.key = "pattern", .type = SW__CT_STRING, .flags = SW__CF_REGEX, .offset = offsetof(SC, extract.pattern),
     .help = "regex: a PCRE2 pattern whose named groups are the labels (`'^(?P<level>\\w+) '`)."},
    {.key = "normalize_level", .type = SW__CT_BOOL, .def = "false", .offset = offsetof(SC, extract.normalize_level),
     .help = "Map the label `level` to `debug`, `info`, `warning`, `error` or `critical` (`WARN`, `W`, "
             "`Err`, `FATAL`, syslog numbers ...); values it does not know stay as they are."},
};
const struct sw__conf_table sw__conf_extract_table = {
    .intro = "Labels lifted out of each record's payload (docs/processing.md). They are record "
             "labels: filters, routes, log metrics, search and the sinks see them, and their values "
             "pass through `redact`.",
    ROWS(extract_rows), .discriminator = -1, .check = check_extract};

/* ---- filters ---- */

static void check_filter(struct sw__conf_ctx *c, void *base, const cJSON *obj, int kind) {
  FC *f = base;
  (void)obj;
  check_matchers(c, "match", f->match, f->nmatch);
  check_label_names(c, "per", f->per, f->nper);
  if (kind == SW_FILTER_KEEP && !f->line)
    sw__conf_err(c, "action keep needs line: the records of `match` that do not match it are dropped");
  if (kind == SW_FILTER_DROP && !f->line && !f->nmatch)
    sw__conf_err(c, "action drop needs match or line (it would drop every record)");
  if (kind == SW_FILTER_RATE_LIMIT && !f->burst) f->burst = f->records_per_second;
}

static const struct sw__conf_row filter_rows[] = {
    {.key = "name", .type = SW__CT_STRING, .flags = SW__CF_REQUIRED | SW__CF_NAME, .offset = offsetof(FC, name),
     .help = "Unique among filters; names its counters (`spillway_filter_records_total{filter=…}`)."},
    {.key = "action", .type = SW__CT_ENUM, .flags = SW__CF_REQUIRED, .values = filter_actions,
     .offset = offsetof(FC, action),
     .help = "`drop` what matches; `keep` only what matches `line` among the records of `match`; "
             "`sample` one in `keep_one_in` of what matches; `rate_limit` what matches, per bucket."},
    {.key = "match", .type = SW__CT_STRLIST, .offset = offsetof(FC, match), .count_offset = offsetof(FC, nmatch),
     .help = "Label matchers as in `spillway search --label` (`k=v`, `k!=v`, `k=~re`, `k!~re`), all must "
             "hold; extracted labels count. None: every record."},
    {.key = "line", .type = SW__CT_STRING, .flags = SW__CF_REGEX, .offset = offsetof(FC, line),
     .help = "PCRE2 pattern the record's text must match (unanchored)."},
    {.key = "keep_one_in", .type = SW__CT_UINT, .flags = SW__CF_REQUIRED, .width = WIDTH(FC, keep_one_in), .min = 1,
     .max = 1000000, .only = ONLY(SW_FILTER_SAMPLE), .offset = offsetof(FC, keep_one_in),
     .help = "Keep a record when FNV-1a-64 of its text (for docker and CRI records continued with "
             "its timestamp's 8 bytes, little-endian) is 0 modulo this: the same records are kept "
             "whenever the file is read again."},
    {.key = "per", .type = SW__CT_STRLIST, .only = ONLY(SW_FILTER_RATE_LIMIT), .offset = offsetof(FC, per),
     .count_offset = offsetof(FC, nper),
     .help = "Labels whose values make one bucket (`[namespace, pod]`); none: one bucket. At most "
             "10000 buckets; records of buckets past that share one."},
    {.key = "records_per_second", .type = SW__CT_UINT, .flags = SW__CF_REQUIRED, .width = 8, .min = 1,
     .max = 100000000, .only = ONLY(SW_FILTER_RATE_LIMIT), .offset = offsetof(FC, records_per_second),
     .help = "Records a bucket passes per second of record time (the records' own timestamps), so a "
             "backlog read after a restart is limited as it was written."},
    {.key = "burst", .type = SW__CT_UINT, .width = 8, .min = 1, .max = 1000000000,
     .only = ONLY(SW_FILTER_RATE_LIMIT), .offset = offsetof(FC, burst), .def_doc = "records_per_second",
     .help = "Records a bucket may pass at once after being quiet."},
};

static void check_filters(struct sw__conf_ctx *c, void *elems, size_t n) {
  sw__conf_check_unique(c, "filter", elems, n, sizeof(FC), offsetof(FC, name));
}

const struct sw__conf_table sw__conf_filter_table = {
    .intro = "Applied in order to every record after extraction and before redaction "
             "(docs/processing.md). A record dropped by one is gone: it never reaches the buffer, the "
             "file's offset still moves past it, and it is counted per filter.",
    ROWS(filter_rows), .elem_size = sizeof(FC), .discriminator = 1, .kind_noun = "filter",
    .check = check_filter, .check_list = check_filters};

/* ---- log_metrics ---- */

static void check_metric(struct sw__conf_ctx *c, void *base, const cJSON *obj, int kind) {
  MC *m = base;
  (void)obj;
  (void)kind;
  char q[96];
  if (m->name && !sw__conf_valid_label_name(m->name)) {
    size_t saved = sw__conf_path_key(c, "name");
    sw__conf_err(c, "%s: letters, digits and `_`, not starting with a digit (a Prometheus metric name)",
                 sw__conf_quote(q, sizeof q, m->name));
    sw__conf_path_pop(c, saved);
  } else if (m->name && !strcmp(m->name, "metric_overflow")) { /* spillway_log_metric_overflow_total */
    size_t saved = sw__conf_path_key(c, "name");
    sw__conf_err(c, "\"metric_overflow\" is taken: spillway_log_metric_overflow_total counts what "
                    "the log metrics could not");
    sw__conf_path_pop(c, saved);
  }
  check_matchers(c, "match", m->match, m->nmatch);
  check_label_names(c, "labels", m->labels, m->nlabels);
}

static const struct sw__conf_row metric_rows[] = {
    {.key = "name", .type = SW__CT_STRING, .flags = SW__CF_REQUIRED, .offset = offsetof(MC, name),
     .help = "Served as `spillway_log_<name>_total`."},
    {.key = "help", .type = SW__CT_STRING, .offset = offsetof(MC, help), .help = "The metric's `# HELP` text."},
    {.key = "match", .type = SW__CT_STRLIST, .offset = offsetof(MC, match), .count_offset = offsetof(MC, nmatch),
     .help = "Label matchers, as for filters."},
    {.key = "line", .type = SW__CT_STRING, .flags = SW__CF_REGEX, .offset = offsetof(MC, line),
     .help = "PCRE2 pattern the record's text must match."},
    {.key = "labels", .type = SW__CT_STRLIST, .offset = offsetof(MC, labels), .count_offset = offsetof(MC, nlabels),
     .help = "Labels of the series; a record without one counts under the value `unknown`. Values "
             "pass through `redact`."},
    {.key = "max_series", .type = SW__CT_UINT, .def = "1000", .width = WIDTH(MC, max_series), .min = 1,
     .max = 1000000, .offset = offsetof(MC, max_series),
     .help = "Series past this many are not made: their records count in "
             "`spillway_log_metric_overflow_total{metric=…}`."},
};

static void check_metrics(struct sw__conf_ctx *c, void *elems, size_t n) {
  sw__conf_check_unique(c, "log metric", elems, n, sizeof(MC), offsetof(MC, name));
}

const struct sw__conf_table sw__conf_log_metric_table = {
    .intro = "Counters of records, served on /metrics (docs/processing.md): counted after extraction "
             "and before filters, so a dropped record still counts.",
    ROWS(metric_rows), .elem_size = sizeof(MC), .discriminator = -1, .check = check_metric,
    .check_list = check_metrics};

void sw__conf_check_sink_match(struct sw__conf_ctx *c, struct sw_sink_conf *k) {
  check_matchers(c, "match", k->match, k->nmatch);
  check_label_names(c, "stream_labels", k->stream_labels, k->nstream_labels);
}

/* Extracted labels are added to their file's: a name the file's set can have would give a
 * record two values for one label. */
void sw__conf_check_extract_names(struct sw__conf_ctx *c, const struct sw_config *cfg) {
  static const char *const taken[] = {"host", "source", "container_id", "container_name", "namespace", "pod",
                                      "pod_uid", "container", "filename", "stream", "parse_error",
                                      "truncated", "invalid_utf8", NULL};
  for (size_t i = 0; i < cfg->nsources; i++) {
    const struct sw_source_conf *src = &cfg->sources[i];
    struct sw_extract_spec sp;
    if (sw_process_extract_spec(&src->extract, &sp) != SW_OK) continue; /* reported by check_extract */
    for (size_t k = 0; k < sp.n; k++) {
      const char *name = sp.name[k], *why = NULL;
      for (int t = 0; taken[t] && !why; t++)
        if (!strcmp(name, taken[t])) why = "a label every record of its file has already";
      for (size_t t = 0; t < src->nlabels && !why; t++)
        if (!strcmp(name, src->labels[t].key)) why = "a static label of this source";
      for (size_t t = 0; cfg->kubernetes.enabled && t < cfg->kubernetes.nlabels && !why; t++)
        if (!strcmp(name, cfg->kubernetes.labels[t].key)) why = "a kubernetes.labels label";
      if (!why) continue;
      size_t saved = sw__conf_path_key(c, "sources");
      sw__conf_path_index(c, i);
      sw__conf_path_key(c, "extract");
      if (sp.re) {
        sw__conf_path_key(c, "pattern");
        sw__conf_err(c, "group %s: %s: choose another name", name, why);
      } else {
        sw__conf_path_key(c, "fields");
        sw__conf_path_key(c, name);
        sw__conf_err(c, "%s: choose another name", why);
      }
      sw__conf_path_pop(c, saved);
    }
    pcre2_code_free(sp.re);
  }
}
