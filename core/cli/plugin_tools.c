/* `loom new-plugin NAME [DIR]` and `loom check-plugin FILE.so`: the SDK's
 * two commands for plugin authors. The template text is compiled in
 * (loom_template.h, generated from the .in files in sdk/template), so an
 * installed loom needs no source tree. */
#include "cli/cli.h"
#include "plugin/host.h"

#include "loom_template.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* 1 if `dir` exists and holds anything, 0 if missing or empty, -1 if it
 * exists but cannot be listed (or is not a directory). */
static int dir_nonempty(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return -1;
    DIR *d = opendir(dir);
    if (!d) return -1;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) found = 1;
    closedir(d);
    return found;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* Writes `text` to `path` with every "@NAME@" replaced by `name`. */
static int write_expanded(const char *path, const char *text, const char *name)
{
    FILE *f = fopen(path, "wx");
    if (!f) return -1;
    static const char key[] = "@NAME@";
    const char *p = text, *hit;
    while ((hit = strstr(p, key)) != NULL) {
        fwrite(p, 1, (size_t)(hit - p), f);
        fputs(name, f);
        p = hit + sizeof key - 1;
    }
    fputs(p, f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return -1;
    return 0;
}

int loom__cmd_new_plugin(int argc, char **argv)
{
    if (argc < 1 || argc > 2 || strcmp(argv[0], "--help") == 0) {
        int help = argc >= 1 && strcmp(argv[0], "--help") == 0;
        fprintf(help ? stdout : stderr,
                "usage: loom new-plugin NAME [DIR]\n"
                "Writes a plugin project into DIR (default ./NAME): CMakeLists.txt\n"
                "(find_package(Loom) + loom_add_plugin), NAME.c with a GET /NAME route,\n"
                "a Makefile for pkg-config users, and a README. NAME is [a-z0-9_-]{1,64};\n"
                "DIR must not exist or be empty.\n");
        return help ? 0 : 2;
    }
    const char *name = argv[0];
    const char *dir = argc > 1 ? argv[1] : name;
    if (!valid_name(name)) {
        fprintf(stderr, "loom new-plugin: bad plugin name '%s' (want [a-z0-9_-]{1,64})\n", name);
        return 2;
    }
    int ne = dir_nonempty(dir);
    if (ne != 0) {
        fprintf(stderr, "loom new-plugin: %s %s\n", dir,
                ne > 0 ? "exists and is not empty" : "exists and is not a usable directory");
        return 1;
    }
    if (make_dirs(dir) != 0) {
        fprintf(stderr, "loom new-plugin: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    size_t n = sizeof loom__template_files / sizeof loom__template_files[0];
    for (size_t i = 0; i < n; i++) {
        const char *tpath = loom__template_files[i].path;
        char fname[256], path[4400];
        const char *at = strstr(tpath, "@NAME@");
        if (at)
            snprintf(fname, sizeof fname, "%.*s%s%s", (int)(at - tpath), tpath, name, at + 6);
        else
            snprintf(fname, sizeof fname, "%s", tpath);
        snprintf(path, sizeof path, "%s/%s", dir, fname);
        if (write_expanded(path, loom__template_files[i].text, name) != 0) {
            fprintf(stderr, "loom new-plugin: cannot write %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    printf("created plugin %s in %s\n"
           "build: cmake -S %s -B %s/build -DCMAKE_PREFIX_PATH=<loom prefix> && cmake --build "
           "%s/build\n",
           name, dir, dir, dir, dir);
    return 0;
}

int loom__cmd_check_plugin(int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "--help") == 0) {
        int help = argc == 1;
        fprintf(help ? stdout : stderr,
                "usage: loom check-plugin FILE.so\n"
                "Opens a private copy of FILE.so and makes the loader's checks (descriptor,\n"
                "magic, ABI version, size) without running the plugin's init. Prints the\n"
                "descriptor and exits 0, or prints why it cannot load and exits 1.\n");
        return help ? 0 : 2;
    }
    const char *path = argv[0];
    loom_plugin_desc d;
    char err[512];
    if (loom__plugin_inspect(path, &d, err, sizeof err) != 0) {
        printf("%s: %s\n", path, err);
        return 1;
    }
    printf("file     %s\n"
           "name     %s\n"
           "version  %s\n"
           "abi      %u.%u (this host: %u.%u)\n"
           "flags    0x%x%s\n"
           "size     %u\n",
           path, d.name, d.version ? d.version : "(none)", d.abi_major, d.abi_minor, LOOM_ABI_MAJOR,
           LOOM_ABI_MINOR, d.flags, (d.flags & LOOM_PLUGIN_RELOADABLE) ? " (reloadable)" : "",
           d.size);
    free((char *)d.name);
    free((char *)d.version);
    return 0;
}
