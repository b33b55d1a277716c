/* Resources: paths with a handler per method, link attributes for
 * /.well-known/core, the formats they produce and accept, and whether
 * they can be observed. The context owns them until it is freed. */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

static char *dupstr(const char *s)
{
  if (!s)
    return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

int ck_resource_new(struct ck_ctx *ctx, const char *path,
                    struct ck_resource **out)
{
  if (!ctx || !path || !out)
    return CK_EINVAL;
  while (*path == '/')
    path++;
  size_t n = strlen(path);
  bool tree = false;
  if (n >= 1 && path[n - 1] == '#' && (n == 1 || path[n - 2] == '/')) {
    tree = true;
    n = n >= 2 ? n - 2 : 0;
  }
  while (n > 0 && path[n - 1] == '/')
    n--;
  for (struct ck_resource *r = ctx->resources; r; r = r->next)
    if (r->tree == tree && r->path_len == n && memcmp(r->path, path, n) == 0)
      return CK_EEXIST;
  struct ck_resource *r = calloc(1, sizeof *r);
  if (!r || !(r->path = malloc(n + 1))) {
    free(r);
    return CK_ENOMEM;
  }
  memcpy(r->path, path, n);
  r->path[n] = '\0';
  r->path_len = n;
  r->tree = tree;
  r->ctx = ctx;
  r->ct = -1;
  if (ctx->resources_tail)
    ctx->resources_tail->next = r;
  else
    ctx->resources = r;
  ctx->resources_tail = r;
  *out = r;
  return 0;
}

int ck_resource_handler(struct ck_resource *r, uint8_t method,
                        ck_handler_fn fn, void *user)
{
  if (!r || method < CK_GET || method > CK_IPATCH)
    return CK_EINVAL;
  r->handlers[method] = fn;
  r->users[method] = user;
  return 0;
}

int ck_resource_attrs(struct ck_resource *r, const struct ck_resource_attrs *a)
{
  if (!r || !a)
    return CK_EINVAL;
  char *rt = dupstr(a->rt), *iface = dupstr(a->iface),
       *title = dupstr(a->title);
  if ((a->rt && !rt) || (a->iface && !iface) || (a->title && !title)) {
    free(rt);
    free(iface);
    free(title);
    return CK_ENOMEM;
  }
  free(r->rt);
  free(r->iface);
  free(r->title);
  r->rt = rt;
  r->iface = iface;
  r->title = title;
  r->ct = a->ct;
  r->sz = a->sz;
  r->hidden = a->hidden;
  return 0;
}

static int set_formats(uint16_t *dst, uint8_t *count, const uint16_t *cfs,
                       size_t n)
{
  if (n > CK__MAX_FORMATS || (n && !cfs))
    return CK_EINVAL;
  if (n)
    memcpy(dst, cfs, n * sizeof *cfs);
  *count = (uint8_t)n;
  return 0;
}

int ck_resource_produces(struct ck_resource *r, const uint16_t *cfs, size_t n)
{
  if (!r)
    return CK_EINVAL;
  return set_formats(r->produces, &r->nproduces, cfs, n);
}

int ck_resource_consumes(struct ck_resource *r, const uint16_t *cfs, size_t n)
{
  if (!r)
    return CK_EINVAL;
  return set_formats(r->consumes, &r->nconsumes, cfs, n);
}

void ck_resource_observable(struct ck_resource *r, bool observable, bool con)
{
  if (!r)
    return;
  r->observable = observable;
  r->con_notify = con;
}

size_t ck_resource_observers(const struct ck_resource *r)
{
  return r ? r->nobs : 0;
}

const char *ck_resource_path(const struct ck_resource *r)
{
  return r ? r->path : NULL;
}

int ck_ctx_recognize_option(struct ck_ctx *ctx, uint16_t num)
{
  if (!ctx)
    return CK_EINVAL;
  ctx->known_opts[num / 64] |= 1ull << (num % 64);
  return 0;
}

bool ck__known_opt(const struct ck_ctx *ctx, uint16_t num)
{
  return (ctx->known_opts[num / 64] >> (num % 64)) & 1;
}

void ck__run_handler(struct ck_resource *r, const struct ck_request *req,
                     struct ck_response *resp)
{
  uint8_t method = req->msg->code;
  r->handlers[method](r, req, resp, r->users[method]);
}

void ck__resources_free(struct ck_ctx *ctx)
{
  struct ck_resource *r = ctx->resources;
  while (r) {
    struct ck_resource *next = r->next;
    free(r->path);
    free(r->rt);
    free(r->iface);
    free(r->title);
    free(r);
    r = next;
  }
  ctx->resources = ctx->resources_tail = NULL;
}
