/* retention.c - schema rows of the `retention` list and the `disk_pressure` section
 * (their meaning: agent/retention/retention.h and docs/architecture.md). Kept apart from
 * config/schema.c so each section's rows live next to each other; the root table refers to
 * the two tables exported here.
 */
#include <string.h>

#include "schema.h"

#define ROWS(r) .rows = r, .nrows = sizeof r / sizeof r[0]
#define WIDTH(T, f) sizeof(((T *)0)->f)
#define RC struct sw_retention_conf

_Static_assert(sizeof(enum sw_rotate_method) == sizeof(int) && sizeof(enum sw_codec) == sizeof(int) &&
                   sizeof(enum sw_rotate_signal) == sizeof(int),
               "SW__CT_ENUM stores enums as int");

/* The index of a value is its enum value in config.h. */
static const char *const methods[] = {"rename", "copytruncate", NULL};
static const char *const codecs[] = {"zstd", "none", NULL};
static const char *const signals[] = {"HUP", "USR1", "USR2", "INT", "TERM", "QUIT", "WINCH", NULL};

static const struct sw__conf_row signal_rows[] = {
    {.key = "pid_file", .type = SW__CT_STRING, .flags = SW__CF_PATH | SW__CF_NONEMPTY,
     .offset = offsetof(RC, signal_pid_file),
     .help = "File holding the writer's process id (read at each rotation)."},
    {.key = "signal", .type = SW__CT_ENUM, .def = "HUP", .values = signals, .offset = offsetof(RC, signal),
     .help = "Signal sent after the files of this entry were renamed, so the writer reopens its log."},
};
static const struct sw__conf_table signal_table = {
    .intro = "Tells the writer to reopen its log after `method: rename` (like logrotate's `postrotate "
             "kill -HUP`). Sent once per run, after every rename of the entry.",
    ROWS(signal_rows), .discriminator = -1};

static const struct sw__conf_row rotate_rows[] = {
    {.key = "max_size", .type = SW__CT_SIZE, .min = 1, .offset = offsetof(RC, max_size),
     .help = "Rotate a live file once it is at least this big. Unset: no size rule."},
    {.key = "max_age", .type = SW__CT_DURATION, .min = 1000, .offset = offsetof(RC, max_age_ms),
     .help = "Rotate a live file once its content is this old: the later of the file's birth time and "
             "the modification time of its newest archive. Unset: no age rule."},
    {.key = "method", .type = SW__CT_ENUM, .def = "rename", .values = methods, .offset = offsetof(RC, method),
     .help = "`rename`: NAME becomes NAME.1 and the writer reopens NAME (see postrotate_signal); "
             "`copytruncate`: NAME is copied to NAME.1 and truncated, for writers that never reopen."},
    {.key = "postrotate_signal", .type = SW__CT_OBJECT, .table = &signal_table, .help = "See below."},
};
static const struct sw__conf_table rotate_table = {
    .intro = "When and how live files are rotated. Empty files are never rotated. Archives are "
             "numbered like logrotate's: NAME.1 is the newest, older ones are shifted up.",
    ROWS(rotate_rows), .discriminator = -1};

static const struct sw__conf_row compress_rows[] = {
    {.key = "codec", .type = SW__CT_ENUM, .def = "zstd", .values = codecs, .offset = offsetof(RC, codec),
     .help = "`zstd` writes NAME.N.zst; `none` keeps archives plain."},
    {.key = "level", .type = SW__CT_UINT, .def = "3", .min = 1, .max = 19, .width = WIDTH(RC, level),
     .offset = offsetof(RC, level),
     .help = "zstd level (4 MiB window with long-distance matching; tables capped: about 6 MiB of memory "
             "at level 3, at most ~14 MiB at level 19)."},
    {.key = "delay_compress", .type = SW__CT_BOOL, .def = "false", .offset = offsetof(RC, delay_compress),
     .help = "Keep the newest archive (NAME.1) plain until the next rotation, for writers that may "
             "still write to it. Ignored under disk pressure."},
};
static const struct sw__conf_table compress_table = {
    .intro = "Compression of archives: streamed (bounded memory), written to a temporary file, "
             "fsynced and renamed before the plain file is removed.",
    ROWS(compress_rows), .discriminator = -1};

static const struct sw__conf_row keep_rows[] = {
    {.key = "count", .type = SW__CT_UINT, .def = "7", .max = 100000, .width = WIDTH(RC, keep_count),
     .offset = offsetof(RC, keep_count),
     .help = "Archives kept per live file, newest first; 0: an archive is deleted by the run after the one "
             "that made it."},
    {.key = "max_age", .type = SW__CT_DURATION, .min = 1000, .offset = offsetof(RC, keep_max_age_ms),
     .help = "Archives last modified longer ago than this are deleted. Unset: no age limit."},
    {.key = "max_total_bytes", .type = SW__CT_SIZE, .min = 1, .offset = offsetof(RC, keep_max_total_bytes),
     .help = "Archives of one live file beyond this total (newest kept first) are deleted. Unset: no limit."},
};
static const struct sw__conf_table keep_table = {
    .intro = "Which archives are kept. A file a source still has to read is never deleted or truncated.",
    ROWS(keep_rows), .discriminator = -1};

static const struct sw__conf_row retention_rows[] = {
    {.key = "name", .type = SW__CT_STRING, .flags = SW__CF_REQUIRED | SW__CF_NAME, .offset = offsetof(RC, name),
     .help = "Unique among retention entries; letters, digits, `_`, `.`, `-`."},
    {.key = "paths", .type = SW__CT_STRLIST, .flags = SW__CF_REQUIRED | SW__CF_NONEMPTY | SW__CF_GLOB,
     .offset = offsetof(RC, paths), .count_offset = offsetof(RC, npaths),
     .help = "Globs of the live files. Names ending in `.N`, `.N.zst` or a temporary suffix are archives, "
             "never live files; only archives of matched names are touched."},
    {.key = "exclude", .type = SW__CT_STRLIST, .flags = SW__CF_GLOB, .offset = offsetof(RC, exclude),
     .count_offset = offsetof(RC, nexclude), .help = "Globs matched against the full path; a match is left alone."},
    {.key = "rotate", .type = SW__CT_OBJECT, .table = &rotate_table, .help = "See below."},
    {.key = "compress", .type = SW__CT_OBJECT, .table = &compress_table, .help = "See below."},
    {.key = "keep", .type = SW__CT_OBJECT, .table = &keep_table, .help = "See below."},
};

static bool has(const cJSON *obj, const char *key) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
  return it && !cJSON_IsNull(it);
}

static void check_retention(struct sw__conf_ctx *c, void *base, const cJSON *obj, int kind) {
  const RC *r = base;
  (void)kind;
  const cJSON *rot = cJSON_GetObjectItemCaseSensitive(obj, "rotate");
  if (r->method == SW_ROTATE_COPYTRUNCATE && cJSON_IsObject(rot) && has(rot, "postrotate_signal")) {
    size_t saved = sw__conf_path_key(c, "rotate");
    sw__conf_path_key(c, "postrotate_signal");
    sw__conf_err(c, "only for method rename (copytruncate keeps the writer's file)");
    sw__conf_path_pop(c, saved);
  }
  const cJSON *sig = cJSON_IsObject(rot) ? cJSON_GetObjectItemCaseSensitive(rot, "postrotate_signal") : NULL;
  if (cJSON_IsObject(sig) && !has(sig, "pid_file")) {
    size_t saved = sw__conf_path_key(c, "rotate");
    sw__conf_path_key(c, "postrotate_signal");
    sw__conf_path_key(c, "pid_file");
    sw__conf_err(c, "required");
    sw__conf_path_pop(c, saved);
  }
}

static void check_retention_list(struct sw__conf_ctx *c, void *elems, size_t n) {
  sw__conf_check_unique(c, "retention", elems, n, sizeof(RC), offsetof(RC, name));
}

const struct sw__conf_table sw__conf_retention_table = {
    .intro = "Rotation, compression and pruning of local log files (`spillway rotate` applies them once; "
             "the agent applies them every `disk_pressure.interval`).",
    ROWS(retention_rows), .elem_size = sizeof(RC), .discriminator = -1, .check = check_retention,
    .check_list = check_retention_list};

/* ---- disk_pressure ---- */

#define DP(f) offsetof(struct sw_config, disk_pressure.f)
#define DPW(f) WIDTH(struct sw_config, disk_pressure.f)

static const struct sw__conf_row disk_pressure_rows[] = {
    {.key = "path", .type = SW__CT_STRING, .flags = SW__CF_PATH | SW__CF_NONEMPTY, .offset = DP(path),
     .help = "A path on the filesystem to watch (`statvfs`); required when the section is present."},
    {.key = "soft_percent", .type = SW__CT_UINT, .def = "80", .min = 1, .max = 99, .width = DPW(soft_percent),
     .offset = DP(soft_percent),
     .help = "Above this usage, live files of every retention entry are rotated and archives compressed at once."},
    {.key = "hard_percent", .type = SW__CT_UINT, .def = "90", .min = 1, .max = 99, .width = DPW(hard_percent),
     .offset = DP(hard_percent),
     .help = "Above this usage, the oldest archives are deleted (already-shipped data first), then the "
             "buffer's free pages are returned, then (with drop_unshipped) the oldest unshipped chunks are "
             "dropped, until usage is below the midpoint of soft_percent and hard_percent."},
    {.key = "interval", .type = SW__CT_DURATION, .def = "10s", .min = 100, .offset = DP(interval_ms),
     .help = "How often the agent checks usage and applies the retention rules."},
    {.key = "rotate_min_size", .type = SW__CT_SIZE, .def = "1MiB", .min = 1, .offset = DP(rotate_min_size),
     .help = "Under pressure, live files smaller than this are not rotated (it would free nothing)."},
    {.key = "drop_unshipped", .type = SW__CT_BOOL, .def = "false", .offset = DP(drop_unshipped),
     .help = "Above hard_percent, drop the oldest chunks not yet shipped (counted) when nothing else is left."},
};

static void check_disk_pressure(struct sw__conf_ctx *c, void *base, const cJSON *obj, int kind) {
  const struct sw_config *cfg = base;
  (void)kind;
  if (!obj) return; /* section absent: off */
  if (!has(obj, "path")) {
    size_t saved = sw__conf_path_key(c, "path");
    sw__conf_err(c, "required");
    sw__conf_path_pop(c, saved);
  }
  uint32_t soft = cfg->disk_pressure.soft_percent, hard = cfg->disk_pressure.hard_percent;
  if (soft && hard && soft >= hard) {
    size_t saved = sw__conf_path_key(c, "hard_percent");
    sw__conf_err(c, "must be above soft_percent (%u)", soft);
    sw__conf_path_pop(c, saved);
  }
}

const struct sw__conf_table sw__conf_disk_pressure_table = {
    .intro = "Relief when a filesystem fills up. Absent: usage is not watched. Every action is logged "
             "with the bytes it freed and counted (`spillway status`).",
    ROWS(disk_pressure_rows), .discriminator = -1, .check = check_disk_pressure};
