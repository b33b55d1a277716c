/* libFuzzer target for the command line of `coap` (cli/opts.c): the
 * parser that the tool and its shell run on every line before any
 * request is made.
 *
 * The input is split at its NUL bytes into arguments (up to 64, after
 * "coap"), parsed with cli_parse() and, when that succeeds, checked with
 * cli_check(). Neither may crash or read past an argument, and what they
 * leave stays within the struct's caps: at most CLI_MAX_OPTS options
 * whose values lie in the arena, a token of at most CK_TOKEN_MAX bytes,
 * an error line that is one NUL-terminated string. The file also builds
 * with gcc, linked with replay_main.c, to replay the corpus under CTest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_ARGS = 64, MAX_INPUT = 1 << 16 };

static void check(bool ok)
{
  if (!ok)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct cli_opts o; /* large: not on the stack */
  if (size > MAX_INPUT)
    return 0;
  /* Each argument in its own exact-size allocation, so that ASan sees a
   * read past its NUL. */
  char *argv[MAX_ARGS + 2];
  int argc = 0;
  argv[argc++] = "coap";
  for (size_t off = 0; off <= size && argc < MAX_ARGS + 1;) {
    const uint8_t *nul = memchr(data + off, 0, size - off);
    size_t n = nul ? (size_t)(nul - (data + off)) : size - off;
    char *a = malloc(n + 1);
    check(a != NULL);
    memcpy(a, data + off, n);
    a[n] = '\0';
    argv[argc++] = a;
    off += n + 1;
  }
  argv[argc] = NULL;
  char err[512];
  memset(err, 'x', sizeof err);
  cli_opts_init(&o);
  int rc = cli_parse(&o, argc, argv, 1, err, sizeof err);
  check(rc == 0 || rc == -1);
  if (rc == 0) {
    memset(err, 'x', sizeof err);
    rc = cli_check(&o, err, sizeof err);
    check(rc == 0 || rc == -1);
  }
  if (rc < 0)
    check(memchr(err, '\0', sizeof err) != NULL);
  check(o.nopts <= CLI_MAX_OPTS);
  check(o.arena_used <= CLI_OPT_ARENA);
  check(o.token_len <= CK_TOKEN_MAX);
  for (size_t i = 0; i < o.nopts; i++) {
    const uint8_t *v = o.opts[i].val;
    check(o.opts[i].len == 0 ||
          (v >= o.arena && v + o.opts[i].len <= o.arena + o.arena_used));
  }
  for (int i = 1; i < argc; i++)
    free(argv[i]);
  return 0;
}
