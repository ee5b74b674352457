/* httpd_int.h - what httpd.c (connections, requests, answers, streams) and httpd_ws.c
 * (WebSocket connections) share. Not part of the interface. */
#ifndef SW_HTTPD_INT_H
#define SW_HTTPD_INT_H

#include <stdint.h>

#include "httpd.h"

#define MAX_ROUTES 40
/* Pings beyond this many unwritten pongs go unanswered (RFC 6455 5.5.3 allows it): a client
 * that pings without reading must not grow the write queue until the stall timeout. */
#define MAX_PONGS 4

enum { M_GET = 1, M_POST = 2 }; /* route methods; M_GET serves HEAD too */

struct route {
  char path[64];   /* the path, or its prefix */
  unsigned methods;
  int prefix;      /* path is a prefix (sw_httpd_route_prefix) */
  int form;        /* a POST may carry a form body (sw_httpd_route_form) */
  int probe;       /* also served on the probe slots */
  sw_http_handler fn;
  void *arg;
};

struct sw_httpd {
  uv_tcp_t server;
  uv_loop_t *loop;
  struct route routes[MAX_ROUTES];
  int nroutes, nconns, nprobe, stopping, port; /* nprobe: of nconns, on probe slots */
  int live, server_closed; /* connection structs not yet freed; listener closed */
  struct sw_http_conn *conns;
};

/* What the read callbacks do with bytes (see the states in httpd.h). */
enum phase {
  PH_HEAD,     /* into head, parsed on each read */
  PH_BODY,     /* into body until body_len */
  PH_HANDLER,  /* the handler runs (reads come only after it returns) */
  PH_DEFERRED, /* dropped; EOF or error closes (closed() tells the producer) */
  PH_WS,       /* client frames, into head */
  PH_ANSWER,   /* not reading: answered or streaming */
  PH_DRAIN,    /* dropped until EOF or a short timer, after the answer (see on_written) */
};

struct sw_http_conn {
  uv_tcp_t tcp; /* first: handle callbacks get back to the connection */
  uv_timer_t timer;
  struct sw_httpd *h;
  struct sw_http_conn *prev, *next;
  char head[SW_HTTPD_MAX_HEAD + 1];
  size_t len;
  enum phase phase;
  int responded, closing, handles_open, head_only, drain;
  struct sw_http_req req;     /* the request, pointing into head (and body) */
  const struct route *route;  /* PH_BODY: whom to call once the body is in */
  char *body;                 /* PH_BODY: malloc'd body_len + 1 bytes, freed after the handler */
  size_t body_len, body_got;
  size_t ws_in;               /* PH_WS: bytes at the start of head (an incomplete frame) */
  uint64_t ws_skip;           /* PH_WS: payload bytes of a dropped data frame still to come */
  int ws, ws_closing;         /* a WebSocket; its close frame is queued */
  int ws_pongs;               /* pongs queued, not yet written (at most MAX_PONGS) */
  void (*ws_input)(struct sw_http_conn *c); /* PH_WS: handles the bytes read into head
                                               (set by httpd_ws.c, which uses this file) */
  int probe_only;        /* on a probe slot: only probe routes are served */
  uint64_t accepted_ms;  /* uv_now at accept */
  uv_write_t wreq;
  uv_shutdown_t sreq;
  struct sw_buf out;
  /* streaming answers (sw_http_stream_*); the timer then watches for a client that stopped
   * reading (no write completed for SW_HTTPD_STALL_TIMEOUT_MS) */
  int streaming, ending, writes;
  void (*closed)(void *arg);
  void *closed_arg;
};

struct stream_write {
  uv_write_t req;
  struct sw_http_conn *c;
  uint8_t hdr[16]; /* a WebSocket frame header (or a whole close frame) sent before data */
  size_t hlen;
  char *data;      /* may be NULL (len 0) */
  size_t len;
  void (*done)(void *arg, size_t len);
  void *arg;
};

/* Closes c now (closed() tells its producer). */
void sw__httpd_conn_close(struct sw_http_conn *c);
/* Queues hdr[0..hlen) (copied, hlen <= 16) then data[0..len) (owned, freed in every case).
 * On failure the connection is closed and done is not called. */
int sw__httpd_queue_write(struct sw_http_conn *c, const void *hdr, size_t hlen, char *data,
                          size_t len, void (*done)(void *arg, size_t len), void *arg);
/* Queues an answer's head (copied) on a connection that streams from now on, and hands it to
 * the producer's closed(arg): SW_OK, or an error after which c is closing (closed() does not
 * run). */
int sw__httpd_send_head(struct sw_http_conn *c, const char *head, size_t n, void (*closed)(void *arg),
                        void *arg);
/* Closes an ending stream once its writes are done. */
void sw__httpd_stream_finish(struct sw_http_conn *c);
/* A JSON error answer with status. */
void sw__httpd_answer_error(struct sw_http_conn *c, int status);

#endif
