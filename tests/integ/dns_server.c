/* A DNS server for integration tests: tests/unit/dns_server.h as a
 * program, so that a shell script can give `coap` (through
 * CK_DNS_SERVERS) names with several addresses. It serves on 127.0.0.1
 * with an ephemeral port, prints "port N" once it is ready, and runs
 * until SIGTERM or SIGINT. With --silent IP:PORT it also holds a UDP
 * socket there that reads every datagram and never answers: a server
 * address that stays silent.
 *
 * Usage: dns_server [--silent IPV4:PORT] NAME=ADDR[,ADDR...] ...
 *   (an ADDR with a colon is an AAAA record, any other an A record) */
#include <signal.h>

#include "../unit/dns_server.h"

enum { MAX_NAMES = 32 };

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv)
{
  static struct dns_name names[MAX_NAMES + 1];
  int silent = -1, first = 1;
  if (argc > 2 && !strcmp(argv[1], "--silent")) {
    char *colon = strrchr(argv[2], ':');
    uint16_t port = colon ? (uint16_t)atoi(colon + 1) : 0;
    if (colon)
      *colon = '\0';
    if (!port || (silent = udp_bound_at(argv[2], &port)) < 0) {
      fprintf(stderr, "dns_server: --silent: cannot bind %s\n", argv[2]);
      return 1;
    }
    first = 3;
  }
  if (argc - first < 1 || argc - first > MAX_NAMES) {
    fprintf(stderr, "usage: %s [--silent IPV4:PORT] NAME=ADDR[,ADDR...] ...\n",
            argv[0]);
    return 2;
  }
  for (int i = first; i < argc; i++) {
    struct dns_name *d = &names[i - first];
    char *eq = strchr(argv[i], '=');
    if (!eq) {
      fprintf(stderr, "dns_server: '%s' has no '='\n", argv[i]);
      return 2;
    }
    *eq = '\0';
    d->name = argv[i];
    unsigned na = 0, n6 = 0;
    for (char *ip = eq + 1; ip && *ip;) {
      char *comma = strchr(ip, ',');
      if (comma)
        *comma = '\0';
      if (strchr(ip, ':') && n6 < DNS_MAX_RR)
        d->aaaa[n6++] = ip;
      else if (!strchr(ip, ':') && na < DNS_MAX_RR)
        d->a[na++] = ip;
      ip = comma ? comma + 1 : NULL;
    }
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  if (dns_start(names) < 0) {
    perror("dns_server");
    return 1;
  }
  printf("port %u\n", dns.port);
  fflush(stdout);
  /* Bounded by the signal; the server's own thread does the work. */
  while (!stop) {
    uint8_t buf[2048];
    while (silent >= 0 && recv(silent, buf, sizeof buf, MSG_DONTWAIT) > 0)
      ;
    usleep(20000);
  }
  dns_stop();
  if (silent >= 0)
    close(silent);
  return 0;
}
