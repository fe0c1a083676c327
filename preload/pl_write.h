/* Write routes in the shims. A write route's tree is a real directory, so its calls go to
 * libc with the caller's own arguments; rwsplit only attaches the process to the tree's
 * agent first and turns placeholders into files (or reports them as the objects they
 * stand for). */
#ifndef RWSPLIT_PL_WRITE_H
#define RWSPLIT_PL_WRITE_H

#include <sys/stat.h>

#include "preload/pl_route.h"

/* Set at start-up when the config has a write route. */
extern int pl_has_write;

/* Attaches to t's agent (not in a vfork child). Call before passing a write-route call on.
 * Returns 0 (also when there is no agent: logged once, the call still goes to libc), or
 * -errno when the route's directory is refused (a link, another user's): the call must
 * fail with it. */
int pl_write_attach(const pl_target *t);

/* Before an open of (dirfd, path) on write route t (t may be NULL: found from dirfd): a
 * placeholder there is downloaded, or, when the open will truncate it, made an empty file.
 * Returns 0 or -errno (the download failed). */
int pl_write_prepare(const pl_target *t, int dirfd, const char *path, int truncating);

/* After a stat of a write-route path: a placeholder is reported as its object. */
void pl_write_present(int dirfd, const char *path, struct stat *st);

/* The write route and route-relative path of the file behind fd (for fsync), into rest.
 * Returns the route or NULL. */
const cfg_route *pl_write_route_of_fd(int fd, char *buf, size_t cap, const char **rest);

#endif
