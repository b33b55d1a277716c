/* What each of coap's commands does, on the client of libcoapkit.
 *
 * Every command is one call of the client (ck_client_send) and a loop
 * that runs the context until the call's final callback. The callback
 * writes what the user sees: the payload of a response, a line per
 * notification, a block per multicast responder. The loop watches two
 * things besides the context: the end of --duration, and Ctrl-C. A
 * first Ctrl-C ends an observation the polite way, by cancelling it on
 * the server (GET with Observe=1, RFC 7641 §3.6), and any other request
 * at once; a second one gives up without waiting.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "pretty.h"
#include "shell.h"

enum { MAX_PAYLOAD = 64 << 20, URI_MAX = 1024 };

/* --- sessions --- */

static void on_trace(void *user, bool sent, const struct ck_addr *peer,
                     const struct ck_msg *m)
{
  struct cli_session *s = user;
  cli_out_trace(&s->out, sent, peer, m);
  cli_progress_msg(&s->progress, sent, m);
}

/* A PSK as SPEC gives it: text, or hex with "0x". Returns its length
 * or -1. */
static int psk_bytes(const char *in, uint8_t *out, size_t cap)
{
  size_t n = strlen(in);
  if (strncmp(in, "0x", 2) != 0 && strncmp(in, "0X", 2) != 0) {
    if (n == 0 || n > cap)
      return -1;
    memcpy(out, in, n);
    return (int)n;
  }
  in += 2;
  n -= 2;
  if (n == 0 || n % 2 || n / 2 > cap)
    return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v = 0;
    for (int k = 0; k < 2; k++) {
      char c = in[2 * i + (size_t)k];
      unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                   : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                   : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                          : 16u;
      if (d > 15)
        return -1;
      v = v * 16 + d;
    }
    out[i] = (uint8_t)v;
  }
  return (int)(n / 2);
}

/* The DTLS options into s->dtls; NULL when none was given, so that a
 * coaps:// call without options verifies against the system's store. */
static const struct ck_dtls_config *dtls_config(struct cli_session *s,
                                                const struct cli_opts *o)
{
  struct ck_dtls_config *d = &s->dtls;
  memset(d, 0, sizeof *d);
  if (!o->psk && !o->identity && !o->cert && !o->key && !o->ca && !o->rpk)
    return NULL;
  if (o->psk) {
    int n = psk_bytes(o->psk, s->psk, sizeof s->psk);
    d->psk = s->psk;
    d->psk_len = n < 0 ? 0 : (size_t)n; /* refused by ck_client_new */
    d->psk_identity = o->identity ? o->identity : "";
  } else if (o->identity) {
    d->psk_identity = o->identity; /* without a key: refused */
  }
  d->cert_file = o->cert;
  d->key_file = o->key;
  d->ca_file = o->ca;
  d->rpk_key_file = o->rpk;
  return d;
}

static struct ck_client_config client_config(struct cli_session *s,
                                             const struct cli_opts *o)
{
  struct ck_client_config cc = {.trace = on_trace, .trace_user = s};
  cc.dtls = dtls_config(s, o);
  ck_params_default(&cc.params);
  if (o->ack_timeout_ms) {
    cc.params.ack_timeout_ms = o->ack_timeout_ms;
    cc.params.processing_delay_ms = o->ack_timeout_ms;
  }
  if (o->ack_random_factor > 0)
    cc.params.ack_random_factor = (float)o->ack_random_factor;
  if (o->max_retransmit == 0)
    cc.params.max_retransmit = CK_MAX_RETRANSMIT_NONE;
  else if (o->max_retransmit > 0)
    cc.params.max_retransmit = (uint32_t)o->max_retransmit;
  cc.min_token_len = (uint8_t)o->token_size;
  cc.max_server_response_delay_ms = o->wait_ms;
  cc.max_body = MAX_PAYLOAD;
  return cc;
}

int cli_session_open(struct cli_session *s, const struct cli_opts *o,
                     volatile sig_atomic_t *interrupted)
{
  memset(s, 0, sizeof *s);
  s->interrupted = interrupted;
  s->tag = "coap: ";
  s->out.out = stdout;
  s->out.err = stderr;
  struct ck_client_config cc = client_config(s, o);
  struct ck_ctx_config xc = {.params = cc.params};
  int rc = ck_ctx_new(&xc, &s->ctx);
  if (rc == 0)
    rc = ck_client_new(s->ctx, &cc, &s->client);
  if (rc < 0) {
    fprintf(stderr, "coap: cannot start: %s\n", ck_strerror(rc));
    cli_session_close(s);
    return CLI_EXIT_TRANSPORT;
  }
  return 0;
}

int cli_session_reconfigure(struct cli_session *s, const struct cli_opts *o)
{
  struct ck_client_config cc = client_config(s, o);
  if (s->client)
    ck_client_free(s->client);
  s->client = NULL;
  return ck_client_new(s->ctx, &cc, &s->client);
}

int cli_client_new(struct cli_session *s, const struct cli_opts *o,
                   struct ck_client **out)
{
  struct ck_client_config cc = client_config(s, o);
  return ck_client_new(s->ctx, &cc, out);
}

void cli_session_close(struct cli_session *s)
{
  if (s->ctx)
    ck_ctx_free(s->ctx); /* frees the client too */
  s->ctx = NULL;
  s->client = NULL;
}

/* --- one call --- */

struct run {
  struct cli_session *s;
  const struct cli_opts *o;
  const char *uri;
  const char *what; /* "GET", "discover", ... for messages */
  struct ck_call *call;
  bool done;
  bool observe, multicast, discover, ping;
  bool stopping;    /* we asked the call to end */
  bool interrupted; /* by Ctrl-C */
  int status;
  unsigned answers;   /* notifications, or multicast responders */
  unsigned good, bad; /* multicast answers with 2.xx and others */
  uint64_t deadline;  /* --duration; 0: none */
};

static int code_status(uint8_t code)
{
  return CK_CODE_CLASS(code) == 2 ? CLI_EXIT_OK : CLI_EXIT_ERROR_CODE;
}

static void code_message(struct run *r, uint8_t code)
{
  char c[48];
  ck_code_format(c, sizeof c, code);
  fprintf(stderr, "%s%s %s: %s\n", r->s->tag, r->what, r->uri, c);
}

/* The body on one line: a notification. */
static void one_line(struct cli_out *out, int cf, const uint8_t *p, size_t n)
{
  if (!out->pretty) {
    if (n) /* an empty body may come as a NULL pointer */
      fwrite(p, 1, n, out->out);
  } else {
    enum cli_shape sh = cli_shape_of(cf);
    char *d = sh == SHAPE_CBOR ? cli_cbor_diag(p, n, true) : NULL;
    if (d) {
      fputs(d, out->out);
      free(d);
    } else if (sh != SHAPE_BINARY && cli_is_text(p, n)) {
      cli_text(out->out, p, n);
    } else {
      for (size_t i = 0; i < n; i++)
        fprintf(out->out, "%02x", p[i]);
    }
  }
  if (n == 0 || p[n - 1] != '\n')
    fputc('\n', out->out);
}

/* Is the answer to a discovery link format (RFC 6690 §7.1: Content-Format
 * 40, or none) that parses? */
static bool is_link_format(const struct ck_client_response *resp)
{
  int cf = cli_msg_cf(resp->msg);
  if (cf >= 0 && cf != CK_CF_LINK_FORMAT)
    return false;
  struct ck_link_reader rd;
  struct ck_link l;
  int rc;
  ck_link_reader_init(&rd, (const char *)resp->body, resp->body_len);
  while ((rc = ck_link_next(&rd, &l)) == 1)
    ;
  return rc == 0;
}

/* Says on stderr that a discovery's answer is not link format. */
static void not_links(struct run *r, const struct ck_client_response *resp)
{
  char cf[96] = "";
  int n = cli_msg_cf(resp->msg);
  const char *name = n >= 0 ? ck_cf_name((uint16_t)n) : NULL;
  if (name && n != CK_CF_LINK_FORMAT)
    snprintf(cf, sizeof cf, ": it is %s", name);
  else if (n >= 0 && n != CK_CF_LINK_FORMAT)
    snprintf(cf, sizeof cf, ": its Content-Format is %d", n);
  fprintf(stderr, "%sthe answer of %s is not link format%s\n", r->s->tag,
          r->uri, cf);
}

/* A link-format body as a table, or as it is when --raw or not link
 * format. Returns 0, or -1 when it is not link format (said on stderr). */
static int links(struct run *r, const struct ck_client_response *resp,
                 const char *indent)
{
  struct cli_out *out = &r->s->out;
  bool ok = is_link_format(resp);
  if (ok && !r->o->raw &&
      cli_link_table(out->out, indent, (const char *)resp->body,
                     resp->body_len) >= 0)
    return 0;
  if (!ok)
    not_links(r, resp);
  if (resp->body_len)
    fwrite(resp->body, 1, resp->body_len, out->out);
  if (resp->body_len && resp->body[resp->body_len - 1] != '\n')
    fputc('\n', out->out);
  return ok ? 0 : -1;
}

static void notification(struct run *r, const struct ck_client_response *resp)
{
  struct cli_out *out = &r->s->out;
  r->answers++;
  if (r->o->json) {
    cli_out_json(out, resp, false);
  } else {
    if (r->o->verbose) {
      char ts[40];
      cli_timestamp(ts, sizeof ts);
      fprintf(out->out, "%s ", ts);
    }
    one_line(out, cli_msg_cf(resp->msg), resp->body, resp->body_len);
  }
  fflush(out->out);
}

/* One member of a group answered. */
static void responder(struct run *r, const struct ck_client_response *resp)
{
  struct cli_out *out = &r->s->out;
  bool good = CK_CODE_CLASS(resp->code) == 2;
  if (r->o->json) {
    cli_out_json(out, resp, r->discover);
    if (good && r->discover && !is_link_format(resp)) {
      not_links(r, resp);
      good = false;
    }
  } else {
    char addr[CK_ADDR_STRLEN], code[48];
    if (ck_addr_format(resp->peer, addr, sizeof addr) < 0)
      snprintf(addr, sizeof addr, "?");
    ck_code_format(code, sizeof code, resp->code);
    fprintf(out->out, "%s%s %s\n", r->answers ? "\n" : "", addr, code);
    if (r->discover && good)
      good = links(r, resp, "  ") == 0;
    else
      one_line(out, cli_msg_cf(resp->msg), resp->body, resp->body_len);
  }
  if (good)
    r->good++;
  else
    r->bad++;
  r->answers++;
  fflush(out->out);
}

/* The one answer of a plain request. */
static void single(struct run *r, const struct ck_client_response *resp)
{
  struct cli_out *out = &r->s->out;
  /* -v: who the coaps:// server proved to be; with --rpk nobody else
   * checks its key (docs/dtls.md). */
  static const char *const modes[] = {"", "psk hint", "certificate CN",
                                      "raw public key SHA-256"};
  if (out->verbose && resp->security > 0 && resp->security < 4)
    fprintf(out->err, "* DTLS server: %s %s\n", modes[resp->security],
            resp->peer_identity);
  if (r->ping) {
    char addr[CK_ADDR_STRLEN];
    if (ck_addr_format(resp->peer, addr, sizeof addr) < 0)
      snprintf(addr, sizeof addr, "?");
    if (r->o->json)
      cli_out_json_ping(out, r->uri, resp);
    else
      fprintf(out->out, "pong from %s in %llu ms\n", addr,
              (unsigned long long)resp->rtt_ms);
    fflush(out->out);
    r->status = CLI_EXIT_OK;
    return;
  }
  r->status = code_status(resp->code);
  bool shown = false; /* the code is on stdout: no message needed */
  if (r->o->json) {
    cli_out_json(out, resp, r->discover);
    /* RFC 6690 §4: discovery answers with link format; anything else is
     * not what was asked for, even with a 2.xx code. */
    if (r->discover && r->status == CLI_EXIT_OK && !is_link_format(resp)) {
      not_links(r, resp);
      r->status = CLI_EXIT_ERROR_CODE;
    }
  } else if (r->discover && r->status == CLI_EXIT_OK) {
    if (links(r, resp, "") < 0)
      r->status = CLI_EXIT_ERROR_CODE;
  } else if (out->view && !r->o->output) {
    cli_out_view(out, r->what, r->uri, resp, r->o->raw);
    shown = true;
  } else {
    cli_out_body(out, cli_msg_cf(resp->msg), resp->body, resp->body_len);
  }
  fflush(out->out);
  if (!shown && CK_CODE_CLASS(resp->code) != 2)
    code_message(r, resp->code);
}

static void failed(struct run *r, int err)
{
  if (err == CK_ECANCELED && r->stopping) {
    /* We ended it: after --count, --duration or Ctrl-C an observation
     * has done its job; an interrupted request has not. */
    if (r->observe && r->answers) {
      r->status = CLI_EXIT_OK;
    } else if (r->interrupted) {
      r->status = CLI_EXIT_INTERRUPTED;
    } else {
      fprintf(stderr, "%s%s %s: no answer within --duration\n", r->s->tag,
              r->what, r->uri);
      r->status = CLI_EXIT_TRANSPORT;
    }
    return;
  }
  /* A name that does not resolve comes back here, from the loop. */
  fprintf(stderr, "%s%s %s: %s\n", r->s->tag, r->what, r->uri,
          err == CK_EURI_HOST ? "cannot resolve the host" : ck_strerror(err));
  r->status = CLI_EXIT_TRANSPORT;
}

static void on_answer(struct ck_call *call,
                      const struct ck_client_response *resp, void *user)
{
  struct run *r = user;
  r->call = call;
  if (!resp->final) {
    if (r->observe) {
      notification(r, resp);
      if (r->o->count && r->answers >= r->o->count && !r->stopping) {
        r->stopping = true;
        ck_call_cancel(call, true);
      }
    } else {
      responder(r, resp);
    }
    return;
  }
  r->done = true;
  cli_progress_end(&r->s->progress);
  if (resp->err) {
    failed(r, resp->err);
  } else if (r->multicast) {
    /* RFC 7390 §2.7: the window has closed. */
    r->status = r->good  ? CLI_EXIT_OK
                : r->bad ? CLI_EXIT_ERROR_CODE
                         : CLI_EXIT_TRANSPORT;
    if (!r->answers)
      fprintf(stderr, "%s%s %s: no answer within the response window\n",
              r->s->tag, r->what, r->uri);
  } else if (r->observe && r->answers) {
    /* RFC 7641 §3.2: an error code ends an observation. */
    notification(r, resp);
    r->status = code_status(resp->code);
    if (r->status != CLI_EXIT_OK)
      code_message(r, resp->code);
  } else {
    if (r->observe && CK_CODE_CLASS(resp->code) == 2)
      fprintf(stderr, "%s%s answered without Observe: not observed\n",
              r->s->tag, r->uri);
    single(r, resp);
  }
}

/* The call did not end as asked: give up on it by replacing the client,
 * which cancels it (its final callback runs now, while r is alive). */
static void abandon(struct run *r)
{
  struct cli_session *s = r->s;
  struct ck_client_config cc = client_config(s, r->o);
  ck_client_free(s->client);
  s->client = NULL;
  r->done = true;
  if (ck_client_new(s->ctx, &cc, &s->client) < 0)
    s->client = NULL;
}

static void stop(struct run *r, bool force)
{
  if (r->done)
    return;
  if (force) {
    abandon(r);
    return;
  }
  r->stopping = true;
  ck_call_cancel(r->call, r->observe);
}

static void pump(struct run *r)
{
  struct cli_session *s = r->s;
  sig_atomic_t seen = *s->interrupted;
  unsigned presses = 0;
  while (!r->done) {
    if (*s->interrupted != seen) {
      seen = *s->interrupted;
      r->interrupted = true;
      stop(r, ++presses > 1);
      continue;
    }
    int timeout = -1;
    if (r->deadline) {
      uint64_t now = cli_now_ms();
      if (now >= r->deadline) {
        r->deadline = 0;
        stop(r, false);
        continue;
      }
      timeout = (int)(r->deadline - now);
    }
    int rc = ck_ctx_process(s->ctx, timeout);
    if (rc < 0) {
      fprintf(stderr, "coap: %s\n", ck_strerror(rc));
      abandon(r);
      r->status = CLI_EXIT_TRANSPORT;
    }
  }
  if (r->interrupted && presses > 1)
    r->status = CLI_EXIT_INTERRUPTED;
}

/* --- commands --- */

static int read_payload(const struct cli_opts *o, uint8_t **buf, size_t *len)
{
  *buf = NULL;
  *len = 0;
  if (o->data) {
    *len = strlen(o->data);
    *buf = malloc(*len + 1);
    if (!*buf)
      return -1;
    memcpy(*buf, o->data, *len);
    return 0;
  }
  if (!o->data_file)
    return 0;
  bool in = strcmp(o->data_file, "-") == 0;
  FILE *f = in ? stdin : fopen(o->data_file, "rb");
  if (!f) {
    fprintf(stderr, "coap: --data-file: %s: %s\n", o->data_file,
            strerror(errno));
    return -1;
  }
  size_t cap = 0;
  int rc = 0;
  for (;;) {
    if (*len == cap) {
      size_t ncap = cap ? cap * 2 : 65536;
      uint8_t *nb = *len < MAX_PAYLOAD ? realloc(*buf, ncap) : NULL;
      if (!nb) {
        fprintf(stderr, "coap: --data-file: %s: larger than 64 MiB\n",
                o->data_file);
        rc = -1;
        break;
      }
      *buf = nb;
      cap = ncap;
    }
    size_t n = fread(*buf + *len, 1, cap - *len, f);
    *len += n;
    if (n == 0) {
      if (ferror(f)) {
        fprintf(stderr, "coap: --data-file: %s: %s\n", o->data_file,
                strerror(errno));
        rc = -1;
      }
      break;
    }
  }
  if (!in)
    fclose(f);
  if (rc < 0) {
    free(*buf);
    *buf = NULL;
  }
  return rc;
}

/* Is the URI's host a multicast address? */
static bool multicast_uri(const char *uri)
{
  struct ck_uri u;
  char host[300];
  struct ck_addr a;
  if (ck_uri_parse(&u, uri, strlen(uri)) < 0 || !u.host_is_literal)
    return false;
  int n = ck_uri_pct_decode(u.host, u.host_len, host, sizeof host - 1);
  if (n < 0)
    return false;
  host[n] = '\0';
  return ck_addr_parse(&a, host, u.port) == 0 && ck_addr_is_multicast(&a);
}

/* The URI discover asks: URI's /.well-known/core (a path given is kept),
 * or the group's. Returns 0, or an exit status after a message. */
static int discover_uri(const struct cli_opts *o, char *buf, size_t cap)
{
  if (o->uri) {
    struct ck_uri u;
    if (ck_uri_parse(&u, o->uri, strlen(o->uri)) < 0)
      return CLI_EXIT_USAGE; /* cli_check() has said why */
    if (u.path_len > 1 || (u.path_len == 1 && u.path[0] != '/')) {
      snprintf(buf, cap, "%s", o->uri);
      return 0;
    }
    size_t pre = u.path_len ? (size_t)(u.path - o->uri)
                 : u.query  ? (size_t)(u.query - 1 - o->uri)
                            : strlen(o->uri);
    snprintf(buf, cap, "%.*s/.well-known/core%s%.*s", (int)pre, o->uri,
             u.query ? "?" : "", u.query ? (int)u.query_len : 0,
             u.query ? u.query : "");
    return 0;
  }
  const char *g = o->group ? o->group : "224.0.1.187";
  struct ck_addr a;
  char ip[CK_ADDR_STRLEN], esc[2 * CK_ADDR_STRLEN];
  if (ck_addr_parse(&a, g, CK_PORT_COAP) < 0 || !ck_addr_is_multicast(&a) ||
      ck_addr_format_ip(&a, ip, sizeof ip) < 0) {
    fprintf(stderr, "coap: --group: '%s' is not a multicast address\n", g);
    return CLI_EXIT_USAGE;
  }
  /* RFC 6874: a zone in a URI is written %25. */
  size_t k = 0;
  for (const char *p = ip; *p && k + 4 < sizeof esc; p++) {
    if (*p == '%') {
      memcpy(esc + k, "%25", 3);
      k += 3;
    } else {
      esc[k++] = *p;
    }
  }
  esc[k] = '\0';
  bool v6 = a.u.sa.sa_family == AF_INET6;
  snprintf(buf, cap, "coap://%s%s%s:%u/.well-known/core", v6 ? "[" : "", esc,
           v6 ? "]" : "", ck_addr_port(&a));
  return 0;
}

static int send_and_wait(struct run *r, const struct ck_client_request *req)
{
  struct cli_session *s = r->s;
  if (!s->client) {
    fprintf(stderr, "coap: no client\n");
    return CLI_EXIT_TRANSPORT;
  }
  int rc = ck_client_send(s->client, req, on_answer, r, &r->call);
  if (rc < 0) {
    /* Synchronous errors are the URI's own (a malformed host is a usage
     * error) or the resolver's failing to start. */
    fprintf(stderr, "%s%s %s: %s\n", s->tag, r->what, r->uri,
            ck_strerror(rc));
    return rc == CK_ESYS || rc == CK_EFULL || rc == CK_ENOMEM
               ? CLI_EXIT_TRANSPORT
               : CLI_EXIT_USAGE;
  }
  pump(r);
  return r->status;
}

static int open_output(struct cli_session *s, const struct cli_opts *o)
{
  s->out.out = stdout;
  s->out.verbose = o->verbose;
  s->out.json = o->json;
  if (o->output) {
    s->out.out = fopen(o->output, "wb");
    if (!s->out.out) {
      fprintf(stderr, "coap: --output: %s: %s\n", o->output, strerror(errno));
      s->out.out = stdout;
      return CLI_EXIT_USAGE;
    }
  }
  s->out.pretty = !o->raw && !o->output && isatty(STDOUT_FILENO);
  cli_progress_start(&s->progress,
                     !o->verbose && isatty(STDERR_FILENO) ? stderr : NULL);
  return 0;
}

static void close_output(struct cli_session *s)
{
  cli_progress_end(&s->progress);
  if (s->out.out != stdout && fclose(s->out.out) != 0)
    fprintf(stderr, "coap: --output: %s\n", strerror(errno));
  else if (s->out.out == stdout)
    fflush(stdout);
  s->out.out = stdout;
}

void cli_request_options(const struct cli_opts *o,
                         struct ck_client_request *req)
{
  req->non = o->non;
  /* The options' -1 means "not given". */
  req->has_content_format = o->content_format >= 0;
  req->content_format = (uint16_t)o->content_format;
  req->has_accept = o->accept >= 0;
  req->accept = (uint16_t)o->accept;
  req->opts = o->opts;
  req->nopts = o->nopts;
  if (o->has_token) {
    req->token = o->token;
    req->token_len = o->token_len;
  }
  req->block_size = (uint16_t)o->block_size;
}

int cli_exec(struct cli_session *s, const struct cli_opts *o)
{
  if (o->cmd->id == CMD_SHELL)
    return cli_shell(s, o);
  struct run r = {.s = s, .o = o, .uri = o->uri, .status = CLI_EXIT_OK};
  char uri[URI_MAX];
  struct ck_client_request req;
  if (o->cmd->id == CMD_DISCOVER) {
    int rc = discover_uri(o, uri, sizeof uri);
    if (rc)
      return rc;
    r.uri = uri;
    r.discover = true;
  }
  r.what = o->cmd->id == CMD_DISCOVER || o->cmd->id == CMD_PING ||
                   o->cmd->id == CMD_OBSERVE
               ? o->cmd->name
               : ck_code_name(o->cmd->method);
  r.ping = o->cmd->id == CMD_PING;
  r.observe = o->cmd->id == CMD_OBSERVE;
  r.multicast = multicast_uri(r.uri);
  ck_client_request_init(&req, o->cmd->method, r.uri);
  req.ping = o->cmd->method == CK_CODE_EMPTY;
  uint8_t *payload = NULL;
  size_t payload_len = 0;
  if (!r.ping) {
    if (read_payload(o, &payload, &payload_len) < 0)
      return CLI_EXIT_USAGE;
    cli_request_options(o, &req);
    req.observe = r.observe;
    req.payload = payload;
    req.payload_len = payload_len;
  }
  int status = open_output(s, o);
  if (status == 0) {
    if (r.observe && o->duration_s > 0)
      r.deadline = cli_now_ms() + (uint64_t)(o->duration_s * 1000.0);
    status = send_and_wait(&r, &req);
  }
  close_output(s);
  free(payload);
  return status;
}

int cli_exec_own(struct cli_session *s, const struct cli_opts *o)
{
  struct ck_client *shared = s->client, *own;
  int rc = cli_client_new(s, o, &own);
  if (rc < 0) {
    fprintf(stderr, "%s%s: %s\n", s->tag, o->cmd->name, ck_strerror(rc));
    return CLI_EXIT_TRANSPORT;
  }
  s->client = own;
  int status = cli_exec(s, o);
  /* abandon() may have replaced the client meanwhile: free whichever
   * is there now. Its calls have all ended, so no callback fires. */
  if (s->client)
    ck_client_free(s->client);
  s->client = shared;
  return status;
}
