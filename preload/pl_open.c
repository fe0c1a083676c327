/* The open family, fd lifetime (close, dup) and the stdio entry points that open or close
 * files without going through the open/close symbols. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "preload/pl_fdtab.h"
#include "preload/pl_open.h"
#include "preload/pl_route.h"
#include "preload/pl_shim.h"
#include "preload/pl_state.h"
#include "preload/pl_symbols.h"
#include "preload/pl_write.h"
#include "uploader/up.h"
#include "reader/rd.h"

static int wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)) ||
	       (flags & O_TMPFILE) == O_TMPFILE;
}

int pl_shadow_lstat(const pl_target *t, int list_self, char *shadow, size_t cap,
		    struct stat *st)
{
	int rc = rd_shadow(t->route, t->rest, list_self, shadow, cap);
	if (rc == 0 && PL_REAL(lstat)(shadow, st) < 0)
		rc = -errno;
	return rc;
}

/* Write routes: the tree is real, so the caller's own open, once a placeholder there is
 * a file. */
static int open_write_route(int dirfd, const char *path, const pl_target *t, int flags,
			    mode_t mode)
{
	if (pl_in_vfork_child()) /* posix_spawn's file actions: nothing of ours to touch */
		goto real;
	int arc = pl_write_attach(t);
	if (arc < 0)
		return arc;
	/* A file the store could never hold is refused where the program can tell. */
	if ((flags & O_CREAT) && strlen(t->route->prefix) + strlen(t->rest) > RT_KEY_MAX)
		return -ENAMETOOLONG;
	if (!(flags & (O_PATH | O_DIRECTORY))) {
		int rc = pl_write_prepare(t, dirfd, path, (flags & O_TRUNC) != 0);
		if (rc < 0)
			return rc;
	}
real:;
	int fd = PL_REAL(openat)(dirfd, path, flags, mode);
	return fd < 0 ? -errno : fd;
}

int pl_open_routed(const pl_target *t, int flags, rd_file **lazy_out)
{
	if (lazy_out)
		*lazy_out = NULL;
	if (wants_write(flags))
		return -EROFS;
	char shadow[PATH_MAX];
	struct stat st = { 0 };
	pl_enter();
	int rc = pl_shadow_lstat(t, 0, shadow, sizeof shadow, &st);
	int fd = -1;
	rd_file *lazy = NULL;
	enum pl_fd_kind kind = PL_FD_FILE;
	if (rc < 0)
		goto out;
	if (S_ISDIR(st.st_mode)) {
		kind = PL_FD_DIR;
		/* The program is about to read the directory: make sure it is listed. */
		if (!(flags & O_PATH))
			rc = rd_shadow(t->route, t->rest, 1, shadow, sizeof shadow);
		if (rc == 0 && (fd = PL_REAL(openat)(AT_FDCWD, shadow, flags, 0)) < 0)
			rc = -errno;
	} else if (flags & O_DIRECTORY) {
		rc = -ENOTDIR;
	} else if (flags & O_PATH) {
		if ((fd = PL_REAL(openat)(AT_FDCWD, shadow, flags, 0)) < 0)
			rc = -errno;
	} else {
		fd = rd_open(t->route, t->rest, &st, flags, &lazy);
		if (fd < 0)
			rc = fd;
	}
	if (rc < 0)
		goto out;
	pl_fd *e = pl_fd_new(kind, t->route, t->rest, fd, &st, lazy);
	if (!e || pl_fd_install(fd, e) < 0) {
		if (!e && lazy)
			rd_file_release(lazy);
		PL_REAL(close)(fd);
		rc = -EMFILE;
		goto out;
	}
	if (lazy_out)
		*lazy_out = lazy;
	rc = fd;
out:
	pl_leave();
	return rc;
}

/* The one open handler behind every open entry point. */
static int open_at(int dirfd, const char *path, int flags, mode_t mode)
{
	if (pl_bypass())
		goto real;
	pl_target t;
	int saved = errno;
	int r = pl_route(dirfd, path, &t);
	if (r == PL_PASS) {
		/* Relative to a directory fd that may be inside a write route's tree. */
		if (pl_has_write && dirfd != AT_FDCWD && path && path[0] != '/' &&
		    !(flags & (O_PATH | O_DIRECTORY)) && !pl_in_vfork_child()) {
			int rc = pl_write_prepare(NULL, dirfd, path, (flags & O_TRUNC) != 0);
			if (rc < 0)
				return pl_ret(rc, saved);
		}
		goto real;
	}
	if (r == PL_PASS_ABS)
		return PL_REAL(openat)(AT_FDCWD, t.norm, flags, mode);
	if (r == PL_ROUTED && t.route->mode == CFG_WRITE)
		return pl_ret(open_write_route(dirfd, path, &t, flags, mode), saved);
	/* A vfork child (posix_spawn file actions) must not fetch or change the fd table. */
	if (r > 0 && pl_in_vfork_child())
		r = -ENOTSUP;
	int fd = r < 0 ? r : pl_open_routed(&t, flags, NULL);
	return pl_ret(fd, saved);
real:
	return PL_REAL(openat)(dirfd, path, flags, mode);
}

static mode_t mode_arg(int flags, va_list ap)
{
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		return (mode_t)va_arg(ap, int); // NOLINT(clang-analyzer-valist.Uninitialized)
	return 0;
}

PL_EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	if (pl_unrouted_abs(path))
		return PL_REAL(open)(path, flags, mode);
	return open_at(AT_FDCWD, path, flags, mode);
}
PL_ALIAS(open, open64);

PL_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return open_at(dirfd, path, flags, mode);
}
PL_ALIAS(openat, openat64);

PL_EXPORT int creat(const char *path, mode_t mode)
{
	return open_at(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}
PL_ALIAS(creat, creat64);

/* Fortify entries: the compiler emits these for open() calls whose flags it cannot see. */
PL_EXPORT int __open_2(const char *path, int flags)
{
	return open_at(AT_FDCWD, path, flags, 0);
}
PL_ALIAS(__open_2, __open64_2);

PL_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return open_at(dirfd, path, flags, 0);
}
PL_ALIAS(__openat_2, __openat64_2);

/* Drops fd's entry before the kernel can hand the number out again. vfork and posix_spawn
 * children share our memory and must leave the table alone. */
static void forget_before_close(int fd)
{
	if (pl_fd_routed(fd) && getpid() == pl_owner_pid)
		pl_fd_forget(fd);
}

PL_EXPORT int close(int fd)
{
	if (pl_fd_routed(fd))
		forget_before_close(fd);
	return PL_REAL(close)(fd);
}

PL_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	if (atomic_load(&pl_fd_count) > 0 && !(flags & CLOSE_RANGE_CLOEXEC)) {
		size_t end = last < pl_fdtab_size ? last : pl_fdtab_size - 1;
		for (size_t fd = first; fd <= end && fd >= first; fd++)
			forget_before_close((int)fd);
	}
	return PL_REAL(close_range)(first, last, flags);
}

/* After a successful duplication onto newfd: newfd shares oldfd's entry, or has none. */
static void track_dup(int oldfd, int newfd)
{
	if (newfd < 0 || newfd == oldfd || pl_bypass())
		return;
	pl_fd *e = getpid() == pl_owner_pid ? pl_fd_get(oldfd) : NULL;
	if (e)
		pl_fd_install(newfd, e); /* takes over the lookup's reference */
	else if (pl_fd_routed(newfd))
		forget_before_close(newfd);
}

PL_EXPORT int dup(int fd)
{
	int nfd = PL_REAL(dup)(fd);
	track_dup(fd, nfd);
	return nfd;
}

PL_EXPORT int dup2(int fd, int fd2)
{
	int r = PL_REAL(dup2)(fd, fd2);
	track_dup(fd, r);
	return r;
}

PL_EXPORT int dup3(int fd, int fd2, int flags)
{
	int r = PL_REAL(dup3)(fd, fd2, flags);
	track_dup(fd, r);
	return r;
}

PL_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	/* Every fcntl argument fits in a pointer-sized register; glibc reads it the same way. */
	void *arg = va_arg(ap, void *);
	va_end(ap);
	int r = PL_REAL(fcntl)(fd, cmd, arg);
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		track_dup(fd, r);
	return r;
}
PL_ALIAS(fcntl, fcntl64);

/* stdio: fopen() opens through libc's internal open, so routed paths are opened here and
 * wrapped with fdopen(). stdio reads bypass the read shims, so a lazily filled object must be
 * complete before the FILE exists. */
static int stdio_flags(const char *mode)
{
	int flags = O_RDONLY;
	if (mode[0] == 'w' || mode[0] == 'a' || strchr(mode, '+'))
		flags = O_RDWR | O_CREAT;
	if (strchr(mode, 'e'))
		flags |= O_CLOEXEC;
	return flags;
}

/* fopen of a write route: libc's own, after the placeholder step ('w' truncates). */
static int prepare_stdio(const pl_target *t, const char *path, const char *mode)
{
	if (pl_in_vfork_child())
		return 0;
	int arc = pl_write_attach(t);
	return arc < 0 ? arc : pl_write_prepare(t, AT_FDCWD, path, mode[0] == 'w');
}

static FILE *fopen_routed(const pl_target *t, const char *mode, int saved)
{
	rd_file *lazy = NULL;
	int fd = pl_open_routed(t, stdio_flags(mode), &lazy);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	if (lazy) {
		pl_enter();
		int rc = rd_wait(lazy, 0, UINT64_MAX);
		pl_leave();
		if (rc < 0) {
			close(fd);
			errno = -rc;
			return NULL;
		}
	}
	FILE *f = PL_REAL(fdopen)(fd, mode);
	if (!f) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	errno = saved;
	return f;
}

PL_EXPORT FILE *fopen(const char *path, const char *mode)
{
	if (pl_bypass() || !mode)
		return PL_REAL(fopen)(path, mode);
	pl_target t;
	int saved = errno;
	int r = pl_route(AT_FDCWD, path, &t);
	if (r == PL_PASS)
		return PL_REAL(fopen)(path, mode);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	if (t.route->mode == CFG_WRITE) {
		if ((r = prepare_stdio(&t, path, mode)) < 0) {
			errno = -r;
			return NULL;
		}
		return PL_REAL(fopen)(path, mode);
	}
	return fopen_routed(&t, mode, saved);
}
PL_ALIAS(fopen, fopen64);

PL_EXPORT FILE *freopen(const char *path, const char *mode, FILE *f)
{
	if (pl_bypass() || !path || !mode || !f)
		return PL_REAL(freopen)(path, mode, f);
	pl_target t;
	int saved = errno;
	int r = pl_route(AT_FDCWD, path, &t);
	if (r == PL_PASS)
		goto real;
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	if (t.route->mode == CFG_WRITE) {
		if ((r = prepare_stdio(&t, path, mode)) < 0) {
			errno = -r;
			return NULL;
		}
		goto real;
	}
	/* libc reopens through its internal open, which we cannot see: open the object here and
	 * let libc reopen our fd through /proc, then give the new fd our entry. */
	rd_file *lazy = NULL;
	int fd = pl_open_routed(&t, stdio_flags(mode), &lazy);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	if (lazy && (r = rd_wait(lazy, 0, UINT64_MAX)) < 0) {
		close(fd);
		errno = -r;
		return NULL;
	}
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	forget_before_close(fileno(f));
	FILE *nf = PL_REAL(freopen)(proc, mode, f);
	if (nf) {
		pl_fd *e = pl_fd_get(fd);
		if (e)
			pl_fd_install(fileno(nf), e); /* takes over the lookup's reference */
	}
	int e = errno;
	close(fd);
	errno = nf ? saved : e;
	return nf;
real:
	forget_before_close(fileno(f));
	return PL_REAL(freopen)(path, mode, f);
}
PL_ALIAS(freopen, freopen64);

PL_EXPORT FILE *fdopen(int fd, const char *mode)
{
	pl_fd *e = pl_bypass() ? NULL : pl_fd_get(fd);
	int rc = 0;
	if (e && e->lazy) {
		pl_enter();
		rc = rd_wait(e->lazy, 0, UINT64_MAX);
		pl_leave();
	}
	pl_fd_unref(e);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	return PL_REAL(fdopen)(fd, mode);
}

/* fclose() and closedir() close their fd inside libc, past the close symbol. */
PL_EXPORT int fclose(FILE *f)
{
	if (f && atomic_load_explicit(&pl_fd_count, memory_order_relaxed) > 0 &&
	    pl_fd_routed(fileno(f)))
		forget_before_close(fileno(f));
	return PL_REAL(fclose)(f);
}

PL_EXPORT int closedir(DIR *d)
{
	if (atomic_load_explicit(&pl_fd_count, memory_order_relaxed) > 0)
		forget_before_close(dirfd(d));
	return PL_REAL(closedir)(d);
}

/* fsync of a file in a write route's tree uploads it now and reports the store's answer
 * (EIO when it refused). */
static int sync_fd(int fd, int (*real)(int))
{
	if (!pl_has_write || pl_bypass() || pl_in_vfork_child())
		return real(fd);
	int saved = errno;
	if (real(fd) < 0)
		return -1;
	char path[PATH_MAX];
	const char *rest;
	pl_enter();
	const cfg_route *r = pl_write_route_of_fd(fd, path, sizeof path, &rest);
	int rc = r && *rest ? up_sync(r, rest) : 0;
	pl_leave();
	return pl_ret(rc, saved);
}

PL_EXPORT int fsync(int fd)
{
	return sync_fd(fd, PL_REAL(fsync));
}

PL_EXPORT int fdatasync(int fd)
{
	return sync_fd(fd, PL_REAL(fdatasync));
}

/* _exit skips exit handlers, and shells (dash) and Python's forked workers leave through it:
 * they too wait for their files to be in the store. */
PL_EXPORT void _exit(int status)
{
	if (pl_active && !pl_busy)
		pl_drain_uploads();
	PL_REAL(_exit)(status);
	__builtin_unreachable();
}

PL_EXPORT void _Exit(int status)
{
	if (pl_active && !pl_busy)
		pl_drain_uploads();
	PL_REAL(_Exit)(status);
	__builtin_unreachable();
}
