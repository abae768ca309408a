/* fuzz_util.h — what the libFuzzer harnesses share: the input as a file.
 *
 * The readers take paths, and check that a path is a regular file before
 * anything else, so each input is written to an anonymous memory file
 * (memfd_create) and read through /proc/self/fd/N: the same code path as a
 * file on disk, without touching one. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes data to a fresh memory file; its path goes to path.  Returns the
 * descriptor (close it after use) or -1. */
static inline int fuzz_file(const uint8_t *data, size_t size, char *path, size_t len)
{
    int fd = memfd_create("oddsky-fuzz", MFD_CLOEXEC);
    if (fd < 0) return -1;
    size_t at = 0;
    while (at < size) {
        ssize_t w = write(fd, data + at, size - at);
        if (w <= 0) { close(fd); return -1; }
        at += (size_t)w;
    }
    snprintf(path, len, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
