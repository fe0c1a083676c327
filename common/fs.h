/* What the cache, the spool and the agents' sockets share: directories another user of the
 * node cannot swap, and sockets whose peer is checked. */
#ifndef RWSPLIT_FS_H
#define RWSPLIT_FS_H

#include <sys/types.h>

/* mkdir -p: creates path and its missing parents with mode. No allocation. Returns 0 or
 * -errno. */
int fs_mkdir_p(const char *path, mode_t mode);

/* Opens directory path (absolute, or relative to the working directory), creating what is
 * missing with mode, one component at a time with openat(O_NOFOLLOW), so that a directory
 * on a node shared with other users cannot be swapped under rwsplit:
 *   - no component is a symbolic link (-ELOOP) or anything but a directory (-ENOTDIR);
 *   - every directory on the way is owned by root or the caller, and is sticky if anyone
 *     may write it (-EPERM): else another user could rename what rwsplit makes in it;
 *   - the last is owned by the caller, and closed to others with FS_PRIVATE (-EPERM); with
 *     FS_SHARED it is checked as the ones on the way instead (a directory users share), and
 *     if this call makes it, it gets mode exactly (no umask).
 * Returns an O_DIRECTORY|O_CLOEXEC fd the caller closes, or -errno; bad (badcap bytes, may
 * be NULL) then names the component at fault and why. No allocation. */
enum { FS_PRIVATE = 1, FS_SHARED = 2 };
int fs_open_dir_safe(const char *path, mode_t mode, unsigned flags, char *bad, size_t badcap);

/* rm -rf of name relative to directory fd parent (AT_FDCWD for a path). Returns 0 (also when
 * it did not exist) or -errno. */
int fs_rm_rf_at(int parent, const char *name);
int fs_rm_rf(const char *path);

/* The directory of the file (shared library or program) this code was loaded from, into out
 * (cap bytes). Returns 0, or -1 when it cannot be told or does not fit. */
int fs_self_dir(char *out, size_t cap);

/* 1 if the process at the other end of UNIX socket sock runs as our effective uid
 * (SO_PEERCRED), else 0: only it may use our credentials or feed us data. */
int fs_peer_is_us(int sock);

#endif
