#include "preload/pl_route.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "preload/pl_fdtab.h"
#include "preload/pl_state.h"
#include "reader/rd.h"
#include "preload/pl_write.h"

int pl_route(int dirfd, const char *path, pl_target *t)
{
	if (!path || !*path)
		return PL_PASS;
	char base[PATH_MAX];
	const char *cwd = NULL;
	if (path[0] == '/') {
		if (!rt_maybe_routed(pl_routes, path))
			return PL_PASS;
	} else if (dirfd == AT_FDCWD) {
		cwd = pl_cwd();
		if (!cwd || !rt_maybe_routed_from(pl_routes, cwd, path))
			return PL_PASS;
	} else {
		/* Relative to a directory fd: only a routed directory changes the meaning. */
		pl_fd *e = pl_fd_get(dirfd);
		if (!e || e->kind != PL_FD_DIR) {
			pl_fd_unref(e);
			return PL_PASS;
		}
		int n = snprintf(base, sizeof base, "%s%s%s", e->route->local, e->rest[0] ? "/" : "",
				 e->rest);
		pl_fd_unref(e);
		if (n < 0 || (size_t)n >= sizeof base)
			return -ENAMETOOLONG;
		cwd = base;
	}
	long n = rt_normalize(cwd, path, t->norm, sizeof t->norm);
	if (n < 0)
		return n == -ENAMETOOLONG ? -ENAMETOOLONG : PL_PASS;
	t->route = rt_match(pl_routes, t->norm, &t->rest);
	if (t->route)
		return PL_ROUTED;
	/* "/mnt/data/.." must name /mnt: the kernel cannot walk through a route root that does
	 * not exist locally, so a path that goes through one is resolved lexically. */
	if (cwd == base || (path[0] == '/' && rt_match(pl_routes, path, NULL)))
		return PL_PASS_ABS;
	return PL_PASS;
}

int pl_resolve_path(int dirfd, const char *path, int list_self, pl_path *p)
{
	p->dirfd = dirfd;
	p->path = path;
	p->routed = 0;
	p->write = 0;
	if (pl_bypass())
		return 0;
	int r = pl_route(dirfd, path, &p->t);
	if (r == PL_PASS)
		return 0;
	if (r == PL_PASS_ABS) {
		p->dirfd = AT_FDCWD;
		p->path = p->t.norm;
		return 0;
	}
	if (r < 0)
		return r;
	if (p->t.route->mode == CFG_WRITE) {
		/* A real tree: the caller's own arguments. */
		p->write = 1;
		return pl_write_attach(&p->t);
	}
	pl_enter();
	int rc = rd_shadow(p->t.route, p->t.rest, list_self, p->shadow, sizeof p->shadow);
	pl_leave();
	if (rc < 0)
		return rc;
	p->dirfd = AT_FDCWD;
	p->path = p->shadow;
	p->routed = 1;
	return 0;
}
