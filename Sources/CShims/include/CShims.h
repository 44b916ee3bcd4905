#ifndef SEDLOCK_CSHIMS_H
#define SEDLOCK_CSHIMS_H
#include <stddef.h>
#include <spawn.h>

/// prctl(PR_SET_DUMPABLE, 0): keeps secrets out of core dumps and ptrace (prctl is variadic);
/// crash signals back to their default action, so Swift's backtracer prints no memory.
int sedlock_disable_core_dumps(void);
/// madvise(MADV_DONTDUMP) on the pages covering [address, address+length).
int sedlock_exclude_from_core_dump(void *address, size_t length);
/// Zeroes memory in a way the compiler may not elide.
void sedlock_secure_zero(void *address, size_t length);

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+, a GNU extension Swift does not see):
/// the child closes every descriptor from `lowfd` up before it execs.
int sedlock_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd);
/// POSIX_SPAWN_SETSID (a GNU extension): the child starts a session of its own.
short sedlock_spawn_setsid_flag(void);

/// ioctl(fd, BLKRRPART): the kernel re-reads the disk's partition table (ioctl is variadic).
int sedlock_reread_partitions(int fd);

/// mallopt(M_ARENA_MAX, arenas): caps glibc's per-thread malloc arenas (each keeps its own free memory).
int sedlock_limit_malloc_arenas(int arenas);
/// malloc_trim(0): hands free heap memory back to the kernel.
int sedlock_release_free_memory(void);

#endif
