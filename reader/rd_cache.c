/* Object data in the cache: obj/<hash of key, size, mtime>, published atomically (written in
 * tmp/, renamed into obj/) so no process ever sees a partial file under its final name. One
 * process downloads an object while the others wait on its lock file and then use it. The
 * access time orders eviction beyond the route's budget; admission keeps that order from
 * being flushed by a scan larger than the budget (see "Admission" below). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "reader/rd_agent.h"
#include "reader/rd_priv.h"

_Thread_local uint64_t rd_evicted_by_thread;

/* Admission. Under plain LRU an epoch that reads more than the budget, in any order, evicts
 * each object before its next read: the second epoch of a data set four times the cache
 * found 0% of it cached. So an object downloaded while the cache is full enters on
 * probation: its access time is set a day back, which puts it ahead of every object read
 * in the last day in the eviction order, and the objects that were there (the resident
 * set) stay to be read again. A probationer read a second time while still cached has
 * shown reuse and becomes resident (the 2Q idea); reads through the agent's prefetch make
 * the first read the one after the download, so the state lives in the file, for every
 * process: mode 0400 downloaded, 0440 read once, owner-writable resident (as created).
 * Every RESIDENT_EVERY-th object admitted while full enters resident anyway, so a resident
 * set that is no longer read (another data set now) is replaced over tens of epochs instead
 * of never (BIP, Qureshi et al. 2007); objects untouched for a day age out too. The cost: a
 * data set that fits the cache but arrives while the cache is full of another one, and is
 * larger than the tenth eviction keeps free, takes those epochs to be fully cached. */
#define PROBATION_NEW 0400
#define PROBATION_READ 0440
#define PROBATION_AGE_S (24 * 3600)
#define RESIDENT_EVERY 64
#define UNREAD_KEEP_S 60

static atomic_uint admitted_full;

int rd_obj_path(const rd_route *rr, const char *key, const char *etag, const struct stat *st,
		char *out, size_t cap)
{
	char version[160], name[41];
	if (etag && *etag)
		snprintf(version, sizeof version, "%s %lld", etag, (long long)st->st_size);
	else
		snprintf(version, sizeof version, "- %lld %lld", (long long)st->st_size,
			 (long long)st->st_mtim.tv_sec);
	rd_hash(name, 40, key, version, NULL);
	int n = snprintf(out, cap, "%s/%s", rr->obj, name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The route's cache size, shared by every process through root/usage, a small file each
 * maps: without it every new process scanned obj/ (a readdir and a stat per object, ~10 ms
 * at 8000 objects) before its first addition, which a pipeline of short-lived readers (one
 * `cat` per 50 files) paid once per process. Additions add to it and every scan resets it,
 * so it drifts only by what a process adds while another scans, or a crash leaves
 * uncounted, until the next scan (each process still scans after adding an eighth of the
 * budget). */
struct rd_usage {
	atomic_uint_fast64_t bytes;
	atomic_uint valid;      /* a scan has set bytes; 0 in a file just created */
};

static struct rd_usage *map_usage(const rd_route *rr);

/* The shared usage counter, mapped at the first need (NULL if it cannot be: then this
 * process keeps its own count, measured by a scan). Called with rr->lock held. */
static struct rd_usage *usage_locked(rd_route *rr)
{
	if (!rr->usage_tried) {
		rr->usage_tried = 1;
		rr->usage = map_usage(rr);
	}
	return rr->usage;
}

/* Whether adding bytes takes the cache past what eviction leaves (a tenth under the
 * budget): the point from which admission puts new objects on probation. */
static int cache_full(rd_route *rr, uint64_t bytes)
{
	uint64_t budget = rr->cfg->cache_bytes;
	pthread_mutex_lock(&rr->lock);
	struct rd_usage *u = usage_locked(rr);
	int known = rr->used_known || (u && atomic_load(&u->valid));
	uint64_t used = u ? atomic_load(&u->bytes) : rr->used;
	pthread_mutex_unlock(&rr->lock);
	return known && used + bytes > budget - budget / 10;
}

/* Opens path read-only without access-time updates: the access time is the eviction order,
 * kept by rd_cache_touch alone. Left to relatime, the first read of a probationer (its
 * access time older than its change time) would make it the newest object in the cache. */
static int open_noatime(const char *path, int oflags)
{
	int fd = open(path, O_RDONLY | O_NOATIME | oflags);
	if (fd < 0 && errno == EPERM) /* not the owner: a cache_dir we may only read */
		fd = open(path, O_RDONLY | oflags);
	return fd >= 0 ? fd : -errno;
}

/* Downloads version etag of the object into a private file in tmp/ and publishes it at
 * path. Unless oflags is -1, *out gets a read-only fd (with oflags) on it, opened before it
 * was published: another process's eviction may unlink it at once. -ESTALE: the key holds
 * another version now. */
static int download(rd_route *rr, const char *key, const char *etag, const struct stat *st,
		    const char *path, int oflags, int *out, uint64_t *got, char *why,
		    size_t whylen)
{
	char tmp[PATH_MAX + 64];
	const char *name = strrchr(path, '/') + 1;
	snprintf(tmp, sizeof tmp, "%s/%s.%d.%ld", rr->tmp, name, (int)getpid(),
		 (long)syscall(SYS_gettid));
	int fd = open(tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(why, whylen, "%s: %s", tmp, strerror(errno));
		return -errno;
	}
	*got = 0;
	int rc = 0;
	if (st->st_size > 0) {
		rc = rd_store_get(rr, key, etag, 0, S3_TO_END, fd, 0, got, NULL, why, whylen);
		/* The listed version has this size: anything else is another version (a store
		 * that ignores If-Match, a listing without ETags), which must not be published
		 * under this one's name. */
		if (rc == 0 && *got != (uint64_t)st->st_size) {
			rc = -ESTALE;
			snprintf(why, whylen, "%llu bytes where %llu were listed",
				 (unsigned long long)*got, (unsigned long long)st->st_size);
		}
	}
	*out = -1;
	if (rc == 0) {
		struct timespec t[2] = { { .tv_nsec = UTIME_NOW }, st->st_mtim };
		if (cache_full(rr, rd_cache_bytes(*got)) &&
		    atomic_fetch_add(&admitted_full, 1) % RESIDENT_EVERY != RESIDENT_EVERY - 1) {
			clock_gettime(CLOCK_REALTIME, &t[0]);
			t[0].tv_sec -= PROBATION_AGE_S;
			fchmod(fd, PROBATION_NEW);
		}
		futimens(fd, t);
		/* (the private file is ours: O_NOATIME cannot be refused) */
		if (oflags != -1 && (*out = rd_reopen(fd, oflags | O_NOATIME)) < 0) {
			rc = *out;
			snprintf(why, whylen, "%s: %s", tmp, strerror(-rc));
		}
	}
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0) {
		rc = -errno;
		snprintf(why, whylen, "publishing %s: %s", path, strerror(errno));
	}
	if (rc < 0) {
		unlink(tmp);
		if (*out >= 0)
			close(*out);
		*out = -1;
	}
	return rc;
}

/* Opens the published object (or, with oflags -1, only checks it exists). */
static int open_published(const char *path, int oflags)
{
	if (oflags == -1)
		return access(path, F_OK) == 0 ? 0 : -errno;
	return open_noatime(path, oflags);
}

/* The object at path, downloaded by this process under the cross-process lock unless it is
 * there. Returns the fd (0 for oflags -1) or -errno with why filled; *downloaded says
 * whether this call published it, *got what came from the store. */
static int fetch_here(rd_route *rr, const char *key, const char *etag, const struct stat *st,
		      const char *path, int oflags, int *downloaded, uint64_t *got, char *why,
		      size_t whylen)
{
	char lockpath[PATH_MAX + 8];
	snprintf(lockpath, sizeof lockpath, "%s.lock", path);
	*got = 0;
	*downloaded = 0;
	int lfd = rd_lock(lockpath);
	if (lfd < 0) {
		snprintf(why, whylen, "%s: %s", lockpath, strerror(-lfd));
		return lfd;
	}
	int rc = 0;
	int fd = open_published(path, oflags);
	if (fd < 0) {
		rc = download(rr, key, etag, st, path, oflags, &fd, got, why, whylen);
		*downloaded = rc == 0;
		if (rc == 0 && oflags == -1)
			fd = 0;
	}
	/* Once the object is published nobody needs this lock file again; a contender still
	 * waiting on it finds the object when it gets the lock. */
	if (rc == 0)
		unlink(lockpath);
	rd_unlock(lfd);
	if (*downloaded)
		rd_cache_added(rr, *got);
	return rc < 0 ? rc : fd;
}

int rd_fetch_for_agent(rd_route *rr, const char *key, const char *etag, const struct stat *st,
		       uint64_t *got, int *fetched, char *why, size_t whylen)
{
	char path[PATH_MAX];
	int rc = rd_obj_path(rr, key, etag, st, path, sizeof path);
	*fetched = 0;
	*got = 0;
	if (rc < 0) {
		snprintf(why, whylen, "cache path too long");
		return rc;
	}
	if (open_published(path, -1) == 0)
		return 0;
	return fetch_here(rr, key, etag, st, path, -1, fetched, got, why, whylen);
}

int rd_fetch_whole(rd_route *rr, const char *key, const char *etag, const struct stat *st,
		   int oflags, int *fetched)
{
	*fetched = 0;
	char path[PATH_MAX], why[512] = "";
	int rc = rd_obj_path(rr, key, etag, st, path, sizeof path);
	if (rc < 0)
		return rc;
	int fd = open_published(path, oflags);
	if (fd >= 0)
		return fd;
	/* Through the agent the download goes on if this process exits (a prefetch, a cat
	 * that is done): the next process finds it published. Eviction may come between the
	 * agent publishing the object and this open: then ask again. */
	uint64_t got = 0;
	for (int attempt = 0; attempt < 3; attempt++) {
		int agent_fetched = 0;
		uint64_t evicted = 0;
		rc = rd_agent_fetch(rr - rd.routes, key, etag, st, &got, &agent_fetched, &evicted,
				    why, sizeof why);
		if (rc == RD_AGENT_NONE)
			break;
		if (agent_fetched) {
			/* In this process's summary; the agent counts them node-wide, also when
			 * this process exits before the reply (a prefetch). As download() counts:
			 * an empty object needs no GET. */
			*fetched = 1;
			atomic_fetch_add(&rd.stats[RD_C_gets], st->st_size > 0);
			atomic_fetch_add(&rd.stats[RD_C_bytes_store], got);
			atomic_fetch_add(&rd.stats[RD_C_evictions], evicted);
		}
		if (rc < 0)
			goto failed;
		if ((fd = open_published(path, oflags)) >= 0 || fd != -ENOENT)
			return fd;
	}
	fd = fetch_here(rr, key, etag, st, path, oflags, fetched, &got, why, sizeof why);
	if (fd >= 0)
		return fd;
	rc = fd;
failed:
	if (rc == -ESTALE) /* the caller lists it again */
		log_debug("s3://%s/%s changed since it was listed: %s", rr->cfg->bucket, key, why);
	else if (rc != -ECANCELED) /* exiting: not worth a warning */
		log_warn("read route %s: GET s3://%s/%s failed: %s", rr->cfg->local,
			 rr->cfg->bucket, key, why);
	return rc;
}

typedef struct cached {
	char name[64];
	struct timespec atime;
	uint64_t bytes;
	ino_t ino;
	int evictable;
} cached;

static int by_atime(const void *a, const void *b)
{
	const cached *x = a, *y = b;
	if (x->atime.tv_sec != y->atime.tv_sec)
		return x->atime.tv_sec < y->atime.tv_sec ? -1 : 1;
	return (x->atime.tv_nsec > y->atime.tv_nsec) - (x->atime.tv_nsec < y->atime.tv_nsec);
}

static int by_ino(const void *a, const void *b)
{
	const cached *x = a, *y = b;
	return (x->ino > y->ino) - (x->ino < y->ino);
}

/* Keeps one entry per inode of all[0..n), n > 0; returns how many. A directory read while
 * others rename into it and unlink from it may list an entry twice (seen on tmpfs, Linux
 * 6.18: half of obj/'s 9,700 entries in one pass). Counted twice, the cache looks up to
 * twice its size and eviction takes it down to under half its budget. */
static size_t drop_repeats(cached *all, size_t n)
{
	qsort(all, n, sizeof *all, by_ino);
	size_t kept = 1;
	for (size_t i = 1; i < n; i++)
		if (all[i].ino != all[kept - 1].ino)
			all[kept++] = all[i];
	return kept;
}

/* Reads obj/: every complete object (evictable, oldest access first) and the total memory
 * held by all its files. */
static int scan(const rd_route *rr, cached **out, size_t *n, uint64_t *total)
{
	*out = NULL;
	*n = 0;
	*total = 0;
	DIR *d = opendir(rr->obj);
	if (!d)
		return -errno;
	cached *all = NULL;
	size_t cap = 0, count = 0;
	struct dirent *de;
	time_t now = time(NULL);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 256;
			cached *p = realloc(all, cap * sizeof *p);
			if (!p) {
				closedir(d);
				free(all);
				return -ENOMEM;
			}
			all = p;
		}
		cached *c = &all[count++];
		size_t len = strlen(de->d_name);
		/* Objects being filled (".part", ".map") and lock files are not evictable. */
		c->evictable = !strchr(de->d_name, '.') && len < sizeof c->name;
		if (c->evictable)
			memcpy(c->name, de->d_name, len + 1);
		c->atime = st.st_atim;
		/* Fetched ahead and not read yet: the reader wants it soon, so it is evicted
		 * last, unless it has waited longer than a read-ahead would (then first: its
		 * access time is a day back). Evicted in admission order, a read-ahead deeper
		 * than the room above the resident set would be thrown away before its read and
		 * fetched twice; the resident set gives way to it instead. */
		if ((st.st_mode & 07777) == PROBATION_NEW && st.st_ctim.tv_sec + UNREAD_KEEP_S > now)
			c->atime.tv_sec = INT64_MAX / 2;
		c->bytes = (uint64_t)st.st_blocks * 512;
		c->ino = st.st_ino;
	}
	closedir(d);
	if (count)
		count = drop_repeats(all, count);
	size_t evictable = 0;
	for (size_t i = 0; i < count; i++) {
		*total += all[i].bytes;
		if (all[i].evictable)
			all[evictable++] = all[i];
	}
	if (evictable)
		qsort(all, evictable, sizeof *all, by_atime);
	*out = all;
	*n = evictable;
	return 0;
}

void *rd_map_shared(const char *path, size_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	struct stat st;
	void *p = MAP_FAILED;
	/* Racing creators both extend it to the same size: the new bytes are zeros. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_size >= (off_t)size || ftruncate(fd, (off_t)size) == 0))
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static struct rd_usage *map_usage(const rd_route *rr)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/usage", rr->root);
	if (n < 0 || (size_t)n >= sizeof path)
		return NULL;
	return rd_map_shared(path, sizeof(struct rd_usage));
}

/* Deletes least recently used objects until the route is 10% under its budget. Files that
 * are open keep their data until closed; the next open fetches them again. */
static void evict(rd_route *rr)
{
	pthread_mutex_lock(&rr->lock);
	int busy = rr->evicting;
	if (!busy) {
		rr->evicting = 1;
		rr->since_scan = 0;
	}
	pthread_mutex_unlock(&rr->lock);
	if (busy)
		return; /* the running scan keeps this addition through since_scan */
	cached *all;
	size_t n;
	uint64_t total;
	uint64_t t0 = clock_ms();
	if (scan(rr, &all, &n, &total) < 0) {
		pthread_mutex_lock(&rr->lock);
		rr->evicting = 0;
		pthread_mutex_unlock(&rr->lock);
		return;
	}
	uint64_t budget = rr->cfg->cache_bytes;
	uint64_t target = total > budget ? budget - budget / 10 : total;
	uint64_t evicted = 0;
	for (size_t i = 0; i < n && total > target; i++) {
		char path[PATH_MAX + 64];
		snprintf(path, sizeof path, "%s/%s", rr->obj, all[i].name);
		if (unlink(path) == 0)
			evicted++;
		else if (errno != ENOENT) /* ENOENT: another process evicted it meanwhile */
			continue;
		total -= all[i].bytes;
	}
	free(all);
	rd_count(rr, RD_C_evictions, (int64_t)evicted);
	rd_evicted_by_thread += evicted;
	/* What other threads added while we scanned is not in total: keep it. */
	pthread_mutex_lock(&rr->lock);
	uint64_t meanwhile = rr->since_scan;
	rr->used = total + meanwhile;
	rr->used_known = 1;
	rr->evicting = 0;
	if (rr->usage) {
		atomic_store(&rr->usage->bytes, rr->used);
		atomic_store(&rr->usage->valid, 1);
	}
	pthread_mutex_unlock(&rr->lock);
	log_debug("read route %s: scanned the cache in %llu ms: %zu objects, %llu evicted, %llu "
		  "bytes left, %llu bytes added meanwhile", rr->cfg->local,
		  (unsigned long long)(clock_ms() - t0), n, (unsigned long long)evicted,
		  (unsigned long long)total, (unsigned long long)meanwhile);
}

void rd_cache_added(rd_route *rr, uint64_t size)
{
	uint64_t bytes = rd_cache_bytes(size);
	uint64_t budget = rr->cfg->cache_bytes;
	pthread_mutex_lock(&rr->lock);
	/* Mapped at the first addition, not at start-up: a process that only reads what is
	 * cached never needs it. */
	struct rd_usage *u = usage_locked(rr);
	rr->used += bytes;
	rr->since_scan += bytes;
	int known = rr->used_known;
	uint64_t used = rr->used;
	if (u) {
		used = atomic_fetch_add(&u->bytes, bytes) + bytes;
		known = known || atomic_load(&u->valid);
	}
	/* The count can drift (see struct rd_usage; without the shared one, other processes
	 * fill the cache unseen): after adding an eighth of the budget, scan again rather
	 * than trust it. */
	int over = known && (used > budget || rr->since_scan > budget / 8);
	int busy = rr->evicting;
	pthread_mutex_unlock(&rr->lock);
	/* Nobody has measured the cache yet: the first addition measures what is there (an
	 * earlier version, or processes without the shared count, may have left objects). */
	if ((over || !known) && !busy)
		evict(rr);
}

void rd_cache_touch(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return;
	mode_t m = st.st_mode & 07777;
	if (m == PROBATION_NEW) {
		fchmod(fd, PROBATION_READ); /* its access time stays a day back */
		return;
	}
	if (m == PROBATION_READ)
		fchmod(fd, 0600); /* read again while cached: resident */
	/* tmpfs' relatime would not keep the access time current. */
	const struct timespec now[2] = { { .tv_nsec = UTIME_NOW }, { .tv_nsec = UTIME_OMIT } };
	futimens(fd, now);
}

int64_t rd_cache_usage(const rd_route *rr)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/usage", rr->root);
	if (n < 0 || (size_t)n >= sizeof path)
		return -1;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct rd_usage u;
	ssize_t got = pread(fd, &u, sizeof u, 0);
	close(fd);
	return got == (ssize_t)sizeof u && atomic_load(&u.valid) ? (int64_t)atomic_load(&u.bytes)
								 : -1;
}
