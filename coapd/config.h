/* coapd's settings: one table (config.c) names every setting once, with
 * its command-line option, its configuration-file key, its type and its
 * range, and drives the parsing of both, --help and the error messages.
 * The command line overrides the file; the file overrides the defaults. */
#ifndef COAPD_CONFIG_H
#define COAPD_CONFIG_H

#include <stdbool.h>

#include <coapkit/coapkit.h>

#include "bus.h"
#include "bus_mqtt.h"
#include "log.h"
#include "pubsub.h"

/* The most listening endpoints; ":PORT" takes two. The longest data
 * directory path, NUL included. */
enum { COAPD_MAX_LISTEN = 16, COAPD_PATH_MAX = 4096 };

/* Where the daemon keeps its data (SPEC: ./coapd-data). */
#define COAPD_DATA_DIR "./coapd-data"

struct coapd_listen {
  struct ck_addr addr;
  /* A wildcard [::] that we add by default: a host without IPv6 gets a
   * warning, not a failure. */
  bool optional;
};

struct coapd_config {
  struct coapd_listen listen[COAPD_MAX_LISTEN];
  unsigned nlisten;
  int listen_source; /* which source set listen[] (internal) */
  bool multicast;
  uint32_t multicast_retry_ms; /* retry of groups not joined, 30000 */
  bool demo;
  enum coapd_log_level log_level;
  struct ck_ctx_config ctx; /* transmission parameters and limits */
  const char *config_path;  /* NULL: no file */
  /* The directory of the daemon's stores (the pub/sub gateway's SQLite
   * database): --data-dir or data_dir, default COAPD_DATA_DIR. */
  char data_dir[COAPD_PATH_MAX];
  /* The pub/sub gateway and the embedded bus; zero fields take their
   * modules' defaults. */
  struct pubsub_config pubsub;
  struct bus_embedded_config bus;
  int unsubscribe_choice; /* 0: 2.05, 1: 2.07 */
  /* --bus or bus: empty for the embedded bus, else the MQTT broker's
   * mqtt:// URL; the MQTT bus's other settings (mqtt_* keys) beside. */
  char bus_url[BUS_MQTT_URL_MAX];
  char mqtt_client_id[128];
  char mqtt_cafile[COAPD_PATH_MAX], mqtt_certfile[COAPD_PATH_MAX],
    mqtt_keyfile[COAPD_PATH_MAX];
  struct bus_mqtt_config mqtt;
  /* --metrics-listen or metrics_listen: where /metrics is served over
   * HTTP; len 0 (the default): nowhere. */
  struct ck_addr metrics_listen;
  /* --dtls-listen (coaps://, port 5684 by default) and the DTLS
   * credentials of the file (dtls.c); empty paths: none. PSKs come from
   * the device registry. */
  struct coapd_listen dtls_listen[COAPD_MAX_LISTEN];
  unsigned ndtls_listen;
  int dtls_listen_source;
  char dtls_cert[COAPD_PATH_MAX], dtls_key[COAPD_PATH_MAX];
  char dtls_ca[COAPD_PATH_MAX];
  bool dtls_rpk; /* dtls_key is presented as a raw public key */
  bool dtls_require_client_cert;
  uint32_t dtls_max_sessions, dtls_idle_s;
};

enum {
  COAPD_CONFIG_RUN = 0,  /* start the daemon */
  COAPD_CONFIG_EXIT = 1, /* --help or --version was answered: exit 0 */
  COAPD_CONFIG_USAGE = 2 /* an error was printed: exit 2 */
};

/* Fills c from the defaults, then the file named by --config, then the
 * rest of the command line. On error prints one line to stderr naming the
 * option, or the file and line, and returns COAPD_CONFIG_USAGE. */
int coapd_config_load(struct coapd_config *c, int argc, char **argv);

/* True (the default): a host name given for listen, dtls_listen or
 * metrics_listen is looked up with getaddrinfo(). Tests set it false so
 * that such a name is refused as unresolvable instead: the config file's
 * fuzz target (tests/fuzz/fuzz_coapd_config.c) must not block on DNS. */
extern bool coapd_config_resolve;

/* Creates c->data_dir with mode 0700 unless it exists (its parent must),
 * and checks that it is a directory we can write in. Returns 0, or -1
 * with one line (naming the path) in err. */
int coapd_data_dir_make(const struct coapd_config *c, char *err, size_t cap);

#endif
