#include "error.h"

const char *sw_strerror(int err) {
  switch (err) {
  case SW_OK: return "success";
#define SW__ERR_CASE(name, msg) case SW_E##name: return msg;
  SW_ERRNO_MAP(SW__ERR_CASE)
#undef SW__ERR_CASE
  default: return "unknown error";
  }
}
