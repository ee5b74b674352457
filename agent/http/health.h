/* health.h - `spillway health`: GET the agent's own /health or /ready (for container
 * HEALTHCHECKs in an image that has no curl or shell). */
#ifndef SW_HEALTH_H
#define SW_HEALTH_H

#include <stddef.h>

/* GET `path` from the agent listening on `listen` (server.listen syntax; a wildcard host is
 * probed on loopback) within timeout_ms. Returns the HTTP status, or -1 with `err` set. The
 * start of the answer's body goes to `body` (may be NULL). */
int sw_health_probe(const char *listen, const char *path, int timeout_ms, char *body,
                    size_t bodylen, char *err, size_t errlen);

/* The same GET, for a larger answer: on 2xx..5xx *body gets the body (malloc'd, NUL-terminated,
 * caller frees) and *len its length; an answer over max bytes is an error (-1 with err). */
int sw_health_get(const char *listen, const char *path, int timeout_ms, size_t max, char **body,
                  size_t *len, char *err, size_t errlen);

#endif
