/* The fd table: which of the process's fds are routed, indexed by fd number. A lookup on the
 * pass-through path is one bounds check and one atomic load; nothing is locked. A lookup of
 * a routed fd takes a reference under a short spin lock (one of 64, by fd number), the only
 * lock here: nothing is called while it is held. */
#ifndef RWSPLIT_PL_FDTAB_H
#define RWSPLIT_PL_FDTAB_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "config/cfg.h"
#include "reader/rd.h"

enum pl_fd_kind { PL_FD_FILE, PL_FD_DIR };

/* One open routed file or directory, shared by every fd that dup() made from it. */
typedef struct pl_fd {
	atomic_int refs;
	enum pl_fd_kind kind;
	const cfg_route *route;
	char *rest;          /* route-relative path ("" for the route root); owned */
	dev_t real_dev;      /* identity of the kernel file behind the fd, to detect fds that */
	ino_t real_ino;      /* were closed behind our back and reused */
	dev_t dev;           /* identity reported by fstat (the shadow entry's) */
	ino_t ino;
	struct timespec mtime; /* the object's, reported as mtime and ctime */
	rd_file *lazy;       /* non-NULL for an object filled in the background; a reference */
} pl_fd;

extern _Atomic(pl_fd *) *pl_fdtab;
extern size_t pl_fdtab_size;

/* Reserves the table (address space only) for the hard RLIMIT_NOFILE. Returns 0 or -1. */
int pl_fdtab_init(void);

/* True when fd has an entry: the fast check of every fd shim (one bounds check and one
 * load), which takes no reference; use pl_fd_get to look at the entry. */
static inline int pl_fd_routed(int fd)
{
	return fd >= 0 && (size_t)fd < pl_fdtab_size &&
	       atomic_load_explicit(&pl_fdtab[fd], memory_order_acquire) != NULL;
}

/* fd's entry with a reference taken (give it back with pl_fd_unref), or NULL. A thread that
 * closes fd meanwhile cannot free the entry under the caller: the load and the reference
 * are made under the same lock stripe as pl_fd_install/pl_fd_forget's exchange. A fd
 * without an entry costs only the check of pl_fd_routed. */
pl_fd *pl_fd_get(int fd);

/* Creates an entry (refs 1) for a newly opened fd; rest is copied. NULL on ENOMEM. */
pl_fd *pl_fd_new(enum pl_fd_kind kind, const cfg_route *route, const char *rest, int fd,
		 const struct stat *shadow, rd_file *lazy);

/* Installs e at fd (taking over the caller's reference), replacing and releasing any stale
 * entry. Returns -1 (and releases e) when fd is beyond the table. */
int pl_fd_install(int fd, pl_fd *e);

/* Removes fd's entry and releases it: call after the fd was closed. */
void pl_fd_forget(int fd);

/* Gives back a reference of pl_fd_get or pl_fd_new (NULL is ignored). */
void pl_fd_unref(pl_fd *e);

/* Number of installed entries, so stream and directory closes can skip the lookup. */
extern atomic_long pl_fd_count;

#endif
