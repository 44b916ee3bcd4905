#define _GNU_SOURCE
#include "CShims.h"
#include <string.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <malloc.h>
#include <linux/fs.h>

int sedlock_disable_core_dumps(void) {
    // Crash signals take their default action: the Swift runtime's crash backtracer, installed as
    // their handler, would print the memory around each register (keys among it) to stderr.
    const int crashes[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP };
    for (size_t i = 0; i < sizeof crashes / sizeof crashes[0]; i++) signal(crashes[i], SIG_DFL);
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int sedlock_exclude_from_core_dump(void *address, size_t length) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || length == 0) return 0;
    uintptr_t start = (uintptr_t)address & ~((uintptr_t)page - 1);
    uintptr_t end = ((uintptr_t)address + length + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    return madvise((void *)start, end - start, MADV_DONTDUMP);
}

void sedlock_secure_zero(void *address, size_t length) {
    explicit_bzero(address, length);
}

int sedlock_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
}

short sedlock_spawn_setsid_flag(void) {
    return POSIX_SPAWN_SETSID;
}

int sedlock_reread_partitions(int fd) {
    return ioctl(fd, BLKRRPART);
}

int sedlock_limit_malloc_arenas(int arenas) {
    return mallopt(M_ARENA_MAX, arenas);
}

int sedlock_release_free_memory(void) {
    return malloc_trim(0);
}
