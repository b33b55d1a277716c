/* coapd's coaps:// endpoints (--dtls-listen): the library's DTLS server
 * (ck_ctx_listen_dtls) with PSKs looked up in the device registry
 * (`coapd device add ... --psk-identity ID --psk KEY`) and the
 * certificate, key and trust anchors of the configuration file. */
#ifndef COAPD_DTLS_H
#define COAPD_DTLS_H

#include <coapkit/coapkit.h>

#include "config.h"
#include "registry.h"

/* Before anything starts: with --dtls-listen, are there credentials at
 * all (dtls_cert and dtls_key, a raw public key, or a device with a PSK
 * in the registry of cfg->data_dir)? Returns 0, or -2 after one line
 * (a usage error: exit 2), or -1 after one line when the registry
 * cannot be read (exit 1). */
int coapd_dtls_check(const struct coapd_config *cfg);

/* Opens every cfg->dtls_listen address on ctx. Returns 0; -2 after one
 * line when there are no credentials at all; -1 after one line when an
 * endpoint cannot be opened (exit 1). reg must outlive ctx's loop. */
int coapd_dtls_start(struct ck_ctx *ctx, const struct coapd_config *cfg,
                     struct registry *reg);

#endif
