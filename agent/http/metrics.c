/* metrics.c - collection for /metrics (see http/metrics.h for where each figure comes from). */
#include "metrics.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "../../sinks/shipper.h"
#include "../buffer/buffer.h"
#include "../tail/ingest.h"
#include "metrics_journal.h"
#include "metrics_kube.h"
#include "metrics_archive.h"
#include "metrics_process.h"
#include "promtext.h"
#include "../retention/retention.h"
#include "../tail/tail.h"
#include "../buffer/hot.h"
#include "../buffer/writer.h"

#define SNAPSHOT_EVERY_MS 1000
#define SCRAPED_RECENTLY_MS (5 * 60 * 1000)
#define MAX_FILE_SERIES 1000 /* per-file series beyond this many files: per-source sums only */
#define MAX_DISKS 32

struct disk {
  int ok;
  struct sw_disk_usage u;
};

/* What the pool thread gathered; immutable once handed to the loop. */
struct snapshot {
  cJSON *status; /* sw_db_status_json, parsed; NULL if the buffer could not be read */
  struct disk disks[MAX_DISKS];
  uint64_t db_file_bytes; /* spillway.db + -wal on disk */
  struct sw_metrics_archive archive;
  int64_t taken_ms;       /* monotonic */
};

struct sw_metrics {
  uv_loop_t *loop;
  struct sw_metrics_src src;
  uv_timer_t timer;
  uv_work_t work;
  const char **sink_names, **sink_types; /* cfg order */
  char *disk_paths[MAX_DISKS];
  size_t ndisks;
  struct sw_db *db; /* read-only; used by the snapshot job only */
  struct snapshot *cur, *next;
  int64_t last_scrape_ms, start_ns;
  int busy, stopping, timer_closed;
  struct waiter {
    void (*cb)(void *arg);
    void *arg;
    int64_t deadline_ms;
  } waiters[SW_METRICS_MAX_WAITERS];
  size_t nwaiters;
};

/* Calls back the waiters whose snapshot arrived (all) or whose deadline passed. */
static void release_waiters(struct sw_metrics *m, int all) {
  int64_t now = sw_ingest_now_ms();
  size_t keep = 0;
  struct waiter due[SW_METRICS_MAX_WAITERS];
  size_t ndue = 0;
  for (size_t i = 0; i < m->nwaiters; i++) {
    if (all || now >= m->waiters[i].deadline_ms) due[ndue++] = m->waiters[i];
    else m->waiters[keep++] = m->waiters[i];
  }
  m->nwaiters = keep;
  for (size_t i = 0; i < ndue; i++) due[i].cb(due[i].arg); /* may add waiters: list is settled */
}

static void snapshot_free(struct snapshot *s) {
  if (!s) return;
  cJSON_Delete(s->status);
  free(s);
}

static uint64_t file_bytes(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Pool thread: touches only the job's snapshot and the module's own connection. */
static void snapshot_work(uv_work_t *w) {
  struct sw_metrics *m = w->data;
  struct snapshot *s = calloc(1, sizeof *s);
  if (!s) return;
  const struct sw_config *cfg = m->src.cfg;
  char err[256];
  if (!m->db && sw_db_open(cfg->data_dir, SW_DB_READONLY, &m->db, err, sizeof err))
    m->db = NULL; /* not created yet, or busy: the next snapshot tries again */
  char *json = NULL;
  if (m->db) {
    if (sw_db_status_json(m->db, m->sink_names, m->sink_types, cfg->nsinks, cfg->buffer.max_bytes,
                          &json) == SW_OK) {
      s->status = cJSON_Parse(json);
    } else {
      sw_db_close(m->db); /* reopened next time */
      m->db = NULL;
    }
    free(json);
  }
  if (m->db) {
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", sw_db_path(m->db));
    s->db_file_bytes = file_bytes(sw_db_path(m->db)) + file_bytes(wal);
  }
  for (size_t i = 0; i < m->ndisks; i++)
    s->disks[i].ok = sw_disk_usage_get(m->disk_paths[i], &s->disks[i].u) == 0;
  sw__metrics_archive_read(cfg, &s->archive);
  s->taken_ms = sw_ingest_now_ms();
  m->next = s;
}

static void metrics_free(struct sw_metrics *m) {
  snapshot_free(m->cur);
  snapshot_free(m->next);
  sw_db_close(m->db);
  for (size_t i = 0; i < m->ndisks; i++) free(m->disk_paths[i]);
  free(m->sink_names);
  free(m->sink_types);
  free(m);
}

static void snapshot_done(uv_work_t *w, int status) {
  struct sw_metrics *m = w->data;
  (void)status;
  m->busy = 0;
  if (m->next) {
    snapshot_free(m->cur);
    m->cur = m->next;
    m->next = NULL;
  }
  release_waiters(m, 1);
  if (m->stopping && m->timer_closed) metrics_free(m);
}

static void snapshot_start(struct sw_metrics *m) {
  if (m->busy || m->stopping) return;
  m->work.data = m;
  if (uv_queue_work(m->loop, &m->work, snapshot_work, snapshot_done) == 0) m->busy = 1;
}

static void on_timer(uv_timer_t *t) {
  struct sw_metrics *m = t->data;
  if (sw_ingest_now_ms() - m->last_scrape_ms < SCRAPED_RECENTLY_MS) snapshot_start(m);
  release_waiters(m, 0);
}

/* The first scrape always waits: the snapshot taken at start predates what was read since. */
int sw_metrics_fresh(const struct sw_metrics *m) {
  return m->cur && m->last_scrape_ms > INT64_MIN / 2 &&
         sw_ingest_now_ms() - m->cur->taken_ms <= 2 * SNAPSHOT_EVERY_MS;
}

int sw_metrics_wait_fresh(struct sw_metrics *m, uint64_t wait_ms, void (*cb)(void *arg), void *arg) {
  if (m->stopping || m->nwaiters == SW_METRICS_MAX_WAITERS) return SW_EAGAIN;
  m->last_scrape_ms = sw_ingest_now_ms(); /* keeps the snapshots coming for the next scrapes */
  snapshot_start(m);
  if (!m->busy) return SW_EAGAIN; /* could not start one: serve what there is */
  m->waiters[m->nwaiters++] = (struct waiter){cb, arg, sw_ingest_now_ms() + (int64_t)wait_ms};
  return SW_OK;
}

static void add_disk(struct sw_metrics *m, const char *path, size_t len) {
  if (m->ndisks >= MAX_DISKS || len == 0) return;
  for (size_t i = 0; i < m->ndisks; i++)
    if (strlen(m->disk_paths[i]) == len && !memcmp(m->disk_paths[i], path, len)) return;
  char *p = strndup(path, len);
  if (p) m->disk_paths[m->ndisks++] = p;
}

int sw_metrics_create(uv_loop_t *loop, const struct sw_metrics_src *src, struct sw_metrics **out) {
  const struct sw_config *cfg = src->cfg;
  struct sw_metrics *m = calloc(1, sizeof *m);
  *out = NULL;
  if (!m) return SW_ENOMEM;
  m->loop = loop;
  m->src = *src;
  m->start_ns = sw_time_now_ns();
  m->last_scrape_ms = INT64_MIN / 2;
  m->sink_names = calloc(cfg->nsinks + 1, sizeof *m->sink_names);
  m->sink_types = calloc(cfg->nsinks + 1, sizeof *m->sink_types);
  if (!m->sink_names || !m->sink_types) {
    metrics_free(m);
    return SW_ENOMEM;
  }
  for (size_t i = 0; i < cfg->nsinks; i++) {
    m->sink_names[i] = cfg->sinks[i].name;
    m->sink_types[i] = sw_sink_type_name(cfg->sinks[i].type);
  }
  /* Watched paths: the buffer's directory, the disk_pressure path, and the fixed directory part
   * (up to the first wildcard) of every source glob. */
  add_disk(m, cfg->data_dir, strlen(cfg->data_dir));
  if (cfg->disk_pressure.path) add_disk(m, cfg->disk_pressure.path, strlen(cfg->disk_pressure.path));
  for (size_t i = 0; i < cfg->nsources; i++)
    for (size_t j = 0; j < cfg->sources[i].npaths; j++) {
      const char *g = cfg->sources[i].paths[j];
      size_t wild = strcspn(g, "*?[");
      while (wild > 1 && g[wild - 1] != '/') wild--;
      add_disk(m, g, wild > 1 ? wild - 1 : wild);
    }
  uv_timer_init(loop, &m->timer);
  m->timer.data = m;
  uv_timer_start(&m->timer, on_timer, SNAPSHOT_EVERY_MS, SNAPSHOT_EVERY_MS);
  uv_unref((uv_handle_t *)&m->timer);
  snapshot_start(m); /* the first one; then only while someone scrapes */
  *out = m;
  return SW_OK;
}

static void timer_closed(uv_handle_t *h) {
  struct sw_metrics *m = h->data;
  m->timer_closed = 1;
  if (!m->busy) metrics_free(m);
}

void sw_metrics_stop(struct sw_metrics *m) {
  if (!m) return;
  m->stopping = 1;
  release_waiters(m, 1);
  uv_close((uv_handle_t *)&m->timer, timer_closed);
}

/* ---- rendering ---- */

static double jnum(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static uint64_t jcount(const cJSON *o, const char *key) {
  double v = jnum(o, key);
  return v > 0 ? (uint64_t)v : 0;
}

/* The element of array `arr` whose "name" is name, or NULL. */
static const cJSON *by_name(const cJSON *arr, const char *name) {
  const cJSON *e;
  cJSON_ArrayForEach(e, arr) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
    if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return e;
  }
  return NULL;
}

static void render_process(struct sw_metrics *m, struct sw_prom *p) {
  long page = sysconf(_SC_PAGESIZE);
  unsigned long long vsz = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%llu %llu", &vsz, &rss) != 2) rss = 0;
    fclose(f);
  }
  struct rusage ru;
  double cpu = 0;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
          ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
  uint64_t fds = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    for (struct dirent *e; (e = readdir(d)) != NULL;) fds += e->d_name[0] != '.';
    closedir(d);
    fds = fds > 0 ? fds - 1 : 0; /* the directory's own descriptor */
  }
  struct rlimit rl;
  sw_prom_family(p, "spillway_build_info", SW_PROM_GAUGE, "Always 1; the version is a label.");
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"version", SW_VERSION}}, 1, 1);
  sw_prom_family(p, "spillway_process_resident_memory_bytes", SW_PROM_GAUGE, "Resident set size.");
  sw_prom_sample_u64(p, "", NULL, 0, (uint64_t)rss * (uint64_t)(page > 0 ? page : 4096));
  sw_prom_family(p, "spillway_process_cpu_seconds_total", SW_PROM_COUNTER,
                 "User and system CPU time of the agent.");
  sw_prom_sample(p, "", NULL, 0, cpu);
  sw_prom_family(p, "spillway_process_open_fds", SW_PROM_GAUGE, "Open file descriptors.");
  sw_prom_sample_u64(p, "", NULL, 0, fds);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    sw_prom_family(p, "spillway_process_max_fds", SW_PROM_GAUGE, "Limit of open file descriptors.");
    sw_prom_sample_u64(p, "", NULL, 0, (uint64_t)rl.rlim_cur);
  }
  const struct sw_reload_stats *rs = m->src.reloads;
  if (rs) {
    sw_prom_family(p, "spillway_config_reloads_total", SW_PROM_COUNTER,
                   "Configuration reloads (SIGHUP, POST /-/reload) by result.");
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"result", "success"}}, 1, rs->ok);
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"result", "failure"}}, 1, rs->failed);
    sw_prom_family(p, "spillway_config_last_reload_successful", SW_PROM_GAUGE,
                   "1 if the last reload was applied (or none was asked), 0 if it was refused.");
    sw_prom_sample_u64(p, "", NULL, 0, (uint64_t)rs->last_ok);
    sw_prom_family(p, "spillway_config_last_reload_success_timestamp_seconds", SW_PROM_GAUGE,
                   "When the running configuration was loaded, Unix time.");
    sw_prom_sample(p, "", NULL, 0, (double)(rs->last_ok_ns / 1000000) / 1e3);
  }
  sw_prom_family(p, "spillway_process_start_time_seconds", SW_PROM_GAUGE,
                 "Start of the agent, Unix time (a change means a restart).");
  sw_prom_sample(p, "", NULL, 0, (double)(m->start_ns / 1000000) / 1e3);
}

struct files {
  struct sw_tail_file_info *v;
  size_t n, cap;
  int oom;
};

static void collect_file(void *arg, const struct sw_tail_file_info *fi) {
  struct files *fs = arg;
  if (fs->n == fs->cap) {
    size_t ncap = fs->cap ? fs->cap * 2 : 64;
    void *nv = realloc(fs->v, ncap * sizeof *fs->v);
    if (!nv) {
      fs->oom = 1;
      return;
    }
    fs->v = nv;
    fs->cap = ncap;
  }
  fs->v[fs->n++] = *fi;
}

static uint64_t lag(const struct sw_tail_file_info *f) {
  return f->size > f->offset ? f->size - f->offset : 0;
}

static void render_files(struct sw_prom *p, const struct files *fs) {
  static const struct {
    const char *name, *help;
    int what, counter;
  } fams[] = {
      {"spillway_file_lag_bytes", "Bytes of a followed file not read yet (size - offset).", 0, 0},
      {"spillway_file_offset_bytes", "Read offset in a followed file.", 1, 0},
      {"spillway_file_size_bytes", "Size of a followed file.", 2, 0},
      {"spillway_file_records_total", "Records of a followed file handed to the buffer since the agent started.", 3, 1},
      {"spillway_file_bytes_total", "Bytes of a followed file turned into records since the agent started.", 4, 1},
      {"spillway_file_parse_errors_total", "Lines of a followed file kept as text (did not parse) since the agent started.", 5, 1},
  };
  size_t n = fs->n < MAX_FILE_SERIES ? fs->n : MAX_FILE_SERIES;
  for (size_t k = 0; k < sizeof fams / sizeof *fams; k++) {
    sw_prom_family(p, fams[k].name, fams[k].counter ? SW_PROM_COUNTER : SW_PROM_GAUGE, fams[k].help);
    /* A renamed file being drained may still carry the path of its successor: the active one
     * is written first, so the duplicate dropped by promtext is the older file. */
    for (int active = 1; active >= 0; active--)
      for (size_t i = 0; i < n; i++) {
        const struct sw_tail_file_info *f = &fs->v[i];
        if (f->active != active) continue;
        struct sw_prom_label l[] = {{"source", f->source}, {"path", f->path}};
        const uint64_t vals[] = {lag(f), f->offset, f->size, f->records, f->bytes, f->parse_errors};
        uint64_t v = vals[fams[k].what];
        sw_prom_sample_u64(p, "", l, 2, v);
      }
  }
}

static void render_sources(struct sw_metrics *m, struct sw_prom *p, const cJSON *st) {
  const struct sw_config *cfg = m->src.cfg;
  const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(st, "sources");
  static const struct {
    const char *name, *key, *help;
  } fams[] = {
      {"spillway_source_records_total", "records", "Records read and committed to the buffer."},
      {"spillway_source_bytes_total", "bytes", "Bytes of the source files turned into committed records."},
      {"spillway_source_parse_errors_total", "parse_errors", "Lines kept as text because they did not parse in the source's format."},
      {"spillway_source_truncated_records_total", "truncated", "Pieces of records split at max_record_bytes."},
  };
  for (size_t k = 0; k < sizeof fams / sizeof *fams; k++) {
    sw_prom_family(p, fams[k].name, SW_PROM_COUNTER, fams[k].help);
    for (size_t i = 0; st && i < cfg->nsources; i++) {
      const cJSON *o = by_name(srcs, cfg->sources[i].name);
      sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"source", cfg->sources[i].name}}, 1,
                         o ? jcount(o, fams[k].key) : 0);
    }
  }
  struct files fs = {0};
  if (m->src.tail) sw_tail_files(m->src.tail, collect_file, &fs);
  sw_prom_family(p, "spillway_source_rotations_total", SW_PROM_COUNTER,
                 "Rotations seen (rename+create, copytruncate) since the agent started.");
  for (size_t i = 0; i < cfg->nsources; i++)
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"source", cfg->sources[i].name}}, 1,
                       m->src.tail ? sw_tail_rotations(m->src.tail, i) : 0);
  sw_prom_family(p, "spillway_source_files", SW_PROM_GAUGE, "Files followed (including ones being drained).");
  for (size_t i = 0; i < cfg->nsources; i++) {
    uint64_t n = 0;
    for (size_t j = 0; j < fs.n; j++) n += !strcmp(fs.v[j].source, cfg->sources[i].name);
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"source", cfg->sources[i].name}}, 1, n);
  }
  sw_prom_family(p, "spillway_source_lag_bytes", SW_PROM_GAUGE, "Bytes of the source's files not read yet.");
  for (size_t i = 0; i < cfg->nsources; i++) {
    uint64_t sum = 0;
    for (size_t j = 0; j < fs.n; j++)
      if (!strcmp(fs.v[j].source, cfg->sources[i].name)) sum += lag(&fs.v[j]);
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"source", cfg->sources[i].name}}, 1, sum);
  }
  render_files(p, &fs);
  free(fs.v);
}

static void render_buffer(struct sw_metrics *m, struct sw_prom *p, const cJSON *st) {
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(st, "buffer");
  const cJSON *ret = cJSON_GetObjectItemCaseSensitive(st, "retention");
  sw_prom_family(p, "spillway_buffer_bytes", SW_PROM_GAUGE, "Stored (compressed) bytes of the buffered chunks.");
  sw_prom_sample_u64(p, "", NULL, 0, sw_writer_used(m->src.writer));
  sw_prom_family(p, "spillway_buffer_max_bytes", SW_PROM_GAUGE, "buffer.max_bytes.");
  sw_prom_sample_u64(p, "", NULL, 0, m->src.cfg->buffer.max_bytes);
  sw_prom_family(p, "spillway_buffer_queued_bytes", SW_PROM_GAUGE, "Raw bytes sealed and waiting for the writer.");
  sw_prom_sample_u64(p, "", NULL, 0, sw_writer_inflight(m->src.writer));
  uint64_t rb, rh, rm;
  sw_hot_stats(sw_writer_hot(m->src.writer), &rb, &rh, &rm);
  sw_prom_family(p, "spillway_buffer_recent_bytes", SW_PROM_GAUGE,
                 "Committed chunks also held in memory for the sinks (buffer.recent_in_memory).");
  sw_prom_sample_u64(p, "", NULL, 0, rb);
  sw_prom_family(p, "spillway_buffer_recent_reads_total", SW_PROM_COUNTER,
                 "Chunks the sinks asked for: found in memory (hit), or read back from the buffer (miss).");
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"result", "hit"}}, 1, rh);
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"result", "miss"}}, 1, rm);
  sw_prom_family(p, "spillway_buffer_disk_full", SW_PROM_GAUGE,
                 "1 while commits fail because the filesystem under data_dir is full (reading paused).");
  sw_prom_sample_u64(p, "", NULL, 0, (uint64_t)sw_writer_disk_full(m->src.writer));
  sw_prom_family(p, "spillway_buffer_commit_failures_total", SW_PROM_COUNTER,
                 "Buffer commits that failed and were retried, by reason.");
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"reason", "disk_full"}}, 1,
                     sw_writer_commit_failures(m->src.writer, 1));
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"reason", "other"}}, 1,
                     sw_writer_commit_failures(m->src.writer, 0));
  if (!st) return; /* no snapshot yet: no series rather than zeros that would jump */
  sw_prom_family(p, "spillway_buffer_chunks", SW_PROM_GAUGE, "Chunks in the buffer.");
  sw_prom_sample_u64(p, "", NULL, 0, jcount(b, "chunks"));
  sw_prom_family(p, "spillway_buffer_records", SW_PROM_GAUGE, "Records in the buffer.");
  sw_prom_sample_u64(p, "", NULL, 0, jcount(b, "records"));
  sw_prom_family(p, "spillway_buffer_file_bytes", SW_PROM_GAUGE, "spillway.db and its WAL on disk.");
  sw_prom_sample_u64(p, "", NULL, 0, m->cur ? m->cur->db_file_bytes : 0);
  sw_prom_family(p, "spillway_buffer_dropped_chunks_total", SW_PROM_COUNTER,
                 "Unshipped chunks dropped, by policy (when_full: drop_oldest, disk_pressure.drop_unshipped).");
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"policy", "drop_oldest"}}, 1, jcount(b, "dropped_chunks"));
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"policy", "disk_pressure"}}, 1,
                     jcount(ret, "pressure_dropped_chunks"));
  static const char *const salvage[][3] = {
      {"spillway_buffer_damaged_total", "damaged", "Damaged spillway.db files moved aside at start (and salvaged)."},
      {"spillway_buffer_salvaged_chunks_total", "salvaged_chunks", "Chunks copied out of damaged databases."},
      {"spillway_buffer_salvage_lost_chunks_total", "salvage_lost_chunks", "Chunk rows of damaged databases whose data did not decode."},
      {"spillway_buffer_salvage_reread_files_total", "salvage_reread_files",
       "Files read again from their start after a salvage (their lost chunks may not have been shipped)."}};
  for (size_t i = 0; i < sizeof salvage / sizeof *salvage; i++) {
    sw_prom_family(p, salvage[i][0], SW_PROM_COUNTER, salvage[i][2]);
    sw_prom_sample_u64(p, "", NULL, 0, jcount(b, salvage[i][1]));
  }
  sw_prom_family(p, "spillway_buffer_dropped_records_total", SW_PROM_COUNTER, "Records of the dropped chunks, by policy.");
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"policy", "drop_oldest"}}, 1, jcount(b, "dropped_records"));
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"policy", "disk_pressure"}}, 1,
                     jcount(ret, "pressure_dropped_records"));
}

/* Per-sink figures from the buffer snapshot (all sinks). */
static void render_sinks(struct sw_metrics *m, struct sw_prom *p, const cJSON *st) {
  const struct sw_config *cfg = m->src.cfg;
  const cJSON *sinks = cJSON_GetObjectItemCaseSensitive(st, "sinks");
  int64_t now_ns = sw_time_now_ns();
  static const struct {
    const char *name, *key, *help;
    enum sw_prom_type type;
  } db_fams[] = {
      {"spillway_sink_records_sent_total", "sent_records", "Records delivered (cursor).", SW_PROM_COUNTER},
      {"spillway_sink_backlog_records", "backlog_records", "Buffered records not yet delivered.", SW_PROM_GAUGE},
      {"spillway_sink_backlog_chunks", "backlog_chunks", "Buffered chunks not yet delivered.", SW_PROM_GAUGE},
      {"spillway_sink_backlog_bytes", "backlog_bytes", "Stored bytes of the chunks not yet delivered.", SW_PROM_GAUGE},
      {"spillway_sink_dead_letters", "dead_letters", "Refused batches kept as dead letters now.", SW_PROM_GAUGE},
      {"spillway_sink_dead_letter_records", "dead_letter_records", "Records in the dead letters.", SW_PROM_GAUGE},
  };
  for (size_t k = 0; k < sizeof db_fams / sizeof *db_fams; k++) {
    sw_prom_family(p, db_fams[k].name, db_fams[k].type, db_fams[k].help);
    for (size_t i = 0; st && i < cfg->nsinks; i++) {
      struct sw_prom_label l[] = {{"sink", m->sink_names[i]}, {"type", m->sink_types[i]}};
      sw_prom_sample_u64(p, "", l, 2, jcount(by_name(sinks, m->sink_names[i]), db_fams[k].key));
    }
  }
  sw_prom_family(p, "spillway_sink_oldest_unshipped_age_seconds", SW_PROM_GAUGE,
                 "Age of the oldest buffered chunk the sink has not delivered (0: none).");
  double worst = 0;
  for (size_t i = 0; st && i < cfg->nsinks; i++) {
    double oldest = jnum(by_name(sinks, m->sink_names[i]), "oldest_unshipped_ns");
    double age = oldest > 0 && now_ns > oldest ? (now_ns - oldest) / 1e9 : 0;
    worst = age > worst ? age : worst;
    struct sw_prom_label l[] = {{"sink", m->sink_names[i]}, {"type", m->sink_types[i]}};
    sw_prom_sample(p, "", l, 2, age);
  }
  sw_prom_family(p, "spillway_buffer_oldest_unshipped_age_seconds", SW_PROM_GAUGE,
                 "Age of the oldest chunk some sink has not delivered (0: none).");
  if (st) sw_prom_sample(p, "", NULL, 0, worst);
  sw_prom_family(p, "spillway_sink_last_error_timestamp_seconds", SW_PROM_GAUGE,
                 "When the sink last failed, Unix time (0: never).");
  for (size_t i = 0; st && i < cfg->nsinks; i++) {
    struct sw_prom_label l[] = {{"sink", m->sink_names[i]}, {"type", m->sink_types[i]}};
    sw_prom_sample(p, "", l, 2, jnum(by_name(sinks, m->sink_names[i]), "last_error_ns") / 1e9);
  }
}

/* Network sinks' transport counters (loop memory), and the file sinks' delivered bytes. */
static void render_sink_traffic(struct sw_metrics *m, struct sw_prom *p, const cJSON *st) {
  const struct sw_config *cfg = m->src.cfg;
  const cJSON *sinks = cJSON_GetObjectItemCaseSensitive(st, "sinks");
  size_t nnet = m->src.shipper ? sw_shipper_nsinks(m->src.shipper) : 0;
  struct sw_shipper_sink_stats ss;
  static const char *const net_fams[][2] = {
      {"spillway_sink_bytes_sent_total", "Request body bytes delivered (after compression)."},
      {"spillway_sink_batches_sent_total", "Batches delivered."},
      {"spillway_sink_dead_letters_total", "Batches refused for good and kept as dead letters."},
      {"spillway_sink_requests_total", "HTTP requests sent, retries included."},
      {"spillway_sink_retries_total", "HTTP requests sent again after a failure."},
      {"spillway_sink_resend_skipped_records_total",
       "Loki: entries of batches in flight at a restart that Loki already held (not sent again)."},
      {"spillway_sink_possibly_duplicated_records_total",
       "Loki: entries sent again after a restart without Loki saying whether it held them."},
      {"spillway_sink_routed_away_records_total",
       "Records of shipped chunks the sink's match kept out (not for this sink)."},
      {"spillway_sink_label_missing_total",
       "{label}s of tenant, index or prefix a record did not have: expanded to `unknown`."},
  };
  for (size_t k = 0; k < sizeof net_fams / sizeof *net_fams; k++) {
    sw_prom_family(p, net_fams[k][0], SW_PROM_COUNTER, net_fams[k][1]);
    for (size_t i = 0; i < nnet; i++) {
      sw_shipper_sink_stats(m->src.shipper, i, &ss);
      uint64_t v[] = {ss.bytes_sent, ss.batches_sent, ss.dead_letters, ss.http->requests, ss.http->retries,
                      ss.skipped_records, ss.possibly_duplicated_records, ss.routed_away_records,
                      ss.label_missing};
      sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"sink", ss.name}, {"type", ss.type}}, 2, v[k]);
    }
    /* File sinks: the committed length of their output is what they delivered. */
    for (size_t i = 0; k == 0 && st && i < cfg->nsinks; i++) {
      if (cfg->sinks[i].type != SW_SINK_FILE) continue;
      struct sw_prom_label l[] = {{"sink", m->sink_names[i]}, {"type", m->sink_types[i]}};
      sw_prom_sample_u64(p, "", l, 2, jcount(by_name(sinks, m->sink_names[i]), "out_bytes"));
    }
  }
  sw_prom_family(p, "spillway_sink_responses_total", SW_PROM_COUNTER,
                 "HTTP answers by status class; class=\"network\" counts requests without an answer.");
  for (size_t i = 0; i < nnet; i++) {
    sw_shipper_sink_stats(m->src.shipper, i, &ss);
    const char *cls[] = {"2xx", "4xx", "5xx", "network"};
    uint64_t v[] = {ss.http->responses_2xx, ss.http->responses_4xx, ss.http->responses_5xx,
                    ss.http->network_errors};
    for (size_t c = 0; c < 4; c++)
      sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"sink", ss.name}, {"type", ss.type}, {"class", cls[c]}},
                         3, v[c]);
  }
  sw_prom_family(p, "spillway_sink_request_duration_seconds", SW_PROM_HISTOGRAM,
                 "Duration of each HTTP attempt.");
  for (size_t i = 0; i < nnet; i++) {
    sw_shipper_sink_stats(m->src.shipper, i, &ss);
    sw_prom_histogram(p, (struct sw_prom_label[]){{"sink", ss.name}, {"type", ss.type}}, 2,
                      sw_http_latency_bounds, ss.http->latency, SW_HTTP_LATENCY_BUCKETS,
                      ss.http->latency_sum);
  }
}

/* Counters of the buffer's `counters` table: redaction rules and retention. */
static void render_counters(struct sw_prom *p, const cJSON *st) {
  const cJSON *red = cJSON_GetObjectItemCaseSensitive(st, "redactions");
  const cJSON *ret = cJSON_GetObjectItemCaseSensitive(st, "retention");
  const cJSON *e;
  if (!st) return; /* no snapshot yet */
  sw_prom_family(p, "spillway_redaction_matches_total", SW_PROM_COUNTER, "Secrets replaced, per rule or pack.");
  cJSON_ArrayForEach(e, red) {
    if (cJSON_IsNumber(e) && e->string)
      sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"rule", e->string}}, 1,
                         e->valuedouble > 0 ? (uint64_t)e->valuedouble : 0);
  }
  static const char *const actions[][2] = {
      {"rotate", "rotations"},       {"compress", "compressions"},  {"delete", "deletions"},
      {"repair", "repairs"},         {"defer", "deferred"},         {"error", "errors"},
      {"signal", "signals"},         {"pressure_delete", "pressure_deletions"},
      {"truncate_shipped", "truncations"}, {"buffer_vacuum", "buffer_vacuums"},
      {"buffer_drop", "pressure_drops"},
  };
  sw_prom_family(p, "spillway_retention_actions_total", SW_PROM_COUNTER, "Retention and disk-pressure actions taken.");
  for (size_t i = 0; i < sizeof actions / sizeof *actions; i++)
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"action", actions[i][0]}}, 1, jcount(ret, actions[i][1]));
  static const char *const freed[][2] = {
      {"files", "bytes_freed"}, {"buffer_vacuum", "buffer_vacuumed_bytes"},
      {"truncate_shipped", "truncated_bytes"}, {"buffer_drop", "pressure_dropped_file_bytes"},
  };
  sw_prom_family(p, "spillway_retention_freed_bytes_total", SW_PROM_COUNTER,
                 "Disk bytes freed: archives deleted and compressed (files), buffer vacuums, truncations, drops.");
  for (size_t i = 0; i < sizeof freed / sizeof *freed; i++)
    sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"action", freed[i][0]}}, 1, jcount(ret, freed[i][1]));
  sw_prom_family(p, "spillway_retention_compressed_bytes_total", SW_PROM_COUNTER,
                 "Bytes into and out of archive compression.");
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"direction", "in"}}, 1, jcount(ret, "compressed_in_bytes"));
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"direction", "out"}}, 1, jcount(ret, "compressed_out_bytes"));
  sw_prom_family(p, "spillway_disk_pressure_events_total", SW_PROM_COUNTER, "Passes that found disk pressure, by level.");
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"level", "soft"}}, 1, jcount(ret, "pressure_soft_events"));
  sw_prom_sample_u64(p, "", (struct sw_prom_label[]){{"level", "hard"}}, 1, jcount(ret, "pressure_hard_events"));
}

static void render_disks(struct sw_metrics *m, struct sw_prom *p) {
  const struct snapshot *s = m->cur;
  const struct sw_config *cfg = m->src.cfg;
  static const char *const fams[][2] = {
      {"spillway_disk_used_bytes", "Used bytes of the filesystem holding a watched path (as df)."},
      {"spillway_disk_available_bytes", "Bytes available to unprivileged users there."},
      {"spillway_disk_used_ratio", "used / (used + available), 0..1."},
  };
  for (size_t k = 0; k < 3; k++) {
    sw_prom_family(p, fams[k][0], SW_PROM_GAUGE, fams[k][1]);
    for (size_t i = 0; s && i < m->ndisks; i++) {
      if (!s->disks[i].ok) continue;
      const struct sw_disk_usage *u = &s->disks[i].u;
      struct sw_prom_label l[] = {{"path", m->disk_paths[i]}};
      if (k == 2) sw_prom_sample(p, "", l, 1, u->percent / 100.0);
      else sw_prom_sample_u64(p, "", l, 1, k == 0 ? u->used : u->avail);
    }
  }
  if (!cfg->disk_pressure.path) return;
  struct sw_prom_label l[] = {{"path", cfg->disk_pressure.path}};
  sw_prom_family(p, "spillway_disk_pressure_soft_ratio", SW_PROM_GAUGE, "disk_pressure.soft_percent / 100.");
  sw_prom_sample(p, "", l, 1, cfg->disk_pressure.soft_percent / 100.0);
  sw_prom_family(p, "spillway_disk_pressure_hard_ratio", SW_PROM_GAUGE, "disk_pressure.hard_percent / 100.");
  sw_prom_sample(p, "", l, 1, cfg->disk_pressure.hard_percent / 100.0);
}

int sw_metrics_render(struct sw_metrics *m, struct sw_buf *out) {
  int64_t now = sw_ingest_now_ms();
  m->last_scrape_ms = now;
  if (!m->cur || now - m->cur->taken_ms > SNAPSHOT_EVERY_MS) snapshot_start(m);
  const cJSON *st = m->cur ? m->cur->status : NULL;
  struct sw_prom p;
  sw_prom_init(&p, out);
  render_process(m, &p);
  render_sources(m, &p, st);
  render_buffer(m, &p, st);
  render_sinks(m, &p, st);
  render_sink_traffic(m, &p, st);
  render_counters(&p, st);
  render_disks(m, &p);
  sw__metrics_render_kube(&p, m->src.kube, m->src.tail);
  sw__metrics_render_journal(&p, m->src.journals);
  sw__metrics_render_process(&p, m->src.process);
  sw__metrics_render_archive(&p, m->cur ? &m->cur->archive : NULL);
  sw_prom_family(&p, "spillway_metrics_snapshot_age_seconds", SW_PROM_GAUGE,
                 "Age of the buffer and disk figures in this scrape (-1: none read yet).");
  sw_prom_sample(&p, "", NULL, 0, st ? (now - m->cur->taken_ms) / 1e3 : -1);
  int rc = sw_prom_finish(&p);
  if (p.duplicates) SW_LOG(SW_L_DEBUG, "http", "metrics: %zu duplicate series dropped", p.duplicates);
  sw_prom_free(&p);
  return rc;
}
