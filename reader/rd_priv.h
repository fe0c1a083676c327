/* Reader internals shared by the files of reader/. */
#ifndef RWSPLIT_RD_PRIV_H
#define RWSPLIT_RD_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <uthash.h>

#include "common/lifecycle.h"
#include "reader/rd.h"
#include "s3/s3_dl.h"
#include "s3/s3.h"

/* One file of a listed directory, in listing (key) order, for prefetch. */
typedef struct rd_entry {
	char *name;
	uint64_t size;
	char etag[80];           /* "" when the store sent none */
} rd_entry;

/* A directory whose listing this process has validated. */
typedef struct rd_listed {
	char *dir;               /* route-relative, "" for the root; the hash key */
	uint64_t at_ms;          /* when it was validated (monotonic ms) */
	struct timespec stamp;   /* the listing stamp's mtime then: which listing files is of */
	rd_entry *files;         /* loaded on demand from the listing's order file */
	size_t nfiles;
	int order_loaded;
	long last_open;          /* index of the file last opened, to see a sequential reader */
	int near_opens;          /* opens in a row each near the one before (rd_prefetch.c) */
	unsigned char *queued;   /* per file: prefetch already queued */
	UT_hash_handle hh;
} rd_listed;

/* Per read route: where its cache lives and what this process knows of it. */
typedef struct rd_route {
	const cfg_route *cfg;
	char root[PATH_MAX - 16]; /* CACHE_DIR/u<uid>/<id of endpoint, bucket, prefix> */
	char tree[PATH_MAX];     /* root/tree: the shadow tree */
	char obj[PATH_MAX];      /* root/obj: object data */
	char lists[PATH_MAX];    /* root/lists: listing stamps and order files */
	char tmp[PATH_MAX];      /* root/tmp: downloads in progress */
	size_t tree_len;
	pthread_mutex_t lock;    /* listed, used, prepared, all_started, usage */
	rd_listed *listed;
	uint64_t used;           /* bytes in obj/, estimated between scans */
	uint64_t since_scan;     /* bytes this process added since its last scan began */
	int used_known;
	int evicting;            /* one scan-and-evict at a time per process */
	int prepared;
	int all_started;
	struct rd_usage *usage;  /* root/usage mapped: the cache's size, shared (rd_cache.c) */
	_Atomic(struct rd_counter_file *) counters; /* root/counters mapped (rd_counters.c) */
	atomic_int counters_tried;
	int usage_tried;
} rd_route;

typedef struct rd_state {
	const cfg *cfg;
	rd_route *routes;        /* parallel to cfg->routes; only read routes are used */
	atomic_int user_dir;     /* RD_UNCHECKED, 0 or -errno: see rd_user_dir */
	char user_path[PATH_MAX - 64]; /* CACHE_DIR/u<euid>: this user's part of the cache */
	atomic_uint_fast64_t stats[RD_NCOUNTERS]; /* this process's; see rd_count */
	int agent_side;          /* the fetch agent: its work is counted by the asking process */
} rd_state;

extern rd_state rd;

rd_route *rd_route_of(const cfg_route *r);

#define RD_UNCHECKED 1

/* cache_dir and cache_dir/u<uid>, made or checked once per process with fs_open_dir_safe:
 * cache_dir shared (root's or ours, sticky if anyone may write it, no symbolic link on the
 * way), u<uid> ours and closed to others (0700). Everything of this user's cache, its
 * agent's socket and key included, lives below u<uid>, so no other user can plant, read or
 * replace any of it. Returns 0, or -errno (logged once, naming the path at fault). */
int rd_user_dir(void);

/* Creates the route's cache directories once (after rd_user_dir). Returns 0 or -errno. */
int rd_route_prepare(rd_route *rr);

/* The store client of st, created on first use. Returns NULL with *err set (-errno) and why
 * (whylen bytes) saying why. */
s3_client *rd_client(const cfg_store *st, int *err, char *why, size_t whylen);

/* The store's answers for route rr (rd_store.c): through the fetch agent when there is one,
 * else this process's client. Both count the request in rd.stats and fill why (whylen
 * bytes) on failure. rd_store_get: bytes [off, off+len) of key (len S3_TO_END for the rest)
 * into fd at fd_off, as s3_get_fd (etag: the listed version, "" for any; -ESTALE when the
 * key holds another now); info may be NULL. rd_store_list: ListObjectsV2 of
 * prefix, as s3_list with max_keys 0; when the agent dies part way, restart(arg) (if not
 * NULL) forgets what cb was given and the listing is made again here, else it fails with
 * -EIO. */
int rd_store_get(rd_route *rr, const char *key, const char *etag, uint64_t off, uint64_t len,
		 int fd, off_t fd_off, uint64_t *got, s3_object_info *info, char *why, size_t whylen);
int rd_store_list(rd_route *rr, const char *prefix, const char *delimiter, s3_list_cb cb,
		  void (*restart)(void *arg), void *arg, char *why, size_t whylen);

/* The object key of route-relative rest (a file) into key. Returns 0 or -ENAMETOOLONG. */
int rd_key(const rd_route *rr, const char *rest, char *key, size_t cap);

/* Stamps: files whose modification time says when something was last done. Whether stamp
 * exists and was touched less than ttl_ms ago (wall clock, as the kernel stamps files). */
int rd_stamp_fresh(const char *stamp, uint32_t ttl_ms);
/* Creates stamp or sets its modification time to now; best effort. */
void rd_stamp_touch(const char *stamp);

/* Filesystem helpers (rd_fs.c). */
/* Opens (creating) the lock file at path and takes an exclusive flock on it, waiting for any
 * other process or thread. Returns the fd (give it to rd_unlock) or -errno. */
int rd_lock(const char *path);

/* Releases and closes a lock of rd_lock. The explicit LOCK_UN matters: a child forked while
 * the lock was held has a copy of the fd, and close() alone would leave the lock held for
 * as long as that child lives (a DataLoader worker: the whole job). */
void rd_unlock(int fd);

/* A new read-only open file description (with oflags added: O_CLOEXEC, ...) of the file
 * behind fd, through /proc/self/fd: it stays usable when the file is renamed or unlinked
 * meanwhile. Returns the fd or -errno. */
int rd_reopen(int fd, int oflags);

/* lstat of route-relative rest's shadow entry into *st. Returns 0 or -errno
 * (-ENAMETOOLONG when the path does not fit). */
int rd_shadow_lstat(const rd_route *rr, const char *rest, struct stat *st);
/* Lowercase hex SHA-256 prefix (nhex digits) of the given NUL-separated parts. */
void rd_hash(char *out, size_t nhex, const char *a, const char *b, const char *c);

/* Data cache (rd_cache.c). */
/* Path of the complete cached copy of one version of an object: named by its key and ETag
 * (and size; by size and mtime when the store sent no ETag). */
int rd_obj_path(const rd_route *rr, const char *key, const char *etag, const struct stat *st,
		char *out, size_t cap);
/* The ETag the listing gave for route-relative rest (a file) into etag (80 bytes); "" when
 * unknown. */
void rd_etag_of(rd_route *rr, const char *rest, char *etag);
/* The object at rest was found to have changed since it was listed (a GET with the listed
 * ETag got 412) by a request that began at since (CLOCK_REALTIME): lists its directory
 * again, unless a process did so after since, and updates the size, mtime and identity in
 * *st from the new placeholder. Returns 0, -ENOENT when the object is gone, -EISDIR when
 * its name is now a directory, or the listing's error. */
int rd_shadow_relist(rd_route *rr, const char *rest, const struct timespec *since,
		     struct stat *st);
/* Makes sure the object is in the cache (fetching it whole under a cross-process lock) and,
 * unless oflags is -1, opens it read-only with oflags added (O_CLOEXEC, ...). The fd is
 * opened before the lock is released, so eviction by another process cannot come between.
 * Sets *fetched when this call downloaded it. Returns the fd (0 when oflags is -1) or
 * -errno: -ESTALE when the key now holds another version than the listed one (by ETag or
 * size; nothing is published then), as for rd_fetch_for_agent. */
int rd_fetch_whole(rd_route *rr, const char *key, const char *etag, const struct stat *st,
		   int oflags, int *fetched);
/* For the fetch agent: makes sure the object is in the cache, downloading it here (never
 * through an agent) and logging nothing. Returns 0 or -errno with why filled; *got: bytes
 * from the store, *fetched: this call downloaded it. */
int rd_fetch_for_agent(rd_route *rr, const char *key, const char *etag, const struct stat *st,
		       uint64_t *got, int *fetched, char *why, size_t whylen);
/* Objects the calling thread has evicted so far (for the agent's replies). */
extern _Thread_local uint64_t rd_evicted_by_thread;
/* Accounts an object of size bytes added to obj/ and evicts least recently used files
 * beyond the budget. */
void rd_cache_added(rd_route *rr, uint64_t size);
/* Records a read of the cached object open on fd for eviction and admission: the access
 * time of a resident object; the probation state of one admitted while the cache was
 * full (see "Admission" in rd_cache.c). */
void rd_cache_touch(int fd);
/* The memory an object of size bytes holds in the cache, as the budget counts it: tmpfs
 * allocates whole pages, and scans count st_blocks. Counted by size, a million 100-byte
 * objects would have held 4 GiB against a 100 MiB budget. */
static inline uint64_t rd_cache_bytes(uint64_t size)
{
	return (size + 4095) & ~(uint64_t)4095;
}

/* Large objects (rd_lazy.c): opens the background-filled copy of version etag of key (the
 * object at route-relative rest). Returns a read-only fd and a handle, or -errno. */
int rd_lazy_open(rd_route *rr, const char *key, const char *rest, const char *etag,
		 const struct stat *st, int flags, rd_file **out);

/* Listing order of a directory, for prefetch (rd_shadow.c). Returns the entry (locked by the
 * caller through rr->lock) or NULL. */
rd_listed *rd_listed_find(rd_route *rr, const char *dir);
int rd_listed_load_order(rd_route *rr, rd_listed *l);
/* Maps path (made 0600 and zero-filled to size when missing or shorter; never a symlink or
 * other than a regular file) shared and writable. Returns the mapping (size bytes, never
 * unmapped) or NULL. */
void *rd_map_shared(const char *path, size_t size);

/* The bytes rr's cache holds as the last process to measure it left them, or -1 (no file,
 * or never measured). Reads only. */
int64_t rd_cache_usage(const rd_route *rr);

/* Adds n (negative for a gauge going down) to counter c, in this process and in rr's shared
 * counters file (mapped on first use; counting goes on in the process when it cannot be). */
void rd_count(rd_route *rr, enum rd_counter c, int64_t n);
/* Adds n to the route's node-wide counter c only (not to this process's rd.stats). */
void rd_count_node(rd_route *rr, enum rd_counter c, int64_t n);

/* Whether name (len bytes) can be one path component of the shadow tree: not empty, not "."
 * or "..", no '/', at most NAME_MAX. Keys with another segment are not shown. */
int rd_usable_name(const char *name, size_t len);

/* The file called name in a loaded listing, or NULL. Caller holds rr->lock. */
rd_entry *rd_listed_entry(const rd_listed *l, const char *name);

/* Queues fn(arg) on the worker pool (common/pool.h) as the reader's queue, rws-fetch, which
 * runs as many jobs at once as the most parallel read route's prefetch_concurrency. Returns
 * 0, or -errno when it could not be queued (the caller then owns arg). */
int rd_pool_submit(void (*fn)(void *arg), void *arg);

/* Prefetch (rd_prefetch.c): called after a file of dir was opened. */
void rd_prefetch_after_open(rd_route *rr, const char *rest);

/* Fork hooks of the prefetch-hit table (LC_PREFETCH_HITS) and of windowed files' pins
 * (LC_WINDOWS, rd_lazy.c); rd_init registers them. */
extern const lc_hooks rd_prefetch_fork_hooks;
extern const lc_hooks rd_window_fork_hooks;
/* prefetch = all: called at the route's first use. */
void rd_prefetch_all_start(rd_route *rr);
/* True (once) when key was brought in by prefetch, for the hit counter. */
int rd_prefetch_claim_hit(const char *key);

#endif
