/* status.c - see status.h. */
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/timefmt.h"
#include "jstate.h"
#include "reader.h"

/* The stored cursor and entry count of every journald source, in one pass over the rows. */
struct found {
  const struct sw_config *cfg;
  char **cursor;      /* per source index */
  uint64_t *offset;
};

static int find_rows(void *arg, const struct sw_file_state *st) {
  struct found *f = arg;
  for (size_t i = 0; i < f->cfg->nsources; i++) {
    const struct sw_source_conf *sc = &f->cfg->sources[i];
    if (sc->type != SW_SOURCE_JOURNALD || strcmp(st->source, sc->name) || f->cursor[i]) continue;
    struct sw_jstate_stream *rs = NULL;
    size_t nrs = 0;
    f->offset[i] = st->offset;
    if (st->pending_len && sw_jstate_parse(st->pending, st->pending_len, &f->cursor[i], &rs, &nrs) == SW_OK)
      free(rs);
  }
  return SW_OK;
}

static void put_time(cJSON *o, const char *key, uint64_t us) {
  char t[SW_TIME_RFC3339_LEN + 1] = "";
  if (us) sw_time_format_rfc3339((int64_t)us * 1000, t);
  cJSON_AddStringToObject(o, key, t);
}

void sw_journal_status(cJSON *root, const struct sw_config *cfg, struct sw_db *db) {
  cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
  cJSON *js = NULL;
  size_t n = cfg->nsources ? cfg->nsources : 1;
  struct found f = {.cfg = cfg, .cursor = calloc(n, sizeof(char *)), .offset = calloc(n, sizeof(uint64_t))};
  if (!f.cursor || !f.offset || sw_db_load_files(db, find_rows, &f)) { /* shown without a position */
    for (size_t i = 0; f.cursor && i < n; i++) free(f.cursor[i]);
    if (f.cursor) memset(f.cursor, 0, n * sizeof(char *));
    if (f.offset) memset(f.offset, 0, n * sizeof(uint64_t));
  }
  for (size_t i = 0; f.cursor && f.offset && i < cfg->nsources; i++) {
    const struct sw_source_conf *sc = &cfg->sources[i];
    if (sc->type != SW_SOURCE_JOURNALD) continue;
    if (!js) js = cJSON_AddArrayToObject(root, "journals");
    for (int k = cJSON_GetArraySize(files) - 1; k >= 0; k--) { /* not a file */
      const cJSON *src = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(files, k), "source");
      if (cJSON_IsString(src) && !strcmp(src->valuestring, sc->name)) cJSON_DeleteItemFromArray(files, k);
    }
    const char *cursor = f.cursor[i];
    uint64_t at = 0, newest = 0;
    if (cursor) (void)sw_jcursor_hex(cursor, 't', &at);
    int nrc = sw_journal_newest_us(sc->journal_path, sc->units, sc->nunits, sc->identifiers, sc->nidentifiers, &newest);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "source", sc->name);
    cJSON_AddStringToObject(o, "path", sc->journal_path);
    cJSON_AddStringToObject(o, "cursor", cursor ? cursor : "");
    cJSON_AddNumberToObject(o, "entries", (double)f.offset[i]);
    put_time(o, "position_time", at);
    put_time(o, "newest_time", nrc ? 0 : newest);
    cJSON_AddNumberToObject(o, "lag_seconds", nrc ? -1 : newest > at ? (double)(newest - at) / 1e6 : 0);
    cJSON_AddItemToArray(js, o);
  }
  for (size_t i = 0; f.cursor && i < n; i++) free(f.cursor[i]);
  free(f.cursor);
  free(f.offset);
}

static const char *s(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : "-";
}

void sw_journal_status_print(const cJSON *root) {
  const cJSON *js = cJSON_GetObjectItemCaseSensitive(root, "journals"), *o;
  if (!cJSON_GetArraySize(js)) return;
  printf("\n%-12s %12s %-31s %-31s %10s  %s\n", "JOURNAL", "ENTRIES", "POSITION", "NEWEST", "LAG", "PATH");
  cJSON_ArrayForEach(o, js) {
    double lag = cJSON_GetObjectItemCaseSensitive(o, "lag_seconds")->valuedouble;
    char l[32];
    if (lag < 0) snprintf(l, sizeof l, "-");
    else snprintf(l, sizeof l, "%.1fs", lag);
    printf("%-12s %12.0f %-31s %-31s %10s  %s\n", s(o, "source"),
           cJSON_GetObjectItemCaseSensitive(o, "entries")->valuedouble, s(o, "position_time"),
           s(o, "newest_time"), l, s(o, "path"));
    printf("%-12s cursor %s\n", "", s(o, "cursor"));
  }
}
