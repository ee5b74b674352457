#include "labels.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"

/* The label set being built and the redaction context its values go through. */
struct set {
  struct sw_buf b;
  struct sw_redact_ctx *rctx;
};

static int put(struct set *ls, const char *k, const char *v, size_t vlen) {
  struct sw_buf *b = &ls->b;
  /* An allocation failure inside the redactor yields its whole-value marker, never v: safe. */
  if (ls->rctx) (void)sw_redact_line(ls->rctx, v, vlen, 0, &v, &vlen);
  int rc = sw_buf_append(b, b->len > 1 ? ",\"" : "\"", b->len > 1 ? 2 : 1);
  if (!rc) rc = sw_buf_put_json_str(b, k, strlen(k), NULL);
  if (!rc) rc = sw_buf_append(b, "\":\"", 3);
  if (!rc) rc = sw_buf_put_json_str(b, v, vlen, NULL);
  if (!rc) rc = sw_buf_putc(b, '"');
  return rc;
}

/* The n-th path component counting from the end (0 = file name). */
static int component(const char *path, int n, const char **s, size_t *len) {
  const char *end = path + strlen(path);
  for (int i = 0; i <= n; i++) {
    const char *slash = end;
    while (slash > path && slash[-1] != '/') slash--;
    if (i == n) {
      *s = slash;
      *len = (size_t)(end - slash);
      return *len > 0;
    }
    if (slash <= path) return 0;
    end = slash - 1;
  }
  return 0;
}

/* The parts of /var/log/pods/<ns>_<pod>_<uid>/<container>/N.log: 1 when it has that shape. */
static int cri_parts(const char *path, const char **dir, size_t *dlen, const char **u1,
                     const char **u2, const char **ctr, size_t *clen) {
  if (!component(path, 1, ctr, clen) || !component(path, 2, dir, dlen)) return 0;
  *u1 = memchr(*dir, '_', *dlen);
  *u2 = NULL;
  for (const char *p = *dir + *dlen; p > *dir; p--)
    if (p[-1] == '_') { *u2 = p - 1; break; }
  return *u1 && *u2 && *u2 > *u1;
}

int sw_labels_cri_ids(const char *path, char **uid, char **container) {
  const char *dir, *ctr, *u1, *u2;
  size_t dlen, clen;
  *uid = *container = NULL;
  if (!cri_parts(path, &dir, &dlen, &u1, &u2, &ctr, &clen)) return -1;
  *uid = strndup(u2 + 1, (size_t)(dir + dlen - u2 - 1));
  *container = strndup(ctr, clen);
  if (*uid && *container) return 0;
  free(*uid);
  free(*container);
  *uid = *container = NULL;
  return -1;
}

static int cri_labels(struct set *b, const char *path) {
  const char *dir, *ctr, *u1, *u2;
  size_t dlen, clen;
  if (!cri_parts(path, &dir, &dlen, &u1, &u2, &ctr, &clen)) return 0;
  int rc = put(b, "namespace", dir, (size_t)(u1 - dir));
  if (!rc) rc = put(b, "pod", u1 + 1, (size_t)(u2 - u1 - 1));
  if (!rc) rc = put(b, "pod_uid", u2 + 1, (size_t)(dir + dlen - u2 - 1));
  if (!rc) rc = put(b, "container", ctr, clen);
  return rc;
}

char *sw_labels_build(const struct sw_source_conf *src, const char *host, const char *path,
                      const char *container_name, const struct sw_kv *extra, size_t nextra,
                      struct sw_redact_ctx *rctx) {
  struct set b = {.rctx = rctx};
  sw_buf_init(&b.b, 1 << 20);
  int rc = sw_buf_putc(&b.b, '{');
  if (!rc) rc = put(&b, "host", host, strlen(host));
  if (!rc) rc = put(&b, "source", src->name, strlen(src->name));
  if (!rc && src->type == SW_SOURCE_DOCKER) {
    const char *id;
    size_t idlen;
    if (component(path, 1, &id, &idlen)) rc = put(&b, "container_id", id, idlen);
    if (!rc && container_name) rc = put(&b, "container_name", container_name, strlen(container_name));
  } else if (!rc && src->type == SW_SOURCE_CRI) {
    rc = cri_labels(&b, path);
  } else if (!rc && src->type == SW_SOURCE_FILE) { /* journald: its labels come as extra */
    rc = put(&b, "filename", path, strlen(path));
  }
  for (size_t i = 0; !rc && i < nextra; i++)
    rc = put(&b, extra[i].key, extra[i].value, strlen(extra[i].value));
  for (size_t i = 0; !rc && i < src->nlabels; i++)
    rc = put(&b, src->labels[i].key, src->labels[i].value, strlen(src->labels[i].value));
  if (!rc) rc = sw_buf_append(&b.b, "}", 2); /* with the NUL */
  if (rc) {
    sw_buf_free(&b.b);
    return NULL;
  }
  return b.b.data;
}

char *sw_labels_redact_dup(struct sw_redact_ctx *rctx, const char *s) {
  const char *out = s;
  size_t n = strlen(s);
  if (rctx) (void)sw_redact_line(rctx, s, n, 0, &out, &n); /* on ENOMEM: the marker, never s */
  char *copy = malloc(n + 1);
  if (!copy) return NULL;
  memcpy(copy, out, n);
  copy[n] = '\0';
  return copy;
}

char *sw_labels_docker_name(const char *json, size_t len) {
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (!root) return NULL;
  char *out = NULL;
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "Name");
  if (cJSON_IsString(name) && name->valuestring[0]) {
    const char *v = name->valuestring;
    out = strdup(v[0] == '/' ? v + 1 : v);
  }
  cJSON_Delete(root);
  return out;
}
