/* The stat family, access and readlink. Every entry point goes through stat_at/fstat_fd (or
 * statx_at): a routed path is answered by its shadow entry, which already carries the
 * object's size, mtime and mode; the owner is reported as the calling user. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "preload/pl_fdtab.h"
#include "preload/pl_open.h"
#include "preload/pl_route.h"
#include "preload/pl_shim.h"
#include "preload/pl_state.h"
#include "preload/pl_symbols.h"
#include "preload/pl_write.h"

_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "stat64 is stat on this ABI");

/* Read routes look read-only and belong to the caller. */
static mode_t present_mode(mode_t m)
{
	return (m & S_IFMT) | (S_ISDIR(m) ? 0555 : 0444);
}

static void present(struct stat *st)
{
	st->st_mode = present_mode(st->st_mode);
	st->st_uid = pl_uid;
	st->st_gid = pl_gid;
	if (S_ISREG(st->st_mode)) {
		st->st_blocks = (st->st_size + 511) / 512; /* placeholders are sparse */
		st->st_ctim = st->st_mtim; /* the object changes as a whole */
	}
	if (S_ISDIR(st->st_mode)) {
		/* A prefix has no size; report what ext4 and xfs report for a small directory. Its
		 * number of sub-directories is only known once it is listed, so report 1, the
		 * "not counted" value fts and find understand, rather than a number that changes
		 * with what has been listed. */
		st->st_size = 4096;
		st->st_blocks = 8;
		st->st_nlink = 1;
	}
}

/* fstat of a routed fd reports the shadow entry's identity, so stat(path) and fstat(fd)
 * agree, as fts, tar and cp expect. */
static int fstat_fd(int fd, struct stat *st)
{
	pl_fd *e = pl_fd_get(fd);
	int r = PL_REAL(fstat)(fd, st);
	/* (not ours any more if closed behind our back and the number reused) */
	if (e && r == 0 && !pl_bypass() && st->st_ino == e->real_ino &&
	    st->st_dev == e->real_dev) {
		st->st_dev = e->dev;
		st->st_ino = e->ino;
		if (e->kind == PL_FD_FILE)
			st->st_mtim = e->mtime; /* not the cache file's, which moves while it fills */
		present(st);
	}
	pl_fd_unref(e);
	return r;
}

static int stat_at(int dirfd, const char *path, struct stat *st, int flags)
{
	if ((flags & AT_EMPTY_PATH) && pl_empty_path(path) && !pl_bypass())
		return fstat_fd(dirfd, st);
	int saved = errno;
	pl_path p;
	int rc = pl_resolve_path(dirfd, path, 0, &p);
	if (rc < 0)
		return pl_ret(rc, saved);
	if (p.write) {
		if (PL_REAL(fstatat)(dirfd, path, st, flags) < 0)
			return -1;
		pl_write_present(dirfd, path, st);
		errno = saved;
		return 0;
	}
	if (!p.routed)
		return PL_REAL(fstatat)(p.dirfd, p.path, st, flags);
	if (PL_REAL(fstatat)(AT_FDCWD, p.path, st, flags & AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	present(st);
	errno = saved;
	return 0;
}

PL_EXPORT int stat(const char *path, struct stat *st)
{
	if (pl_unrouted_abs(path))
		return PL_REAL(stat)(path, st);
	return stat_at(AT_FDCWD, path, st, 0);
}

PL_EXPORT int lstat(const char *path, struct stat *st)
{
	if (pl_unrouted_abs(path))
		return PL_REAL(lstat)(path, st);
	return stat_at(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

PL_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	return stat_at(dirfd, path, st, flags);
}

PL_EXPORT int fstat(int fd, struct stat *st)
{
	if (!pl_fd_routed(fd))
		return PL_REAL(fstat)(fd, st);
	return fstat_fd(fd, st);
}

/* The 64-bit names take struct stat64, which is struct stat on x86-64. */
PL_EXPORT int stat64(const char *path, struct stat64 *st)
{
	return stat(path, (struct stat *)st);
}

PL_EXPORT int lstat64(const char *path, struct stat64 *st)
{
	return lstat(path, (struct stat *)st);
}

PL_EXPORT int fstat64(int fd, struct stat64 *st)
{
	return fstat(fd, (struct stat *)st);
}

PL_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	return stat_at(dirfd, path, (struct stat *)st, flags);
}

/* The pre-2.33 ABI that manylinux wheels (TensorFlow among them) still call. On x86-64 every
 * version number uses the layout of struct stat. */
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);

PL_EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
	(void)ver;
	return stat(path, st);
}

PL_EXPORT int __xstat64(int ver, const char *path, struct stat64 *st)
{
	(void)ver;
	return stat(path, (struct stat *)st);
}

PL_EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
	(void)ver;
	return lstat(path, st);
}

PL_EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st)
{
	(void)ver;
	return lstat(path, (struct stat *)st);
}

PL_EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
	(void)ver;
	return fstat(fd, st);
}

PL_EXPORT int __fxstat64(int ver, int fd, struct stat64 *st)
{
	(void)ver;
	return fstat(fd, (struct stat *)st);
}

PL_EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	(void)ver;
	return stat_at(dirfd, path, st, flags);
}

PL_EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags)
{
	(void)ver;
	return stat_at(dirfd, path, (struct stat *)st, flags);
}

static void present_statx(struct statx *sx, const pl_fd *e)
{
	sx->stx_mode = (uint16_t)present_mode(sx->stx_mode);
	sx->stx_uid = pl_uid;
	sx->stx_gid = pl_gid;
	if (S_ISREG(sx->stx_mode)) {
		sx->stx_blocks = (sx->stx_size + 511) / 512;
		if (e && e->kind == PL_FD_FILE) {
			sx->stx_mtime.tv_sec = e->mtime.tv_sec;
			sx->stx_mtime.tv_nsec = (uint32_t)e->mtime.tv_nsec;
		}
		sx->stx_ctime = sx->stx_mtime;
	}
	if (S_ISDIR(sx->stx_mode)) {
		sx->stx_size = 4096;
		sx->stx_blocks = 8;
		sx->stx_nlink = 1;
	}
	if (e) {
		sx->stx_ino = e->ino;
		sx->stx_dev_major = major(e->dev);
		sx->stx_dev_minor = minor(e->dev);
	}
}

PL_EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *sx)
{
	if ((flags & AT_EMPTY_PATH) && pl_empty_path(path) && !pl_bypass()) {
		pl_fd *e = pl_fd_get(dirfd);
		int r = PL_REAL(statx)(dirfd, path, flags, mask, sx);
		if (e && r == 0 && sx->stx_ino == e->real_ino)
			present_statx(sx, e);
		pl_fd_unref(e);
		return r;
	}
	int saved = errno;
	pl_path p;
	int rc = pl_resolve_path(dirfd, path, 0, &p);
	if (rc < 0)
		return pl_ret(rc, saved);
	if (p.write) {
		if (PL_REAL(statx)(dirfd, path, flags, mask, sx) < 0)
			return -1;
		struct stat st = { .st_mode = sx->stx_mode, .st_size = (off_t)sx->stx_size,
				   .st_mtim = { .tv_sec = sx->stx_mtime.tv_sec,
						.tv_nsec = sx->stx_mtime.tv_nsec } };
		pl_write_present(dirfd, path, &st);
		sx->stx_mode = (uint16_t)st.st_mode;
		sx->stx_size = (uint64_t)st.st_size;
		sx->stx_blocks = (uint64_t)st.st_blocks ? (uint64_t)st.st_blocks : sx->stx_blocks;
		errno = saved;
		return 0;
	}
	if (!p.routed)
		return PL_REAL(statx)(p.dirfd, p.path, flags, mask, sx);
	if (PL_REAL(statx)(AT_FDCWD, p.path, flags & ~AT_EMPTY_PATH, mask, sx) < 0)
		return -1;
	present_statx(sx, NULL);
	errno = saved;
	return 0;
}

static int access_at(int dirfd, const char *path, int mode, int flags)
{
	int saved = errno;
	pl_path p;
	int rc = pl_resolve_path(dirfd, path, 0, &p);
	if (rc < 0)
		return pl_ret(rc, saved);
	if (p.write) {
		/* A placeholder has no permission bits of its own: it stands for a 0644 file. */
		struct stat st = { 0 };
		if (PL_REAL(faccessat)(dirfd, path, mode, flags) == 0)
			return pl_ret(0, saved);
		if (errno != EACCES || PL_REAL(fstatat)(dirfd, path, &st, 0) < 0)
			return -1;
		mode_t m = st.st_mode;
		pl_write_present(dirfd, path, &st);
		return st.st_mode == m ? pl_ret(-EACCES, saved)
				       : pl_ret(mode & X_OK ? -EACCES : 0, saved);
	}
	if (!p.routed)
		return PL_REAL(faccessat)(p.dirfd, p.path, mode, flags);
	/* The shadow is writable by its owner; the route is not. */
	if (PL_REAL(faccessat)(AT_FDCWD, p.path, mode & ~W_OK, flags) < 0)
		return -1;
	return pl_ret(mode & W_OK ? -EROFS : 0, saved);
}

PL_EXPORT int access(const char *path, int mode)
{
	if (pl_unrouted_abs(path))
		return PL_REAL(access)(path, mode);
	return access_at(AT_FDCWD, path, mode, 0);
}

PL_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
	return access_at(dirfd, path, mode, flags);
}

PL_EXPORT int euidaccess(const char *path, int mode)
{
	if (pl_unrouted_abs(path))
		return PL_REAL(euidaccess)(path, mode);
	return access_at(AT_FDCWD, path, mode, AT_EACCESS);
}
PL_ALIAS(euidaccess, eaccess);

PL_EXPORT ssize_t readlink(const char *path, char *buf, size_t len)
{
	int saved = errno;
	pl_path p;
	int rc = pl_resolve_path(AT_FDCWD, path, 0, &p);
	if (rc < 0)
		return pl_ret(rc, saved);
	return PL_REAL(readlink)(p.path, buf, len);
}

/* Extended attributes of a routed path are those of its shadow entry (none, on tmpfs): ls -l
 * asks for ACLs and must not be told the file does not exist. */
#define XATTR_SHIM(ret, name, params, args) \
	PL_EXPORT ret name params \
	{ \
		int saved = errno; \
		pl_path p; \
		int rc = pl_resolve_path(AT_FDCWD, path, 0, &p); \
		if (rc < 0) \
			return pl_ret(rc, saved); \
		path = p.path; \
		return PL_REAL(name) args; \
	}

XATTR_SHIM(ssize_t, getxattr, (const char *path, const char *name, void *val, size_t len),
	   (path, name, val, len))
XATTR_SHIM(ssize_t, lgetxattr, (const char *path, const char *name, void *val, size_t len),
	   (path, name, val, len))
XATTR_SHIM(ssize_t, listxattr, (const char *path, char *list, size_t len), (path, list, len))
XATTR_SHIM(ssize_t, llistxattr, (const char *path, char *list, size_t len), (path, list, len))
