/* A coaps:// client on the public API that keeps its client (and so its
 * DTLS session) across requests, for dtls_session.sh. Each line read
 * from stdin is a command; each result is one line on stdout:
 *
 *   get              GET URI: "get 2.05 BODY" or "get error NAME"
 *   peer             the last answer's server: "peer MODE IDENTITY"
 *   disconnect       ck_client_disconnect(c, NULL): "disconnect 0"
 *   rekey KEY        ck_client_disconnect(c, cfg with KEY): "rekey 0"
 *   quit
 *
 * Usage: integ_dtls_client URI IDENTITY KEY | URI --rpk KEYFILE
 * (short CoAP timers: an ACK timeout of 500 ms, so that a lost session
 * shows within seconds) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <coapkit/coapkit.h>

int main(int argc, char **argv)
{
  if (argc != 4) {
    fprintf(stderr, "usage: integ_dtls_client URI IDENTITY KEY | "
                    "URI --rpk KEYFILE\n");
    return 2;
  }
  static char key[128];
  struct ck_dtls_config dc = {0};
  if (!strcmp(argv[2], "--rpk")) {
    dc.rpk_key_file = argv[3];
  } else {
    snprintf(key, sizeof key, "%s", argv[3]);
    dc.psk_identity = argv[2];
    dc.psk = (const uint8_t *)key;
    dc.psk_len = strlen(key);
  }
  struct ck_client_config cc = {.dtls = &dc};
  cc.params.ack_timeout_ms = 500;
  cc.params.ack_random_factor = 1.0f;
  struct ck_ctx *ctx;
  struct ck_client *c;
  if (ck_ctx_new(NULL, &ctx) < 0 || ck_client_new(ctx, &cc, &c) < 0)
    return 1;
  static const char *modes[] = {"none", "psk", "cert", "rpk"};
  int security = 0;
  char peer[130] = "";
  char line[256];
  /* Bounded: the script sends a handful of commands. */
  for (int n = 0; n < 100 && fgets(line, sizeof line, stdin); n++) {
    line[strcspn(line, "\n")] = '\0';
    if (!strcmp(line, "quit"))
      break;
    if (!strcmp(line, "get")) {
      struct ck_client_request req;
      struct ck_client_result res;
      ck_client_request_init(&req, CK_GET, argv[1]);
      int rc = ck_client_do(c, &req, &res);
      if (rc < 0)
        printf("get error %s\n", ck_err_name(rc));
      else
        printf("get %d.%02d %.*s\n", res.code >> 5, res.code & 31,
               (int)res.body_len, (const char *)res.body);
      if (rc == 0) {
        security = res.security >= 0 && res.security < 4 ? res.security : 0;
        snprintf(peer, sizeof peer, "%s", res.peer_identity);
      }
      ck_client_result_free(&res);
    } else if (!strcmp(line, "peer")) {
      printf("peer %s %s\n", modes[security], peer);
    } else if (!strcmp(line, "disconnect")) {
      printf("disconnect %d\n", ck_client_disconnect(c, NULL));
    } else if (!strncmp(line, "rekey ", 6)) {
      /* A key longer than the buffer is cut: the test's keys are short. */
      snprintf(key, sizeof key, "%.*s", (int)(sizeof key - 1), line + 6);
      dc.psk_len = strlen(key);
      printf("rekey %d\n", ck_client_disconnect(c, &dc));
    } else {
      printf("unknown %s\n", line);
    }
    fflush(stdout);
  }
  ck_client_free(c);
  ck_ctx_free(ctx);
  return 0;
}
