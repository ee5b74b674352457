/* httpd_ws.c - WebSocket connections of the control server (RFC 6455, server side): the
 * handshake, text frames out, and the client's frames in (ping answered, close echoed, data
 * dropped as it arrives). See httpd.h for the interface and the connection states. */
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "head.h"
#include "httpd_int.h"
#include "ws.h"

/* Ends a WebSocket from the server's side: the producer is told (closed(), unless it asked),
 * a close frame with code[0..n) (n is 0 or 2) goes after the pending writes, then FIN and a
 * short drain (the client's own close frame must not make the kernel reset the connection). */
static void ws_shut(struct sw_http_conn *c, const uint8_t *code, size_t n) {
  if (c->ws_closing || c->closing) return;
  c->ws_closing = 1;
  void (*closed)(void *) = c->closed;
  c->closed = NULL;
  if (closed) closed(c->closed_arg);
  uint8_t frame[10 + 2];
  size_t hl = sw_ws_frame_header(frame, SW_WS_CLOSE, n); /* 2 */
  memcpy(frame + hl, code, n);
  if (sw__httpd_queue_write(c, frame, hl + n, NULL, 0, NULL, NULL)) return; /* c is closing */
  c->ending = c->drain = 1;
  sw__httpd_stream_finish(c);
}

static void ws_shut_code(struct sw_http_conn *c, int code) {
  uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
  ws_shut(c, p, 2);
}

/* Written or cancelled: runs before the connection is freed (libuv calls back cancelled
 * writes before the close callback). */
static void pong_written(void *arg, size_t len) {
  struct sw_http_conn *c = arg;
  (void)len;
  c->ws_pongs--;
}

/* A complete control frame (its payload unmasked in place). */
static void ws_control(struct sw_http_conn *c, const struct sw_ws_frame *f, uint8_t *payload) {
  if (f->opcode == SW_WS_PING) {
    if (c->ws_pongs >= MAX_PONGS) return;
    uint8_t hdr[10];
    size_t hl = sw_ws_frame_header(hdr, SW_WS_PONG, f->len); /* 2: len <= 125 */
    char *copy = f->len ? malloc(f->len) : NULL; /* freed when written (on_stream_written) */
    if (f->len && !copy) {
      sw__httpd_conn_close(c);
      return;
    }
    if (f->len) memcpy(copy, payload, f->len);
    if (sw__httpd_queue_write(c, hdr, hl, copy, f->len, pong_written, c)) return; /* c is closing */
    c->ws_pongs++;
  } else if (f->opcode == SW_WS_CLOSE) {
    if (f->len == 1) ws_shut_code(c, SW_WS_PROTOCOL_ERROR); /* a code is two bytes */
    else ws_shut(c, payload, f->len >= 2 ? 2 : 0); /* echo the client's code (RFC 6455 5.5.1) */
  } /* pong: nothing to do */
}

/* Handles the client bytes at the start of head: control frames are answered, data frames
 * dropped as they arrive (never buffered: only what a control frame needs stays in head). */
static void ws_process(struct sw_http_conn *c) {
  uint8_t *b = (uint8_t *)c->head;
  size_t pos = 0;
  while (pos < c->ws_in && !c->closing) {
    if (c->ws_closing) { /* after our close frame nothing the client says matters */
      pos = c->ws_in;
      break;
    }
    if (c->ws_skip) {
      size_t k = c->ws_in - pos < c->ws_skip ? c->ws_in - pos : (size_t)c->ws_skip;
      pos += k;
      c->ws_skip -= k;
      continue;
    }
    struct sw_ws_frame f;
    int rc = sw_ws_parse(b + pos, c->ws_in - pos, &f);
    if (rc == SW_WS_BAD) {
      SW_LOG(SW_L_DEBUG, "http", "closing a WebSocket: %s", f.why);
      pos = c->ws_in;
      ws_shut_code(c, f.code);
      break;
    }
    if (f.off && !(f.opcode & 8)) { /* data: ignored, so its payload is skipped */
      pos += f.off;
      c->ws_skip = f.len;
      continue;
    }
    if (rc == SW_WS_NEED_MORE) break;
    sw_ws_unmask(b + pos + f.off, f.len, f.mask, 0);
    ws_control(c, &f, b + pos + f.off);
    pos += f.off + f.len;
  }
  if (c->closing) return;
  memmove(b, b + pos, c->ws_in - pos);
  c->ws_in -= pos;
}

int sw_http_ws_accept(struct sw_http_conn *c, const struct sw_http_req *req,
                      void (*closed)(void *arg), void *arg) {
  if (c->phase != PH_HANDLER || c->responded || c->closing) return SW_EINVAL;
  size_t n = 0;
  char accept[29];
  int ok = strcmp(req->method, "GET") == 0;
  const char *v = ok ? sw_http_req_header(req, "Upgrade", &n) : NULL;
  ok = v && sw_http_head_has_token(v, n, "websocket");
  v = ok ? sw_http_req_header(req, "Connection", &n) : NULL;
  ok = v && sw_http_head_has_token(v, n, "upgrade");
  v = ok ? sw_http_req_header(req, "Sec-WebSocket-Version", &n) : NULL;
  ok = v && n == 2 && memcmp(v, "13", 2) == 0;
  v = ok ? sw_http_req_header(req, "Sec-WebSocket-Key", &n) : NULL;
  ok = v && sw_ws_accept_key(v, n, accept) == SW_OK;
  if (!ok) {
    sw__httpd_answer_error(c, 400);
    return SW_EINVAL;
  }
  char head[160];
  int hn = snprintf(head, sizeof head,
                    "HTTP/1.1 101 %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: %s\r\n\r\n", sw_http_reason(101), accept);
  c->responded = c->streaming = c->ws = 1;
  c->ws_input = ws_process;
  c->phase = PH_WS; /* reading goes on: client frames (see call_handler) */
  uv_timer_stop(&c->timer); /* from now on it watches write progress */
  return sw__httpd_send_head(c, head, (size_t)hn, closed, arg);
}

int sw_http_ws_send(struct sw_http_conn *c, char *data, size_t len,
                    void (*done)(void *arg, size_t len), void *arg) {
  if (!c->ws || c->ws_closing || c->closing) {
    free(data);
    return c->ws ? SW_EIO : SW_EINVAL;
  }
  uint8_t hdr[10];
  size_t hl = sw_ws_frame_header(hdr, SW_WS_TEXT, len);
  return sw__httpd_queue_write(c, hdr, hl, data, len, done, arg);
}

void sw_http_ws_close(struct sw_http_conn *c) {
  c->closed = NULL; /* the producer is done with c */
  if (c->ws) ws_shut_code(c, SW_WS_NORMAL);
}

