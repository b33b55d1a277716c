/* coap's help texts and man page, written from the tables of opts.c. */
#ifndef COAP_CLI_HELP_H
#define COAP_CLI_HELP_H

#include <stdio.h>

#include "opts.h"

/* coap --help: examples, usage, commands, every option, exit status. */
void cli_help(FILE *f);

/* coap COMMAND --help: the command's examples, usage, what it does and
 * the options that apply to it. */
void cli_help_cmd(FILE *f, const struct cli_cmd *c);

/* The man page in roff, for docs/coap.1. */
void cli_man(FILE *f, const char *version);

#endif
