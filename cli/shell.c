/* coap's interactive shell: many commands on one session.
 *
 * One poll() loop watches standard input and the context's descriptor
 * (ck_ctx_fd, with ck_ctx_timeout for its timers). On a terminal, input
 * goes to libedit in readline's callback mode (rl_callback_read_char),
 * which hands over each finished line; elsewhere lines are read as they
 * come, so a script can pipe commands in. Because the loop never blocks
 * in readline, the notifications of an observation are printed while the
 * user types: the line being edited is cleared, the notification written
 * and the prompt redrawn with what was typed.
 *
 * A request (get, put, ..., ping) is parsed by the command line's own
 * parser (opts.c) with the shell's words --payload and --format standing
 * for --data and --content-format, its PATH joined to the current server,
 * and run by cli_exec(), which waits for the answer and shows it framed
 * as CoAP Shell does (cli_out_view). An observation is the shell's own
 * call and lives on until `unobserve`, --count or --duration. `set`
 * takes the transmission rows of the same option table and replaces the
 * session's client. The library's transmission parameters belong to a
 * client, so a request or an observation that gives its own
 * (--max-retransmit 0) runs on a short-lived client made for it.
 *
 * History is kept as plain lines, one command each, in $COAP_HISTORY or
 * ~/.coap_history, appended after each command and cut to HIST_MAX lines
 * when the shell starts.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <editline/readline.h>

#include "pretty.h"
#include "shell.h"

enum {
  BASE_MAX = 512,
  URI_MAX = 1024,
  LINE_MAX_ = 4096,
  MAX_WORDS = 64,
  MAX_PATHS = 256,
  HIST_MAX = 1000,
  CAND_MAX = 128
};

struct shell {
  struct cli_session *s;
  struct cli_opts base_opts; /* the shell's transmission parameters */
  char base[BASE_MAX];       /* "coap://host:port", or "" */
  char prompt[BASE_MAX + 8];
  char *paths[MAX_PATHS]; /* learnt from discovery */
  size_t npaths;
  char hist[1024]; /* the history file's name, or "" */
  bool tty;
  bool at_prompt; /* libedit shows the prompt and the line being edited */
  bool quit;
  /* the observation */
  struct ck_call *obs;
  struct ck_client *obs_client; /* its own, or NULL: the session's */
  char obs_path[URI_MAX];
  bool obs_stopping;
  unsigned obs_count;
  unsigned obs_max;      /* --count; 0: no limit */
  bool obs_json;         /* --json: a JSON object per notification */
  uint64_t obs_deadline; /* --duration, on cli_now_ms()'s clock; 0: none */
  /* completion: the candidates of the word being completed */
  const char *cands[CAND_MAX];
  size_t ncands;
};

static struct shell *sh; /* for libedit's callbacks, which take no user */

static const struct {
  const char *name, *args, *help;
} commands[] = {
    {"connect", "URI", "talk to URI's server from now on; ping it"},
    {"ping", "[PATH]", "send an empty CON: does the server answer?"},
    {"discover", "[?QUERY]", "list the resources (learnt for TAB)"},
    {"get", "PATH [options]", "fetch a resource"},
    {"put", "PATH [--payload P] [--format F]", "create or replace one"},
    {"post", "PATH [--payload P] [--format F]", "send data to one"},
    {"delete", "PATH", "delete one"},
    {"fetch", "PATH [--payload P] [--format F]", "FETCH (RFC 8132)"},
    {"patch", "PATH [--payload P] [--format F]", "PATCH (RFC 8132)"},
    {"ipatch", "PATH [--payload P] [--format F]", "iPATCH (RFC 8132)"},
    {"observe", "PATH [--count N] [--duration S]",
     "follow a resource while you type"},
    {"unobserve", "", "end the observation"},
    {"set", "[OPTION VALUE]", "show or change a transmission parameter"},
    {"help", "", "this list"},
    {"quit", "", "leave (also exit, Ctrl-D)"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* --- output beside the prompt --- */

/* Clears the line being edited before the shell writes something
 * unasked, and redraws it after. */
static void out_begin(void)
{
  if (sh->tty && sh->at_prompt) {
    fputs("\r\033[K", stdout);
    fflush(stdout);
  }
}

static void out_end(void)
{
  fflush(stdout);
  if (sh->tty && sh->at_prompt)
    rl_forced_update_display();
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A message of the shell's own, on standard error. */
static void say(const char *fmt, ...)
{
  va_list ap;
  fflush(stdout);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* Moves to the start of a line for the prompt, below a payload that did
 * not end with a line break: a line's width of blanks moves on to the
 * next line only when the cursor is not at its start. */
static void fresh_line(void)
{
  struct winsize ws;
  int cols =
      ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;
  for (int i = 0; i < cols; i++)
    fputc(' ', stdout);
  fputs("\r\033[K", stdout);
  fflush(stdout);
}

/* A payload on one line. */
static void payload_line(FILE *f, const uint8_t *p, size_t n)
{
  if (cli_is_text(p, n)) {
    while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
      n--;
    cli_text(f, p, n);
  } else {
    for (size_t i = 0; i < n; i++)
      fprintf(f, "%02x", p[i]);
  }
  fputc('\n', f);
}

/* --- history --- */

static void history_open(struct shell *h)
{
  const char *env = getenv("COAP_HISTORY");
  const char *home = getenv("HOME");
  if (env && *env)
    snprintf(h->hist, sizeof h->hist, "%s", env);
  else if (home && *home)
    snprintf(h->hist, sizeof h->hist, "%s/.coap_history", home);
  if (!h->hist[0])
    return;
  FILE *f = fopen(h->hist, "r");
  if (!f)
    return;
  /* Keep the last HIST_MAX lines: a ring of them, then rewrite. */
  static char ring[HIST_MAX][LINE_MAX_];
  size_t n = 0;
  char line[LINE_MAX_];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0])
      snprintf(ring[n++ % HIST_MAX], LINE_MAX_, "%s", line);
  }
  fclose(f);
  size_t first = n > HIST_MAX ? n - HIST_MAX : 0;
  for (size_t i = first; i < n; i++)
    add_history(ring[i % HIST_MAX]);
  if (n > HIST_MAX && (f = fopen(h->hist, "w"))) {
    for (size_t i = first; i < n; i++)
      fprintf(f, "%s\n", ring[i % HIST_MAX]);
    fclose(f);
  }
}

static void history_add(struct shell *h, const char *text)
{
  char line[LINE_MAX_];
  size_t n = strlen(text);
  while (n && (text[n - 1] == ' ' || text[n - 1] == '\t'))
    n--; /* completion leaves a blank after the word */
  snprintf(line, sizeof line, "%.*s", (int)n, text);
  if (h->tty)
    add_history(line);
  if (!h->hist[0])
    return;
  FILE *f = fopen(h->hist, "a");
  if (f) {
    fprintf(f, "%s\n", line);
    fclose(f);
  }
}

/* --- servers and paths --- */

static void set_prompt(struct shell *h)
{
  snprintf(h->prompt, sizeof h->prompt, "%s> ", h->base[0] ? h->base : "coap");
  if (h->tty)
    rl_set_prompt(h->prompt);
}

static void forget_paths(struct shell *h)
{
  for (size_t i = 0; i < h->npaths; i++)
    free(h->paths[i]);
  h->npaths = 0;
}

static void learn_path(struct shell *h, const char *p, size_t n)
{
  for (size_t i = 0; i < h->npaths; i++)
    if (strlen(h->paths[i]) == n && memcmp(h->paths[i], p, n) == 0)
      return;
  if (h->npaths == MAX_PATHS)
    return;
  char *c = malloc(n + 1);
  if (!c)
    return;
  memcpy(c, p, n);
  c[n] = '\0';
  h->paths[h->npaths++] = c;
}

/* Makes URI (its scheme and authority; a path is dropped) the server.
 * A failure is one line after who ("connect", or "coap: shell"). */
static int do_connect(struct shell *h, const char *uri, const char *who)
{
  struct ck_uri u;
  int rc = ck_uri_parse(&u, uri, strlen(uri));
  if (rc < 0) {
    say("%s: '%s': %s", who, uri, ck_strerror(rc));
    return -1;
  }
  size_t pre = u.path_len ? (size_t)(u.path - uri)
               : u.query  ? (size_t)(u.query - 1 - uri)
                          : strlen(uri);
  while (pre && uri[pre - 1] == '/')
    pre--;
  if (pre >= sizeof h->base) {
    say("%s: '%s': too long", who, uri);
    return -1;
  }
  memcpy(h->base, uri, pre);
  h->base[pre] = '\0';
  forget_paths(h);
  set_prompt(h);
  return 0;
}

/* The URI of PATH on the current server; a whole URI stays as it is. */
static int target(struct shell *h, const char *path, char *buf, size_t cap)
{
  if (strstr(path, "://")) {
    snprintf(buf, cap, "%s", path);
    return 0;
  }
  if (!h->base[0]) {
    say("no server: 'connect URI' first");
    return -1;
  }
  if ((size_t)snprintf(buf, cap, "%s%s%s", h->base, path[0] == '/' ? "" : "/",
                       path) >= cap) {
    say("'%s': too long", path);
    return -1;
  }
  return 0;
}

/* --- waiting for one call --- */

struct wait {
  bool done;
  int err;
  uint8_t code;
  int cf;
  uint8_t *body;
  size_t body_len;
  uint64_t rtt_ms;
  char from[CK_ADDR_STRLEN];
};

static void on_one(struct ck_call *call, const struct ck_client_response *r,
                   void *user)
{
  (void)call;
  struct wait *w = user;
  if (!r->final)
    return;
  w->done = true;
  w->err = r->err;
  w->code = r->code;
  w->cf = r->msg ? cli_msg_cf(r->msg) : -1;
  w->rtt_ms = r->rtt_ms;
  if (!r->peer || ck_addr_format(r->peer, w->from, sizeof w->from) < 0)
    snprintf(w->from, sizeof w->from, "?");
  if (r->body_len && (w->body = malloc(r->body_len)))
    memcpy(w->body, r->body, r->body_len);
  w->body_len = w->body ? r->body_len : 0;
}

/* Runs the loop until w is done; Ctrl-C cancels the call. */
static void wait_for(struct shell *h, struct wait *w, struct ck_call *call)
{
  sig_atomic_t seen = *h->s->interrupted;
  bool cancelled = false;
  while (!w->done) {
    if (*h->s->interrupted != seen && !cancelled) {
      cancelled = true;
      ck_call_cancel(call, false);
      continue;
    }
    if (ck_ctx_process(h->s->ctx, -1) < 0)
      break;
  }
}

/* --- commands --- */

/* After connect: does the server answer a ping (RFC 7252 §4.3)? With the
 * shell's parameters, but at most one retransmission, so that a server
 * that is away is told in seconds, not in the 93 s of MAX_TRANSMIT_WAIT. */
static void connect_ping(struct shell *h)
{
  static struct cli_opts o; /* large: not on the stack */
  o = h->base_opts;
  if (o.max_retransmit < 0 || o.max_retransmit > 1)
    o.max_retransmit = 1;
  struct ck_client *c;
  int rc = cli_client_new(h->s, &o, &c);
  if (rc < 0) {
    say("connect: %s", ck_strerror(rc));
    return;
  }
  struct ck_client_request req;
  ck_client_request_init(&req, CK_CODE_EMPTY, h->base);
  req.ping = true;
  struct wait w = {0};
  struct ck_call *call;
  rc = ck_client_send(c, &req, on_one, &w, &call);
  if (rc == 0)
    wait_for(h, &w, call);
  if (rc < 0 || !w.done || w.err) {
    rc = rc < 0 ? rc : w.done ? w.err : CK_ECANCELED;
    say("unavailable: %s does not answer a ping (%s)", h->base,
        rc == CK_EURI_HOST ? "cannot resolve the host" : ck_strerror(rc));
  } else {
    printf("available: pong from %s in %llu ms\n", w.from,
           (unsigned long long)w.rtt_ms);
  }
  free(w.body);
  ck_client_free(c);
}

static void do_discover(struct shell *h, const char *query)
{
  char uri[URI_MAX];
  if (!h->base[0]) {
    say("no server: 'connect URI' first");
    return;
  }
  snprintf(uri, sizeof uri, "%s/.well-known/core%s", h->base,
           query ? query : "");
  if (!h->s->client) {
    say("no client");
    return;
  }
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  struct wait w = {0};
  struct ck_call *call;
  int rc = ck_client_send(h->s->client, &req, on_one, &w, &call);
  if (rc < 0) {
    say("discover %s: %s", uri, ck_strerror(rc));
    return;
  }
  wait_for(h, &w, call);
  if (!w.done || w.err) {
    say("discover %s: %s", uri, ck_strerror(w.done ? w.err : CK_ECANCELED));
  } else if (CK_CODE_CLASS(w.code) != 2) {
    char c[48];
    ck_code_format(c, sizeof c, w.code);
    say("discover %s: %s", uri, c);
  } else {
    struct ck_link_reader rd;
    struct ck_link l;
    ck_link_reader_init(&rd, (const char *)w.body, w.body_len);
    while (ck_link_next(&rd, &l) == 1)
      learn_path(h, l.target, l.target_len);
    if ((w.cf >= 0 && w.cf != CK_CF_LINK_FORMAT) ||
        cli_link_table(stdout, "", (const char *)w.body, w.body_len) < 0) {
      say("discover %s: the answer is not link format", uri);
      payload_line(stdout, w.body, w.body_len);
    }
    fflush(stdout);
  }
  free(w.body);
}

static void on_notify(struct ck_call *call, const struct ck_client_response *r,
                      void *user)
{
  struct shell *h = user;
  if (!r->final || (!r->err && h->obs_count)) {
    /* RFC 7641 §3.2: a final answer with an error code ends it. */
    h->obs_count++;
    out_begin();
    if (h->obs_json) {
      cli_out_json(&h->s->out, r, false);
    } else {
      printf("%s: ", h->obs_path);
      payload_line(stdout, r->body, r->body_len);
    }
    out_end();
    if (!r->final && h->obs_max && h->obs_count >= h->obs_max &&
        !h->obs_stopping) {
      /* --count: enough; RFC 7641 §3.6, cancel on the server. */
      h->obs_stopping = true;
      ck_call_cancel(call, true);
    }
  }
  if (!r->final)
    return;
  h->obs = NULL;
  h->obs_deadline = 0;
  out_begin();
  fflush(stdout);
  if (r->err == CK_ECANCELED && h->obs_stopping) {
    fprintf(stderr, "observation of %s ended after %u notification%s\n",
            h->obs_path, h->obs_count, h->obs_count == 1 ? "" : "s");
  } else if (r->err) {
    fprintf(stderr, "observe %s: %s\n", h->obs_path, ck_strerror(r->err));
  } else if (!h->obs_count) {
    char c[48];
    ck_code_format(c, sizeof c, r->code);
    fprintf(stderr, "observe %s: %s, not observed\n", h->obs_path, c);
    if (CK_CODE_CLASS(r->code) == 2)
      payload_line(stdout, r->body, r->body_len);
  } else {
    fprintf(stderr, "observation of %s ended by the server\n", h->obs_path);
  }
  out_end();
}

/* Frees the observation's own client once the observation has ended
 * (not from its callback: the library forbids that). */
static void obs_reap(struct shell *h)
{
  if (!h->obs && h->obs_client) {
    ck_client_free(h->obs_client);
    h->obs_client = NULL;
  }
}

/* Cancels the observation on the server (RFC 7641 §3.6); with wait, runs
 * the loop until it has ended, for at most a few seconds. */
static void do_unobserve(struct shell *h, bool wait)
{
  if (!h->obs) {
    if (wait && !h->quit)
      say("not observing");
    return;
  }
  h->obs_stopping = true;
  h->obs_deadline = 0;
  ck_call_cancel(h->obs, true);
  uint64_t end = cli_now_ms() + 3000;
  while (wait && h->obs) {
    uint64_t now = cli_now_ms();
    if (now >= end || ck_ctx_process(h->s->ctx, (int)(end - now)) < 0)
      break;
  }
  obs_reap(h);
}

/* Ends the observation when --duration is up. Returns how long the loop
 * may wait before it must look again, in ms, or -1 for no limit. */
static int obs_tick(struct shell *h)
{
  obs_reap(h);
  if (!h->obs || !h->obs_deadline)
    return -1;
  uint64_t now = cli_now_ms();
  if (now < h->obs_deadline)
    return (int)(h->obs_deadline - now);
  h->obs_deadline = 0;
  if (!h->obs_stopping) {
    h->obs_stopping = true;
    ck_call_cancel(h->obs, true);
  }
  return -1;
}

/* Without a terminal (a script), an observation that ends by itself
 * (--count, --duration) is waited for before the next line is read, so
 * that a script's output comes in the order of its lines. Ctrl-C ends it
 * early. */
static void obs_wait(struct shell *h)
{
  sig_atomic_t seen = *h->s->interrupted;
  while (h->obs) {
    if (*h->s->interrupted != seen) {
      seen = *h->s->interrupted;
      do_unobserve(h, true);
      break;
    }
    if (ck_ctx_process(h->s->ctx, obs_tick(h)) < 0)
      break;
  }
  obs_reap(h);
}

/* o: the observe command's words, parsed; own: it gives transmission
 * parameters of its own. */
static void do_observe(struct shell *h, const struct cli_opts *o,
                       const char *uri, bool own)
{
  if (h->obs) {
    say("already observing %s: 'unobserve' first", h->obs_path);
    return;
  }
  if (o->output) {
    say("observe: --output is not for the shell (notifications are shown)");
    return;
  }
  obs_reap(h);
  struct ck_client *c = h->s->client;
  if (own) {
    int rc = cli_client_new(h->s, o, &h->obs_client);
    if (rc < 0) {
      say("observe: %s", ck_strerror(rc));
      return;
    }
    c = h->obs_client;
  }
  if (!c) {
    say("no client");
    return;
  }
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  cli_request_options(o, &req);
  req.observe = true;
  snprintf(h->obs_path, sizeof h->obs_path, "%s", o->uri);
  h->obs_stopping = false;
  h->obs_count = 0;
  h->obs_max = o->count;
  h->obs_json = o->json;
  h->obs_deadline =
      o->duration_s > 0 ? cli_now_ms() + (uint64_t)(o->duration_s * 1000.0) : 0;
  h->s->out.verbose = o->verbose;
  int rc = ck_client_send(c, &req, on_notify, h, &h->obs);
  if (rc < 0) {
    h->obs = NULL;
    h->obs_deadline = 0;
    say("observe %s: %s", uri,
        rc == CK_EURI_HOST ? "cannot resolve the host" : ck_strerror(rc));
    obs_reap(h);
    return;
  }
  if (!h->tty && (h->obs_max || h->obs_deadline))
    obs_wait(h);
}

/* Is d a row `set` may change? */
static bool settable(const struct cli_optdef *d)
{
  return d->section == SEC_TRANSMISSION ||
         strcmp(d->long_name, "block-size") == 0;
}

static void show_settings(const struct cli_opts *o)
{
  printf("ack-timeout %u%s\n", o->ack_timeout_ms ? o->ack_timeout_ms : 2000,
         o->ack_timeout_ms ? "" : " (default)");
  if (o->ack_random_factor > 0)
    printf("ack-random-factor %g\n", o->ack_random_factor);
  else
    printf("ack-random-factor 1.5 (default)\n");
  if (o->max_retransmit >= 0)
    printf("max-retransmit %d\n", (int)o->max_retransmit);
  else
    printf("max-retransmit 4 (default)\n");
  printf("token-size %u%s\n", o->token_size ? o->token_size : 4,
         o->token_size ? "" : " (default)");
  printf("block-size %u%s\n", o->block_size ? o->block_size : 1024,
         o->block_size ? "" : " (default)");
  printf("wait %u%s\n", o->wait_ms ? o->wait_ms : 5000,
         o->wait_ms ? "" : " (default)");
}

static void do_set(struct shell *h, int argc, char **argv)
{
  if (argc == 1) {
    show_settings(&h->base_opts);
    return;
  }
  if (argc != 3) {
    say("usage: set OPTION VALUE (set alone shows them)");
    return;
  }
  const char *name = argv[1];
  while (*name == '-')
    name++;
  const struct cli_optdef *d = NULL;
  for (size_t i = 0; (d = cli_optdef_at(i)); i++)
    if (settable(d) && strcmp(d->long_name, name) == 0)
      break;
  if (!d) {
    say("set: '%s' is not a transmission parameter (TAB lists them)", argv[1]);
    return;
  }
  if (h->obs) {
    say("set: 'unobserve' first");
    return;
  }
  char opt[64];
  snprintf(opt, sizeof opt, "--%s", d->long_name);
  char *av[] = {"coap", opt, argv[2], NULL};
  struct cli_opts o = h->base_opts;
  char err[256];
  if (cli_parse(&o, 3, av, 1, err, sizeof err) < 0) {
    say("set: %s", err);
    return;
  }
  h->base_opts = o;
  int rc = cli_session_reconfigure(h->s, &h->base_opts);
  if (rc < 0)
    say("set: %s", ck_strerror(rc));
}

static void do_help(void)
{
  printf("Commands (TAB completes commands, options and discovered paths):\n");
  for (size_t i = 0; i < NCOMMANDS; i++) {
    char left[64];
    snprintf(left, sizeof left, "%s %s", commands[i].name, commands[i].args);
    printf("  %-38s %s\n", left, commands[i].help);
  }
  printf("PATH is joined to the server (/hello) or is a whole URI. A request "
         "takes coap's\noptions too (-v, -A FMT, -O NUM,VALUE, --non, ...).\n"
         "set takes:");
  const struct cli_optdef *d;
  for (size_t i = 0; (d = cli_optdef_at(i)); i++)
    if (settable(d))
      printf(" %s", d->long_name);
  printf("\n");
}

/* The shell's transmission parameters under those the words of one
 * command give. Returns true when they give any: the command then needs
 * a client of its own. */
static bool merge_params(const struct shell *h, struct cli_opts *o)
{
  const struct cli_opts *b = &h->base_opts;
  bool own = false;
  const struct cli_optdef *d;
  for (size_t i = 0; (d = cli_optdef_at(i)); i++)
    if (d->section == SEC_TRANSMISSION && (o->given >> i & 1))
      own = true;
  if (!o->ack_timeout_ms)
    o->ack_timeout_ms = b->ack_timeout_ms;
  if (o->ack_random_factor <= 0)
    o->ack_random_factor = b->ack_random_factor;
  if (o->max_retransmit < 0)
    o->max_retransmit = b->max_retransmit;
  if (!o->token_size)
    o->token_size = b->token_size;
  if (!o->wait_ms)
    o->wait_ms = b->wait_ms;
  return own;
}

/* A request, ping or observe: the words parsed like coap's command line,
 * PATH joined to the server (ping's is optional: the server itself). */
static void do_request(struct shell *h, int argc, char **argv)
{
  static struct cli_opts o; /* large: not on the stack */
  static char arg[MAX_WORDS][64];
  char *av[MAX_WORDS + 2];
  int ac = 0;
  av[ac++] = "coap";
  for (int i = 0; i < argc && ac < MAX_WORDS; i++) {
    /* CoAP Shell's words for coap's options. */
    const char *w = argv[i], *eq = strchr(w, '=');
    size_t n = eq ? (size_t)(eq - w) : strlen(w);
    const char *to = n == 9 && !strncmp(w, "--payload", n)  ? "--data"
                     : n == 8 && !strncmp(w, "--format", n) ? "--content-format"
                                                            : NULL;
    if (to && !eq) {
      av[ac++] = (char *)to;
    } else if (to) {
      snprintf(arg[i], sizeof arg[i], "%s", to);
      av[ac++] = arg[i];
      av[ac++] = (char *)(eq + 1);
    } else {
      av[ac++] = argv[i];
    }
  }
  av[ac] = NULL;
  cli_opts_init(&o);
  o.non = h->base_opts.non;
  o.block_size = h->base_opts.block_size;
  o.verbose = h->base_opts.verbose;
  o.raw = h->base_opts.raw;
  o.json = h->base_opts.json;
  char err[512], uri[URI_MAX];
  if (cli_parse(&o, ac, av, 1, err, sizeof err) < 0) {
    say("%s", err);
    return;
  }
  if (o.cmd->id == CMD_PING && !o.uri) {
    if (!h->base[0]) {
      say("no server: 'connect URI' first");
      return;
    }
    o.uri = h->base;
  }
  if (!o.uri) {
    say("%s needs a PATH", o.cmd->name);
    return;
  }
  if (target(h, o.uri, uri, sizeof uri) < 0)
    return;
  const char *path = o.uri;
  o.uri = uri;
  if (cli_check(&o, err, sizeof err) < 0) {
    say("%s", err);
    return;
  }
  bool own = merge_params(h, &o);
  if (o.cmd->id == CMD_OBSERVE) {
    o.uri = path; /* the observation is named by what was typed */
    char full[URI_MAX];
    snprintf(full, sizeof full, "%s", uri);
    do_observe(h, &o, full, own);
    return;
  }
  if (own)
    cli_exec_own(h->s, &o);
  else
    cli_exec(h->s, &o);
  if (h->tty)
    fresh_line();
}

/* Splits line into words: blanks separate, quotes ('' and "") group and
 * a backslash escapes. The words are written into buf. */
static int split(const char *line, char *buf, size_t cap, char **argv, int max)
{
  int argc = 0;
  size_t k = 0;
  const char *p = line;
  for (;;) {
    while (*p == ' ' || *p == '\t')
      p++;
    if (!*p)
      break;
    if (argc == max || k >= cap)
      return -1;
    argv[argc++] = buf + k;
    char q = 0;
    while (*p && (q || (*p != ' ' && *p != '\t'))) {
      if (k + 1 >= cap)
        return -1;
      if (q && *p == q) {
        q = 0;
      } else if (!q && (*p == '\'' || *p == '"')) {
        q = *p;
      } else if (*p == '\\' && p[1] && q != '\'') {
        buf[k++] = *++p;
      } else {
        buf[k++] = *p;
      }
      p++;
    }
    if (q)
      return -2;
    buf[k++] = '\0';
  }
  return argc;
}

static void run_line(struct shell *h, const char *line)
{
  static char buf[LINE_MAX_ * 2];
  char *argv[MAX_WORDS];
  int argc = split(line, buf, sizeof buf, argv, MAX_WORDS);
  if (argc == -2) {
    say("a quote is not closed");
    return;
  }
  if (argc < 0) {
    say("the line is too long");
    return;
  }
  if (argc == 0)
    return;
  history_add(h, line);
  const char *c = argv[0];
  const struct cli_cmd *cmd = cli_cmd_find(c);
  if (!strcmp(c, "quit") || !strcmp(c, "exit")) {
    h->quit = true;
  } else if (!strcmp(c, "help") || !strcmp(c, "?")) {
    do_help();
  } else if (!strcmp(c, "connect")) {
    if (argc != 2)
      say("usage: connect URI");
    else if (do_connect(h, argv[1], "connect") == 0)
      connect_ping(h);
  } else if (!strcmp(c, "discover")) {
    if (argc > 2 || (argc == 2 && argv[1][0] != '?'))
      say("usage: discover [?QUERY]");
    else
      do_discover(h, argc == 2 ? argv[1] : NULL);
  } else if (!strcmp(c, "unobserve")) {
    do_unobserve(h, true);
  } else if (!strcmp(c, "set")) {
    do_set(h, argc, argv);
  } else if (cmd && cmd->id != CMD_DISCOVER && cmd->id != CMD_SHELL) {
    do_request(h, argc, argv);
  } else {
    say("%s: unknown command (help lists them)", c);
  }
  fflush(stdout);
}

/* libedit hands over a finished line, or NULL at end of input. */
static void on_line(char *line)
{
  sh->at_prompt = false;
  if (!line) {
    printf("\n");
    sh->quit = true;
    return;
  }
  run_line(sh, line);
  free(line);
  if (sh->quit)
    return;
  /* Some libedit versions leave the line editor off after a line; a new
   * install turns it on again and draws the prompt. */
  rl_callback_handler_install(sh->prompt, on_line);
  sh->at_prompt = true;
}

/* --- completion --- */

static char *cand_gen(const char *text, int state)
{
  static size_t i, len;
  if (!state) {
    i = 0;
    len = strlen(text);
  }
  while (i < sh->ncands) {
    const char *c = sh->cands[i++];
    if (strncmp(c, text, len) == 0)
      return strdup(c);
  }
  return NULL;
}

static void cand(const char *c)
{
  if (sh->ncands < CAND_MAX)
    sh->cands[sh->ncands++] = c;
}

static char **complete(const char *text, int start, int end)
{
  (void)end;
  static char longs[64][40];
  rl_attempted_completion_over = 1;
  sh->ncands = 0;
  /* Which word is it, and what is the first? */
  char first[32] = "";
  int word = 0;
  const char *p = rl_line_buffer, *stop = rl_line_buffer + start;
  while (p < stop) {
    while (p < stop && (*p == ' ' || *p == '\t'))
      p++;
    if (p >= stop)
      break;
    const char *w = p;
    while (p < stop && *p != ' ' && *p != '\t')
      p++;
    if (word == 0)
      snprintf(first, sizeof first, "%.*s", (int)(p - w), w);
    word++;
  }
  const struct cli_cmd *cmd = cli_cmd_find(first);
  bool request = cmd && cmd->method && cmd->id != CMD_DISCOVER;
  if (word == 0) {
    for (size_t i = 0; i < NCOMMANDS; i++)
      cand(commands[i].name);
  } else if (!strcmp(first, "set") && word == 1) {
    const struct cli_optdef *d;
    for (size_t i = 0; (d = cli_optdef_at(i)); i++)
      if (settable(d))
        cand(d->long_name);
  } else if (request && text[0] == '-') {
    size_t n = 0;
    if (cmd->id != CMD_GET && cmd->id != CMD_DELETE &&
        cmd->id != CMD_OBSERVE) {
      cand("--payload");
      cand("--format");
    }
    const struct cli_optdef *d;
    for (size_t i = 0; (d = cli_optdef_at(i)) && n < 64; i++) {
      if (d->hidden || !(d->cmds & CMD_BIT(cmd->id)) ||
          d->section == SEC_TRANSMISSION || d->section == SEC_DTLS ||
          d->section == SEC_GENERAL)
        continue;
      snprintf(longs[n], sizeof longs[n], "--%s", d->long_name);
      cand(longs[n++]);
    }
  } else if (request) {
    for (size_t i = 0; i < sh->npaths; i++)
      cand(sh->paths[i]);
  }
  return rl_completion_matches(text, cand_gen);
}

/* --- the loop --- */

static void read_plain(struct shell *h, char *buf, size_t *len)
{
  ssize_t n = read(STDIN_FILENO, buf + *len, LINE_MAX_ - 1 - *len);
  if (n < 0 && errno == EINTR)
    return;
  if (n > 0)
    *len += (size_t)n;
  char *nl;
  while (!h->quit && (nl = memchr(buf, '\n', *len))) {
    *nl = '\0';
    run_line(h, buf);
    size_t used = (size_t)(nl + 1 - buf);
    memmove(buf, nl + 1, *len - used);
    *len -= used;
  }
  if (n <= 0 || *len == LINE_MAX_ - 1) {
    buf[*len] = '\0';
    if (!h->quit && *len)
      run_line(h, buf);
    *len = 0;
    if (n <= 0)
      h->quit = true;
  }
}

int cli_shell(struct cli_session *s, const struct cli_opts *o)
{
  static struct shell h;
  static char plain[LINE_MAX_];
  size_t plain_len = 0;
  memset(&h, 0, sizeof h);
  sh = &h;
  h.s = s;
  h.base_opts = *o;
  /* Each answer framed as CoAP Shell shows it; messages without the
   * program's name. */
  s->tag = "";
  s->out.view = true;
  h.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  if (o->uri && do_connect(&h, o->uri, "coap: shell") < 0)
    return CLI_EXIT_USAGE;
  set_prompt(&h);
  if (h.tty) {
    rl_readline_name = "coap";
    rl_attempted_completion_function = complete;
    rl_basic_word_break_characters = " \t";
    rl_catch_signals = 0; /* main.c's handler wakes the loop */
    history_open(&h);
    rl_callback_handler_install(h.prompt, on_line);
    h.at_prompt = true;
  } else {
    history_open(&h);
  }
  sig_atomic_t seen = *s->interrupted;
  while (!h.quit) {
    struct pollfd pfd[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                            {.fd = ck_ctx_fd(s->ctx), .events = POLLIN}};
    int timeout = ck_ctx_timeout(s->ctx), obs = obs_tick(&h);
    if (obs >= 0 && (timeout < 0 || obs < timeout))
      timeout = obs;
    int rc = poll(pfd, 2, timeout);
    if (rc < 0 && errno != EINTR) {
      say("poll: %s", strerror(errno));
      break;
    }
    if (*s->interrupted != seen) {
      /* Ctrl-C at the prompt ends the observation, if there is one. */
      seen = *s->interrupted;
      if (h.obs)
        do_unobserve(&h, false);
      if (h.tty) {
        /* And, as in a shell, drops the line being typed. */
        printf("^C\n");
        fflush(stdout);
        /* rl_replace_line() refuses "" in libedit: a new editor state
         * starts from an empty line and draws the prompt. */
        rl_callback_handler_remove();
        rl_callback_handler_install(h.prompt, on_line);
      }
    }
    if (ck_ctx_process(s->ctx, 0) < 0)
      break;
    if (rc > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (h.tty)
        rl_callback_read_char();
      else
        read_plain(&h, plain, &plain_len);
      /* A command may have queued a request (observe does): let it
       * leave now, not after poll() has slept on a timer. */
      if (ck_ctx_process(s->ctx, 0) < 0)
        break;
    }
  }
  if (h.tty)
    rl_callback_handler_remove();
  h.quit = true;
  do_unobserve(&h, true);
  if (h.obs_client && !h.obs) {
    ck_client_free(h.obs_client);
    h.obs_client = NULL;
  }
  forget_paths(&h);
  s->tag = "coap: ";
  s->out.view = false;
  sh = NULL;
  return 0;
}
