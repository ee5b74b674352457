/* schema.h - private to the config module (agent/config/).
 *
 * The loader turns the config text into a cJSON tree (config/yaml.c), expands ${ENV}, then walks
 * the tree against schema tables (config/schema.c). A table describes one struct: each row names
 * a key, its type, default, help text and where the value lands (offsetof). The same rows drive
 * validation, defaults, freeing (config.c) and the Markdown reference (config/docs.c), so a new
 * key is one new row. Nested mappings such as `buffer.chunk` are flattened into the parent
 * struct: the rows of their sub-table carry offsets into the parent.
 *
 * Errors go through struct sw__conf_ctx, which knows the file name and the key path being
 * checked, so every message comes out as "FILE: key.path: reason".
 */
#ifndef SW_CONFIG_SCHEMA_H
#define SW_CONFIG_SCHEMA_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define SW__KIB ((uint64_t)1 << 10)
#define SW__MIB ((uint64_t)1 << 20)
#define SW__GIB ((uint64_t)1 << 30)

#define SW__CONF_MAX_TEXT (4 * SW__MIB) /* a bigger config file is refused */
#define SW__CONF_MAX_ERRORS 100         /* then one "too many errors" line */
#define SW__CONF_PATH_MAX 256           /* key paths longer than this are cut with "..." */

/* The field of type T at byte offset off in the struct at base (a row's offset). */
#define SW__CONF_FIELD(base, off, T) ((T *)(void *)((char *)(base) + (off)))

enum sw__conf_type {
  SW__CT_STRING,      /* char * */
  SW__CT_BOOL,        /* bool; also the strings "true"/"false" (after ${ENV} expansion) */
  SW__CT_UINT,        /* uint32_t or uint64_t (row.width) within [min, max] */
  SW__CT_SIZE,        /* uint64_t bytes: "64KiB" or an integer, within [min, max] */
  SW__CT_DURATION,    /* uint64_t milliseconds: "500ms", "1h30m", within [min, max] */
  SW__CT_ENUM,        /* int index into row.values, or char * with SW__CF_ENUM_STR */
  SW__CT_STRLIST,     /* char ** + size_t count (row.count_offset); a lone string is a list of 1 */
  SW__CT_KVMAP,       /* struct sw_kv * + size_t count; keys are label names */
  SW__CT_OBJECT,      /* nested mapping: row.table's rows, offsets into the same struct */
  SW__CT_ARRAY,       /* list of mappings: T * + size_t count, T described by row.table */
  SW__CT_SECRET,      /* `*_file`: a path read at load time; the content goes to char * */
  SW__CT_UNSUPPORTED, /* documented section this build does not implement yet */
};

enum sw__conf_flag {
  SW__CF_REQUIRED = 1 << 0, /* absent (or null) is an error when the row applies */
  SW__CF_PATH = 1 << 1,     /* relative paths resolve against the config file's directory */
  SW__CF_GLOB = 1 << 2,     /* glob syntax is checked (implies path resolution) */
  SW__CF_NAME = 1 << 3,     /* [A-Za-z0-9_.-]+ */
  SW__CF_REGEX = 1 << 4,    /* must compile with PCRE2 */
  SW__CF_NONEMPTY = 1 << 5, /* "" or [] is an error */
  SW__CF_ENUM_STR = 1 << 6, /* SW__CT_ENUM stores a copy of the string, not the index */
  SW__CF_URL = 1 << 7,      /* http:// or https:// */
  SW__CF_LISTEN = 1 << 8,   /* HOST:PORT, or "" / "0" for off */
  SW__CF_READABLE = 1 << 9, /* a file that must be readable now (not read) */
  SW__CF_KV_LIST = 1 << 10, /* KVMAP: a value may be a list of strings, stored joined by '\n' */
};

struct sw__conf_ctx;
struct sw__conf_table;

struct sw__conf_row {
  const char *key;
  enum sw__conf_type type;
  unsigned flags;               /* enum sw__conf_flag */
  const char *def;              /* default, written as in a config file; NULL: none */
  const char *def_doc;          /* docs text when the default is computed (hostname) */
  const char *help;             /* one sentence for the reference */
  size_t offset;                /* offsetof the field in the table's struct */
  size_t count_offset;          /* STRLIST, KVMAP, ARRAY: offsetof the size_t count */
  unsigned width;               /* UINT: sizeof the field (4 or 8) */
  uint64_t min, max;            /* UINT, SIZE, DURATION bounds; max 0: no upper bound */
  const char *const *values;    /* ENUM: allowed values, NULL-terminated; index = stored int */
  const struct sw__conf_table *table; /* OBJECT, ARRAY */
  unsigned only;                /* mask of (1u << discriminator value) it applies to; 0: all */
};

/* Cross-key rules that rows cannot express, run after the rows of one mapping. `kind` is the
 * discriminator's value (or -1 when unknown or the table has none). */
typedef void (*sw__conf_check_fn)(struct sw__conf_ctx *c, void *base, const cJSON *obj, int kind);
/* Rules across the elements of a list (unique names), run after the list is converted. */
typedef void (*sw__conf_check_list_fn)(struct sw__conf_ctx *c, void *elems, size_t n);

struct sw__conf_table {
  const char *intro;           /* docs paragraph under the section heading */
  const struct sw__conf_row *rows;
  size_t nrows;
  size_t elem_size;            /* ARRAY element size */
  int discriminator;           /* index of the ENUM row that selects `only`; -1: none */
  const char *kind_noun;       /* "source", "sink": "not valid for sink type loki" */
  sw__conf_check_fn check;
  sw__conf_check_list_fn check_list;
};

extern const struct sw__conf_table sw__conf_root; /* the whole file (config/schema.c) */
extern const struct sw__conf_table sw__conf_retention_table;     /* config/retention.c */
extern const struct sw__conf_table sw__conf_disk_pressure_table; /* config/retention.c */
extern const struct sw__conf_table sw__conf_kube_table;          /* config/kube.c */
extern const struct sw__conf_table sw__conf_extract_table;       /* config/process.c */
extern const struct sw__conf_table sw__conf_filter_table;        /* config/process.c */
extern const struct sw__conf_table sw__conf_log_metric_table;    /* config/process.c */
/* A sink's match and stream_labels (config/process.c). */
void sw__conf_check_sink_match(struct sw__conf_ctx *c, struct sw_sink_conf *k);
/* "duplicate NOUN name ..." for each element of elems[n] (size bytes each) whose char * name at
 * name_off repeats an earlier one's (config/types.c). */
void sw__conf_check_unique(struct sw__conf_ctx *c, const char *noun, void *elems, size_t n, size_t size,
                           size_t name_off);
/* Extracted label names must not be ones a file's label set has (config/process.c). */
void sw__conf_check_extract_names(struct sw__conf_ctx *c, const struct sw_config *cfg);

struct sw__conf_ctx {
  const char *file;            /* name used in messages (borrowed) */
  const char *basedir;         /* absolute directory relative paths resolve against (borrowed) */
  struct sw_conf_errors *errs; /* where messages go (borrowed) */
  char path[SW__CONF_PATH_MAX];
  size_t pathlen;
  size_t nerrs;                /* errors reported (including any dropped past the cap) */
  bool nomem;                  /* an allocation failed: the load returns SW_ENOMEM */
};


/* Checks one mapping against table t and fills base (config.c): unknown keys, keys of another
 * source/sink type, values, required keys, defaults, then t->check. obj may be NULL (defaults). */
void sw__conf_apply_table(struct sw__conf_ctx *c, const struct sw__conf_table *t, const cJSON *obj, void *base);
/* Converts one present, non-null value it for row r into base (config/convert.c). */
void sw__conf_convert(struct sw__conf_ctx *c, const struct sw__conf_row *r, const cJSON *it, void *base);

/* No source glob may match data_dir or a file sink's output (config/own.c). */
void sw__conf_check_own(struct sw__conf_ctx *c, const struct sw_config *cfg);

/* Key path: push returns the length to give back to pop. */
size_t sw__conf_path_key(struct sw__conf_ctx *c, const char *key);
size_t sw__conf_path_index(struct sw__conf_ctx *c, size_t i);
void sw__conf_path_pop(struct sw__conf_ctx *c, size_t len);

/* Appends "FILE: key.path: <fmt>" ("FILE: <fmt>" at the top level). Never fails: on ENOMEM it
 * sets c->nomem. */
void sw__conf_err(struct sw__conf_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends "FILE: <fmt>" whatever the current path (syntax errors carry their own position). */
void sw__conf_err_file(struct sw__conf_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes s into buf as a double-quoted, escaped string, cut to ~60 characters; returns buf. */
const char *sw__conf_quote(char *buf, size_t n, const char *s);
/* What a value is, for "got ...": "\"text\"", "5", "true", "null", "a list", "a mapping";
 * written into buf, which is returned. */
const char *sw__conf_describe(char *buf, size_t n, const cJSON *item);

/* Size/duration parsing with the reason: 0, SW_EPARSE or SW_ETOOBIG. *hint (may be NULL) is set
 * to an extra explanation or NULL. */
int sw__conf_parse_size(const char *s, uint64_t *out, const char **hint) SW_MUST_CHECK;
int sw__conf_parse_duration(const char *s, uint64_t *out, const char **hint) SW_MUST_CHECK;
/* Exact short text: 65536 -> "64KiB", 5000 -> "4999B" style fallback; 90000 ms -> "1m30s". */
void sw__conf_format_size(char *buf, size_t n, uint64_t bytes);
void sw__conf_format_duration(char *buf, size_t n, uint64_t ms);

/* NULL when pattern is a usable glob, else the reason ("unterminated ["). */
const char *sw__conf_glob_problem(const char *pattern);
bool sw__conf_valid_name(const char *s);       /* [A-Za-z0-9_.-]+ */
bool sw__conf_valid_label_name(const char *s); /* [A-Za-z_][A-Za-z0-9_]* */
/* Edit distance (with transpositions), capped at 99 for long inputs. */

/* Relative path p joined to basedir (glob metacharacters of basedir escaped when glob). Caller
 * frees with free(); NULL on ENOMEM. */
char *sw__conf_resolve(const char *basedir, const char *p, bool glob);

#endif
