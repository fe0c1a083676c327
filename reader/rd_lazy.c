/* Objects larger than whole_object_max: open returns at once on a sparse obj/<name>.part
 * file, and ranged GETs fill it chunk by chunk, in the background and on demand.
 *
 * Which chunks are present is kept in obj/<name>.map, mapped shared by every process that
 * has the object open: a chunk is claimed with a compare-and-swap of its state from 0 to the
 * claimer's pid, marked PRESENT when written, and every change bumps a sequence number that
 * waiters sleep on with a futex. A claim held by a pid that no longer exists is taken over,
 * so a killed worker cannot wedge the others. When every chunk is present the file is
 * renamed to its final name, which later opens use directly.
 *
 * An object larger than the route's whole budget is read through a window instead: a
 * private cache file (unlinked at once, so nothing is left behind), chunks fetched when
 * needed plus a short readahead, and the least recently used chunks punched out of the file
 * to stay within the budget. A data call pins the chunks it touches until rd_done(), so a
 * chunk is never evicted under a read.
 *
 * Every GET names the listed version (If-Match with its ETag), so a file never mixes two
 * versions. When the object is overwritten part way, the map is marked stale: chunks
 * already present stay readable, the others give ESTALE (as NFS does for a file replaced on
 * the server), nothing fetches again, and the directory is listed again so that the next
 * open gets the new version. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "reader/rd_priv.h"
#include "router/rt.h"

#define CHUNK (8u << 20)
#define MAP_MAGIC 0x52574d32u /* "RWM2" */
#define PRESENT 0xffffffffu
#define EVICTING 0xfffffffeu
/* A chunk whose GET failed after the client's retries: FAILED | the second of the failure
 * (CLOCK_MONOTONIC, the same in every process of the node). Until FAILED_HOLD_S later, no
 * process fetches it again and its readers get EIO at once, so an object gone since it was
 * listed costs one GET per chunk, not one per chunk per loop of every filler. Process ids
 * (at most 2^22) never have the bit. */
#define FAILED 0x80000000u
#define FAILED_HOLD_S 10u
#define FILLERS_PER_FILE 4
#define WINDOW_READAHEAD 2
#define WINDOW_MIN_CHUNKS 4

typedef struct rd_map {
	uint32_t magic;
	uint32_t chunk;
	uint64_t size;
	uint32_t nchunks;
	_Atomic uint32_t seq;
	_Atomic uint32_t stale;   /* the object is no longer the version being filled */
	_Atomic uint32_t state[];
} rd_map;

struct rd_file {
	atomic_int refs;
	atomic_int complete;
	rd_route *rr;
	char key[RT_KEY_MAX + 1];
	char *rest;               /* route-relative path, to list its directory again */
	char etag[80];            /* the version being filled ("" if the listing had none) */
	atomic_int relisted;      /* this process listed the directory again after a 412 */
	uint64_t size;
	int fd;                   /* read-write, for our own pwrite()s */
	rd_map *map;
	size_t maplen;
	char final[PATH_MAX];
	/* windowed mode only, under wlock */
	int windowed;
	pthread_mutex_t wlock;
	uint32_t *pins;           /* data calls in progress on each chunk */
	uint64_t *used;           /* when each chunk was last touched (a counter) */
	uint64_t tick;
	uint32_t resident, max_resident;
	rd_file *wprev, *wnext;   /* every windowed file, under windows.lock */
};

/* Windowed files, so that the fork hooks can take each one's wlock (rank LC_WINDOWS: the
 * registry's lock, then the files' wlocks). */
static struct {
	pthread_mutex_t lock;
	rd_file *head;
} windows = { PTHREAD_MUTEX_INITIALIZER, NULL };

static void window_fork_prepare(void)
{
	pthread_mutex_lock(&windows.lock);
	for (rd_file *f = windows.head; f; f = f->wnext)
		pthread_mutex_lock(&f->wlock);
}

static void window_fork_parent(void)
{
	for (rd_file *f = windows.head; f; f = f->wnext)
		pthread_mutex_unlock(&f->wlock);
	pthread_mutex_unlock(&windows.lock);
}

const lc_hooks rd_window_fork_hooks = { window_fork_prepare, window_fork_parent,
					window_fork_parent };

static size_t map_len(uint32_t nchunks)
{
	return sizeof(rd_map) + (size_t)nchunks * sizeof(uint32_t);
}

static void wake_all(rd_map *m)
{
	atomic_fetch_add(&m->seq, 1);
	syscall(SYS_futex, &m->seq, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

static void wait_change(rd_map *m, uint32_t seen)
{
	struct timespec t = { 0, 100 * 1000 * 1000 }; /* also re-checks claimers' liveness */
	syscall(SYS_futex, &m->seq, FUTEX_WAIT, seen, &t, NULL, 0);
}

static int is_failure(uint32_t s)
{
	return (s & FAILED) && s != PRESENT && s != EVICTING;
}

static uint32_t now_s(void)
{
	return (uint32_t)(clock_ms() / 1000) & ~FAILED;
}

/* A failure recorded less than FAILED_HOLD_S ago. */
static int failed_recently(uint32_t s)
{
	return is_failure(s) && ((now_s() - (s & ~FAILED)) & ~FAILED) < FAILED_HOLD_S;
}

static int alive(uint32_t pid)
{
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static void file_unref(rd_file *f)
{
	if (atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	if (f->windowed) {
		pthread_mutex_lock(&windows.lock);
		if (f->wprev)
			f->wprev->wnext = f->wnext;
		else
			windows.head = f->wnext;
		if (f->wnext)
			f->wnext->wprev = f->wprev;
		pthread_mutex_unlock(&windows.lock);
		free(f->map);
		free(f->pins);
		free(f->used);
		pthread_mutex_destroy(&f->wlock);
	} else if (f->map) {
		munmap(f->map, f->maplen);
	}
	if (f->fd >= 0)
		close(f->fd);
	free(f->rest);
	free(f);
}

rd_file *rd_file_ref(rd_file *f)
{
	atomic_fetch_add(&f->refs, 1);
	return f;
}

void rd_file_release(rd_file *f)
{
	if (f)
		file_unref(f);
}

int rd_complete(const rd_file *f)
{
	return atomic_load_explicit(&f->complete, memory_order_acquire);
}

/* Fetches claimed chunk c into the file. Returns 0 or -errno; the claim is released either
 * way (to PRESENT or back to 0). */
static int fetch_chunk(rd_file *f, uint32_t c)
{
	uint64_t off = (uint64_t)c * CHUNK;
	uint64_t len = f->size - off < CHUNK ? f->size - off : CHUNK;
	uint64_t got = 0;
	char why[512] = "";
	struct timespec began;
	clock_gettime(CLOCK_REALTIME, &began);
	int rc = rd_store_get(f->rr, f->key, f->etag, off, len, f->fd, (off_t)off, &got, NULL,
			      why, sizeof why);
	if (rc == 0 && got != len) { /* a store that ignores If-Match, or no ETag listed */
		rc = -ESTALE;
		snprintf(why, sizeof why, "the object shrank since it was listed");
	}
	if (rc == -ESTALE) {
		atomic_store(&f->map->stale, 1);
		atomic_store(&f->map->state[c], 0);
		wake_all(f->map);
		if (atomic_exchange(&f->relisted, 1) == 0) {
			log_info("s3://%s/%s changed while being read: %s; reads of the rest of "
				 "this open file fail with ESTALE, a new open reads the new version",
				 f->rr->cfg->bucket, f->key, why);
			struct stat unused;
			rd_shadow_relist(f->rr, f->rest, &began, &unused);
		}
		return rc;
	}
	if (rc < 0 && rc != -ECANCELED)
		log_warn("GET s3://%s/%s bytes %llu-%llu failed: %s", f->rr->cfg->bucket, f->key,
			 (unsigned long long)off, (unsigned long long)(off + len - 1), why);
	if (rc == 0 && f->windowed) {
		pthread_mutex_lock(&f->wlock);
		f->resident++;
		f->used[c] = ++f->tick;
		pthread_mutex_unlock(&f->wlock);
	}
	/* A cancelled GET (the process exits) says nothing about the object. */
	atomic_store(&f->map->state[c], rc == 0 ? PRESENT : rc == -ECANCELED ? 0 : FAILED | now_s());
	wake_all(f->map);
	return rc;
}

/* Windowed mode: punches out least recently used, unpinned chunks beyond the budget. */
static void evict_chunks(rd_file *f)
{
	for (;;) {
		pthread_mutex_lock(&f->wlock);
		long victim = -1;
		if (f->resident > f->max_resident) {
			for (uint32_t c = 0; c < f->map->nchunks; c++)
				if (!f->pins[c] && atomic_load(&f->map->state[c]) == PRESENT &&
				    (victim < 0 || f->used[c] < f->used[victim]))
					victim = c;
		}
		if (victim >= 0) {
			atomic_store(&f->map->state[victim], EVICTING);
			f->resident--;
		}
		pthread_mutex_unlock(&f->wlock);
		if (victim < 0)
			return;
		off_t off = (off_t)victim * CHUNK;
		fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, CHUNK);
		rd_count(f->rr, RD_C_evictions, 1);
		atomic_store(&f->map->state[victim], 0);
		wake_all(f->map);
	}
}

/* Windowed mode: pins chunk c if it is present. Returns 1 when pinned. */
static int pin_if_present(rd_file *f, uint32_t c)
{
	pthread_mutex_lock(&f->wlock);
	int ok = atomic_load(&f->map->state[c]) == PRESENT;
	if (ok) {
		f->pins[c]++;
		f->used[c] = ++f->tick;
	}
	pthread_mutex_unlock(&f->wlock);
	return ok;
}

typedef struct window_ahead {
	rd_file *f;
	uint32_t first, count;
} window_ahead;

static void readahead_job(void *arg)
{
	window_ahead *ra = arg;
	uint32_t me = (uint32_t)getpid();
	for (uint32_t c = ra->first; c < ra->first + ra->count && c < ra->f->map->nchunks; c++) {
		uint32_t s = 0;
		if (atomic_compare_exchange_strong(&ra->f->map->state[c], &s, me))
			fetch_chunk(ra->f, c);
	}
	evict_chunks(ra->f);
	file_unref(ra->f);
	free(ra);
}

static void start_readahead(rd_file *f, uint32_t after)
{
	if (after + 1 >= f->map->nchunks || atomic_load(&f->map->state[after + 1]) != 0)
		return;
	window_ahead *ra = malloc(sizeof *ra);
	if (!ra)
		return;
	*ra = (window_ahead){ .f = f, .first = after + 1, .count = WINDOW_READAHEAD };
	atomic_fetch_add(&f->refs, 1);
	if (rd_pool_submit(readahead_job, ra) < 0) {
		atomic_fetch_sub(&f->refs, 1);
		free(ra);
	}
}

/* True when claim s (a pid) on a chunk will never be completed where this process can see
 * it: the process died, or the map is a windowed file's private memory and the claim is
 * another pid's, i.e. our parent's from before a fork (its progress is invisible here). */
static int claim_lost(const rd_file *f, uint32_t s, uint32_t me)
{
	return s != 0 && s != me && (f->windowed || !alive(s));
}

/* Claims a chunk nobody is fetching, taking over lost claims. Returns the chunk, or -1
 * when every chunk is present or claimed. */
static long claim_next(rd_file *f, uint32_t me)
{
	for (uint32_t c = 0; c < f->map->nchunks && !atomic_load(&f->map->stale); c++) {
		uint32_t s = atomic_load(&f->map->state[c]);
		if (s == PRESENT || failed_recently(s))
			continue;
		if (is_failure(s) || claim_lost(f, s, me)) {
			uint32_t dead = s;
			atomic_compare_exchange_strong(&f->map->state[c], &dead, 0);
			s = 0;
		}
		if (s == 0 && atomic_compare_exchange_strong(&f->map->state[c], &s, me))
			return c;
	}
	return -1;
}

static int all_present(const rd_map *m)
{
	for (uint32_t c = 0; c < m->nchunks; c++)
		if (atomic_load(&m->state[c]) != PRESENT)
			return 0;
	return 1;
}

/* Publishes the filled file under its final name (once, whichever process gets there). */
/* Beside a filling object's final name: its data (.part), chunk map (.map) and the lock
 * file that opens and finish() hold (.lock). */
typedef struct fill_paths {
	char part[PATH_MAX + 8], map[PATH_MAX + 8], lock[PATH_MAX + 8];
} fill_paths;

static void fill_paths_of(const rd_file *f, fill_paths *p)
{
	snprintf(p->part, sizeof p->part, "%s.part", f->final);
	snprintf(p->map, sizeof p->map, "%s.map", f->final);
	snprintf(p->lock, sizeof p->lock, "%s.lock", f->final);
}

static void finish(rd_file *f)
{
	if (rd_complete(f) || !all_present(f->map))
		return;
	fill_paths p = { .part = "" };
	fill_paths_of(f, &p);
	/* Under the lock that opens take: an opener between our rename and our unlink would
	 * find no .part and either fail (ENOENT) or create an empty one beside a stale map. */
	int lfd = rd_lock(p.lock);
	if (access(f->final, F_OK) != 0 && rename(p.part, f->final) == 0) {
		unlink(p.map);
		log_debug("filled s3://%s/%s (%llu bytes)", f->rr->cfg->bucket, f->key,
			  (unsigned long long)f->size);
	}
	if (lfd >= 0)
		rd_unlock(lfd);
	atomic_store_explicit(&f->complete, 1, memory_order_release);
}

static void fill_job(void *arg)
{
	rd_file *f = arg;
	uint32_t me = (uint32_t)getpid();
	long c;
	while ((c = claim_next(f, me)) >= 0)
		fetch_chunk(f, (uint32_t)c);
	finish(f);
	file_unref(f);
}

/* Windowed mode: gives back the pins rd_wait took on chunks [first, end). */
static void unpin(rd_file *f, uint32_t first, uint32_t end)
{
	if (!f->windowed || first >= end)
		return;
	pthread_mutex_lock(&f->wlock);
	for (uint32_t c = first; c < end; c++)
		if (f->pins[c])
			f->pins[c]--;
	pthread_mutex_unlock(&f->wlock);
}

void rd_done(rd_file *f, uint64_t off, uint64_t len)
{
	if (!f->windowed || len == 0 || off >= f->size)
		return;
	uint64_t end = len > f->size - off ? f->size : off + len;
	unpin(f, (uint32_t)(off / CHUNK), (uint32_t)((end - 1) / CHUNK) + 1);
	evict_chunks(f);
}

/* Waits until chunk c is present (and pinned, windowed). Returns 0 or -errno. */
static int wait_chunk(rd_file *f, uint32_t c, uint32_t me)
{
	for (;;) {
		uint32_t seen = atomic_load(&f->map->seq);
		uint32_t s = atomic_load(&f->map->state[c]);
		if (s == PRESENT && (!f->windowed || pin_if_present(f, c)))
			return 0;
		if (atomic_load(&f->map->stale))
			return -ESTALE;
		if (s == PRESENT || s == EVICTING) {
			wait_change(f->map, seen);
			continue;
		}
		if (failed_recently(s))
			return -EIO;
		if (is_failure(s)) { /* long enough ago: try again */
			atomic_compare_exchange_strong(&f->map->state[c], &s, 0);
			continue;
		}
		if (s == 0) {
			/* Needed now and nobody is on it: fetch it on this thread. */
			if (atomic_compare_exchange_strong(&f->map->state[c], &s, me)) {
				int rc = fetch_chunk(f, c);
				if (rc < 0 && rc != -ESTALE)
					return rc == -ENOENT ? -EIO : rc;
			}
			continue;
		}
		if (claim_lost(f, s, me)) {
			atomic_compare_exchange_strong(&f->map->state[c], &s, 0);
			continue;
		}
		wait_change(f->map, seen);
	}
}

int rd_wait(rd_file *f, uint64_t off, uint64_t len)
{
	if (rd_complete(f) || len == 0 || off >= f->size)
		return 0;
	uint64_t end = len > f->size - off ? f->size : off + len;
	uint32_t me = (uint32_t)getpid();
	uint32_t first = (uint32_t)(off / CHUNK), last = (uint32_t)((end - 1) / CHUNK);
	for (uint32_t c = first; c <= last; c++) {
		int rc = wait_chunk(f, c, me);
		if (rc < 0) {
			unpin(f, first, c);
			return rc;
		}
	}
	if (f->windowed) {
		start_readahead(f, last);
		evict_chunks(f);
		return 0;
	}
	finish(f);
	return 0;
}

/* Sets f up for windowed reading: a private file nobody else can see, already unlinked. */
static int windowed_open(rd_file *f, int keep)
{
	char tmp[PATH_MAX + 64];
	snprintf(tmp, sizeof tmp, "%s/%s.w.%d.%ld", f->rr->tmp, strrchr(f->final, '/') + 1,
		 (int)getpid(), (long)syscall(SYS_gettid));
	f->fd = open(tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (f->fd < 0)
		return -errno;
	unlink(tmp);
	if (ftruncate(f->fd, (off_t)f->size) < 0)
		return -errno;
	uint32_t n = (uint32_t)((f->size + CHUNK - 1) / CHUNK);
	f->windowed = 1;
	pthread_mutex_init(&f->wlock, NULL);
	pthread_mutex_lock(&windows.lock);
	f->wnext = windows.head;
	if (windows.head)
		windows.head->wprev = f;
	windows.head = f;
	pthread_mutex_unlock(&windows.lock);
	f->maplen = map_len(n);
	f->map = calloc(1, f->maplen);
	f->pins = calloc(n, sizeof *f->pins);
	f->used = calloc(n, sizeof *f->used);
	if (!f->map || !f->pins || !f->used)
		return -ENOMEM;
	f->map->chunk = CHUNK;
	f->map->size = f->size;
	f->map->nchunks = n;
	f->map->magic = MAP_MAGIC;
	uint64_t budget_chunks = f->rr->cfg->cache_bytes / CHUNK;
	f->max_resident = budget_chunks > WINDOW_MIN_CHUNKS ? (uint32_t)budget_chunks
							   : WINDOW_MIN_CHUNKS;
	/* The program reads through its own read-only description of the same file. */
	return rd_reopen(f->fd, keep);
}

/* Opens (creating if needed) the .part file and the chunk map. Caller holds the lock. */
static int attach(rd_file *f, const fill_paths *at)
{
	f->fd = open(at->part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (f->fd < 0)
		return -errno;
	struct stat st;
	if (fstat(f->fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size != f->size && ftruncate(f->fd, (off_t)f->size) < 0)
		return -errno;
	uint32_t n = (uint32_t)((f->size + CHUNK - 1) / CHUNK);
	f->maplen = map_len(n);
	int mfd = open(at->map, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (mfd < 0)
		return -errno;
	int fresh = fstat(mfd, &st) == 0 && st.st_size == 0;
	if (fresh && ftruncate(mfd, (off_t)f->maplen) < 0) {
		close(mfd);
		return -errno;
	}
	void *p = mmap(NULL, f->maplen, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	close(mfd);
	if (p == MAP_FAILED)
		return -errno;
	f->map = p;
	if (fresh || f->map->magic != MAP_MAGIC || f->map->nchunks != n || f->map->size != f->size) {
		memset(f->map, 0, f->maplen);
		f->map->chunk = CHUNK;
		f->map->size = f->size;
		f->map->nchunks = n;
		f->map->magic = MAP_MAGIC;
	}
	return 0;
}

int rd_lazy_open(rd_route *rr, const char *key, const char *rest, const char *etag,
		 const struct stat *st, int flags, rd_file **out)
{
	*out = NULL;
	int keep = flags & (O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	rd_file *f = calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	atomic_init(&f->refs, 1);
	f->fd = -1;
	f->rr = rr;
	f->size = (uint64_t)st->st_size;
	snprintf(f->key, sizeof f->key, "%s", key);
	snprintf(f->etag, sizeof f->etag, "%s", etag);
	int rc = -ENOMEM;
	if (!(f->rest = strdup(rest)))
		goto on_error;
	rc = rd_obj_path(rr, key, etag, st, f->final, sizeof f->final);
	if (rc < 0)
		goto on_error;
	if (f->size > rr->cfg->cache_bytes) {
		int wfd = windowed_open(f, keep);
		if (wfd < 0) {
			rc = wfd;
			goto on_error;
		}
		*out = f;
		return wfd;
	}
	int fd = open(f->final, O_RDONLY | keep);
	if (fd >= 0) { /* filled earlier: an ordinary complete file */
		file_unref(f);
		rd_count(rr, RD_C_cache_hits, 1);
		rd_count(rr, RD_C_bytes_cache, (int64_t)st->st_size);
		return fd;
	}
	fill_paths p = { .part = "" };
	fill_paths_of(f, &p);
	int lfd = rd_lock(p.lock);
	if (lfd < 0) {
		rc = lfd;
		goto on_error;
	}
	fd = open(f->final, O_RDONLY | keep);
	if (fd < 0) {
		rc = attach(f, &p);
		if (rc == 0 && (fd = open(p.part, O_RDONLY | keep)) < 0)
			rc = -errno;
		/* A filler found that this version was overwritten: the caller lists again. */
		if (rc == 0 && atomic_load(&f->map->stale)) {
			close(fd);
			rc = -ESTALE;
		}
	}
	rd_unlock(lfd);
	if (rc < 0)
		goto on_error;
	if (!f->map) { /* completed by another process while we waited for the lock */
		file_unref(f);
		return fd;
	}
	rd_cache_added(rr, f->size);
	/* Background fill; readers claim what they need first on their own threads. */
	unsigned fillers = rr->cfg->prefetch_concurrency < FILLERS_PER_FILE
				   ? rr->cfg->prefetch_concurrency : FILLERS_PER_FILE;
	uint32_t nchunks = f->map->nchunks;
	for (unsigned i = 0; i < fillers && i < nchunks; i++) {
		/* Each job holds a reference; the caller's own keeps f alive meanwhile, so a job
		 * that could not be queued just gives its reference back. */
		atomic_fetch_add(&f->refs, 1);
		if (rd_pool_submit(fill_job, f) < 0)
			atomic_fetch_sub(&f->refs, 1);
	}
	*out = f;
	return fd;
on_error:
	file_unref(f);
	return rc;
}
