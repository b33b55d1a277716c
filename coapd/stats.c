/* `coapd stats`: the counters of a running coapd, for an operator at a
 * shell (SPEC: `coapd stats [--metrics ADDR:PORT]`).
 *
 * The running daemon serves them at /metrics (--metrics-listen) and names
 * its address in DATA_DIR/metrics.addr; this command reads that file
 * unless --metrics says where to look, fetches /metrics with one
 * HTTP/1.0 GET over a plain TCP socket (the daemon closes the connection
 * after the answer, so the body runs to the end of the stream) and prints
 * the body. Every wait is bounded: the whole exchange has 5 seconds, and
 * the answer a cap. Exit status: 0, 1 when nothing could be fetched, 2
 * for a bad command line; a failure is one line on stderr.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "metrics.h"

/* Caps: the whole exchange, and the answer's bytes. */
enum { FETCH_MS = 5000, ANSWER_MAX = 16 << 20 };

static void usage(void)
{
  printf("Usage: coapd stats [--metrics ADDR:PORT] [--data-dir DIR]\n"
         "Prints the metrics of a running coapd, fetched from ADDR:PORT or\n"
         "from the address its data directory names (DIR/metrics.addr,\n"
         "written when it runs with --metrics-listen; DIR: %s).\n"
         "Exit status: 0, 1 when they cannot be fetched, 2 for a bad\n"
         "command line.\n",
         COAPD_DATA_DIR);
}

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline. Returns 1 when ready, 0 on
 * timeout, -1 on error (errno set). */
static int wait_fd(int fd, short events, long long deadline)
{
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0)
      return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, (int)left);
    if (n > 0)
      return 1;
    if (n == 0)
      return 0;
    if (errno != EINTR)
      return -1;
  }
}

/* Splits "HOST:PORT" or "[V6]:PORT" into host and port. */
static int split(const char *s, char *host, size_t hcap, char *port,
                 size_t pcap)
{
  const char *colon = strrchr(s, ':');
  if (!colon || colon[1] == '\0' || strlen(colon + 1) >= pcap ||
      strspn(colon + 1, "0123456789") != strlen(colon + 1))
    return -1;
  const char *h = s;
  size_t hl = (size_t)(colon - s);
  if (s[0] == '[') {
    if (hl < 2 || s[hl - 1] != ']')
      return -1;
    h++;
    hl -= 2;
  } else if (memchr(s, ':', hl)) {
    return -1; /* an IPv6 address needs its brackets */
  }
  if (hl == 0 || hl >= hcap)
    return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  memcpy(port, colon + 1, strlen(colon + 1) + 1);
  return 0;
}

/* Connects to one of addr's addresses before the deadline. Returns the
 * socket, or -1 with the reason in why. */
static int connect_to(const char *addr, long long deadline, char *why,
                      size_t cap)
{
  char host[256], port[8];
  if (split(addr, host, sizeof host, port, sizeof port) < 0) {
    snprintf(why, cap, "'%s' is not ADDR:PORT", addr);
    return -1;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    snprintf(why, cap, "%s: %s", host,
             rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    return -1;
  }
  int fd = -1, err = ETIMEDOUT;
  for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family,
                ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
      break;
    err = errno;
    if (err == EINPROGRESS) {
      int r = wait_fd(fd, POLLOUT, deadline);
      socklen_t len = sizeof err;
      if (r > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
          err == 0)
        break;
      if (r == 0)
        err = ETIMEDOUT;
      else if (r < 0)
        err = errno;
    }
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    snprintf(why, cap, "cannot connect to %s: %s", addr, strerror(err));
  return fd;
}

/* Sends the GET and reads the whole answer into *out (NUL-terminated).
 * Returns its length, or -1 with the reason in why. */
static long fetch(int fd, const char *addr, long long deadline, char **out,
                  char *why, size_t cap)
{
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET /metrics HTTP/1.0\r\nHost: %s\r\n"
                   "User-Agent: coapd-stats/%s\r\n\r\n",
                   addr, COAPD_VERSION);
  if (n < 0 || (size_t)n >= sizeof req) {
    snprintf(why, cap, "address too long");
    return -1;
  }
  for (size_t sent = 0; sent < (size_t)n;) {
    if (wait_fd(fd, POLLOUT, deadline) <= 0) {
      snprintf(why, cap, "%s: sending the request timed out", addr);
      return -1;
    }
    ssize_t k = send(fd, req + sent, (size_t)n - sent, MSG_NOSIGNAL);
    if (k < 0 && errno != EAGAIN && errno != EINTR) {
      snprintf(why, cap, "%s: %s", addr, strerror(errno));
      return -1;
    }
    if (k > 0)
      sent += (size_t)k;
  }
  size_t len = 0, bcap = 65536;
  char *buf = malloc(bcap);
  for (;;) {
    if (!buf) {
      snprintf(why, cap, "out of memory");
      return -1;
    }
    if (len + 1 == bcap) {
      if (bcap >= ANSWER_MAX) {
        snprintf(why, cap, "%s: answer longer than %d bytes", addr,
                 ANSWER_MAX);
        free(buf);
        return -1;
      }
      char *b = realloc(buf, bcap * 2);
      if (!b)
        free(buf);
      buf = b;
      bcap *= 2;
      continue;
    }
    int r = wait_fd(fd, POLLIN, deadline);
    if (r <= 0) {
      snprintf(why, cap, "%s: %s", addr,
               r == 0 ? "no complete answer within 5 s" : strerror(errno));
      free(buf);
      return -1;
    }
    ssize_t k = recv(fd, buf + len, bcap - 1 - len, 0);
    if (k == 0)
      break;
    if (k < 0) {
      if (errno == EAGAIN || errno == EINTR)
        continue;
      snprintf(why, cap, "%s: %s", addr, strerror(errno));
      free(buf);
      return -1;
    }
    len += (size_t)k;
  }
  buf[len] = '\0';
  *out = buf;
  return (long)len;
}

/* Reads DIR/metrics.addr into addr. Returns 0, or -1 with why. */
static int read_addr(const char *dir, char *addr, size_t acap, char *why,
                     size_t cap)
{
  char path[COAPD_PATH_MAX + 16];
  int n = snprintf(path, sizeof path, "%s/metrics.addr", dir);
  if (n < 0 || (size_t)n >= sizeof path) {
    snprintf(why, cap, "data directory path too long");
    return -1;
  }
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT)
      snprintf(why, cap,
               "no running coapd serves metrics here (no %.200s); start "
               "it with --metrics-listen",
               path);
    else
      snprintf(why, cap, "%.200s: %s", path, strerror(errno));
    return -1;
  }
  bool ok = fgets(addr, (int)acap, f) != NULL;
  fclose(f);
  addr[ok ? strcspn(addr, "\r\n") : 0] = '\0';
  if (!addr[0]) {
    snprintf(why, cap, "%.200s is empty", path);
    return -1;
  }
  return 0;
}

int stats_main(int argc, char **argv)
{
  const char *metrics = NULL, *dir = COAPD_DATA_DIR;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **field = NULL;
    size_t len = strcspn(a, "=");
    if (strcmp(a, "--help") == 0) {
      usage();
      return 0;
    }
    if (len == 9 && strncmp(a, "--metrics", len) == 0)
      field = &metrics;
    else if (len == 10 && strncmp(a, "--data-dir", len) == 0)
      field = &dir;
    if (!field) {
      fprintf(stderr, "coapd stats: unknown argument '%s' (try --help)\n",
              a);
      return 2;
    }
    if (a[len] == '=') {
      *field = a + len + 1;
    } else if (i + 1 < argc) {
      *field = argv[++i];
    } else {
      fprintf(stderr, "coapd stats: option '%.*s' needs a value\n",
              (int)len, a);
      return 2;
    }
    if (!**field) {
      fprintf(stderr, "coapd stats: option '%.*s' needs a value\n",
              (int)len, a);
      return 2;
    }
  }
  char host[256], port[8], addr[CK_ADDR_STRLEN + 8], why[512];
  if (metrics && split(metrics, host, sizeof host, port, sizeof port) < 0) {
    fprintf(stderr, "coapd stats: --metrics: '%s' is not ADDR:PORT\n",
            metrics);
    return 2;
  }
  if (!metrics) {
    if (read_addr(dir, addr, sizeof addr, why, sizeof why) < 0) {
      fprintf(stderr, "coapd stats: %s\n", why);
      return 1;
    }
    metrics = addr;
  }
  long long deadline = now_ms() + FETCH_MS;
  int fd = connect_to(metrics, deadline, why, sizeof why);
  if (fd < 0) {
    fprintf(stderr, "coapd stats: %s\n", why);
    return 1;
  }
  char *ans = NULL;
  long len = fetch(fd, metrics, deadline, &ans, why, sizeof why);
  close(fd);
  if (len < 0) {
    fprintf(stderr, "coapd stats: %s\n", why);
    return 1;
  }
  /* "HTTP/1.x 200 OK\r\n...\r\n\r\nbody" */
  char *body = strstr(ans, "\r\n\r\n");
  size_t line = strcspn(ans, "\r\n");
  if (strncmp(ans, "HTTP/1.", 7) != 0 || line < 12 ||
      strncmp(ans + 8, " 200", 4) != 0 || !body) {
    fprintf(stderr, "coapd stats: %s answered '%.*s', not 200 OK\n", metrics,
            (int)(line > 80 ? 80 : line), ans);
    free(ans);
    return 1;
  }
  body += 4;
  size_t blen = (size_t)len - (size_t)(body - ans);
  bool ok = fwrite(body, 1, blen, stdout) == blen && fflush(stdout) == 0;
  free(ans);
  if (!ok) {
    fprintf(stderr, "coapd stats: cannot write the output: %s\n",
            strerror(errno));
    return 1;
  }
  return 0;
}
