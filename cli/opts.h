/* coap's command line: the commands and the options, each named once in a
 * table (opts.c) that drives the parser, `coap --help`, `coap COMMAND
 * --help`, the man page (help.c) and, later, the shell's completion.
 *
 * cli_parse() turns one argument vector into a struct cli_opts without
 * printing or exiting, so the shell can parse each of its lines with it
 * too. Options may stand before or after the command word.
 */
#ifndef COAP_CLI_OPTS_H
#define COAP_CLI_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <coapkit/coapkit.h>

/* The commands, in the order --help lists them. */
enum cli_cmd_id {
  CMD_GET,
  CMD_POST,
  CMD_PUT,
  CMD_DELETE,
  CMD_FETCH,
  CMD_PATCH,
  CMD_IPATCH,
  CMD_OBSERVE,
  CMD_DISCOVER,
  CMD_PING,
  CMD_SHELL,
  CMD_COUNT
};

#define CMD_BIT(id) (1u << (id))

struct cli_cmd {
  enum cli_cmd_id id;
  const char *name;
  uint8_t method;   /* the request's code; 0 for the others */
  const char *args; /* "URI", "[URI]" */
  const char *summary;
  const char *about;       /* a paragraph for COMMAND --help and the man page */
  const char *examples[5]; /* "command line  # comment", NULL-terminated */
};

/* Returns the command named name, or NULL. */
const struct cli_cmd *cli_cmd_find(const char *name);

/* Returns the i-th command, or NULL past the end. */
const struct cli_cmd *cli_cmd_at(size_t i);

/* The most -O options one command carries, and their bytes in all. */
enum { CLI_MAX_OPTS = 32, CLI_OPT_ARENA = 8192 };

/* Everything one command line says. Unset numbers are 0 (or -1 where 0
 * is a valid value); strings point into argv. */
struct cli_opts {
  const struct cli_cmd *cmd; /* NULL: no command word */
  const char *uri;
  const char *data;                 /* -e */
  const char *data_file;            /* -f; "-" is stdin */
  int content_format;               /* -1: none */
  int accept;                       /* -1: none */
  struct ck_opt opts[CLI_MAX_OPTS]; /* -O, values in arena */
  size_t nopts;
  uint8_t arena[CLI_OPT_ARENA];
  size_t arena_used;
  uint8_t token[CK_TOKEN_MAX];
  size_t token_len;
  bool has_token;
  bool non;
  uint32_t block_size; /* 0: the library's */
  double duration_s;   /* 0: until Ctrl-C or --count */
  uint32_t count;      /* 0: no limit */
  const char *output;  /* -o */
  bool verbose;
  bool json;
  bool raw;
  const char *group; /* --group */
  const char *psk, *identity, *cert, *key, *ca, *rpk;
  uint32_t ack_timeout_ms;  /* 0: default */
  double ack_random_factor; /* 0: default */
  int32_t max_retransmit;   /* -1: default */
  uint32_t token_size;      /* 0: default */
  uint32_t wait_ms;         /* 0: default */
  bool help, version, man;
  uint64_t given; /* which rows of the table appeared, a bit each */
};

/* Fills o with the defaults. */
void cli_opts_init(struct cli_opts *o);

/* Parses argv[first..argc) into o, which cli_opts_init() prepared. On a
 * usage error returns -1 and writes one line (no "coap: " prefix, no
 * newline) naming the bad argument into err; otherwise returns 0. A
 * missing command or URI is not an error here (--help may stand alone):
 * cli_check() tells. */
int cli_parse(struct cli_opts *o, int argc, char **argv, int first, char *err,
              size_t errcap);

/* Checks that the command has what it needs and takes only options that
 * apply to it. Returns 0, or -1 with one line in err. */
int cli_check(const struct cli_opts *o, char *err, size_t errcap);

/* The option table, for help.c and completion. */
enum cli_kind {
  K_FLAG,   /* bool */
  K_STR,    /* const char * */
  K_CF,     /* content format by name or number */
  K_OPTION, /* -O NUM,VALUE */
  K_TOKEN,  /* hex */
  K_BLOCK,  /* 16..1024, a power of two */
  K_U32,    /* whole number in [min, max] */
  K_I32,
  K_DOUBLE, /* number in [min, max] */
};

enum cli_section {
  SEC_REQUEST,
  SEC_OBSERVE,
  SEC_DISCOVER,
  SEC_OUTPUT,
  SEC_TRANSMISSION,
  SEC_DTLS,
  SEC_GENERAL,
  SEC_COUNT
};

struct cli_optdef {
  char short_name;       /* 0: none */
  const char *long_name; /* without "--" */
  const char *arg;       /* the value's name; NULL for a flag */
  enum cli_kind kind;
  size_t off; /* where the value goes in struct cli_opts */
  double min, max;
  unsigned cmds; /* CMD_BIT()s of the commands it applies to */
  enum cli_section section;
  bool hidden;      /* not in --help or the man page */
  const char *help; /* one line */
  const char *more; /* more for the man page, or NULL */
};

/* Returns the i-th option of the table, or NULL past the end. */
const struct cli_optdef *cli_optdef_at(size_t i);

/* Returns the title of a section ("Request options"). */
const char *cli_section_title(enum cli_section s);

#endif
