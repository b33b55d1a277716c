/* `coap shell [URI]`: an interactive session on one struct cli_session.
 *
 * The shell reads lines with libedit (line editing, history kept in
 * $COAP_HISTORY or ~/.coap_history, completion of commands, options and
 * the paths discovery found) in readline's callback mode, beside the
 * library's event loop, so that notifications of an observation are
 * printed while the prompt stays usable.
 */
#ifndef COAP_CLI_SHELL_H
#define COAP_CLI_SHELL_H

#include "commands.h"

/* Runs the shell until `quit` or end of input. o is the command line
 * (its URI, if any, is the server to start with; its transmission
 * parameters are the shell's first ones). Returns the exit status: 0, or
 * 2 when the URI is not usable. */
int cli_shell(struct cli_session *s, const struct cli_opts *o);

#endif
