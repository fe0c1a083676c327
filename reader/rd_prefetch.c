/* Prefetch. `listing`: when a program reads the files of a directory one after another (in
 * either direction of the listing order, a few out of order as parallel readers are), the
 * next files are fetched ahead of it by the worker threads. Random access (a shuffling
 * loader) triggers nothing. `all`: the whole route is listed at first use and warmed into
 * the cache, up to its budget, once per cache rather than once per process (see warm_all).
 * In-flight prefetch is bounded globally, in jobs and bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "reader/rd_priv.h"
#include "router/rt.h"

#define SEQUENTIAL_SLACK 8            /* how far out of order a "sequential" reader may be */
#define INFLIGHT_BYTES_MAX (512u << 20)

/* One process's warming of a route for `all`: it holds the route's warm lock until every
 * job it queued has run (pending counts them, plus one for the listing itself). */
typedef struct warm_run {
	rd_route *rr;
	int lock_fd;
	int complete;            /* the listing reached its end or the budget */
	atomic_uint pending;
} warm_run;

typedef struct prefetch_job {
	rd_route *rr;
	warm_run *warm;          /* for `all`: the warming it belongs to */
	char *rest;              /* for `listing`: the shadow entry gives size and mtime */
	struct stat st;          /* for `all`: from the listing */
	int have_st;
	char etag[80];
	uint64_t bytes;
} prefetch_job;

typedef struct prefetched_key {
	char *key;
	UT_hash_handle hh;
} prefetched_key;

/* Keys prefetched and not opened yet, for the prefetch-hit count only: bounded, the oldest
 * forgotten first (a prefetch of `all` over millions of keys must not grow it for ever). */
#define PREFETCHED_MAX 65536
static pthread_mutex_t hits_lock = PTHREAD_MUTEX_INITIALIZER;
static prefetched_key *prefetched;
static atomic_uint_fast64_t inflight_bytes;

static void remember_prefetched(const char *key)
{
	prefetched_key *p = calloc(1, sizeof *p);
	if (!p || !(p->key = strdup(key))) {
		free(p);
		return;
	}
	pthread_mutex_lock(&hits_lock);
	prefetched_key *old, *dropped = NULL;
	HASH_FIND_STR(prefetched, key, old);
	if (!old) {
		if (HASH_COUNT(prefetched) >= PREFETCHED_MAX) {
			dropped = prefetched; /* uthash's head is the oldest added */
			HASH_DEL(prefetched, dropped);
		}
		HASH_ADD_KEYPTR(hh, prefetched, p->key, strlen(p->key), p);
	}
	pthread_mutex_unlock(&hits_lock);
	if (old) {
		free(p->key);
		free(p);
	}
	if (dropped) {
		free(dropped->key);
		free(dropped);
	}
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&hits_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&hits_lock);
}

const lc_hooks rd_prefetch_fork_hooks = { fork_prepare, fork_parent, fork_parent };

int rd_prefetch_claim_hit(const char *key)
{
	pthread_mutex_lock(&hits_lock);
	prefetched_key *p;
	HASH_FIND_STR(prefetched, key, p);
	if (p)
		HASH_DEL(prefetched, p);
	pthread_mutex_unlock(&hits_lock);
	if (p) {
		free(p->key);
		free(p);
	}
	return p != NULL;
}

/* lists/NAME: the warm lock ("all.lock") and stamp ("all.done"). */
static int lists_path(const rd_route *rr, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", rr->lists, name);
	return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

/* Whether a warming finished less than listing_ttl ago: then there is nothing to do (what it
 * fetched is cached; what changed since is fetched on demand). */
static int warmed_recently(const rd_route *rr)
{
	char path[PATH_MAX];
	return lists_path(rr, "all.done", path, sizeof path) == 0 &&
	       rd_stamp_fresh(path, rr->cfg->listing_ttl_ms);
}

/* Drops one reference; the last stamps the route warmed (if the listing got to its end)
 * and lets go of the lock, so another process may warm it again after listing_ttl. */
static void warm_release(warm_run *w)
{
	if (atomic_fetch_sub(&w->pending, 1) != 1)
		return;
	char path[PATH_MAX];
	if (w->complete && lists_path(w->rr, "all.done", path, sizeof path) == 0)
		rd_stamp_touch(path);
	close(w->lock_fd);
	free(w);
}

static void prefetch_run(void *arg)
{
	prefetch_job *j = arg;
	char key[RT_KEY_MAX + 1];
	int ok = rd_key(j->rr, j->rest, key, sizeof key) == 0;
	if (ok && !j->have_st)
		ok = rd_shadow_lstat(j->rr, j->rest, &j->st) == 0 && S_ISREG(j->st.st_mode);
	int fetched = 0;
	if (ok && rd_fetch_whole(j->rr, key, j->etag, &j->st, -1, &fetched) == 0 && fetched) {
		rd_count(j->rr, RD_C_prefetched, 1);
		remember_prefetched(key);
	}
	atomic_fetch_sub(&inflight_bytes, j->bytes);
	if (j->warm)
		warm_release(j->warm);
	free(j->rest);
	free(j);
}

/* Queues one prefetch unless the global in-flight bound is reached. Returns 0 if queued
 * (then the job holds a reference to warm, if any). */
static int queue(rd_route *rr, const char *rest, const char *etag, const struct stat *st,
		 uint64_t bytes, warm_run *warm)
{
	if (atomic_load(&inflight_bytes) + bytes > INFLIGHT_BYTES_MAX)
		return -EBUSY;
	prefetch_job *j = calloc(1, sizeof *j);
	if (!j || !(j->rest = strdup(rest))) {
		free(j);
		return -ENOMEM;
	}
	j->rr = rr;
	j->warm = warm;
	j->bytes = bytes;
	snprintf(j->etag, sizeof j->etag, "%s", etag ? etag : "");
	if (st) {
		j->st = *st;
		j->have_st = 1;
	}
	atomic_fetch_add(&inflight_bytes, bytes);
	if (warm)
		atomic_fetch_add(&warm->pending, 1);
	if (rd_pool_submit(prefetch_run, j) < 0) {
		atomic_fetch_sub(&inflight_bytes, bytes);
		if (warm)
			atomic_fetch_sub(&warm->pending, 1); /* the listing's own stays */
		free(j->rest);
		free(j);
		return -EAGAIN;
	}
	return 0;
}

/* True when rest is already in the cache: a warm reader then starts no worker at all. */
static int cached(rd_route *rr, const char *rest, const char *etag)
{
	char key[RT_KEY_MAX + 1], obj[PATH_MAX];
	struct stat st;
	return rd_shadow_lstat(rr, rest, &st) == 0 && rd_key(rr, rest, key, sizeof key) == 0 &&
	       rd_obj_path(rr, key, etag, &st, obj, sizeof obj) == 0 && access(obj, F_OK) == 0;
}

void rd_prefetch_after_open(rd_route *rr, const char *rest)
{
	const char *slash = strrchr(rest, '/');
	const char *name = slash ? slash + 1 : rest;
	size_t dlen = slash ? (size_t)(slash - rest) : 0;
	char dir[PATH_MAX];
	memcpy(dir, rest, dlen);
	dir[dlen] = '\0';
	char next[32][NAME_MAX + 1];
	char etags[32][80];
	uint64_t sizes[32];
	int nnext = 0;

	pthread_mutex_lock(&rr->lock);
	rd_listed *l = rd_listed_find(rr, dir);
	if (!l || rd_listed_load_order(rr, l) < 0 || !l->nfiles) {
		pthread_mutex_unlock(&rr->lock);
		return;
	}
	rd_entry *e = rd_listed_entry(l, name);
	if (!e) {
		pthread_mutex_unlock(&rr->lock);
		return;
	}
	long i = e - l->files, last = l->last_open;
	l->last_open = i;
	long step = i > last && i - last <= SEQUENTIAL_SLACK ? 1
		    : i < last && last - i <= SEQUENTIAL_SLACK ? -1 : 0;
	/* One open near the last is what a shuffled order does every 1000 / (2 *
	 * SEQUENTIAL_SLACK) opens of a directory of 1000: read-aheads nobody reads, which
	 * took 7% more GETs and, kept in the cache as wanted soon, a third of the cache's hits.
	 * Two in a row are a sequential reader (a shuffled order: one in 4000). */
	l->near_opens = step ? l->near_opens + 1 : 0;
	if (l->near_opens < 2)
		step = 0;
	long window = rr->cfg->prefetch_concurrency;
	if (window > 32)
		window = 32;
	for (long k = 1; step && k <= window + SEQUENTIAL_SLACK && nnext < window; k++) {
		long j = i + step * k;
		if (j < 0 || (size_t)j >= l->nfiles)
			break;
		if (l->queued[j] || l->files[j].size > rr->cfg->whole_max)
			continue;
		l->queued[j] = 1;
		snprintf(next[nnext], sizeof next[nnext], "%s", l->files[j].name);
		memcpy(etags[nnext], l->files[j].etag, sizeof etags[nnext]);
		sizes[nnext++] = l->files[j].size;
	}
	pthread_mutex_unlock(&rr->lock);

	for (int k = 0; k < nnext; k++) {
		char path[PATH_MAX];
		int n = snprintf(path, sizeof path, "%s%s%s", dir, dlen ? "/" : "", next[k]);
		if (n > 0 && (size_t)n < sizeof path && !cached(rr, path, etags[k]))
			queue(rr, path, etags[k], NULL, sizes[k], NULL);
	}
}

typedef struct warm_state {
	warm_run *run;
	size_t prefix_len;
	uint64_t budget_left;
	unsigned long queued;
	int stalled;
} warm_state;

static int warm_entry(void *arg, const s3_list_entry *e)
{
	warm_state *w = arg;
	rd_route *rr = w->run->rr;
	if (e->is_prefix || strlen(e->key) <= w->prefix_len || e->size > rr->cfg->whole_max)
		return 0;
	if (rd_cache_bytes(e->size) > w->budget_left)
		return 1; /* the budget is full: stop listing */
	struct stat st = { .st_size = (off_t)e->size, .st_mtim = { .tv_sec = e->mtime } };
	/* Waits for room rather than dropping: warming is the point of `all`. */
	for (int tries = 0;
	     queue(rr, e->key + w->prefix_len, e->etag, &st, e->size, w->run) == -EBUSY; tries++) {
		if (tries > 600) { /* a minute without progress: stop warming */
			w->stalled = 1;
			return 1;
		}
		usleep(100 * 1000);
	}
	w->budget_left -= rd_cache_bytes(e->size);
	w->queued++;
	return 0;
}

/* Takes the route's warm lock if no other process holds it. A POSIX record lock, not flock:
 * it belongs to this process alone (a forked child does not hold it through the inherited
 * descriptor) and goes when the process does. Returns the fd or -1. */
static int warm_lock(const rd_route *rr)
{
	char path[PATH_MAX];
	if (lists_path(rr, "all.lock", path, sizeof path) < 0)
		return -1;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fd >= 0 && fcntl(fd, F_SETLK, &fl) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* `all` once per cache, not once per process: a short-lived reader (one `cat` among
 * hundreds) would otherwise load the store client and list the whole route each time. One
 * process at a time warms (the lock); a stamp younger than listing_ttl tells the others it
 * is done. A warmer that exits early leaves no stamp and lets go of the lock with its life,
 * so the next process to use the route takes over; what is cached already costs it no GET. */
static void warm_all(void *arg)
{
	rd_route *rr = arg;
	if (warmed_recently(rr))
		return;
	int lock_fd = warm_lock(rr);
	if (lock_fd < 0) {
		log_debug("read route %s: another process is warming the cache", rr->cfg->local);
		return;
	}
	warm_run *run = calloc(1, sizeof *run);
	if (!run || warmed_recently(rr)) { /* the previous holder may have just finished */
		free(run);
		close(lock_fd);
		return;
	}
	run->rr = rr;
	run->lock_fd = lock_fd;
	atomic_init(&run->pending, 1);
	warm_state w = { .run = run, .prefix_len = strlen(rr->cfg->prefix),
			 .budget_left = rr->cfg->cache_bytes - rr->cfg->cache_bytes / 10 };
	char why[512];
	int rc = rd_store_list(rr, rr->cfg->prefix, NULL, warm_entry, NULL, &w, why,
				   sizeof why);
	if (rc < 0 && rc != -ECANCELED)
		log_warn("read route %s: prefetch = all: listing failed: %s", rr->cfg->local, why);
	/* rc 1: warm_entry stopped the listing (the budget is full, or it stalled). */
	run->complete = rc >= 0 && !w.stalled;
	log_debug("read route %s: warming %lu objects", rr->cfg->local, w.queued);
	warm_release(run);
}

void rd_prefetch_all_start(rd_route *rr)
{
	if (rd_pool_submit(warm_all, rr) < 0)
		log_warn("read route %s: cannot start prefetch = all", rr->cfg->local);
}
