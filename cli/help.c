/* coap --help, coap COMMAND --help and the man page, all written from the
 * tables of opts.c, examples first: a reader who skims sees how the tool
 * is used before what each switch means. docs/coap.1 is `coap --man`
 * saved, and a test keeps the two equal.
 */
#include <stdio.h>
#include <string.h>

#include "help.h"

static const char *const usage_lines[] = {
    "coap [options] get|post|put|delete|fetch|patch|ipatch URI",
    "coap [options] observe URI",
    "coap [options] discover [URI]",
    "coap [options] ping URI",
    "coap [options] shell [URI]",
};

static const char *const main_examples[] = {
    "coap get coap://coap.me/hello",
    "coap get coap://127.0.0.1/data | jq .",
    "coap put -t json -e '{\"on\":true}' coap://[::1]/light",
    "coap observe --count 5 coap://127.0.0.1/time",
    "coap discover                  # every CoAP node on the IPv4 network",
    "coap get -v coap://127.0.0.1/.well-known/core",
};

static const char exit_text[] =
    "0 on a 2.xx response, 1 on 4.xx or 5.xx, 2 on a usage error, 3 on a "
    "transport failure (timeout, Reset, unreachable)";

/* "-e, --data TEXT" or "    --non". */
static void opt_label(const struct cli_optdef *d, char *buf, size_t cap)
{
  char s[8] = "    ";
  if (d->short_name)
    snprintf(s, sizeof s, "-%c, ", d->short_name);
  snprintf(buf, cap, "%s--%s%s%s", s, d->long_name, d->arg ? " " : "",
           d->arg ? d->arg : "");
}

/* Writes text wrapped at 79 columns, each line after indent spaces but
 * the first when the caller has already moved there. */
static void wrap(FILE *f, const char *text, int indent, bool at_indent)
{
  const char *p = text;
  while (*p) {
    size_t room = (size_t)(79 - indent), n = strlen(p);
    if (n > room) {
      n = room;
      while (n > 0 && p[n] != ' ')
        n--;
      if (n == 0)
        n = strcspn(p, " ");
    }
    fprintf(f, "%*s%.*s\n", at_indent ? 0 : indent, "", (int)n, p);
    at_indent = false;
    p += n;
    while (*p == ' ')
      p++;
  }
}

static void print_options(FILE *f, unsigned cmd_mask)
{
  for (int s = 0; s < SEC_COUNT; s++) {
    bool any = false;
    const struct cli_optdef *d;
    for (size_t i = 0; (d = cli_optdef_at(i)); i++) {
      if (d->section != (enum cli_section)s || d->hidden ||
          !(d->cmds & cmd_mask))
        continue;
      if (!any)
        fprintf(f, "\n%s:\n", cli_section_title((enum cli_section)s));
      any = true;
      char label[64];
      opt_label(d, label, sizeof label);
      if (strlen(label) > 26)
        fprintf(f, "  %s\n%30s", label, "");
      else
        fprintf(f, "  %-26s  ", label);
      wrap(f, d->help, 30, true);
    }
  }
}

void cli_help(FILE *f)
{
  fprintf(f, "coap - a command-line CoAP client (RFC 7252), like curl for "
             "CoAP\n\nExamples:\n");
  for (size_t i = 0; i < sizeof main_examples / sizeof main_examples[0]; i++)
    fprintf(f, "  %s\n", main_examples[i]);
  fprintf(f, "\nUsage:\n");
  for (size_t i = 0; i < sizeof usage_lines / sizeof usage_lines[0]; i++)
    fprintf(f, "  %s\n", usage_lines[i]);
  fprintf(f, "\nCommands:\n");
  const struct cli_cmd *c;
  for (size_t i = 0; (c = cli_cmd_at(i)); i++)
    fprintf(f, "  %-10s %s\n", c->name, c->summary);
  print_options(f, ~0u);
  fprintf(f, "\nOptions may stand before or after the command. The payload "
             "goes to standard\noutput, readably on a terminal (JSON "
             "indented, CBOR as diagnostic notation,\nlinks as a table, "
             "binary as hex) and byte for byte otherwise.\n\n"
             "Exit status:\n");
  wrap(f, exit_text, 2, false);
  fprintf(f, "\n'coap COMMAND --help' tells about one command; 'man coap' "
             "tells everything.\n");
}

void cli_help_cmd(FILE *f, const struct cli_cmd *c)
{
  fprintf(f, "coap %s - %s\n\n", c->name, c->summary);
  if (c->examples[0]) {
    fprintf(f, "Examples:\n");
    for (size_t i = 0; i < 5 && c->examples[i]; i++)
      fprintf(f, "  %s\n", c->examples[i]);
    fprintf(f, "\n");
  }
  fprintf(f, "Usage:\n  coap [options] %s %s\n\n", c->name, c->args);
  wrap(f, c->about, 0, false);
  if (c->id != CMD_SHELL)
    print_options(f, CMD_BIT(c->id));
  fprintf(f, "\nExit status:\n");
  wrap(f, exit_text, 2, false);
}

/* --- the man page --- */

/* Writes s escaped for roff: backslashes doubled, '-' as \-, and a
 * leading '.' or '\'' guarded. */
static void roff(FILE *f, const char *s)
{
  if (*s == '.' || *s == '\'')
    fputs("\\&", f);
  for (; *s; s++) {
    if (s[0] == '\xc2' && s[1] == '\xa7') {
      fputs("\\(sc", f); /* § */
      s++;
    } else if (*s == '\\')
      fputs("\\e", f);
    else if (*s == '-')
      fputs("\\-", f);
    else
      fputc(*s, f);
  }
}

static void man_option(FILE *f, const struct cli_optdef *d)
{
  fputs(".TP\n", f);
  if (d->short_name)
    fprintf(f, "\\fB\\-%c\\fR, ", d->short_name);
  fputs("\\fB\\-\\-", f);
  roff(f, d->long_name);
  fputs("\\fR", f);
  if (d->arg) {
    fputs(" \\fI", f);
    roff(f, d->arg);
    fputs("\\fR", f);
  }
  fputc('\n', f);
  /* The help line starts a sentence here. */
  char first[2] = {d->help[0], '\0'};
  if (first[0] >= 'a' && first[0] <= 'z')
    first[0] = (char)(first[0] - 'a' + 'A');
  roff(f, first);
  roff(f, d->help + 1);
  fputs(".\n", f);
  if (d->more) {
    roff(f, d->more);
    fputc('\n', f);
  }
}

void cli_man(FILE *f, const char *version)
{
  fprintf(f, ".\\\" Generated by 'coap --man' from cli/opts.c: edit that, "
             "not this.\n");
  fprintf(f, ".TH COAP 1 \"\" \"coapkit %s\" \"User Commands\"\n", version);
  fputs(".SH NAME\ncoap \\- a command\\-line CoAP client\n.SH SYNOPSIS\n", f);
  for (size_t i = 0; i < sizeof usage_lines / sizeof usage_lines[0]; i++) {
    fputs(".B ", f);
    roff(f, usage_lines[i]);
    fputs("\n.br\n", f);
  }
  fputs(".SH DESCRIPTION\n"
        "\\fBcoap\\fR talks CoAP (RFC 7252) over UDP as \\fBcurl\\fR talks "
        "HTTP: it sends one request, writes the response's payload to "
        "standard output and exits with a status that tells how it went. "
        "It follows block\\-wise transfers (RFC 7959), observes resources "
        "(RFC 7641) and discovers them (RFC 6690), alone or by multicast "
        "(RFC 7390).\n.PP\n"
        "By default nothing but the payload goes to standard output, so "
        "that \\fBcoap get\\fR \\fIURI\\fR \\fB| jq .\\fR works. On a "
        "terminal the payload is shown readably by its Content\\-Format: "
        "JSON indented, CBOR in diagnostic notation (RFC 8949 \\(sc8), "
        "link format as a table, text as text and anything else as a hex "
        "dump; otherwise, or with \\fB\\-\\-raw\\fR, byte for byte. "
        "Block\\-wise transfers show their progress on standard error when "
        "it is a terminal.\n.PP\n"
        "Options may stand before or after the command word.\n",
        f);
  fputs(".SH COMMANDS\n", f);
  const struct cli_cmd *c;
  for (size_t i = 0; (c = cli_cmd_at(i)); i++) {
    fprintf(f, ".TP\n\\fB%s\\fR \\fI", c->name);
    roff(f, c->args);
    fputs("\\fR\n", f);
    roff(f, c->about);
    fputc('\n', f);
  }
  fputs(".SH OPTIONS\n", f);
  for (int s = 0; s < SEC_COUNT; s++) {
    fputs(".SS ", f);
    roff(f, cli_section_title((enum cli_section)s));
    fputc('\n', f);
    const struct cli_optdef *d;
    for (size_t i = 0; (d = cli_optdef_at(i)); i++)
      if (d->section == (enum cli_section)s && !d->hidden)
        man_option(f, d);
  }
  fputs(".SH EXIT STATUS\n.TP\n0\na 2.xx response (ping: an answer)\n"
        ".TP\n1\na 4.xx or 5.xx response\n"
        ".TP\n2\na usage error: one line on standard error names the bad "
        "argument\n"
        ".TP\n3\na transport failure: no answer in time, a Reset, an "
        "unreachable host or port\n",
        f);
  fputs(".SH EXAMPLES\n", f);
  for (size_t i = 0; (c = cli_cmd_at(i)); i++)
    for (size_t j = 0; j < 5 && c->examples[j]; j++) {
      fputs(".nf\n", f);
      roff(f, c->examples[j]);
      fputs("\n.fi\n", f);
    }
  fputs(".SH SEE ALSO\n\\fBcoap\\-client\\fR(5) (libcoap), "
        "RFC 7252, RFC 7641, RFC 7959, RFC 6690, RFC 8132.\n"
        "The user guide, docs/coap.md; the server, docs/coapd.md.\n",
        f);
}
