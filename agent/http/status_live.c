/* status_live.c - merges the running agent's /metrics into `spillway status` (see http/status_live.h). */
#include "status_live.h"

#include <string.h>

#include "promtext.h"

static cJSON *find_by(cJSON *arr, const char *k1, const char *v1, const char *k2, const char *v2) {
  cJSON *e;
  cJSON_ArrayForEach(e, arr) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, k1);
    const cJSON *b = k2 ? cJSON_GetObjectItemCaseSensitive(e, k2) : NULL;
    if (cJSON_IsString(a) && !strcmp(a->valuestring, v1) &&
        (!k2 || (cJSON_IsString(b) && !strcmp(b->valuestring, v2))))
      return e;
  }
  return NULL;
}

static void set_num(cJSON *o, const char *k, double v) {
  cJSON *old = cJSON_GetObjectItemCaseSensitive(o, k);
  if (old) cJSON_SetNumberValue(old, v);
  else cJSON_AddNumberToObject(o, k, v);
}

static void add_sample(cJSON *root, cJSON *agent, const struct sw_prom_parsed *s, double now_s) {
  const char *n = s->name;
  const char *source = sw_prom_label_value(s, "source"), *path = sw_prom_label_value(s, "path");
  const char *sink = sw_prom_label_value(s, "sink");
  if (!strncmp(n, "spillway_file_", 14) && source && path) {
    static const char *const keys[][2] = {{"spillway_file_offset_bytes", "read_offset"},
                                          {"spillway_file_size_bytes", "live_size"},
                                          {"spillway_file_lag_bytes", "live_lag_bytes"}};
    for (size_t i = 0; i < 3; i++) {
      if (strcmp(n, keys[i][0])) continue;
      cJSON *f = find_by(cJSON_GetObjectItemCaseSensitive(root, "files"), "path", path, "source", source);
      if (f) set_num(f, keys[i][1], s->value);
      else if (i == 0) set_num(agent, "files_not_committed", 1 + cJSON_GetNumberValue(
                                   cJSON_GetObjectItemCaseSensitive(agent, "files_not_committed")));
    }
  } else if (sink && (!strcmp(n, "spillway_sink_requests_total") ||
                      !strcmp(n, "spillway_sink_retries_total") ||
                      !strcmp(n, "spillway_sink_responses_total"))) {
    cJSON *o = find_by(cJSON_GetObjectItemCaseSensitive(root, "sinks"), "name", sink, NULL, NULL);
    const char *cls = sw_prom_label_value(s, "class");
    if (!o) return;
    if (!strcmp(n, "spillway_sink_requests_total")) set_num(o, "requests", s->value);
    else if (!strcmp(n, "spillway_sink_retries_total")) set_num(o, "retries", s->value);
    else if (cls && strcmp(cls, "2xx")) {
      cJSON *fl = cJSON_GetObjectItemCaseSensitive(o, "failures");
      if (!fl) fl = cJSON_AddObjectToObject(o, "failures");
      if (fl) set_num(fl, cls, s->value);
    }
  } else if (!strcmp(n, "spillway_source_files") && source) {
    cJSON *o = find_by(cJSON_GetObjectItemCaseSensitive(root, "sources"), "name", source, NULL, NULL);
    if (o) set_num(o, "files", s->value); /* followed now, renamed ones being drained included */
  } else if (!strcmp(n, "spillway_build_info") && sw_prom_label_value(s, "version")) {
    cJSON_AddStringToObject(agent, "version", sw_prom_label_value(s, "version"));
  } else if (!strcmp(n, "spillway_process_start_time_seconds")) {
    set_num(agent, "uptime_seconds", now_s > s->value ? now_s - s->value : 0);
  } else if (!strcmp(n, "spillway_process_resident_memory_bytes")) {
    set_num(agent, "rss_bytes", s->value);
  } else if (!strcmp(n, "spillway_process_open_fds")) {
    set_num(agent, "open_fds", s->value);
  }
}

int sw_status_add_live(cJSON *root, const char *address, char *metrics, double now_s) {
  cJSON *agent = cJSON_AddObjectToObject(root, "agent");
  if (!agent) return SW_ENOMEM;
  cJSON_AddBoolToObject(agent, "running", 1);
  cJSON_AddStringToObject(agent, "address", address);
  cJSON_AddNumberToObject(agent, "files_not_committed", 0);
  int bad = 0;
  for (char *line = metrics; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    struct sw_prom_parsed s;
    int rc = sw_prom_parse_line(line, &s);
    if (rc == 0) add_sample(root, agent, &s, now_s);
    else if (rc < 0) bad++;
    line = nl ? nl + 1 : NULL;
  }
  return bad ? SW_EPARSE : SW_OK;
}
