/* yaml.h - config text (YAML 1.2 subset, or JSON) to a cJSON tree; ${ENV} expansion.
 *
 * Mappings become objects, sequences arrays. Plain scalars that the YAML 1.2 core schema reads
 * as null, booleans, integers or floats become cJSON null/bool/number; every other scalar
 * (quoted, block, or tagged !!str) is a string. Anchors and aliases work (an alias is a deep copy,
 * bounded: see the limits in config/yaml.c), as does the `<<` merge key. Duplicate keys, more than
 * one document, complex keys, unknown tags and NUL characters are errors. JSON is read by the
 * same parser: JSON is YAML flow syntax, and this keeps line/column positions in messages.
 */
#ifndef SW_CONF_YAML_H
#define SW_CONF_YAML_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "schema.h"

/* Parses text[0..len) into *out (caller frees with cJSON_Delete; an empty document is an empty
 * object). On a problem, reports "FILE: line L, column C: reason" (duplicate keys:
 * "FILE: key.path: duplicate key (line L, column C)") through c and returns SW_ECONFIG with
 * *out NULL; SW_ENOMEM when out of memory. */
int sw__conf_yaml_parse(struct sw__conf_ctx *c, const char *text, size_t len, cJSON **out) SW_MUST_CHECK;

/* Replaces ${NAME} and ${NAME:-default} in every string value (not in keys) with the
 * environment's value, and "$$" with "$". The substituted text is not scanned again. A value
 * that cannot be expanded is reported ("key.path: environment variable NAME is not set") and
 * turned into a cJSON_Raw node, which the schema pass skips: the error is already said. */
void sw__conf_expand_env(struct sw__conf_ctx *c, cJSON *root);

#endif
