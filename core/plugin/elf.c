/* Is a plugin file whole? A linker writes its output in place and out of
 * order (GNU ld: the sections first, the ELF header near the end, a note
 * patched last), and `cp` writes front to back; a reload that reads such a
 * file too early must see "not written yet", not "broken". dlopen cannot
 * tell: it reports "file too short", and a segment that ends past the end of
 * the file is mapped anyway and faults (SIGBUS) when touched. So the headers
 * are checked against the file's size before dlopen. */
#include "plugin/host.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
    ssize_t n = pread(fd, buf, len, (off_t)off);
    return n == (ssize_t)len ? 0 : -1;
}

/* off + n * size <= limit, without overflow. */
static int fits(uint64_t off, uint64_t n, uint64_t size, uint64_t limit)
{
    if (size && n > (UINT64_MAX - off) / size) return 0;
    return off + n * size <= limit;
}

int loom__elf_whole(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = 0;
    Elf64_Ehdr eh;
    static const unsigned char zero[EI_NIDENT];
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        rc = -1;
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < sizeof eh) {
        unsigned char head[sizeof eh];
        size_t n = (size_t)size;
        if (n && read_at(fd, head, n, 0) == 0 && memcmp(head, ELFMAG, n < SELFMAG ? n : SELFMAG) &&
            memcmp(head, zero, n < EI_NIDENT ? n : EI_NIDENT)) {
            rc = 0; /* not ELF at all: dlopen says so */
            goto out;
        }
        snprintf(err, errlen, "truncated: %llu bytes, shorter than an ELF header",
                 (unsigned long long)size);
        rc = 1;
        goto out;
    }
    if (read_at(fd, &eh, sizeof eh, 0) != 0) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        rc = -1;
        goto out;
    }
    if (memcmp(eh.e_ident, zero, EI_NIDENT) == 0) {
        /* ld leaves the header zero until the rest is written. */
        snprintf(err, errlen, "incomplete: the ELF header is not written yet");
        rc = 1;
        goto out;
    }
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr))
        goto out; /* not an ELF file for this host: dlopen gives the reason */
    uint64_t need = 0;
    if (!fits(eh.e_phoff, eh.e_phnum, sizeof(Elf64_Phdr), size)) {
        need = eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr);
    } else {
        for (unsigned i = 0; i < eh.e_phnum && !need; i++) {
            Elf64_Phdr ph;
            if (read_at(fd, &ph, sizeof ph, eh.e_phoff + (uint64_t)i * sizeof ph) != 0) {
                need = size + 1;
                break;
            }
            if (ph.p_type != PT_NULL && !fits(ph.p_offset, 1, ph.p_filesz, size))
                need = ph.p_offset + ph.p_filesz;
        }
    }
    if (!need && eh.e_shoff && eh.e_shentsize &&
        !fits(eh.e_shoff, eh.e_shnum, eh.e_shentsize, size))
        need = eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize;
    if (need) {
        snprintf(err, errlen, "truncated: its ELF headers need %llu bytes, the file has %llu",
                 (unsigned long long)need, (unsigned long long)size);
        rc = 1;
    }
out:
    close(fd);
    return rc;
}
