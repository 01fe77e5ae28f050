/* `loom install-plugin FILE DIR` and `loom plugins`: the two commands that go
 * with hot reload. */
#include "cli/cli.h"
#include "plugin/host.h"
#include "util/fs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
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

/* Asks a running server (with "admin": true) for its plugin listing. */
int loom__cmd_plugins(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 8080;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else {
            fprintf(strcmp(argv[i], "--help") == 0 ? stdout : stderr,
                    "usage: loom plugins [--host ADDR] [--port N]\n"
                    "Lists the plugins a running server has loaded (name, version, generation,\n"
                    "requests in flight, file hash, load time, last reload error). The server\n"
                    "must run with \"admin\": true (GET /_loom/plugins, loopback only).\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "loom plugins: --host '%s': not an IPv4 address\n", host);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        fprintf(stderr, "loom plugins: cannot connect to %s:%d: %s\n", host, port, strerror(errno));
        close(fd);
        return 1;
    }
    char req[256];
    int rl = snprintf(req, sizeof req,
                      "GET /_loom/plugins HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
    if (write(fd, req, (size_t)rl) != rl) {
        close(fd);
        return 1;
    }
    static char resp[1 << 20];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof resp - 1 && (n = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    resp[got] = '\0';
    char *body = strstr(resp, "\r\n\r\n");
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0 || !body) {
        char *eol = strchr(resp, '\r');
        if (eol) *eol = '\0';
        fprintf(stderr, "loom plugins: the server answered '%s' (is \"admin\": true set?)\n",
                got ? resp : "nothing");
        return 1;
    }
    printf("%s\n", body + 4);
    return 0;
}
