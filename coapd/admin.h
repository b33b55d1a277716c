/* `coapd user ...` and `coapd device ...`: the registry's administration
 * from the command line (SPEC: coapd), against the data directory's
 * database, also while a daemon runs on it. */
#ifndef COAPD_ADMIN_H
#define COAPD_ADMIN_H

/* Runs the command in argv[1] ("user" or "device") and its arguments.
 * Prints one line: a confirmation on stdout, or an error on stderr; a
 * list prints one line per entry. Returns the exit status: 0 on success,
 * 1 on a failure (the user exists, no such device, the database cannot
 * be opened), 2 on a usage error. */
int admin_main(int argc, char **argv);

#endif
