/* libFuzzer target for coapd's configuration file parser (coapd/config.c).
 *
 * The input is the file: it is written into a memfd, and coapd reads it
 * as `coapd --config /proc/self/fd/N`, the way the daemon would. Host
 * names in listen, dtls_listen and metrics_listen are not looked up
 * (coapd_config_resolve = false): a fuzzer must not wait on DNS, and the
 * names' syntax is still checked before the lookup would happen.
 *
 * Whatever the file says, the parser answers RUN or USAGE and leaves a
 * configuration within its caps: at most COAPD_MAX_LISTEN addresses of
 * each kind and every string NUL-terminated inside its array. Its error
 * lines go to /dev/null while it runs, so the fuzzer's own output stays
 * readable. The file also builds with gcc, linked with replay_main.c, to
 * replay the corpus under CTest.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
  if (!ok)
    abort();
}

static bool terminated(const char *s, size_t cap)
{
  return memchr(s, '\0', cap) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int fd = -1, devnull = -1, saved = -1;
  static char path[64];
  static struct coapd_config c; /* large: not on the stack */
  if (fd < 0) {
    fd = memfd_create("coapd.conf", MFD_CLOEXEC);
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    saved = dup(2);
    check(fd >= 0 && devnull >= 0 && saved >= 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    coapd_config_resolve = false;
  }
  check(ftruncate(fd, 0) == 0);
  for (size_t off = 0; off < size;) {
    ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
    check(n > 0);
    off += (size_t)n;
  }
  char *argv[] = {"coapd", "--config", path, NULL};
  fflush(stderr);
  dup2(devnull, 2);
  int rc = coapd_config_load(&c, 3, argv);
  fflush(stderr);
  dup2(saved, 2);
  check(rc == COAPD_CONFIG_RUN || rc == COAPD_CONFIG_USAGE);
  check(c.nlisten <= COAPD_MAX_LISTEN);
  check(c.ndtls_listen <= COAPD_MAX_LISTEN);
  check(terminated(c.data_dir, sizeof c.data_dir));
  check(terminated(c.bus_url, sizeof c.bus_url));
  check(terminated(c.mqtt_client_id, sizeof c.mqtt_client_id));
  check(terminated(c.mqtt_cafile, sizeof c.mqtt_cafile));
  check(terminated(c.dtls_cert, sizeof c.dtls_cert));
  check(terminated(c.dtls_key, sizeof c.dtls_key));
  check(terminated(c.dtls_ca, sizeof c.dtls_ca));
  /* A file the parser accepts leaves somewhere to listen. */
  check(rc != COAPD_CONFIG_RUN || c.nlisten >= 1);
  return 0;
}
