/* rwsplit prefill: a read route's objects into the node's cache before the job starts, so
 * that its first epoch reads from memory. The same download and publish as a fetch agent's
 * (rd_fetch_for_agent): an object already in the cache in its listed version (ETag, size,
 * mtime) costs nothing, so a second run is a no-op unless objects changed. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/pool.h"
#include "reader/rd_priv.h"
#include "router/rt.h"

typedef struct item {
	char *key;
	char etag[80];
	uint64_t size;
	time_t mtime;
} item;

typedef struct prefill {
	rd_route *rr;
	const char *want;        /* the key of rest, "" for the whole route */
	size_t prefix_len;       /* the route's prefix */
	uint64_t budget;         /* bytes of cache the listing may fill */
	item *items;
	size_t n, cap;
	atomic_size_t next;      /* next item to fetch */
	atomic_uint workers;     /* jobs still running */
	_Atomic uint64_t done_files, done_bytes, fetched, cached, failed, got;
	pthread_mutex_t first_lock;
	int first_rc;            /* the first failure, and why */
	char first_why[1700];
	rd_prefill_progress p;   /* the listing's part */
} prefill;

/* Whether every segment of key below the route's prefix can be a file name: the others are
 * not in the shadow tree, so nobody would read them. */
static int shown(const char *rest)
{
	for (const char *s = rest;;) {
		const char *slash = strchr(s, '/');
		size_t len = slash ? (size_t)(slash - s) : strlen(s);
		if (!rd_usable_name(s, len))
			return 0;
		if (!slash)
			return 1;
		s = slash + 1;
	}
}

static int collect(void *arg, const s3_list_entry *e)
{
	prefill *pf = arg;
	size_t wl = strlen(pf->want);
	if (e->is_prefix || strlen(e->key) <= pf->prefix_len || !shown(e->key + pf->prefix_len))
		return 0;
	/* want names a file, or a directory: its keys continue with '/' */
	if (wl && strcmp(e->key, pf->want) != 0 &&
	    !(strncmp(e->key, pf->want, wl) == 0 && e->key[wl] == '/'))
		return 0;
	uint64_t need = rd_cache_bytes(e->size);
	if (pf->p.bytes_cache + need > pf->budget) {
		pf->p.left_out++;
		pf->p.left_out_bytes += e->size;
		return 0;
	}
	if (pf->n == pf->cap) {
		size_t cap = pf->cap ? pf->cap * 2 : 1024;
		item *grown = realloc(pf->items, cap * sizeof *grown);
		if (!grown)
			return -ENOMEM;
		pf->items = grown;
		pf->cap = cap;
	}
	item *it = &pf->items[pf->n];
	if (!(it->key = strdup(e->key)))
		return -ENOMEM;
	snprintf(it->etag, sizeof it->etag, "%s", e->etag ? e->etag : "");
	it->size = e->size;
	it->mtime = e->mtime;
	pf->n++;
	pf->p.files++;
	pf->p.bytes += e->size;
	pf->p.bytes_cache += need;
	return 0;
}

/* A listing the agent had to restart: what was collected goes. */
static void restart(void *arg)
{
	prefill *pf = arg;
	for (size_t i = 0; i < pf->n; i++)
		free(pf->items[i].key);
	pf->n = 0;
	pf->p.files = pf->p.bytes = pf->p.bytes_cache = 0;
	pf->p.left_out = pf->p.left_out_bytes = 0;
}

static void fetch_one(prefill *pf, const item *it)
{
	struct stat st;
	memset(&st, 0, sizeof st);
	st.st_size = (off_t)it->size;
	st.st_mtim.tv_sec = it->mtime;
	uint64_t got = 0;
	int fetched = 0;
	char why[512] = "";
	int rc = rd_fetch_for_agent(pf->rr, it->key, it->etag, &st, &got, &fetched, why,
				    sizeof why);
	if (rc < 0) {
		if (rc == -ESTALE)
			snprintf(why, sizeof why, "it changed while prefill ran; run it again");
		log_warn("prefill: s3://%s/%s: %s", pf->rr->cfg->bucket, it->key,
			 why[0] ? why : strerror(-rc));
		pthread_mutex_lock(&pf->first_lock);
		if (!pf->first_rc) {
			pf->first_rc = rc;
			snprintf(pf->first_why, sizeof pf->first_why, "s3://%.63s/%.1024s: %.500s",
				 pf->rr->cfg->bucket, it->key, why[0] ? why : strerror(-rc));
		}
		pthread_mutex_unlock(&pf->first_lock);
		atomic_fetch_add(&pf->failed, 1);
	} else {
		atomic_fetch_add(fetched ? &pf->fetched : &pf->cached, 1);
		atomic_fetch_add(&pf->got, got);
	}
	atomic_fetch_add(&pf->done_files, 1);
	atomic_fetch_add(&pf->done_bytes, it->size);
}

static void worker(void *arg)
{
	prefill *pf = arg;
	for (size_t i; (i = atomic_fetch_add(&pf->next, 1)) < pf->n;)
		fetch_one(pf, &pf->items[i]);
	atomic_fetch_sub(&pf->workers, 1);
}

static void snapshot(prefill *pf, rd_prefill_progress *p)
{
	*p = pf->p;
	p->done_files = atomic_load(&pf->done_files);
	p->done_bytes = atomic_load(&pf->done_bytes);
	p->fetched = atomic_load(&pf->fetched);
	p->cached = atomic_load(&pf->cached);
	p->failed = atomic_load(&pf->failed);
	p->got = atomic_load(&pf->got);
}

int rd_prefill(const cfg_route *r, const char *rest, unsigned jobs, unsigned interval_ms,
	       rd_prefill_report report, void *arg, char *why, size_t whylen)
{
	rd_route *rr = rd_route_of(r);
	prefill pf = { .rr = rr, .prefix_len = strlen(r->prefix) };
	pthread_mutex_init(&pf.first_lock, NULL);
	char key[RT_KEY_MAX + 1] = "";
	pool_queue *q = NULL;
	rd_prefill_progress p;
	int rc = rd_route_prepare(rr);
	if (rc < 0) {
		snprintf(why, whylen, "cannot use the cache directory %s: %s", rr->root,
			 strerror(-rc));
		goto out;
	}
	if (*rest && (rc = rd_key(rr, rest, key, sizeof key)) < 0) {
		snprintf(why, whylen, "%s: the key would be too long", rest);
		goto out;
	}
	pf.want = key;
	pf.budget = r->cache_bytes - r->cache_bytes / 10; /* as prefetch = all leaves room */
	pf.p.budget = pf.budget;
	char lwhy[512] = "";
	rc = rd_store_list(rr, *rest ? key : r->prefix, NULL, collect, restart, &pf, lwhy,
			   sizeof lwhy);
	if (rc < 0) {
		snprintf(why, whylen, "listing s3://%s/%s: %s", r->bucket, *rest ? key : r->prefix,
			 lwhy[0] ? lwhy : strerror(-rc));
		goto out;
	}
	pf.p.listing_done = 1;
	if (report && pf.n) { /* what there is to do, at once */
		snapshot(&pf, &p);
		report(arg, &p);
	}
	if (pf.n && !(q = pool_queue_new("rws-prefill", jobs ? jobs : 1))) {
		rc = -ENOMEM;
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	unsigned started = 0;
	for (; q && started < jobs && started < pf.n; started++) {
		atomic_fetch_add(&pf.workers, 1);
		if (pool_submit(q, worker, &pf) != 0) {
			atomic_fetch_sub(&pf.workers, 1);
			break;
		}
	}
	if (pf.n && !started) {
		rc = -EAGAIN;
		snprintf(why, whylen, "cannot start a thread");
		goto out;
	}
	uint64_t last = clock_ms();
	while (atomic_load(&pf.workers) > 0) {
		nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
		if (report && clock_ms() - last >= interval_ms) {
			last = clock_ms();
			snapshot(&pf, &p);
			report(arg, &p);
		}
	}
	if (q)
		pool_queue_drain(q);
	rc = pf.first_rc;
	if (rc < 0)
		snprintf(why, whylen, "%llu of %zu objects failed; the first: %s",
			 (unsigned long long)atomic_load(&pf.failed), pf.n, pf.first_why);
out:
	snapshot(&pf, &p);
	p.finished = 1;
	if (report)
		report(arg, &p);
	pool_queue_free(q);
	for (size_t i = 0; i < pf.n; i++)
		free(pf.items[i].key);
	free(pf.items);
	pthread_mutex_destroy(&pf.first_lock);
	return rc;
}
