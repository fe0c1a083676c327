/* Read routes: the store's objects under a route's prefix, served as real files.
 *
 * Metadata lives in a *shadow tree* in the cache directory: real directories that mirror the
 * store's prefixes and sparse placeholder files with each object's size and mtime (mode 0444,
 * directories 0555). A directory is listed once (ListObjectsV2, delimiter '/', all pages) and
 * its entries are created in the shadow; after that stat, access, readdir, scandir, fts and
 * getdents work on the shadow natively, for this process and every other process on the node.
 *
 * Data lives in obj/: an object up to the route's whole_object_max is fetched whole before
 * open returns and published atomically (write to tmp/, rename); a larger one is opened at
 * once and filled in the background with parallel ranged GETs, tracked in a chunk map shared
 * by every process. The kernel page cache of these tmpfs files is the cache.
 *
 * Nothing here knows about interposition. Calls are thread-safe. No thread is started and no
 * request is sent until a route is first used. */
#ifndef RWSPLIT_RD_H
#define RWSPLIT_RD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "config/cfg.h"

typedef struct rd_file rd_file;

/* Prepares per-process state for c's read routes (no I/O but a getcwd when c's path is
 * relative) and registers the reader's fork hooks (common/lifecycle.h). c must outlive the
 * reader. Returns 0 or -ENOMEM. */
int rd_init(const cfg *c);

/* Writes the shadow-tree path of route-relative rest into out (cap bytes) after making sure
 * the listing of rest's directory is present and fresh (and of rest itself when list_self is
 * set and rest is a directory). The caller then uses the path with ordinary calls: a missing
 * entry is a missing object or prefix. Returns 0, or -errno: -ENOENT / -ENOTDIR when an
 * ancestor of rest is missing / a file, -EIO, -EACCES, ... when a listing failed,
 * -ENAMETOOLONG. */
int rd_shadow(const cfg_route *r, const char *rest, int list_self, char *out, size_t cap);

/* For a vfork child (subprocess's cwd=), which may change nothing of its parent's memory:
 * 0 if cache_dir/u<uid> is known good, else the walk of rd_user_dir (made or checked, as
 * there) without recording or logging its result. Returns 0 or -errno. */
int rd_user_dir_in_vfork_child(void);

/* What rd_prefill has done so far. */
typedef struct rd_prefill_progress {
	uint64_t files, bytes;       /* listed so far: what the prefill covers */
	uint64_t bytes_cache;        /* what they take in the cache (whole pages) */
	uint64_t budget;             /* the route's cache budget less a tenth, as prefetch = all */
	int listing_done;
	uint64_t left_out, left_out_bytes; /* objects that did not fit the budget */
	uint64_t done_files, done_bytes; /* fetched, found cached or failed */
	uint64_t fetched, cached, failed;
	uint64_t got;                /* bytes from the store */
	int finished;                /* the last report */
} rd_prefill_progress;
typedef void (*rd_prefill_report)(void *arg, const rd_prefill_progress *p);

/* Fills the cache of read route r with its objects below route-relative rest ("" for all of
 * them; a file or a directory), jobs GETs at a time, each in its listed version; objects
 * already cached cost nothing. Objects are taken in listing (key) order while they fit the
 * route's budget (less a tenth); those that do not are left out (p->left_out). report(arg, p)
 * runs on the calling thread once the listing is done, every interval_ms after, and once at
 * the end (p->finished). Returns 0
 * when every listed object is in the cache, else -errno (the listing's, or the first failed
 * object's) with why filled. The store client must be usable (s3_dl). */
int rd_prefill(const cfg_route *r, const char *rest, unsigned jobs, unsigned interval_ms,
	       rd_prefill_report report, void *arg, char *why, size_t whylen);

/* The shadow tree's root directory of read route r (a constant string). */
const char *rd_shadow_root(const cfg_route *r);

/* The inverse of rd_shadow: when path (absolute) lies in a route's shadow tree, returns the
 * route and sets *rest to the route-relative part ("" for the root, pointing into path);
 * otherwise NULL. A program started with its working directory inside a route has the shadow
 * directory as its kernel cwd; this gives the route path back. */
const cfg_route *rd_route_of_shadow(const char *path, const char **rest);

/* Opens the object behind rest, whose shadow entry is st (from rd_shadow + lstat), for
 * reading with the caller's open flags (access mode and creation flags must already be
 * checked). Returns a real fd or -errno. When the object is filled in the background *lazy
 * receives a handle (one reference, released with rd_file_release) that the data calls must
 * consult; otherwise *lazy is NULL and the fd is an ordinary complete file.
 * The fd holds exactly the listed version (GETs carry its ETag). When the object was
 * overwritten since it was listed, its directory is listed again and the new version
 * opened instead; *st is then updated (size, mtime, identity) to the new shadow entry. */
int rd_open(const cfg_route *r, const char *rest, struct stat *st, int flags, rd_file **lazy);

/* Blocks until bytes [off, off+len) of f are present (clipped to the object's size), and
 * keeps them present until rd_done(f, off, len). Returns 0 or -errno: -EIO when the store
 * failed, -ESTALE when the object was overwritten before all of it was read (the bytes
 * already present stay readable; a new open gets the new version). On failure nothing of
 * the range stays pinned. Cheap once the file is complete. */
int rd_wait(rd_file *f, uint64_t off, uint64_t len);

/* Ends a data call that rd_wait() prepared: the bytes may be evicted again (only objects
 * larger than the route's budget are ever evicted while open). Cheap for all others. */
void rd_done(rd_file *f, uint64_t off, uint64_t len);

/* True once every byte of f is present. */
int rd_complete(const rd_file *f);

/* Takes one more reference on f (for a data call that must not lose f to a concurrent
 * close); rd_file_release gives each back. */
rd_file *rd_file_ref(rd_file *f);
void rd_file_release(rd_file *f);

/* Logs the one-line summary at exit (RWSPLIT_LOG=info): files opened, bytes from the store
 * and from the cache, GETs, LISTs, prefetch hits, evictions. */
void rd_exit_summary(void);

/* The reader's counters, one X(name, kind, help) each: kind 0 counts up, 1 is a level (a
 * gauge). Each is counted in this process (the exit summary) and in its route's counters
 * file, CACHE_DIR/u<uid>/<route id>/counters, which every process of the node shares
 * (rwsplit stats, the metrics). The order is the file's layout: append only. */
#define RD_COUNTERS(X) \
	X(opens, 0, "files opened") \
	X(cache_hits, 0, "files opened from the cache, no GET") \
	X(bytes_store, 0, "bytes downloaded from the store") \
	X(bytes_cache, 0, "bytes of the files opened from the cache") \
	X(gets, 0, "GET requests") \
	X(lists, 0, "LIST requests") \
	X(prefetched, 0, "objects fetched ahead of their first open") \
	X(prefetch_hits, 0, "opens of objects fetched ahead") \
	X(evictions, 0, "objects or chunks evicted from the cache") \
	X(get_failures, 0, "GETs that failed") \
	X(gets_in_flight, 1, "GET requests running now") \
	X(bytes_in_flight, 1, "bytes asked by the GETs running now") \
	X(retries, 0, "GET requests sent again after an error")

enum rd_counter {
#define RD_COUNTER_ENUM(name, kind, help) RD_C_##name,
	RD_COUNTERS(RD_COUNTER_ENUM)
#undef RD_COUNTER_ENUM
	RD_NCOUNTERS
};

/* The name, kind (0 counter, 1 gauge) and help text of counter c (static strings). */
const char *rd_counter_name(enum rd_counter c);
int rd_counter_kind(enum rd_counter c);
const char *rd_counter_help(enum rd_counter c);

/* This process's counters. */
void rd_get_stats(uint64_t out[RD_NCOUNTERS]);

/* The node's counters of read route r (from its counters file) and the bytes its cache
 * holds (-1 when no process has measured them yet). Returns 0, or -ENOENT when the route's
 * cache does not exist yet. Reads only; makes nothing. */
int rd_route_counters(const cfg_route *r, uint64_t out[RD_NCOUNTERS], int64_t *cache_bytes);

#endif
