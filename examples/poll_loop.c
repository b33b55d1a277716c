/* coapkit inside a program that owns its loop: here a plain poll() loop,
 * the same for select(), libevent or a GUI toolkit's main loop.
 *
 * The program reads commands from its standard input, one per line ("get"
 * sends a GET to URI and prints the answer), and serves /lines, which
 * counts the lines read so far, on a UDP port it prints at the start. It
 * uses only the public API: it watches ck_ctx_fd() beside its own
 * descriptor, sleeps at most ck_ctx_timeout() milliseconds, and calls
 * ck_ctx_process(ctx, 0) when woken. A request started from its own
 * code leaves at once (ctx.h's sending contract), so nothing waits for
 * the next wake-up. At the end of input it waits for the answers still
 * due and exits.
 *
 *   ./example_poll_loop coap://127.0.0.1/time
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <coapkit/coapkit.h>

static unsigned lines, pending;

static void lines_get(struct ck_resource *r, const struct ck_request *req,
                      struct ck_response *resp, void *user)
{
  (void)r;
  (void)req;
  (void)user;
  char text[32];
  int n = snprintf(text, sizeof text, "%u", lines);
  ck_response_content(resp, CK_CF_TEXT_PLAIN, text, (size_t)n);
}

static void on_answer(struct ck_call *call, const struct ck_client_response *r,
                      void *user)
{
  (void)call;
  (void)user;
  if (!r->final)
    return;
  pending--;
  if (r->err) {
    printf("error: %s\n", ck_strerror(r->err));
  } else {
    char code[40];
    ck_code_format(code, sizeof code, r->code);
    printf("%s %.*s\n", code, (int)r->body_len, (const char *)r->body);
  }
  fflush(stdout);
}

static void command(struct ck_client *client, const char *uri, const char *line)
{
  lines++;
  if (strncmp(line, "get", 3) != 0)
    return;
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  int rc = ck_client_send(client, &req, on_answer, NULL, NULL);
  if (rc < 0)
    printf("error: %s\n", ck_strerror(rc));
  else
    pending++;
}

/* Reads what stdin has and runs each complete line; returns false at the
 * end of input. */
static bool read_commands(struct ck_client *client, const char *uri)
{
  static char buf[4096];
  static size_t used;
  ssize_t n = read(STDIN_FILENO, buf + used, sizeof buf - 1 - used);
  if (n <= 0)
    return n < 0 && errno == EINTR;
  used += (size_t)n;
  char *start = buf, *nl;
  while ((nl = memchr(start, '\n', used - (size_t)(start - buf))) != NULL) {
    *nl = '\0';
    command(client, uri, start);
    start = nl + 1;
  }
  used -= (size_t)(start - buf);
  memmove(buf, start, used);
  if (used == sizeof buf - 1)
    used = 0; /* a line too long for us: drop it */
  return true;
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: example_poll_loop URI\n");
    return 2;
  }
  struct ck_ctx *ctx;
  struct ck_client *client;
  struct ck_resource *res;
  struct ck_addr addr;
  if (ck_ctx_new(NULL, &ctx) < 0 || ck_client_new(ctx, NULL, &client) < 0)
    return 1;
  if (ck_addr_parse(&addr, "127.0.0.1:0", 0) < 0 ||
      ck_ctx_listen(ctx, &addr) < 0 || ck_ctx_local_addr(ctx, 0, &addr) < 0 ||
      ck_resource_new(ctx, "lines", &res) < 0 ||
      ck_resource_handler(res, CK_GET, lines_get, NULL) < 0) {
    fprintf(stderr, "cannot serve: %s\n", strerror(errno));
    return 1;
  }
  char name[CK_ADDR_STRLEN];
  ck_addr_format(&addr, name, sizeof name);
  printf("serving coap://%s/lines\n", name);
  fflush(stdout);

  bool input = true;
  while (input || pending > 0) {
    struct pollfd fds[2] = {
        {.fd = ck_ctx_fd(ctx), .events = POLLIN},
        {.fd = input ? STDIN_FILENO : -1, .events = POLLIN},
    };
    if (poll(fds, 2, ck_ctx_timeout(ctx)) < 0 && errno != EINTR) {
      perror("poll");
      break;
    }
    if (fds[1].revents)
      input = read_commands(client, argv[1]);
    /* Also when only the timeout ran out: the library's timers may be
     * due (retransmissions, the end of a call). */
    if (ck_ctx_process(ctx, 0) < 0)
      break;
  }
  ck_ctx_free(ctx);
  return 0;
}
