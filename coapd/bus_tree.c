/* The topic tree of the embedded bus, and how matching works.
 *
 * Every subscription filter is a path in one tree whose nodes are levels:
 * "a/+/c" is the node "c" under the node "+" under the node "a" under
 * the root, and the subscriptions to that filter hang off that node in
 * the order they were made. A topic is a filter without wildcards, so the
 * same tree holds the retained message of a topic at its node. Children
 * are found through one hash table keyed by (parent, level name), so a
 * node with 100,000 children costs no more to step through than one with
 * two; each node also lists its children, for the walks that must visit
 * them all.
 *
 * To publish to "a/b/c" we walk the topic's levels from the root and, at
 * each node, follow up to three children: the one named like the topic's
 * next level, "+" (any one level) and "#" (all the rest, and its parent
 * too: "a/#" matches "a", MQTT 3.1.1 §4.7.1.2). At the first level the
 * wildcards are not followed for a topic starting with '$' (§4.7.2).
 * The walk collects the nodes whose filters match; each filter is one
 * node, so no node is met twice, and the cost is in the matched levels,
 * never in the subscriptions that do not match.
 *
 * A new subscription walks its filter the other way round to find the
 * retained messages it must get: a '+' visits every child, a '#' a whole
 * subtree, and neither enters a '$' topic at the first level. Wildcard
 * nodes are skipped there, as no topic passes through them.
 *
 * A node lives while it holds a subscription, a retained message or a
 * child. While a delivery runs (busy), nothing is freed: a node that may
 * have emptied is put on the dirty list, and bus_tree_sweep() prunes it
 * when the outermost call ends, so pointers held by a delivery stay
 * valid whatever its callbacks do.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus_tree.h"

int bus_tree_split(const char *s, struct bus_level *lv)
{
  int n = 0;
  for (;;) {
    size_t l = strcspn(s, "/");
    lv[n].p = s;
    lv[n].len = l;
    n++;
    if (s[l] == '\0')
      return n;
    s += l + 1;
  }
}

/* The tree. */

static size_t hash_of(const struct bus_node *parent, const char *p, size_t len)
{
  uint64_t h = 14695981039346656037ull; /* FNV-1a, then the parent */
  for (size_t i = 0; i < len; i++)
    h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
  h ^= (uint64_t)(uintptr_t)parent * 0x9e3779b97f4a7c15ull;
  return (size_t)(h ^ (h >> 32));
}

static struct bus_node *child(const struct bus_tree *t,
                              const struct bus_node *parent, const char *p,
                              size_t len)
{
  size_t i = hash_of(parent, p, len) & (t->tab_size - 1);
  for (struct bus_node *n = t->tab[i]; n; n = n->hnext)
    if (n->parent == parent && n->len == len && memcmp(n->name, p, len) == 0)
      return n;
  return NULL;
}

static bool is_wild(const struct bus_node *n)
{
  return n->len == 1 && (n->name[0] == '+' || n->name[0] == '#');
}

static void tab_grow(struct bus_tree *t)
{
  size_t size = t->tab_size * 2;
  struct bus_node **tab = calloc(size, sizeof *tab);
  if (!tab)
    return; /* longer chains: slower, still correct */
  for (size_t i = 0; i < t->tab_size; i++)
    for (struct bus_node *n = t->tab[i], *next; n; n = next) {
      next = n->hnext;
      size_t h = hash_of(n->parent, n->name, n->len) & (size - 1);
      n->hnext = tab[h];
      tab[h] = n;
    }
  free(t->tab);
  t->tab = tab;
  t->tab_size = size;
}

static struct bus_node *child_add(struct bus_tree *t, struct bus_node *parent,
                                  const char *p, size_t len)
{
  struct bus_node *n = calloc(1, sizeof *n + len + 1);
  if (!n)
    return NULL;
  n->parent = parent;
  n->len = len;
  memcpy(n->name, p, len);
  if (t->nodes >= t->tab_size)
    tab_grow(t);
  size_t h = hash_of(parent, p, len) & (t->tab_size - 1);
  n->hnext = t->tab[h];
  t->tab[h] = n;
  n->sib = parent->child;
  if (n->sib)
    n->sib->sibp = n;
  parent->child = n;
  t->nodes++;
  return n;
}

/* Frees n, then its ancestors, while they hold nothing. A node still on
 * the dirty list is left for its own turn in sweep(), which prunes from
 * there upward: that way sweep() never meets a node freed under it. */
static void prune(struct bus_tree *t, struct bus_node *n)
{
  while (n != t->root && !n->dirty && !n->subs && !n->ret && !n->child) {
    struct bus_node *parent = n->parent;
    size_t h = hash_of(parent, n->name, n->len) & (t->tab_size - 1);
    struct bus_node **pp = &t->tab[h];
    while (*pp != n)
      pp = &(*pp)->hnext;
    *pp = n->hnext;
    if (n->sibp)
      n->sibp->sib = n->sib;
    else
      parent->child = n->sib;
    if (n->sib)
      n->sib->sibp = n->sibp;
    t->nodes--;
    free(n);
    n = parent;
  }
}

/* After n lost something: prune it now, or at the end of the outermost
 * call when a delivery may still hold pointers into the tree. */
void bus_tree_settle(struct bus_tree *t, struct bus_node *n)
{
  if (!t->busy) {
    prune(t, n);
  } else if (!n->dirty) {
    n->dirty = true;
    n->dirty_next = t->dirty;
    t->dirty = n;
  }
}

struct bus_node *bus_tree_get(struct bus_tree *t, const struct bus_level *lv,
                              int cnt)
{
  struct bus_node *cur = t->root;
  for (int i = 0; i < cnt; i++) {
    struct bus_node *c = child(t, cur, lv[i].p, lv[i].len);
    if (!c && !(c = child_add(t, cur, lv[i].p, lv[i].len))) {
      bus_tree_settle(t, cur); /* the levels made so far */
      return NULL;
    }
    cur = c;
  }
  return cur;
}

struct bus_node *bus_tree_find(const struct bus_tree *t,
                               const struct bus_level *lv, int cnt)
{
  struct bus_node *cur = t->root;
  for (int i = 0; i < cnt && cur; i++)
    cur = child(t, cur, lv[i].p, lv[i].len);
  return cur;
}

void bus_tree_unlink(struct bus_sub *s)
{
  struct bus_node *n = s->node;
  if (s->prev)
    s->prev->next = s->next;
  else
    n->subs = s->next;
  if (s->next)
    s->next->prev = s->prev;
  else
    n->subs_tail = s->prev;
}

/* Frees what the outermost call's deliveries left marked. */
void bus_tree_sweep(struct bus_tree *t)
{
  while (t->dirty) {
    struct bus_node *n = t->dirty;
    t->dirty = n->dirty_next;
    n->dirty = false;
    for (struct bus_sub *s = n->subs, *next; s; s = next) {
      next = s->next;
      if (s->dead) {
        bus_tree_unlink(s);
        free(s);
      }
    }
    prune(t, n);
  }
}

int bus_vec_push(struct bus_vec *v, void *p)
{
  if (v->len == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 16;
    void **nv = realloc(v->v, cap * sizeof *nv);
    if (!nv)
      return -ENOMEM;
    v->v = nv;
    v->cap = cap;
  }
  v->v[v->len++] = p;
  return 0;
}

/* '$' topics are out of the wildcards' reach at the first level. */
static bool dollar(const struct bus_level *lv)
{
  return lv->len > 0 && lv->p[0] == '$';
}

static int match(const struct bus_tree *t, const struct bus_node *n,
                 const struct bus_level *lv, int i, int cnt,
                 struct bus_vec *out)
{
  bool wild = i > 0 || !dollar(&lv[0]);
  struct bus_node *c;
  int rc;
  if (wild && (c = child(t, n, "#", 1)) && c->subs &&
      (rc = bus_vec_push(out, c)))
    return rc;
  if (i == cnt)
    return n->subs ? bus_vec_push(out, (void *)n) : 0;
  if (wild && (c = child(t, n, "+", 1)) &&
      (rc = match(t, c, lv, i + 1, cnt, out)))
    return rc;
  c = child(t, n, lv[i].p, lv[i].len);
  return c ? match(t, c, lv, i + 1, cnt, out) : 0;
}

int bus_tree_match(const struct bus_tree *t, const struct bus_level *lv,
                   int cnt, struct bus_vec *out)
{
  return match(t, t->root, lv, 0, cnt, out);
}

static int subtree(const struct bus_node *n, bool top, struct bus_vec *out)
{
  for (struct bus_node *c = n->child; c; c = c->sib) {
    if (is_wild(c) || (top && c->len > 0 && c->name[0] == '$'))
      continue;
    int rc = c->ret ? bus_vec_push(out, c->ret) : 0;
    if (rc || (rc = subtree(c, false, out)))
      return rc;
  }
  return 0;
}

static int retained(const struct bus_tree *t, const struct bus_node *n,
                    const struct bus_level *lv, int i, int cnt,
                    struct bus_vec *out)
{
  if (i == cnt)
    return n->ret ? bus_vec_push(out, n->ret) : 0;
  if (lv[i].len == 1 && lv[i].p[0] == '#') {
    int rc = n->ret ? bus_vec_push(out, n->ret) : 0; /* the parent */
    return rc ? rc : subtree(n, i == 0, out);
  }
  if (lv[i].len == 1 && lv[i].p[0] == '+') {
    for (struct bus_node *c = n->child; c; c = c->sib) {
      if (is_wild(c) || (i == 0 && c->len > 0 && c->name[0] == '$'))
        continue;
      int rc = retained(t, c, lv, i + 1, cnt, out);
      if (rc)
        return rc;
    }
    return 0;
  }
  struct bus_node *c = child(t, n, lv[i].p, lv[i].len);
  return c ? retained(t, c, lv, i + 1, cnt, out) : 0;
}

int bus_tree_retained(const struct bus_tree *t, const struct bus_level *lv,
                      int cnt, struct bus_vec *out)
{
  return retained(t, t->root, lv, 0, cnt, out);
}

int bus_tree_init(struct bus_tree *t)
{
  *t = (struct bus_tree){.tab_size = 64};
  t->root = calloc(1, sizeof *t->root + 1);
  t->tab = calloc(t->tab_size, sizeof *t->tab);
  if (!t->root || !t->tab) {
    free(t->root);
    free(t->tab);
    return -ENOMEM;
  }
  return 0;
}

static void node_free(struct bus_node *n)
{
  for (struct bus_sub *s = n->subs, *next; s; s = next) {
    next = s->next;
    free(s);
  }
  free(n->ret);
  free(n);
}

void bus_tree_close(struct bus_tree *t)
{
  for (size_t i = 0; t->tab && i < t->tab_size; i++)
    for (struct bus_node *n = t->tab[i], *next; n; n = next) {
      next = n->hnext;
      node_free(n);
    }
  if (t->root)
    node_free(t->root);
  free(t->tab);
  *t = (struct bus_tree){0};
}
