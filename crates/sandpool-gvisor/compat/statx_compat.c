/* sandpool gVisor compatibility shim, preloaded (LD_PRELOAD) into every process of a
 * gVisor sandbox. runsc 20221219 rejects the AT_NO_AUTOMOUNT flag in statx(2) and
 * newfstatat(2) with EINVAL, and coreutils 9.1 passes it on every call (`ls -l`,
 * `stat`). A sandbox kernel has no automounts, so the flag means nothing there: these
 * wrappers drop it and make the system call themselves. Nothing else is changed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_NO_AUTOMOUNT
#define AT_NO_AUTOMOUNT 0x800
#endif

int statx(int dirfd, const char *restrict path, int flags, unsigned int mask,
          struct statx *restrict buf)
{
    return (int)syscall(SYS_statx, dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
}

int fstatat(int dirfd, const char *restrict path, struct stat *restrict buf, int flags)
{
    return (int)syscall(SYS_newfstatat, dirfd, path, buf, flags & ~AT_NO_AUTOMOUNT);
}

int fstatat64(int dirfd, const char *restrict path, struct stat64 *restrict buf, int flags)
{
    return (int)syscall(SYS_newfstatat, dirfd, path, buf, flags & ~AT_NO_AUTOMOUNT);
}
