/* Unit tests for parsers/multiline.c. Each case is a log text and the records it must become:
 * a small grouping loop here applies the verdicts as agent/tail/ingest.c does (tentative blank
 * lines included), so a case reads as input -> records. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/multiline.h"

#define MAXREC 32

struct out {
  char rec[MAXREC][2048];
  int n;
};

static void put(struct out *o, const char *s, size_t n) {
  assert_true(o->n < MAXREC && n < 2048);
  memcpy(o->rec[o->n], s, n);
  o->rec[o->n][n] = '\0';
  o->n++;
}

/* Splits text into lines and groups them by the preset's verdicts. */
static void group(enum sw_ml_preset p, const char *text, struct out *o) {
  struct sw_ml_state st = {0};
  char g[4096];
  size_t glen = 0, tent_from = 0;
  int pending = 0, tent = 0;
  memset(o, 0, sizeof *o);
#define FINISH()                                                                   \
  do {                                                                             \
    if (pending) {                                                                 \
      if (tent) {                                                                  \
        put(o, g, tent_from);                                                      \
        for (size_t i = tent_from; i < glen;) {                                    \
          size_t j = i + 1;                                                        \
          while (j < glen && g[j] != '\n') j++;                                    \
          put(o, g + i + 1, j - i - 1);                                            \
          i = j;                                                                   \
        }                                                                          \
      } else {                                                                     \
        put(o, g, glen);                                                           \
      }                                                                            \
    }                                                                              \
    pending = tent = 0;                                                            \
    glen = 0;                                                                      \
  } while (0)
  for (const char *s = text; *s;) {
    const char *nl = strchr(s, '\n');
    size_t n = nl ? (size_t)(nl - s) : strlen(s);
    enum sw_ml_verdict v = sw_ml_classify(p, &st, pending, s, n);
    if (v == SW_ML_SINGLE || v == SW_ML_START) {
      struct sw_ml_state keep = st;
      FINISH();
      st = keep;
      if (v == SW_ML_SINGLE) {
        put(o, s, n);
      } else {
        memcpy(g, s, n);
        glen = n;
        pending = 1;
      }
    } else {
      if (v == SW_ML_MAYBE && !tent) tent_from = glen;
      tent = v == SW_ML_MAYBE ? tent + 1 : 0;
      g[glen++] = '\n';
      memcpy(g + glen, s, n);
      glen += n;
    }
    s = nl ? nl + 1 : s + n;
  }
  FINISH();
#undef FINISH
}

static void expect(enum sw_ml_preset p, const char *text, int n, ...) {
  struct out o;
  group(p, text, &o);
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n && i < o.n; i++) {
    const char *want = va_arg(ap, const char *);
    if (strcmp(o.rec[i], want)) fail_msg("record %d:\n[%s]\nwant\n[%s]", i, o.rec[i], want);
  }
  va_end(ap);
  if (o.n != n) {
    for (int i = 0; i < o.n; i++) fprintf(stderr, "got %d: [%s]\n", i, o.rec[i]);
    fail_msg("%d records, want %d", o.n, n);
  }
}

#define JTRACE                                                                 \
  "java.lang.IllegalStateException: boom\n"                                    \
  "\tat com.example.Svc.run(Svc.java:42)\n"                                    \
  "\tat java.base/java.lang.Thread.run(Thread.java:833)\n"                     \
  "Caused by: java.io.IOException: disk\n"                                     \
  "\tat com.example.Io.read(Io.java:7)\n"                                      \
  "\t... 1 more"

static void test_java(void **state) {
  (void)state;
  expect(SW_ML_JAVA,
         "2024-05-01 INFO start\n" JTRACE "\n2024-05-01 INFO next\n"
         "WARN retrying after Error: connection reset\n2024-05-01 INFO after\n",
         5, "2024-05-01 INFO start", JTRACE, "2024-05-01 INFO next",
         "WARN retrying after Error: connection reset", "2024-05-01 INFO after");
  /* a frame without its exception line is a record of its own */
  expect(SW_ML_JAVA, "\tat a.B.c(B.java:1)\nplain\n", 2, "\tat a.B.c(B.java:1)", "plain");
  expect(SW_ML_JAVA, "Exception in thread \"main\" java.lang.Error\n\tat M.main(M.java:3)\n", 1,
         "Exception in thread \"main\" java.lang.Error\n\tat M.main(M.java:3)");
}

#define PYTRACE                                                                \
  "Traceback (most recent call last):\n"                                       \
  "  File \"a.py\", line 3, in <module>\n"                                     \
  "    1/0\n"                                                                  \
  "    ~^~\n"                                                                  \
  "ZeroDivisionError: division by zero"

static void test_python(void **state) {
  (void)state;
  expect(SW_ML_PYTHON, "INFO:root:start\n" PYTRACE "\nINFO:root:after\n", 3, "INFO:root:start",
         PYTRACE, "INFO:root:after");
  /* chained: blank lines inside the trace join */
  const char *chained = PYTRACE "\n\nDuring handling of the above exception, another exception "
                                "occurred:\n\n" PYTRACE;
  char in[4096];
  snprintf(in, sizeof in, "%s\nnext\n", chained);
  expect(SW_ML_PYTHON, in, 2, chained, "next");
  /* blank lines after a trace that ends are records of their own */
  expect(SW_ML_PYTHON, PYTRACE "\n\n\nnext\n", 4, PYTRACE, "", "", "next");
  expect(SW_ML_PYTHON, PYTRACE "\n\n", 2, PYTRACE, "");
}

#define GOTRACE                                                                \
  "panic: runtime error: index out of range [5] with length 3\n"               \
  "\n"                                                                         \
  "goroutine 1 [running]:\n"                                                   \
  "main.main()\n"                                                              \
  "\t/tmp/sandbox/prog.go:8 +0x1d\n"                                           \
  "\n"                                                                         \
  "goroutine 6 [chan receive]:\n"                                              \
  "main.(*T).wait(0xc000010000, {0x4b?, 0x3})\n"                               \
  "\t/tmp/sandbox/prog.go:20 +0x25\n"                                          \
  "created by main.main in goroutine 1\n"                                      \
  "\t/tmp/sandbox/prog.go:6 +0x1e"

static void test_go(void **state) {
  (void)state;
  expect(SW_ML_GO, "2024/05/01 12:00:00 serving\n" GOTRACE "\nexit status 2\n", 3,
         "2024/05/01 12:00:00 serving", GOTRACE, "exit status 2");
  expect(SW_ML_GO, GOTRACE "\n\nlater\n", 3, GOTRACE, "", "later");
}

#define RBTRACE                                                                \
  "app.rb:3:in `divide': divided by 0 (ZeroDivisionError)\n"                   \
  "\tfrom app.rb:3:in `call'\n"                                                \
  "\tfrom app.rb:7:in `<main>'\n"                                              \
  "app.rb:2:in 'inner': bad (ArgumentError)\n"                                 \
  "\tfrom app.rb:7:in '<main>'"

static void test_ruby(void **state) {
  (void)state;
  expect(SW_ML_RUBY, "I, [2024-05-01] INFO -- : start\n" RBTRACE "\nI, [2024-05-01] INFO -- : after\n",
         3, "I, [2024-05-01] INFO -- : start", RBTRACE, "I, [2024-05-01] INFO -- : after");
  expect(SW_ML_RUBY,
         "ActionView::Template::Error (undefined method `x' for nil):\n"
         "  app/views/a.html.erb:3:in `_app_views'\nStarted GET \"/\"\n",
         2, "ActionView::Template::Error (undefined method `x' for nil):\n"
            "  app/views/a.html.erb:3:in `_app_views'",
         "Started GET \"/\"");
}

#define NETTRACE                                                               \
  "Unhandled exception. System.InvalidOperationException: outer\n"             \
  " ---> System.ArgumentException: inner\n"                                    \
  "   at P.Inner() in /src/P.cs:line 9\n"                                      \
  "   --- End of inner exception stack trace ---\n"                            \
  "   at P.Main(String[] args) in /src/P.cs:line 3"

static void test_dotnet(void **state) {
  (void)state;
  expect(SW_ML_DOTNET,
         "info: Microsoft.Hosting.Lifetime[0]\n      Now listening on: http://[::]:80\n" NETTRACE
         "\nplain line\n",
         3, "info: Microsoft.Hosting.Lifetime[0]\n      Now listening on: http://[::]:80", NETTRACE,
         "plain line");
}

static void test_crlf_and_none(void **state) {
  (void)state;
  expect(SW_ML_JAVA, "x.YException: z\r\n\tat a.B(B.java:1)\r\nok\r\n", 2,
         "x.YException: z\r\n\tat a.B(B.java:1)\r",
         "ok\r");
  expect(SW_ML_NONE, "x.Y: z\n\tat a.B(B.java:1)\n", 2, "x.Y: z", "\tat a.B(B.java:1)");
  assert_int_equal(sw_ml_preset_parse("go", 2), SW_ML_GO);
  assert_int_equal(sw_ml_preset_parse("gox", 3), SW_ML_NONE);
  assert_string_equal(sw_ml_preset_name(SW_ML_DOTNET), "dotnet");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_java),   cmocka_unit_test(test_python),
      cmocka_unit_test(test_go),     cmocka_unit_test(test_ruby),
      cmocka_unit_test(test_dotnet), cmocka_unit_test(test_crlf_and_none),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
