/* Unit tests for the CoRE Link Format module (RFC 6690): reading links
 * from documents, including the RFC's own examples and what libcoap and
 * Californium send, the §4.1 query filter, the writer, and every syntax
 * error the reader reports. Only the public API is used. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "coapkit/link.h"

enum { MAX_LINKS = 16 };

/* Reads every link of doc into links[]; returns the count or the error. */
static int parse_all(const char *doc, struct ck_link *links, int max)
{
  struct ck_link_reader r;
  ck_link_reader_init(&r, doc, strlen(doc));
  int n = 0;
  for (;;) {
    struct ck_link l;
    int rc = ck_link_next(&r, &l);
    if (rc < 0)
      return rc;
    if (rc == 0)
      return n;
    assert_int_equal(rc, 1);
    assert_true(n < max);
    links[n++] = l;
  }
}

static void assert_view(const char *p, size_t len, const char *want)
{
  assert_non_null(p);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(p, want, len);
}

static void assert_target(const struct ck_link *l, const char *want)
{
  assert_view(l->target, l->target_len, want);
}

/* Checks that l has a parameter name whose view is val (NULL: bare). */
static void assert_param(const struct ck_link *l, const char *name,
                         const char *val, bool quoted)
{
  const struct ck_link_param *p = ck_link_param(l, name);
  assert_non_null(p);
  if (!val) {
    assert_null(p->val);
    return;
  }
  assert_view(p->val, p->val_len, val);
  assert_int_equal(p->quoted, quoted);
}

static bool match(const struct ck_link *l, const char *filter)
{
  return ck_link_match(l, filter, strlen(filter));
}

/* Counts the links of doc that filter selects. */
static int count_matches(const char *doc, const char *filter)
{
  struct ck_link links[MAX_LINKS];
  int n = parse_all(doc, links, MAX_LINKS);
  assert_true(n >= 0);
  int hits = 0;
  for (int i = 0; i < n; i++)
    hits += match(&links[i], filter);
  return hits;
}

/* RFC 6690 §5, the richest of its examples: a collection, an anchor with
 * rel="describedby" on a link that spans two lines, and rel="alternate". */
static const char rfc_5_doc[] =
    "</sensors>;ct=40;title=\"Sensor Index\",\n"
    "</sensors/temp>;rt=\"temperature-c\";if=\"sensor\",\n"
    "</sensors/light>;rt=\"light-lux\";if=\"sensor\",\n"
    "<http://www.example.com/sensors/t123>;anchor=\"/sensors/temp\"\n"
    ";rel=\"describedby\",\n"
    "</t>;anchor=\"/sensors/temp\";rel=\"alternate\"";

/* ---- reading ---------------------------------------------------------- */

static void test_rfc_sensors_if(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  const char *doc = "</sensors/temp>;if=\"sensor\","
                    "</sensors/light>;if=\"sensor\"";
  assert_int_equal(parse_all(doc, l, MAX_LINKS), 2);
  assert_target(&l[0], "/sensors/temp");
  assert_int_equal(l[0].nparams, 1);
  assert_param(&l[0], "if", "sensor", true);
  assert_target(&l[1], "/sensors/light");
  assert_param(&l[1], "if", "sensor", true);
}

static void test_rfc_sensors_ct40(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  assert_int_equal(parse_all("</sensors>;ct=40", l, MAX_LINKS), 1);
  assert_target(&l[0], "/sensors");
  assert_param(&l[0], "ct", "40", false);
  assert_true(match(&l[0], "ct=40"));
}

static void test_rfc_anchor_describedby(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  assert_int_equal(parse_all(rfc_5_doc, l, MAX_LINKS), 5);
  assert_target(&l[0], "/sensors");
  assert_param(&l[0], "title", "Sensor Index", true);
  assert_param(&l[2], "rt", "light-lux", true);
  assert_target(&l[3], "http://www.example.com/sensors/t123");
  assert_int_equal(l[3].nparams, 2);
  assert_param(&l[3], "anchor", "/sensors/temp", true);
  assert_param(&l[3], "rel", "describedby", true);
  assert_target(&l[4], "/t");
  assert_param(&l[4], "rel", "alternate", true);
  /* The anchor is a parameter, not the target. */
  assert_true(match(&l[3], "anchor=/sensors/temp"));
  assert_false(match(&l[3], "href=/sensors/temp"));
}

static void test_multi_value_rt(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  const char *doc = "</temp>;rt=\"temperature-c temperature-f\";if=sensor";
  assert_int_equal(parse_all(doc, l, MAX_LINKS), 1);
  const struct ck_link_param *rt = ck_link_param(&l[0], "rt");
  assert_non_null(rt);
  assert_true(ck_link_param_has(rt, "temperature-c", 13));
  assert_true(ck_link_param_has(rt, "temperature-f", 13));
  assert_false(ck_link_param_has(rt, "temperature", 11));
  assert_false(ck_link_param_has(rt, "c temperature", 13));
  assert_true(match(&l[0], "rt=temperature-f"));
  assert_true(match(&l[0], "rt=temperature-c"));
  assert_false(match(&l[0], "rt=temperature"));
  /* The decoded form of ?rt=temperature-c%20temperature-f. */
  assert_true(match(&l[0], "rt=temperature-c temperature-f"));
}

static void test_case_insensitive_names(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  assert_int_equal(parse_all("</a>;RT=\"Light\";If=sensor;OBS", l,
                             MAX_LINKS), 1);
  assert_non_null(ck_link_param(&l[0], "rt"));
  assert_non_null(ck_link_param(&l[0], "IF"));
  assert_non_null(ck_link_param(&l[0], "obs"));
  assert_true(match(&l[0], "rt=Light"));
  assert_true(match(&l[0], "Rt=Light"));
  assert_true(match(&l[0], "IF=sensor"));
  assert_true(match(&l[0], "Obs"));
  assert_true(match(&l[0], "HREF=/a"));
  /* Values stay case-sensitive. */
  assert_false(match(&l[0], "rt=light"));
  assert_false(match(&l[0], "if=Sensor"));
}

static void test_ct_single_and_list(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  assert_int_equal(parse_all("</a>;ct=0,</b>;ct=\"0 40\",</c>;ct=41", l,
                             MAX_LINKS), 3);
  assert_param(&l[0], "ct", "0", false);
  assert_param(&l[1], "ct", "0 40", true);
  assert_true(ck_link_param_has(ck_link_param(&l[0], "ct"), "0", 1));
  assert_false(ck_link_param_has(ck_link_param(&l[0], "ct"), "40", 2));
  assert_true(ck_link_param_has(ck_link_param(&l[1], "ct"), "40", 2));
  assert_true(match(&l[0], "ct=0"));
  assert_true(match(&l[1], "ct=0"));
  assert_false(match(&l[2], "ct=0"));
  assert_false(match(&l[0], "ct=40"));
  assert_true(match(&l[1], "ct=40"));
  assert_false(match(&l[1], "ct=4"));
  assert_true(match(&l[1], "ct=4*"));
  assert_true(match(&l[2], "ct=4*"));
}

static void test_obs_bare(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  assert_int_equal(parse_all("</obs>;obs;rt=\"observe\",</other>;rt=x", l,
                             MAX_LINKS), 2);
  assert_param(&l[0], "obs", NULL, false);
  assert_int_equal(l[0].nparams, 2);
  assert_false(ck_link_param_has(ck_link_param(&l[0], "obs"), "obs", 3));
  assert_true(match(&l[0], "obs"));
  assert_false(match(&l[1], "obs"));
  /* A bare parameter compares as the empty value. */
  assert_true(match(&l[0], "obs="));
  assert_true(match(&l[0], "obs=*"));
  assert_false(match(&l[0], "obs=1"));
  assert_false(match(&l[1], "obs=*"));
}

static void test_title_escaped_quotes(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  const char *doc = "</a>;title=\"say \\\"hi\\\" \\\\ now\";rt=\"a\\\"b c\"";
  assert_int_equal(parse_all(doc, l, MAX_LINKS), 1);
  /* The view keeps the escapes. */
  assert_param(&l[0], "title", "say \\\"hi\\\" \\\\ now", true);
  assert_param(&l[0], "rt", "a\\\"b c", true);
  /* Matching reads through them. */
  assert_true(match(&l[0], "title=say \"hi\" \\ now"));
  assert_true(match(&l[0], "title=say \"h*"));
  assert_false(match(&l[0], "title=say \\\"hi\\\" \\\\ now"));
  const struct ck_link_param *t = ck_link_param(&l[0], "title");
  assert_true(ck_link_param_has(t, "\"hi\"", 4));
  assert_true(ck_link_param_has(t, "\\", 1));
  assert_true(ck_link_param_has(ck_link_param(&l[0], "rt"), "a\"b", 3));
  assert_true(match(&l[0], "rt=a\"b"));
  /* An escaped ordinary character is that character. */
  assert_int_equal(parse_all("</a>;rt=\"\\x\\y\"", l, MAX_LINKS), 1);
  assert_true(match(&l[0], "rt=xy"));
}

static void test_sz(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  assert_int_equal(parse_all("</firmware/v2.1>;rt=\"firmware\";sz=262144",
                             l, MAX_LINKS), 1);
  assert_param(&l[0], "sz", "262144", false);
  assert_true(match(&l[0], "sz=262144"));
  assert_false(match(&l[0], "sz=26"));
  assert_true(match(&l[0], "sz=26*"));
}

static void test_whitespace_and_newlines(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  const char *doc = "\r\n  </a> ; rt = \"x\" ; obs\t,\r\n"
                    "</b>;if=sensor\r\n"
                    "</c>\n"
                    "\t;ct=0 ,\n"
                    "</d>,\n";
  assert_int_equal(parse_all(doc, l, MAX_LINKS), 4);
  assert_target(&l[0], "/a");
  assert_int_equal(l[0].nparams, 2);
  assert_param(&l[0], "rt", "x", true);
  assert_param(&l[0], "obs", NULL, false);
  assert_target(&l[1], "/b");
  assert_param(&l[1], "if", "sensor", false);
  assert_target(&l[2], "/c");
  assert_param(&l[2], "ct", "0", false);
  assert_target(&l[3], "/d");
  assert_int_equal(l[3].nparams, 0);
}

/* libcoap's and Californium's answers: one line, no spaces, obs bare. */
static void test_implementation_answers(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  const char *libcoap = "</>;title=\"General Info\";ct=0,"
                        "</time>;if=\"clock\";rt=\"ticks\";title=\"Internal "
                        "Clock\";ct=0;obs,</async>;ct=0";
  assert_int_equal(parse_all(libcoap, l, MAX_LINKS), 3);
  assert_target(&l[0], "/");
  assert_param(&l[1], "obs", NULL, false);
  assert_param(&l[1], "title", "Internal Clock", true);
  assert_int_equal(count_matches(libcoap, "obs"), 1);
  assert_int_equal(count_matches(libcoap, "ct=0"), 3);

  const char *cf = "</obs>;obs;rt=\"observe\";title=\"Observable resource "
                   "which changes every 5 seconds\","
                   "</large>;rt=\"block\";sz=1280;title=\"Large resource\","
                   "</multi-format>;ct=\"0 41\";title=\"Resource that exists "
                   "in different content formats (text/plain utf8 and "
                   "application/xml)\"";
  assert_int_equal(parse_all(cf, l, MAX_LINKS), 3);
  assert_param(&l[1], "sz", "1280", false);
  assert_int_equal(count_matches(cf, "ct=41"), 1);
  assert_int_equal(count_matches(cf, "title=Large*"), 1);
}

static void test_empty_documents(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  assert_int_equal(parse_all("", l, MAX_LINKS), 0);
  assert_int_equal(parse_all(" \r\n\t", l, MAX_LINKS), 0);
  assert_int_equal(parse_all("<>", l, MAX_LINKS), 1);
  assert_int_equal(l[0].target_len, 0);

  struct ck_link_reader r;
  ck_link_reader_init(&r, NULL, 0);
  assert_int_equal(ck_link_next(&r, &l[0]), 0);
  assert_int_equal(ck_link_next(&r, &l[0]), 0);
}

static void test_param_limit(void **state)
{
  (void)state;
  char doc[512];
  size_t n = 0;
  n += (size_t)snprintf(doc + n, sizeof doc - n, "</a>");
  for (int i = 0; i < CK_LINK_MAX_PARAMS; i++)
    n += (size_t)snprintf(doc + n, sizeof doc - n, ";p%d=%d", i, i);
  struct ck_link l[MAX_LINKS];
  assert_int_equal(parse_all(doc, l, MAX_LINKS), 1);
  assert_int_equal(l[0].nparams, CK_LINK_MAX_PARAMS);
  assert_param(&l[0], "p23", "23", false);
  snprintf(doc + n, sizeof doc - n, ";obs");
  assert_int_equal(parse_all(doc, l, MAX_LINKS), CK_ELINK_SYNTAX);
}

static void test_syntax_errors(void **state)
{
  (void)state;
  static const char *const bad[] = {
    "a",                   /* no '<' */
    "/a>",                 /* no '<' */
    "</a",                 /* unterminated '>' */
    "</a;rt=x",            /* unterminated '>' */
    "</a\n>",              /* line break inside the target */
    "</<a>",               /* '<' inside the target */
    "</a>;",               /* empty parameter name at the end */
    "</a>;,</b>",          /* empty parameter name before ',' */
    "</a>;;rt=x",          /* empty parameter name */
    "</a>;=x",             /* a value without a name */
    "</a>;\"x\"",          /* a quoted value without a name */
    "</a>;rt=",            /* '=' without a value */
    "</a>;rt=;if=x",       /* '=' without a value */
    "</a>;rt=\"x",         /* unterminated quoted-string */
    "</a>;rt=\"x\\\"",     /* the closing quote is escaped */
    "</a>;rt=\"x\\",       /* a backslash at the very end */
    "</a>;rt=a b",         /* an unquoted value with a space */
    "</a>;rt=\"x\"y",      /* text after a quoted-string */
    "</a>;r@t=x",          /* '@' is not a name character */
    "</a> x",              /* junk after the target */
    "</a> </b>",           /* two links with neither ',' nor line break */
    "</a>,,</b>",          /* an empty link */
    ",</a>",               /* a leading ',' */
    "</a>;rt=x\"",         /* a stray quote */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct ck_link l[MAX_LINKS];
    int rc = parse_all(bad[i], l, MAX_LINKS);
    if (rc != CK_ELINK_SYNTAX)
      fail_msg("\"%s\" gave %d", bad[i], rc);
  }
}

static void test_error_is_sticky(void **state)
{
  (void)state;
  const char *doc = "</a>;rt=x,</b>;;,</c>";
  struct ck_link_reader r;
  struct ck_link l;
  ck_link_reader_init(&r, doc, strlen(doc));
  assert_int_equal(ck_link_next(&r, &l), 1);
  assert_target(&l, "/a");
  assert_int_equal(ck_link_next(&r, &l), CK_ELINK_SYNTAX);
  assert_int_equal(ck_link_next(&r, &l), CK_ELINK_SYNTAX);
  assert_int_equal(ck_link_next(&r, &l), CK_ELINK_SYNTAX);
}

/* The reader must stop at len even when the byte after it would continue
 * the document. */
static void test_reads_only_len(void **state)
{
  (void)state;
  const char *doc = "</a>;rt=\"x\",</b>";
  struct ck_link_reader r;
  struct ck_link l;
  ck_link_reader_init(&r, doc, 4);
  assert_int_equal(ck_link_next(&r, &l), 1);
  assert_int_equal(l.nparams, 0);
  assert_int_equal(ck_link_next(&r, &l), 0);
  ck_link_reader_init(&r, doc, 10);
  assert_int_equal(ck_link_next(&r, &l), CK_ELINK_SYNTAX);
}

/* ---- filtering -------------------------------------------------------- */

static const char filter_doc[] =
    "</sensors/temp>;rt=\"temperature-c temperature-f\";if=\"sensor\","
    "</sensors/light>;rt=\"light-lux\";if=\"sensor\","
    "</sensors>;ct=40,"
    "</actuators/led>;rt=\"light-switch\";if=\"actuator\";obs,"
    "</fw>;sz=1024";

static void test_filter_rt_prefix(void **state)
{
  (void)state;
  assert_int_equal(count_matches(filter_doc, "rt=temperature*"), 1);
  assert_int_equal(count_matches(filter_doc, "rt=temperature-c"), 1);
  assert_int_equal(count_matches(filter_doc, "rt=light*"), 2);
  assert_int_equal(count_matches(filter_doc, "rt=light-lux"), 1);
  assert_int_equal(count_matches(filter_doc, "rt=light"), 0);
}

static void test_filter_href(void **state)
{
  (void)state;
  assert_int_equal(count_matches(filter_doc, "href=/sensors*"), 3);
  assert_int_equal(count_matches(filter_doc, "href=/sensors"), 1);
  assert_int_equal(count_matches(filter_doc, "href=/sensors/*"), 2);
  assert_int_equal(count_matches(filter_doc, "href=/fw"), 1);
  assert_int_equal(count_matches(filter_doc, "href=/f"), 0);
  assert_int_equal(count_matches(filter_doc, "href=*"), 5);
  assert_int_equal(count_matches(filter_doc, "href"), 5);
}

static void test_filter_if(void **state)
{
  (void)state;
  assert_int_equal(count_matches(filter_doc, "if=sensor"), 2);
  assert_int_equal(count_matches(filter_doc, "if=actuator"), 1);
  assert_int_equal(count_matches(filter_doc, "if=sens"), 0);
}

static void test_filter_no_match(void **state)
{
  (void)state;
  assert_int_equal(count_matches(filter_doc, "rt=humidity"), 0);
  assert_int_equal(count_matches(filter_doc, "title=*"), 0);
  assert_int_equal(count_matches(filter_doc, "nosuch"), 0);
  assert_int_equal(count_matches(filter_doc, "=sensor"), 0);
  assert_int_equal(count_matches(filter_doc, "="), 0);
  assert_int_equal(count_matches(filter_doc, "rt="), 0);
}

static void test_filter_wildcard_only(void **state)
{
  (void)state;
  /* "rt=*" selects exactly the links that carry rt. */
  assert_int_equal(count_matches(filter_doc, "rt=*"), 3);
  assert_int_equal(count_matches(filter_doc, "rt"), 3);
  assert_int_equal(count_matches(filter_doc, "obs"), 1);
  assert_int_equal(count_matches(filter_doc, "ct=*"), 1);
  /* An empty filter selects everything. */
  assert_int_equal(count_matches(filter_doc, ""), 5);
}

static void test_filter_rfc_examples(void **state)
{
  (void)state;
  /* RFC 6690 §5: ?rt=light-lux and ?if=sensor on the §5 document. */
  assert_int_equal(count_matches(rfc_5_doc, "rt=light-lux"), 1);
  assert_int_equal(count_matches(rfc_5_doc, "if=sensor"), 2);
  assert_int_equal(count_matches(rfc_5_doc, "rel=describedby"), 1);
  assert_int_equal(count_matches(rfc_5_doc, "anchor=/sensors/temp"), 2);
  assert_int_equal(count_matches(rfc_5_doc, "title=Sensor Index"), 1);
  /* title is not a list: one word does not select it. */
  assert_int_equal(count_matches(rfc_5_doc, "title=Sensor"), 0);
}

static void test_filter_repeated_param(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  assert_int_equal(parse_all("</a>;rt=one;rt=two", l, MAX_LINKS), 1);
  assert_true(match(&l[0], "rt=one"));
  assert_true(match(&l[0], "rt=two"));
  /* ck_link_param() gives the first. */
  assert_param(&l[0], "rt", "one", false);
}

static void test_param_has_edges(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  assert_int_equal(parse_all("</a>;rt=\"  x\t y  \";if=\"\"", l,
                             MAX_LINKS), 1);
  const struct ck_link_param *rt = ck_link_param(&l[0], "rt");
  assert_true(ck_link_param_has(rt, "x", 1));
  assert_true(ck_link_param_has(rt, "y", 1));
  assert_false(ck_link_param_has(rt, "", 0));
  assert_false(ck_link_param_has(rt, "x y", 3));
  assert_false(ck_link_param_has(ck_link_param(&l[0], "if"), "", 0));
  assert_false(ck_link_param_has(NULL, "x", 1));
  assert_null(ck_link_param(&l[0], "r"));
  assert_null(ck_link_param(&l[0], "rtt"));
  /* An empty quoted value is "" and so is matched by "if=". */
  assert_true(match(&l[0], "if="));
  assert_true(match(&l[0], "if=*"));
}

/* ---- writing ---------------------------------------------------------- */

static void assert_same_links(const struct ck_link *a, int na,
                              const struct ck_link *b, int nb)
{
  assert_int_equal(na, nb);
  for (int i = 0; i < na; i++) {
    assert_int_equal(a[i].target_len, b[i].target_len);
    assert_memory_equal(a[i].target, b[i].target, a[i].target_len);
    assert_int_equal(a[i].nparams, b[i].nparams);
    for (unsigned j = 0; j < a[i].nparams; j++) {
      const struct ck_link_param *p = &a[i].params[j];
      const struct ck_link_param *q = &b[i].params[j];
      assert_int_equal(p->name_len, q->name_len);
      assert_memory_equal(p->name, q->name, p->name_len);
      assert_int_equal(p->val == NULL, q->val == NULL);
      if (!p->val)
        continue;
      assert_int_equal(p->val_len, q->val_len);
      if (p->val_len)
        assert_memory_equal(p->val, q->val, p->val_len);
      assert_int_equal(p->quoted, q->quoted);
    }
  }
}

static int write_all(const struct ck_link *l, int n, char *buf, size_t cap)
{
  struct ck_link_writer w;
  ck_link_writer_init(&w, buf, cap);
  for (int i = 0; i < n; i++)
    ck_link_write(&w, &l[i]);
  return ck_link_writer_finish(&w);
}

static void round_trip(const char *doc)
{
  struct ck_link a[MAX_LINKS], b[MAX_LINKS];
  char out[1024];
  int na = parse_all(doc, a, MAX_LINKS);
  assert_true(na >= 0);
  int len = write_all(a, na, out, sizeof out);
  assert_true(len >= 0);
  assert_int_equal(strlen(out), (size_t)len);
  int nb = parse_all(out, b, MAX_LINKS);
  assert_same_links(a, na, b, nb);
}

static void test_write_round_trip(void **state)
{
  (void)state;
  round_trip(rfc_5_doc);
  round_trip(filter_doc);
  round_trip("</a>;title=\"say \\\"hi\\\" \\\\ now\";rt=\"\\x\";obs;ct=0");
  round_trip(" </a> ; rt = x ,\n</b>\n</c>;if=\"\";sz=1,");
  round_trip("");

  /* The §5 document comes out in its canonical one-line form. */
  struct ck_link l[MAX_LINKS];
  char out[512];
  int n = parse_all(rfc_5_doc, l, MAX_LINKS);
  int len = write_all(l, n, out, sizeof out);
  const char *want =
      "</sensors>;ct=40;title=\"Sensor Index\","
      "</sensors/temp>;rt=\"temperature-c\";if=\"sensor\","
      "</sensors/light>;rt=\"light-lux\";if=\"sensor\","
      "<http://www.example.com/sensors/t123>;anchor=\"/sensors/temp\";"
      "rel=\"describedby\","
      "</t>;anchor=\"/sensors/temp\";rel=\"alternate\"";
  assert_string_equal(out, want);
  assert_int_equal(len, (int)strlen(want));
}

static void test_write_quoting(void **state)
{
  (void)state;
  struct ck_link l = {
    .target = "/q",
    .target_len = 2,
    .nparams = 7,
    .params = {
      { "ct", 2, "40", 2, false },          /* ptoken: bare */
      { "rt", 2, "a b", 3, false },         /* space: quoted */
      { "title", 5, "x\"y\\z", 5, false },  /* escaped in quotes */
      { "if", 2, "sensor", 6, true },       /* marked quoted */
      { "obs", 3, NULL, 0, false },         /* bare */
      { "e", 1, "", 0, false },             /* empty: quoted */
      { "v", 1, "a\\\"b\"c\\", 7, true },   /* stray '"' and final '\' */
    },
  };
  char out[256];
  int len = write_all(&l, 1, out, sizeof out);
  const char *want = "</q>;ct=40;rt=\"a b\";title=\"x\\\"y\\\\z\";"
                     "if=\"sensor\";obs;e=\"\";v=\"a\\\"b\\\"c\\\\\"";
  assert_string_equal(out, want);
  assert_int_equal(len, (int)strlen(want));

  struct ck_link back[MAX_LINKS];
  assert_int_equal(parse_all(out, back, MAX_LINKS), 1);
  assert_true(match(&back[0], "title=x\"y\\z"));
  assert_true(ck_link_param_has(ck_link_param(&back[0], "rt"), "b", 1));
  assert_param(&back[0], "obs", NULL, false);
  assert_param(&back[0], "e", "", true);
}

static void test_write_enospc(void **state)
{
  (void)state;
  struct ck_link l[MAX_LINKS];
  int n = parse_all(filter_doc, l, MAX_LINKS);
  char full[512];
  int need = write_all(l, n, full, sizeof full);
  assert_true(need > 0);

  /* For every capacity: no byte past cap is touched, a short buffer gives
   * CK_ENOSPC, and what was written is a prefix of whole links. */
  for (size_t cap = 0; cap <= (size_t)need + 2; cap++) {
    char buf[600];
    memset(buf, 'X', sizeof buf);
    struct ck_link_writer w;
    ck_link_writer_init(&w, buf, cap);
    int rc = 0;
    int written = 0;
    for (int i = 0; i < n && rc == 0; i++) {
      rc = ck_link_write(&w, &l[i]);
      written += rc == 0;
    }
    int fin = ck_link_writer_finish(&w);
    for (size_t i = cap; i < sizeof buf; i++)
      assert_int_equal(buf[i], 'X');
    if (cap < (size_t)need) {
      assert_int_equal(rc, CK_ENOSPC);
      assert_int_equal(fin, CK_ENOSPC);
      assert_true(w.len <= cap);
      struct ck_link back[MAX_LINKS];
      char copy[600];
      memcpy(copy, buf, w.len);
      copy[w.len] = '\0';
      assert_int_equal(parse_all(copy, back, MAX_LINKS), written);
      /* Sticky: a later, smaller link is refused too. */
      struct ck_link tiny = { .target = "", .target_len = 0 };
      assert_int_equal(ck_link_write(&w, &tiny), CK_ENOSPC);
    } else {
      assert_int_equal(fin, need);
      assert_memory_equal(buf, full, (size_t)need);
      /* The NUL only when there is room for it. */
      if (cap > (size_t)need)
        assert_int_equal(buf[need], '\0');
      else
        assert_int_equal(buf[need], 'X');
    }
  }
}

static void test_write_einval(void **state)
{
  (void)state;
  char buf[64];
  struct ck_link_writer w;
  struct ck_link good = { .target = "/a", .target_len = 2 };

  struct ck_link bad_target = { .target = "/a>b", .target_len = 4 };
  ck_link_writer_init(&w, buf, sizeof buf);
  assert_int_equal(ck_link_write(&w, &bad_target), CK_EINVAL);
  assert_int_equal(ck_link_write(&w, &good), CK_EINVAL);
  assert_int_equal(ck_link_writer_finish(&w), CK_EINVAL);

  struct ck_link bad_name = {
    .target = "/a", .target_len = 2, .nparams = 1,
    .params = { { "r t", 3, "x", 1, false } },
  };
  ck_link_writer_init(&w, buf, sizeof buf);
  assert_int_equal(ck_link_write(&w, &bad_name), CK_EINVAL);

  struct ck_link empty_name = {
    .target = "/a", .target_len = 2, .nparams = 1,
    .params = { { "", 0, "x", 1, false } },
  };
  ck_link_writer_init(&w, buf, sizeof buf);
  assert_int_equal(ck_link_write(&w, &empty_name), CK_EINVAL);

  struct ck_link too_many = good;
  too_many.nparams = CK_LINK_MAX_PARAMS + 1;
  ck_link_writer_init(&w, buf, sizeof buf);
  assert_int_equal(ck_link_write(&w, &too_many), CK_EINVAL);

  ck_link_writer_init(&w, buf, sizeof buf);
  assert_int_equal(ck_link_write(&w, NULL), CK_EINVAL);

  ck_link_writer_init(&w, NULL, 10);
  assert_int_equal(ck_link_write(&w, &good), CK_EINVAL);

  /* An empty document is "" with its NUL. */
  ck_link_writer_init(&w, buf, sizeof buf);
  buf[0] = 'X';
  assert_int_equal(ck_link_writer_finish(&w), 0);
  assert_int_equal(buf[0], '\0');
  ck_link_writer_init(&w, NULL, 0);
  assert_int_equal(ck_link_writer_finish(&w), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rfc_sensors_if),
    cmocka_unit_test(test_rfc_sensors_ct40),
    cmocka_unit_test(test_rfc_anchor_describedby),
    cmocka_unit_test(test_multi_value_rt),
    cmocka_unit_test(test_case_insensitive_names),
    cmocka_unit_test(test_ct_single_and_list),
    cmocka_unit_test(test_obs_bare),
    cmocka_unit_test(test_title_escaped_quotes),
    cmocka_unit_test(test_sz),
    cmocka_unit_test(test_whitespace_and_newlines),
    cmocka_unit_test(test_implementation_answers),
    cmocka_unit_test(test_empty_documents),
    cmocka_unit_test(test_param_limit),
    cmocka_unit_test(test_syntax_errors),
    cmocka_unit_test(test_error_is_sticky),
    cmocka_unit_test(test_reads_only_len),
    cmocka_unit_test(test_filter_rt_prefix),
    cmocka_unit_test(test_filter_href),
    cmocka_unit_test(test_filter_if),
    cmocka_unit_test(test_filter_no_match),
    cmocka_unit_test(test_filter_wildcard_only),
    cmocka_unit_test(test_filter_rfc_examples),
    cmocka_unit_test(test_filter_repeated_param),
    cmocka_unit_test(test_param_has_edges),
    cmocka_unit_test(test_write_round_trip),
    cmocka_unit_test(test_write_quoting),
    cmocka_unit_test(test_write_enospc),
    cmocka_unit_test(test_write_einval),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
