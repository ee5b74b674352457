/* logql.h - the subset of Loki's query language the agent answers (GET /loki/api/v1/...).
 *
 * Log queries:    {sel} pipeline
 *   sel:          name op "value", ...      op: = != =~ !~
 *   pipeline:     line filters  |= "s"  != "s"  |~ "re"  !~ "re"  (each may add `or "s"`)
 *                 | json   | logfmt   | regexp "re with (?P<name>...)"
 *                 | label filters: name op "s" (=, !=, =~, !~), name cmp number|duration|bytes
 *                   (>, >=, <, <=, ==, !=), joined by `and` (or `,`) and `or`, in parentheses
 *                 | line_format "{{.name}} {{__line__}}"   | label_format new=old, new="{{.x}}"
 *                 | drop a, b   | keep a, b
 * Metric queries: count_over_time rate bytes_over_time bytes_rate (log-query [range] [offset d])
 *                 sum count min max avg topk bottomk  (by|without (labels)) (...), vector(n),
 *                 numbers, and + - * / between them (a scalar or one-to-one on equal label sets).
 * Everything else (unwrap, pattern, unpack, binary comparisons, subqueries...) is refused with
 * a message naming it. Pure: no I/O, no threads; the parser and the pipeline are fuzzed.
 */
#ifndef SW_LOGQL_H
#define SW_LOGQL_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/error.h"
#include "../parsers/labelmatch.h"

enum sw_lq_stage_kind {
  SW_LQ_LINE_FILTER, SW_LQ_JSON, SW_LQ_LOGFMT, SW_LQ_REGEXP, SW_LQ_LABEL_FILTER,
  SW_LQ_LINE_FORMAT, SW_LQ_LABEL_FORMAT, SW_LQ_DROP, SW_LQ_KEEP
};

enum sw_lq_lf_op { SW_LQ_CONTAINS, SW_LQ_NOT_CONTAINS, SW_LQ_MATCH, SW_LQ_NOT_MATCH };
enum sw_lq_cmp { SW_LQ_GT, SW_LQ_GE, SW_LQ_LT, SW_LQ_LE, SW_LQ_EQ, SW_LQ_NE };

/* A label filter expression. */
struct sw_lq_lexpr {
  enum { SW_LQ_L_AND, SW_LQ_L_OR, SW_LQ_L_STR, SW_LQ_L_NUM } kind;
  struct sw_lq_lexpr *l, *r;   /* AND, OR */
  struct sw_label_match m;     /* STR */
  char *name;                  /* NUM */
  enum sw_lq_cmp cmp;          /* NUM */
  double num;                  /* NUM: seconds for durations, bytes for sizes */
  int unit;                    /* NUM: 0 plain, 1 duration, 2 bytes */
};

/* A template of line_format / label_format: literal text and {{.label}} / {{__line__}}. */
struct sw_lq_tmpl {
  size_t n;
  struct sw_lq_tpart { char *text; int is_ref; } *parts; /* is_ref: text names a label ("__line__": the line) */
};

struct sw_lq_stage {
  enum sw_lq_stage_kind kind;
  /* LINE_FILTER: alternatives (`or`); one op for all of them */
  enum sw_lq_lf_op op;
  char **text;
  void **re;
  size_t nalt;
  void *re_regexp;       /* REGEXP: pcre2_code with named groups */
  struct sw_lq_lexpr *lf; /* LABEL_FILTER */
  struct sw_lq_tmpl tmpl; /* LINE_FORMAT */
  /* LABEL_FORMAT: dst[i] = src label (is_tmpl 0) or template; DROP/KEEP: names[i] with an
   * optional matcher (has_m) */
  size_t nitems;
  struct sw_lq_item { char *name; int is_tmpl; char *src; struct sw_lq_tmpl tmpl; int has_m;
                      struct sw_label_match m; } *items;
};

struct sw_lq_log {
  struct sw_label_match *sel;
  size_t nsel;
  struct sw_lq_stage *st;
  size_t nst;
};

enum sw_lq_mkind { SW_LQ_M_RANGE, SW_LQ_M_AGG, SW_LQ_M_BIN, SW_LQ_M_VECTOR, SW_LQ_M_NUMBER };
enum sw_lq_range_op { SW_LQ_COUNT_OVER_TIME, SW_LQ_RATE, SW_LQ_BYTES_OVER_TIME, SW_LQ_BYTES_RATE };
enum sw_lq_agg_op { SW_LQ_SUM, SW_LQ_COUNT, SW_LQ_MIN, SW_LQ_MAX, SW_LQ_AVG, SW_LQ_TOPK, SW_LQ_BOTTOMK };

struct sw_lq_metric {
  enum sw_lq_mkind kind;
  enum sw_lq_range_op rop;      /* RANGE */
  int64_t range_ns, offset_ns;  /* RANGE */
  enum sw_lq_agg_op aop;        /* AGG */
  int without;                  /* AGG: grouping is `without` */
  int grouped;                  /* AGG: by/without given */
  char **group;                 /* AGG */
  size_t ngroup;
  long k;                       /* AGG: topk/bottomk */
  char op;                      /* BIN: + - * / */
  struct sw_lq_metric *a, *b;   /* AGG: a; BIN: a op b */
  double num;                   /* VECTOR, NUMBER */
};

struct sw_lq_query {
  struct sw_lq_log log;         /* the query's one log selection (a metric query's range) */
  int has_log;
  struct sw_lq_metric *metric;  /* NULL: a log query */
};

/* Parses text. On error returns SW_EINVAL with err "parse error at line 1, col N: ..." (as
 * Loki words it) or "... is not supported by spillway" for LogQL spillway does not answer. */
int sw_lq_parse(const char *text, struct sw_lq_query *q, char *err, size_t errlen) SW_MUST_CHECK;
void sw_lq_free(struct sw_lq_query *q);

/* A Go/Prometheus duration ("5m", "1h30m", "1.5s", "250ms", "2d"): 0, or -1. */
int sw_lq_parse_duration(const char *s, size_t n, int64_t *ns) SW_MUST_CHECK;
/* A size as humanize writes it ("10KB", "1.5MiB", "20B"; case-insensitive) in bytes: 0, or -1. */
int sw_lq_parse_bytes(const char *s, size_t n, double *out) SW_MUST_CHECK;

/* A regex for the buffer scan (search/query.h) that every line the query keeps must match, or
 * NULL (scan everything): the line filters before the first parser stage. Caller frees. */
char *sw_lq_scan_pattern(const struct sw_lq_query *q);

/* ---- evaluation of one entry through the pipeline ---- */

#define SW_LQ_MAX_LABELS 128

/* A small mutable label set (names and values in an arena), reused per entry. */
struct sw_lq_labels {
  size_t n;
  size_t name[SW_LQ_MAX_LABELS], value[SW_LQ_MAX_LABELS]; /* offsets in arena (NUL-terminated) */
  size_t vlen[SW_LQ_MAX_LABELS];
  struct sw_buf arena;
};
void sw_lq_labels_init(struct sw_lq_labels *l);
void sw_lq_labels_free(struct sw_lq_labels *l);
void sw_lq_labels_reset(struct sw_lq_labels *l);
/* Sets (replaces) a label; the name is used as given. */
int sw_lq_labels_set(struct sw_lq_labels *l, const char *name, const char *v, size_t vlen) SW_MUST_CHECK;
/* NULL when absent. */
const char *sw_lq_labels_get(const struct sw_lq_labels *l, const char *name, size_t *vlen);
void sw_lq_labels_del(struct sw_lq_labels *l, const char *name);
/* Adds a JSON object of string members (a chunk's label set), names made valid for Loki. */
int sw_lq_labels_add_json(struct sw_lq_labels *l, const char *json, size_t len) SW_MUST_CHECK;
/* The set as a canonical JSON object (names sorted), appended to out. */
int sw_lq_labels_json(const struct sw_lq_labels *l, struct sw_buf *out) SW_MUST_CHECK;
/* A Loki label name from any name: invalid bytes become '_', a leading digit gets '_'. */
int sw_lq_label_name(struct sw_buf *out, const char *name, size_t len) SW_MUST_CHECK;

/* Per-thread state of the pipeline. */
struct sw_lq_scratch {
  void *md;            /* pcre2 match data */
  struct sw_buf line, tmp, aux, line2;
};
int sw_lq_scratch_init(struct sw_lq_scratch *s) SW_MUST_CHECK;
void sw_lq_scratch_free(struct sw_lq_scratch *s);

/* Runs the stream selector and the pipeline on one entry whose stream labels are in *l: 1
 * keeps it (the line, possibly rewritten, in *line and *len, valid until the next call; *l holds
 * its labels), 0 drops it, <0 an error (SW_ENOMEM). */
int sw_lq_eval(const struct sw_lq_log *log, struct sw_lq_scratch *s, struct sw_lq_labels *l,
               const char **line, size_t *len);

/* The same in two halves, for scans that see many entries with one label set: when
 * sw_lq_labels_fixed(log) holds, an entry's labels and whether its label set is kept depend on
 * its stream labels alone (no parser, no line_format or label_format), so a caller may run
 * sw_lq_eval_labels once per label set and sw_lq_line_pass on each line (its line filters). */
int sw_lq_labels_fixed(const struct sw_lq_log *log);
int sw_lq_eval_labels(const struct sw_lq_log *log, struct sw_lq_scratch *s, struct sw_lq_labels *l);
int sw_lq_line_pass(const struct sw_lq_log *log, struct sw_lq_scratch *s, const char *line, size_t len);

/* Shortest decimal of a sample value as Prometheus writes it ("5", "0.25", "NaN", "+Inf"). */
int sw_lq_put_value(struct sw_buf *out, double v) SW_MUST_CHECK;

#endif
