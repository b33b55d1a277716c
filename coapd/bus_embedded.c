/* The embedded bus (bus.h): the daemon's own broker, in process, on the
 * topic tree of bus_tree.c.
 *
 * A publish walks the tree to the nodes whose filters match, then merges
 * their subscription lists by sequence number, so that delivery follows
 * subscription order across filters, and two subscriptions to
 * overlapping filters each get the message, as two MQTT clients would.
 *
 * Retained messages sit at their topic's node. Those with an expiry are
 * also in a heap ordered by expiry time, which every publish and
 * subscribe trims first, so an expired message is never delivered and
 * is dropped (from memory and from the persistence table) without a
 * scan. A retained message is saved through struct bus_persist before
 * bus_publish() returns 0, and removed from it when cleared or expired.
 *
 * Re-entrancy. A callback may publish, subscribe and unsubscribe. While
 * any delivery runs (tree.busy), nothing is freed: an unsubscribed
 * subscription is only marked dead, its node put on the tree's dirty
 * list, a replaced retained message goes to a graveyard, and all of it
 * is swept when the outermost call ends. A publish made from a callback
 * is stored (when retained) at once but queued for delivery, which the
 * outermost call does after the current message: every subscriber sees
 * messages in the order they were published, and the stack does not grow
 * with chains of callbacks. Each publish remembers the sequence number
 * subscriptions had reached when it was accepted, so a subscription made
 * meanwhile gets only what was published after it (and, at once, the
 * retained messages, as any new subscription does).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus_tree.h"

/* Publishes made from callbacks wait in a queue of at most this many. */
enum { PENDING_MAX = 65536 };

struct bus_ret {
  struct bus_node *node; /* NULL once dropped */
  struct bus_ret *grave; /* graveyard link */
  uint64_t seq;          /* age, for oldest-first delivery */
  int64_t expires_at;    /* Unix seconds, 0: never */
  size_t heap;           /* index in the expiry heap, if expires_at */
  size_t len;
  int cf;
  uint8_t qos;
  char *topic; /* in data, after the payload */
  uint8_t data[];
};

struct pending {
  struct pending *next;
  uint64_t limit; /* subscriptions with a smaller seq get it */
  struct bus_msg m;
  uint8_t data[];
};

struct embedded {
  struct bus bus; /* first: a struct bus * is a struct embedded * */
  struct bus_embedded_config cfg;
  struct bus_persist persist;
  bool has_persist;
  struct bus_tree tree;
  struct bus_ret **heap; /* expiry min-heap */
  size_t heap_len, heap_cap;
  uint64_t seq; /* next subscription or retained sequence number */
  struct bus_ret *grave;
  struct pending *q_head, *q_tail;
  size_t q_len;
  struct bus_vec hits;    /* matched nodes of the message being delivered */
  struct bus_sub **merge; /* the next subscription of each, a min-heap */
  size_t merge_cap;
  struct bus_stats st;
};

static int64_t now_s(const struct embedded *e)
{
  return e->cfg.now_s ? e->cfg.now_s(e->cfg.now_user) : (int64_t)time(NULL);
}

/* The expiry heap. */

static void heap_put(struct embedded *e, size_t i, struct bus_ret *r)
{
  e->heap[i] = r;
  r->heap = i;
}

static void heap_up(struct embedded *e, size_t i)
{
  struct bus_ret *r = e->heap[i];
  while (i > 0 && r->expires_at < e->heap[(i - 1) / 2]->expires_at) {
    heap_put(e, i, e->heap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  heap_put(e, i, r);
}

static void heap_down(struct embedded *e, size_t i)
{
  struct bus_ret *r = e->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= e->heap_len)
      break;
    if (c + 1 < e->heap_len &&
        e->heap[c + 1]->expires_at < e->heap[c]->expires_at)
      c++;
    if (e->heap[c]->expires_at >= r->expires_at)
      break;
    heap_put(e, i, e->heap[c]);
    i = c;
  }
  heap_put(e, i, r);
}

/* Room for one more, asked before anything changes so that a failure
 * leaves the bus as it was. */
static int heap_reserve(struct embedded *e)
{
  if (e->heap_len < e->heap_cap)
    return 0;
  size_t cap = e->heap_cap ? e->heap_cap * 2 : 64;
  struct bus_ret **h = realloc(e->heap, cap * sizeof *h);
  if (!h)
    return -ENOMEM;
  e->heap = h;
  e->heap_cap = cap;
  return 0;
}

static void heap_remove(struct embedded *e, struct bus_ret *r)
{
  struct bus_ret *last = e->heap[--e->heap_len];
  if (last != r) {
    heap_put(e, r->heap, last);
    heap_up(e, last->heap);
    heap_down(e, last->heap);
  }
}

/* Retained messages. */

static void ret_attach(struct embedded *e, struct bus_node *n,
                       struct bus_ret *r)
{
  n->ret = r;
  r->node = n;
  r->seq = e->seq++;
  if (r->expires_at) {
    size_t i = e->heap_len++; /* reserved by heap_reserve() */
    heap_put(e, i, r);
    heap_up(e, i);
  }
  e->st.retained++;
  e->st.retained_bytes += r->len;
}

/* Takes r off its node; a delivery in progress may still hold it, so it
 * is freed only by the outermost call's sweep. */
static void ret_detach(struct embedded *e, struct bus_ret *r)
{
  r->node->ret = NULL;
  r->node = NULL;
  if (r->expires_at)
    heap_remove(e, r);
  e->st.retained--;
  e->st.retained_bytes -= r->len;
  if (e->tree.busy) {
    r->grave = e->grave;
    e->grave = r;
  } else {
    free(r);
  }
}

static void ret_drop(struct embedded *e, struct bus_ret *r)
{
  struct bus_node *n = r->node;
  ret_detach(e, r);
  bus_tree_settle(&e->tree, n);
}

static void expire(struct embedded *e, struct bus_ret *r)
{
  /* A failed removal is harmless: the stored copy carries its expiry
   * time, and loading drops it. */
  if (e->has_persist)
    (void)e->persist.remove(e->persist.user, r->topic);
  e->st.expired++;
  ret_drop(e, r);
}

static void expire_due(struct embedded *e, int64_t now)
{
  while (e->heap_len > 0 && e->heap[0]->expires_at <= now)
    expire(e, e->heap[0]);
}

/* Stores m as its topic's retained message (an empty payload clears it,
 * MQTT 3.1.1 §3.3.1.3), saving it first when save is set: the message is
 * acknowledged only once stored. */
static int retain(struct embedded *e, const struct bus_msg *m,
                  int64_t expires_at, bool save)
{
  struct bus_level lv[BUS_LEVELS_MAX];
  int cnt = bus_tree_split(m->topic, lv);
  struct bus_node *n = bus_tree_find(&e->tree, lv, cnt);
  struct bus_ret *old = n ? n->ret : NULL;
  int rc;
  if (m->len == 0) {
    if (!old)
      return 0;
    if (save && (rc = e->persist.remove(e->persist.user, m->topic)) != 0)
      return rc < 0 ? rc : -EIO;
    ret_drop(e, old);
    return 0;
  }
  size_t held = e->st.retained_bytes - (old ? old->len : 0);
  if ((!old && e->st.retained >= e->cfg.max_retained) ||
      m->len > e->cfg.max_retained_bytes - held)
    return -ENOSPC;
  size_t tlen = strlen(m->topic);
  struct bus_ret *r = malloc(sizeof *r + m->len + tlen + 1);
  if (!r || (expires_at && heap_reserve(e) != 0) ||
      (!n && !(n = bus_tree_get(&e->tree, lv, cnt)))) {
    free(r);
    return -ENOMEM;
  }
  *r = (struct bus_ret){
      .expires_at = expires_at, .len = m->len, .cf = m->cf, .qos = m->qos};
  memcpy(r->data, m->payload, m->len);
  r->topic = (char *)r->data + m->len;
  memcpy(r->topic, m->topic, tlen + 1);
  if (save && (rc = e->persist.save(e->persist.user, m, expires_at)) != 0) {
    free(r);
    bus_tree_settle(&e->tree, n);
    return rc < 0 ? rc : -EIO;
  }
  if (old)
    ret_detach(e, old);
  ret_attach(e, n, r);
  return 0;
}

/* Delivery. */

static void deliver(struct embedded *e, struct bus_sub *s,
                    const struct bus_msg *m, bool from_retained)
{
  struct bus_msg d = *m;
  /* MQTT: a subscriber gets at most the QoS it asked for; RETAIN is set
   * only on what a new subscription gets (MQTT 3.1.1 §3.3.1.3). */
  if (s->qos < d.qos)
    d.qos = s->qos;
  d.retain = from_retained;
  d.from_retained = from_retained;
  if (!from_retained)
    d.expiry_left_s = d.expiry_s;
  e->st.delivered++;
  s->fn(s->user, &d);
}

/* The first live subscription from s on that is older than the message;
 * later ones are at the tail, since lists are in subscription order. */
static struct bus_sub *next_live(struct bus_sub *s, uint64_t limit)
{
  for (; s && s->seq < limit; s = s->next)
    if (!s->dead)
      return s;
  return NULL;
}

static void merge_down(struct bus_sub **h, size_t len, size_t i)
{
  struct bus_sub *s = h[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= len)
      break;
    if (c + 1 < len && h[c + 1]->seq < h[c]->seq)
      c++;
    if (h[c]->seq >= s->seq)
      break;
    h[i] = h[c];
    i = c;
  }
  h[i] = s;
}

/* Delivers m to the subscriptions older than limit whose filters match,
 * in subscription order: a k-way merge of the matched nodes' lists. Runs
 * only from the outermost call, so hits and merge are never shared. */
static int fan_out(struct embedded *e, const struct bus_msg *m, uint64_t limit)
{
  struct bus_level lv[BUS_LEVELS_MAX];
  int cnt = bus_tree_split(m->topic, lv);
  e->hits.len = 0;
  int rc = bus_tree_match(&e->tree, lv, cnt, &e->hits);
  if (rc != 0)
    return rc;
  if (e->hits.len > e->merge_cap) {
    struct bus_sub **nm = realloc(e->merge, e->hits.cap * sizeof *nm);
    if (!nm)
      return -ENOMEM;
    e->merge = nm;
    e->merge_cap = e->hits.cap;
  }
  struct bus_sub **h = e->merge;
  size_t len = 0;
  for (size_t i = 0; i < e->hits.len; i++) {
    struct bus_node *n = e->hits.v[i];
    struct bus_sub *s = next_live(n->subs, limit);
    if (s)
      h[len++] = s;
  }
  for (size_t i = len / 2; i-- > 0;)
    merge_down(h, len, i);
  while (len > 0) {
    struct bus_sub *s = h[0];
    /* An earlier callback may have unsubscribed s; it is not freed
     * before the outermost call ends, so s->next is still good. */
    if (!s->dead)
      deliver(e, s, m, false);
    struct bus_sub *next = next_live(s->next, limit);
    h[0] = next ? next : h[--len];
    if (len > 0)
      merge_down(h, len, 0);
  }
  return 0;
}

static struct pending *pending_new(struct embedded *e, const struct bus_msg *m)
{
  size_t tlen = strlen(m->topic);
  struct pending *p = malloc(sizeof *p + m->len + tlen + 1);
  if (!p)
    return NULL;
  p->next = NULL;
  p->limit = e->seq;
  p->m = *m;
  if (m->len)
    memcpy(p->data, m->payload, m->len);
  p->m.payload = p->data;
  memcpy(p->data + m->len, m->topic, tlen + 1);
  p->m.topic = (const char *)p->data + m->len;
  return p;
}

static void enter(struct embedded *e)
{
  e->tree.busy++;
}

/* Ends a call that delivered. The outermost one delivers what its
 * callbacks published, in order, then frees what they let go. */
static void leave(struct embedded *e)
{
  if (e->tree.busy == 1) {
    while (e->q_head) {
      struct pending *p = e->q_head;
      e->q_head = p->next;
      if (!e->q_head)
        e->q_tail = NULL;
      e->q_len--;
      if (fan_out(e, &p->m, p->limit) != 0)
        e->st.dropped++;
      free(p);
    }
  }
  if (--e->tree.busy == 0) {
    bus_tree_sweep(&e->tree);
    while (e->grave) {
      struct bus_ret *r = e->grave;
      e->grave = r->grave;
      free(r);
    }
  }
}

/* The operations. */

static int op_publish(struct bus *b, const struct bus_msg *m, bus_done_fn done,
                      void *user)
{
  (void)done; /* everything is settled before we return */
  (void)user;
  struct embedded *e = (struct embedded *)b;
  if (!m || !m->topic || m->qos > 2 || (m->len > 0 && !m->payload) ||
      !bus_topic_valid(m->topic, strnlen(m->topic, BUS_TOPIC_MAX + 1)))
    return -EINVAL;
  if (m->len > e->cfg.max_payload)
    return -EMSGSIZE;
  int64_t now = now_s(e);
  expire_due(e, now);
  struct pending *p = NULL;
  if (e->tree.busy) {
    if (e->q_len >= PENDING_MAX)
      return -ENOSPC;
    if (!(p = pending_new(e, m)))
      return -ENOMEM;
  }
  int rc = 0;
  if (m->retain)
    rc = retain(e, m, m->expiry_s ? now + m->expiry_s : 0, e->has_persist);
  if (rc != 0) {
    free(p);
    return rc;
  }
  e->st.published++;
  if (p) {
    if (e->q_tail)
      e->q_tail->next = p;
    else
      e->q_head = p;
    e->q_tail = p;
    e->q_len++;
    return 0;
  }
  enter(e);
  rc = fan_out(e, m, e->seq);
  leave(e);
  return rc;
}

static int by_age(const void *a, const void *b)
{
  const struct bus_ret *x = *(struct bus_ret *const *)a;
  const struct bus_ret *y = *(struct bus_ret *const *)b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void op_unsubscribe(struct bus *b, struct bus_sub *s)
{
  struct embedded *e = (struct embedded *)b;
  if (s->dead)
    return;
  s->dead = true;
  e->st.subscriptions--;
  struct bus_node *n = s->node;
  if (e->tree.busy) {
    bus_tree_settle(&e->tree, n); /* s is freed by the sweep */
    return;
  }
  bus_tree_unlink(s);
  free(s);
  bus_tree_settle(&e->tree, n);
}

static int op_subscribe(struct bus *b, const char *filter, uint8_t qos,
                        bus_deliver_fn fn, void *user, struct bus_sub **out)
{
  struct embedded *e = (struct embedded *)b;
  if (!filter || !fn || !out || qos > 2 ||
      !bus_filter_valid(filter, strnlen(filter, BUS_TOPIC_MAX + 1)))
    return -EINVAL;
  if (e->st.subscriptions >= e->cfg.max_subscriptions)
    return -ENOSPC;
  int64_t now = now_s(e);
  expire_due(e, now);
  struct bus_level lv[BUS_LEVELS_MAX];
  int cnt = bus_tree_split(filter, lv);
  struct bus_node *n = bus_tree_get(&e->tree, lv, cnt);
  struct bus_sub *s = n ? calloc(1, sizeof *s) : NULL;
  if (!s) {
    if (n)
      bus_tree_settle(&e->tree, n);
    return -ENOMEM;
  }
  *s = (struct bus_sub){.node = n,
                        .prev = n->subs_tail,
                        .fn = fn,
                        .user = user,
                        .seq = e->seq++,
                        .qos = qos};
  if (n->subs_tail)
    n->subs_tail->next = s;
  else
    n->subs = s;
  n->subs_tail = s;
  e->st.subscriptions++;

  struct bus_vec found = {0};
  int rc = bus_tree_retained(&e->tree, lv, cnt, &found);
  if (rc != 0) {
    free(found.v);
    op_unsubscribe(b, s);
    return rc;
  }
  /* Set before delivering, so that a callback can unsubscribe it. */
  *out = s;
  if (found.len > 1)
    qsort(found.v, found.len, sizeof *found.v, by_age);
  enter(e);
  for (size_t i = 0; i < found.len && !s->dead; i++) {
    const struct bus_ret *r = found.v[i];
    if (!r->node)
      continue; /* replaced or cleared by an earlier callback */
    uint32_t left = 0;
    if (r->expires_at)
      left = r->expires_at - now > UINT32_MAX ? UINT32_MAX
                                              : (uint32_t)(r->expires_at - now);
    struct bus_msg m = {.topic = r->topic,
                        .payload = r->data,
                        .len = r->len,
                        .cf = r->cf,
                        .qos = r->qos,
                        .expiry_s = left,
                        .expiry_left_s = left};
    deliver(e, s, &m, true);
  }
  free(found.v);
  leave(e);
  return 0;
}

static void op_stats(const struct bus *b, struct bus_stats *out)
{
  *out = ((const struct embedded *)b)->st;
}

static void op_free(struct bus *b)
{
  struct embedded *e = (struct embedded *)b;
  while (e->q_head) {
    struct pending *p = e->q_head;
    e->q_head = p->next;
    free(p);
  }
  while (e->grave) {
    struct bus_ret *r = e->grave;
    e->grave = r->grave;
    free(r);
  }
  bus_tree_close(&e->tree);
  free(e->heap);
  free(e->hits.v);
  free(e->merge);
  free(e);
}

static const struct bus_ops embedded_ops = {
    .publish = op_publish,
    .subscribe = op_subscribe,
    .unsubscribe = op_unsubscribe,
    .stats = op_stats,
    .free = op_free,
};

/* Loading the persisted retained messages. */

struct loader {
  struct embedded *e;
  int64_t now;
  struct bus_vec gone; /* topics found expired, removed after loading */
  int rc;
};

static void load_one(void *arg, const struct bus_msg *m, int64_t expires_at)
{
  struct loader *l = arg;
  struct embedded *e = l->e;
  /* A row that could not have been published (a changed cap, a damaged
   * file) is skipped rather than failing the start. */
  if (l->rc != 0 || !m || !m->topic || m->len == 0 || !m->payload ||
      m->len > e->cfg.max_payload || m->qos > 2 ||
      !bus_topic_valid(m->topic, strnlen(m->topic, BUS_TOPIC_MAX + 1)))
    return;
  if (expires_at != 0 && expires_at <= l->now) {
    char *t = strdup(m->topic);
    if (!t || bus_vec_push(&l->gone, t) != 0) {
      free(t);
      l->rc = -ENOMEM;
      return;
    }
    e->st.expired++;
    return;
  }
  int rc = retain(e, m, expires_at, false);
  if (rc == -ENOSPC)
    e->st.dropped++;
  else if (rc != 0)
    l->rc = rc;
}

static int load(struct embedded *e)
{
  struct loader l = {.e = e, .now = now_s(e)};
  int rc = e->persist.load(e->persist.user, load_one, &l);
  if (rc == 0)
    rc = l.rc;
  for (size_t i = 0; i < l.gone.len; i++) {
    /* As in expire(): a failure leaves a row the next load drops. */
    if (rc == 0)
      (void)e->persist.remove(e->persist.user, l.gone.v[i]);
    free(l.gone.v[i]);
  }
  free(l.gone.v);
  return rc < 0 ? rc : rc > 0 ? -EIO : 0;
}

int bus_embedded_new(const struct bus_embedded_config *cfg,
                     const struct bus_persist *persist, struct bus **out)
{
  if (!out ||
      (persist && (!persist->save || !persist->remove || !persist->load)))
    return -EINVAL;
  *out = NULL;
  struct embedded *e = calloc(1, sizeof *e);
  if (!e)
    return -ENOMEM;
  e->bus.ops = &embedded_ops;
  if (cfg)
    e->cfg = *cfg;
  if (!e->cfg.max_retained)
    e->cfg.max_retained = 100000;
  if (!e->cfg.max_retained_bytes)
    e->cfg.max_retained_bytes = (size_t)256 << 20;
  if (!e->cfg.max_subscriptions)
    e->cfg.max_subscriptions = 1000000;
  if (!e->cfg.max_payload)
    e->cfg.max_payload = 65536;
  if (persist) {
    e->persist = *persist;
    e->has_persist = true;
  }
  int rc = bus_tree_init(&e->tree);
  if (rc != 0) {
    free(e);
    return rc;
  }
  if (persist && (rc = load(e)) != 0) {
    op_free(&e->bus);
    return rc;
  }
  *out = &e->bus;
  return 0;
}
