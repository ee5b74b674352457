/* cri.c - Kubernetes CRI log lines: "<RFC3339Nano> <stdout|stderr> <P|F>[:tags] <content>".
 *
 * The format (kubelet's pkg/kubelet/kuberuntime/logs) separates the three header fields with
 * exactly one space; content is verbatim and may itself start with spaces, so we never
 * collapse runs of spaces. A line that ends right after the tag field carries empty content
 * (runtimes write "... stdout F" for an empty line).
 */
#include "cri.h"

#include <string.h>

#include "../common/timefmt.h"
#include "record.h"

int sw_cri_parse(const char *line, size_t len, struct sw_cri_line *res) {
  if (line == NULL || res == NULL)
    return SW_EINVAL;
  const char *end = line + len;

  /* Field 1: timestamp, up to the first space. */
  const char *sp = memchr(line, ' ', len);
  if (sp == NULL || sw_time_parse_rfc3339(line, (size_t)(sp - line), &res->ts_ns) != 0)
    return SW_EPARSE;
  const char *p = sp + 1;

  /* Field 2: stream, exactly "stdout " or "stderr ". */
  if (end - p < 7 || p[6] != ' ')
    return SW_EPARSE;
  if (memcmp(p, "stdout", 6) == 0)
    res->stream = SW_STREAM_STDOUT;
  else if (memcmp(p, "stderr", 6) == 0)
    res->stream = SW_STREAM_STDERR;
  else
    return SW_EPARSE;
  p += 7;

  /* Field 3: tag "P" or "F", optionally followed by ":<more tags>" up to the next space. */
  if (p >= end || (*p != 'P' && *p != 'F'))
    return SW_EPARSE;
  res->partial = *p == 'P';
  p++;
  if (p < end && *p == ':') {
    sp = memchr(p, ' ', (size_t)(end - p));
    p = sp != NULL ? sp : end;
  }
  if (p < end && *p != ' ')
    return SW_EPARSE; /* e.g. "FX": an unknown tag, not "F" */

  /* Content: everything after the single space, or empty if the line ends here. */
  res->content = p < end ? p + 1 : end;
  res->content_len = (size_t)(end - res->content);
  return 0;
}
