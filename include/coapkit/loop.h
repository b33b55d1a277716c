/* Timers and file-descriptor watches on a context's event loop.
 *
 * An application can run everything on the library's loop: its own
 * sockets (a database, an MQTT connection, a pipe) are watched with
 * ck_watch_new(), its periodic work runs on ck_timer_new() timers, and
 * ck_run() drives it all. The other way round, the library runs on the
 * application's loop through ck_ctx_fd(), ck_ctx_timeout() and
 * ck_ctx_process() (ctx.h); the timers and watches made here then fire
 * from ck_ctx_process() like the library's own.
 *
 * Handles are allocated once by their _new() call; after that, starting,
 * stopping and re-arming never allocate and cannot fail. Every callback
 * runs on the loop's thread, from ck_run() or ck_ctx_process(). A handle
 * may be freed from any callback, its own included.
 */
#ifndef COAPKIT_LOOP_H
#define COAPKIT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "coapkit/ctx.h"
#include "coapkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ck_timer;
struct ck_watch;

/* Events of a watch; a watch's callback also reports an error or hang-up
 * on the descriptor as CK_WATCH_READ, so that a read finds it. */
enum { CK_WATCH_READ = 1, CK_WATCH_WRITE = 2 };

typedef void (*ck_timer_cb)(struct ck_timer *t, void *user);
typedef void (*ck_watch_cb)(struct ck_watch *w, int fd, unsigned events,
                            void *user);

/* Creates a stopped timer on ctx's loop that calls cb(t, user) when it
 * fires. Returns 0 and stores the timer in *out, or CK_EINVAL (ctx, cb
 * or out NULL) or CK_ENOMEM. The context must outlive the timer. */
CK_EXPORT int ck_timer_new(struct ck_ctx *ctx, ck_timer_cb cb, void *user,
                           struct ck_timer **out);

/* Arms t to fire delay_ms from now, then every repeat_ms (0: once).
 * Re-arms a timer that is already armed. Cannot fail; a NULL t is
 * ignored. */
CK_EXPORT void ck_timer_start(struct ck_timer *t, uint64_t delay_ms,
                              uint64_t repeat_ms);

/* Disarms t; it does not fire until started again. A NULL t is
 * ignored. */
CK_EXPORT void ck_timer_stop(struct ck_timer *t);

/* Whether t is armed (false for a NULL t). */
CK_EXPORT bool ck_timer_active(const struct ck_timer *t);

/* Stops and frees t. NULL is ignored. */
CK_EXPORT void ck_timer_free(struct ck_timer *t);

/* Watches fd (which the application keeps owning) for events, a mask of
 * CK_WATCH_READ and CK_WATCH_WRITE; cb(w, fd, ready, user) runs when some
 * are ready. Level-triggered: a descriptor left readable is reported
 * again. Returns 0 and stores the watch in *out, or CK_EINVAL (ctx, cb or
 * out NULL, fd negative, an unknown event bit), CK_ENOMEM or CK_ESYS
 * (errno set, e.g. EEXIST for an fd already watched). */
CK_EXPORT int ck_watch_new(struct ck_ctx *ctx, int fd, unsigned events,
                           ck_watch_cb cb, void *user, struct ck_watch **out);

/* Changes the events w waits for (0 pauses it). Returns 0, CK_EINVAL (w
 * NULL, an unknown event bit) or CK_ESYS (errno set). */
CK_EXPORT int ck_watch_set(struct ck_watch *w, unsigned events);

/* Stops watching and frees w; the descriptor is not closed. NULL is
 * ignored. Close the descriptor only after this call. */
CK_EXPORT void ck_watch_free(struct ck_watch *w);

/* The loop's monotonic clock in milliseconds (the replaceable clock of
 * ck_ctx_set_clock()); 0 for a NULL ctx. */
CK_EXPORT uint64_t ck_ctx_now(struct ck_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
