/* Helpers shared by the shim files. */
#ifndef RWSPLIT_PL_SHIM_H
#define RWSPLIT_PL_SHIM_H

#include <errno.h>

#include "preload/pl_state.h"

/* The library is built with hidden visibility; only the shims are exported. */
#define PL_EXPORT __attribute__((visibility("default")))

/* Exports other as a second name of the shim name (the *64 variants on x86-64). */
#define PL_ALIAS(name, other) \
	extern __typeof(name) other __attribute__((alias(#name), visibility("default")))

/* Ends a routed call: rc < 0 is -errno; otherwise the caller's errno is restored, because
 * rwsplit's own work on the way may have changed it. */
static inline int pl_ret(int rc, int saved_errno)
{
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	errno = saved_errno;
	return rc;
}

/* The fast path of the path-taking shims: an absolute path that no route can match goes
 * straight to libc. (A separate function, so glibc's nonnull declarations of the callers'
 * parameters do not forbid the NULL check.) */
static inline int pl_unrouted_abs(const char *path)
{
	return pl_bypass() || (path && path[0] == '/' && !rt_maybe_routed(pl_routes, path));
}

/* For parameters glibc declares nonnull but callers may still pass NULL (utimensat). */
static inline int pl_present(const void *p)
{
	return p != NULL;
}

/* True for "" (the AT_EMPTY_PATH form), false for NULL. */
static inline int pl_empty_path(const char *path)
{
	return path && !*path;
}

#endif
