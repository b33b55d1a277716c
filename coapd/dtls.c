/* coapd's coaps:// endpoints. The library does the DTLS (RFC 6347);
 * coapd supplies whom it trusts: a PSK identity is looked up in the
 * device registry at each handshake, so a device added by another
 * process (`coapd device add`, picked up by the registry's reload) can
 * connect without a restart; certificates and raw public keys come from
 * the configuration file's dtls_* keys. A handler learns the device
 * behind a request from ck_request_identity(). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dtls.h"
#include "log.h"
#include "store.h"

static int psk_lookup(void *user, const uint8_t *id, size_t len, uint8_t *key,
                      size_t cap)
{
  struct registry *reg = user;
  char name[REG_NAME_MAX];
  struct reg_device d;
  if (len == 0 || len >= sizeof name || memchr(id, '\0', len))
    return -1;
  memcpy(name, id, len);
  name[len] = '\0';
  if (registry_device_by_psk(reg, name, &d) < 0 || d.psk_len == 0 ||
      d.psk_len > cap) {
    log_debug("dtls: no device with PSK identity '%s'", name);
    return -1;
  }
  memcpy(key, d.psk, d.psk_len);
  return (int)d.psk_len;
}

static void count_psk(void *arg, const struct reg_device *d,
                      const char *const *gw, size_t ngw)
{
  (void)gw, (void)ngw;
  if (d->cred == REG_CRED_PSK)
    ++*(size_t *)arg;
}

static int no_credentials(void)
{
  log_error("--dtls-listen: no DTLS credentials: add a device with "
            "--psk-identity/--psk, or set dtls_cert and dtls_key");
  return -2;
}

int coapd_dtls_check(const struct coapd_config *cfg)
{
  if (!cfg->ndtls_listen || cfg->dtls_cert[0] ||
      (cfg->dtls_rpk && cfg->dtls_key[0]))
    return 0;
  char why[COAPD_PATH_MAX + 128];
  struct store *st;
  struct registry *reg;
  if (store_open(cfg->data_dir, &st, why, sizeof why) < 0) {
    log_error("%s", why);
    return -1;
  }
  size_t npsk = 0;
  int rc = registry_new(st, &reg);
  if (rc == 0) {
    rc = registry_device_list(reg, count_psk, &npsk);
    registry_free(reg);
  }
  store_close(st);
  if (rc < 0) {
    log_error("cannot read the registry: %s", strerror(-rc));
    return -1;
  }
  return npsk ? 0 : no_credentials();
}

int coapd_dtls_start(struct ck_ctx *ctx, const struct coapd_config *cfg,
                     struct registry *reg)
{
  size_t npsk = 0;
  if (registry_device_list(reg, count_psk, &npsk) < 0)
    npsk = 0;
  struct ck_dtls_config dc = {
      .psk_lookup = psk_lookup,
      .psk_user = reg,
      .require_client_cert = cfg->dtls_require_client_cert,
      .max_sessions = cfg->dtls_max_sessions,
      .idle_timeout_ms = cfg->dtls_idle_s * 1000u,
  };
  if (cfg->dtls_rpk)
    dc.rpk_key_file = cfg->dtls_key[0] ? cfg->dtls_key : NULL;
  else if (cfg->dtls_cert[0] || cfg->dtls_key[0]) {
    dc.cert_file = cfg->dtls_cert[0] ? cfg->dtls_cert : NULL;
    dc.key_file = cfg->dtls_key[0] ? cfg->dtls_key : NULL;
  }
  dc.ca_file = cfg->dtls_ca[0] ? cfg->dtls_ca : NULL;
  if (npsk == 0 && !dc.cert_file && !dc.rpk_key_file)
    return no_credentials();
  /* The DTLS endpoints follow the UDP ones in the context's order. */
  unsigned before = 0;
  struct ck_addr got;
  while (ck_ctx_local_addr(ctx, before, &got) == 0)
    before++;
  for (unsigned i = 0; i < cfg->ndtls_listen; i++) {
    const struct coapd_listen *l = &cfg->dtls_listen[i];
    char a[CK_ADDR_STRLEN];
    ck_addr_format(&l->addr, a, sizeof a);
    int rc = ck_ctx_listen_dtls(ctx, &l->addr, &dc);
    if (rc < 0) {
      const char *why = rc == CK_ESYS ? strerror(errno) : ck_strerror(rc);
      if (l->optional && rc == CK_ESYS &&
          (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
        log_warn("cannot listen for DTLS on %s (%s): continuing", a, why);
        continue;
      }
      log_error("cannot listen for DTLS on %s: %s", a, why);
      return -1;
    }
    if (ck_ctx_local_addr(ctx, before++, &got) == 0)
      ck_addr_format(&got, a, sizeof a);
    log_info("dtls listening on %s (%zu PSK devices%s%s)", a, npsk,
             dc.cert_file ? ", certificate" : "",
             dc.rpk_key_file ? ", raw public key" : "");
  }
  return 0;
}
