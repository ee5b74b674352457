/* bench_kube.c - memory the Kubernetes metadata cache takes for a node's pods.
 *
 * Builds 110 pods (the kubelet's default maximum per node) shaped like real ones: a Deployment's
 * labels, a few annotations including a 4 KiB kubectl last-applied-configuration, managedFields,
 * an ownerReference, two containers; passes each through the same code as a watch event
 * (facts kept, the object dropped) and prints the heap the cache holds (mallinfo2), in total
 * and per pod, and how long a lookup takes.
 *
 *   cmake --build build --target bench_kube && build/bench_kube [PODS]
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/config/config.h"
#include "agent/kube/internal.h"
#include "common/timefmt.h"

static const char *k_config =
    "data_dir: /tmp/bench-kube\n"
    "sources: [{ name: pods, type: cri, paths: [\"/var/log/pods/*/*/*.log\"] }]\n"
    "kubernetes: { enabled: true, node_name: node-1, api_url: \"https://127.0.0.1:1\",\n"
    "  labels: { app: [pod_label:app.kubernetes.io/name, pod_label:app], team: [pod_label:team, namespace_label:team],\n"
    "            owner: [owner], node: [node], version: [pod_label:app.kubernetes.io/version] } }\n";

static cJSON *pod(int i) {
  char buf[16384], applied[4200];
  memset(applied, 'x', 4096);
  applied[4096] = '\0';
  snprintf(buf, sizeof buf,
           "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"shop-api-%d-7d9f8b6c5d-x2x9k\","
           "\"namespace\":\"team-%d\",\"uid\":\"0a1b2c3d-%04d-4000-8000-000000000001\",\"resourceVersion\":\"%d\","
           "\"labels\":{\"app.kubernetes.io/name\":\"shop-api-%d\",\"app.kubernetes.io/version\":\"1.4.%d\","
           "\"app.kubernetes.io/part-of\":\"shop\",\"pod-template-hash\":\"7d9f8b6c5d\",\"team\":\"payments\","
           "\"security.istio.io/tlsMode\":\"istio\"},"
           "\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"%s\","
           "\"prometheus.io/scrape\":\"true\",\"spillway.io/multiline\":\"java\"},"
           "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"shop-api-%d-7d9f8b6c5d\","
           "\"uid\":\"u\",\"controller\":true,\"blockOwnerDeletion\":true}],"
           "\"managedFields\":[{\"manager\":\"kube-controller-manager\",\"operation\":\"Update\",\"fieldsV1\":"
           "{\"f:metadata\":{\"f:labels\":{}},\"f:spec\":{\"f:containers\":{}}}}]},"
           "\"spec\":{\"nodeName\":\"node-1\",\"containers\":[{\"name\":\"app\",\"image\":\"r/shop:1\"},"
           "{\"name\":\"istio-proxy\",\"image\":\"istio/proxyv2:1.20\"}]},\"status\":{\"phase\":\"Running\"}}",
           i, i % 12, i, 1000 + i, i, i % 7, applied, i);
  return cJSON_Parse(buf);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 110;
  struct sw_conf_errors errs = {0};
  struct sw_config *cfg = NULL;
  if (sw_config_load_string("bench.yaml", k_config, strlen(k_config), &cfg, &errs)) {
    for (size_t i = 0; i < errs.n; i++) fprintf(stderr, "%s\n", errs.msgs[i]);
    return 1;
  }
  char err[256] = "";
  struct sw_kube *k = NULL;
  if (sw_kube_create(cfg, NULL, &k, err, sizeof err)) return 1;
  k->synced[SW__KUBE_NAMESPACES] = 1; /* no namespaces here: pods are known on their own */
  size_t raw = 0;
  struct mallinfo2 before = mallinfo2();
  for (int i = 0; i < n; i++) {
    cJSON *obj = pod(i);
    char *text = cJSON_PrintUnformatted(obj);
    raw += strlen(text);
    free(text);
    char *key;
    cJSON *facts = sw__kube_facts(k, 0, obj, &key);
    cJSON_Delete(obj);
    if (!facts) return 1;
    sw__kube_set_put(k, 0, key, facts, 0);
  }
  struct mallinfo2 after = mallinfo2();
  size_t held = after.uordblks - before.uordblks;
  struct sw_kube_view v;
  int64_t t0 = sw_time_now_ns();
  int lookups = 100000;
  for (int i = 0; i < lookups; i++) {
    char uid[64];
    snprintf(uid, sizeof uid, "0a1b2c3d-%04d-4000-8000-000000000001", i % n);
    if (sw_kube_lookup(k, uid, "app", &v) != 1) return 1;
    sw_kube_view_free(&v);
  }
  int64_t t1 = sw_time_now_ns();
  printf("pods %d: objects as served %.1f KiB; cache holds %.1f KiB (%.0f bytes per pod); "
         "lookup + view %.2f us\n", n, raw / 1024.0, held / 1024.0, (double)held / n,
         (t1 - t0) / 1e3 / lookups);
  sw_kube_free(k);
  sw_config_free(cfg);
  return 0;
}
