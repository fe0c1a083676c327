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

#include "common/fs.h"
#include "preload/pl_fdtab.h"
#include "preload/pl_open.h"
#include "preload/pl_route.h"
#include "preload/pl_shim.h"
#include "preload/pl_state.h"
#include "preload/pl_symbols.h"
#include "preload/pl_write.h"

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
	/* The cache's own directories first, so that mkdir -p below does not make them open
	 * to others. */
	int checked = rd_user_dir_in_vfork_child();
	if (checked < 0)
		return checked;
	/* fs_mkdir_p's mkdir calls reach libc through our shim, which passes a shadow path
	 * (outside every route) straight through. */
	int rc = fs_mkdir_p(shadow, 0755);
	if (rc < 0)
		return rc;
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
	if (t.route->mode == CFG_WRITE) {
		/* A real directory: the kernel's cwd is the route path itself. */
		int arc = pl_write_attach(&t);
		if (arc < 0)
			return pl_ret(arc, saved);
		int rc = PL_REAL(chdir)(path);
		if (rc == 0 && !pl_in_vfork_child())
			pl_cwd_changed();
		return rc;
	}
	if (pl_in_vfork_child())
		return pl_ret(chdir_in_vfork_child(&t, shadow, sizeof shadow), saved);
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
	pl_fd_unref(e);
	return rc;
}

PL_EXPORT char *getcwd(char *buf, size_t size)
{
	if (pl_bypass() || !pl_cwd_is_virtual())
		return PL_REAL(getcwd)(buf, size);
	const char *cwd = pl_cwd();
	/* A concurrent chdir out of the route may have dropped the virtual cwd meanwhile, and
	 * pl_cwd() then asks the kernel, which can fail: the kernel's answer is the right one. */
	if (!cwd || !pl_cwd_is_virtual())
		return PL_REAL(getcwd)(buf, size);
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

/* Resolves a namespace-changing call's path. A path relative to a routed directory fd that
 * ends up outside every route is rewritten to its absolute form for libc. Returns 0 to go to
 * libc, 1 when routed (t filled), or -errno. */
static int routed_target(int *dirfd, const char **path, pl_target *t)
{
	if (pl_bypass())
		return 0;
	int r = pl_route(*dirfd, *path, t);
	if (r == PL_PASS)
		return 0;
	if (r == PL_PASS_ABS) {
		/* t dies with the caller's frame: keep the rewritten path in thread storage */
		static __thread char abs_path[2][PATH_MAX];
		static __thread int slot;
		slot ^= 1;
		memcpy(abs_path[slot], t->norm, strlen(t->norm) + 1);
		*dirfd = AT_FDCWD;
		*path = abs_path[slot];
		return 0;
	}
	return r < 0 ? r : 1;
}

/* mkdir on a read route, as on a read-only mount: the kernel looks the name up first, so
 * an existing name is EEXIST (fio and `mkdir -p` accept only that) and a missing parent
 * ENOENT; only a new name gets EROFS. */
static int read_only_mkdir(const pl_target *t)
{
	char shadow[PATH_MAX];
	struct stat st;
	pl_enter();
	int rc = rd_shadow(t->route, t->rest, 0, shadow, sizeof shadow);
	if (rc == 0)
		rc = lstat(shadow, &st) == 0 ? -EEXIST : -EROFS;
	pl_leave();
	return rc == -ENOENT || rc == -ENOTDIR || rc == -EEXIST ? rc : -EROFS;
}

/* The common shape: route the path; a write route's tree is real, so libc gets the call
 * (prepare, when set, runs first: a placeholder about to be changed is downloaded); on a
 * read route the call fails with read_rc. */
#define ROUTED_PREP(dirfd, path, read_rc, prepare, libc_call) \
	do { \
		pl_target t_; \
		int saved_ = errno; \
		int dfd_ = (dirfd); \
		const char *p_ = (path); \
		int r_ = routed_target(&dfd_, &p_, &t_); \
		if (r_ < 0) \
			return pl_ret(r_, saved_); \
		if (r_ && t_.route->mode == CFG_READ) \
			return pl_ret((read_rc), saved_); \
		if (r_) { \
			int prc_ = pl_write_attach(&t_); \
			if (prc_ < 0) \
				return pl_ret(prc_, saved_); \
			prc_ = (prepare); \
			if (prc_ < 0) \
				return pl_ret(prc_, saved_); \
		} \
		return libc_call; \
	} while (0)
#define ROUTED_OR(dirfd, path, read_rc, libc_call) \
	ROUTED_PREP(dirfd, path, read_rc, 0, libc_call)
#define ROUTED(dirfd, path, libc_call) ROUTED_OR(dirfd, path, -EROFS, libc_call)
/* chmod and utimes of a placeholder would make its note look like data: download it. */
#define FETCHED(dirfd, path, libc_call) \
	ROUTED_PREP(dirfd, path, -EROFS, pl_in_vfork_child() ? 0 \
		    : pl_write_prepare(&t_, dfd_, p_, 0), libc_call)

/* rename across the route boundary is the kernel's business (EXDEV across filesystems);
 * a read route takes no part. */
static int rename_routed(int fromfd, const char *from, int tofd, const char *to, unsigned fl,
			 int (*real)(int, const char *, int, const char *, unsigned))
{
	pl_target a, b;
	int saved = errno;
	int ra = routed_target(&fromfd, &from, &a);
	int rb = ra < 0 ? ra : routed_target(&tofd, &to, &b);
	if (ra < 0 || rb < 0)
		return pl_ret(ra < 0 ? ra : rb, saved);
	if ((ra && a.route->mode == CFG_READ) || (rb && b.route->mode == CFG_READ))
		return pl_ret(-EROFS, saved);
	int arc = ra ? pl_write_attach(&a) : 0;
	if (arc == 0 && rb)
		arc = pl_write_attach(&b);
	if (arc < 0)
		return pl_ret(arc, saved);
	return real(fromfd, from, tofd, to, fl);
}

static int real_renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned fl)
{
	return PL_REAL(renameat2)(fromfd, from, tofd, to, fl);
}

static int real_renameat(int fromfd, const char *from, int tofd, const char *to, unsigned fl)
{
	(void)fl;
	return PL_REAL(renameat)(fromfd, from, tofd, to);
}

/* The cache behind a read route's fd is shared with every process on the node: no changes
 * through it. */
#define REFUSE_FD(fd) \
	do { \
		pl_fd *e_ = pl_fd_routed(fd) && !pl_bypass() ? pl_fd_get(fd) : NULL; \
		int ro_ = e_ && e_->route->mode == CFG_READ; \
		pl_fd_unref(e_); \
		if (ro_) { \
			errno = EROFS; \
			return -1; \
		} \
	} while (0)

PL_EXPORT int unlink(const char *path)
{
	ROUTED(AT_FDCWD, path, PL_REAL(unlink)(p_));
}

PL_EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
	ROUTED(dirfd, path, PL_REAL(unlinkat)(dfd_, p_, flags));
}

PL_EXPORT int remove(const char *path)
{
	ROUTED(AT_FDCWD, path, PL_REAL(remove)(p_));
}

PL_EXPORT int rmdir(const char *path)
{
	ROUTED(AT_FDCWD, path, PL_REAL(rmdir)(p_));
}

PL_EXPORT int mkdir(const char *path, mode_t mode)
{
	ROUTED_OR(AT_FDCWD, path, read_only_mkdir(&t_), PL_REAL(mkdir)(p_, mode));
}

PL_EXPORT int mkdirat(int dirfd, const char *path, mode_t mode)
{
	ROUTED_OR(dirfd, path, read_only_mkdir(&t_), PL_REAL(mkdirat)(dfd_, p_, mode));
}

PL_EXPORT int rename(const char *from, const char *to)
{
	return rename_routed(AT_FDCWD, from, AT_FDCWD, to, 0, real_renameat);
}

PL_EXPORT int renameat(int fromfd, const char *from, int tofd, const char *to)
{
	return rename_routed(fromfd, from, tofd, to, 0, real_renameat);
}

PL_EXPORT int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned fl)
{
	return rename_routed(fromfd, from, tofd, to, fl, real_renameat2);
}

/* Objects cannot be linked. */
PL_EXPORT int link(const char *from, const char *to)
{
	ROUTED(AT_FDCWD, to, PL_REAL(link)(from, p_));
}

PL_EXPORT int linkat(int fromfd, const char *from, int tofd, const char *to, int flags)
{
	ROUTED(tofd, to, PL_REAL(linkat)(fromfd, from, dfd_, p_, flags));
}

PL_EXPORT int symlink(const char *target, const char *path)
{
	ROUTED(AT_FDCWD, path, PL_REAL(symlink)(target, p_));
}

PL_EXPORT int symlinkat(const char *target, int dirfd, const char *path)
{
	ROUTED(dirfd, path, PL_REAL(symlinkat)(target, dfd_, p_));
}

PL_EXPORT int truncate(const char *path, off_t len)
{
	ROUTED_PREP(AT_FDCWD, path, -EROFS, pl_in_vfork_child() ? 0
		    : pl_write_prepare(&t_, dfd_, p_, len == 0), PL_REAL(truncate)(p_, len));
}
PL_ALIAS(truncate, truncate64);

PL_EXPORT int chmod(const char *path, mode_t mode)
{
	FETCHED(AT_FDCWD, path, PL_REAL(chmod)(p_, mode));
}

PL_EXPORT int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
	FETCHED(dirfd, path, PL_REAL(fchmodat)(dfd_, p_, mode, flags));
}

PL_EXPORT int chown(const char *path, uid_t uid, gid_t gid)
{
	ROUTED(AT_FDCWD, path, PL_REAL(chown)(p_, uid, gid));
}

PL_EXPORT int lchown(const char *path, uid_t uid, gid_t gid)
{
	ROUTED(AT_FDCWD, path, PL_REAL(lchown)(p_, uid, gid));
}

PL_EXPORT int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
	ROUTED(dirfd, path, PL_REAL(fchownat)(dfd_, p_, uid, gid, flags));
}

PL_EXPORT int utimensat(int dirfd, const char *path, const struct timespec t[2], int flags)
{
	if (!pl_present(path)) { /* futimens */
		REFUSE_FD(dirfd);
		return PL_REAL(utimensat)(dirfd, path, t, flags);
	}
	FETCHED(dirfd, path, PL_REAL(utimensat)(dfd_, p_, t, flags));
}

PL_EXPORT int utimes(const char *path, const struct timeval t[2])
{
	FETCHED(AT_FDCWD, path, PL_REAL(utimes)(p_, t));
}

PL_EXPORT int utime(const char *path, const struct utimbuf *t)
{
	FETCHED(AT_FDCWD, path, PL_REAL(utime)(p_, t));
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
