/* The topic tree of the embedded bus (bus_tree.c), kept apart from the
 * bus's policy (bus_embedded.c): nodes are filter or topic levels, found
 * through one hash table keyed by (parent, level), holding the
 * subscriptions made to that filter and the retained message of that
 * topic. Internal to the embedded bus.
 */
#ifndef COAPD_BUS_TREE_H
#define COAPD_BUS_TREE_H

#include "bus.h"

struct bus_ret; /* a retained message, bus_embedded.c's */

struct bus_node {
  struct bus_node *parent;
  struct bus_node *hnext;              /* hash chain */
  struct bus_node *child, *sib, *sibp; /* children, for wildcard walks */
  struct bus_sub *subs, *subs_tail;    /* in subscription order */
  struct bus_ret *ret;
  struct bus_node *dirty_next;
  bool dirty;
  size_t len;
  char name[];
};

struct bus_sub {
  struct bus_node *node;
  struct bus_sub *next, *prev;
  bus_deliver_fn fn;
  void *user;
  uint64_t seq; /* subscription order */
  uint8_t qos;
  bool dead; /* unsubscribed while busy; freed by bus_tree_sweep() */
};

struct bus_tree {
  struct bus_node *root;
  struct bus_node **tab; /* hash buckets, a power of two */
  size_t tab_size, nodes;
  /* Nonzero while a delivery may hold pointers into the tree: nothing
   * is freed then, only put on the dirty list. */
  unsigned busy;
  struct bus_node *dirty;
};

/* One level of a topic or filter, a view. */
struct bus_level {
  const char *p;
  size_t len;
};

/* A growable array of pointers (matched nodes, found retained). */
struct bus_vec {
  void **v;
  size_t len, cap;
};

int bus_tree_init(struct bus_tree *t);
/* Frees every node, subscription and retained message (with free()). */
void bus_tree_close(struct bus_tree *t);

/* Splits a valid topic or filter into lv[BUS_LEVELS_MAX]; returns the
 * count. */
int bus_tree_split(const char *s, struct bus_level *lv);

/* The node of a path: found, or NULL (find); made if missing, or NULL
 * for want of memory (get). */
struct bus_node *bus_tree_find(const struct bus_tree *t,
                               const struct bus_level *lv, int cnt);
struct bus_node *bus_tree_get(struct bus_tree *t, const struct bus_level *lv,
                              int cnt);

/* Says n may have become empty: pruned now, or by bus_tree_sweep(). */
void bus_tree_settle(struct bus_tree *t, struct bus_node *n);
/* Unlinks s from its node (bus_tree_settle() that node afterwards). */
void bus_tree_unlink(struct bus_sub *s);
/* Frees the dead subscriptions and prunes the nodes marked while busy. */
void bus_tree_sweep(struct bus_tree *t);

/* Appends to out the nodes with subscriptions whose filters match the
 * topic lv[0..cnt), each once. Returns 0 or -ENOMEM. */
int bus_tree_match(const struct bus_tree *t, const struct bus_level *lv,
                   int cnt, struct bus_vec *out);
/* Appends to out the retained messages of the topics the filter
 * lv[0..cnt) matches. Returns 0 or -ENOMEM. */
int bus_tree_retained(const struct bus_tree *t, const struct bus_level *lv,
                      int cnt, struct bus_vec *out);

int bus_vec_push(struct bus_vec *v, void *p);

#endif
