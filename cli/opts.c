/* The tables of coap's command line, and the parser that reads them.
 *
 * Every command is one row of cmds[] and every option one row of
 * options[]: its short and long name, the name of its value, how the
 * value is read and where it is stored, its range, the commands it
 * applies to, and its help line. The parser, --help, the man page and
 * the shell's completion all read these rows, so a new option is one row
 * here and appears everywhere at once.
 *
 * The parser accepts options anywhere among the words (`coap -v get URI`
 * and `coap get URI -v` are the same), "--name=value" and "--name value",
 * "-bVALUE" and "-b VALUE", clusters of short flags ("-vh"), and "--" to
 * end the options. It never prints: a bad argument comes back as one line
 * naming it.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "opts.h"

/* --- commands --- */

#define METHODS                                                                \
  (CMD_BIT(CMD_GET) | CMD_BIT(CMD_POST) | CMD_BIT(CMD_PUT) |                   \
   CMD_BIT(CMD_DELETE) | CMD_BIT(CMD_FETCH) | CMD_BIT(CMD_PATCH) |             \
   CMD_BIT(CMD_IPATCH))
#define PAYLOAD                                                                \
  (CMD_BIT(CMD_POST) | CMD_BIT(CMD_PUT) | CMD_BIT(CMD_FETCH) |                 \
   CMD_BIT(CMD_PATCH) | CMD_BIT(CMD_IPATCH) | CMD_BIT(CMD_SHELL))
#define REQUESTS                                                               \
  (METHODS | CMD_BIT(CMD_OBSERVE) | CMD_BIT(CMD_DISCOVER) | CMD_BIT(CMD_SHELL))
#define ALL      ((1u << CMD_COUNT) - 1)
#define ANSWERED (ALL & ~CMD_BIT(CMD_PING))

static const struct cli_cmd cmds[] = {
    {CMD_GET,
     "get",
     CK_GET,
     "URI",
     "fetch a resource (GET)",
     "Sends a GET request and writes the response's payload to standard "
     "output. Block-wise responses (RFC 7959) are reassembled first.",
     {"coap get coap://coap.me/hello",
      "coap get -A json coap://[::1]/sensors/temp | jq .",
      "coap get -b 64 -o big.bin coap://10.0.0.7/firmware",
      "coap get -v coap://127.0.0.1/.well-known/core  # show the exchange",
      NULL}},
    {CMD_POST,
     "post",
     CK_POST,
     "URI",
     "send data to a resource (POST)",
     "Sends a POST request with the payload of --data or --data-file.",
     {"coap post -e 'on' coap://127.0.0.1/light",
      "coap post -t json -f reading.json coap://127.0.0.1/readings", NULL}},
    {CMD_PUT,
     "put",
     CK_PUT,
     "URI",
     "create or replace a resource (PUT)",
     "Sends a PUT request with the payload of --data or --data-file; "
     "large payloads go block-wise (Block1).",
     {"coap put -t text -e 'hello' coap://127.0.0.1/sink",
      "echo 42 | coap put -f - coap://127.0.0.1/sink",
      "coap put -O If-None-Match -e x coap://127.0.0.1/sink  # only if new",
      NULL}},
    {CMD_DELETE,
     "delete",
     CK_DELETE,
     "URI",
     "delete a resource (DELETE)",
     "Sends a DELETE request.",
     {"coap delete coap://127.0.0.1/sink", NULL}},
    {CMD_FETCH,
     "fetch",
     CK_FETCH,
     "URI",
     "fetch with a request body (FETCH)",
     "Sends a FETCH request (RFC 8132) with the payload of --data or "
     "--data-file, which selects what to return.",
     {"coap fetch -t json -e '[\"temp\"]' coap://127.0.0.1/sensors", NULL}},
    {CMD_PATCH,
     "patch",
     CK_PATCH,
     "URI",
     "change part of a resource (PATCH)",
     "Sends a PATCH request (RFC 8132) with the payload of --data or "
     "--data-file.",
     {"coap patch -t application/merge-patch+json -e '{\"on\":true}' "
      "coap://127.0.0.1/light",
      NULL}},
    {CMD_IPATCH,
     "ipatch",
     CK_IPATCH,
     "URI",
     "change part of a resource, idempotently (iPATCH)",
     "Sends an iPATCH request (RFC 8132) with the payload of --data or "
     "--data-file.",
     {"coap ipatch -t application/merge-patch+json -e '{\"on\":true}' "
      "coap://127.0.0.1/light",
      NULL}},
    {CMD_OBSERVE,
     "observe",
     CK_GET,
     "URI",
     "follow a resource (Observe)",
     "Registers an observation (RFC 7641) and writes one line per "
     "notification (with -v, after a time stamp; with --json, one JSON "
     "object). It stops after --duration or --count, or on Ctrl-C, and "
     "then cancels the observation on the server before exiting.",
     {"coap observe coap://127.0.0.1/time",
      "coap observe --count 5 coap://127.0.0.1/obs",
      "coap observe -s 60 --json coap://127.0.0.1/time > log.jsonl", NULL}},
    {CMD_DISCOVER,
     "discover",
     CK_GET,
     "[URI]",
     "list the resources of a server or of a group",
     "Asks /.well-known/core (RFC 6690) and prints a table of the "
     "resources: path, rt, ct, if, sz, obs. A URI without a path asks that "
     "server's /.well-known/core; a query filters (?rt=temperature). "
     "Without a URI it asks every CoAP node on the local IPv4 network "
     "(the group 224.0.1.187; --group picks another, IPv6 included) and "
     "prints each responder's address above its table, collecting answers "
     "for --wait milliseconds.",
     {"coap discover coap://127.0.0.1",
      "coap discover 'coap://127.0.0.1?rt=demo.obs'",
      "coap discover                    # every node on the IPv4 network",
      "coap discover --group ff02::fd%eth0 --wait 2000", NULL}},
    {CMD_PING,
     "ping",
     0,
     "URI",
     "check that a CoAP endpoint answers",
     "Sends an empty confirmable message (RFC 7252 §4.3), which a CoAP "
     "endpoint answers with a Reset, and prints who answered and how "
     "fast.",
     {"coap ping coap://127.0.0.1", NULL}},
    {CMD_SHELL,
     "shell",
     0,
     "[URI]",
     "an interactive session: many requests, observe while typing",
     "Reads commands with line editing: connect URI (says whether the "
     "server answers a ping), ping, discover, get, put, post, delete PATH "
     "[--payload P] [--format F], observe PATH [--count N] [--duration S] "
     "(the notifications appear while the prompt stays usable), "
     "unobserve, set OPTION VALUE (a transmission parameter), help, quit. "
     "Each answer is framed as CoAP Shell shows it: the request line, the "
     "code with its CoAP name, type, MID, token, RTT, options, payload "
     "size and the payload readably. Transmission options given to one "
     "command apply to it alone. TAB completes commands, options and the "
     "paths discovery found; the history is kept in $COAP_HISTORY or "
     "~/.coap_history. Without a terminal, commands are read one per line "
     "from standard input.",
     {"coap shell coap://127.0.0.1",
      "printf 'get /hello\\nping\\n' | coap shell coap://127.0.0.1", NULL}},
};

const struct cli_cmd *cli_cmd_find(const char *name)
{
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp(cmds[i].name, name) == 0)
      return &cmds[i];
  return NULL;
}

const struct cli_cmd *cli_cmd_at(size_t i)
{
  return i < sizeof cmds / sizeof cmds[0] ? &cmds[i] : NULL;
}

/* --- options --- */

#define O(field) offsetof(struct cli_opts, field)

static const struct cli_optdef options[] = {
    {'e', "data", "TEXT", K_STR, O(data), 0, 0, PAYLOAD, SEC_REQUEST, false,
     "request payload", NULL},
    {'f', "data-file", "FILE", K_STR, O(data_file), 0, 0, PAYLOAD, SEC_REQUEST,
     false, "request payload from FILE ('-': standard input)",
     "At most 64 MiB; larger payloads go block-wise (Block1)."},
    {'t', "content-format", "FMT", K_CF, O(content_format), 0, 0, PAYLOAD,
     SEC_REQUEST, false, "Content-Format of the payload: a name or a number",
     "A media type (application/json), a short name (text, json, cbor, "
     "link, octet) or a number (50)."},
    {'A', "accept", "FMT", K_CF, O(accept), 0, 0, REQUESTS, SEC_REQUEST, false,
     "Accept: the content format wanted (name or number)", NULL},
    {'O', "option", "NUM,VALUE", K_OPTION, 0, 0, 0, REQUESTS, SEC_REQUEST,
     false, "add option NUM (or its name); repeatable",
     "VALUE is text, a decimal number for options whose format is uint, or "
     "0x and hex digits for raw bytes; without a value the option is empty "
     "(-O If-None-Match). Examples: -O 4,0x0a1b (ETag), -O Uri-Query,a=1, "
     "-O 258,26 (No-Response)."},
    {'T', "token", "HEX", K_TOKEN, 0, 0, 0, REQUESTS, SEC_REQUEST, false,
     "use this token (hex, 0 to 8 bytes), not a random one", NULL},
    {0, "non", NULL, K_FLAG, O(non), 0, 0, REQUESTS, SEC_REQUEST, false,
     "send NON (non-confirmable) instead of CON", NULL},
    {'b', "block-size", "N", K_BLOCK, O(block_size), 16, 1024, REQUESTS,
     SEC_REQUEST, false, "block size for block-wise transfers: 16 to 1024",
     "A power of two. Downloads ask for it from the first request on "
     "(RFC 7959 §2.4); uploads use it unless the server asks for less."},
    {'s', "duration", "SECONDS", K_DOUBLE, O(duration_s), 0.001, 1e7,
     CMD_BIT(CMD_OBSERVE), SEC_OBSERVE, false, "stop observing after SECONDS",
     NULL},
    {0, "count", "N", K_U32, O(count), 1, 4294967295.0, CMD_BIT(CMD_OBSERVE),
     SEC_OBSERVE, false, "stop after N notifications", NULL},
    {0, "group", "ADDR", K_STR, O(group), 0, 0, CMD_BIT(CMD_DISCOVER),
     SEC_DISCOVER, false, "the multicast group to ask (default 224.0.1.187)",
     "ff02::fd%IF is the link-local IPv6 group on interface IF; ff05::fd the "
     "site-local one. ADDR may carry a port: [ff02::fd%eth0]:5683."},
    {'o', "output", "FILE", K_STR, O(output), 0, 0, ANSWERED, SEC_OUTPUT, false,
     "write the output to FILE, not standard output", NULL},
    {'v', "verbose", NULL, K_FLAG, O(verbose), 0, 0, ALL, SEC_OUTPUT, false,
     "show each message sent and received on stderr",
     "For each message: its type, code, Message ID, token, peer, the "
     "round-trip time of an answer, every option by name with a readable "
     "value, and the payload."},
    {0, "json", NULL, K_FLAG, O(json), 0, 0, ALL, SEC_OUTPUT, false,
     "one JSON object per response (code, type, MID, ...)",
     "For ping, one object with \"ping\":\"pong\", the answer's type and "
     "rtt_ms."},
    {0, "raw", NULL, K_FLAG, O(raw), 0, 0, ANSWERED, SEC_OUTPUT, false,
     "write payloads as received, even on a terminal", NULL},
    {0, "ack-timeout", "MS", K_U32, O(ack_timeout_ms), 1, 600000, ALL,
     SEC_TRANSMISSION, false, "ACK_TIMEOUT in milliseconds (2000)", NULL},
    {0, "ack-random-factor", "F", K_DOUBLE, O(ack_random_factor), 1, 10, ALL,
     SEC_TRANSMISSION, false, "ACK_RANDOM_FACTOR (1.5)", NULL},
    {0, "max-retransmit", "N", K_I32, O(max_retransmit), 0, 20, ALL,
     SEC_TRANSMISSION, false, "MAX_RETRANSMIT (4)", NULL},
    {0, "token-size", "N", K_U32, O(token_size), 1, 8, ALL, SEC_TRANSMISSION,
     false, "length of random tokens in bytes (4)", NULL},
    {0, "wait", "MS", K_U32, O(wait_ms), 1, 600000, ALL, SEC_TRANSMISSION,
     false, "multicast: collect answers for MS (5000)", NULL},
    {0, "psk", "KEY", K_STR, O(psk), 0, 0, ALL, SEC_DTLS, false,
     "pre-shared key", NULL},
    {0, "identity", "ID", K_STR, O(identity), 0, 0, ALL, SEC_DTLS, false,
     "PSK identity", NULL},
    {0, "cert", "FILE", K_STR, O(cert), 0, 0, ALL, SEC_DTLS, false,
     "X.509 certificate (PEM)", NULL},
    {0, "key", "FILE", K_STR, O(key), 0, 0, ALL, SEC_DTLS, false,
     "private key (PEM)", NULL},
    {0, "ca", "FILE", K_STR, O(ca), 0, 0, ALL, SEC_DTLS, false,
     "CA certificates to trust (PEM)", NULL},
    {0, "rpk", "FILE", K_STR, O(rpk), 0, 0, ALL, SEC_DTLS, false,
     "raw public key (RFC 7250)", NULL},
    {'h', "help", NULL, K_FLAG, O(help), 0, 0, ALL, SEC_GENERAL, false,
     "print help (after a command: its help) and exit", NULL},
    {0, "version", NULL, K_FLAG, O(version), 0, 0, ALL, SEC_GENERAL, false,
     "print the version and exit", NULL},
    {0, "man", NULL, K_FLAG, O(man), 0, 0, ALL, SEC_GENERAL, true,
     "print the man page (roff) and exit", NULL},
};

#define NOPTIONS (sizeof options / sizeof options[0])
_Static_assert(NOPTIONS <= 64, "struct cli_opts.given has 64 bits");

const struct cli_optdef *cli_optdef_at(size_t i)
{
  return i < NOPTIONS ? &options[i] : NULL;
}

const char *cli_section_title(enum cli_section s)
{
  static const char *const titles[SEC_COUNT] = {
      "Request options", "Observe options",      "Discovery options",
      "Output options",  "Transmission options", "DTLS options (coaps://)",
      "General options",
  };
  return (unsigned)s < SEC_COUNT ? titles[s] : "";
}

void cli_opts_init(struct cli_opts *o)
{
  memset(o, 0, sizeof *o);
  o->content_format = -1;
  o->accept = -1;
  o->max_retransmit = -1;
}

/* --- values --- */

struct perr {
  char *buf;
  size_t cap;
};

static int fail(struct perr *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct perr *e, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->buf, e->cap, fmt, ap);
  va_end(ap);
  return -1;
}

static int hexval(int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes hex digits (an optional 0x first) into out. Returns the number
 * of bytes, or -1 for an odd count, a non-hex digit, or more than cap. */
static int unhex(const char *s, uint8_t *out, size_t cap)
{
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
    s += 2;
  size_t n = strlen(s);
  if (n % 2 || n / 2 > cap)
    return -1;
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return (int)(n / 2);
}

/* Reads a whole decimal number; false for anything else. */
static bool whole(const char *s, unsigned long long *out)
{
  if (*s < '0' || *s > '9')
    return false;
  errno = 0;
  char *end;
  *out = strtoull(s, &end, 10);
  return errno == 0 && *end == '\0';
}

/* Reads -O NUM,VALUE into o->opts. */
static int set_option(struct cli_opts *o, const char *name, const char *v,
                      struct perr *e)
{
  if (o->nopts == CLI_MAX_OPTS)
    return fail(e, "%s: more than %d options", name, CLI_MAX_OPTS);
  const char *comma = strchr(v, ',');
  size_t nlen = comma ? (size_t)(comma - v) : strlen(v);
  char num_s[64];
  if (nlen == 0 || nlen >= sizeof num_s)
    return fail(e, "%s: '%s' is not NUM,VALUE", name, v);
  memcpy(num_s, v, nlen);
  num_s[nlen] = '\0';
  unsigned long long num;
  const struct ck_optdef *def;
  if (whole(num_s, &num)) {
    if (num > 65535)
      return fail(e, "%s: option number %s is over 65535", name, num_s);
    def = ck_opt_def((uint16_t)num);
  } else {
    def = ck_opt_def_by_name(num_s);
    if (!def)
      return fail(e,
                  "%s: '%s' is neither an option number nor a known "
                  "option name",
                  name, num_s);
    num = def->num;
  }
  const char *val = comma ? comma + 1 : "";
  uint8_t *dst = o->arena + o->arena_used;
  size_t room = sizeof o->arena - o->arena_used;
  size_t len;
  if (val[0] == '0' && (val[1] == 'x' || val[1] == 'X')) {
    int n = unhex(val, dst, room);
    if (n < 0)
      return fail(e, "%s: '%s' is not an even number of hex digits after 0x",
                  name, val);
    len = (size_t)n;
  } else if (def && def->fmt == CK_OPTFMT_UINT && val[0]) {
    unsigned long long u;
    if (!whole(val, &u) || u > UINT32_MAX)
      return fail(e, "%s: %s takes a number from 0 to 4294967295, not '%s'",
                  name, def->name, val);
    uint8_t b[4];
    len = ck_opt_uint_encode((uint32_t)u, b);
    if (len > room)
      return fail(e, "%s: options too long in all", name);
    memcpy(dst, b, len);
  } else {
    len = strlen(val);
    if (len > room)
      return fail(e, "%s: options too long in all", name);
    memcpy(dst, val, len);
  }
  if (def && !ck_opt_len_ok(def->num, len))
    return fail(e, "%s: %s takes %u to %u bytes, not %zu", name, def->name,
                def->min_len, def->max_len, len);
  o->opts[o->nopts++] =
      (struct ck_opt){.num = (uint16_t)num, .len = (uint16_t)len, .val = dst};
  o->arena_used += len;
  return 0;
}

static int set_value(struct cli_opts *o, const struct cli_optdef *d,
                     const char *name, const char *v, struct perr *e)
{
  char *field = (char *)o + d->off;
  unsigned long long u;
  switch (d->kind) {
  case K_FLAG:
    *(bool *)field = true;
    return 0;
  case K_STR:
    *(const char **)field = v;
    return 0;
  case K_CF: {
    uint16_t cf;
    if (ck_cf_parse(v, &cf) < 0)
      return fail(e,
                  "%s: '%s' is not a content format (a name such as "
                  "json or application/cbor, or a number)",
                  name, v);
    *(int *)field = cf;
    return 0;
  }
  case K_OPTION:
    return set_option(o, name, v, e);
  case K_TOKEN: {
    int n = unhex(v, o->token, sizeof o->token);
    if (n < 0)
      return fail(e, "%s: '%s' is not a token of 0 to 8 bytes in hex", name, v);
    o->token_len = (size_t)n;
    o->has_token = true;
    return 0;
  }
  case K_BLOCK:
    if (!whole(v, &u) || u > 1024 || ck_block_szx((size_t)u) < 0)
      return fail(e, "%s: '%s' is not a power of two from 16 to 1024", name, v);
    *(uint32_t *)field = (uint32_t)u;
    return 0;
  case K_U32:
  case K_I32:
    if (!whole(v, &u) || (double)u < d->min || (double)u > d->max)
      return fail(e, "%s: '%s' is not a whole number from %.0f to %.0f", name,
                  v, d->min, d->max);
    if (d->kind == K_U32)
      *(uint32_t *)field = (uint32_t)u;
    else
      *(int32_t *)field = (int32_t)u;
    return 0;
  case K_DOUBLE: {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < d->min || x > d->max)
      return fail(e, "%s: '%s' is not a number from %g to %g", name, v, d->min,
                  d->max);
    *(double *)field = x;
    return 0;
  }
  }
  return fail(e, "%s: unknown option kind", name);
}

static const struct cli_optdef *by_long(const char *s, size_t len)
{
  for (size_t i = 0; i < NOPTIONS; i++)
    if (strlen(options[i].long_name) == len &&
        strncmp(options[i].long_name, s, len) == 0)
      return &options[i];
  return NULL;
}

static const struct cli_optdef *by_short(char c)
{
  for (size_t i = 0; i < NOPTIONS; i++)
    if (options[i].short_name == c)
      return &options[i];
  return NULL;
}

static int positional(struct cli_opts *o, const char *a, struct perr *e)
{
  if (!o->cmd) {
    o->cmd = cli_cmd_find(a);
    if (!o->cmd)
      return fail(e,
                  "'%s' is not a command (get, post, put, delete, fetch, "
                  "patch, ipatch, observe, discover, ping, shell)",
                  a);
    return 0;
  }
  if (!o->uri) {
    o->uri = a;
    return 0;
  }
  return fail(e, "unexpected argument '%s' after the URI", a);
}

int cli_parse(struct cli_opts *o, int argc, char **argv, int first, char *err,
              size_t errcap)
{
  struct perr e = {err, errcap};
  bool only_words = false;
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    if (only_words || a[0] != '-' || a[1] == '\0') {
      if (positional(o, a, &e) < 0)
        return -1;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_words = true;
      continue;
    }
    if (a[1] == '-') {
      const char *eq = strchr(a + 2, '=');
      size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
      const struct cli_optdef *d = by_long(a + 2, len);
      char name[64];
      snprintf(name, sizeof name, "--%.*s", (int)len, a + 2);
      if (!d)
        return fail(&e, "%s: unknown option; try 'coap --help'", name);
      const char *v = NULL;
      if (d->arg) {
        if (eq)
          v = eq + 1;
        else if (i + 1 < argc)
          v = argv[++i];
        else
          return fail(&e, "%s needs a value (%s)", name, d->arg);
      } else if (eq) {
        return fail(&e, "%s takes no value", name);
      }
      o->given |= 1ull << (d - options);
      if (set_value(o, d, name, v, &e) < 0)
        return -1;
      continue;
    }
    /* A cluster of short options; the first that takes a value takes
     * the rest of the word, or the next word. */
    for (const char *p = a + 1; *p; p++) {
      const struct cli_optdef *d = by_short(*p);
      char name[3] = {'-', *p, '\0'};
      if (!d)
        return fail(&e, "%s: unknown option; try 'coap --help'", name);
      o->given |= 1ull << (d - options);
      if (!d->arg) {
        if (set_value(o, d, name, NULL, &e) < 0)
          return -1;
        continue;
      }
      const char *v;
      if (p[1])
        v = p + 1;
      else if (i + 1 < argc)
        v = argv[++i];
      else
        return fail(&e, "%s needs a value (%s)", name, d->arg);
      if (set_value(o, d, name, v, &e) < 0)
        return -1;
      break;
    }
  }
  return 0;
}

/* The first DTLS option given, or NULL. */
/* The DTLS options go in pairs (SPEC: --psk KEY --identity ID, --cert
 * with --key); a PSK is text or 0x-hex of 1 to 64 bytes. */
static int check_dtls(struct perr *e, const struct cli_opts *o)
{
  if (!o->psk != !o->identity)
    return fail(e, "--%s needs --%s", o->psk ? "psk" : "identity",
                o->psk ? "identity" : "psk");
  if (!o->cert != !o->key)
    return fail(e, "--%s needs --%s", o->cert ? "cert" : "key",
                o->cert ? "key" : "cert");
  if (o->psk) {
    size_t n = strlen(o->psk);
    bool hex = n > 2 && (strncmp(o->psk, "0x", 2) == 0 ||
                         strncmp(o->psk, "0X", 2) == 0);
    if (hex && ((n - 2) % 2 || strspn(o->psk + 2, "0123456789abcdefABCDEF") !=
                                 n - 2))
      return fail(e, "--psk: '%s' is not hex", o->psk);
    if (n == 0 || (hex ? (n - 2) / 2 : n) > 64)
      return fail(e, "--psk: a key is 1 to 64 bytes");
  }
  return 0;
}

int cli_check(const struct cli_opts *o, char *err, size_t errcap)
{
  struct perr e = {err, errcap};
  if (o->help || o->version || o->man)
    return 0;
  if (!o->cmd)
    return fail(&e, "no command (get, post, put, delete, fetch, patch, "
                    "ipatch, observe, discover, ping, shell); try "
                    "'coap --help'");
  for (size_t i = 0; i < NOPTIONS; i++)
    if ((o->given >> i & 1) && !(options[i].cmds & CMD_BIT(o->cmd->id)))
      return fail(&e, "--%s does not apply to %s", options[i].long_name,
                  o->cmd->name);
  if (o->cmd->id == CMD_SHELL)
    return 0;
  bool uri_optional = o->cmd->id == CMD_DISCOVER;
  if (!o->uri && !uri_optional)
    return fail(&e, "%s needs a URI: coap %s %s", o->cmd->name, o->cmd->name,
                o->cmd->args);
  if (o->uri && o->group)
    return fail(&e, "--group: give a URI or --group, not both");
  if (o->data && o->data_file)
    return fail(&e, "--data-file: give --data or --data-file, not both");
  if (o->uri) {
    struct ck_uri u;
    int rc = ck_uri_parse(&u, o->uri, strlen(o->uri));
    if (rc < 0)
      return fail(&e, "'%s': %s", o->uri, ck_strerror(rc));
  }
  return check_dtls(&e, o);
}
