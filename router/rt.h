/* Path routing: which configured route (if any) a path belongs to, and its object key.
 *
 * Paths are normalized lexically (no symlink resolution, no syscalls): relative paths are
 * joined to the caller's cwd, "//" and "." collapse, ".." removes one component (never above
 * "/"). Normalization happens before matching, so "/mnt/data/../etc" is "/mnt/etc" and a key
 * can never escape its route's prefix. Nothing here allocates after rt_table_new. */
#ifndef RWSPLIT_RT_H
#define RWSPLIT_RT_H

#include <stddef.h>

#include "config/cfg.h"

#define RT_KEY_MAX 1024 /* S3's limit on an object key, in bytes */

typedef struct rt_table rt_table;

/* Builds the immutable match table for c's routes. c must outlive the table. Returns NULL
 * (errno ENOMEM) on allocation failure. */
rt_table *rt_table_new(const cfg *c);
void rt_table_free(rt_table *t);

/* Normalizes path into out (cap bytes). cwd is used only when path is relative and must be
 * absolute. Returns the length written, -ENOENT for an empty path, -EINVAL for a relative
 * path without an absolute cwd, -ENAMETOOLONG when the result does not fit. out is always "/..." without a trailing '/' (except "/" itself). */
long rt_normalize(const char *cwd, const char *path, char *out, size_t cap);

/* Longest-prefix match of a normalized absolute path. Returns the route or NULL. When a route
 * matches and rest is not NULL, *rest points into path at the part below the route root:
 * "" for the root itself, else "a/b" (no leading '/'). */
const cfg_route *rt_match(const rt_table *t, const char *path, const char **rest);

/* Cheap test used on the pass-through path: false means no route can match path (for any
 * normalized form of an absolute path). May return true for paths that do not match, and
 * always does for relative paths (their meaning depends on the cwd). */
int rt_maybe_routed(const rt_table *t, const char *path);

/* The same test for a relative path resolved against cwd (absolute): false means rel cannot
 * name anything under a route. Without ".." in rel the result stays below cwd, so a route is
 * reachable only when cwd lies in one or a route lies below cwd; rel is not normalized, which
 * keeps the common relative open as cheap as an absolute one. */
int rt_maybe_routed_from(const rt_table *t, const char *cwd, const char *rel);

/* Writes route->prefix + rest into key (cap bytes); with dir set, appends '/' unless rest is
 * "" (the route root's key is the prefix itself). Returns the key length, or -ENAMETOOLONG
 * when it exceeds RT_KEY_MAX or cap. */
long rt_object_key(const cfg_route *route, const char *rest, int dir, char *key, size_t cap);

#endif
