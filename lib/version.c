/* The loaded library's version (version.h), so that a program can tell
 * it from the version of the headers it was built with. */
#include "coapkit/version.h"

unsigned ck_version(void)
{
  return CK_VERSION;
}

const char *ck_version_string(void)
{
  return CK_VERSION_STRING;
}
