/* wire_pcap: proves our wire format against an independent decoder.
 *
 * A table below describes a set of CoAP messages by their intended field
 * values. Each one is built with the public builder (options added in a
 * shuffled order, so that the builder's sorting is exercised), wrapped in
 * IPv4 and UDP headers we compose here, and written to a classic libpcap
 * file (LINKTYPE_RAW) that Wireshark's CoAP dissector can read. Next to it
 * goes an "expected" file: for every frame, the values tshark should print
 * with `-T fields`, derived from the same table of intentions and never
 * from our own parser. wire_tshark.sh runs tshark and compares the two.
 *
 * Usage: wire_pcap OUT.pcap OUT.expected
 *
 * The first line of the expected file names the fields, so that the script
 * asks tshark for exactly the columns this program fills.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <coapkit/coapkit.h>

/* How the table holds an option's intended value. */
enum kind {
  K_UINT,  /* u, encoded in the fewest bytes by ck_builder_opt_uint */
  K_STR,   /* s, a NUL-terminated string */
  K_BYTES, /* b[0..n) */
  K_BLOCK, /* blk, a Block1/Block2 value */
};

struct optv {
  uint16_t num;
  uint8_t kind;
  uint32_t u;
  const char *s;
  const uint8_t *b;
  size_t n;
  struct ck_block blk;
};

struct frame {
  uint8_t type; /* enum ck_type */
  uint8_t code;
  uint16_t mid;
  bool reply; /* server to client: swaps the addresses and ports */
  const uint8_t *token;
  size_t tkl;
  const struct optv *opts; /* in the order given to the builder */
  unsigned nopts;
  const uint8_t *payload;
  size_t payload_len;
};

#define ARRAY(type, ...) ((const type[]){__VA_ARGS__})
#define COUNT(type, ...) (sizeof ARRAY(type, __VA_ARGS__) / sizeof(type))

#define TOKEN(...)                                                           \
  .token = ARRAY(uint8_t, __VA_ARGS__), .tkl = COUNT(uint8_t, __VA_ARGS__)
#define OPTS(...)                                                            \
  .opts = ARRAY(struct optv, __VA_ARGS__),                                   \
  .nopts = COUNT(struct optv, __VA_ARGS__)
#define PAYLOAD(p, n) .payload = (const uint8_t *)(p), .payload_len = (n)
#define TEXT(lit) PAYLOAD(lit, sizeof(lit) - 1)

#define U(n, v) {.num = (n), .kind = K_UINT, .u = (v)}
#define S(n, v) {.num = (n), .kind = K_STR, .s = (v)}
#define B(on, ...)                                                           \
  {.num = (on), .kind = K_BYTES, .b = ARRAY(uint8_t, __VA_ARGS__),           \
   .n = COUNT(uint8_t, __VA_ARGS__)}
#define EMPTY(n) {.num = (n), .kind = K_BYTES}
#define BLK(n, number, m, sz)                                                \
  {.num = (n), .kind = K_BLOCK,                                              \
   .blk = {.num = (number), .more = (m), .szx = (sz)}}

/* Long values are filled in by fill_long() before the table is used. */
static const char proxy20[] = "coap://h.example/xyz"; /* 20 bytes */
static char proxy300[301];
static uint8_t kib[1024];
static uint8_t blk256[256];

static const struct frame frames[] = {
  /* An Observe registration: Observe 0 is a zero-length uint. */
  {.type = CK_TYPE_CON, .code = CK_GET, .mid = 0x1001,
   TOKEN(0xde, 0xad, 0xbe, 0xef),
   OPTS(S(CK_OPT_URI_QUERY, "unit=C"), S(CK_OPT_URI_PATH, "sensors"),
        U(CK_OPT_URI_PORT, 5684), S(CK_OPT_URI_HOST, "example.com"),
        S(CK_OPT_URI_QUERY, "precise"), U(CK_OPT_OBSERVE, 0),
        S(CK_OPT_URI_PATH, "temp"))},
  {.type = CK_TYPE_ACK, .code = CK_CODE_EMPTY, .mid = 0x1001, .reply = true},
  {.type = CK_TYPE_NON, .code = CK_POST, .mid = 0x1002, TOKEN(0x01, 0x02),
   OPTS(U(CK_OPT_CONTENT_FORMAT, CK_CF_JSON), S(CK_OPT_URI_PATH, "data")),
   TEXT("{\"t\":21.5,\"h\":40}")},
  /* A ping (RFC 7252 §4.3) and the Reset that answers it. */
  {.type = CK_TYPE_CON, .code = CK_CODE_EMPTY, .mid = 0x1003},
  {.type = CK_TYPE_RST, .code = CK_CODE_EMPTY, .mid = 0x1003, .reply = true},
  /* A notification carrying block 5 of a transfer in 1 KiB blocks. */
  {.type = CK_TYPE_ACK, .code = CK_CONTENT, .mid = 0x1004, .reply = true,
   TOKEN(0xde, 0xad, 0xbe, 0xef),
   OPTS(U(CK_OPT_SIZE2, 8192), BLK(CK_OPT_BLOCK2, 5, true, 6),
        U(CK_OPT_MAX_AGE, 86400), U(CK_OPT_OBSERVE, 0x123456),
        U(CK_OPT_CONTENT_FORMAT, CK_CF_TEXT_PLAIN),
        B(CK_OPT_ETAG, 0x5a, 0x01, 0xc3, 0x7e)),
   PAYLOAD(kib, sizeof kib)},
  {.type = CK_TYPE_CON, .code = CK_PUT, .mid = 0x1005, TOKEN(0x7f),
   OPTS(U(CK_OPT_SIZE1, 1000), BLK(CK_OPT_BLOCK1, 2, true, 4),
        B(CK_OPT_IF_MATCH, 0xab, 0xcd), S(CK_OPT_URI_PATH, "fw"),
        U(CK_OPT_CONTENT_FORMAT, CK_CF_OCTET_STREAM)),
   PAYLOAD(blk256, sizeof blk256)},
  {.type = CK_TYPE_ACK, .code = CK_CREATED, .mid = 0x1006, .reply = true,
   TOKEN(0x7f),
   OPTS(S(CK_OPT_LOCATION_QUERY, "rev=3"),
        S(CK_OPT_LOCATION_PATH, "items"), S(CK_OPT_LOCATION_PATH, "42"))},
  /* Forward proxying with an 8-byte token: Hop-Limit (16) and Proxy-Uri
   * (35) need 1-byte delta extensions, a 20-byte value a 1-byte length
   * extension. */
  {.type = CK_TYPE_CON, .code = CK_GET, .mid = 0x1007,
   TOKEN(0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef),
   OPTS(S(CK_OPT_PROXY_URI, proxy20), U(CK_OPT_ACCEPT, CK_CF_CBOR),
        U(CK_OPT_HOP_LIMIT, 7))},
  /* Echo (252), No-Response (258) and Request-Tag (292). */
  {.type = CK_TYPE_CON, .code = CK_FETCH, .mid = 0x1008,
   TOKEN(0xf0, 0x0d, 0x01),
   OPTS(B(CK_OPT_REQUEST_TAG, 0x00, 0x2a), U(CK_OPT_NO_RESPONSE, 26),
        S(CK_OPT_URI_PATH, "q"),
        B(CK_OPT_ECHO, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88),
        U(CK_OPT_CONTENT_FORMAT, CK_CF_JSON)),
   TEXT("{\"since\":1700000000}")},
  /* A 300-byte value needs a 2-byte length extension. It is a Proxy-Uri
   * (1 to 1034 bytes), not a Uri-Path: RFC 7252 §5.10 caps that at 255,
   * and tshark would rightly warn. */
  {.type = CK_TYPE_CON, .code = CK_PATCH, .mid = 0x1009, TOKEN(0x0a, 0x0b),
   OPTS(U(CK_OPT_CONTENT_FORMAT, CK_CF_JSON_PATCH),
        S(CK_OPT_PROXY_URI, proxy300)),
   TEXT("[{\"op\":\"add\"}]")},
  /* 11 -> 292 is a delta of 281, which needs a 2-byte delta extension. */
  {.type = CK_TYPE_NON, .code = CK_IPATCH, .mid = 0x100a, TOKEN(0x0c, 0x0d),
   OPTS(B(CK_OPT_REQUEST_TAG, 0x99), S(CK_OPT_URI_PATH, "cfg"),
        EMPTY(CK_OPT_IF_NONE_MATCH))},
  {.type = CK_TYPE_ACK, .code = CK_NOT_FOUND, .mid = 0x100b, .reply = true,
   TOKEN(0x42), TEXT("no such resource")},
  {.type = CK_TYPE_NON, .code = CK_SERVICE_UNAVAILABLE, .mid = 0x100c,
   .reply = true, TOKEN(0x43), OPTS(U(CK_OPT_MAX_AGE, 30))},
};

enum { NFRAMES = sizeof frames / sizeof frames[0] };

static void fill_long(void)
{
  static const char head[] = "coap://proxy.example/";
  size_t h = sizeof head - 1;
  memcpy(proxy300, head, h);
  for (size_t i = h; i < 300; i++)
    proxy300[i] = (char)('a' + i % 26);
  proxy300[300] = '\0';
  for (size_t i = 0; i < sizeof kib; i++)
    kib[i] = (uint8_t)('A' + i % 26);
  for (size_t i = 0; i < sizeof blk256; i++)
    blk256[i] = (uint8_t)i;
}

/* ---- building ---- */

static int build(const struct frame *f, uint8_t *buf, size_t cap)
{
  struct ck_builder b;
  ck_builder_init(&b, buf, cap, f->type, f->code, f->mid);
  ck_builder_token(&b, f->token, f->tkl);
  for (unsigned i = 0; i < f->nopts; i++) {
    const struct optv *o = &f->opts[i];
    uint32_t v;
    switch (o->kind) {
    case K_UINT:
      ck_builder_opt_uint(&b, o->num, o->u);
      break;
    case K_STR:
      ck_builder_opt_str(&b, o->num, o->s);
      break;
    case K_BYTES:
      ck_builder_opt(&b, o->num, o->b, o->n);
      break;
    case K_BLOCK:
      if (ck_block_encode(&o->blk, &v) < 0)
        return CK_ERANGE;
      ck_builder_opt_uint(&b, o->num, v);
      break;
    }
  }
  ck_builder_payload(&b, f->payload, f->payload_len);
  /* Errors are sticky: this one check covers every call above. */
  return ck_builder_finish(&b);
}

/* ---- pcap ---- */

static void put16be(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put32le(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* RFC 791 / RFC 1071: one's complement of the one's complement sum. */
static uint16_t ip_checksum(const uint8_t *h, size_t len)
{
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2)
    sum += (uint32_t)(h[i] << 8 | h[i + 1]);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

enum { IP_LEN = 20, UDP_LEN = 8 };

static const uint8_t client_ip[4] = {192, 0, 2, 1};   /* RFC 5737 */
static const uint8_t server_ip[4] = {192, 0, 2, 100};
enum { CLIENT_PORT = 49152, SERVER_PORT = 5683 };

/* Writes an IPv4 + UDP header for a datagram of len bytes into hdr. UDP's
 * checksum is left 0, which RFC 768 allows over IPv4. */
static void headers(uint8_t hdr[IP_LEN + UDP_LEN], size_t len, bool reply,
                    uint16_t ip_id)
{
  memset(hdr, 0, IP_LEN + UDP_LEN);
  hdr[0] = 0x45; /* version 4, 5 words */
  put16be(hdr + 2, (uint16_t)(IP_LEN + UDP_LEN + len));
  put16be(hdr + 4, ip_id);
  hdr[8] = 64;  /* TTL */
  hdr[9] = 17;  /* UDP */
  memcpy(hdr + 12, reply ? server_ip : client_ip, 4);
  memcpy(hdr + 16, reply ? client_ip : server_ip, 4);
  put16be(hdr + 10, ip_checksum(hdr, IP_LEN));

  uint8_t *udp = hdr + IP_LEN;
  put16be(udp, reply ? SERVER_PORT : CLIENT_PORT);
  put16be(udp + 2, reply ? CLIENT_PORT : SERVER_PORT);
  put16be(udp + 4, (uint16_t)(UDP_LEN + len));
}

static int write_pcap_header(FILE *fp)
{
  uint8_t h[24] = {0};
  put32le(h, 0xa1b2c3d4); /* microsecond timestamps, written little-endian */
  h[4] = 2;               /* version 2.4 */
  h[6] = 4;
  put32le(h + 16, 65535); /* snaplen */
  put32le(h + 20, 101);   /* LINKTYPE_RAW: the packet begins with IPv4 */
  return fwrite(h, sizeof h, 1, fp) == 1 ? 0 : -1;
}

static int write_record(FILE *fp, unsigned i, const uint8_t *coap,
                        size_t len, bool reply)
{
  uint8_t rec[16], hdr[IP_LEN + UDP_LEN];
  uint32_t caplen = (uint32_t)(IP_LEN + UDP_LEN + len);
  /* Fixed timestamps keep the file byte-for-byte reproducible. */
  put32le(rec, 1700000000u + i);
  put32le(rec + 4, 0);
  put32le(rec + 8, caplen);
  put32le(rec + 12, caplen);
  headers(hdr, len, reply, (uint16_t)(i + 1));
  if (fwrite(rec, sizeof rec, 1, fp) != 1 ||
      fwrite(hdr, sizeof hdr, 1, fp) != 1 ||
      fwrite(coap, len, 1, fp) != 1)
    return -1;
  return 0;
}

/* ---- expected values, from the table only ----
 *
 * Everything below restates RFC 7252 §3.1 and §3.2 (minimal uint lengths,
 * delta and length nibbles with their extensions) from the table, without
 * the library, so that the builder is checked against the RFC as read by
 * Wireshark rather than against itself. */

/* The columns of the expected file, in order; the first line of the file
 * names them. All are tshark fields except "payload": wire_tshark.sh
 * computes it as the last N bytes of udp.payload, N being the payload
 * length tshark found (coap.payload_length, or coap.block_length for a
 * block it reassembles). Repeated occurrences are joined by '~' (tshark
 * -E aggregator='~'), in wire order. */
enum col {
  C_FRAME, C_VERSION, C_TYPE, C_TKL, C_CODE, C_MID, C_TOKEN,
  C_DESC, C_DELTA, C_DELTA_EXT, C_LEN, C_LEN_EXT,
  C_IF_MATCH, C_URI_HOST, C_ETAG, C_OBSERVE, C_URI_PORT, C_LOC_PATH,
  C_URI_PATH, C_CTYPE, C_MAX_AGE, C_URI_QUERY, C_HOP_LIMIT, C_ACCEPT,
  C_LOC_QUERY, C_BLOCK_NUM, C_BLOCK_M, C_BLOCK_SZX, C_PROXY_URI, C_SIZE1,
  C_UNKNOWN, C_END_MARKER, C_PAYLOAD_DESC, C_PAYLOAD_LEN, C_BLOCK_LEN,
  C_PAYLOAD, NCOLS
};

static const char *const col_names[NCOLS] = {
  [C_FRAME] = "frame.number",
  [C_VERSION] = "coap.version",
  [C_TYPE] = "coap.type",
  [C_TKL] = "coap.token_len",
  [C_CODE] = "coap.code",
  [C_MID] = "coap.mid",
  [C_TOKEN] = "coap.token",
  [C_DESC] = "coap.opt.desc",
  [C_DELTA] = "coap.opt.delta",
  [C_DELTA_EXT] = "coap.opt.delta_ext",
  [C_LEN] = "coap.opt.length",
  [C_LEN_EXT] = "coap.opt.length_ext",
  [C_IF_MATCH] = "coap.opt.if_match",
  [C_URI_HOST] = "coap.opt.uri_host",
  [C_ETAG] = "coap.opt.etag",
  [C_OBSERVE] = "coap.opt.observe",
  [C_URI_PORT] = "coap.opt.uri_port",
  [C_LOC_PATH] = "coap.opt.location_path",
  [C_URI_PATH] = "coap.opt.uri_path",
  [C_CTYPE] = "coap.opt.ctype",
  [C_MAX_AGE] = "coap.opt.max_age",
  [C_URI_QUERY] = "coap.opt.uri_query",
  [C_HOP_LIMIT] = "coap.opt.hop_limit",
  [C_ACCEPT] = "coap.opt.accept",
  [C_LOC_QUERY] = "coap.opt.location_query",
  [C_BLOCK_NUM] = "coap.opt.block_number",
  [C_BLOCK_M] = "coap.opt.block_mflag",
  [C_BLOCK_SZX] = "coap.opt.block_size",
  [C_PROXY_URI] = "coap.opt.proxy_uri",
  [C_SIZE1] = "coap.opt.size1",
  [C_UNKNOWN] = "coap.opt.unknown",
  [C_END_MARKER] = "coap.opt.end_marker",
  [C_PAYLOAD_DESC] = "coap.payload_desc",
  [C_PAYLOAD_LEN] = "coap.payload_length",
  [C_BLOCK_LEN] = "coap.block_length",
  [C_PAYLOAD] = "payload",
};

/* How tshark shows an option's value. */
enum show {
  SH_NONE,  /* no value field (If-None-Match) */
  SH_HEX,   /* bytes as lowercase hex */
  SH_STR,   /* the string */
  SH_UINT,  /* decimal */
  SH_CF,    /* the media type of a content format */
  SH_BLOCK, /* number, M flag and SZX in three columns */
  SH_LOW3,  /* the low 3 bits as an "encoded block size" (see Size2) */
};

static const struct {
  uint16_t num;
  uint8_t col; /* enum col */
  uint8_t show;
} shown[] = {
  {CK_OPT_IF_MATCH, C_IF_MATCH, SH_HEX},
  {CK_OPT_URI_HOST, C_URI_HOST, SH_STR},
  {CK_OPT_ETAG, C_ETAG, SH_HEX},
  {CK_OPT_IF_NONE_MATCH, 0, SH_NONE},
  {CK_OPT_OBSERVE, C_OBSERVE, SH_UINT},
  {CK_OPT_URI_PORT, C_URI_PORT, SH_UINT},
  {CK_OPT_LOCATION_PATH, C_LOC_PATH, SH_STR},
  {CK_OPT_URI_PATH, C_URI_PATH, SH_STR},
  {CK_OPT_CONTENT_FORMAT, C_CTYPE, SH_CF},
  {CK_OPT_MAX_AGE, C_MAX_AGE, SH_UINT},
  {CK_OPT_URI_QUERY, C_URI_QUERY, SH_STR},
  {CK_OPT_HOP_LIMIT, C_HOP_LIMIT, SH_UINT},
  {CK_OPT_ACCEPT, C_ACCEPT, SH_CF},
  {CK_OPT_LOCATION_QUERY, C_LOC_QUERY, SH_STR},
  {CK_OPT_BLOCK2, 0, SH_BLOCK},
  {CK_OPT_BLOCK1, 0, SH_BLOCK},
  /* tshark 4.0 has no value field for Size2: it files the option under
   * the Block dissection and shows only its low 3 bits as an encoded
   * block size. We expect exactly that, so the length nibble and those
   * bits are what it checks of Size2. */
  {CK_OPT_SIZE2, C_BLOCK_SZX, SH_LOW3},
  {CK_OPT_PROXY_URI, C_PROXY_URI, SH_STR},
  {CK_OPT_SIZE1, C_SIZE1, SH_UINT},
  /* Any other number (Echo, No-Response and Request-Tag postdate tshark
   * 4.0's table) is shown as opaque bytes in coap.opt.unknown. */
};

/* The media types tshark prints for the content formats we use. */
static const struct {
  uint16_t num;
  const char *name;
} cf_names[] = {
  {CK_CF_TEXT_PLAIN, "text/plain; charset=utf-8"},
  {CK_CF_OCTET_STREAM, "application/octet-stream"},
  {CK_CF_JSON, "application/json"},
  {CK_CF_JSON_PATCH, "application/json-patch+json"},
  {CK_CF_CBOR, "application/cbor"},
};

enum { CELL_MAX = 2560 };
static char cells[NCOLS][CELL_MAX];
static bool overflow;

/* Appends to a cell, joining occurrences with the aggregator. */
__attribute__((format(printf, 2, 3)))
static void add(enum col c, const char *fmt, ...)
{
  char *cell = cells[c];
  size_t used = strlen(cell);
  if (used > 0 && used + 1 < CELL_MAX)
    cell[used++] = '~';
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(cell + used, CELL_MAX - used, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= CELL_MAX - used)
    overflow = true;
}

static void add_hex(enum col c, const uint8_t *p, size_t n)
{
  static char hex[CELL_MAX];
  if (2 * n >= sizeof hex) {
    overflow = true;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    hex[2 * i] = "0123456789abcdef"[p[i] >> 4];
    hex[2 * i + 1] = "0123456789abcdef"[p[i] & 15];
  }
  hex[2 * n] = '\0';
  add(c, "%s", hex);
}

static const char *cf_name(uint32_t num)
{
  for (size_t i = 0; i < sizeof cf_names / sizeof cf_names[0]; i++)
    if (cf_names[i].num == num)
      return cf_names[i].name;
  return "?";
}

/* The intended value as an integer (uint and block options). */
static uint32_t value_uint(const struct optv *o)
{
  if (o->kind == K_BLOCK) /* RFC 7959 §2.2: NUM | M | SZX */
    return o->blk.num << 4 | (o->blk.more ? 8u : 0u) | o->blk.szx;
  return o->u;
}

/* The intended value bytes; tmp holds a uint's encoding. */
static size_t value_bytes(const struct optv *o, uint8_t tmp[4],
                          const uint8_t **p)
{
  if (o->kind == K_STR) {
    *p = (const uint8_t *)o->s;
    return strlen(o->s);
  }
  if (o->kind == K_BYTES) {
    *p = o->b;
    return o->n;
  }
  /* RFC 7252 §3.2: a uint in the fewest bytes, 0 in none. */
  uint32_t v = value_uint(o);
  size_t n = 0;
  for (uint32_t x = v; x; x >>= 8)
    n++;
  for (size_t i = 0; i < n; i++)
    tmp[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  *p = tmp;
  return n;
}

/* RFC 7252 §3.1: a delta or length below 13 fits the nibble; 13 to 268
 * takes nibble 13 and one byte of v - 13; more takes nibble 14 and two
 * bytes of v - 269. tshark shows the nibble and the raw extension. */
static void add_nibble(enum col nib, enum col ext, uint32_t v)
{
  if (v < 13) {
    add(nib, "%" PRIu32, v);
  } else if (v < 269) {
    add(nib, "13");
    add(ext, "%" PRIu32, v - 13);
  } else {
    add(nib, "14");
    add(ext, "%" PRIu32, v - 269);
  }
}

static void add_value(const struct optv *o)
{
  uint8_t tmp[4];
  const uint8_t *p;
  size_t n = value_bytes(o, tmp, &p);
  for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
    if (shown[i].num != o->num)
      continue;
    enum col c = shown[i].col;
    switch (shown[i].show) {
    case SH_NONE:
      return;
    case SH_HEX:
      add_hex(c, p, n);
      return;
    case SH_STR:
      add(c, "%.*s", (int)n, (const char *)p);
      return;
    case SH_UINT:
      add(c, "%" PRIu32, value_uint(o));
      return;
    case SH_CF:
      add(c, "%s", cf_name(value_uint(o)));
      return;
    case SH_BLOCK:
      add(C_BLOCK_NUM, "%" PRIu32, o->blk.num);
      add(C_BLOCK_M, "%u", o->blk.more ? 1u : 0u);
      add(C_BLOCK_SZX, "%u", (unsigned)o->blk.szx);
      return;
    case SH_LOW3:
      add(c, "%" PRIu32, value_uint(o) & 7);
      return;
    }
  }
  add_hex(C_UNKNOWN, p, n);
}

static const struct optv *find(const struct frame *f, uint16_t num)
{
  for (unsigned i = 0; i < f->nopts; i++)
    if (f->opts[i].num == num)
      return &f->opts[i];
  return NULL;
}

/* Fills cells[] with what tshark should print for frame number no. */
static void expect(const struct frame *f, unsigned no)
{
  memset(cells, 0, sizeof cells);
  add(C_FRAME, "%u", no);
  add(C_VERSION, "1");
  add(C_TYPE, "%u", (unsigned)f->type);
  add(C_TKL, "%zu", f->tkl);
  add(C_CODE, "%u", (unsigned)f->code);
  add(C_MID, "%u", (unsigned)f->mid);
  if (f->tkl)
    add_hex(C_TOKEN, f->token, f->tkl);

  /* RFC 7252 §3.1: options go out in ascending order; §5.4.5: repeated
   * ones keep the order in which they were given. */
  const struct optv *order[CK_BUILDER_MAX_OPTS];
  unsigned n = f->nopts < CK_BUILDER_MAX_OPTS ? f->nopts : CK_BUILDER_MAX_OPTS;
  for (unsigned i = 0; i < n; i++) {
    unsigned j = i;
    while (j > 0 && order[j - 1]->num > f->opts[i].num) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = &f->opts[i];
  }
  uint32_t prev = 0;
  for (unsigned i = 0; i < n; i++) {
    const struct optv *o = order[i];
    uint8_t tmp[4];
    const uint8_t *p;
    size_t len = value_bytes(o, tmp, &p);
    /* RFC 7252 §5.4.6: the number's bits say critical, unsafe and
     * NoCacheKey. */
    add(C_DESC, "Type %u, %s, %s%s", (unsigned)o->num,
        (o->num & 1) ? "Critical" : "Elective",
        (o->num & 2) ? "Unsafe" : "Safe",
        (o->num & 0x1e) == 0x1c ? ", NoCacheKey" : "");
    add_nibble(C_DELTA, C_DELTA_EXT, o->num - prev);
    add_nibble(C_LEN, C_LEN_EXT, (uint32_t)len);
    add_value(o);
    prev = o->num;
  }

  if (f->payload_len) {
    add(C_END_MARKER, "255");
    add_hex(C_PAYLOAD, f->payload, f->payload_len);
    /* tshark holds a block (Block1 in a request, Block2 in a response)
     * for reassembly and reports only its length. */
    bool block = CK_CODE_CLASS(f->code) == 0 ? find(f, CK_OPT_BLOCK1) != NULL
                                             : find(f, CK_OPT_BLOCK2) != NULL;
    if (block) {
      add(C_BLOCK_LEN, "%zu", f->payload_len);
    } else {
      /* Without Content-Format, RFC 7252 §5.5.2 makes an error
       * response's payload a diagnostic text; otherwise tshark assumes
       * octets. */
      const struct optv *cf = find(f, CK_OPT_CONTENT_FORMAT);
      unsigned cls = CK_CODE_CLASS(f->code);
      add(C_PAYLOAD_DESC, "%s",
          cf ? cf_name(cf->u)
             : cf_name(cls == 4 || cls == 5 ? CK_CF_TEXT_PLAIN
                                            : CK_CF_OCTET_STREAM));
      add(C_PAYLOAD_LEN, "%zu", f->payload_len);
    }
  }
}

static int write_expected(FILE *fp)
{
  for (unsigned c = 0; c < NCOLS; c++)
    fprintf(fp, "%s%s", c ? "|" : "#", col_names[c]);
  fputc('\n', fp);
  for (unsigned i = 0; i < NFRAMES; i++) {
    expect(&frames[i], i + 1);
    if (overflow) {
      fprintf(stderr, "frame %u: an expected value overflows\n", i + 1);
      return -1;
    }
    for (unsigned c = 0; c < NCOLS; c++)
      fprintf(fp, "%s%s", c ? "|" : "", cells[c]);
    fputc('\n', fp);
  }
  return ferror(fp) ? -1 : 0;
}

static int write_pcap(FILE *fp)
{
  static uint8_t buf[2048];
  if (write_pcap_header(fp) < 0)
    return -1;
  for (unsigned i = 0; i < NFRAMES; i++) {
    int n = build(&frames[i], buf, sizeof buf);
    if (n < 0) {
      fprintf(stderr, "frame %u: build failed: %s\n", i + 1,
              ck_strerror(n));
      return -1;
    }
    if (write_record(fp, i, buf, (size_t)n, frames[i].reply) < 0)
      return -1;
  }
  return 0;
}

int main(int argc, char **argv)
{
  if (argc != 3) {
    fprintf(stderr, "usage: %s OUT.pcap OUT.expected\n", argv[0]);
    return 2;
  }
  fill_long();
  FILE *pcap = fopen(argv[1], "wb");
  if (!pcap) {
    perror(argv[1]);
    return 1;
  }
  int rc = write_pcap(pcap);
  if (fclose(pcap) != 0 || rc < 0) {
    fprintf(stderr, "%s: cannot write the capture\n", argv[1]);
    return 1;
  }
  FILE *exp = fopen(argv[2], "w");
  if (!exp) {
    perror(argv[2]);
    return 1;
  }
  rc = write_expected(exp);
  if (fclose(exp) != 0 || rc < 0) {
    fprintf(stderr, "%s: cannot write the expected values\n", argv[2]);
    return 1;
  }
  printf("%u frames\n", (unsigned)NFRAMES);
  return 0;
}
