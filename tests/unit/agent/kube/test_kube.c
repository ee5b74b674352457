/* test_kube.c - the Kubernetes metadata cache (agent/kube/cache.c): what is kept of a pod and a
 * namespace, the owner (a ReplicaSet's hash trimmed), the first present source of a label,
 * exclusion per pod, container and namespace, hints, relabels and deletions. No API server: the
 * objects go through the same functions a watch event does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config/config.h"
#include "agent/kube/internal.h"

static const char *k_cfg =
    "data_dir: /tmp/test-kube\n"
    "sources: [{ name: pods, type: cri, paths: [\"/var/log/pods/*/*/*.log\"] }]\n"
    "kubernetes: { enabled: true, node_name: n1, api_url: \"https://127.0.0.1:1\",\n"
    "  labels: { app: [pod_label:app.kubernetes.io/name, pod_label:app], team: [pod_label:team, namespace_label:team],\n"
    "            tier: [pod_annotation:tier, namespace_annotation:tier], owner: [owner], node: [node] } }\n";

struct fx {
  struct sw_config *cfg;
  struct sw_kube *k;
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  struct sw_conf_errors errs = {0};
  assert_int_equal(sw_config_load_string("t.yaml", k_cfg, strlen(k_cfg), &f->cfg, &errs), 0);
  char err[256] = "";
  assert_int_equal(sw_kube_create(f->cfg, NULL, &f->k, err, sizeof err), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  sw_kube_free(f->k);
  sw_config_free(f->cfg);
  free(f);
  return 0;
}

/* Applies a Pod or Namespace JSON text as a watch event would (NULL facts: deleted). */
static void put(struct sw_kube *k, int res, const char *json, int deleted) {
  cJSON *obj = cJSON_Parse(json);
  assert_non_null(obj);
  char *key;
  cJSON *facts = sw__kube_facts(k, res, obj, &key);
  cJSON_Delete(obj);
  assert_non_null(facts);
  if (deleted) {
    cJSON_Delete(facts);
    facts = NULL;
  }
  if (sw__kube_set_put(k, res, key, facts, 1000)) atomic_fetch_add(&k->gen, 1);
}

static const char *label(const struct sw_kube_view *v, const char *name) {
  for (size_t i = 0; i < v->nlabels; i++)
    if (strcmp(v->labels[i].key, name) == 0) return v->labels[i].value;
  return NULL;
}

#define NS(name, labels, ann) \
  "{\"metadata\":{\"name\":\"" name "\",\"labels\":{" labels "},\"annotations\":{" ann "}}}"

static void test_labels_owner_and_first_present_source(void **state) {
  struct fx *f = *state;
  struct sw_kube_view v;
  put(f->k, SW__KUBE_PODS,
      "{\"metadata\":{\"name\":\"web-7d9f8b6c5d-x2x9k\",\"namespace\":\"shop\",\"uid\":\"u1\","
      "\"labels\":{\"app\":\"fallback\",\"app.kubernetes.io/name\":\"web\",\"pod-template-hash\":\"7d9f8b6c5d\","
      "\"unrelated\":\"x\"},\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"{...}\"},"
      "\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"web-7d9f8b6c5d\",\"controller\":true}]},"
      "\"spec\":{\"nodeName\":\"n1\"}}", 0);
  /* Namespaces not known yet: the pod is not either (its namespace may exclude it). */
  assert_int_equal(sw_kube_lookup(f->k, "u1", "app", &v), 0);
  put(f->k, SW__KUBE_NAMESPACES, NS("shop", "\"team\":\"payments\"", "\"tier\":\"gold\""), 0);
  assert_int_equal(sw_kube_lookup(f->k, "u1", "app", &v), 1);
  assert_string_equal(label(&v, "app"), "web"); /* the first source present wins */
  assert_string_equal(label(&v, "team"), "payments");
  assert_string_equal(label(&v, "tier"), "gold");
  assert_string_equal(label(&v, "owner"), "web");
  assert_string_equal(label(&v, "node"), "n1");
  assert_int_equal(v.excluded, 0);
  assert_int_equal(v.multiline, SW_ML_NONE);
  sw_kube_view_free(&v);
  assert_int_equal(sw_kube_lookup(f->k, "nope", "app", &v), 0);
  /* What is kept: only the labels and annotations a configured label names. */
  char *text = cJSON_PrintUnformatted(f->k->sets[SW__KUBE_PODS].v[0].facts);
  assert_null(strstr(text, "unrelated"));
  assert_null(strstr(text, "last-applied"));
  assert_null(strstr(text, "pod-template-hash"));
  free(text);
}

static void test_owner_kinds(void **state) {
  struct fx *f = *state;
  static const struct {
    const char *owner, *labels, *want;
  } cases[] = {
      {"{\"kind\":\"ReplicaSet\",\"name\":\"api-5c8d7f9b4\",\"controller\":true}", "", "api"},
      {"{\"kind\":\"ReplicaSet\",\"name\":\"my-rs\",\"controller\":true}", "", "my-rs"},
      {"{\"kind\":\"StatefulSet\",\"name\":\"db\",\"controller\":true}", "", "db"},
      {"{\"kind\":\"Job\",\"name\":\"batch-28000000\",\"controller\":true}", "", "batch-28000000"},
      {"{\"kind\":\"DaemonSet\",\"name\":\"agent\",\"controller\":true}", "", "agent"},
  };
  put(f->k, SW__KUBE_NAMESPACES, NS("ns", "", ""), 0);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char json[1024], uid[16];
    snprintf(uid, sizeof uid, "o%zu", i);
    snprintf(json, sizeof json,
             "{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"%s\",\"labels\":{%s},"
             "\"ownerReferences\":[%s]}}",
             uid, cases[i].labels, cases[i].owner);
    put(f->k, SW__KUBE_PODS, json, 0);
    struct sw_kube_view v;
    assert_int_equal(sw_kube_lookup(f->k, uid, "c", &v), 1);
    assert_string_equal(label(&v, "owner"), cases[i].want);
    sw_kube_view_free(&v);
  }
}

static void test_exclusion_hints_relabel_delete(void **state) {
  struct fx *f = *state;
  struct sw_kube_view v;
  put(f->k, SW__KUBE_NAMESPACES, NS("ops", "\"spillway.io/exclude\":\"true\"", ""), 0);
  put(f->k, SW__KUBE_NAMESPACES, NS("shop", "", ""), 0);
  put(f->k, SW__KUBE_PODS,
      "{\"metadata\":{\"name\":\"a\",\"namespace\":\"shop\",\"uid\":\"ua\",\"annotations\":{"
      "\"spillway.io/exclude-sidecar\":\"true\",\"spillway.io/multiline\":\"python\","
      "\"spillway.io/format\":\"json\"}}}", 0);
  put(f->k, SW__KUBE_PODS, "{\"metadata\":{\"name\":\"t\",\"namespace\":\"ops\",\"uid\":\"ut\"}}", 0);
  assert_int_equal(sw_kube_lookup(f->k, "ua", "app", &v), 1);
  assert_int_equal(v.excluded, 0);
  assert_int_equal(v.multiline, SW_ML_PYTHON);
  assert_string_equal(v.format, "json");
  sw_kube_view_free(&v);
  assert_int_equal(sw_kube_lookup(f->k, "ua", "sidecar", &v), 1);
  assert_int_equal(v.excluded, 1);
  sw_kube_view_free(&v);
  assert_int_equal(sw_kube_lookup(f->k, "ut", "app", &v), 1);
  assert_int_equal(v.excluded, 1); /* the namespace's label */
  sw_kube_view_free(&v);
  /* A relabel moves the generation and the view; the same object again does not. */
  uint64_t g = sw_kube_generation(f->k);
  put(f->k, SW__KUBE_PODS,
      "{\"metadata\":{\"name\":\"t\",\"namespace\":\"ops\",\"uid\":\"ut\",\"labels\":{\"app\":\"tool\"}}}", 0);
  assert_true(sw_kube_generation(f->k) > g);
  g = sw_kube_generation(f->k);
  put(f->k, SW__KUBE_PODS,
      "{\"metadata\":{\"name\":\"t\",\"namespace\":\"ops\",\"uid\":\"ut\",\"labels\":{\"app\":\"tool\"}}}", 0);
  assert_int_equal(sw_kube_generation(f->k), g);
  /* Deleted: still known during the grace period (its files' last lines), then purged. */
  put(f->k, SW__KUBE_PODS, "{\"metadata\":{\"name\":\"t\",\"namespace\":\"ops\",\"uid\":\"ut\"}}", 1);
  assert_int_equal(sw_kube_lookup(f->k, "ut", "app", &v), 1);
  sw_kube_view_free(&v);
  sw__kube_set_purge(f->k, 1000 + SW_KUBE_DELETED_GRACE_S * 1000LL);
  assert_int_equal(sw_kube_lookup(f->k, "ut", "app", &v), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_labels_owner_and_first_present_source, setup, teardown),
      cmocka_unit_test_setup_teardown(test_owner_kinds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exclusion_hints_relabel_delete, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
