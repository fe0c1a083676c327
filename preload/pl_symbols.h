/* The one list of libc symbols rwsplit intercepts. X(ret, name, params) generates the typedef
 * of each real function, the slot that holds it, and its lookup (pl_real.c); the shims
 * themselves live in the pl_*.c file of their family.
 *
 * Only canonical names are listed. On x86-64 the *64 variants (open64, pread64, stat64, ...)
 * have the same layout and are exported as aliases of the same shims, and the fortify
 * (__open_2, ...) and pre-2.33 stat ABI (__xstat, ...) entries are thin wrappers over the same
 * handlers, so none of them needs a real symbol of its own. */
#ifndef RWSPLIT_PL_SYMBOLS_H
#define RWSPLIT_PL_SYMBOLS_H

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

struct statx;
struct utimbuf;

#define PL_SYMBOLS(X) \
	/* open family, incl. fortify and 64-bit entries */ \
	X(int, open, (const char *path, int flags, ...)) \
	X(int, openat, (int dirfd, const char *path, int flags, ...)) \
	X(int, creat, (const char *path, mode_t mode)) \
	/* ending and duplicating fds */ \
	X(int, close, (int fd)) \
	X(int, fsync, (int fd)) \
	X(int, fdatasync, (int fd)) \
	X(void, _exit, (int status)) \
	X(void, _Exit, (int status)) \
	X(int, close_range, (unsigned first, unsigned last, int flags)) \
	X(int, dup, (int fd)) \
	X(int, dup2, (int fd, int fd2)) \
	X(int, dup3, (int fd, int fd2, int flags)) \
	X(int, fcntl, (int fd, int cmd, ...)) \
	/* data calls that must wait for a lazily filled file */ \
	X(ssize_t, read, (int fd, void *buf, size_t n)) \
	X(ssize_t, pread, (int fd, void *buf, size_t n, off_t off)) \
	X(ssize_t, readv, (int fd, const struct iovec *iov, int cnt)) \
	X(ssize_t, preadv, (int fd, const struct iovec *iov, int cnt, off_t off)) \
	X(ssize_t, preadv2, (int fd, const struct iovec *iov, int cnt, off_t off, int fl)) \
	X(void *, mmap, (void *addr, size_t len, int prot, int flags, int fd, off_t off)) \
	X(ssize_t, copy_file_range, (int in, off_t *inoff, int out, off_t *outoff, size_t n, \
				     unsigned fl)) \
	X(ssize_t, sendfile, (int out, int in, off_t *off, size_t n)) \
	X(ssize_t, splice, (int in, off_t *inoff, int out, off_t *outoff, size_t n, \
			    unsigned fl)) \
	/* metadata */ \
	X(int, stat, (const char *path, struct stat *st)) \
	X(int, lstat, (const char *path, struct stat *st)) \
	X(int, fstat, (int fd, struct stat *st)) \
	X(int, fstatat, (int dirfd, const char *path, struct stat *st, int flags)) \
	X(int, statx, (int dirfd, const char *path, int flags, unsigned mask, struct statx *st)) \
	X(int, access, (const char *path, int mode)) \
	X(int, faccessat, (int dirfd, const char *path, int mode, int flags)) \
	X(int, euidaccess, (const char *path, int mode)) \
	X(ssize_t, readlink, (const char *path, char *buf, size_t len)) \
	X(ssize_t, getxattr, (const char *path, const char *name, void *val, size_t len)) \
	X(ssize_t, lgetxattr, (const char *path, const char *name, void *val, size_t len)) \
	X(ssize_t, listxattr, (const char *path, char *list, size_t len)) \
	X(ssize_t, llistxattr, (const char *path, char *list, size_t len)) \
	/* directories: the shadow tree is real, so only the path-taking entries are mapped */ \
	X(DIR *, opendir, (const char *path)) \
	X(int, scandir, (const char *path, struct dirent ***list, \
			 int (*filter)(const struct dirent *), \
			 int (*cmp)(const struct dirent **, const struct dirent **))) \
	X(int, chdir, (const char *path)) \
	X(int, fchdir, (int fd)) \
	X(char *, getcwd, (char *buf, size_t size)) \
	/* stdio opens bypass the open symbol */ \
	X(FILE *, fopen, (const char *path, const char *mode)) \
	X(FILE *, freopen, (const char *path, const char *mode, FILE *f)) \
	X(FILE *, fdopen, (int fd, const char *mode)) \
	X(int, fclose, (FILE *f)) \
	X(int, closedir, (DIR *d)) \
	/* namespace changes: EROFS on read routes */ \
	X(int, unlink, (const char *path)) \
	X(int, unlinkat, (int dirfd, const char *path, int flags)) \
	X(int, remove, (const char *path)) \
	X(int, rename, (const char *from, const char *to)) \
	X(int, renameat, (int fromfd, const char *from, int tofd, const char *to)) \
	X(int, renameat2, (int fromfd, const char *from, int tofd, const char *to, unsigned fl)) \
	X(int, mkdir, (const char *path, mode_t mode)) \
	X(int, mkdirat, (int dirfd, const char *path, mode_t mode)) \
	X(int, rmdir, (const char *path)) \
	X(int, truncate, (const char *path, off_t len)) \
	X(int, chmod, (const char *path, mode_t mode)) \
	X(int, fchmodat, (int dirfd, const char *path, mode_t mode, int flags)) \
	X(int, chown, (const char *path, uid_t uid, gid_t gid)) \
	X(int, lchown, (const char *path, uid_t uid, gid_t gid)) \
	X(int, fchownat, (int dirfd, const char *path, uid_t uid, gid_t gid, int flags)) \
	X(int, utimensat, (int dirfd, const char *path, const struct timespec t[2], int flags)) \
	X(int, utimes, (const char *path, const struct timeval t[2])) \
	X(int, utime, (const char *path, const struct utimbuf *t)) \
	X(int, link, (const char *from, const char *to)) \
	X(int, linkat, (int fromfd, const char *from, int tofd, const char *to, int flags)) \
	X(int, symlink, (const char *target, const char *path)) \
	X(int, symlinkat, (const char *target, int dirfd, const char *path)) \
	X(int, fchmod, (int fd, mode_t mode)) \
	X(int, fchown, (int fd, uid_t uid, gid_t gid)) \
	X(int, futimens, (int fd, const struct timespec t[2])) \
	X(int, futimes, (int fd, const struct timeval t[2]))

#define PL_TYPEDEF(ret, name, params) typedef ret(*pl_##name##_fn) params;
PL_SYMBOLS(PL_TYPEDEF)
#undef PL_TYPEDEF

typedef struct pl_real_table {
#define PL_SLOT(ret, name, params) pl_##name##_fn name;
	PL_SYMBOLS(PL_SLOT)
#undef PL_SLOT
} pl_real_table;

/* The next definition of every symbol (libc's), resolved once. Tests may replace entries to
 * inject faults, as SQLite's os_unix.c does with its syscall table. */
extern pl_real_table pl_real;

/* Resolves pl_real exactly once (pthread_once); cheap after the first call. */
void pl_resolve(void);

/* The real function behind a shim. Other libraries' constructors may call a shim before
 * ours has run, so an unresolved slot resolves the table on the spot. */
#define PL_REAL(name) (pl_real.name ? pl_real.name : (pl_resolve(), pl_real.name))

#endif
