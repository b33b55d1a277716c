/* Payloads made readable for a person at a terminal: JSON indented (cJSON
 * checks it), CBOR in diagnostic notation (RFC 8949 §8, decoded by
 * libcbor), link format as a table, text as text, anything else as a hex
 * dump. Nothing here is used when the output goes to a pipe or a file:
 * then the payload is written byte for byte. */
#ifndef COAP_CLI_PRETTY_H
#define COAP_CLI_PRETTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* How a content format is shown. */
enum cli_shape {
  SHAPE_GUESS, /* none or unregistered: text if it is text, else hex */
  SHAPE_TEXT,
  SHAPE_JSON,
  SHAPE_CBOR,
  SHAPE_LINK,
  SHAPE_BINARY,
};

/* The shape of content format cf (-1: none given). */
enum cli_shape cli_shape_of(int cf);

/* Returns true when p[0..n) is UTF-8 without control characters other
 * than tab, line feed and carriage return. */
bool cli_is_text(const uint8_t *p, size_t n);

/* Returns true when p[0..n) is UTF-8 without NUL (JSON can carry it as
 * a string). */
bool cli_is_utf8(const uint8_t *p, size_t n);

/* Writes the payload readably to f, ending with a line break. */
void cli_pretty(FILE *f, int cf, const uint8_t *p, size_t n);

/* Writes at most about max_bytes of the payload readably, each line
 * after prefix, and says how much was left out: the payload line of the
 * verbose view. */
void cli_preview(FILE *f, const char *prefix, int cf, const uint8_t *p,
                 size_t n, size_t max_bytes);

/* Writes a link-format document as a table (path, rt, ct, if, sz, obs),
 * each line after indent. Returns the number of links, or -1 when the
 * document is malformed (nothing is written then). */
int cli_link_table(FILE *f, const char *indent, const char *doc, size_t len);

/* Returns the CBOR sequence p[0..n) in diagnostic notation, on one line
 * when compact, as a malloc'd string (the caller frees it), or NULL when
 * it is not well-formed CBOR (or nests deeper than 64). */
char *cli_cbor_diag(const uint8_t *p, size_t n, bool compact);

/* Writes n bytes as "hexdump -C" does, each line after prefix. */
void cli_hexdump(FILE *f, const char *prefix, const uint8_t *p, size_t n);

/* Writes text with control characters as \xNN (tab and line feed kept),
 * safe for a terminal. */
void cli_text(FILE *f, const uint8_t *p, size_t n);

#endif
