/* labels.h - the label set of a tailed file, as a JSON object text.
 *
 * Order: host, source, then per type — docker: container_id, container_name; cri: namespace,
 * pod, pod_uid, container (from /var/log/pods/<ns>_<pod>_<uid>/<container>/N.log); file:
 * filename — then the source's static labels. Pure: the caller reads config.v2.json.
 */
#ifndef SW_LABELS_H
#define SW_LABELS_H

#include "config.h"

/* Returns a malloc'd JSON object (caller frees), or NULL on allocation failure.
 * path is the file's real path; container_name may be NULL. */
char *sw_labels_build(const struct sw_source_conf *src, const char *host, const char *path,
                      const char *container_name);

/* Extracts "Name" (leading '/' stripped) from a docker config.v2.json text; malloc'd or NULL. */
char *sw_labels_docker_name(const char *json, size_t len);

#endif
