/* `loom install-plugin FILE DIR`: the command that goes with hot reload
 * (`loom plugins`, the listing, is in plugin_list.c). */
#include "cli/cli.h"
#include "plugin/host.h"
#include "util/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads FILE's descriptor (the loader's checks, without init), then copies
 * FILE into DIR under a temporary dot-name, syncs it, and renames it over
 * DIR/<plugin name>.so: the running server never sees a half-written file, a
 * loaded copy is never overwritten in place, and a build named otherwise
 * (logging-inc.so) replaces the plugin rather than joining it as a second
 * file with the same name. */
int loom__cmd_install_plugin(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "--help") == 0) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: loom install-plugin FILE.so DIR\n"
                "Installs a plugin as DIR/NAME.so, NAME being the plugin's own name from its\n"
                "descriptor (whatever FILE is called), atomically: a temporary name, then a\n"
                "rename over the old file, so a running server with DIR as its plugins\n"
                "directory picks it up whole. A file that is not a loadable plugin is\n"
                "refused with the reason (as `loom check-plugin` gives it).\n");
        return argc == 2 ? 0 : 2;
    }
    const char *src = argv[0], *dir = argv[1];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "loom install-plugin: %s: %s\n", dir,
                access(dir, F_OK) != 0 ? strerror(errno) : "not a directory");
        return 1;
    }
    loom_plugin_desc d;
    char err[512];
    if (loom__plugin_inspect(src, &d, err, sizeof err) != 0) {
        fprintf(stderr, "loom install-plugin: %s: %s; not installed\n", src, err);
        return 1;
    }
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.so.%d.tmp", dir, d.name, (int)getpid());
    snprintf(dst, sizeof dst, "%s/%s.so", dir, d.name);
    int replaced = access(dst, F_OK) == 0;
    int rc = 0;
    if (loom__install_file(src, tmp, dst, 1)) {
        fprintf(stderr, "loom install-plugin: installing %s as %s: %s\n", src, dst,
                strerror(errno));
        rc = 1;
    } else {
        printf("installed %s as %s (plugin %s %s, ABI %u.%u; %s)\n", src, dst, d.name,
               d.version ? d.version : "0", d.abi_major, d.abi_minor,
               replaced ? "replaced the previous file" : "new");
        /* An earlier install under FILE's own name would now hold the
         * same plugin twice: the server refuses the second. */
        const char *base = strrchr(src, '/');
        base = base ? base + 1 : src;
        char other[4096];
        snprintf(other, sizeof other, "%s/%s", dir, base);
        if (strcmp(other, dst) != 0 && access(other, F_OK) == 0)
            printf("note: %s exists too; if it is an older build of %s, remove it\n", other,
                   d.name);
    }
    free((char *)d.name);
    free((char *)d.version);
    return rc;
}
