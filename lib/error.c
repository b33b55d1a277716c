/* Error strings for the codes of coapkit/error.h, generated from the same
 * X-macro table as the enum so the two can never disagree. */
#include "coapkit/error.h"

const char *ck_strerror(int err)
{
  switch (err) {
  case CK_OK:
    return "success";
#define CK__ERR_STR(name, value, msg) \
  case CK_##name:                     \
    return msg;
    CK_ERRNO_MAP(CK__ERR_STR)
#undef CK__ERR_STR
  }
  return "unknown error";
}

const char *ck_err_name(int err)
{
  switch (err) {
  case CK_OK:
    return "OK";
#define CK__ERR_NAME(name, value, msg) \
  case CK_##name:                      \
    return #name;
    CK_ERRNO_MAP(CK__ERR_NAME)
#undef CK__ERR_NAME
  }
  return "UNKNOWN";
}
