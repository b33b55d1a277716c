/* /.well-known/core (RFC 6690 §4): the link-format document of every
 * listed resource, generated from its attributes and filtered by the
 * request's query. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coapkit/cf.h"
#include "coapkit/link.h"
#include "coapkit/opt.h"
#include "srv.h"

static void add_param(struct ck_link *l, const char *name, const char *val,
                      bool quoted)
{
  struct ck_link_param *p = &l->params[l->nparams++];
  p->name = name;
  p->name_len = strlen(name);
  p->val = val;
  p->val_len = val ? strlen(val) : 0;
  p->quoted = quoted;
}

void ck__well_known(struct ck_ctx *ctx, const struct ck_request *req,
                    struct ck_response *resp)
{
  /* RFC 6690 §4.1: one query parameter filters the links. */
  const uint8_t *filter = NULL;
  size_t flen = 0;
  struct ck_opt q;
  if (ck_msg_opt(req->msg, CK_OPT_URI_QUERY, &q) == 0) {
    filter = q.val;
    flen = q.len;
  }
  size_t cap = 4096;
  char *buf = NULL;
  int n;
  /* Bounded: the buffer doubles up to 1 MiB. */
  for (;;) {
    char *nb = realloc(buf, cap);
    if (!nb) {
      free(buf);
      resp->code = CK_SERVICE_UNAVAILABLE;
      return;
    }
    buf = nb;
    struct ck_link_writer w;
    ck_link_writer_init(&w, buf, cap);
    for (struct ck_resource *r = ctx->resources; r; r = r->next) {
      if (r->hidden)
        continue;
      struct ck_link l;
      char target[1100];
      char ctbuf[16], szbuf[16];
      int tl = snprintf(target, sizeof target, "/%s", r->path);
      if (tl < 0 || (size_t)tl >= sizeof target)
        continue;
      l.target = target;
      l.target_len = (size_t)tl;
      l.nparams = 0;
      if (r->ct >= 0) {
        snprintf(ctbuf, sizeof ctbuf, "%d", r->ct);
        add_param(&l, "ct", ctbuf, false);
      }
      if (r->rt)
        add_param(&l, "rt", r->rt, true);
      if (r->iface)
        add_param(&l, "if", r->iface, true);
      if (r->sz) {
        snprintf(szbuf, sizeof szbuf, "%u", r->sz);
        add_param(&l, "sz", szbuf, false);
      }
      if (r->title)
        add_param(&l, "title", r->title, true);
      if (r->observable)
        add_param(&l, "obs", NULL, false);
      if (filter && !ck_link_match(&l, (const char *)filter, flen))
        continue;
      ck_link_write(&w, &l);
    }
    n = ck_link_writer_finish(&w);
    if (n != CK_ENOSPC || cap >= (1u << 20))
      break;
    cap *= 2;
  }
  if (n < 0) {
    resp->code = CK_INTERNAL_SERVER_ERROR;
  } else if (filter && n == 0) {
    /* RFC 6690 §4.1: no match is answered with 4.04. */
    resp->code = CK_NOT_FOUND;
  } else {
    ck_response_content(resp, CK_CF_LINK_FORMAT, buf, (size_t)n);
  }
  free(buf);
}

