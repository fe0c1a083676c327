/* Deciding whether a path-taking call is routed. */
#ifndef RWSPLIT_PL_ROUTE_H
#define RWSPLIT_PL_ROUTE_H

#include <limits.h>

#include "config/cfg.h"

typedef struct pl_target {
	const cfg_route *route;
	const char *rest;        /* points into norm */
	char norm[PATH_MAX];     /* the normalized absolute path */
} pl_target;

enum {
	PL_PASS = 0,     /* not routed: call libc with the caller's arguments */
	PL_ROUTED = 1,   /* routed: t->route and t->rest name the object */
	PL_PASS_ABS = 2, /* not routed, but relative to a routed directory fd (whose kernel fd is
	                  * the shadow directory): call libc with t->norm and AT_FDCWD */
};

/* Resolves (dirfd, path) as the kernel would name it and matches it against the routes.
 * Returns PL_PASS, PL_ROUTED or PL_PASS_ABS, or -errno (e.g. -ENAMETOOLONG) when the path
 * cannot be resolved. Relative paths are resolved against the cached cwd, or against a
 * routed directory fd. Call only when !pl_bypass(). */
int pl_route(int dirfd, const char *path, pl_target *t);

/* What a path-taking shim hands to libc. */
typedef struct pl_path {
	int dirfd;
	const char *path;        /* the caller's, t.norm, or shadow */
	int routed;              /* path is the shadow entry of a read route */
	int write;               /* path is in a write route's tree (t) */
	pl_target t;
	char shadow[PATH_MAX];
} pl_path;

/* For the shims answered by the shadow tree (stat, statx, access, readlink, xattrs,
 * opendir, scandir): resolves (dirfd, path) into p. Not routed: the caller's arguments (or
 * the absolute form, relative to a routed directory). Routed to a read route: the shadow
 * entry, its directory listed first (and itself, with list_self). Routed to a write route:
 * the caller's arguments, with p->write set (the process is attached to the tree's agent
 * first). Returns 0, or -errno (a listing failed, an ancestor is missing or a file).
 * Safe when pl_bypass(). */
int pl_resolve_path(int dirfd, const char *path, int list_self, pl_path *p);

#endif
