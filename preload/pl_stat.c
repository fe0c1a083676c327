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
#include "uploader/up.h"

_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "stat64 is stat on this ABI");

/* Read routes look read-only, write routes writable; both belong to the caller. */
static mode_t present_mode(mode_t m, int writable)
{
	return (m & S_IFMT) | (S_ISDIR(m) ? 0555 : 0444) | (writable ? 0200 : 0);
}

static void present(struct stat *st, int writable)
{
	st->st_mode = present_mode(st->st_mode, writable);
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
	if (!e || r < 0 || pl_bypass())
		return r;
	if (st->st_ino != e->real_ino || st->st_dev != e->real_dev)
		return r; /* closed behind our back and reused: not ours any more */
	st->st_dev = e->dev;
	st->st_ino = e->ino;
	int writable = e->route->mode == CFG_WRITE;
	if (e->kind == PL_FD_FILE)
		st->st_mtim = e->mtime; /* not the cache file's, which moves while it fills */
	if (e->kind == PL_FD_SPOOL) {
		present(st, 1);
		return r; /* the file being written: its own size, blocks and times */
	}
	present(st, writable);
	return r;
}

/* stat of a write route's path, from the uploader (pending files, objects, prefixes). */
static int write_route_stat(const pl_path *p, struct stat *st)
{
	pl_enter();
	int rc = up_stat(p->t.route, p->t.rest, st);
	pl_leave();
	if (rc == 0) {
		st->st_uid = pl_uid;
		st->st_gid = pl_gid;
		if (S_ISREG(st->st_mode))
			st->st_mode = S_IFREG | 0644; /* the spool file's own mode is private */
		pl_write_identity(&p->t, st);
	}
	return rc;
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
	if (p.write)
		return pl_ret(write_route_stat(&p, st), saved);
	if (!p.routed)
		return PL_REAL(fstatat)(p.dirfd, p.path, st, flags);
	if (PL_REAL(fstatat)(AT_FDCWD, p.path, st, flags & AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	present(st, 0);
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
	if (!pl_fd_get(fd))
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
	sx->stx_mode = (uint16_t)present_mode(sx->stx_mode, e && e->route->mode == CFG_WRITE);
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
		return r;
	}
	int saved = errno;
	pl_path p;
	int rc = pl_resolve_path(dirfd, path, 0, &p);
	if (rc < 0)
		return pl_ret(rc, saved);
	if (p.write) {
		struct stat st;
		if ((rc = write_route_stat(&p, &st)) < 0)
			return pl_ret(rc, saved);
		memset(sx, 0, sizeof *sx);
		sx->stx_mask = STATX_BASIC_STATS;
		sx->stx_mode = (uint16_t)st.st_mode;
		sx->stx_nlink = (uint32_t)st.st_nlink;
		sx->stx_uid = st.st_uid;
		sx->stx_gid = st.st_gid;
		sx->stx_size = (uint64_t)st.st_size;
		sx->stx_blocks = (uint64_t)st.st_blocks;
		sx->stx_blksize = (uint32_t)st.st_blksize;
		sx->stx_mtime.tv_sec = st.st_mtim.tv_sec;
		sx->stx_mtime.tv_nsec = (uint32_t)st.st_mtim.tv_nsec;
		sx->stx_atime = sx->stx_ctime = sx->stx_mtime;
		return pl_ret(0, saved);
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
		struct stat st;
		return pl_ret(write_route_stat(&p, &st), saved); /* write routes are writable */
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
	/* Objects are never symbolic links: EINVAL for what exists, else ENOENT. */
	if (p.write) {
		struct stat st;
		rc = write_route_stat(&p, &st);
		return pl_ret(rc < 0 ? rc : -EINVAL, saved);
	}
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
		if (p.write) { /* objects carry no extended attributes */ \
			struct stat st; \
			rc = write_route_stat(&p, &st); \
			return pl_ret(rc < 0 ? rc : -ENODATA, saved); \
		} \
		path = p.path; \
		return PL_REAL(name) args; \
	}

XATTR_SHIM(ssize_t, getxattr, (const char *path, const char *name, void *val, size_t len),
	   (path, name, val, len))
XATTR_SHIM(ssize_t, lgetxattr, (const char *path, const char *name, void *val, size_t len),
	   (path, name, val, len))
XATTR_SHIM(ssize_t, listxattr, (const char *path, char *list, size_t len), (path, list, len))
XATTR_SHIM(ssize_t, llistxattr, (const char *path, char *list, size_t len), (path, list, len))
