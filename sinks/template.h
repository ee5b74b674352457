/* template.h - `{label}` in a sink's text settings: Loki `tenant`, Elasticsearch `index`, S3
 * `prefix`. A label is looked up in the record's own labels, then in its chunk's; a missing one
 * expands to `unknown` and is counted. Each sink keeps values to the characters its server
 * accepts (see enum sw_tmpl_charset). Pure.
 */
#ifndef SW_TEMPLATE_H
#define SW_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "../agent/buffer/chunk.h"
#include "../common/buf.h"
#include "../common/error.h"

enum sw_tmpl_charset {
  SW_TMPL_TENANT, /* Loki tenant ids: [A-Za-z0-9!._*'()-], at most 150 bytes; others -> '_' */
  SW_TMPL_INDEX,  /* Elasticsearch index names: lowercase; \ / * ? " < > | , # space : -> '_';
                   * '%' doubled (the result is a strftime pattern) */
  SW_TMPL_KEY,    /* S3 key segments: [A-Za-z0-9._-]; others (including '/') -> '_' */
};

/* 1 when text has a `{label}` to expand. */
int sw_tmpl_dynamic(const char *text);

/* Expands text for a record of a chunk (labels_json: the chunk's set; rec may be NULL: the
 * chunk's labels only). Appends to out; *missing (may be NULL) grows by the labels not found.
 * `{` without a closing `}` is copied as it is. */
int sw_tmpl_expand(const char *text, enum sw_tmpl_charset cs, const char *labels_json,
                   const struct sw_record_view *rec, struct sw_buf *out, uint64_t *missing) SW_MUST_CHECK;

#endif
