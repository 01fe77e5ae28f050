/* `loom install-plugin FILE DIR` and `loom plugins`: the two commands that go
 * with hot reload. */
#include "cli/cli.h"
#include "cli/admin_client.h"
#include "util/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies FILE into DIR under a temporary dot-name, syncs it, then renames it
 * over DIR/<basename>: the running server never sees a half-written file, and
 * a loaded copy is never overwritten in place. */
int loom__cmd_install_plugin(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "--help") == 0) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: loom install-plugin FILE.so DIR\n"
                "Installs a plugin atomically (temporary name, then rename), so a running\n"
                "server with DIR as its plugins directory picks it up whole.\n");
        return argc == 2 ? 0 : 2;
    }
    const char *src = argv[0], *dir = argv[1];
    const char *base = strrchr(src, '/');
    base = base ? base + 1 : src;
    size_t bl = strlen(base);
    if (bl < 4 || strcmp(base + bl - 3, ".so") != 0 || base[0] == '.') {
        fprintf(stderr,
                "loom install-plugin: %s: the file name must end in .so and not start "
                "with '.'\n",
                src);
        return 2;
    }
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.%d.tmp", dir, base, (int)getpid());
    snprintf(dst, sizeof dst, "%s/%s", dir, base);
    if (loom__install_file(src, tmp, dst, 1)) {
        fprintf(stderr, "loom install-plugin: installing %s as %s: %s\n", src, dst,
                strerror(errno));
        return 1;
    }
    printf("installed %s\n", dst);
    return 0;
}

/* Asks a running server's admin listener for its plugin listing. */
int loom__cmd_plugins(int argc, char **argv)
{
    loom__admin_addr a = {0};
    for (int i = 0; i < argc; i++) {
        int t = loom__admin_option(&a, argc, argv, &i, "plugins");
        if (t < 0) {
            loom__admin_addr_free(&a);
            return 2;
        }
        if (t) continue;
        int help = strcmp(argv[i], "--help") == 0;
        fprintf(help ? stdout : stderr,
                "usage: loom plugins [--admin HOST:PORT] [--config FILE] [--token TOKEN]\n"
                "Lists the plugins a running server has loaded (name, version, generation,\n"
                "requests in flight, file hash, load time, last reload error), as the\n"
                "worker that answers sees them, from its admin listener (GET /plugins).\n"
                "\n" LOOM__ADMIN_OPTIONS
                "  --host ADDR, --port N  the admin address in two parts\n");
        loom__admin_addr_free(&a);
        return help ? 0 : 2;
    }
    loom__admin_finish(&a, "plugins");
    char *body = NULL;
    int rc = loom__admin_get(&a, "/_loom/plugins", "plugins", &body);
    loom__admin_addr_free(&a);
    if (rc) return 1;
    printf("%s\n", body);
    free(body);
    return 0;
}
