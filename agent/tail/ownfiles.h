/* ownfiles.h - the files the agent writes itself, which no source may ever read.
 *
 * A glob that reaches them makes a feedback loop: the agent reads its own output and writes it
 * again, growing without end (its buffer, spillway.db with -wal and -shm, its file sinks'
 * outputs), or reads binary data as log text (a compressed archive, a temporary retention is
 * still writing). Two lines of defence:
 *   - `spillway check` (and start, and reload) refuse a source glob that could match files in
 *     data_dir (or spells data_dir out) or a file sink's output (config/own.c, with sw_own_glob_reaches and
 *     sw_own_glob_matches, which compare paths lexically);
 *   - at run time, discovery skips what a glob still finds through a symlink or bind mount
 *     (sw_own_why, which compares real paths and inodes), and by name the temporaries and
 *     compressed archives of retention (NAME.N[.zst].tmp-XXXXXX, *.zst, *.gz, ...).
 * Pure string functions except sw_own_why (stat, realpath). Loop thread only.
 */
#ifndef SW_OWNFILES_H
#define SW_OWNFILES_H

#include <sys/stat.h>

#include "../config/config.h"

struct sw_own;

/* Keeps what it needs of cfg (copies). NULL on ENOMEM. Free with sw_own_free. */
struct sw_own *sw_own_create(const struct sw_config *cfg);
void sw_own_free(struct sw_own *o);

/* Why the regular file `path` (found by a glob, `st` its stat) must not be tailed, or NULL.
 * The reason is a static string: "under data_dir", "a file sink's output", ... */
const char *sw_own_why(struct sw_own *o, const char *path, const struct stat *st);

/* By name alone: a retention temporary (NAME.N.tmp-XXXXXX, NAME.N.zst.tmp-XXXXXX) or a
 * compressed file (.zst .gz .xz .bz2 .lz4 .zip): "a retention temporary" / "a compressed
 * archive", or NULL. */
const char *sw_own_name_why(const char *path);

/* 1 if the glob (absolute) can match a file directly in dir (absolute), or spells dir out
 * literally and goes deeper; else 0 (a wildcard that only crosses dir on the way to deeper
 * levels, e.g. /var/lib/<*>/containers/... for /var/lib/spillway, is left to sw_own_why). Both
 * are normalised lexically ("." and ".." components, repeated slashes); -1 on ENOMEM. */
int sw_own_glob_reaches(const char *glob, const char *dir);
/* 1 if the glob (absolute) matches path (absolute), after the same normalisation; -1 on ENOMEM. */
int sw_own_glob_matches(const char *glob, const char *path);

#endif
