/* config.h - spillway's configuration: load, validate, free.
 *
 * The file is YAML (libyaml) or JSON; both become one cJSON tree, after ${ENV} expansion in
 * scalar values. The tree is then checked against schema tables (config/schema.c): each row
 * names a key, its type, default and help text, and where it lands in the structs below. The
 * same rows generate docs/configuration.md (`spillway config-docs`). Unknown keys are errors.
 * Every problem is reported as "FILE: key.path: reason", all of them, not just the first.
 * Relative paths (data_dir, source paths, file sink path) are resolved against the directory
 * of the config file. `*_file` keys are read at load time (trailing newline stripped) into
 * the matching secret field; a missing/unreadable file is an error.
 */
#ifndef SW_CONFIG_H
#define SW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../../common/error.h"
#include "../../redact/redact.h"

enum sw_when_full { SW_WHEN_FULL_BLOCK = 0, SW_WHEN_FULL_DROP_OLDEST = 1 };
enum sw_source_type { SW_SOURCE_DOCKER = 0, SW_SOURCE_CRI = 1, SW_SOURCE_FILE = 2, SW_SOURCE_JOURNALD = 3 };
enum sw_format { SW_FORMAT_TEXT = 0, SW_FORMAT_JSON = 1, SW_FORMAT_LOGFMT = 2 };
enum sw_read_from { SW_READ_HEAD = 0, SW_READ_TAIL = 1 };
enum sw_sink_type { SW_SINK_FILE = 0, SW_SINK_LOKI = 1, SW_SINK_ELASTICSEARCH = 2, SW_SINK_S3 = 3 };
enum sw_log_level { SW_LOG_DEBUG = 0, SW_LOG_INFO = 1, SW_LOG_WARN = 2, SW_LOG_ERROR = 3 };
enum sw_log_format { SW_LOG_FORMAT_JSON = 0, SW_LOG_FORMAT_TEXT = 1 };
enum sw_rotate_method { SW_ROTATE_RENAME = 0, SW_ROTATE_COPYTRUNCATE = 1 };
enum sw_codec { SW_CODEC_ZSTD = 0, SW_CODEC_NONE = 1 };
enum sw_s3_addressing { SW_S3_AUTO = 0, SW_S3_PATH = 1, SW_S3_VIRTUAL = 2 };
/* postrotate_signal.signal; the index of its name in config/retention.c's list */
enum sw_rotate_signal { SW_SIG_HUP = 0, SW_SIG_USR1, SW_SIG_USR2, SW_SIG_INT, SW_SIG_TERM, SW_SIG_QUIT, SW_SIG_WINCH };

struct sw_kv {
  char *key;
  char *value;
};

struct sw_multiline_conf {
  char *start;         /* PCRE2 pattern of a record's first line; NULL = multiline off */
  int preset;          /* enum sw_ml_preset (parsers/multiline.h); 0 = none; exclusive with start */
  uint32_t max_lines;  /* default 500 */
  uint64_t timeout_ms; /* default 2000: flush a pending record after this much quiet */
};

/* A source's `extract` (parsers/extract.h): labels lifted out of each record's payload. Off
 * when there are no fields and no pattern. */
struct sw_extract_conf {
  int format;            /* enum sw_extract_format: json (default) | logfmt | regex */
  struct sw_kv *fields;  /* label name -> JSON path / logfmt key */
  size_t nfields;
  char *pattern;         /* regex: PCRE2 with named groups */
  bool normalize_level;  /* the label `level` -> debug|info|warning|error|critical */
};

enum sw_filter_action { SW_FILTER_DROP = 0, SW_FILTER_KEEP = 1, SW_FILTER_SAMPLE = 2, SW_FILTER_RATE_LIMIT = 3 };

/* One filters[] entry (agent/process/process.h). */
struct sw_filter_conf {
  char *name;                  /* required, unique among filters */
  int action;                  /* enum sw_filter_action, required */
  char **match;                /* label matchers, all must hold; none: every record */
  size_t nmatch;
  char *line;                  /* PCRE2 pattern on the record's text */
  uint32_t keep_one_in;        /* sample */
  char **per;                  /* rate_limit: the labels whose values make one bucket */
  size_t nper;
  uint64_t records_per_second; /* rate_limit */
  uint64_t burst;              /* rate_limit, default records_per_second */
};

/* One log_metrics[] entry: spillway_log_<name>_total{labels...}. */
struct sw_log_metric_conf {
  char *name;         /* required, [a-zA-Z_][a-zA-Z0-9_]*, unique */
  char *help;
  char **match;
  size_t nmatch;
  char *line;
  char **labels;      /* label names of the series */
  size_t nlabels;
  uint32_t max_series; /* default 1000 */
};

struct sw_source_conf {
  char *name;                  /* required, unique among sources, [A-Za-z0-9_.-]+ */
  enum sw_source_type type;    /* required: docker | cri | file | journald */
  char **paths;                /* required (not journald), >= 1 glob, absolute after resolution */
  size_t npaths;
  char **exclude;              /* optional globs matched against the full path */
  size_t nexclude;
  enum sw_format format;       /* file sources only: text (default) | json | logfmt */
  enum sw_read_from read_from; /* head (default) | tail: where a never-seen file starts */
  struct sw_multiline_conf multiline;
  uint64_t max_record_bytes;   /* default 1 MiB; longer records are split and flagged */
  struct sw_kv *labels;        /* static labels added to every record of this source */
  size_t nlabels;
  uint64_t truncate_shipped;   /* docker/cri: truncate a log past this size once all of it is
                                  in the buffer; 0 = never (retention.c) */
  struct sw_extract_conf extract;
  /* journald (agent/journal/): the directory of journal files and what of it is read */
  char *journal_path;
  char **units, **exclude_units, **identifiers; /* _SYSTEMD_UNIT / SYSLOG_IDENTIFIER values */
  size_t nunits, nexclude_units, nidentifiers;
  char **fields; /* journal field names kept as labels (upper case, as in the journal) */
  size_t nfields;
};

/* One retention[] entry (agent/retention/); keys are flattened from rotate/compress/keep. */
struct sw_retention_conf {
  char *name;                     /* required, unique among retention entries */
  char **paths;                   /* required globs of live files */
  size_t npaths;
  char **exclude;
  size_t nexclude;
  uint64_t max_size;              /* rotate.max_size; 0 = no size rule */
  uint64_t max_age_ms;            /* rotate.max_age; 0 = no age rule */
  enum sw_rotate_method method;   /* rotate.method, default rename */
  char *signal_pid_file;          /* rotate.postrotate_signal.pid_file; NULL = no signal */
  enum sw_rotate_signal signal;   /* rotate.postrotate_signal.signal, default HUP */
  enum sw_codec codec;            /* compress.codec, default zstd */
  uint32_t level;                 /* compress.level, default 3 */
  bool delay_compress;            /* compress.delay_compress: keep <name>.1 plain */
  uint32_t keep_count;            /* keep.count, default 7 */
  uint64_t keep_max_age_ms;       /* keep.max_age; 0 = no age limit */
  uint64_t keep_max_total_bytes;  /* keep.max_total_bytes; 0 = no limit */
};

struct sw_tls_conf {
  char *ca_file;
  bool insecure_skip_verify;
};

struct sw_sink_conf {
  char *name;              /* required, unique among sinks */
  enum sw_sink_type type;  /* required */
  /* file */
  char *path;              /* file sink: output NDJSON path */
  /* network sinks (loki, elasticsearch, s3; sinks/shipper.c) */
  char *url;               /* loki, elasticsearch */
  char *endpoint;          /* s3 */
  char *tenant;            /* loki */
  char *query_url;         /* loki: query API base URL, default url */
  struct sw_kv *labels;    /* loki static labels */
  size_t nlabels;
  char *index;             /* elasticsearch */
  char *bucket, *region, *prefix; /* s3 */
  char *compression;       /* gzip | zstd | none */
  char *username;
  char *password;          /* secret: from password_file */
  char *bearer_token;      /* secret: from bearer_token_file */
  char *api_key;           /* secret: from api_key_file */
  char *access_key;        /* secret: from access_key_file */
  char *secret_key;        /* secret: from secret_key_file */
  struct sw_tls_conf tls;
  uint64_t batch_max_bytes;   /* batch.max_bytes, default 512 KiB (Loki), 256 KiB (Elasticsearch) */
  uint64_t batch_max_wait_ms; /* batch.max_wait, default 1 s */
  uint64_t object_max_bytes;  /* s3 object.max_bytes, default 64 MiB */
  uint64_t object_max_wait_ms;/* s3 object.max_wait, default 5 m */
  uint64_t object_part_size;  /* s3 object.part_size: bigger objects go multipart, default 8 MiB */
  uint32_t concurrency;       /* loki, elasticsearch: requests in flight, default 2 */
  uint64_t timeout_ms;        /* whole request, default 30 s */
  uint64_t connect_timeout_ms;/* default 10 s */
  uint64_t retry_min_ms;      /* retry.min_backoff, default 500 ms */
  uint64_t retry_max_ms;      /* retry.max_backoff, default 30 s */
  char **structured_metadata; /* loki: labels sent as structured metadata, not stream labels */
  size_t nstructured_metadata;
  bool merge_json;            /* elasticsearch: a JSON payload's fields become document fields */
  int addressing;             /* s3: enum sw_s3_addressing */
  char *session_token;        /* s3 secret: from session_token_file */
  char **match;               /* routing: label matchers a record must satisfy; none: all */
  size_t nmatch;
  char **stream_labels;       /* loki: the labels that make a stream; NULL: all */
  size_t nstream_labels;
};

struct sw_redact_rule {
  char *name;    /* required, [A-Za-z0-9_.-]+, unique among rules and enabled packs */
  char *pattern; /* required PCRE2 pattern */
  char *replace; /* default "[REDACTED]"; $1..$9, ${name}, $$ */
};

struct sw_redact_section {
  char **builtin;               /* names of the built-in packs to enable */
  size_t nbuiltin;
  struct sw_redact_rule *rules; /* user rules, applied in this order after the packs */
  size_t nrules;
  char **keys;                  /* fields.keys: JSON keys whose values are redacted */
  size_t nkeys;
  int action;                   /* fields.action: enum sw_redact_action, default mask */
  char *hash_salt;              /* secret: from hash_salt_file; required when action is hash */
};

struct sw_config {
  char *file;      /* the path the config was loaded from */
  char *data_dir;  /* default /var/lib/spillway */
  char *hostname;  /* `host` label; default gethostname() */
  struct {
    uint64_t max_bytes;         /* default 1 GiB */
    enum sw_when_full when_full;/* default block */
    uint32_t chunk_max_records; /* buffer.chunk.max_records, default 5000 */
    uint64_t chunk_max_bytes;   /* buffer.chunk.max_bytes, default 1 MiB */
    uint64_t chunk_max_wait_ms; /* buffer.chunk.max_wait, default 1 s */
    uint64_t keep_shipped_age_ms;   /* buffer.keep_shipped.max_age; 0 = not by age */
    uint64_t keep_shipped_bytes;    /* buffer.keep_shipped.max_bytes; 0 = not by size */
    uint64_t recent_in_memory;      /* buffer.recent_in_memory, default 4 MiB */
    uint32_t zstd_level;            /* buffer.compression.level, default 1 */
    bool zstd_long;                 /* buffer.compression.long_distance, default false */
  } buffer;
  struct sw_source_conf *sources;
  size_t nsources;
  struct sw_sink_conf *sinks;
  size_t nsinks;
  struct sw_redact_section redact;
  struct sw_filter_conf *filters;
  size_t nfilters;
  struct sw_log_metric_conf *log_metrics;
  size_t nlog_metrics;
  struct sw_retention_conf *retention;
  size_t nretention;
  struct {
    char *path;               /* statvfs of this path is watched; NULL = disk_pressure off */
    uint32_t soft_percent;    /* default 80 */
    uint32_t hard_percent;    /* default 90 */
    uint64_t interval_ms;     /* default 10 s: also how often the agent applies retention */
    uint64_t rotate_min_size; /* default 1 MiB: under pressure, smaller live files stay */
    bool drop_unshipped;      /* default false */
  } disk_pressure;
  struct sw_kube_conf {
    bool enabled;        /* default false */
    char *node_name;     /* required when enabled */
    char *api_url;       /* NULL: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT */
    char *token_file;    /* re-read at every request (bound tokens rotate) */
    char *ca_file;
    uint64_t wait_ms;    /* how long a new pod's file waits for its metadata; default 2 s */
    struct sw_kv *labels; /* record label -> sources joined by '\n' ("pod_label:app\nowner") */
    size_t nlabels;
  } kubernetes;
  struct {
    char *listen; /* default "127.0.0.1:2020"; "" or "0" disables */
    bool enable_reload; /* default false: POST /-/reload */
    bool enable_search; /* default true: GET /api/v1/search */
  } server;
  struct {
    enum sw_log_level level;   /* default info */
    enum sw_log_format format; /* default json */
  } log;
};

/* A list of "FILE: key.path: reason" lines. */
struct sw_conf_errors {
  char **msgs;
  size_t n, cap;
};

/* Loads and validates `path`. On success *out is a new config (free with sw_config_free)
 * and errs is empty. On failure returns SW_ECONFIG (or SW_ENOMEM) with every problem found
 * appended to errs (caller frees with sw_conf_errors_free); *out stays NULL. */
int sw_config_load(const char *path, struct sw_config **out, struct sw_conf_errors *errs) SW_MUST_CHECK;

/* Same, from a string (name is used in messages and as the base for relative paths: its
 * directory). */
int sw_config_load_string(const char *name, const char *text, size_t len, struct sw_config **out,
                          struct sw_conf_errors *errs) SW_MUST_CHECK;

void sw_config_free(struct sw_config *cfg);
void sw_conf_errors_free(struct sw_conf_errors *errs);

/* Parses "512", "512B", "64KiB", "1MiB", "2GiB", "1TiB" (IEC suffixes, optional space before
 * the suffix; a YAML integer is also accepted by the loader). Returns 0 or SW_EPARSE. */
int sw_parse_size(const char *s, uint64_t *bytes) SW_MUST_CHECK;
/* Parses "250ms", "1s", "5m", "2h", "7d" (a bare number is an error). Returns 0 or SW_EPARSE. */
int sw_parse_duration(const char *s, uint64_t *ms) SW_MUST_CHECK;

/* Compiles cfg->redact into a redactor (free with sw_redactor_destroy). Returns 0, SW_ECONFIG
 * with "key.path: reason" (relative to `redact`, e.g. "builtin[1]: unknown pack ...") in err, or
 * SW_ENOMEM. A config that loaded always compiles, except for SW_ENOMEM. */
int sw_config_redactor(const struct sw_config *cfg, struct sw_redactor **out, char *err, size_t errlen) SW_MUST_CHECK;

/* "file", "loki", "elasticsearch" or "s3": the name `type:` takes (and status, metrics show). */
const char *sw_sink_type_name(enum sw_sink_type t);
/* The sink named name, or NULL. */
const struct sw_sink_conf *sw_config_sink(const struct sw_config *cfg, const char *name);

/* Writes the Markdown configuration reference generated from the schema rows to f. */
void sw_config_write_docs(FILE *f);

#endif
