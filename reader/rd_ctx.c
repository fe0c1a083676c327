/* Per-process reader state: route cache locations, counters, fork handling,
 * and rd_open, which sends each object to the whole-object or the background-fill path. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/pool.h"
#include "reader/rd_agent.h"
#include "reader/rd_priv.h"
#include "router/rt.h"

rd_state rd;

static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

static pool_queue *fetch_queue;

/* As many at once as the most parallel read route asks for. */
static unsigned fetch_width(const cfg *c)
{
	unsigned n = 1;
	for (size_t i = 0; i < c->nroutes; i++)
		if (c->routes[i].mode == CFG_READ && c->routes[i].prefetch_concurrency > n)
			n = c->routes[i].prefetch_concurrency;
	return n;
}

int rd_init(const cfg *c)
{
	rd.cfg = c;
	atomic_store(&rd.user_dir, RD_UNCHECKED);
	uid_t uid = geteuid();
	int len = snprintf(rd.user_path, sizeof rd.user_path, "%s/u%u", c->cache_dir, (unsigned)uid);
	if (len < 0 || (size_t)len >= sizeof rd.user_path)
		return -ENAMETOOLONG;
	rd.routes = calloc(c->nroutes ? c->nroutes : 1, sizeof *rd.routes);
	if (!rd.routes)
		return -ENOMEM;
	static const lc_hooks routes_hooks = { fork_prepare, fork_parent, fork_child };
	lc_register(LC_READ_ROUTES, &routes_hooks);
	lc_register(LC_AGENT_CLIENT, &rd_agent_fork_hooks);
	lc_register(LC_PREFETCH_HITS, &rd_prefetch_fork_hooks);
	lc_register(LC_WINDOWS, &rd_window_fork_hooks);
	/* Made now, not on first use: a queue's first creation registers the pool's fork
	 * hooks, which must not happen under one of our locks. */
	if (!fetch_queue && !(fetch_queue = pool_queue_new("rws-fetch", fetch_width(c))))
		return -ENOMEM;
	rd_agent_init(c);
	for (size_t i = 0; i < c->nroutes; i++) {
		const cfg_route *r = &c->routes[i];
		rd_route *rr = &rd.routes[i];
		rr->cfg = r;
		pthread_mutex_init(&rr->lock, NULL);
		if (r->mode != CFG_READ)
			continue;
		/* One cache per user and per remote location, so routes that name the same
		 * bucket and prefix (in different configs, or processes) share it. */
		char id[17];
		rd_hash(id, 16, r->store->endpoint, r->bucket, r->prefix);
		int n = snprintf(rr->root, sizeof rr->root, "%s/%s", rd.user_path, id);
		if (n < 0 || (size_t)n + 8 >= sizeof rr->root)
			return -ENAMETOOLONG;
		snprintf(rr->tree, sizeof rr->tree, "%s/tree", rr->root);
		snprintf(rr->obj, sizeof rr->obj, "%s/obj", rr->root);
		snprintf(rr->lists, sizeof rr->lists, "%s/lists", rr->root);
		snprintf(rr->tmp, sizeof rr->tmp, "%s/tmp", rr->root);
		rr->tree_len = strlen(rr->tree);
	}
	return 0;
}

const char *rd_shadow_root(const cfg_route *r)
{
	return rd_route_of(r)->tree;
}

const cfg_route *rd_route_of_shadow(const char *path, const char **rest)
{
	for (size_t i = 0; rd.cfg && i < rd.cfg->nroutes; i++) {
		const rd_route *rr = &rd.routes[i];
		if (rr->cfg->mode != CFG_READ || strncmp(path, rr->tree, rr->tree_len) != 0)
			continue;
		const char *p = path + rr->tree_len;
		if (*p == '\0' || *p == '/') {
			*rest = *p ? p + 1 : p;
			return rr->cfg;
		}
	}
	return NULL;
}

rd_route *rd_route_of(const cfg_route *r)
{
	return &rd.routes[r - rd.cfg->routes];
}

/* The walk of rd_user_dir: makes or checks cache_dir and u<uid>, fills bad. Only system
 * calls and the stack: a vfork child may run it. */
static int user_dir_walk(char *bad, size_t cap)
{
	int fd = fs_open_dir_safe(rd.cfg->cache_dir, 01777, FS_SHARED, bad, cap);
	if (fd < 0)
		return fd;
	close(fd);
	fd = fs_open_dir_safe(rd.user_path, 0700, FS_PRIVATE, bad, cap);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int rd_user_dir(void)
{
	int rc = atomic_load(&rd.user_dir);
	if (rc != RD_UNCHECKED)
		return rc;
	/* No lock: two threads that walk at once make or find the same directories. */
	char bad[PATH_MAX + 128] = "";
	rc = user_dir_walk(bad, sizeof bad);
	int unchecked = RD_UNCHECKED;
	if (atomic_compare_exchange_strong(&rd.user_dir, &unchecked, rc) && rc < 0)
		log_error("read routes: refusing cache_dir %s: %s (another user of the node could "
			  "read or replace the cache; set cache_dir to a directory of your own)",
			  rd.cfg->cache_dir, bad[0] ? bad : strerror(-rc));
	return atomic_load(&rd.user_dir);
}

int rd_user_dir_in_vfork_child(void)
{
	int rc = atomic_load(&rd.user_dir);
	if (rc != RD_UNCHECKED)
		return rc;
	char bad[256];
	return user_dir_walk(bad, sizeof bad);
}

int rd_route_prepare(rd_route *rr)
{
	int rc = rd_user_dir();
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&rr->lock);
	if (!rr->prepared) {
		const char *dirs[] = { rr->tree, rr->obj, rr->lists, rr->tmp };
		for (size_t i = 0; i < 4 && rc == 0; i++)
			rc = fs_mkdir_p(dirs[i], 0700);
		if (rc == 0)
			rr->prepared = 1;
		else
			log_error("read route %s: cannot create cache directory under %s: %s",
				  rr->cfg->local, rr->root, strerror(-rc));
	}
	int start_all = rc == 0 && rr->cfg->prefetch == CFG_PREFETCH_ALL && !rr->all_started;
	if (start_all)
		rr->all_started = 1;
	pthread_mutex_unlock(&rr->lock);
	if (start_all)
		rd_prefetch_all_start(rr);
	return rc;
}

int rd_key(const rd_route *rr, const char *rest, char *key, size_t cap)
{
	long n = rt_object_key(rr->cfg, rest, 0, key, cap);
	return n < 0 ? (int)n : 0;
}

/* How often an open follows an object that keeps changing under it before giving up. */
#define STALE_RETRIES 3

int rd_open(const cfg_route *r, const char *rest, struct stat *st, int flags, rd_file **lazy)
{
	*lazy = NULL;
	rd_route *rr = rd_route_of(r);
	char key[RT_KEY_MAX + 1];
	int rc = rd_key(rr, rest, key, sizeof key);
	if (rc < 0)
		return rc;
	rd_count(rr, RD_C_opens, 1);
	int fetched = 0, fd = -ESTALE;
	for (int attempt = 0; fd == -ESTALE; attempt++) {
		struct timespec began;
		clock_gettime(CLOCK_REALTIME, &began);
		char etag[80];
		rd_etag_of(rr, rest, etag);
		if ((uint64_t)st->st_size > r->whole_max)
			fd = rd_lazy_open(rr, key, rest, etag, st, flags, lazy);
		else
			fd = rd_fetch_whole(rr, key, etag, st,
					    flags & (O_CLOEXEC | O_NONBLOCK | O_NOCTTY), &fetched);
		if (fd != -ESTALE)
			break;
		if (attempt + 1 == STALE_RETRIES) {
			log_warn("read route %s: s3://%s/%s changed %d times while being opened",
				 r->local, r->bucket, key, STALE_RETRIES);
			return -EIO;
		}
		if ((rc = rd_shadow_relist(rr, rest, &began, st)) < 0)
			return rc;
	}
	if (fd < 0 || *lazy || (uint64_t)st->st_size > r->whole_max)
		return fd;
	if (!fetched) {
		rd_count(rr, RD_C_cache_hits, 1);
		rd_count(rr, RD_C_bytes_cache, (int64_t)st->st_size);
		if (rd_prefetch_claim_hit(key))
			rd_count(rr, RD_C_prefetch_hits, 1);
	}
	rd_cache_touch(fd);
	if (r->prefetch == CFG_PREFETCH_LISTING)
		rd_prefetch_after_open(rr, rest);
	return fd;
}

void rd_exit_summary(void)
{
	uint64_t v[RD_NCOUNTERS];
	rd_get_stats(v);
	if (!v[RD_C_opens] && !v[RD_C_lists] && !v[RD_C_gets])
		return;
	log_info("read summary: %llu files opened (%llu from cache), %llu bytes from the store, "
		 "%llu bytes from cache, %llu GETs, %llu LISTs, %llu prefetched, "
		 "%llu prefetch hits, %llu evictions",
		 (unsigned long long)v[RD_C_opens], (unsigned long long)v[RD_C_cache_hits],
		 (unsigned long long)v[RD_C_bytes_store], (unsigned long long)v[RD_C_bytes_cache],
		 (unsigned long long)v[RD_C_gets], (unsigned long long)v[RD_C_lists],
		 (unsigned long long)v[RD_C_prefetched], (unsigned long long)v[RD_C_prefetch_hits],
		 (unsigned long long)v[RD_C_evictions]);
}

/* fork: every lock is taken in prepare so the child never inherits one held by a thread
 * that does not exist there. */
static void fork_prepare(void)
{
	for (size_t i = 0; rd.cfg && i < rd.cfg->nroutes; i++)
		pthread_mutex_lock(&rd.routes[i].lock);
}

static void fork_parent(void)
{
	for (size_t i = rd.cfg ? rd.cfg->nroutes : 0; i-- > 0;)
		pthread_mutex_unlock(&rd.routes[i].lock);
}

static void fork_child(void)
{
	for (size_t i = rd.cfg ? rd.cfg->nroutes : 0; i-- > 0;)
		pthread_mutex_unlock(&rd.routes[i].lock);
	/* Counters describe this process only. */
	memset(&rd.stats, 0, sizeof rd.stats);
}

int rd_pool_submit(void (*fn)(void *arg), void *arg)
{
	int rc = pool_submit(fetch_queue, fn, arg);
	if (rc == -EAGAIN)
		log_warn("reader: cannot start a worker thread");
	return rc;
}
