/* alloc_inject.h - allocation-failure injection for unit tests (SQLite-style anomaly tests).
 *
 * Include once in a test program: without a sanitizer it replaces malloc & co. so a test can
 * fail the Nth allocation (alloc_fail_at) and count live blocks (alloc_live); with a sanitizer
 * INJECT_ALLOC is 0 and the tests that need it skip themselves.
 */
#ifndef SW_TEST_ALLOC_INJECT_H
#define SW_TEST_ALLOC_INJECT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define INJECT_ALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define INJECT_ALLOC 0
#endif
#endif
#ifndef INJECT_ALLOC
#define INJECT_ALLOC 1
#endif

#if INJECT_ALLOC
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
static long alloc_fail_at = -1; /* allocation number to fail; -1: none */
static long alloc_count, alloc_live;

/* An injected failure sets errno like the real allocator (realpath and strdup callers look). */
static bool alloc_fails(void) {
  bool fail = alloc_fail_at >= 0 && alloc_count++ == alloc_fail_at;
  if (fail) errno = ENOMEM;
  return fail;
}
void *malloc(size_t n) {
  void *p = alloc_fails() ? NULL : __libc_malloc(n);
  alloc_live += p != NULL;
  return p;
}
void *calloc(size_t n, size_t size) {
  void *p = alloc_fails() ? NULL : __libc_calloc(n, size);
  alloc_live += p != NULL;
  return p;
}
void *realloc(void *p, size_t n) {
  if (alloc_fails()) return NULL;
  void *q = __libc_realloc(p, n);
  alloc_live += (!p && q) - (p && !n && !q);
  return q;
}
void free(void *p) {
  alloc_live -= p != NULL;
  __libc_free(p);
}
#endif

#endif
