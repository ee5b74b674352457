/* multiline.c - see multiline.h. Byte tests, no regex: the classifier runs on every line of a
 * source that uses a preset, and an ordinary line must cost a few comparisons. */
#include "multiline.h"

#include <string.h>

/* Phases per preset (0 = nothing pending). */
enum { P_TRACE = 1 };                             /* java, ruby, dotnet */
enum { PY_TB = 1, PY_EXC = 2, PY_CHAIN = 3, PY_GROUP = 4, PY_EXC_MORE = 5 }; /* python */
enum { GO_PANIC = 1, GO_STACKS = 2 };             /* go */
enum { NET_TRACE = 1, NET_LOGGER = 2 };           /* dotnet */

static const char *const names[SW_ML_NPRESETS] = {"", "java", "python", "go", "ruby", "dotnet"};

enum sw_ml_preset sw_ml_preset_parse(const char *name, size_t len) {
  for (int i = 1; i < SW_ML_NPRESETS; i++)
    if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) return (enum sw_ml_preset)i;
  return SW_ML_NONE;
}

const char *sw_ml_preset_name(enum sw_ml_preset p) {
  return p > SW_ML_NONE && p < SW_ML_NPRESETS ? names[p] : "";
}

/* ---- byte helpers ---- */

static size_t lead_ws(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  return i;
}

static int pre(const char *s, size_t n, const char *lit) {
  size_t l = strlen(lit);
  return n >= l && memcmp(s, lit, l) == 0;
}

static const char *find(const char *s, size_t n, const char *lit) {
  size_t l = strlen(lit);
  if (l == 0 || n < l) return NULL;
  for (const char *p = s, *end = s + n - l + 1; p < end; p++) {
    p = memchr(p, lit[0], (size_t)(end - p));
    if (!p) return NULL;
    if (memcmp(p, lit, l) == 0) return p;
  }
  return NULL;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static int is_word(char c) {
  return is_digit(c) || is_upper(c) || (c >= 'a' && c <= 'z') || c == '_';
}

/* "Exception" (and for Java "Error", "Throwable") ending right before at. The last byte
 * rejects almost every colon at once (JSON's '"', a time's digit). */
static int exc_word_before(const char *s, const char *at, int java) {
  size_t room = (size_t)(at - s);
  switch (room ? at[-1] : 0) {
  case 'n': return room >= 9 && memcmp(at - 9, "Exception", 9) == 0;
  case 'r': return java && room >= 5 && memcmp(at - 5, "Error", 5) == 0;
  case 'e': return java && room >= 9 && memcmp(at - 9, "Throwable", 9) == 0;
  default: return 0;
  }
}

/* An exception word directly followed by ':' or the end of the line: "java.io.IOException: x",
 * "Exception in thread "main" java.lang.Error", a bare "java.lang.NullPointerException".
 * One memchr pass over the colons (this runs on every line). */
static int word_then_colon(const char *s, size_t n, int java) {
  const char *end = s + n;
  for (const char *p = memchr(s, ':', n); p; p = p + 1 < end ? memchr(p + 1, ':', (size_t)(end - p - 1)) : NULL)
    if (exc_word_before(s, p, java)) return 1;
  return exc_word_before(s, end, java);
}

/* "... 12 more", "... 3 common frames omitted" (Java). */
static int elided(const char *t, size_t m) {
  if (!pre(t, m, "... ") || m < 5 || !is_digit(t[4])) return 0;
  return find(t, m, " more") || find(t, m, " omitted");
}

/* ---- java ---- */

static int java_start(const char *s, size_t n) { return word_then_colon(s, n, 1); }

/* Frames ("\tat ..."), "... 3 more", causes, and any other indented line: the rest of an
 * exception message that spans lines ("Caused by: x.Y: a\n dx exception: b"). */
static int java_cont(const char *s, size_t n) {
  size_t w = lead_ws(s, n);
  const char *t = s + w;
  size_t m = n - w;
  if (w > 0) return 1;
  return elided(t, m) || pre(t, m, "Caused by: ") || pre(t, m, "Suppressed: ") ||
         pre(t, m, "Wrapped by: ") || pre(t, m, "nested exception is");
}

/* ---- python ---- */

/* "Traceback (most recent call last):", or an exception group's "+ Exception Group Traceback"
 * (returns 2), indented or not. */
static int py_header(const char *s, size_t n) {
  size_t w = lead_ws(s, n);
  const char *t = s + w;
  size_t m = n - w;
  int group = 0;
  if (pre(t, m, "+ ")) t += 2, m -= 2;
  if (pre(t, m, "Exception Group ")) t += 16, m -= 16, group = 1;
  return pre(t, m, "Traceback (most recent call last):") ? 1 + group : 0;
}

static enum sw_ml_verdict py_cont(struct sw_ml_state *st, const char *s, size_t n, int blank) {
  size_t w = lead_ws(s, n);
  switch (st->phase) {
  case PY_TB:
    if (blank) return SW_ML_MAYBE;
    if (w == 0 && !py_header(s, n)) /* the exception line ends the frames */
      st->phase = n && s[n - 1] == ':' ? PY_EXC_MORE : PY_EXC;
    return SW_ML_JOIN;
  case PY_GROUP: /* an exception group is drawn indented, "|" and "+---" included */
    if (blank) return SW_ML_MAYBE;
    return w > 0 ? SW_ML_JOIN : SW_ML_SINGLE;
  case PY_EXC_MORE: /* "...because of exception being raised:" goes on on the next line */
    if (!blank && w == 0) {
      st->phase = n && s[n - 1] == ':' ? PY_EXC_MORE : PY_EXC;
      return SW_ML_JOIN;
    }
    /* fall through */
  case PY_EXC:
    if (blank) return SW_ML_MAYBE;
    if (pre(s, n, "During handling of the above exception, another exception occurred:") ||
        pre(s, n, "The above exception was the direct cause of the following exception:")) {
      st->phase = PY_CHAIN;
      return SW_ML_JOIN;
    }
    return w > 0 ? SW_ML_JOIN : SW_ML_SINGLE; /* an indented detail of the exception */
  case PY_CHAIN:
    if (blank) return SW_ML_JOIN;
    if (py_header(s, n)) {
      st->phase = py_header(s, n) == 2 ? PY_GROUP : PY_TB;
      return SW_ML_JOIN;
    }
    return SW_ML_SINGLE;
  }
  return SW_ML_SINGLE;
}

/* ---- go ---- */

/* A frame's function line: "main.main()", "main.(*T).m(0xc000010000, {0x4b?, 0x3})". */
static int go_func(const char *s, size_t n) {
  if (n < 3 || s[n - 1] != ')') return 0;
  const char *paren = memchr(s, '(', n);
  if (!paren || paren == s) return 0;
  for (const char *p = s; p < paren; p++)
    if (*p == ' ' || *p == '\t') return 0;
  return 1;
}

static enum sw_ml_verdict go_cont(struct sw_ml_state *st, const char *s, size_t n, int blank) {
  if (blank) return SW_ML_MAYBE;
  if (pre(s, n, "goroutine ") || pre(s, n, "runtime stack:")) {
    st->phase = GO_STACKS;
    return SW_ML_JOIN;
  }
  if (lead_ws(s, n) > 0) return SW_ML_JOIN;
  if (st->phase == GO_PANIC)
    return pre(s, n, "[signal ") || pre(s, n, "panic: ") ? SW_ML_JOIN : SW_ML_SINGLE;
  return pre(s, n, "created by ") || pre(s, n, "...additional frames elided...") || go_func(s, n)
             ? SW_ML_JOIN
             : SW_ML_SINGLE;
}

/* ---- ruby ---- */

/* "app.rb:12:in `m'" / "app.rb:12:in 'm'" (Ruby 3.4 quotes): the ":in " after a line number. */
static int rb_frame(const char *s, size_t n) {
  const char *end = s + n;
  for (const char *p = memchr(s, ':', n); p && end - p >= 5; p = memchr(p + 1, ':', (size_t)(end - p - 1)))
    if (p > s && is_digit(p[-1]) && p[1] == 'i' && p[2] == 'n' && p[3] == ' ' && (p[4] == '`' || p[4] == '\''))
      return 1;
  return 0;
}

/* Rails: "ActionView::Template::Error (undefined method `x' for nil):" */
static int rb_rails_header(const char *s, size_t n) {
  size_t i = 0;
  if (n < 6 || !is_upper(s[0]) || s[n - 1] != ':' || s[n - 2] != ')') return 0;
  while (i < n && (is_word(s[i]) || s[i] == ':')) i++;
  return i + 1 < n && s[i] == ' ' && s[i + 1] == '(';
}

static enum sw_ml_verdict rb_cont(const char *s, size_t n, int blank) {
  if (blank) return SW_ML_MAYBE;
  /* Indented: "\tfrom" frames (and Ruby 2.5-2.7's reversed "\t2: from"), Rails' "  app/x.rb:5:in"
   * frames and template excerpts. Not indented: a cause's header ("a.rb:2:in `m': inner
   * (ArgumentError)"), which Ruby prints without a separator. */
  return lead_ws(s, n) > 0 || rb_frame(s, n) ? SW_ML_JOIN : SW_ML_SINGLE;
}

/* ---- dotnet ---- */

static int net_logger_header(const char *s, size_t n) {
  static const char lv[][5] = {"trce", "dbug", "info", "warn", "fail", "crit"};
  if (n < 6 || s[4] != ':' || s[5] != ' ') return 0;
  for (size_t i = 0; i < sizeof lv / sizeof *lv; i++)
    if (memcmp(s, lv[i], 4) == 0) return 1;
  return 0;
}

static enum sw_ml_verdict net_cont(struct sw_ml_state *st, const char *s, size_t n) {
  size_t w = lead_ws(s, n);
  const char *t = s + w;
  size_t m = n - w;
  if (st->phase == NET_LOGGER) return w >= 2 ? SW_ML_JOIN : SW_ML_SINGLE; /* the entry's body */
  if (w > 0 || pre(t, m, "--- End of ")) return SW_ML_JOIN; /* frames, " ---> inner", messages */
  return SW_ML_SINGLE;
}

/* ---- dispatch ---- */

static enum sw_ml_verdict cont(enum sw_ml_preset p, struct sw_ml_state *st, const char *s, size_t n,
                               int blank) {
  switch (p) {
  case SW_ML_JAVA: return !blank && java_cont(s, n) ? SW_ML_JOIN : SW_ML_SINGLE;
  case SW_ML_PYTHON: return py_cont(st, s, n, blank);
  case SW_ML_GO: return go_cont(st, s, n, blank);
  case SW_ML_RUBY: return rb_cont(s, n, blank);
  case SW_ML_DOTNET: return blank ? SW_ML_SINGLE : net_cont(st, s, n);
  default: return SW_ML_SINGLE;
  }
}

/* The phase a line opens, 0 when it cannot begin a trace. */
static uint8_t start(enum sw_ml_preset p, const char *s, size_t n) {
  switch (p) {
  case SW_ML_JAVA: return java_start(s, n) ? P_TRACE : 0;
  case SW_ML_PYTHON: return py_header(s, n) == 2 ? PY_GROUP : py_header(s, n) ? PY_TB : 0;
  case SW_ML_GO: return pre(s, n, "panic: ") || pre(s, n, "fatal error: ") ? GO_PANIC : 0;
  case SW_ML_RUBY:
    return lead_ws(s, n) == 0 && (rb_frame(s, n) || rb_rails_header(s, n) ||
                                  pre(s, n, "Traceback (most recent call last):"))
               ? P_TRACE
               : 0;
  case SW_ML_DOTNET:
    if (net_logger_header(s, n)) return NET_LOGGER;
    return pre(s, n, "Unhandled exception. ") || word_then_colon(s, n, 0) ? NET_TRACE : 0;
  default: return 0;
  }
}

enum sw_ml_verdict sw_ml_classify(enum sw_ml_preset p, struct sw_ml_state *st, int pending,
                                  const char *s, size_t n) {
  if (n > 0 && s[n - 1] == '\r') n--; /* CRLF logs */
  if (!pending) st->phase = 0;
  if (st->phase) {
    int blank = lead_ws(s, n) == n;
    enum sw_ml_verdict v = cont(p, st, s, n, blank);
    if (v != SW_ML_SINGLE) return v;
  }
  st->phase = start(p, s, n);
  return st->phase ? SW_ML_START : SW_ML_SINGLE;
}
