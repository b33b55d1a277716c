/* udp-echo: the ceiling a CoAP server on this machine can reach. It
 * answers every confirmable request with a piggybacked 2.05 carrying the
 * request's Message ID and token and a 12-byte payload (the size of
 * coapd's /hello), with nothing else: no options parsed, no state, no
 * deduplication. Reads with recvmmsg and writes with sendmmsg in batches
 * of 32, like coapd. With THREADS > 1 each thread has its own socket on
 * the same port (SO_REUSEPORT), the kernel spreading peers over them:
 * the ceiling for coapd --workers.
 *
 *   udp-echo ADDR:PORT [THREADS]
 *
 * Runs until SIGTERM or SIGINT. Benchmarks only (bench/compare_servers.sh);
 * loopback in practice. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BATCH = 32, DGRAM = 1500, THREADS_MAX = 64 };

static const char payload[] = "Hello World!";
static volatile sig_atomic_t stop;
static struct sockaddr_in6 bind_to;
static socklen_t bind_len;

static void on_signal(int sig)
{
  (void)sig;
  stop = 1;
}

/* Builds the answer to request req (len bytes) in out; returns its length,
 * or 0 when req is not a confirmable CoAP request. */
static size_t answer(const uint8_t *req, size_t len, uint8_t *out)
{
  if (len < 4 || (req[0] >> 6) != 1 || ((req[0] >> 4) & 3) != 0)
    return 0;
  unsigned tkl = req[0] & 15;
  if (tkl > 8 || len < 4 + tkl || req[1] == 0 || req[1] >= 32)
    return 0;
  out[0] = (uint8_t)(0x60 | tkl); /* version 1, ACK */
  out[1] = 0x45;                  /* 2.05 Content */
  out[2] = req[2];
  out[3] = req[3];
  memcpy(out + 4, req + 4, tkl);
  out[4 + tkl] = 0xff;
  memcpy(out + 5 + tkl, payload, sizeof payload - 1);
  return 5 + tkl + sizeof payload - 1;
}

static void *serve(void *arg)
{
  (void)arg;
  int fd = socket(bind_to.sin6_family, SOCK_DGRAM, 0);
  int one = 1, big = 4 << 20;
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
      bind(fd, (struct sockaddr *)&bind_to, bind_len) < 0) {
    perror("udp-echo: socket");
    exit(1);
  }
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  static __thread uint8_t in[BATCH][DGRAM], out[BATCH][64];
  struct sockaddr_storage from[BATCH];
  struct iovec riov[BATCH], siov[BATCH];
  struct mmsghdr rmsg[BATCH], smsg[BATCH];
  while (!stop) {
    for (int i = 0; i < BATCH; i++) {
      riov[i] = (struct iovec){.iov_base = in[i], .iov_len = DGRAM};
      memset(&rmsg[i], 0, sizeof rmsg[i]);
      rmsg[i].msg_hdr.msg_name = &from[i];
      rmsg[i].msg_hdr.msg_namelen = sizeof from[i];
      rmsg[i].msg_hdr.msg_iov = &riov[i];
      rmsg[i].msg_hdr.msg_iovlen = 1;
    }
    /* Blocks for the first datagram (or the 200 ms timeout, to notice a
     * stop), then takes what else is queued. */
    int n = recvmmsg(fd, rmsg, BATCH, MSG_WAITFORONE, NULL);
    if (n <= 0)
      continue;
    int k = 0;
    for (int i = 0; i < n; i++) {
      size_t len = answer(in[i], rmsg[i].msg_len, out[k]);
      if (!len)
        continue;
      siov[k] = (struct iovec){.iov_base = out[k], .iov_len = len};
      memset(&smsg[k], 0, sizeof smsg[k]);
      smsg[k].msg_hdr.msg_name = &from[i];
      smsg[k].msg_hdr.msg_namelen = rmsg[i].msg_hdr.msg_namelen;
      smsg[k].msg_hdr.msg_iov = &siov[k];
      smsg[k].msg_hdr.msg_iovlen = 1;
      k++;
    }
    for (int off = 0; off < k;) {
      int m = sendmmsg(fd, smsg + off, (unsigned)(k - off), 0);
      if (m <= 0 && errno != EINTR)
        off++; /* lost, like any datagram */
      else if (m > 0)
        off += m;
    }
  }
  close(fd);
  return NULL;
}

static int parse_addr(const char *s)
{
  char host[64];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof host)
    return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = 0;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port <= 0 || port > 65535)
    return -1;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&bind_to;
  memset(&bind_to, 0, sizeof bind_to);
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    bind_len = sizeof *v4;
    return 0;
  }
  char *h = host;
  if (h[0] == '[' && h[strlen(h) - 1] == ']') {
    h[strlen(h) - 1] = 0;
    h++;
  }
  if (inet_pton(AF_INET6, h, &bind_to.sin6_addr) != 1)
    return -1;
  bind_to.sin6_family = AF_INET6;
  bind_to.sin6_port = htons((uint16_t)port);
  bind_len = sizeof bind_to;
  return 0;
}

int main(int argc, char **argv)
{
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  if (argc < 2 || argc > 3 || parse_addr(argv[1]) < 0 || threads < 1 ||
      threads > THREADS_MAX) {
    fprintf(stderr, "udp-echo: usage: udp-echo ADDR:PORT [THREADS 1..%d]\n",
            THREADS_MAX);
    return 2;
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  pthread_t tid[THREADS_MAX];
  for (int i = 0; i < threads; i++)
    if (pthread_create(&tid[i], NULL, serve, NULL) != 0) {
      fprintf(stderr, "udp-echo: cannot start thread %d\n", i);
      return 1;
    }
  for (int i = 0; i < threads; i++)
    pthread_join(tid[i], NULL);
  return 0;
}
