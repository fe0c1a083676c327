/* Process-wide state of the interposer: whether it is active, the loaded config and route
 * table, the per-thread re-entry guard, and the cached working directory. */
#ifndef RWSPLIT_PL_STATE_H
#define RWSPLIT_PL_STATE_H

#include <errno.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/cfg.h"
#include "router/rt.h"

/* Set once by the constructor when a config was loaded; never cleared. */
extern int pl_active;
extern const cfg *pl_cfg;
extern const rt_table *pl_routes;
extern uid_t pl_uid;
extern gid_t pl_gid;

/* Depth of rwsplit's own code on this thread: while non-zero every shim goes straight to
 * libc, so our use of libcurl, OpenSSL, libxml2 and stdio never re-enters routing. */
extern __thread int pl_busy __attribute__((tls_model("initial-exec")));

/* True when a shim must not route: inactive, or called from inside rwsplit. */
static inline int pl_bypass(void)
{
	return !pl_active || pl_busy;
}

static inline void pl_enter(void)
{
	pl_busy++;
}

static inline void pl_leave(void)
{
	pl_busy--;
}

/* The process's working directory as an absolute path, cached until the next chdir/fchdir
 * through the shims. Returns NULL (errno set) when it cannot be read. The string stays valid
 * for the life of the process. */
const char *pl_cwd(void);

/* Forgets the cached working directory (after chdir/fchdir outside the routes). */
void pl_cwd_changed(void);

/* Records a working directory inside a read route (the kernel's cwd is its shadow). */
void pl_cwd_set_virtual(const char *path);

/* True while the working directory is inside a route. */
int pl_cwd_is_virtual(void);

/* Exit, and _exit (shells such as dash, Python's forked workers): waits until the files
 * closed in the trees this process used are in the store. Nothing in it takes a lock, so a
 * signal handler may _exit; a vfork child (whose _exit must not touch our state) returns at
 * once. */
void pl_drain_uploads(void);

/* The pid that owns the tables. vfork and posix_spawn children share our memory until they
 * exec and must not change it: shims compare getpid() with this before mutating. */
extern pid_t pl_owner_pid;

/* True in a vfork()/posix_spawn() child that still shares the parent's memory. A syscall:
 * call it only on routed paths. */
int pl_in_vfork_child(void);

#endif
