/* Running coap's commands. A session holds what outlives one command (the
 * context, the client with its transmission parameters, the output
 * state), so that the shell can run many commands in one; `coap COMMAND`
 * opens a session, runs one command and closes it.
 *
 * cli_exec() returns the exit status: 0 for a 2.xx answer, 1 for 4.xx or
 * 5.xx, 2 for a usage error, 3 for a transport failure, 130 when a
 * request (not an observation, which Ctrl-C ends normally) was
 * interrupted.
 */
#ifndef COAP_CLI_COMMANDS_H
#define COAP_CLI_COMMANDS_H

#include <signal.h>

#include <coapkit/coapkit.h>

#include "opts.h"
#include "output.h"
#include "progress.h"

enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_ERROR_CODE = 1,
  CLI_EXIT_USAGE = 2,
  CLI_EXIT_TRANSPORT = 3,
  CLI_EXIT_INTERRUPTED = 130
};

struct cli_session {
  struct ck_ctx *ctx;
  struct ck_client *client;
  struct cli_out out;
  struct cli_progress progress;
  /* Raised by the SIGINT handler, which also writes to the context's
   * stop descriptor so that a waiting loop wakes up. */
  volatile sig_atomic_t *interrupted;
  /* Before each message about a command: "coap: ", or "" in the shell,
   * whose messages need no program name. */
  const char *tag;
  /* DTLS credentials of the options, for coaps:// (the library copies
   * them when a client is made). */
  struct ck_dtls_config dtls;
  uint8_t psk[64];
};

/* Opens a session with the transmission parameters of o. Returns 0, or
 * prints one line and returns an exit status. */
int cli_session_open(struct cli_session *s, const struct cli_opts *o,
                     volatile sig_atomic_t *interrupted);

/* Replaces the session's client by one with the transmission parameters
 * of o (the shell's `set`); calls in flight are cancelled. Returns 0 or
 * an error, and then the session has no client. */
int cli_session_reconfigure(struct cli_session *s, const struct cli_opts *o);

/* Creates a client on the session's context with the transmission
 * parameters of o (and the session's trace hook), for one request or one
 * observation: the library's parameters belong to a client, so a request
 * with parameters of its own needs a client of its own. Returns 0 and
 * stores it in *out (the caller frees it with ck_client_free()), or a
 * negative CK_E... code. */
int cli_client_new(struct cli_session *s, const struct cli_opts *o,
                   struct ck_client **out);

void cli_session_close(struct cli_session *s);

/* Copies o's request settings (type, options, formats, token, block
 * size) into req; method, URI and payload are the caller's. */
void cli_request_options(const struct cli_opts *o,
                         struct ck_client_request *req);

/* Runs the command o names (which cli_check() accepted) and returns the
 * exit status. */
int cli_exec(struct cli_session *s, const struct cli_opts *o);

/* Runs o like cli_exec(), but on a client of its own made with o's
 * transmission parameters, freed before returning; the session's client
 * is left as it was. Returns the exit status. */
int cli_exec_own(struct cli_session *s, const struct cli_opts *o);

#endif
