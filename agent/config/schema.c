/* schema.c - the schema rows of spillway's configuration, and the cross-key rules.
 *
 * Each table below is one section of the file (and of docs/configuration.md). To add a key,
 * add a row; to implement a section that is still SW__CT_UNSUPPORTED (retention,
 * disk_pressure), give its row a type, a table and a field in struct sw_config. Loading,
 * defaults, freeing and the docs follow the rows; only rules that span several keys live in
 * the check functions here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schema.h"

#define ROWS(r) .rows = r, .nrows = sizeof r / sizeof r[0]
#define WIDTH(T, f) sizeof(((T *)0)->f)
#define ONLY(x) (1u << (x))
#define FILE_SOURCES (ONLY(SW_SOURCE_DOCKER) | ONLY(SW_SOURCE_CRI) | ONLY(SW_SOURCE_FILE))

_Static_assert(sizeof(enum sw_when_full) == sizeof(int) && sizeof(enum sw_source_type) == sizeof(int) &&
                   sizeof(enum sw_format) == sizeof(int) && sizeof(enum sw_read_from) == sizeof(int) &&
                   sizeof(enum sw_sink_type) == sizeof(int) && sizeof(enum sw_log_level) == sizeof(int) &&
                   sizeof(enum sw_log_format) == sizeof(int),
               "SW__CT_ENUM stores enums as int");
_Static_assert(SW_REDACT_MASK == 0 && SW_REDACT_HASH == 1 && SW_REDACT_DROP == 2, "redact_actions order");

/* Value lists: the index of a value is its enum value in config.h. */
static const char *const when_full_values[] = {"block", "drop_oldest", NULL};
static const char *const source_types[] = {"docker", "cri", "file", "journald", NULL};
static const char *const formats[] = {"text", "json", "logfmt", NULL};
static const char *const read_froms[] = {"head", "tail", NULL};
/* The index of a value is its enum sw_ml_preset (parsers/multiline.h). */
static const char *const ml_presets[] = {"none", "java", "python", "go", "ruby", "dotnet", NULL};
static const char *const sink_types[] = {"file", "loki", "elasticsearch", "s3", NULL};

const char *sw_sink_type_name(enum sw_sink_type t) {
  return (size_t)t < sizeof sink_types / sizeof sink_types[0] - 1 ? sink_types[t] : "unknown";
}

const struct sw_sink_conf *sw_config_sink(const struct sw_config *cfg, const char *name) {
  for (size_t i = 0; i < cfg->nsinks; i++)
    if (!strcmp(cfg->sinks[i].name, name)) return &cfg->sinks[i];
  return NULL;
}
static const char *const http_compressions[] = {"gzip", "none", NULL};
static const char *const object_compressions[] = {"zstd", "gzip", NULL};
static const char *const s3_addressings[] = {"auto", "path", "virtual", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"json", "text", NULL};
static const char *const redact_actions[] = {"mask", "hash", "drop", NULL};

/* ---- buffer ---- */

static const struct sw__conf_row chunk_rows[] = {
    {.key = "max_records", .type = SW__CT_UINT, .def = "5000", .min = 1, .max = 1000000,
     .width = WIDTH(struct sw_config, buffer.chunk_max_records),
     .offset = offsetof(struct sw_config, buffer.chunk_max_records),
     .help = "A chunk is closed when it holds this many records."},
    {.key = "max_bytes", .type = SW__CT_SIZE, .def = "256KiB", .min = 4 * SW__KIB, .max = 64 * SW__MIB,
     .offset = offsetof(struct sw_config, buffer.chunk_max_bytes),
     .help = "A chunk is closed when its records reach this size (before compression). Every file "
             "being read holds one open chunk (all of them together at most 2 MiB: the busiest is "
             "closed first), and the newest chunks wait in memory for the writer (up to 2 MiB)."},
    {.key = "max_wait", .type = SW__CT_DURATION, .def = "1s", .min = 1,
     .offset = offsetof(struct sw_config, buffer.chunk_max_wait_ms),
     .help = "A chunk is closed this long after its first record, however small."},
};
static const struct sw__conf_table chunk_table = {
    .intro = "How records of one stream are grouped into chunks, the unit of buffering and shipping.",
    ROWS(chunk_rows), .discriminator = -1};

static const struct sw__conf_row keep_shipped_rows[] = {
    {.key = "max_age", .type = SW__CT_DURATION, .min = 1000,
     .offset = offsetof(struct sw_config, buffer.keep_shipped_age_ms),
     .help = "Shipped chunks stay searchable this long after they were buffered."},
    {.key = "max_bytes", .type = SW__CT_SIZE, .min = SW__MIB,
     .offset = offsetof(struct sw_config, buffer.keep_shipped_bytes),
     .help = "At most this much of them (stored, compressed bytes); the oldest go first."},
};
static const struct sw__conf_table keep_shipped_table = {
    .intro = "History for `spillway search`: chunks every sink has delivered are kept instead of "
             "deleted at once, within both limits that are set (neither set: none kept). History "
             "never holds back new data: it is cut when the buffer passes 90 % of `buffer.max_bytes`, "
             "and disk pressure deletes it before anything unshipped. With history kept (or no "
             "sinks), each chunk also gets a trigram filter that lets search skip it undecompressed.",
    ROWS(keep_shipped_rows), .discriminator = -1};

static const struct sw__conf_row compression_rows[] = {
    {.key = "level", .type = SW__CT_UINT, .def = "1", .min = 1, .max = 19,
     .width = WIDTH(struct sw_config, buffer.zstd_level), .offset = offsetof(struct sw_config, buffer.zstd_level),
     .help = "zstd level of every chunk. Measured on docker logs in 256 KiB chunks (bench/bench_chunks.c): "
             "level 1 stores 3.7:1 for 2.6 CPU seconds per raw GB, level 3 4.0:1 for 2.8, level 6 "
             "4.25:1 for 9.4; negative (fast) levels saved at most 15 % of the CPU for 10-25 % "
             "more disk, and chunks stored uncompressed cost more CPU in SQLite than zstd does, so "
             "neither is offered."},
    {.key = "long_distance", .type = SW__CT_BOOL, .def = "false",
     .offset = offsetof(struct sw_config, buffer.zstd_long),
     .help = "zstd long-distance matching: about 1 % smaller 256 KiB chunks for 20 % more "
             "compression CPU; it only pays with chunks of many MiB."},
};
static const struct sw__conf_table compression_table = {
    .intro = "How chunks are compressed in the buffer (the sinks compress their requests on their own).",
    ROWS(compression_rows), .discriminator = -1};

static const struct sw__conf_row buffer_rows[] = {
    {.key = "max_bytes", .type = SW__CT_SIZE, .def = "1GiB", .min = SW__MIB,
     .offset = offsetof(struct sw_config, buffer.max_bytes),
     .help = "Most disk space the buffer (spillway.db) may use; at least buffer.chunk.max_bytes."},
    {.key = "when_full", .type = SW__CT_ENUM, .def = "block", .values = when_full_values,
     .offset = offsetof(struct sw_config, buffer.when_full),
     .help = "`block` stops reading (data waits in the source files); `drop_oldest` drops the oldest "
             "unshipped chunks."},
    {.key = "recent_in_memory", .type = SW__CT_SIZE, .def = "2MiB", .max = SW__GIB,
     .offset = offsetof(struct sw_config, buffer.recent_in_memory),
     .help = "The newest committed chunks are also kept in memory, uncompressed, up to this much: a "
             "sink that keeps up ships them from there instead of reading them back and "
             "decompressing them (a sink that falls behind reads the buffer). Durability is the "
             "same. `0` turns it off."},
    {.key = "chunk", .type = SW__CT_OBJECT, .table = &chunk_table, .help = "Chunking, see below."},
    {.key = "keep_shipped", .type = SW__CT_OBJECT, .table = &keep_shipped_table,
     .help = "Searchable history of shipped chunks, see below."},
    {.key = "compression", .type = SW__CT_OBJECT, .table = &compression_table,
     .help = "zstd settings of the chunks, see below."},
};
static const struct sw__conf_table buffer_table = {
    .intro = "The durable SQLite buffer between sources and sinks.", ROWS(buffer_rows), .discriminator = -1};

/* ---- sources ---- */

static const struct sw__conf_row multiline_rows[] = {
    {.key = "start", .type = SW__CT_STRING, .flags = SW__CF_REGEX | SW__CF_NONEMPTY,
     .offset = offsetof(struct sw_source_conf, multiline.start),
     .help = "PCRE2 pattern matching the first line of a record; other lines join the record before "
             "them. Unset: every line is a record."},
    {.key = "preset", .type = SW__CT_ENUM, .def = "none", .values = ml_presets,
     .offset = offsetof(struct sw_source_conf, multiline.preset),
     .help = "Stack traces of a runtime: `java` (`\\tat …`, `Caused by:`, `... 12 more`), `python` "
             "(tracebacks, chained ones included, up to the final `XError: …` line), `go` (`panic:` "
             "and `fatal error:` with their goroutine dumps), `ruby` (`from …:in` frames, causes, "
             "Rails), `dotnet` (`   at …`, inner exceptions, console-logger entries). A trace "
             "becomes one record; every other line stays a record of its own and is not held back. "
             "Instead of `start`. Kubernetes pods can choose theirs with the `spillway.io/multiline` "
             "annotation."},
    {.key = "max_lines", .type = SW__CT_UINT, .def = "500", .min = 1, .max = 100000,
     .width = WIDTH(struct sw_source_conf, multiline.max_lines),
     .offset = offsetof(struct sw_source_conf, multiline.max_lines),
     .help = "A record is closed after this many lines."},
    {.key = "timeout", .type = SW__CT_DURATION, .def = "2s", .min = 1,
     .offset = offsetof(struct sw_source_conf, multiline.timeout_ms),
     .help = "A pending record is closed after this much quiet."},
};
static const struct sw__conf_table multiline_table = {
    .intro = "Joins stack traces and other multi-line records.", ROWS(multiline_rows), .discriminator = -1};

static const struct sw__conf_row source_rows[] = {
    {.key = "name", .type = SW__CT_STRING, .flags = SW__CF_REQUIRED | SW__CF_NAME,
     .offset = offsetof(struct sw_source_conf, name),
     .help = "Unique among sources; letters, digits, `_`, `.`, `-`."},
    {.key = "type", .type = SW__CT_ENUM, .flags = SW__CF_REQUIRED, .values = source_types,
     .offset = offsetof(struct sw_source_conf, type),
     .help = "`docker` (json-file logs), `cri` (Kubernetes), `file` (plain application logs) or "
             "`journald` (the systemd journal: docs/journald.md)."},
    {.key = "paths", .type = SW__CT_STRLIST, .flags = SW__CF_REQUIRED | SW__CF_NONEMPTY | SW__CF_GLOB,
     .only = FILE_SOURCES, .offset = offsetof(struct sw_source_conf, paths), .count_offset = offsetof(struct sw_source_conf, npaths),
     .help = "Globs of the files to tail (`*`, `?`, `[...]` in any path component; `**` is not "
             "supported). A single string is a list of one. A glob that could match files in "
             "`data_dir` or a file sink's output is refused; files under `data_dir` it still finds "
             "(through a symlink, a wildcard directory), compressed files (`.zst`, `.gz`, `.xz`, "
             "`.bz2`, `.lz4`, `.zip`), retention's temporaries and anything that is not a regular "
             "file are skipped (logged once)."},
    {.key = "exclude", .type = SW__CT_STRLIST, .flags = SW__CF_GLOB, .only = FILE_SOURCES,
     .offset = offsetof(struct sw_source_conf, exclude),
     .count_offset = offsetof(struct sw_source_conf, nexclude),
     .help = "Globs matched against the full path of each file found; a match is skipped."},
    {.key = "format", .type = SW__CT_ENUM, .def = "text", .values = formats, .only = ONLY(SW_SOURCE_FILE),
     .offset = offsetof(struct sw_source_conf, format), .help = "How each line is parsed."},
    {.key = "read_from", .type = SW__CT_ENUM, .def = "head", .values = read_froms,
     .offset = offsetof(struct sw_source_conf, read_from),
     .help = "Where a file never seen before is read from (journald: a journal never read before, "
             "`tail` takes only entries written after the start). Known files always resume where they were."},
    {.key = "path", .type = SW__CT_STRING, .flags = SW__CF_PATH | SW__CF_NONEMPTY, .def = "/var/log/journal",
     .only = ONLY(SW_SOURCE_JOURNALD), .offset = offsetof(struct sw_source_conf, journal_path),
     .help = "The directory of journal files: `/var/log/journal` (persistent), `/run/log/journal` "
             "(volatile), or one that holds `*.journal` files (machine-id subdirectories are read too)."},
    {.key = "units", .type = SW__CT_STRLIST, .only = ONLY(SW_SOURCE_JOURNALD),
     .offset = offsetof(struct sw_source_conf, units), .count_offset = offsetof(struct sw_source_conf, nunits),
     .help = "Only entries whose `_SYSTEMD_UNIT` is one of these (`kubelet.service`). None: every entry."},
    {.key = "exclude_units", .type = SW__CT_STRLIST, .only = ONLY(SW_SOURCE_JOURNALD),
     .offset = offsetof(struct sw_source_conf, exclude_units),
     .count_offset = offsetof(struct sw_source_conf, nexclude_units),
     .help = "Entries whose `_SYSTEMD_UNIT` is one of these are not read (counted as excluded)."},
    {.key = "identifiers", .type = SW__CT_STRLIST, .only = ONLY(SW_SOURCE_JOURNALD),
     .offset = offsetof(struct sw_source_conf, identifiers),
     .count_offset = offsetof(struct sw_source_conf, nidentifiers),
     .help = "Only entries whose `SYSLOG_IDENTIFIER` is one of these (and, with `units`, in one of those units)."},
    {.key = "fields", .type = SW__CT_STRLIST, .only = ONLY(SW_SOURCE_JOURNALD),
     .offset = offsetof(struct sw_source_conf, fields), .count_offset = offsetof(struct sw_source_conf, nfields),
     .help = "Journal fields kept as labels besides `unit`, `identifier`, `level`, `boot_id` and `host`, "
             "named in lower case without leading underscores (`_PID` is the label `pid`). Each distinct "
             "value makes its own stream, as any label does: `_PID` suits a few long-lived daemons, not a busy host. At most 32."},
    {.key = "multiline", .type = SW__CT_OBJECT, .table = &multiline_table, .help = "See below."},
    {.key = "extract", .type = SW__CT_OBJECT, .table = &sw__conf_extract_table, .help = "See below."},
    {.key = "max_record_bytes", .type = SW__CT_SIZE, .def = "1MiB", .min = SW__KIB, .max = 64 * SW__MIB,
     .offset = offsetof(struct sw_source_conf, max_record_bytes),
     .help = "Longer records are split into pieces flagged as truncated."},
    {.key = "labels", .type = SW__CT_KVMAP, .offset = offsetof(struct sw_source_conf, labels),
     .count_offset = offsetof(struct sw_source_conf, nlabels),
     .help = "Static labels added to every record (names: letters, digits, `_`, not starting with a digit). "
             "Their values, like every label value (file, pod, container names), pass through `redact`."},
    {.key = "truncate_shipped", .type = SW__CT_SIZE, .min = SW__KIB,
     .only = ONLY(SW_SOURCE_DOCKER) | ONLY(SW_SOURCE_CRI), .offset = offsetof(struct sw_source_conf, truncate_shipped),
     .help = "Opt-in, for dockerd without `max-size`: a container log at least this big is truncated in "
             "place once every byte of it is in the buffer (docs/architecture.md explains the residual race). Unset: never."},
};


/* A journal field name as journald accepts it: upper-case letters, digits and '_', not starting
 * with a digit, at most 64 bytes; and not one the labels already carry. */
static const char *bad_field(const char *f) {
  static const char *const taken[] = {"MESSAGE", "_SYSTEMD_UNIT", "SYSLOG_IDENTIFIER", "PRIORITY",
                                      "_BOOT_ID", "_HOSTNAME", NULL};
  size_t n = strlen(f);
  if (!n || n > 64 || (f[0] >= '0' && f[0] <= '9')) return "is not a journal field name";
  for (size_t k = 0; k < n; k++)
    if (!((f[k] >= 'A' && f[k] <= 'Z') || (f[k] >= '0' && f[k] <= '9') || f[k] == '_'))
      return "is not a journal field name (upper-case letters, digits and _, as in `_PID`)";
  for (size_t k = 0; taken[k]; k++)
    if (!strcmp(f, taken[k])) return "is a label already (line, unit, identifier, level, boot_id, host)";
  size_t u = 0;
  while (f[u] == '_') u++;
  if (!f[u]) return "is not a journal field name";
  return NULL;
}

/* A unit or identifier: what an sd-journal match can hold (it becomes "FIELD=value"). */
static void check_match_values(struct sw__conf_ctx *c, size_t i, const char *key, char *const *v, size_t n) {
  for (size_t k = 0; k < n; k++) {
    size_t len = strlen(v[k]);
    if (len && len <= 255 && !strchr(v[k], '\n')) continue;
    size_t saved = sw__conf_path_index(c, i);
    sw__conf_path_key(c, key);
    sw__conf_err(c, "%s", len ? "a value must be at most 255 bytes, on one line" : "an empty value matches nothing");
    sw__conf_path_pop(c, saved);
  }
}

static void check_journald(struct sw__conf_ctx *c, const struct sw_source_conf *s, size_t i) {
  check_match_values(c, i, "units", s->units, s->nunits);
  check_match_values(c, i, "exclude_units", s->exclude_units, s->nexclude_units);
  check_match_values(c, i, "identifiers", s->identifiers, s->nidentifiers);
  if (s->nfields > 32) {
    size_t saved = sw__conf_path_index(c, i);
    sw__conf_path_key(c, "fields");
    sw__conf_err(c, "at most 32 fields");
    sw__conf_path_pop(c, saved);
  }
  for (size_t k = 0; k < s->nfields; k++) {
    const char *why = bad_field(s->fields[k]);
    for (size_t j = 0; !why && j < k; j++)
      if (!strcmp(s->fields[j], s->fields[k])) why = "is listed twice";
    if (!why) continue;
    size_t saved = sw__conf_path_index(c, i);
    sw__conf_path_key(c, "fields");
    sw__conf_err(c, "\"%s\" %s", s->fields[k], why);
    sw__conf_path_pop(c, saved);
  }
}

static void check_sources(struct sw__conf_ctx *c, void *elems, size_t n) {
  sw__conf_check_unique(c, "source", elems, n, sizeof(struct sw_source_conf), offsetof(struct sw_source_conf, name));
  struct sw_source_conf *src = elems;
  for (size_t i = 0; i < n; i++) {
    if (src[i].type == SW_SOURCE_JOURNALD) check_journald(c, &src[i], i);
    if (!src[i].multiline.start || !src[i].multiline.preset) continue;
    size_t saved = sw__conf_path_index(c, i);
    sw__conf_path_key(c, "multiline");
    sw__conf_err(c, "set either start or preset, not both");
    sw__conf_path_pop(c, saved);
  }
}

static const struct sw__conf_table source_table = {
    .intro = "What to read. Each source is a set of files of one type, or a systemd journal (docs/journald.md).", ROWS(source_rows),
    .elem_size = sizeof(struct sw_source_conf), .discriminator = 1, .kind_noun = "source",
    .check_list = check_sources};

/* ---- sinks ---- */

#define HTTP_SINKS (ONLY(SW_SINK_LOKI) | ONLY(SW_SINK_ELASTICSEARCH))

static const struct sw__conf_row batch_rows[] = {
    {.key = "max_bytes", .type = SW__CT_SIZE, .min = SW__KIB, .max = 64 * SW__MIB,
     .offset = offsetof(struct sw_sink_conf, batch_max_bytes),
     .help = "A batch is cut once its chunks' records reach this size (whole chunks, so it can pass "
             "it by up to one chunk). Default 512KiB for Loki, 256KiB for Elasticsearch, whose "
             "documents repeat the labels: its request body is about 2.5 times the records (Loki's "
             "1.2), and each of the `concurrency` requests in flight holds its body in memory."},
    {.key = "max_wait", .type = SW__CT_DURATION, .def = "1s", .min = 1,
     .offset = offsetof(struct sw_sink_conf, batch_max_wait_ms), .help = "A partial batch is sent after this long, or as soon as no new chunk has come for "
             "200 ms (the end of a burst)."},
};
static const struct sw__conf_table batch_table = {
    .intro = "Request batching of the loki and elasticsearch sinks.", ROWS(batch_rows), .discriminator = -1};

static const struct sw__conf_row retry_rows[] = {
    {.key = "min_backoff", .type = SW__CT_DURATION, .def = "500ms", .min = 1, .max = 3600000,
     .offset = offsetof(struct sw_sink_conf, retry_min_ms),
     .help = "First wait after a failed request (network error, 408, 429, 5xx, 401, 403); it doubles "
             "with every attempt up to `max_backoff`, with full jitter."},
    {.key = "max_backoff", .type = SW__CT_DURATION, .def = "30s", .min = 1, .max = 3600000,
     .offset = offsetof(struct sw_sink_conf, retry_max_ms),
     .help = "Longest wait between attempts. A longer `Retry-After` from the server is honoured "
             "(up to 10 minutes). Requests are retried until they succeed: the records wait in the buffer."},
};
static const struct sw__conf_table retry_table = {
    .intro = "Retries of the network sinks.", ROWS(retry_rows), .discriminator = -1};

static const struct sw__conf_row object_rows[] = {
    {.key = "max_bytes", .type = SW__CT_SIZE, .def = "64MiB", .min = SW__MIB, .max = 5 * SW__GIB,
     .offset = offsetof(struct sw_sink_conf, object_max_bytes), .help = "Largest object before compression."},
    {.key = "max_wait", .type = SW__CT_DURATION, .def = "5m", .min = 1000,
     .offset = offsetof(struct sw_sink_conf, object_max_wait_ms), .help = "A partial object is uploaded after this long."},
    {.key = "part_size", .type = SW__CT_SIZE, .def = "8MiB", .min = 5 * SW__MIB, .max = 5 * SW__GIB,
     .offset = offsetof(struct sw_sink_conf, object_part_size),
     .help = "A compressed object bigger than this is sent as a multipart upload in parts of this "
             "size (S3's minimum part is 5 MiB), so a failed part is resent alone."},
    {.key = "compression", .type = SW__CT_ENUM, .flags = SW__CF_ENUM_STR, .def = "zstd",
     .values = object_compressions, .offset = offsetof(struct sw_sink_conf, compression),
     .help = "Compression of the uploaded NDJSON objects."},
};
static const struct sw__conf_table object_table = {
    .intro = "Objects written by the s3 sink.", ROWS(object_rows), .discriminator = -1};

static const struct sw__conf_row tls_rows[] = {
    {.key = "ca_file", .type = SW__CT_STRING, .flags = SW__CF_PATH | SW__CF_READABLE | SW__CF_NONEMPTY,
     .offset = offsetof(struct sw_sink_conf, tls.ca_file),
     .help = "PEM bundle of the CAs to trust instead of the system's."},
    {.key = "insecure_skip_verify", .type = SW__CT_BOOL, .def = "false",
     .offset = offsetof(struct sw_sink_conf, tls.insecure_skip_verify),
     .help = "Do not verify the server's certificate (testing only)."},
};
static const struct sw__conf_table tls_table = {
    .intro = "TLS settings of the HTTP sinks.", ROWS(tls_rows), .discriminator = -1};

static const struct sw__conf_row sink_rows[] = {
    {.key = "name", .type = SW__CT_STRING, .flags = SW__CF_REQUIRED | SW__CF_NAME,
     .offset = offsetof(struct sw_sink_conf, name), .help = "Unique among sinks; letters, digits, `_`, `.`, `-`."},
    {.key = "type", .type = SW__CT_ENUM, .flags = SW__CF_REQUIRED, .values = sink_types,
     .offset = offsetof(struct sw_sink_conf, type), .help = "Where records go."},
    {.key = "path", .type = SW__CT_STRING, .flags = SW__CF_REQUIRED | SW__CF_PATH | SW__CF_NONEMPTY,
     .only = ONLY(SW_SINK_FILE), .offset = offsetof(struct sw_sink_conf, path),
     .help = "NDJSON file the records are appended to."},
    {.key = "url", .type = SW__CT_STRING, .flags = SW__CF_REQUIRED | SW__CF_URL, .only = HTTP_SINKS,
     .offset = offsetof(struct sw_sink_conf, url), .help = "Base URL of the server, `http://` or `https://`."},
    {.key = "endpoint", .type = SW__CT_STRING, .flags = SW__CF_URL, .only = ONLY(SW_SINK_S3),
     .offset = offsetof(struct sw_sink_conf, endpoint),
     .help = "URL of an S3-compatible server (MinIO, ...); unset: AWS for `region`."},
    {.key = "query_url", .type = SW__CT_STRING, .flags = SW__CF_URL, .only = ONLY(SW_SINK_LOKI),
     .offset = offsetof(struct sw_sink_conf, query_url),
     .help = "Base URL of Loki's query API when it is not `url` (a write-only gateway). After a "
             "restart the sink asks it which entries of the batches that were in flight Loki "
             "already stored (`query_range`, same tenant and credentials), so that nothing is "
             "stored twice."},
    {.key = "tenant", .type = SW__CT_STRING, .only = ONLY(SW_SINK_LOKI),
     .offset = offsetof(struct sw_sink_conf, tenant),
     .help = "Sent as `X-Scope-OrgID`. `{label}` takes each record's label (`\"{namespace}\"`: one "
             "tenant per namespace, one request per tenant); a missing label is `unknown` (counted "
             "in `spillway_sink_label_missing_total`); characters Loki does not allow become `_`."},
    {.key = "labels", .type = SW__CT_KVMAP, .only = ONLY(SW_SINK_LOKI),
     .offset = offsetof(struct sw_sink_conf, labels), .count_offset = offsetof(struct sw_sink_conf, nlabels),
     .help = "Static labels added to every stream."},
    {.key = "index", .type = SW__CT_STRING, .flags = SW__CF_NONEMPTY, .def = "logs-%Y.%m.%d",
     .only = ONLY(SW_SINK_ELASTICSEARCH), .offset = offsetof(struct sw_sink_conf, index),
     .help = "Target index; `strftime` fields (`%Y`, `%m`, `%d`) come from the record's time, "
             "`{label}` from its labels (`logs-{namespace}-%Y.%m.%d`), lowercased, with characters an "
             "index name cannot hold made `_`; a missing label is `unknown` (counted)."},
    {.key = "bucket", .type = SW__CT_STRING, .flags = SW__CF_REQUIRED | SW__CF_NONEMPTY, .only = ONLY(SW_SINK_S3),
     .offset = offsetof(struct sw_sink_conf, bucket), .help = "Bucket the objects are written to."},
    {.key = "region", .type = SW__CT_STRING, .flags = SW__CF_NONEMPTY, .def = "us-east-1", .only = ONLY(SW_SINK_S3),
     .offset = offsetof(struct sw_sink_conf, region), .help = "Region used for request signing."},
    {.key = "prefix", .type = SW__CT_STRING, .only = ONLY(SW_SINK_S3), .offset = offsetof(struct sw_sink_conf, prefix),
     .help = "Object key prefix; `strftime` fields come from the object's earliest record, `{label}` "
             "from the records' labels (`{host}`, `{source}`, `{namespace}`, an extracted `{level}`): "
             "records with different values go to different objects. Characters other than letters, "
             "digits, `.`, `_`, `-` in a value become `_`; a missing label is `unknown` (counted)."},
    {.key = "compression", .type = SW__CT_ENUM, .flags = SW__CF_ENUM_STR, .def = "gzip",
     .values = http_compressions, .only = HTTP_SINKS, .offset = offsetof(struct sw_sink_conf, compression),
     .help = "Compression of request bodies."},
    {.key = "username", .type = SW__CT_STRING, .only = HTTP_SINKS, .offset = offsetof(struct sw_sink_conf, username),
     .help = "Basic authentication user; needs `password_file`."},
    {.key = "password_file", .type = SW__CT_SECRET, .only = HTTP_SINKS,
     .offset = offsetof(struct sw_sink_conf, password), .help = "File holding the basic authentication password."},
    {.key = "bearer_token_file", .type = SW__CT_SECRET, .only = HTTP_SINKS,
     .offset = offsetof(struct sw_sink_conf, bearer_token), .help = "File holding a bearer token."},
    {.key = "api_key_file", .type = SW__CT_SECRET, .only = ONLY(SW_SINK_ELASTICSEARCH),
     .offset = offsetof(struct sw_sink_conf, api_key), .help = "File holding an Elasticsearch API key (base64)."},
    {.key = "access_key_file", .type = SW__CT_SECRET, .only = ONLY(SW_SINK_S3),
     .offset = offsetof(struct sw_sink_conf, access_key), .help = "File holding the access key id."},
    {.key = "secret_key_file", .type = SW__CT_SECRET, .only = ONLY(SW_SINK_S3),
     .offset = offsetof(struct sw_sink_conf, secret_key), .help = "File holding the secret access key."},
    {.key = "session_token_file", .type = SW__CT_SECRET, .only = ONLY(SW_SINK_S3),
     .offset = offsetof(struct sw_sink_conf, session_token),
     .help = "File holding a session token (temporary credentials), sent as `x-amz-security-token`."},
    {.key = "addressing", .type = SW__CT_ENUM, .def = "auto", .values = s3_addressings, .only = ONLY(SW_SINK_S3),
     .offset = offsetof(struct sw_sink_conf, addressing),
     .help = "`path` (`endpoint/bucket/key`: MinIO and most self-hosted stores), `virtual` "
             "(`bucket.host/key`), or `auto`: path with an `endpoint`, virtual for AWS."},
    {.key = "structured_metadata", .type = SW__CT_STRLIST, .only = ONLY(SW_SINK_LOKI),
     .offset = offsetof(struct sw_sink_conf, structured_metadata),
     .count_offset = offsetof(struct sw_sink_conf, nstructured_metadata),
     .help = "Labels sent as structured metadata of each entry instead of stream labels (Loki 2.9+), "
             "for high-cardinality ones such as `container_id` or `pod_uid`."},
    {.key = "stream_labels", .type = SW__CT_STRLIST, .only = ONLY(SW_SINK_LOKI),
     .offset = offsetof(struct sw_sink_conf, stream_labels),
     .count_offset = offsetof(struct sw_sink_conf, nstream_labels), .def_doc = "all labels",
     .help = "The labels that make a stream (`[namespace, app, level]`); the others are dropped unless "
             "listed in `structured_metadata`. `stream` and the record flags (`parse_error`, "
             "`truncated`) are always stream labels."},
    {.key = "match", .type = SW__CT_STRLIST, .offset = offsetof(struct sw_sink_conf, match),
     .count_offset = offsetof(struct sw_sink_conf, nmatch),
     .help = "Routing: label matchers as in `spillway search --label`, all must hold; the sink receives "
             "only the records that satisfy them (extracted labels count). None: every record."},
    {.key = "merge_json", .type = SW__CT_BOOL, .def = "true", .only = ONLY(SW_SINK_ELASTICSEARCH),
     .offset = offsetof(struct sw_sink_conf, merge_json),
     .help = "A payload that is a JSON object becomes the document's fields (beside `@timestamp`, "
             "`labels` and `stream`, which a payload field of the same name replaces); other lines, "
             "or all with `false`, go to `message`."},
    {.key = "concurrency", .type = SW__CT_UINT, .def = "2", .min = 1, .max = 32, .only = HTTP_SINKS,
     .width = WIDTH(struct sw_sink_conf, concurrency), .offset = offsetof(struct sw_sink_conf, concurrency),
     .help = "Requests in flight at once. Batches are acknowledged in order whatever order their "
             "answers come in. The s3 sink uploads one object at a time."},
    {.key = "timeout", .type = SW__CT_DURATION, .def = "30s", .min = 100, .max = 3600000,
     .only = HTTP_SINKS | ONLY(SW_SINK_S3), .offset = offsetof(struct sw_sink_conf, timeout_ms),
     .help = "Longest a request may take, connection included; then it is retried."},
    {.key = "connect_timeout", .type = SW__CT_DURATION, .def = "10s", .min = 100, .max = 600000,
     .only = HTTP_SINKS | ONLY(SW_SINK_S3), .offset = offsetof(struct sw_sink_conf, connect_timeout_ms),
     .help = "Longest the TCP and TLS connection set-up may take."},
    {.key = "retry", .type = SW__CT_OBJECT, .table = &retry_table, .only = HTTP_SINKS | ONLY(SW_SINK_S3),
     .help = "See below."},
    {.key = "batch", .type = SW__CT_OBJECT, .table = &batch_table, .only = HTTP_SINKS, .help = "See below."},
    {.key = "object", .type = SW__CT_OBJECT, .table = &object_table, .only = ONLY(SW_SINK_S3), .help = "See below."},
    {.key = "tls", .type = SW__CT_OBJECT, .table = &tls_table, .only = HTTP_SINKS | ONLY(SW_SINK_S3),
     .help = "See below."},
};

static bool has(const cJSON *obj, const char *key) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
  return it && !cJSON_IsNull(it);
}

/* `need` must be set when `given` is. */
static void needs(struct sw__conf_ctx *c, const cJSON *obj, const char *given, const char *need) {
  if (!has(obj, given) || has(obj, need)) return;
  size_t saved = sw__conf_path_key(c, need);
  sw__conf_err(c, "required when %s is set", given);
  sw__conf_path_pop(c, saved);
}


static void check_sink(struct sw__conf_ctx *c, void *base, const cJSON *obj, int kind) {
  sw__conf_check_sink_match(c, base);
  if (kind == SW_SINK_LOKI || kind == SW_SINK_ELASTICSEARCH) {
    needs(c, obj, "username", "password_file");
    needs(c, obj, "password_file", "username");
    int methods = (has(obj, "username") || has(obj, "password_file")) + has(obj, "bearer_token_file") +
                  has(obj, "api_key_file");
    if (methods > 1)
      sw__conf_err(c, "use only one of username/password_file, bearer_token_file%s",
                   kind == SW_SINK_ELASTICSEARCH ? ", api_key_file" : "");
  }
  if (kind == SW_SINK_S3) {
    needs(c, obj, "access_key_file", "secret_key_file");
    needs(c, obj, "secret_key_file", "access_key_file");
  }
}

static void check_sinks(struct sw__conf_ctx *c, void *elems, size_t n) {
  sw__conf_check_unique(c, "sink", elems, n, sizeof(struct sw_sink_conf), offsetof(struct sw_sink_conf, name));
}

static const struct sw__conf_table sink_table = {
    .intro = "Where records are shipped. Keys marked with sink types apply to those types only.",
    ROWS(sink_rows), .elem_size = sizeof(struct sw_sink_conf), .discriminator = 1, .kind_noun = "sink",
    .check = check_sink, .check_list = check_sinks};

/* ---- redact ---- */

static const struct sw__conf_row redact_rule_rows[] = {
    {.key = "name", .type = SW__CT_STRING, .flags = SW__CF_REQUIRED | SW__CF_NAME,
     .offset = offsetof(struct sw_redact_rule, name),
     .help = "Unique among rules and enabled packs; the rule's label in the redaction counters."},
    {.key = "pattern", .type = SW__CT_STRING, .flags = SW__CF_REQUIRED | SW__CF_REGEX | SW__CF_NONEMPTY,
     .offset = offsetof(struct sw_redact_rule, pattern),
     .help = "What to replace; matched against the bytes of each record (no UTF-8 mode), every match."},
    {.key = "replace", .type = SW__CT_STRING, .def = SW_REDACT_DEFAULT_REPLACE,
     .offset = offsetof(struct sw_redact_rule, replace),
     .help = "Replacement text: `$1`..`$9` insert a group of the match, `${name}` a named group, `$$` a `$`. "
             "In this file `${...}` and `$$` are environment expansion first: write `$${name}` and `$$$$`."},
};
static const struct sw__conf_table redact_rule_table = {
    .intro = "User rules, applied in order after the built-in packs, each to the result of the one before.",
    ROWS(redact_rule_rows), .elem_size = sizeof(struct sw_redact_rule), .discriminator = -1};

static const struct sw__conf_row redact_fields_rows[] = {
    {.key = "keys", .type = SW__CT_STRLIST, .offset = offsetof(struct sw_config, redact.keys),
     .count_offset = offsetof(struct sw_config, redact.nkeys),
     .help = "JSON keys whose values are redacted: any case, at any depth, also inside arrays."},
    {.key = "action", .type = SW__CT_ENUM, .def = "mask", .values = redact_actions,
     .offset = offsetof(struct sw_config, redact.action),
     .help = "`mask`: the value becomes `\"***\"`; `hash`: `\"sha256:<16 hex>\"`, the start of SHA-256(salt + "
             "value), equal values give equal tokens; `drop`: the key and its value are removed."},
};
static const struct sw__conf_table redact_fields_table = {
    .intro = "JSON key masking, for records whose payload is a JSON object (a docker `log` value, a "
             "`format: json` line); other records skip it and go to the rules.",
    ROWS(redact_fields_rows), .discriminator = -1};

static const struct sw__conf_row redact_rows[] = {
    {.key = "builtin", .type = SW__CT_STRLIST, .offset = offsetof(struct sw_config, redact.builtin),
     .count_offset = offsetof(struct sw_config, redact.nbuiltin),
     .help = "Built-in packs to enable: `email`, `bearer_token`, `basic_auth`, `jwt`, `aws_access_key`, "
             "`aws_secret_key`, `credit_card`, `password_kv`, `token_kv`, `url_credentials`, `private_key`, "
             "`cli_credentials`, `ipv4`, `ipv6`. Each replaces "
             "what it finds with `[REDACTED:<pack>]` and keeps the context (the key, `Bearer `, the URL's "
             "user and host)."},
    {.key = "rules", .type = SW__CT_ARRAY, .table = &redact_rule_table, .offset = offsetof(struct sw_config, redact.rules),
     .count_offset = offsetof(struct sw_config, redact.nrules), .help = "List of user rules, see below."},
    {.key = "fields", .type = SW__CT_OBJECT, .table = &redact_fields_table, .help = "See below."},
    {.key = "hash_salt_file", .type = SW__CT_SECRET, .offset = offsetof(struct sw_config, redact.hash_salt),
     .help = "File holding the salt of `fields.action: hash`; required with it."},
};

int sw_config_redactor(const struct sw_config *cfg, struct sw_redactor **out, char *err, size_t errlen) {
  const struct sw_redact_section *rs = &cfg->redact;
  struct sw_redact_rule_conf *rules = calloc(rs->nrules ? rs->nrules : 1, sizeof *rules);
  *out = NULL;
  if (!rules) {
    snprintf(err, errlen, "out of memory");
    return SW_ENOMEM;
  }
  for (size_t i = 0; i < rs->nrules; i++)
    rules[i] = (struct sw_redact_rule_conf){rs->rules[i].name, rs->rules[i].pattern, rs->rules[i].replace};
  struct sw_redact_conf conf = {
      .builtins = (const char *const *)rs->builtin, .nbuiltins = rs->nbuiltin, .rules = rules,
      .nrules = rs->nrules, .keys = (const char *const *)rs->keys, .nkeys = rs->nkeys, .action = rs->action,
      .salt = rs->hash_salt, .salt_len = rs->hash_salt ? strlen(rs->hash_salt) : 0};
  /* A whole record is redacted before it is split: room for the largest one, rewritten. */
  for (size_t i = 0; i < cfg->nsources; i++)
    if (2 * cfg->sources[i].max_record_bytes > conf.scratch_max)
      conf.scratch_max = (size_t)(2 * cfg->sources[i].max_record_bytes);
  if (conf.scratch_max < SW_REDACT_DEFAULT_SCRATCH_MAX) conf.scratch_max = 0; /* the default */
  int rc = sw_redactor_create(&conf, out, err, errlen);
  if (rc == SW_ECONFIG && !strncmp(err, "keys[", 5)) { /* the engine's keys are fields.keys here */
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", err);
    snprintf(err, errlen, "fields.%s", tmp);
  }
  free(rules);
  return rc;
}

/* Compiles the section the way the agent will, so that a config that loads always runs:
 * unknown packs (with a suggestion), duplicate names, bad replacement templates. */
static void check_redact(struct sw__conf_ctx *c, void *base, const cJSON *obj, int kind) {
  struct sw_config *cfg = base;
  struct sw_redactor *r = NULL;
  char err[320];
  (void)kind;
  if (cfg->redact.action == SW_REDACT_HASH && !cfg->redact.hash_salt) {
    if (!has(obj, "hash_salt_file")) { /* present but unreadable: reported already */
      size_t saved = sw__conf_path_key(c, "hash_salt_file");
      sw__conf_err(c, "required when fields.action is hash");
      sw__conf_path_pop(c, saved);
    }
    return;
  }
  for (size_t i = 0; i < cfg->redact.nrules; i++)
    if (!cfg->redact.rules[i].name || !cfg->redact.rules[i].pattern || !cfg->redact.rules[i].replace)
      return; /* that rule's problem is reported already */
  int rc = sw_config_redactor(cfg, &r, err, sizeof err);
  sw_redactor_destroy(r);
  if (rc == SW_ENOMEM) {
    c->nomem = true;
  } else if (rc) {
    char *sep = strstr(err, ": "), *why = sep ? sep + 2 : err;
    if (sep) *sep = '\0';
    size_t saved = sep ? sw__conf_path_key(c, err) : c->pathlen;
    sw__conf_err(c, "%s", why);
    sw__conf_path_pop(c, saved);
  }
}

static const struct sw__conf_table redact_table = {
    .intro = "Redaction of secrets and personal data before records are buffered: first JSON key masking "
             "(`fields`), then the built-in packs in the order below whatever the order of `builtin`, then "
             "the user rules; each step works on the result of the one before. `spillway redact -c FILE` "
             "applies the section to stdin. Packs are opt-in; each replaces the secret with "
             "`[REDACTED:<pack>]`:\n\n"
             "- `private_key`: `-----BEGIN ... PRIVATE KEY-----` through its `-----END ...-----`, across the "
             "lines of a multi-line record; without an END, to the end of the record.\n"
             "- `url_credentials`: the password of `scheme://user:password@host`.\n"
             "- `basic_auth`: the base64 after `Basic ` (`Authorization: Basic dXNlcjpwYXNz`), only when it "
             "decodes to `user:password`; `Basic auth failed` stays.\n"
             "- `bearer_token`: the token after `Bearer ` (any case); a plain word (`bearer of bad news`) is "
             "not a token.\n"
             "- `jwt`: three base64url segments starting `eyJ`.\n"
             "- `aws_access_key`: `AKIA`/`ASIA` + 16 upper-case letters or digits.\n"
             "- `aws_secret_key`: a 40-character value after a key such as `aws_secret_access_key`, "
             "`SecretAccessKey` or `secret_key` and `:` or `=`.\n"
             "- `password_kv`: the value after `password`, `passwd`, `pass`, `pwd` or `secret` (quoted or "
             "not, optionally with a prefix such as `db_` or `client.`; `password`, `passwd` and `secret` "
             "also glued to a word: `newPassword`, `clientSecret`, `PGPASSWORD`) and `:` or `=`; not "
             "`password_policy=strict`, `bypass=`, `userpass=`, nor the values `true`, `false`, `null`. "
             "Also URL-encoded (`password%3Dx`, up to `%26`), as a flag (`--password=x`) and as JSON inside a "
             "JSON string (`\\\"password\\\":\\\"x\\\"`, also for `token_kv`).\n"
             "- `token_kv`: the same value forms after a key ending in `token` (`access_token`, `X-Auth-Token`, "
             "`accessToken`) or in `key` after `api`, `secret`, `access`, `private`, `client`, `auth`, `app`, "
             "`master`, `signing` or `encryption` (`api_key`, `apikey`, `x-api-key`, `secret_key`); not "
             "`tokenizer=`, `token_count=`, `max_tokens=`, `key=`, `keyboard=`, `monkey=`, `primary_key=`, "
             "nor the values `true`, `false`, `null`.\n"
             "- `cli_credentials`: the password of `-u user:password`, `-U`, `--user[=]`, `--proxy-user[=]` "
             "(curl, wget); not `sort -u file`, `ulimit -u 100`, `git push -u origin main` or a numeric "
             "`-u 1000:1000`, but `docker run -u app:app` is masked.\n"
             "- `email`: `local@domain.tld`, also with a `-` after it (`user@example.com-pod`); not "
             "`user@localhost`, `lodash@4.17.21` or `icon@2x.png`.\n"
             "- `credit_card`: 13-19 digits (single spaces or dashes allowed) with a card network prefix and "
             "a valid Luhn check digit; timestamps, epoch milliseconds and digits inside hex ids are not "
             "cards.\n"
             "- `ipv6`: full, compressed and IPv4-mapped addresses; not times, MAC addresses or `std::string`.\n"
             "- `ipv4`: dotted quads 0-255; not `v1.2.3.4` or `1.2.3.4.5` (a bare version `1.2.3.4` is "
             "masked).",
    ROWS(redact_rows), .discriminator = -1, .check = check_redact};

/* ---- server, log, top level ---- */

static const struct sw__conf_row server_rows[] = {
    {.key = "listen", .type = SW__CT_STRING, .flags = SW__CF_LISTEN, .def = "127.0.0.1:2020",
     .offset = offsetof(struct sw_config, server.listen),
     .help = "HOST:PORT of the HTTP API (/health, /ready, /metrics, /api/v1/search, /loki/api/v1/...); "
             "port 0 picks a free port (logged at start); `\"\"` or `\"0\"` turns it off."},
    {.key = "enable_reload", .type = SW__CT_BOOL, .def = "false",
     .offset = offsetof(struct sw_config, server.enable_reload),
     .help = "Serve `POST /-/reload` (re-read the configuration, as SIGHUP does). Off by default: "
             "anyone who can reach `listen` could trigger it."},
    {.key = "enable_search", .type = SW__CT_BOOL, .def = "true",
     .offset = offsetof(struct sw_config, server.enable_search),
     .help = "Serve `GET /api/v1/search` and Loki's query API (`/loki/api/v1/query_range`, `labels`, "
             "`tail`, ...: Grafana and logcli against this node, docs/loki-api.md) over the buffered "
             "log records, redacted. Turn it off when `listen` is reachable by more than the people "
             "who may read the logs (`spillway search` on the host or in the pod still works)."},
};
static const struct sw__conf_table server_table = {
    .intro = "The local HTTP server.", ROWS(server_rows), .discriminator = -1};

static const struct sw__conf_row log_rows[] = {
    {.key = "level", .type = SW__CT_ENUM, .def = "info", .values = log_levels,
     .offset = offsetof(struct sw_config, log.level), .help = "Least severe level of the agent's own log."},
    {.key = "format", .type = SW__CT_ENUM, .def = "json", .values = log_formats,
     .offset = offsetof(struct sw_config, log.format), .help = "Format of the agent's own log lines on stderr."},
};
static const struct sw__conf_table log_table = {
    .intro = "The agent's own log.", ROWS(log_rows), .discriminator = -1};

static const struct sw__conf_row root_rows[] = {
    {.key = "data_dir", .type = SW__CT_STRING, .flags = SW__CF_PATH | SW__CF_NONEMPTY, .def = "/var/lib/spillway",
     .offset = offsetof(struct sw_config, data_dir), .help = "Directory of spillway.db (buffer and state)."},
    {.key = "hostname", .type = SW__CT_STRING, .flags = SW__CF_NONEMPTY, .def_doc = "the system's host name",
     .offset = offsetof(struct sw_config, hostname), .help = "Value of the `host` label."},
    {.key = "buffer", .type = SW__CT_OBJECT, .table = &buffer_table, .help = "See below."},
    {.key = "sources", .type = SW__CT_ARRAY, .table = &source_table, .offset = offsetof(struct sw_config, sources),
     .count_offset = offsetof(struct sw_config, nsources), .help = "List of sources, see below."},
    {.key = "sinks", .type = SW__CT_ARRAY, .table = &sink_table, .offset = offsetof(struct sw_config, sinks),
     .count_offset = offsetof(struct sw_config, nsinks), .help = "List of sinks, see below."},
    {.key = "redact", .type = SW__CT_OBJECT, .table = &redact_table, .help = "See below."},
    {.key = "filters", .type = SW__CT_ARRAY, .table = &sw__conf_filter_table, .offset = offsetof(struct sw_config, filters),
     .count_offset = offsetof(struct sw_config, nfilters), .help = "Ordered list of filters, see below."},
    {.key = "log_metrics", .type = SW__CT_ARRAY, .table = &sw__conf_log_metric_table,
     .offset = offsetof(struct sw_config, log_metrics), .count_offset = offsetof(struct sw_config, nlog_metrics),
     .help = "Counters of matching records on /metrics, see below."},
    {.key = "retention", .type = SW__CT_ARRAY, .table = &sw__conf_retention_table,
     .offset = offsetof(struct sw_config, retention), .count_offset = offsetof(struct sw_config, nretention),
     .help = "Rotation, compression and pruning of local files, see below."},
    {.key = "disk_pressure", .type = SW__CT_OBJECT, .table = &sw__conf_disk_pressure_table,
     .help = "Relief when disk usage crosses thresholds, see below."},
    {.key = "kubernetes", .type = SW__CT_OBJECT, .table = &sw__conf_kube_table, .help = "See below."},
    {.key = "server", .type = SW__CT_OBJECT, .table = &server_table, .help = "See below."},
    {.key = "log", .type = SW__CT_OBJECT, .table = &log_table, .help = "See below."},
};

static void check_root(struct sw__conf_ctx *c, void *base, const cJSON *obj, int kind) {
  struct sw_config *cfg = base;
  (void)kind;
  if (!cfg->hostname && !has(obj, "hostname")) {
    char host[256] = "";
    int rc = gethostname(host, sizeof host - 1);
    if (rc || !host[0]) {
      size_t saved = sw__conf_path_key(c, "hostname");
      sw__conf_err(c, "cannot get the host name (%s); set it here", rc ? strerror(errno) : "it is empty");
      sw__conf_path_pop(c, saved);
    } else {
      cfg->hostname = strdup(host);
      if (!cfg->hostname) c->nomem = true;
    }
  }
  for (size_t i = 0; i < cfg->nsinks; i++) { /* batch.max_bytes: the default depends on the type */
    struct sw_sink_conf *k = &cfg->sinks[i];
    if (!k->batch_max_bytes && (k->type == SW_SINK_LOKI || k->type == SW_SINK_ELASTICSEARCH))
      k->batch_max_bytes = k->type == SW_SINK_LOKI ? 512 * SW__KIB : 256 * SW__KIB;
  }
  if (cfg->buffer.max_bytes && cfg->buffer.chunk_max_bytes && cfg->buffer.max_bytes < cfg->buffer.chunk_max_bytes) {
    char sz[32];
    sw__conf_format_size(sz, sizeof sz, cfg->buffer.chunk_max_bytes);
    size_t saved = sw__conf_path_key(c, "buffer");
    sw__conf_path_key(c, "max_bytes");
    sw__conf_err(c, "must be at least buffer.chunk.max_bytes (%s)", sz);
    sw__conf_path_pop(c, saved);
  }
  sw__conf_check_own(c, cfg);
  sw__conf_check_extract_names(c, cfg);
}

const struct sw__conf_table sw__conf_root = {
    .intro = "Keys at the top of the file.", ROWS(root_rows), .discriminator = -1, .check = check_root};
