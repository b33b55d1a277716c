/* The epoll backend of the event loop: the only file that knows about
 * epoll, behind the ck__backend_* seam of loop.h. */
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "coapkit/error.h"
#include "gate.h"
#include "loop.h"

enum { MAX_EVENTS = 64 };

static uint32_t to_epoll(unsigned events)
{
  return (events & CK__READ ? EPOLLIN : 0u) |
         (events & CK__WRITE ? EPOLLOUT : 0u);
}

int ck__backend_init(struct ck__loop *l)
{
  l->backend_fd = epoll_create1(EPOLL_CLOEXEC);
  return l->backend_fd < 0 ? CK_ESYS : 0;
}

void ck__backend_close(struct ck__loop *l)
{
  if (l->backend_fd >= 0)
    close(l->backend_fd);
  l->backend_fd = -1;
}

int ck__backend_add(struct ck__loop *l, struct ck__io *io, unsigned events)
{
  struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};
  return epoll_ctl(l->backend_fd, EPOLL_CTL_ADD, io->fd, &ev) ? CK_ESYS : 0;
}

int ck__backend_mod(struct ck__loop *l, struct ck__io *io, unsigned events)
{
  struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};
  return epoll_ctl(l->backend_fd, EPOLL_CTL_MOD, io->fd, &ev) ? CK_ESYS : 0;
}

void ck__backend_del(struct ck__loop *l, struct ck__io *io)
{
  epoll_ctl(l->backend_fd, EPOLL_CTL_DEL, io->fd, NULL);
}

int ck__backend_poll(struct ck__loop *l, int timeout_ms)
{
  struct epoll_event evs[MAX_EVENTS];
  /* With worker threads, they run the protocol while this thread
   * sleeps, and only then (gate.h). */
  if (l->gate)
    ck__gate_wait_begin(l, timeout_ms);
  int n = epoll_wait(l->backend_fd, evs, MAX_EVENTS, timeout_ms);
  int err = errno;
  if (l->gate)
    ck__gate_wait_end(l);
  if (n < 0)
    return err == EINTR ? 0 : CK_ESYS;
  ck__loop_update(l);
  for (int i = 0; i < n; i++) {
    struct ck__io *io = evs[i].data.ptr;
    if (!io->cb)
      continue; /* freed by an earlier callback of this batch */
    unsigned e = 0;
    if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
      e |= CK__READ;
    if (evs[i].events & EPOLLOUT)
      e |= CK__WRITE;
    if (evs[i].events & EPOLLERR)
      e |= CK__ERROR;
    io->cb(io, e);
  }
  return n;
}
