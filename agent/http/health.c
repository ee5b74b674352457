/* health.c - `spillway health`: a minimal HTTP client for the agent's own /health and /ready.
 *
 * The container image has no shell, curl or wget (only the binary and the shared libraries it
 * needs), so its HEALTHCHECK runs the binary itself. One GET over a plain TCP socket, a hard
 * deadline, no allocation: it must never hang or crash a health check. `spillway status` uses
 * the same client for /metrics (sw_health_get, which allocates the answer's room). */
#include "health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../common/timefmt.h"
#include "../../common/text.h"

/* HOST:PORT or [V6]:PORT as server.listen takes it; a wildcard host means this machine. */
static int parse_addr(const char *listen, struct sockaddr_storage *ss, socklen_t *len) {
  char host[128];
  unsigned port;
  if (sw_listen_split(listen, host, sizeof host, &port) || port == 0) return -1;
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    if (v4->sin_addr.s_addr == htonl(INADDR_ANY)) v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *len = sizeof *v4;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    if (IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr)) v6->sin6_addr = in6addr_loopback;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    *len = sizeof *v6;
    return 0;
  }
  return -1;
}

/* Waits for `events` on fd until the deadline; 0 when ready. */
static int wait_fd(int fd, short events, long long deadline) {
  for (;;) {
    long long left = deadline - sw_time_mono_ms();
    if (left <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, (int)left);
    if (n > 0) return 0;
    if (n < 0 && errno != EINTR) return -1;
  }
}

/* One GET; the whole answer (head and body, at most cap - 1 bytes, NUL-terminated) goes to
 * resp. Returns the HTTP status, or -1 with err set. */
static int fetch(const char *listen, const char *path, int timeout_ms, char *resp, size_t cap,
                 size_t *gotp, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  socklen_t sslen = 0;
  if (!listen || !*listen || !strcmp(listen, "0")) {
    snprintf(err, errlen, "the HTTP server is turned off (server.listen is empty)");
    return -1;
  }
  if (parse_addr(listen, &ss, &sslen)) {
    snprintf(err, errlen, "cannot parse address \"%s\" (want HOST:PORT with an IP address)", listen);
    return -1;
  }
  long long deadline = sw_time_mono_ms() + timeout_ms;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "socket: %s", strerror(errno));
    return -1;
  }
  char req[256];
  size_t got = 0;
  if (connect(fd, (struct sockaddr *)&ss, sslen) && errno != EINPROGRESS) goto fail;
  if (wait_fd(fd, POLLOUT, deadline)) goto fail;
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
    errno = soerr ? soerr : errno;
    goto fail;
  }
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                   path);
  for (int off = 0; off < n;) {
    ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
    if (w < 0 && errno == EAGAIN) {
      if (wait_fd(fd, POLLOUT, deadline)) goto fail;
      continue;
    }
    if (w < 0 && errno != EINTR) goto fail;
    if (w > 0) off += (int)w;
  }
  for (;;) { /* the server closes after its answer (Connection: close) */
    if (wait_fd(fd, POLLIN, deadline)) goto fail;
    ssize_t r = recv(fd, resp + got, cap - 1 - got, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r < 0) goto fail;
    got += (size_t)r;
    if (r == 0 || got == cap - 1) break;
  }
  resp[got] = 0;
  close(fd);
  *gotp = got;
  if (strncmp(resp, "HTTP/1.", 7) || got < 12 || resp[8] != ' ') {
    snprintf(err, errlen, "%s: not an HTTP answer", listen);
    return -1;
  }
  return atoi(resp + 9);
fail:
  snprintf(err, errlen, "%s%s: %s", listen, path, strerror(errno));
  close(fd);
  return -1;
}

int sw_health_probe(const char *listen, const char *path, int timeout_ms, char *body,
                    size_t bodylen, char *err, size_t errlen) {
  char resp[2048];
  size_t got = 0;
  if (body && bodylen) body[0] = 0;
  int status = fetch(listen, path, timeout_ms, resp, sizeof resp, &got, err, errlen);
  const char *b = status >= 0 ? strstr(resp, "\r\n\r\n") : NULL;
  if (b && body && bodylen) snprintf(body, bodylen, "%s", b + 4);
  return status;
}

int sw_health_get(const char *listen, const char *path, int timeout_ms, size_t max, char **body,
                  size_t *len, char *err, size_t errlen) {
  *body = NULL;
  *len = 0;
  char *resp = malloc(max + 1);
  if (!resp) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  size_t got = 0;
  int status = fetch(listen, path, timeout_ms, resp, max + 1, &got, err, errlen);
  const char *b = status >= 0 ? strstr(resp, "\r\n\r\n") : NULL;
  if (status >= 0 && (!b || got == max)) {
    snprintf(err, errlen, "%s%s: %s", listen, path, b ? "answer too large" : "no body");
    status = -1;
  }
  if (status < 0) {
    free(resp);
    return -1;
  }
  *len = got - (size_t)(b + 4 - resp);
  memmove(resp, b + 4, *len + 1);
  *body = resp;
  return status;
}
