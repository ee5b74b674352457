/* metrics_kube.c - the spillway_kubernetes_* families (agent/kube/, tail/kube.c). Rendered
 * with zeros when kubernetes is off, so dashboards and alerts find the series everywhere. */
#include "metrics_kube.h"

#include "../kube/kube.h"
#include "../tail/tail.h"

void sw__metrics_render_kube(struct sw_prom *p, struct sw_kube *k, struct sw_tail *t) {
  struct sw_kube_stats s = {0};
  uint64_t excluded = 0, waiting = 0, misses = 0;
  if (k) sw_kube_get_stats(k, &s);
  if (t) sw_tail_kube_counts(t, &excluded, &waiting, &misses);
  sw_prom_family(p, "spillway_kubernetes_pods", SW_PROM_GAUGE,
                 "Pods of this node in the metadata cache (deleted ones kept for their last lines included).");
  sw_prom_sample_u64(p, "", NULL, 0, s.pods);
  sw_prom_family(p, "spillway_kubernetes_namespaces", SW_PROM_GAUGE, "Namespaces in the metadata cache.");
  sw_prom_sample_u64(p, "", NULL, 0, s.namespaces);
  sw_prom_family(p, "spillway_kubernetes_synced", SW_PROM_GAUGE,
                 "1 once pods and namespaces were listed from the API server since start.");
  sw_prom_sample_u64(p, "", NULL, 0, (uint64_t)s.synced);
  sw_prom_family(p, "spillway_kubernetes_metadata_misses_total", SW_PROM_COUNTER,
                 "Pod files read with their path's labels only: the pod was unknown after kubernetes.wait.");
  sw_prom_sample_u64(p, "", NULL, 0, misses);
  sw_prom_family(p, "spillway_kubernetes_excluded_files", SW_PROM_GAUGE,
                 "Files not read: their pod or namespace is excluded by annotation or label.");
  sw_prom_sample_u64(p, "", NULL, 0, excluded);
  sw_prom_family(p, "spillway_kubernetes_waiting_files", SW_PROM_GAUGE,
                 "Files not read yet: their pod's metadata is awaited (at most kubernetes.wait).");
  sw_prom_sample_u64(p, "", NULL, 0, waiting);
  static const char *const reasons[] = {"transport", "http", "expired"};
  sw_prom_family(p, "spillway_kubernetes_api_errors_total", SW_PROM_COUNTER,
                 "Failed API server requests: transport (connect, TLS, reset, timeout), http (an error "
                 "status, e.g. 401), expired (410 Gone: a relist follows).");
  for (int i = 0; i < 3; i++)
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"reason", reasons[i]}}, 1, s.api_errors[i]);
  static const char *const res[] = {"pods", "namespaces"};
  sw_prom_family(p, "spillway_kubernetes_watch_restarts_total", SW_PROM_COUNTER,
                 "Watches that ended (server timeout, error) and were opened again from their resourceVersion.");
  for (int i = 0; i < 2; i++)
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"resource", res[i]}}, 1, s.watch_restarts[i]);
  sw_prom_family(p, "spillway_kubernetes_relists_total", SW_PROM_COUNTER,
                 "Full lists: the first one, and after a 410 Gone.");
  for (int i = 0; i < 2; i++)
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"resource", res[i]}}, 1, s.relists[i]);
}
