/* recv.c - a loopback HTTP receiver for the sink benchmarks that costs next to no CPU, so the
 * figures are the agent's (a Python receiver on 2 cores competes with the agent).
 *
 * Accepts keep-alive HTTP/1.1 requests with a Content-Length body on 127.0.0.1 (port 0: any),
 * reads and discards the body, answers 204 (Loki's push) or 200 {"errors":false,"items":[]}
 * (Elasticsearch's _bulk; the agent reads items only when errors is true). Prints the port on
 * the first line of stdout; on SIGTERM/SIGINT prints {"requests":N,"bytes":N} and exits.
 * One thread, poll(), at most 64 connections, heads up to 16 KiB.
 *
 *   cmake --build build --target bench_recv && build/bench_recv
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64
#define HEAD_MAX 16384

struct conn {
  int fd;
  char head[HEAD_MAX];
  size_t hlen;
  unsigned long long body_left;
  int bulk; /* the request is an Elasticsearch _bulk */
};

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static void answer(struct conn *c) {
  static const char loki[] = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
  static const char es[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: 36\r\n\r\n{\"took\":0,\"errors\":false,\"items\":[]}";
  const char *r = c->bulk ? es : loki;
  size_t n = c->bulk ? sizeof es - 1 : sizeof loki - 1;
  while (n) {
    ssize_t w = write(c->fd, r, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    r += w;
    n -= (size_t)w;
  }
}

/* A complete head in c->head[0..end): note the body length and what to answer. */
static void parse_head(struct conn *c, size_t end) {
  c->head[end - 1] = 0;
  c->bulk = strstr(c->head, "/_bulk") != NULL;
  c->body_left = 0;
  for (char *line = strstr(c->head, "\r\n"); line; line = strstr(line + 2, "\r\n"))
    if (!strncasecmp(line + 2, "Content-Length:", 15)) c->body_left = strtoull(line + 17, NULL, 10);
}

/* Reads what is there; returns -1 when the connection is done. */
static int serve(struct conn *c, unsigned long long *requests, unsigned long long *bytes) {
  char buf[1 << 16];
  ssize_t got = read(c->fd, buf, sizeof buf);
  if (got < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
  if (got <= 0) return -1;
  size_t off = 0, n = (size_t)got;
  while (off < n) {
    if (c->body_left) {
      size_t k = n - off < c->body_left ? n - off : (size_t)c->body_left;
      c->body_left -= k;
      *bytes += k;
      off += k;
      if (!c->body_left) answer(c);
      continue;
    }
    if (c->hlen == HEAD_MAX) return -1;
    c->head[c->hlen++] = buf[off++];
    if (c->hlen >= 4 && !memcmp(c->head + c->hlen - 4, "\r\n\r\n", 4)) {
      parse_head(c, c->hlen);
      c->hlen = 0;
      (*requests)++;
      if (!c->body_left) answer(c);
    }
  }
  return 0;
}

int main(void) {
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 64) ||
      getsockname(ls, (struct sockaddr *)&a, &alen)) {
    perror("bench_recv");
    return 1;
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);
  static struct conn conns[MAX_CONNS];
  struct pollfd pfd[MAX_CONNS + 1];
  size_t nconns = 0;
  unsigned long long requests = 0, bytes = 0;
  while (!stop_flag) {
    pfd[0] = (struct pollfd){.fd = ls, .events = POLLIN};
    for (size_t i = 0; i < nconns; i++) pfd[i + 1] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
    if (poll(pfd, nconns + 1, 200) < 0) continue;
    for (size_t i = nconns; i > 0; i--)
      if (pfd[i].revents && serve(&conns[i - 1], &requests, &bytes) < 0) {
        close(conns[i - 1].fd);
        conns[i - 1] = conns[--nconns];
      }
    if (pfd[0].revents & POLLIN) {
      int fd = accept(ls, NULL, NULL);
      if (fd >= 0 && nconns < MAX_CONNS) {
        memset(&conns[nconns], 0, sizeof conns[nconns]);
        conns[nconns++].fd = fd;
      } else if (fd >= 0) {
        close(fd);
      }
    }
  }
  printf("{\"requests\":%llu,\"bytes\":%llu}\n", requests, bytes);
  return 0;
}
