/*
 * fsync_fault.c: a disk that fails the server's fsyncs of its write-ahead
 * log, for tests/limits/test_disk_failing.py. Preloaded into the server
 * (LD_PRELOAD): while the file named by SARYE_TEST_FSYNC_FAULT exists,
 * every fsync() and fdatasync() of a file whose name ends in what the file
 * holds ("-wal", the write-ahead log, when it is empty; ".db", the
 * database) fails with EIO, as a disk does when it cannot write back what
 * it was given; every other call, and every call while the file is absent,
 * is the C library's own.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int (*real_fsync)(int), (*real_fdatasync)(int);

__attribute__((constructor)) static void resolve(void)
{
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
}

static bool failing(int fd)
{
    const char *trigger = getenv("SARYE_TEST_FSYNC_FAULT");
    FILE *f = trigger ? fopen(trigger, "re") : NULL;
    if (!f) return false;
    char suffix[32] = "";
    if (!fgets(suffix, sizeof suffix, f)) suffix[0] = 0;
    fclose(f);
    suffix[strcspn(suffix, "\n")] = 0;
    if (!suffix[0]) strcpy(suffix, "-wal");
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    size_t k = strlen(suffix);
    if (n < (ssize_t)k) return false;
    path[n] = 0;
    return !strcmp(path + n - k, suffix);
}

int fsync(int fd)
{
    if (failing(fd)) {
        errno = EIO;
        return -1;
    }
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    if (failing(fd)) {
        errno = EIO;
        return -1;
    }
    return real_fdatasync(fd);
}
