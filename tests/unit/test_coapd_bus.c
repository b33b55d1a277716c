/* Unit tests for the embedded bus (coapd/bus_embedded.c) and the MQTT
 * topic rules (coapd/topic.c), through bus.h only: the validators and the
 * matcher against tables that include the '$' rule, and the same matching
 * table run through the bus's tree; retained messages replaced, cleared
 * and expired under an injected clock; persistence through a table held
 * in memory; the caps; subscription order across overlapping filters;
 * callbacks that publish, subscribe and unsubscribe during delivery; and
 * 10,000 subscriptions on one topic and on as many topics. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"

/* What the subscriptions got, in order. */
struct got {
  int who;
  char topic[64];
  char payload[32];
  bool from_retained, retain;
  uint32_t left;
  uint8_t qos;
};
static struct got LOG[256];
static int NLOG;

static int64_t NOW = 1000;
static int64_t clock_fn(void *user)
{
  (void)user;
  return NOW;
}

/* A subscriber, and what it does when a message reaches it. */
struct probe {
  int who, count;
  struct bus *bus;
  struct bus_sub *sub;
  bool unsub_self;
  struct bus_sub **unsub_other;
  const char *pub_topic, *pub_payload; /* published once, retained */
  const char *sub_filter;              /* subscribed once, as *child */
  struct probe *child;
  int rc;
};

static void on_msg(void *user, const struct bus_msg *m)
{
  struct probe *p = user;
  p->count++;
  if (NLOG < (int)(sizeof LOG / sizeof LOG[0])) {
    struct got *g = &LOG[NLOG++];
    *g = (struct got){.who = p->who,
                      .from_retained = m->from_retained,
                      .retain = m->retain,
                      .left = m->expiry_left_s,
                      .qos = m->qos};
    snprintf(g->topic, sizeof g->topic, "%s", m->topic);
    snprintf(g->payload, sizeof g->payload, "%.*s", (int)m->len,
             (const char *)m->payload);
  }
  if (p->unsub_self) {
    p->unsub_self = false;
    bus_unsubscribe(p->bus, p->sub);
    p->sub = NULL;
  }
  if (p->unsub_other) {
    bus_unsubscribe(p->bus, *p->unsub_other);
    *p->unsub_other = NULL;
    p->unsub_other = NULL;
  }
  if (p->pub_topic) {
    const char *t = p->pub_topic;
    p->pub_topic = NULL;
    struct bus_msg pm = {.topic = t,
                         .payload = (const uint8_t *)p->pub_payload,
                         .len = strlen(p->pub_payload),
                         .cf = -1,
                         .retain = true};
    p->rc = bus_publish(p->bus, &pm);
  }
  if (p->sub_filter) {
    const char *f = p->sub_filter;
    p->sub_filter = NULL;
    p->child->bus = p->bus;
    p->rc = bus_subscribe(p->bus, f, 2, on_msg, p->child, &p->child->sub);
  }
}

static struct bus *new_bus(const struct bus_embedded_config *cfg,
                           const struct bus_persist *persist)
{
  struct bus_embedded_config c = cfg ? *cfg : (struct bus_embedded_config){0};
  c.now_s = clock_fn;
  struct bus *b = NULL;
  NLOG = 0;
  NOW = 1000;
  assert_int_equal(bus_embedded_new(&c, persist, &b), 0);
  assert_non_null(b);
  return b;
}

static int pub(struct bus *b, const char *topic, const char *payload,
               bool retain, uint32_t expiry_s)
{
  struct bus_msg m = {.topic = topic,
                      .payload = (const uint8_t *)payload,
                      .len = strlen(payload),
                      .cf = 0,
                      .qos = 1,
                      .retain = retain,
                      .expiry_s = expiry_s};
  return bus_publish(b, &m);
}

static void sub(struct bus *b, const char *filter, struct probe *p)
{
  p->bus = b;
  assert_int_equal(bus_subscribe(b, filter, 2, on_msg, p, &p->sub), 0);
}

static struct bus_stats stats(const struct bus *b)
{
  struct bus_stats st;
  bus_stats(b, &st);
  return st;
}

static void test_topic_valid(void **state)
{
  (void)state;
  static const struct {
    const char *s;
    bool topic, filter;
  } rows[] = {
      {"a", true, true},
      {"a/b/c", true, true},
      {"/", true, true},
      {"a//b", true, true},
      {"/a/", true, true},
      {"$SYS/broker", true, true},
      {"caf\xc3\xa9", true, true},
      {"\xf0\x9f\x98\x80", true, true},
      {"#", false, true},
      {"+", false, true},
      {"a/#", false, true},
      {"+/+/#", false, true},
      {"a/+/c", false, true},
      {"/#", false, true},
      {"a#", false, false},
      {"a/#/b", false, false},
      {"#/a", false, false},
      {"a+", false, false},
      {"+a/b", false, false},
      {"##", false, false},
      {"a/b#", false, false},
      {"\xc0\x80", false, false},
      {"\xed\xa0\x80", false, false},
      {"\xf4\x90\x80\x80", false, false},
      {"\xe2\x82", false, false},
      {"\xff", false, false},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    size_t n = strlen(rows[i].s);
    if (bus_topic_valid(rows[i].s, n) != rows[i].topic ||
        bus_filter_valid(rows[i].s, n) != rows[i].filter)
      fail_msg("row %zu: \"%s\"", i, rows[i].s);
  }
  assert_false(bus_topic_valid("", 0));
  assert_false(bus_filter_valid("", 0));
  assert_false(bus_topic_valid(NULL, 1));
  assert_false(bus_topic_valid("a\0b", 3)); /* U+0000, MQTT 3.1.1 §1.5.3 */

  /* The caps: BUS_TOPIC_MAX bytes, BUS_LEVELS_MAX levels. */
  static char big[BUS_TOPIC_MAX + 2];
  memset(big, 'x', sizeof big - 1);
  assert_true(bus_topic_valid(big, BUS_TOPIC_MAX));
  assert_false(bus_topic_valid(big, BUS_TOPIC_MAX + 1));
  char lv[2 * BUS_LEVELS_MAX + 2] = {0};
  lv[0] = 'a';
  for (int i = 1; i <= BUS_LEVELS_MAX; i++)
    memcpy(lv + 2 * i - 1, "/a", 2);
  size_t n64 = 2 * BUS_LEVELS_MAX - 1;
  assert_true(bus_topic_valid(lv, n64));
  assert_false(bus_topic_valid(lv, n64 + 2));
}

static const struct {
  const char *filter, *topic;
  bool match;
} MATCH[] = {
    {"a/b", "a/b", true},
    {"a/b", "a/c", false},
    {"a/b", "a/b/c", false},
    {"a/b/c", "a/b", false},
    {"a/+", "a/b", true},
    {"a/+", "a/", true}, /* '+' takes an empty level */
    {"a/+", "a", false},
    {"a/+", "a/b/c", false},
    {"+/+", "/x", true},
    {"+", "/x", false},
    {"/+", "/x", true},
    {"#", "a", true},
    {"#", "/", true},
    {"#", "a/b/c", true},
    {"a/#", "a", true}, /* the parent, MQTT 3.1.1 §4.7.1.2 */
    {"a/#", "a/b/c", true},
    {"a/#", "ab", false},
    {"a/+/#", "a/b", true},
    {"a/+/#", "a", false},
    {"+/#", "a", true},
    {"sport/tennis/+", "sport/tennis/player1", true},
    {"sport/+", "sport", false},
    {"#", "$SYS/uptime", false}, /* §4.7.2 */
    {"+/uptime", "$SYS/uptime", false},
    {"+", "$SYS", false},
    {"$SYS/#", "$SYS/uptime", true},
    {"$SYS/#", "$SYS", true},
    {"$SYS/+", "$SYS/uptime", true},
    {"a/+", "a/$x", true}, /* the rule is for the first level only */
    {"a/#", "a/$x/y", true},
    {"$x", "$x", true},
    {"a//b", "a//b", true},
    {"a/+/b", "a//b", true},
    {"caf\xc3\xa9/+", "caf\xc3\xa9/x", true},
};

static void test_filter_match(void **state)
{
  (void)state;
  for (size_t i = 0; i < sizeof MATCH / sizeof MATCH[0]; i++)
    if (bus_filter_match(MATCH[i].filter, MATCH[i].topic) != MATCH[i].match)
      fail_msg("%s ~ %s", MATCH[i].filter, MATCH[i].topic);
}

/* The same table through the bus's tree: live and retained delivery. */
static void test_tree_match(void **state)
{
  (void)state;
  for (size_t i = 0; i < sizeof MATCH / sizeof MATCH[0]; i++) {
    struct bus *b = new_bus(NULL, NULL);
    struct probe p = {0};
    sub(b, MATCH[i].filter, &p);
    assert_int_equal(pub(b, MATCH[i].topic, "x", true, 0), 0);
    struct probe q = {0};
    sub(b, MATCH[i].filter, &q);
    if (p.count != MATCH[i].match || q.count != MATCH[i].match)
      fail_msg("%s ~ %s: %d live, %d retained", MATCH[i].filter, MATCH[i].topic,
               p.count, q.count);
    bus_free(b);
  }
}

static void test_einval(void **state)
{
  (void)state;
  struct bus_embedded_config cfg = {.max_payload = 4};
  struct bus *b = new_bus(&cfg, NULL);
  struct probe p = {0};
  struct bus_sub *s = NULL;
  assert_int_equal(pub(b, "a/+", "x", false, 0), -EINVAL);
  assert_int_equal(pub(b, "", "x", false, 0), -EINVAL);
  struct bus_msg m = {.topic = "a", .qos = 3};
  assert_int_equal(bus_publish(b, &m), -EINVAL);
  assert_int_equal(pub(b, "a", "12345", false, 0), -EMSGSIZE);
  assert_int_equal(pub(b, "a", "1234", false, 0), 0);
  assert_int_equal(bus_subscribe(b, "a/#/b", 0, on_msg, &p, &s), -EINVAL);
  assert_int_equal(bus_subscribe(b, "a", 3, on_msg, &p, &s), -EINVAL);
  assert_int_equal(bus_subscribe(b, "a", 0, NULL, &p, &s), -EINVAL);
  assert_null(s);
  assert_int_equal(stats(b).published, 1);
  bus_unsubscribe(b, NULL);
  bus_free(b);
}

static void test_retained_replace_clear(void **state)
{
  (void)state;
  struct bus *b = new_bus(NULL, NULL);
  struct probe live = {.who = 1}, late = {.who = 2}, later = {.who = 3};
  sub(b, "t/#", &live);
  assert_int_equal(pub(b, "t/a", "one", true, 0), 0);
  assert_int_equal(pub(b, "t/a", "two", true, 0), 0);
  assert_int_equal(stats(b).retained, 1);
  assert_int_equal(stats(b).retained_bytes, 3);
  assert_false(LOG[0].retain); /* MQTT 3.1.1 §3.3.1.3 */
  sub(b, "t/+", &late);
  assert_int_equal(late.count, 1);
  assert_string_equal(LOG[2].payload, "two");
  assert_true(LOG[2].from_retained);
  assert_true(LOG[2].retain);
  assert_int_equal(LOG[2].left, 0);
  /* An empty retained payload clears, and is delivered as usual. */
  assert_int_equal(pub(b, "t/a", "", true, 0), 0);
  assert_int_equal(live.count, 3);
  assert_int_equal(stats(b).retained, 0);
  assert_int_equal(stats(b).retained_bytes, 0);
  sub(b, "t/a", &later);
  assert_int_equal(later.count, 0);
  bus_free(b);
}

static void test_retained_expiry(void **state)
{
  (void)state;
  struct bus *b = new_bus(NULL, NULL);
  assert_int_equal(pub(b, "e/a", "a", true, 10), 0);
  assert_int_equal(pub(b, "e/b", "b", true, 0), 0);
  assert_int_equal(pub(b, "e/c", "c", true, 30), 0);
  NOW += 4;
  struct probe p = {.who = 1};
  sub(b, "e/#", &p);
  assert_int_equal(p.count, 3);
  assert_int_equal(LOG[0].left, 6);
  assert_int_equal(LOG[1].left, 0);
  assert_int_equal(LOG[2].left, 26);
  NOW += 6; /* e/a's expiry time: gone */
  struct probe q = {.who = 2};
  sub(b, "e/a", &q);
  assert_int_equal(q.count, 0);
  assert_int_equal(stats(b).expired, 1);
  assert_int_equal(stats(b).retained, 2);
  /* A publish elsewhere sweeps what has expired meanwhile. */
  NOW += 100;
  assert_int_equal(pub(b, "other", "x", false, 0), 0);
  assert_int_equal(stats(b).expired, 2);
  assert_int_equal(stats(b).retained, 1);
  assert_int_equal(stats(b).retained_bytes, 1);
  bus_free(b);
}

static void test_retained_order(void **state)
{
  (void)state;
  struct bus *b = new_bus(NULL, NULL);
  assert_int_equal(pub(b, "a/1", "a1", true, 0), 0);
  assert_int_equal(pub(b, "b/2", "b2", true, 0), 0);
  assert_int_equal(pub(b, "a/3", "a3", true, 0), 0);
  assert_int_equal(pub(b, "a/1", "a1'", true, 0), 0); /* now the newest */
  assert_int_equal(pub(b, "$SYS/x", "s", true, 0), 0);
  struct probe all = {0}, sys = {0}, plus = {0};
  sub(b, "#", &all);
  assert_int_equal(all.count, 3);
  assert_string_equal(LOG[0].payload, "b2");
  assert_string_equal(LOG[1].payload, "a3");
  assert_string_equal(LOG[2].payload, "a1'");
  sub(b, "+/x", &plus);
  assert_int_equal(plus.count, 0);
  sub(b, "$SYS/#", &sys);
  assert_int_equal(sys.count, 1);
  bus_free(b);
}

/* A persistence table in memory. */
struct mem_row {
  char topic[64];
  char payload[64];
  size_t len;
  int64_t expires_at;
};
struct mem_store {
  struct mem_row rows[16];
  int nrows, saves, removes, fail;
};

static struct mem_row *mem_find(struct mem_store *ms, const char *topic)
{
  for (int i = 0; i < ms->nrows; i++)
    if (strcmp(ms->rows[i].topic, topic) == 0)
      return &ms->rows[i];
  return NULL;
}

static int mem_save(void *user, const struct bus_msg *m, int64_t expires_at)
{
  struct mem_store *ms = user;
  if (ms->fail)
    return ms->fail;
  struct mem_row *r = mem_find(ms, m->topic);
  if (!r && ms->nrows == 16)
    return -ENOSPC;
  if (!r)
    r = &ms->rows[ms->nrows++];
  snprintf(r->topic, sizeof r->topic, "%s", m->topic);
  memcpy(r->payload, m->payload, m->len);
  r->len = m->len;
  r->expires_at = expires_at;
  ms->saves++;
  return 0;
}

static int mem_remove(void *user, const char *topic)
{
  struct mem_store *ms = user;
  struct mem_row *r = mem_find(ms, topic);
  ms->removes++;
  if (r)
    *r = ms->rows[--ms->nrows];
  return 0;
}

static int mem_load(void *user,
                    void (*fn)(void *arg, const struct bus_msg *m,
                               int64_t expires_at),
                    void *arg)
{
  struct mem_store *ms = user;
  for (int i = 0; i < ms->nrows; i++) {
    struct bus_msg m = {.topic = ms->rows[i].topic,
                        .payload = (const uint8_t *)ms->rows[i].payload,
                        .len = ms->rows[i].len,
                        .cf = -1,
                        .retain = true};
    fn(arg, &m, ms->rows[i].expires_at);
  }
  return 0;
}

static void test_persist(void **state)
{
  (void)state;
  struct mem_store ms = {0};
  struct bus_persist pt = {mem_save, mem_remove, mem_load, &ms};
  struct bus *b = new_bus(NULL, &pt);
  struct probe p = {0};
  sub(b, "#", &p);
  assert_int_equal(pub(b, "k/1", "v1", true, 0), 0);
  assert_int_equal(ms.saves, 1); /* stored before bus_publish() returned */
  assert_int_equal(pub(b, "k/2", "v2", true, 50), 0);
  assert_int_equal(ms.rows[1].expires_at, 1050);
  assert_int_equal(pub(b, "k/3", "v3", true, 0), 0);
  assert_int_equal(pub(b, "k/3", "", true, 0), 0); /* clear: removed */
  assert_int_equal(ms.nrows, 2);
  assert_int_equal(pub(b, "live", "x", false, 0), 0); /* not stored */
  assert_int_equal(ms.saves, 3);
  /* A failed save: not retained, not delivered, the error returned. */
  ms.fail = -EIO;
  int before = p.count;
  assert_int_equal(pub(b, "k/4", "v4", true, 0), -EIO);
  assert_int_equal(p.count, before);
  assert_int_equal(stats(b).retained, 2);
  ms.fail = 0;
  bus_free(b);

  /* A restart loads them; later, k/2 has expired on disk: dropped and
   * removed. */
  b = new_bus(NULL, &pt);
  struct probe q = {0};
  sub(b, "k/+", &q);
  assert_int_equal(q.count, 2);
  assert_string_equal(LOG[0].payload, "v1");
  assert_string_equal(LOG[1].payload, "v2");
  bus_free(b);
  NOW = 1060;
  struct bus_embedded_config cfg = {.now_s = clock_fn};
  assert_int_equal(bus_embedded_new(&cfg, &pt, &b), 0);
  assert_int_equal(stats(b).retained, 1);
  assert_int_equal(stats(b).expired, 1);
  assert_int_equal(ms.nrows, 1);
  assert_string_equal(ms.rows[0].topic, "k/1");
  /* Expiry in memory removes the stored copy too. */
  assert_int_equal(pub(b, "k/5", "v5", true, 5), 0);
  assert_int_equal(ms.nrows, 2);
  NOW += 5;
  assert_int_equal(pub(b, "x", "", false, 0), 0);
  assert_int_equal(ms.nrows, 1);
  bus_free(b);
}

static void test_caps(void **state)
{
  (void)state;
  struct bus_embedded_config cfg = {
      .max_retained = 2, .max_retained_bytes = 10, .max_subscriptions = 2};
  struct bus *b = new_bus(&cfg, NULL);
  struct probe p = {0}, q = {0}, r = {0};
  sub(b, "#", &p);
  assert_int_equal(pub(b, "a", "1234", true, 0), 0);
  assert_int_equal(pub(b, "b", "1234", true, 0), 0);
  assert_int_equal(pub(b, "c", "1", true, 0), -ENOSPC); /* count */
  assert_int_equal(p.count, 2); /* not delivered either */
  assert_int_equal(pub(b, "a", "123456", true, 0), 0);      /* replaced: 10 */
  assert_int_equal(pub(b, "b", "12345", true, 0), -ENOSPC); /* bytes */
  assert_int_equal(pub(b, "c", "1", false, 0), 0); /* not retained: fine */
  assert_int_equal(stats(b).retained_bytes, 10);
  sub(b, "a", &q);
  struct bus_sub *s = NULL;
  assert_int_equal(bus_subscribe(b, "z", 0, on_msg, &r, &s), -ENOSPC);
  bus_unsubscribe(b, q.sub);
  sub(b, "z", &r);
  assert_int_equal(stats(b).subscriptions, 2);
  bus_free(b);
}

/* Subscriptions are separate entities, served in the order made. */
static void test_overlap_order(void **state)
{
  (void)state;
  struct bus *b = new_bus(NULL, NULL);
  static const char *filters[] = {"a/#", "a/b", "+/b", "a/b",
                                  "#",   "a/c", "+/+"};
  struct probe p[7] = {{0}};
  for (int i = 0; i < 7; i++) {
    p[i].who = i;
    assert_int_equal(
        bus_subscribe(b, filters[i], i % 3, on_msg, &p[i], &p[i].sub), 0);
  }
  struct bus_msg m = {.topic = "a/b",
                      .payload = (const uint8_t *)"m",
                      .len = 1,
                      .cf = -1,
                      .qos = 1};
  assert_int_equal(bus_publish(b, &m), 0);
  static const int order[] = {0, 1, 2, 3, 4, 6};
  assert_int_equal(NLOG, 6);
  for (int i = 0; i < 6; i++) {
    assert_int_equal(LOG[i].who, order[i]);
    assert_int_equal(LOG[i].qos, order[i] % 3 < 1 ? order[i] % 3 : 1);
  }
  assert_int_equal(stats(b).delivered, 6);
  bus_free(b);
}

static void test_reentrant_unsubscribe(void **state)
{
  (void)state;
  struct bus *b = new_bus(NULL, NULL);
  struct probe p[4] = {{.who = 0}, {.who = 1}, {.who = 2}, {.who = 3}};
  for (int i = 0; i < 4; i++)
    sub(b, i == 3 ? "t/#" : "t", &p[i]);
  p[1].unsub_self = true;
  p[0].unsub_other = &p[2].sub; /* later in this very delivery */
  assert_int_equal(pub(b, "t", "1", false, 0), 0);
  assert_int_equal(pub(b, "t", "2", false, 0), 0);
  assert_int_equal(p[0].count, 2);
  assert_int_equal(p[1].count, 1);
  assert_int_equal(p[2].count, 0);
  assert_int_equal(p[3].count, 2);
  assert_int_equal(stats(b).subscriptions, 2);
  /* Everyone on a node leaves during one delivery: the node goes after. */
  p[0].unsub_self = true;
  p[3].unsub_self = true;
  assert_int_equal(pub(b, "t", "3", false, 0), 0);
  assert_int_equal(stats(b).subscriptions, 0);
  assert_int_equal(pub(b, "t", "4", false, 0), 0);
  assert_int_equal(p[0].count + p[3].count, 6);
  bus_free(b);
}

static void test_reentrant_publish(void **state)
{
  (void)state;
  struct bus *b = new_bus(NULL, NULL);
  struct probe p0 = {.who = 0, .pub_topic = "y", .pub_payload = "Y"};
  struct probe p1 = {.who = 1}, p2 = {.who = 2};
  sub(b, "x", &p0);
  sub(b, "#", &p1);
  sub(b, "+", &p2);
  assert_int_equal(pub(b, "x", "X", false, 0), 0);
  assert_int_equal(p0.rc, 0);
  /* Everyone gets X before anyone gets Y. */
  static const struct {
    int who;
    const char *payload;
  } want[] = {{0, "X"}, {1, "X"}, {2, "X"}, {1, "Y"}, {2, "Y"}};
  assert_int_equal(NLOG, 5);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(LOG[i].who, want[i].who);
    assert_string_equal(LOG[i].payload, want[i].payload);
  }
  assert_int_equal(stats(b).retained, 1); /* Y */
  bus_free(b);
}

static void test_reentrant_subscribe(void **state)
{
  (void)state;
  struct bus *b = new_bus(NULL, NULL);
  struct probe child = {.who = 9};
  struct probe p0 = {.who = 0, .sub_filter = "x", .child = &child};
  sub(b, "x", &p0);
  assert_int_equal(pub(b, "x", "1", true, 0), 0);
  /* The new one got the retained "1" at once, not the live copy too. */
  assert_int_equal(p0.rc, 0);
  assert_int_equal(child.count, 1);
  assert_true(LOG[1].from_retained);
  assert_int_equal(pub(b, "x", "2", false, 0), 0);
  assert_int_equal(child.count, 2);
  assert_false(LOG[3].from_retained);
  bus_unsubscribe(b, child.sub);
  bus_free(b);
}

/* Callbacks during the retained delivery of a new subscription. */
static void test_reentrant_retained(void **state)
{
  (void)state;
  struct bus *b = new_bus(NULL, NULL);
  assert_int_equal(pub(b, "r/1", "1", true, 0), 0);
  assert_int_equal(pub(b, "r/2", "2", true, 0), 0);
  assert_int_equal(pub(b, "r/3", "3", true, 0), 0);
  struct probe p = {.unsub_self = true};
  sub(b, "r/#", &p);
  assert_int_equal(p.count, 1);
  assert_int_equal(stats(b).subscriptions, 0);
  /* Clearing r/2 from the first callback: r/2 is not sent as retained,
   * and the clear comes live after the retained ones. */
  struct probe q = {.who = 1, .pub_topic = "r/2", .pub_payload = ""};
  NLOG = 0;
  sub(b, "r/#", &q);
  assert_int_equal(q.rc, 0);
  assert_int_equal(NLOG, 3);
  assert_string_equal(LOG[0].payload, "1");
  assert_string_equal(LOG[1].payload, "3");
  assert_string_equal(LOG[2].topic, "r/2");
  assert_string_equal(LOG[2].payload, "");
  assert_false(LOG[2].from_retained);
  assert_int_equal(stats(b).retained, 2);
  bus_free(b);
}

static double elapsed_us(const struct timespec *t0)
{
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) * 1e6 +
         (double)(t1.tv_nsec - t0->tv_nsec) / 1e3;
}

enum { MANY = 10000 };

static void count_fn(void *user, const struct bus_msg *m)
{
  (void)m;
  (*(int *)user)++;
}

static void test_many_on_one_topic(void **state)
{
  (void)state;
  struct bus *b = new_bus(NULL, NULL);
  static int counts[MANY];
  static struct bus_sub *subs[MANY];
  memset(counts, 0, sizeof counts);
  for (int i = 0; i < MANY; i++)
    assert_int_equal(bus_subscribe(b, i % 2 ? "dev/1/temp" : "dev/+/temp", 0,
                                   count_fn, &counts[i], &subs[i]),
                     0);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(pub(b, "dev/1/temp", "21.5", false, 0), 0);
  double us = elapsed_us(&t0);
  for (int i = 0; i < MANY; i++)
    assert_int_equal(counts[i], 1);
  assert_int_equal(stats(b).delivered, MANY);
  printf("bench bus_publish fanout=%d us=%.0f ns_per_delivery=%.1f\n", MANY, us,
         us * 1e3 / MANY);
  for (int i = 0; i < MANY; i++)
    bus_unsubscribe(b, subs[i]);
  assert_int_equal(stats(b).subscriptions, 0);
  bus_free(b);
}

static void test_many_topics(void **state)
{
  (void)state;
  struct bus *b = new_bus(NULL, NULL);
  static int counts[MANY];
  memset(counts, 0, sizeof counts);
  char t[64];
  for (int i = 0; i < MANY; i++) {
    struct bus_sub *s;
    snprintf(t, sizeof t, "dev/%d/temp", i);
    assert_int_equal(bus_subscribe(b, t, 0, count_fn, &counts[i], &s), 0);
    assert_int_equal(pub(b, t, "r", true, 0), 0);
  }
  assert_int_equal(stats(b).delivered, MANY);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < MANY; i++) {
    snprintf(t, sizeof t, "dev/%d/temp", (i * 7919) % MANY);
    assert_int_equal(pub(b, t, "x", false, 0), 0);
  }
  double us = elapsed_us(&t0);
  for (int i = 0; i < MANY; i++)
    assert_int_equal(counts[i], 2);
  printf("bench bus_publish subscriptions=%d topics=%d ns_per_publish=%.1f\n",
         MANY, MANY, us * 1e3 / MANY);
  int all = 0;
  struct bus_sub *s;
  assert_int_equal(bus_subscribe(b, "dev/+/temp", 0, count_fn, &all, &s), 0);
  assert_int_equal(all, MANY);
  bus_free(b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_topic_valid),
      cmocka_unit_test(test_filter_match),
      cmocka_unit_test(test_tree_match),
      cmocka_unit_test(test_einval),
      cmocka_unit_test(test_retained_replace_clear),
      cmocka_unit_test(test_retained_expiry),
      cmocka_unit_test(test_retained_order),
      cmocka_unit_test(test_persist),
      cmocka_unit_test(test_caps),
      cmocka_unit_test(test_overlap_order),
      cmocka_unit_test(test_reentrant_unsubscribe),
      cmocka_unit_test(test_reentrant_publish),
      cmocka_unit_test(test_reentrant_subscribe),
      cmocka_unit_test(test_reentrant_retained),
      cmocka_unit_test(test_many_on_one_topic),
      cmocka_unit_test(test_many_topics),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
