/* error.h - spillway's error codes.
 *
 * Every fallible function returns int: 0 on success, a negative SW_E* code on failure.
 * Errors from libuv, SQLite, zstd, PCRE2 and errno are translated where they enter a module,
 * so callers only ever see these codes. sw_strerror() never returns NULL.
 */
#ifndef SW_ERROR_H
#define SW_ERROR_H

#define SW_ERRNO_MAP(X)                                   \
  X(NOMEM, "out of memory")                               \
  X(INVAL, "invalid argument")                            \
  X(IO, "input/output error")                             \
  X(PARSE, "parse error")                                 \
  X(TOOBIG, "size limit exceeded")                        \
  X(NOTFOUND, "not found")                                \
  X(DB, "database error")                                 \
  X(CONFIG, "invalid configuration")                      \
  X(AGAIN, "resource temporarily unavailable")            \
  X(FULL, "buffer full")                                  \
  X(CORRUPT, "corrupt data")                              \
  X(UNSUPPORTED, "not supported")                         \
  X(CANCELED, "stopped before the end")

enum sw_errno {
  SW_OK = 0,
#define SW__ERR_ENUM(name, msg) SW_E##name,
  SW__ERR_FIRST = -100,
  SW_ERRNO_MAP(SW__ERR_ENUM)
#undef SW__ERR_ENUM
  SW__ERR_END
};

/* Static string for an error code (0 and unknown codes included); never NULL. */
const char *sw_strerror(int err);

#define SW_MUST_CHECK __attribute__((warn_unused_result))

#endif
