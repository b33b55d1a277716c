/* coap: a command-line CoAP client, in the spirit of curl.
 *
 * main() reads the command line (opts.c), answers --help, --version and
 * --man (help.c), and otherwise opens a session, runs the one command
 * (commands.c) and exits with its status. Like curl on libcurl, coap
 * uses libcoapkit through its public header only.
 *
 * SIGINT and SIGTERM only raise a counter and wake the event loop
 * through the context's stop descriptor: the loop then decides what an
 * interruption means (an observation is cancelled on the server first).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <coapkit/coapkit.h>

#include "commands.h"
#include "help.h"
#include "opts.h"

static volatile sig_atomic_t interrupted;
static volatile int wake_fd = -1;

static void on_signal(int sig)
{
  (void)sig;
  interrupted++;
  if (wake_fd >= 0) {
    char b = 1;
    ssize_t n = write(wake_fd, &b, 1);
    (void)n;
  }
}

static void catch_signals(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

int main(int argc, char **argv)
{
  static struct cli_opts o; /* large: not on the stack */
  char err[512];
  cli_opts_init(&o);
  if (cli_parse(&o, argc, argv, 1, err, sizeof err) < 0 ||
      cli_check(&o, err, sizeof err) < 0) {
    fprintf(stderr, "coap: %s\n", err);
    return CLI_EXIT_USAGE;
  }
  if (o.man) {
    cli_man(stdout, COAP_VERSION);
    return 0;
  }
  if (o.help) {
    if (o.cmd)
      cli_help_cmd(stdout, o.cmd);
    else
      cli_help(stdout);
    return 0;
  }
  if (o.version) {
    printf("coap %s (libcoapkit)\n", COAP_VERSION);
    return 0;
  }
  struct cli_session s;
  int status = cli_session_open(&s, &o, &interrupted);
  if (status)
    return status;
  wake_fd = ck_stop_fd(s.ctx);
  catch_signals();
  status = cli_exec(&s, &o);
  wake_fd = -1;
  cli_session_close(&s);
  return status;
}
