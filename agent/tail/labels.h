/* labels.h - the label set of a tailed file, as a JSON object text.
 *
 * Order: host, source, then per type — docker: container_id, container_name; cri: namespace,
 * pod, pod_uid, container (from /var/log/pods/<ns>_<pod>_<uid>/<container>/N.log); file:
 * filename — then the source's static labels. Pure: the caller reads config.v2.json.
 *
 * Redaction: every label value (host, source, file name, pod, container, static labels...) goes
 * through the configured redactor before it is part of the set, because the set is stored with
 * each chunk and from there reaches every sink, search and status: an e-mail in a file or pod
 * name must not leave unredacted. A file's labels are built once per file, not per record, so
 * this costs nothing per record. The real path stays in the file state (identity, offsets).
 */
#ifndef SW_LABELS_H
#define SW_LABELS_H

#include "../../redact/redact.h"
#include "../config/config.h"

/* Returns a malloc'd JSON object (caller frees), or NULL on allocation failure.
 * path is the file's real path (unused, may be NULL, for journald); container_name may be NULL; extra (nextra, may be 0) are the
 * pod's Kubernetes labels, after the path's and before the source's static ones; rctx
 * (borrowed, may be NULL: no redaction) redacts each value; its previous result is invalid
 * afterwards. */
char *sw_labels_build(const struct sw_source_conf *src, const char *host, const char *path,
                      const char *container_name, const struct sw_kv *extra, size_t nextra,
                      struct sw_redact_ctx *rctx);

/* The pod uid and container name of a CRI log path (/var/log/pods/<ns>_<pod>_<uid>/<ctr>/N.log),
 * as malloc'd strings; 0, or -1 when the path does not have that shape or on ENOMEM. */
int sw_labels_cri_ids(const char *path, char **uid, char **container);

/* s redacted by rctx (borrowed, may be NULL: a plain copy), as a malloc'd string the caller
 * frees; NULL on allocation failure. For text the agent logs about a file (its path): once per
 * file, not per line. */
char *sw_labels_redact_dup(struct sw_redact_ctx *rctx, const char *s);

/* Extracts "Name" (leading '/' stripped) from a docker config.v2.json text; malloc'd or NULL. */
char *sw_labels_docker_name(const char *json, size_t len);

#endif
