/* Write routes. A write route's local path is a real directory tree, the same for every
 * process on the node: programs create, write, rename and delete in it with native system
 * calls. The route's agent (`rwsplit agent --tree PATH`, one process per tree, started by
 * the first preloaded process that uses the route) keeps the store in sync with it: it
 * watches the tree with inotify and uploads closed files, mirrors renames and unlinks, and
 * shows objects that are only in the store as placeholders (up_place.c) that a preloaded
 * process fetches on first open.
 *
 * Process side (this header, compiled into the preload library): attaching to the agent,
 * placeholder checks and fetches, fsync, and the drain at exit. Agent side: up_engine.h.
 * Nothing here knows about interposition. Calls are thread-safe. */
#ifndef RWSPLIT_UP_H
#define RWSPLIT_UP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "config/cfg.h"

/* Prepares per-process state for c's write routes (no I/O) and registers its fork hooks: a
 * forked child drops its inherited connections to the agents (they are the parent's) and
 * attaches again when it next uses a route. Returns 0 or -ENOMEM. */
int up_init(const cfg *c, void (*first_use)(void));

/* Makes sure write route r's tree exists and its agent runs and has listed the store (once
 * per process; later calls cost one atomic load). first_use (up_init) is called the first
 * time. Returns 0; -EIO when there is no agent (logged once: files stay in the tree); or
 * the -errno of fs_open_dir_safe (-ELOOP, -EPERM, ...) when the tree itself is refused
 * (logged once): then nothing may be written there. */
int up_attach(const cfg_route *r);

/* An object that is only in the store, as its placeholder in the tree describes it. */
typedef struct up_remote {
	uint64_t size;
	struct timespec mtime;
	uint64_t marker_len;     /* the placeholder file's own size */
	char etag[80];
} up_remote;

/* Whether st (of the file fd, or of path relative to dirfd when fd < 0) is a placeholder,
 * filling *r. Cheap for everything else: only a regular file with no permission bits is
 * looked at further. Returns 1 or 0. */
int up_placeholder(int fd, int dirfd, const char *path, const struct stat *st, up_remote *r);

/* What stat reports for a placeholder: the object's size and time, mode 0644. */
void up_place_present(struct stat *st, const up_remote *r);

/* Asks r's agent to download the object behind the placeholder at rest (route-relative)
 * into the tree. Returns 0 (also when it is no placeholder any more) or -errno. */
int up_fetch(const cfg_route *r, const char *rest);

/* fsync: asks the agent to upload rest now and waits. Returns 0, or -EIO when the store
 * refused. */
int up_sync(const cfg_route *r, const char *rest);

/* The write route whose tree holds the absolute path abs, with *rest pointing into abs;
 * NULL when none does. */
const cfg_route *up_route_of_path(const char *abs, const char **rest);

/* One request to r's running agent, never starting one: -ECONNREFUSED or -ENOENT when there
 * is none, -EPERM when its socket is another user's. Returns 0 with rep filled (rep->rc is
 * the agent's answer) or -errno. For the rwsplit command (stats, recover). */
struct up_reply;
int up_query(const cfg_route *r, uint32_t op, uint32_t timeout_ms, struct up_reply *rep);

/* Normal exit: waits (up to each route's drain_timeout) until every file closed in the
 * trees this process used is in the store, and logs the write summary. */
void up_drain(void);


#endif
