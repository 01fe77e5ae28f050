/* The `loom` command: one binary for the server, the client and the SDK tools. */
#include "cli/cli.h"

#include <loom/loom.h>

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: loom COMMAND [args]\n"
    "\n"
    "commands:\n"
    "  serve [options]          run the HTTP server (loom serve --help)\n"
    "  fetch [options] URL...   fetch URLs with the HTTP client (loom fetch --help)\n"
    "  ws [options] URL         a WebSocket: stdin lines out, messages in (loom ws --help)\n"
    "  install-plugin FILE DIR  install a plugin atomically (temp name, then rename)\n"
    "  new-plugin NAME [DIR]    write a plugin project (CMake, pkg-config) into DIR (./NAME)\n"
    "  check-plugin FILE.so     print a plugin's descriptor, or why it cannot load\n"
    "  dev-cert [DIR]           write a self-signed certificate for localhost (HTTPS in "
    "development)\n"
    "  plugins [--admin H:P]    list each worker's plugins of a running server (its admin\n"
    "                           listener; --json for the raw listings)\n"
    "  status [--admin H:P]     show a running server: workers, requests, plugins\n"
    "  check-config FILE        check a config file; print every problem, start nothing\n"
    "  version                  print the version and the plugin ABI version\n"
    "\n"
    "loom --help shows this text; loom COMMAND --help shows a command's options.\n";

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0) return loom__cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "install-plugin") == 0) return loom__cmd_install_plugin(argc - 2, argv + 2);
    if (strcmp(cmd, "plugins") == 0) return loom__cmd_plugins(argc - 2, argv + 2);
    if (strcmp(cmd, "new-plugin") == 0) return loom__cmd_new_plugin(argc - 2, argv + 2);
    if (strcmp(cmd, "check-plugin") == 0) return loom__cmd_check_plugin(argc - 2, argv + 2);
    if (strcmp(cmd, "status") == 0) return loom__cmd_status(argc - 2, argv + 2);
    if (strcmp(cmd, "check-config") == 0) return loom__cmd_check_config(argc - 2, argv + 2);
    if (strcmp(cmd, "fetch") == 0) return loom__cmd_fetch(argc - 2, argv + 2);
    if (strcmp(cmd, "ws") == 0) return loom__cmd_ws(argc - 2, argv + 2);
    if (strcmp(cmd, "dev-cert") == 0) return loom__cmd_dev_cert(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("loom %s (plugin ABI %d.%d)\n", LOOM_VERSION, LOOM_ABI_MAJOR, LOOM_ABI_MINOR);
        return 0;
    }
    fprintf(stderr, "loom: unknown command '%s' (see loom --help)\n", cmd);
    return 2;
}
