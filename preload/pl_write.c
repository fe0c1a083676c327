#include "preload/pl_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "preload/pl_state.h"
#include "preload/pl_symbols.h"
#include "uploader/up.h"
#include "uploader/up_place.h"

int pl_has_write;

int pl_write_attach(const pl_target *t)
{
	if (pl_in_vfork_child())
		return 0;
	pl_enter();
	int rc = up_attach(t->route);
	pl_leave();
	return rc == -EIO ? 0 : rc;
}

/* The absolute path of (dirfd, path) when dirfd is a directory fd, into buf. */
static const char *absolute(int dirfd, const char *path, char *buf, size_t cap)
{
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", dirfd);
	ssize_t n = PL_REAL(readlink)(proc, buf, cap - 1);
	if (n <= 0 || (size_t)n + strlen(path) + 2 > cap)
		return NULL;
	buf[n] = '\0';
	snprintf(buf + n, cap - (size_t)n, "/%s", path);
	return buf;
}

int pl_write_prepare(const pl_target *t, int dirfd, const char *path, int truncating)
{
	struct stat st = { 0 };
	up_remote r;
	if (PL_REAL(fstatat)(dirfd, path, &st, 0) < 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 07777) != 0)
		return 0; /* the common case: one stat */
	pl_enter();
	int rc = 0;
	if (up_placeholder(-1, dirfd, path, &st, &r)) {
		const cfg_route *route = t ? t->route : NULL;
		const char *rest = t ? t->rest : NULL;
		char abs[PATH_MAX];
		if (!route && absolute(dirfd, path, abs, sizeof abs))
			route = up_route_of_path(abs, &rest);
		if (truncating) {
			/* Its content is about to go: it becomes a file of the program's. */
			PL_REAL(fchmodat)(dirfd, path, 0644, 0);
			char p[PATH_MAX];
			const char *xp = dirfd == AT_FDCWD || path[0] == '/' ? path
					 : absolute(dirfd, path, p, sizeof p);
			if (xp)
				lremovexattr(xp, UP_PLACE_XATTR);
		} else if (route) {
			rc = up_fetch(route, rest);
		}
	}
	pl_leave();
	return rc;
}

void pl_write_present(int dirfd, const char *path, struct stat *st)
{
	up_remote r;
	if (!S_ISREG(st->st_mode) || (st->st_mode & 07777) != 0)
		return;
	pl_enter();
	if (up_placeholder(-1, dirfd, path, st, &r))
		up_place_present(st, &r);
	pl_leave();
}

const cfg_route *pl_write_route_of_fd(int fd, char *buf, size_t cap, const char **rest)
{
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	ssize_t n = PL_REAL(readlink)(proc, buf, cap - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return up_route_of_path(buf, rest);
}
