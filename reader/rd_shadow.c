/* The shadow tree: a directory's listing, materialized as real directories and sparse
 * placeholder files that carry each object's size and mtime.
 *
 * A listing is shared by every process through the cache: lists/<hash> is its stamp (its
 * mtime says when the directory was listed) and lists/<hash>.lock serializes listing, so a
 * pool of freshly forked workers lists each directory once, not once per worker. Each
 * process also remembers what it validated, so a hot directory costs no syscall at all. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/clock.h"
#include "common/log.h"
#include "reader/rd_priv.h"
#include "router/rt.h"

typedef struct listing_item {
	char *name;
	uint64_t size;
	time_t mtime;
	int is_dir;
	char etag[80];
} listing_item;

typedef struct listing {
	size_t prefix_len;
	listing_item *items;
	size_t n, cap;
	int failed;
	int exists;     /* keys below the prefix, even if none became an entry */
} listing;

int rd_usable_name(const char *name, size_t len)
{
	if (len == 0 || len > NAME_MAX || memchr(name, '/', len))
		return 0;
	return !(len == 1 && name[0] == '.') && !(len == 2 && name[0] == '.' && name[1] == '.');
}

static int collect(void *arg, const s3_list_entry *e)
{
	listing *l = arg;
	size_t klen = strlen(e->key);
	/* Something is below the prefix, so the directory exists, even when it is only the
	 * "directory marker" object named like the prefix itself (the S3 console's "Create
	 * folder") or keys that cannot be file names ("d//x"): it is then an empty directory,
	 * not one that its parent lists and that gives ENOENT. */
	l->exists = 1;
	if (klen <= l->prefix_len)
		return 0;
	const char *name = e->key + l->prefix_len;
	size_t len = klen - l->prefix_len - (e->is_prefix ? 1 : 0);
	if (!rd_usable_name(name, len)) {
		log_debug("listing: skipping key %s (not a usable file name)", e->key);
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		listing_item *p = realloc(l->items, cap * sizeof *p);
		if (!p) {
			l->failed = 1;
			return -ENOMEM;
		}
		l->items = p;
		l->cap = cap;
	}
	listing_item *it = &l->items[l->n];
	it->name = strndup(name, len);
	if (!it->name) {
		l->failed = 1;
		return -ENOMEM;
	}
	it->size = e->size;
	it->mtime = e->mtime;
	it->is_dir = e->is_prefix;
	/* An ETag is hex (with "-N" for multipart); anything else is not used as a name. */
	size_t elen = e->etag ? strspn(e->etag, "0123456789abcdefABCDEF-") : 0;
	if (e->etag && elen > 0 && e->etag[elen] == '\0' && elen < sizeof it->etag)
		memcpy(it->etag, e->etag, elen + 1);
	else
		it->etag[0] = '\0';
	l->n++;
	return 0;
}

static void listing_free(listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].name);
	free(l->items);
}

/* The listing is being made again from the start (the fetch agent went away). */
static void listing_restart(void *arg)
{
	listing *l = arg;
	listing_free(l);
	*l = (listing){ .prefix_len = l->prefix_len };
}

typedef struct name_seen {
	char *name;
	int is_dir;
	int keep;
	UT_hash_handle hh;
} name_seen;

static void create_placeholder(int dfd, const listing_item *it)
{
	int fd = openat(dfd, it->name, O_CREAT | O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_warn("shadow: cannot create %s: %s", it->name, strerror(errno));
		return;
	}
	/* Sparse: the size costs no memory. */
	if (ftruncate(fd, (off_t)it->size) < 0)
		log_warn("shadow: cannot size %s: %s", it->name, strerror(errno));
	struct timespec t[2] = { { .tv_sec = it->mtime }, { .tv_sec = it->mtime } };
	futimens(fd, t);
	close(fd);
}

/* Makes directory d hold exactly the listing: adds, updates and removes entries in place,
 * leaving already listed sub-directories (and their contents) alone. */
static int apply(const char *d, listing *l)
{
	int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	name_seen *seen = NULL, *s, *tmp;
	/* A second descriptor for reading entries: fdopendir takes ownership of it. */
	int rfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = rfd >= 0 ? fdopendir(rfd) : NULL;
	struct dirent *de;
	while (dir && (de = readdir(dir)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		s = calloc(1, sizeof *s);
		if (!s || !(s->name = strdup(de->d_name))) {
			free(s);
			break;
		}
		s->is_dir = de->d_type == DT_DIR;
		HASH_ADD_KEYPTR(hh, seen, s->name, strlen(s->name), s);
	}
	if (dir)
		closedir(dir);
	else if (rfd >= 0)
		close(rfd);

	time_t newest = 0;
	/* Prefixes first: a name that is both an object and a prefix is shown as a directory. */
	for (size_t i = 0; i < l->n; i++) {
		listing_item *it = &l->items[i];
		if (!it->is_dir)
			continue;
		HASH_FIND_STR(seen, it->name, s);
		if (s && !s->is_dir) {
			unlinkat(dfd, it->name, 0);
			s->keep = 1;
			s = NULL;
		}
		if (!s) {
			if (mkdirat(dfd, it->name, 0755) < 0 && errno != EEXIST)
				log_warn("shadow: cannot create directory %s: %s", it->name,
					 strerror(errno));
		} else {
			s->keep = 1;
		}
	}
	/* Created last-first: tmpfs returns the newest entry first, so readdir (and find, ls -f)
	 * then see the store's key order, the order prefetch follows. */
	for (size_t i = l->n; i-- > 0;) {
		listing_item *it = &l->items[i];
		if (it->is_dir)
			continue;
		if (it->mtime > newest)
			newest = it->mtime;
		HASH_FIND_STR(seen, it->name, s);
		if (s && s->is_dir) {
			if (!s->keep)
				log_debug("shadow: %s is both an object and a prefix; showing the prefix",
					  it->name);
			s->keep = 1;
			continue;
		}
		if (s) {
			s->keep = 1;
			struct stat st;
			if (fstatat(dfd, it->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    (uint64_t)st.st_size == it->size && st.st_mtime == it->mtime)
				continue;
		}
		create_placeholder(dfd, it);
	}
	HASH_ITER(hh, seen, s, tmp) {
		if (!s->keep) {
			if (s->is_dir) {
				fs_rm_rf_at(dfd, s->name);
			} else {
				unlinkat(dfd, s->name, 0);
			}
		}
		HASH_DEL(seen, s);
		free(s->name);
		free(s);
	}
	if (newest) {
		struct timespec t[2] = { { .tv_sec = newest }, { .tv_sec = newest } };
		futimens(dfd, t);
	}
	close(dfd);
	return 0;
}

/* lists/<hash of dir> (+ suffix). */
static void list_file(const rd_route *rr, const char *dir, const char *suffix, char *out,
		      size_t cap)
{
	char h[33];
	rd_hash(h, 32, "dir", dir, NULL);
	int n = snprintf(out, cap, "%s/%s%s", rr->lists, h, suffix);
	if (n < 0 || (size_t)n >= cap)
		out[0] = '\0'; /* cannot happen: lists/ is far shorter than PATH_MAX */
}

/* Files of the listing in key order, with their ETags: "size etag name\0" records ("-" for
 * no ETag). They name cached data and guide prefetch. */
static void write_order(const rd_route *rr, const char *dir, const listing *l)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32];
	list_file(rr, dir, ".order", path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	for (size_t i = 0; i < l->n; i++)
		if (!l->items[i].is_dir)
			fprintf(f, "%llu %s %s%c", (unsigned long long)l->items[i].size,
				l->items[i].etag[0] ? l->items[i].etag : "-", l->items[i].name, '\0');
	if (fclose(f) == 0)
		rename(tmp, path);
	else
		unlink(tmp);
}

/* Records that dir's listing, whose stamp file is stamp, is fresh now. The order loaded from
 * an earlier listing is dropped (a new one may differ), but not when the stamp is the one it
 * was loaded under: a hundred threads opening their first file of a directory at once each
 * found it not yet known and came here, and each reloaded its 5000-entry order. */
static void remember(rd_route *rr, const char *dir, const char *stamp)
{
	struct stat st;
	struct timespec at = { 0, 0 };
	if (stat(stamp, &st) == 0)
		at = st.st_mtim;
	pthread_mutex_lock(&rr->lock);
	rd_listed *l = rd_listed_find(rr, dir);
	if (!l && (l = calloc(1, sizeof *l)) != NULL) {
		if ((l->dir = strdup(dir)) != NULL)
			HASH_ADD_KEYPTR(hh, rr->listed, l->dir, strlen(l->dir), l);
		else {
			free(l);
			l = NULL;
		}
	} else if (l && (at.tv_sec == 0 || at.tv_sec != l->stamp.tv_sec ||
			   at.tv_nsec != l->stamp.tv_nsec)) {
		for (size_t i = 0; i < l->nfiles; i++)
			free(l->files[i].name);
		free(l->files);
		free(l->queued);
		l->files = NULL;
		l->queued = NULL;
		l->nfiles = 0;
		l->order_loaded = 0;
	}
	if (l) {
		l->at_ms = clock_ms();
		l->stamp = at;
	}
	pthread_mutex_unlock(&rr->lock);
}

static int list_now(rd_route *rr, const char *dir)
{
	char prefix[RT_KEY_MAX + 2];
	long plen = rt_object_key(rr->cfg, dir, 1, prefix, sizeof prefix);
	if (plen < 0)
		return (int)plen;
	listing l = { .prefix_len = (size_t)plen };
	char why[512];
	int rc = rd_store_list(rr, prefix, "/", collect, listing_restart, &l, why, sizeof why);
	if (rc < 0 || l.failed) {
		if (rc != -ECANCELED) /* exiting: not worth a warning */
			log_warn("read route %s: listing s3://%s/%s failed: %s", rr->cfg->local,
				 rr->cfg->bucket, prefix, l.failed ? "out of memory" : why);
		listing_free(&l);
		return rc < 0 ? rc : -ENOMEM;
	}
	char d[PATH_MAX];
	int dn = snprintf(d, sizeof d, "%s%s%s", rr->tree, dir[0] ? "/" : "", dir);
	if (dn < 0 || (size_t)dn >= sizeof d) {
		listing_free(&l);
		return -ENAMETOOLONG;
	}
	struct stat dst;
	if (!l.exists && dir[0]) {
		/* No object has this prefix (any more): the directory does not exist. */
		if (lstat(d, &dst) == 0 && S_ISDIR(dst.st_mode))
			fs_rm_rf(d);
	} else {
		rc = fs_mkdir_p(d, 0755);
		if (rc == 0)
			rc = apply(d, &l);
	}
	if (rc == 0)
		write_order(rr, dir, &l);
	log_debug("listed s3://%s/%s: %zu entries", rr->cfg->bucket, prefix, l.n);
	listing_free(&l);
	return rc;
}

/* True when this process validated dir's listing within the TTL. */
static int known_fresh(rd_route *rr, const char *dir)
{
	pthread_mutex_lock(&rr->lock);
	rd_listed *known = rd_listed_find(rr, dir);
	int fresh = known && clock_ms() - known->at_ms < rr->cfg->listing_ttl_ms;
	pthread_mutex_unlock(&rr->lock);
	return fresh;
}

int rd_shadow_lstat(const rd_route *rr, const char *rest, struct stat *st)
{
	char shadow[PATH_MAX];
	int n = snprintf(shadow, sizeof shadow, "%s/%s", rr->tree, rest);
	if (n < 0 || (size_t)n >= sizeof shadow)
		return -ENAMETOOLONG;
	return lstat(shadow, st) == 0 ? 0 : -errno;
}

/* The directory part of route-relative rest ("" for the route root) into out. */
static void parent_of(const char *rest, char *out, size_t cap)
{
	const char *slash = strrchr(rest, '/');
	snprintf(out, cap, "%.*s", slash ? (int)(slash - rest) : 0, rest);
}

/* Makes sure dir's listing is materialized and was made less than ttl ms ago. */
static int ensure_listed(rd_route *rr, const char *dir, uint32_t ttl)
{
	char stamp[PATH_MAX], lockpath[PATH_MAX + 8];
	list_file(rr, dir, "", stamp, sizeof stamp);
	if (rd_stamp_fresh(stamp, ttl)) {
		remember(rr, dir, stamp);
		return 0;
	}
	snprintf(lockpath, sizeof lockpath, "%s.lock", stamp);
	int lfd = rd_lock(lockpath);
	if (lfd < 0)
		return lfd;
	int rc = 0;
	if (!rd_stamp_fresh(stamp, ttl)) {
		rc = list_now(rr, dir);
		if (rc == 0)
			rd_stamp_touch(stamp);
	}
	if (rc == 0)
		remember(rr, dir, stamp);
	rd_unlock(lfd);
	return rc;
}

/* Makes sure directory dir exists in the shadow and is listed. Ancestors are validated from
 * the root down, so only directories known to exist are ever listed: a path through a file
 * is -ENOTDIR and a path through nothing -ENOENT, as the kernel would say. */
static int ensure_dir(rd_route *rr, const char *dir)
{
	if (known_fresh(rr, dir))
		return 0;
	char prefix[PATH_MAX];
	size_t len = strlen(dir);
	if (len >= sizeof prefix)
		return -ENAMETOOLONG;
	/* end walks the component boundaries: 0 is the route root, then each '/', then len. */
	for (size_t end = 0;; end++) {
		if (end > 0 && end < len && dir[end] != '/')
			continue;
		snprintf(prefix, sizeof prefix, "%.*s", (int)end, dir);
		if (!known_fresh(rr, prefix)) {
			if (end > 0) {
				struct stat st;
				int rc = rd_shadow_lstat(rr, prefix, &st);
				if (rc < 0)
					return rc == -ENAMETOOLONG ? rc : -ENOENT;
				if (!S_ISDIR(st.st_mode))
					return -ENOTDIR;
			}
			int rc = ensure_listed(rr, prefix, rr->cfg->listing_ttl_ms);
			if (rc < 0)
				return rc;
		}
		if (end >= len)
			return 0;
	}
}

int rd_shadow(const cfg_route *r, const char *rest, int list_self, char *out, size_t cap)
{
	rd_route *rr = rd_route_of(r);
	int rc = rd_route_prepare(rr);
	if (rc < 0)
		return rc;
	size_t len = strlen(rest);
	if (rr->tree_len + 1 + len + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(out, rr->tree, rr->tree_len);
	if (len) {
		out[rr->tree_len] = '/';
		memcpy(out + rr->tree_len + 1, rest, len + 1);
		char parent[PATH_MAX];
		parent_of(rest, parent, sizeof parent);
		rc = ensure_dir(rr, parent);
		if (rc < 0)
			return rc;
	} else {
		out[rr->tree_len] = '\0';
	}
	if (list_self) {
		struct stat st;
		if (!len || (lstat(out, &st) == 0 && S_ISDIR(st.st_mode)))
			rc = ensure_dir(rr, rest);
	}
	return rc;
}

int rd_shadow_relist(rd_route *rr, const char *rest, const struct timespec *since,
		     struct stat *st)
{
	char dir[PATH_MAX];
	parent_of(rest, dir, sizeof dir);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t ms = (int64_t)(now.tv_sec - since->tv_sec) * 1000 +
		     (now.tv_nsec - since->tv_nsec) / 1000000;
	/* A listing made after since already knows the version that replaced ours. */
	int rc = ensure_listed(rr, dir, ms > 0 ? (uint32_t)ms : 0);
	if (rc < 0)
		return rc;
	struct stat now_st;
	if ((rc = rd_shadow_lstat(rr, rest, &now_st)) < 0)
		return rc;
	if (!S_ISREG(now_st.st_mode))
		return -EISDIR;
	st->st_size = now_st.st_size;
	st->st_mtim = now_st.st_mtim;
	st->st_dev = now_st.st_dev;
	st->st_ino = now_st.st_ino;
	return 0;
}

rd_listed *rd_listed_find(rd_route *rr, const char *dir)
{
	rd_listed *l = NULL;
	HASH_FIND_STR(rr->listed, dir, l);
	return l;
}

static int by_name(const void *key, const void *elem)
{
	return strcmp(key, ((const rd_entry *)elem)->name);
}

rd_entry *rd_listed_entry(const rd_listed *l, const char *name)
{
	/* S3 lists keys in byte order, which is strcmp order of the names. */
	return l->nfiles ? bsearch(name, l->files, l->nfiles, sizeof *l->files, by_name) : NULL;
}

void rd_etag_of(rd_route *rr, const char *rest, char *etag)
{
	etag[0] = '\0';
	const char *slash = strrchr(rest, '/');
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - rest) : 0, rest);
	pthread_mutex_lock(&rr->lock);
	rd_listed *l = rd_listed_find(rr, dir);
	rd_entry *e = l && rd_listed_load_order(rr, l) == 0 ? rd_listed_entry(l, slash ? slash + 1 : rest)
							    : NULL;
	if (e)
		memcpy(etag, e->etag, sizeof e->etag);
	pthread_mutex_unlock(&rr->lock);
}

int rd_listed_load_order(rd_route *rr, rd_listed *l)
{
	if (l->order_loaded)
		return 0;
	l->order_loaded = 1;
	char path[PATH_MAX];
	list_file(rr, l->dir, ".order", path, sizeof path);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char *rec = NULL;
	size_t cap = 0;
	size_t alloc = 0;
	while (getdelim(&rec, &cap, '\0', f) > 0) {
		char *sp = strchr(rec, ' ');
		char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
		if (!sp2 || sp2 - sp - 1 >= 80)
			continue;
		if (l->nfiles == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			rd_entry *p = realloc(l->files, alloc * sizeof *p);
			if (!p)
				break;
			l->files = p;
		}
		rd_entry *e = &l->files[l->nfiles];
		e->size = strtoull(rec, NULL, 10);
		size_t elen = (size_t)(sp2 - sp - 1);
		memcpy(e->etag, sp + 1, elen);
		e->etag[elen] = '\0';
		if (strcmp(e->etag, "-") == 0)
			e->etag[0] = '\0';
		e->name = strdup(sp2 + 1);
		if (e->name)
			l->nfiles++;
	}
	free(rec);
	fclose(f);
	l->queued = calloc(l->nfiles ? l->nfiles : 1, 1);
	l->last_open = -1;
	l->near_opens = 0;
	return l->queued ? 0 : -ENOMEM;
}
