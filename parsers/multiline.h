/* multiline.h - stack-trace presets: which lines of a runtime's trace belong to the record
 * before them.
 *
 * A preset classifies each logical line (docker/CRI partials already joined) given a small
 * state that describes the group being assembled. Ordinary lines are records of their own and
 * are never held: only a line that can begin a trace (a Java/.NET exception line, a Python
 * "Traceback", a Go "panic:", a Ruby "file.rb:1:in `m'") is held until the next line tells
 * whether frames follow. Blank lines inside Python and Go traces are ambiguous (they also end a
 * trace): they are held tentatively (SW_ML_MAYBE) and join only if the trace goes on after them.
 *
 * Pure: no I/O, no allocation; the verdict depends only on the lines of the current group, so
 * replaying a group's bytes after a restart rebuilds the same state.
 */
#ifndef SW_MULTILINE_H
#define SW_MULTILINE_H

#include <stddef.h>
#include <stdint.h>

enum sw_ml_preset {
  SW_ML_NONE = 0,
  SW_ML_JAVA,
  SW_ML_PYTHON,
  SW_ML_GO,
  SW_ML_RUBY,
  SW_ML_DOTNET,
  SW_ML_NPRESETS
};

enum sw_ml_verdict {
  SW_ML_SINGLE = 0, /* a record of its own: what is pending is finished first */
  SW_ML_START,      /* begins a group: what is pending is finished first, this line is held */
  SW_ML_JOIN,       /* continues the pending group */
  SW_ML_MAYBE       /* a blank line: joins only if a later line continues the group */
};

/* The group being assembled; zero = nothing pending. */
struct sw_ml_state {
  uint8_t phase;
};

/* "java" | "python" | "go" | "ruby" | "dotnet" -> preset; SW_ML_NONE for anything else. */
enum sw_ml_preset sw_ml_preset_parse(const char *name, size_t len);
const char *sw_ml_preset_name(enum sw_ml_preset p);

/* Classifies line s[0..n) and moves st on. `pending`: a group is held (when 0, JOIN and MAYBE
 * are never returned: a continuation without its start is a record of its own). */
enum sw_ml_verdict sw_ml_classify(enum sw_ml_preset p, struct sw_ml_state *st, int pending,
                                  const char *s, size_t n);

#endif
