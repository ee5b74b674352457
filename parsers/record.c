#include "record.h"

const char *sw_stream_name(int stream) {
  switch (stream) {
  case SW_STREAM_STDERR: return "stderr";
  case SW_STREAM_FILE: return "file";
  /* Unknown values come from corrupt or future buffer records; "stdout" keeps outputs valid. */
  default: return "stdout";
  }
}
