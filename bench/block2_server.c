/* A library server with one large resource, for the Block2 benchmark
 * (bench/block2_compare.sh) and the integration test of large
 * representations (tests/integ/block2_peers.sh).
 *
 *   coap-block2-server SIZE [FILE]
 *
 * serves on 127.0.0.1 (a port the kernel picks, printed as "port N"):
 *   GET  /big     SIZE bytes of a pattern, given by reference
 *                 (ck_response_payload_ref), so the library never copies
 *                 it; FILE, when given, receives the same bytes
 *   GET  /calls   how often /big's handler ran, and how many of its
 *                 payloads the library still holds ("calls held")
 *   POST /change  a new version of /big (another pattern): a transfer
 *                 under way then sees a new ETag (RFC 7959 §2.4)
 *   POST /echo    the request body back (RFC 7959 §3.2 when large)
 * until SIGTERM or SIGINT. Built with -DCK_BLOCK2_COPY it gives /big
 * with ck_response_payload() instead, which is what a library without
 * payloads by reference offers (the "before" of the benchmark).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coapkit/coapkit.h"

struct version {
  unsigned refs; /* the current version holds one */
  size_t len;
  uint8_t data[];
};

static struct version *cur;
static unsigned seq;
static unsigned long calls;
static unsigned long held;
static struct ck_ctx *ctx;
static struct ck_resource *big;

static struct version *make(size_t len, unsigned s)
{
  struct version *v = malloc(sizeof *v + len);
  if (!v)
    return NULL;
  v->refs = 1;
  v->len = len;
  uint32_t x = 2463534242u + s;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v->data[i] = (uint8_t)x;
  }
  return v;
}

static void unref(void *arg)
{
  struct version *v = arg;
  if (--v->refs == 0)
    free(v);
}

static void release(void *arg)
{
  held--;
  unref(arg);
}

static void h_big(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  calls++;
  ck_response_opt_uint(resp, CK_OPT_CONTENT_FORMAT, CK_CF_OCTET_STREAM);
#ifdef CK_BLOCK2_COPY
  ck_response_payload(resp, cur->data, cur->len);
#else
  cur->refs++;
  held++;
  ck_response_payload_ref(resp, cur->data, cur->len, release, cur);
#endif
}

static void h_calls(struct ck_resource *r, const struct ck_request *req,
                    struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%lu %lu", calls, held);
  ck_response_content(resp, CK_CF_TEXT_PLAIN, buf, (size_t)n);
}

static void h_change(struct ck_resource *r, const struct ck_request *req,
                     struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  struct version *v = make(cur->len, ++seq);
  if (!v) {
    ck_response_code(resp, CK_INTERNAL_SERVER_ERROR);
    return;
  }
  unref(cur);
  cur = v;
  ck_resource_changed(big, 0);
}

static void h_echo(struct ck_resource *r, const struct ck_request *req,
                   struct ck_response *resp, void *u)
{
  (void)r;
  (void)u;
  size_t n;
  const uint8_t *p = ck_request_payload(req, &n);
  ck_response_payload(resp, p, n);
}

static void on_signal(int sig)
{
  (void)sig;
  static const char b = 1;
  if (write(ck_stop_fd(ctx), &b, 1) < 0) {
    /* nothing to do in a signal handler */
  }
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: coap-block2-server SIZE [FILE]\n");
    return 2;
  }
  size_t size = strtoull(argv[1], NULL, 10);
  cur = make(size, 0);
  if (!cur)
    return 1;
  if (argc > 2) {
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(cur->data, 1, size, f) != size || fclose(f) != 0) {
      perror(argv[2]);
      return 1;
    }
  }
  struct ck_addr a;
  struct ck_resource *r;
  if (ck_ctx_new(NULL, &ctx) < 0 || ck_addr_parse(&a, "127.0.0.1:0", 0) < 0 ||
      ck_ctx_listen(ctx, &a) < 0 || ck_ctx_local_addr(ctx, 0, &a) < 0)
    return 1;
  ck_resource_new(ctx, "big", &big);
  ck_resource_handler(big, CK_GET, h_big, NULL);
  ck_resource_new(ctx, "calls", &r);
  ck_resource_handler(r, CK_GET, h_calls, NULL);
  ck_resource_new(ctx, "change", &r);
  ck_resource_handler(r, CK_POST, h_change, NULL);
  ck_resource_new(ctx, "echo", &r);
  ck_resource_handler(r, CK_POST, h_echo, NULL);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  printf("port %u\n", ck_addr_port(&a));
  fflush(stdout);
  int rc = ck_run(ctx);
  ck_ctx_free(ctx);
  unref(cur);
  return rc < 0 ? 1 : 0;
}
