/* kube.c - schema rows of the `kubernetes` section (its meaning: agent/kube/kube.h and
 * docs/kubernetes.md). Kept apart from config/schema.c like config/retention.c. */
#include <stdlib.h>
#include <string.h>

#include "../kube/kube.h"
#include "schema.h"

#define ROWS(r) .rows = r, .nrows = sizeof r / sizeof r[0]
#define KC struct sw_config

/* Labels every record of a CRI file has from its path (tail/labels.h) and the agent's own: a
 * kubernetes label must not shadow them. */
static const char *const path_labels[] = {"host", "source", "namespace", "pod", "pod_uid", "container",
                                          "stream", NULL};
static const char k_default_labels[][2][64] = {
    {"app", "pod_label:app.kubernetes.io/name\npod_label:app"},
    {"owner", "owner"},
    {"node", "node"},
};

static void check_kube(struct sw__conf_ctx *c, void *base, const cJSON *obj, int kind) {
  struct sw_config *cfg = base;
  struct sw_kube_conf *k = &cfg->kubernetes;
  (void)obj;
  (void)kind;
  if (k->enabled && (!k->node_name || !k->node_name[0])) {
    size_t saved = sw__conf_path_key(c, "node_name");
    sw__conf_err(c, "required when kubernetes.enabled is true (the DaemonSet sets NODE_NAME from "
                    "spec.nodeName: node_name: ${NODE_NAME})");
    sw__conf_path_pop(c, saved);
  }
  for (size_t i = 0; i < k->nlabels; i++) {
    size_t saved = sw__conf_path_key(c, "labels");
    sw__conf_path_key(c, k->labels[i].key);
    for (int j = 0; path_labels[j]; j++)
      if (strcmp(k->labels[i].key, path_labels[j]) == 0)
        sw__conf_err(c, "a label every record already has from its file's path");
    for (const char *s = k->labels[i].value; s && *s;) {
      const char *e = strchr(s, '\n');
      size_t n = e ? (size_t)(e - s) : strlen(s);
      size_t key_at;
      if (sw_kube_source_parse(s, n, &key_at) < 0) {
        char q[96], one[128];
        snprintf(one, sizeof one, "%.*s", (int)(n < 100 ? n : 100), s);
        sw__conf_err(c, "unknown source %s: use pod_label:KEY, pod_annotation:KEY, namespace_label:KEY, "
                        "namespace_annotation:KEY, owner or node", sw__conf_quote(q, sizeof q, one));
      }
      s = e ? e + 1 : s + n;
    }
    sw__conf_path_pop(c, saved);
  }
  if (!k->nlabels && k->enabled) { /* the defaults */
    size_t n = sizeof k_default_labels / sizeof k_default_labels[0];
    k->labels = calloc(n, sizeof *k->labels);
    if (!k->labels) {
      c->nomem = true;
      return;
    }
    for (size_t i = 0; i < n; i++) {
      k->labels[i].key = strdup(k_default_labels[i][0]);
      k->labels[i].value = strdup(k_default_labels[i][1]);
      if (!k->labels[i].key || !k->labels[i].value) c->nomem = true;
    }
    k->nlabels = n;
  }
}

static const struct sw__conf_row kube_rows[] = {
    {.key = "enabled", .type = SW__CT_BOOL, .def = "false", .offset = offsetof(KC, kubernetes.enabled),
     .help = "Add pod metadata from the API server to the records of `cri` sources, honour the "
             "exclusion and hint annotations (docs/kubernetes.md)."},
    {.key = "node_name", .type = SW__CT_STRING, .offset = offsetof(KC, kubernetes.node_name),
     .help = "This node's name: only its pods are listed and watched (`fieldSelector=spec.nodeName=…`). "
             "Required when enabled; the DaemonSet passes `${NODE_NAME}` from the downward API."},
    {.key = "api_url", .type = SW__CT_STRING, .flags = SW__CF_URL, .offset = offsetof(KC, kubernetes.api_url),
     .def_doc = "`https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`",
     .help = "The API server."},
    {.key = "token_file", .type = SW__CT_STRING, .flags = SW__CF_PATH | SW__CF_NONEMPTY,
     .def = "/var/run/secrets/kubernetes.io/serviceaccount/token", .offset = offsetof(KC, kubernetes.token_file),
     .help = "Bearer token of the service account; read again for every request, so a rotated "
             "(projected) token is picked up."},
    {.key = "ca_file", .type = SW__CT_STRING, .flags = SW__CF_PATH | SW__CF_NONEMPTY,
     .def = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", .offset = offsetof(KC, kubernetes.ca_file),
     .help = "CA bundle the API server's certificate is verified with."},
    {.key = "wait", .type = SW__CT_DURATION, .def = "2s", .max = 60000, .offset = offsetof(KC, kubernetes.wait_ms),
     .help = "A file of a pod the cache does not know yet is not read for up to this long while its "
             "metadata arrives; then its records go with their path's labels only (counted in "
             "`spillway_kubernetes_metadata_misses_total`) and later chunks get the labels once known."},
    {.key = "labels", .type = SW__CT_KVMAP, .flags = SW__CF_KV_LIST, .offset = offsetof(KC, kubernetes.labels),
     .count_offset = offsetof(KC, kubernetes.nlabels),
     .def_doc = "`app: [pod_label:app.kubernetes.io/name, pod_label:app]`, `owner: [owner]`, `node: [node]`",
     .help = "Record label ← where its value comes from, the first present wins: `pod_label:KEY`, "
             "`pod_annotation:KEY`, `namespace_label:KEY`, `namespace_annotation:KEY`, `owner` (the "
             "Deployment, StatefulSet, DaemonSet or Job; a ReplicaSet's hash is trimmed) or `node`. "
             "Absent sources leave the label out. Values pass through `redact` like every label."},
};

const struct sw__conf_table sw__conf_kube_table = {
    .intro = "Pod metadata from the Kubernetes API server (docs/kubernetes.md).", ROWS(kube_rows),
    .discriminator = -1, .check = check_kube};
