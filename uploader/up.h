/* Write routes: files written under a route's local prefix are staged in a local spool and
 * uploaded when their last fd is closed, by worker threads, so the writer never waits for
 * the network (except in fsync, which uploads at once).
 *
 * Spool layout: SPOOL/<route id>/p<pid>-<start time>/ holds this process's files, N.data
 * with N.meta beside it (bucket, key, size, state, attempts); the directory's `lock` is held
 * (flock) for the life of the process, so a live process is never taken over. A spool file
 * is deleted only after the store confirmed its upload. A process that finds the lock of
 * another directory free (its owner died) uploads what it left; so does `rwsplit recover`.
 *
 * Nothing here knows about interposition. Calls are thread-safe. */
#ifndef RWSPLIT_UP_H
#define RWSPLIT_UP_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "config/cfg.h"

typedef struct up_file up_file;

typedef struct up_hooks {
	void (*thread_start)(void); /* runs first on every thread the uploader starts */
	void (*first_use)(void);    /* a write route is first used: arrange for up_drain() */
} up_hooks;

/* Prepares per-process state for c's write routes (no I/O). Returns 0 or -ENOMEM. */
int up_init(const cfg *c, const up_hooks *hooks);

/* Opens route-relative rest of write route r with open(2) flags and mode. Writing opens get
 * a real fd on a spool file (an existing object is copied in first unless O_TRUNC) and *out
 * one reference to it; read-only opens get a private copy of the pending file or the object
 * and *out NULL. Returns the fd or -errno (-ENOENT, -EEXIST, -EISDIR, -ENAMETOOLONG, ...). */
int up_open(const cfg_route *r, const char *rest, int flags, mode_t mode, up_file **out);

/* Another fd now refers to f (dup, fork). */
void up_ref(up_file *f);

/* An fd of f was closed; on the last one the file is queued for upload and this returns at
 * once. In a forked child, files the parent created are never uploaded by the child. */
void up_release(up_file *f);

/* fsync/fdatasync: uploads f now and waits. Returns 0, or -EIO when the store refused. */
int up_sync(up_file *f);

/* stat of rest: a pending file by its spool copy, an object by HeadObject, a prefix (or the
 * route root) as a directory. Returns 0 or -errno. */
int up_stat(const cfg_route *r, const char *rest, struct stat *st);

/* Deletes the object and cancels a pending upload of it. */
int up_unlink(const cfg_route *r, const char *rest);

/* Renames within route r (RENAME_NOREPLACE honored): a pending file is retargeted with no
 * data copied, an object is copied and deleted, a directory key by key. */
int up_rename(const cfg_route *r, const char *from, const char *to, unsigned flags);

/* Directories are prefixes: mkdir succeeds (nothing is stored), rmdir fails with ENOTEMPTY
 * while objects or pending files remain below. */
int up_mkdir(const cfg_route *r, const char *rest);
int up_rmdir(const cfg_route *r, const char *rest);

/* A real directory, private to this process, holding one entry per object, prefix and
 * pending file directly below rest, rebuilt on each call; for opendir/scandir. Writes its
 * path into out. Returns 0 or -errno. */
int up_listing_dir(const cfg_route *r, const char *rest, char *out, size_t cap);

/* Normal exit: waits (up to each route's drain_timeout) for queued uploads and logs the
 * summary. Called once, from exit handlers and _exit. */
void up_drain(void);

void up_fork_prepare(void);
void up_fork_parent(void);
void up_fork_child(void);

/* `rwsplit recover`: uploads what dead processes left in the spools of c's write routes (or
 * in spool_override). Returns the number of files still left (0 when all landed), or
 * -errno. */
long up_recover(const cfg *c, const char *spool_override);

#endif
