/* What `loom status` and `loom plugins` share: where the admin listener of
 * a running server is (a flag, a config file, or the default), and one GET
 * to it, with plain words when it cannot be reached. */
#ifndef LOOM_CLI_ADMIN_CLIENT_H
#define LOOM_CLI_ADMIN_CLIENT_H

#include <stddef.h>

typedef struct {
    char host[64];
    int port;
    char *token;      /* owned; NULL: none */
    const char *from; /* where the address came from, for messages */
    int set;          /* an address was given */
} loom__admin_addr;

/* The options text for usage messages. */
#define LOOM__ADMIN_OPTIONS                                                                        \
    "  --admin HOST:PORT  the server's admin listener (default: the \"admin\" of\n"                \
    "                     /etc/loom/loom.json when it has one, else 127.0.0.1:9090)\n"             \
    "  --config FILE      read the admin address and token from the server's config\n"             \
    "  --token TOKEN      the admin bearer token (also LOOM_ADMIN_TOKEN)\n"

/* Takes argv[*i] (and its value) if it is one of the admin options, moving
 * *i past it. Returns 1 if taken, 0 if not one, -1 after printing why it
 * is wrong (`cmd` names the command). */
int loom__admin_option(loom__admin_addr *a, int argc, char **argv, int *i, const char *cmd);
/* Settles the address (defaults, the environment's token). Returns 0 or -1
 * after printing why. */
int loom__admin_finish(loom__admin_addr *a, const char *cmd);
/* Reads the whole command line of an admin command `cmd`: the admin options,
 * `--json` (sets *as_json) and `--help`/`-h` (prints `usage` on stdout);
 * anything else prints `usage` on stderr. Returns -1 when the command goes
 * on (the address settled in a), else its exit code (0 after help, 2 on a
 * bad argument) with a freed. */
int loom__admin_args(loom__admin_addr *a, int argc, char **argv, const char *cmd, const char *usage,
                     int *as_json);
/* GETs `path` from the admin listener. Returns 0 with the body (malloc'd,
 * NUL-terminated) in *body, or 1 after printing, in one line, why not: not
 * reachable, a token needed or refused, or another answer. */
int loom__admin_get(const loom__admin_addr *a, const char *path, const char *cmd, char **body);
void loom__admin_addr_free(loom__admin_addr *a);

#endif
