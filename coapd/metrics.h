/* The operator's view: Prometheus text-format metrics.
 *
 * metrics_format() writes the exposition text from the library's,
 * the bus's and the gateway's counters; metrics_http serves it at
 * /metrics over HTTP (libmicrohttpd, driven from the daemon's loop
 * through a library fd watch, so no thread reads counters that the loop
 * writes). `coapd stats` (stats_main) fetches and prints it.
 */
#ifndef COAPD_METRICS_H
#define COAPD_METRICS_H

#include <stddef.h>

#include <coapkit/coapkit.h>

#include "bus.h"
#include "device.h"
#include "pubsub.h"

/* Everything one scrape shows; any pointer may be NULL (its family is
 * left out). */
struct metrics_source {
  const struct ck_ctx *ctx;
  const struct bus *bus;
  const struct pubsub *pubsub;
  const struct device_ep *device;
};

/* Writes the text into buf (NUL-terminated). Returns its length, or
 * -ENOSPC when cap is too small. */
int metrics_format(const struct metrics_source *src, char *buf, size_t cap);

struct metrics_http;

/* Serves /metrics on addr (port 0 picks one) from ctx's loop; src is
 * copied, and what it points to must outlive the server. Writes the
 * address it listens on (ADDR:PORT, a wildcard written as the loopback
 * address) into DATA_DIR/metrics.addr, mode 0600, so that `coapd stats`
 * finds it; a NULL data_dir writes no file. Returns 0 and *out, or -1
 * with one line in err. */
int metrics_http_new(struct ck_ctx *ctx, const struct ck_addr *addr,
                     const struct metrics_source *src, const char *data_dir,
                     struct metrics_http **out, char *err, size_t cap);
/* Stops serving and removes metrics.addr (when it still names this
 * server). A NULL m is ignored. */
void metrics_http_free(struct metrics_http *m);

/* The address bound, port included ("127.0.0.1:9100"), for the log;
 * valid until metrics_http_free(). */
const char *metrics_http_addr(const struct metrics_http *m);

/* `coapd stats [--metrics ADDR:PORT] [--data-dir DIR]`: prints the
 * running instance's metrics. Returns the exit status. */
int stats_main(int argc, char **argv);

#endif
