/* fuzz_static_path: the static plugin's opening beneath its root
 * (plugins/static/static.c, open_beneath), with both implementations
 * (openat2 RESOLVE_BENEATH and the O_NOFOLLOW walk). Invariant: whatever the
 * path, a descriptor it returns names a file inside the root -- never the
 * secret planted beside the root, reachable through ".." or a symlink. */
#undef _GNU_SOURCE
#include "../../plugins/static/static.c"

#include "fuzz_common.h"

#include <limits.h>

static int root_fd = -1;
static char root_path[PATH_MAX];

static void setup(void)
{
    char base[] = "/tmp/loom-fuzz-static-XXXXXX";
    if (!mkdtemp(base)) abort();
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/secret", base);
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
    snprintf(root_path, sizeof root_path, "%s/root", base);
    mkdir(root_path, 0755);
    snprintf(p, sizeof p, "%s/sub", root_path);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/a.txt", root_path);
    f = fopen(p, "w");
    if (f) fclose(f);
    snprintf(p, sizeof p, "%s/sub/b.txt", root_path);
    f = fopen(p, "w");
    if (f) fclose(f);
    snprintf(p, sizeof p, "%s/out", root_path);
    if (symlink("../secret", p)) abort();
    snprintf(p, sizeof p, "%s/sub/up", root_path);
    if (symlink("../..", p)) abort();
    snprintf(p, sizeof p, "%s/abs", root_path);
    if (symlink("/etc", p)) abort();
    root_fd = open(root_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) abort();
    char real[PATH_MAX];
    if (!realpath(root_path, real)) abort();
    snprintf(root_path, sizeof root_path, "%s", real);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (root_fd < 0) setup();
    if (size < 1 || size > 4096) return 0;
    use_openat2 = data[0] & 1;
    char rel[4097];
    memcpy(rel, data + 1, size - 1);
    rel[size - 1] = '\0';
    int fd = open_beneath(root_fd, rel, O_RDONLY);
    if (fd < 0) return 0;
    char link[64], where[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, where, sizeof where - 1);
    close(fd);
    FUZZ_CHECK(n > 0);
    where[n] = '\0';
    size_t rl = strlen(root_path);
    FUZZ_CHECK(strncmp(where, root_path, rl) == 0 && (where[rl] == '\0' || where[rl] == '/'));
    return 0;
}
