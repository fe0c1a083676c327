/* Directories, the working directory, and the calls that change the namespace. Directory
 * reading itself needs no shim: opendir/scandir of a routed path open its shadow directory,
 * and readdir, getdents, fdopendir and fts then work on a real kernel directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <utime.h>

#include "preload/pl_fdtab.h"
#include "preload/pl_open.h"
#include "preload/pl_route.h"
#include "preload/pl_shim.h"
#include "preload/pl_state.h"
#include "preload/pl_symbols.h"

/* opendir and scandir read the shadow directory of a routed path, listed first. */
PL_EXPORT DIR *opendir(const char *path)
{
	int saved = errno;
	pl_path p;
	int rc = pl_resolve_path(AT_FDCWD, path, 1, &p);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	DIR *d = PL_REAL(opendir)(p.path);
	if (d && p.routed)
		errno = saved;
	return d;
}

PL_EXPORT int scandir(const char *path, struct dirent ***list,
		      int (*filter)(const struct dirent *),
		      int (*cmp)(const struct dirent **, const struct dirent **))
{
	pl_path p;
	int rc = pl_resolve_path(AT_FDCWD, path, 1, &p);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return PL_REAL(scandir)(p.path, list, filter, cmp);
}

/* struct dirent64 is struct dirent on x86-64. */
PL_EXPORT int scandir64(const char *path, struct dirent64 ***list,
			int (*filter)(const struct dirent64 *),
			int (*cmp)(const struct dirent64 **, const struct dirent64 **))
{
	return scandir(path, (struct dirent ***)list, (int (*)(const struct dirent *))filter,
		       (int (*)(const struct dirent **, const struct dirent **))cmp);
}

/* subprocess's cwd= runs chdir in a vfork child, in the parent's memory and with the parent's
 * pooled connections unusable: no listing, no allocation, no shared state. The kernel cwd
 * becomes the shadow directory (created with plain mkdir calls if the parent never listed
 * it); the program exec'd there adopts the route path and lists it on first use. */
static int chdir_in_vfork_child(const pl_target *t, char *shadow, size_t cap)
{
	const char *tree = rd_shadow_root(t->route);
	int n = snprintf(shadow, cap, "%s%s%s", tree, *t->rest ? "/" : "", t->rest);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	if (PL_REAL(chdir)(shadow) == 0)
		return 0;
	for (char *p = shadow + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (PL_REAL(mkdir)(shadow, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = c;
		if (!c)
			break;
	}
	return PL_REAL(chdir)(shadow) < 0 ? -errno : 0;
}

/* The working directory may be inside a read route: the kernel's cwd is then the shadow
 * directory (so "." works natively) and the route path is what getcwd() reports and what
 * relative paths are resolved against. */
PL_EXPORT int chdir(const char *path)
{
	char shadow[PATH_MAX];
	int saved = errno;
	pl_target t;
	int r = pl_bypass() ? PL_PASS : pl_route(AT_FDCWD, path, &t);
	if (r == PL_PASS || r == PL_PASS_ABS) {
		int rc = PL_REAL(chdir)(r == PL_PASS_ABS ? t.norm : path);
		if (rc == 0 && !pl_bypass() && !pl_in_vfork_child())
			pl_cwd_changed();
		return rc;
	}
	if (r < 0)
		return pl_ret(r, saved);
	if (pl_in_vfork_child()) {
		if (t.route->mode == CFG_WRITE)
			return pl_ret(-ENOTSUP, saved);
		return pl_ret(chdir_in_vfork_child(&t, shadow, sizeof shadow), saved);
	}
	pl_path p;
	int rc = pl_resolve_path(AT_FDCWD, path, 1, &p);
	if (rc == 0)
		rc = PL_REAL(chdir)(p.path) < 0 ? -errno : 0;
	if (rc == 0)
		pl_cwd_set_virtual(t.norm);
	return pl_ret(rc, saved);
}

PL_EXPORT int fchdir(int fd)
{
	int rc = PL_REAL(fchdir)(fd);
	if (rc < 0 || pl_bypass() || pl_in_vfork_child())
		return rc;
	pl_fd *e = pl_fd_get(fd);
	if (e && e->kind == PL_FD_DIR) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s%s%s", e->route->local, e->rest[0] ? "/" : "",
			 e->rest);
		pl_cwd_set_virtual(path);
	} else {
		pl_cwd_changed();
	}
	return rc;
}

PL_EXPORT char *getcwd(char *buf, size_t size)
{
	if (pl_bypass() || !pl_cwd_is_virtual())
		return PL_REAL(getcwd)(buf, size);
	const char *cwd = pl_cwd();
	size_t need = strlen(cwd) + 1;
	if (!buf) {
		if (size && size < need) {
			errno = ERANGE;
			return NULL;
		}
		return strdup(cwd);
	}
	if (size < need) {
		errno = size ? ERANGE : EINVAL;
		return NULL;
	}
	return memcpy(buf, cwd, need);
}

/* A namespace change on a routed path is refused: read routes are read-only (EROFS), and
 * write routes arrive with the uploader. A path relative to a routed directory fd that ends
 * up outside every route is rewritten to its absolute form for libc. Returns 0 to go on,
 * or -errno. */
static int refusal(int *dirfd, const char **path)
{
	if (pl_bypass())
		return 0;
	pl_target t;
	int r = pl_route(*dirfd, *path, &t);
	if (r == PL_PASS)
		return 0;
	if (r == PL_PASS_ABS) {
		/* t dies with this frame: keep the rewritten path in thread-local storage */
		static __thread char abs_path[2][PATH_MAX];
		static __thread int slot;
		slot ^= 1;
		memcpy(abs_path[slot], t.norm, strlen(t.norm) + 1);
		*dirfd = AT_FDCWD;
		*path = abs_path[slot];
		return 0;
	}
	if (r < 0)
		return r;
	return t.route->mode == CFG_READ ? -EROFS : pl_write_route_unsupported(&t);
}

#define REFUSE_AT(dirfd, path) \
	do { \
		int rc_ = refusal(&(dirfd), &(path)); \
		if (rc_ < 0) { \
			errno = -rc_; \
			return -1; \
		} \
	} while (0)

#define REFUSE(path) \
	do { \
		int cwd_ = AT_FDCWD; \
		REFUSE_AT(cwd_, path); \
	} while (0)

/* The cache behind a routed fd is shared with every process on the node: no changes. */
#define REFUSE_FD(fd) \
	do { \
		if (pl_fd_get(fd) && !pl_bypass()) { \
			errno = EROFS; \
			return -1; \
		} \
	} while (0)

PL_EXPORT int unlink(const char *path)
{
	REFUSE(path);
	return PL_REAL(unlink)(path);
}

PL_EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
	REFUSE_AT(dirfd, path);
	return PL_REAL(unlinkat)(dirfd, path, flags);
}

PL_EXPORT int remove(const char *path)
{
	REFUSE(path);
	return PL_REAL(remove)(path);
}

PL_EXPORT int rmdir(const char *path)
{
	REFUSE(path);
	return PL_REAL(rmdir)(path);
}

PL_EXPORT int mkdir(const char *path, mode_t mode)
{
	REFUSE(path);
	return PL_REAL(mkdir)(path, mode);
}

PL_EXPORT int mkdirat(int dirfd, const char *path, mode_t mode)
{
	REFUSE_AT(dirfd, path);
	return PL_REAL(mkdirat)(dirfd, path, mode);
}

PL_EXPORT int rename(const char *from, const char *to)
{
	REFUSE(from);
	REFUSE(to);
	return PL_REAL(rename)(from, to);
}

PL_EXPORT int renameat(int fromfd, const char *from, int tofd, const char *to)
{
	REFUSE_AT(fromfd, from);
	REFUSE_AT(tofd, to);
	return PL_REAL(renameat)(fromfd, from, tofd, to);
}

PL_EXPORT int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned fl)
{
	REFUSE_AT(fromfd, from);
	REFUSE_AT(tofd, to);
	return PL_REAL(renameat2)(fromfd, from, tofd, to, fl);
}

PL_EXPORT int link(const char *from, const char *to)
{
	REFUSE(from);
	REFUSE(to);
	return PL_REAL(link)(from, to);
}

PL_EXPORT int linkat(int fromfd, const char *from, int tofd, const char *to, int flags)
{
	REFUSE_AT(fromfd, from);
	REFUSE_AT(tofd, to);
	return PL_REAL(linkat)(fromfd, from, tofd, to, flags);
}

PL_EXPORT int symlink(const char *target, const char *path)
{
	REFUSE(path);
	return PL_REAL(symlink)(target, path);
}

PL_EXPORT int symlinkat(const char *target, int dirfd, const char *path)
{
	REFUSE_AT(dirfd, path);
	return PL_REAL(symlinkat)(target, dirfd, path);
}

PL_EXPORT int truncate(const char *path, off_t len)
{
	REFUSE(path);
	return PL_REAL(truncate)(path, len);
}
PL_ALIAS(truncate, truncate64);

PL_EXPORT int chmod(const char *path, mode_t mode)
{
	REFUSE(path);
	return PL_REAL(chmod)(path, mode);
}

PL_EXPORT int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
	REFUSE_AT(dirfd, path);
	return PL_REAL(fchmodat)(dirfd, path, mode, flags);
}

PL_EXPORT int chown(const char *path, uid_t uid, gid_t gid)
{
	REFUSE(path);
	return PL_REAL(chown)(path, uid, gid);
}

PL_EXPORT int lchown(const char *path, uid_t uid, gid_t gid)
{
	REFUSE(path);
	return PL_REAL(lchown)(path, uid, gid);
}

PL_EXPORT int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
	REFUSE_AT(dirfd, path);
	return PL_REAL(fchownat)(dirfd, path, uid, gid, flags);
}

PL_EXPORT int utimensat(int dirfd, const char *path, const struct timespec t[2], int flags)
{
	if (pl_present(path))
		REFUSE_AT(dirfd, path);
	else
		REFUSE_FD(dirfd);
	return PL_REAL(utimensat)(dirfd, path, t, flags);
}

PL_EXPORT int utimes(const char *path, const struct timeval t[2])
{
	REFUSE(path);
	return PL_REAL(utimes)(path, t);
}

PL_EXPORT int utime(const char *path, const struct utimbuf *t)
{
	REFUSE(path);
	return PL_REAL(utime)(path, t);
}

PL_EXPORT int fchmod(int fd, mode_t mode)
{
	REFUSE_FD(fd);
	return PL_REAL(fchmod)(fd, mode);
}

PL_EXPORT int fchown(int fd, uid_t uid, gid_t gid)
{
	REFUSE_FD(fd);
	return PL_REAL(fchown)(fd, uid, gid);
}

PL_EXPORT int futimens(int fd, const struct timespec t[2])
{
	REFUSE_FD(fd);
	return PL_REAL(futimens)(fd, t);
}

PL_EXPORT int futimes(int fd, const struct timeval t[2])
{
	REFUSE_FD(fd);
	return PL_REAL(futimes)(fd, t);
}
