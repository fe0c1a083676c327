/* The namespace of a write route: objects in the store merged with this process's pending
 * files (read-after-write), and prefixes as directories. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "uploader/up_priv.h"

/* Directories made with mkdir hold nothing in the store until a file lands in them; this
 * process remembers them so they stat as directories meanwhile. */
typedef struct vdir {
	char *hkey;
	UT_hash_handle hh;
} vdir;
static vdir *vdirs;

/* Adds the vdir of prefix (a key ending in '/') unless it exists. Caller holds up.lock.
 * Returns 0 or -ENOMEM. */
static int vdir_add(const up_route *ur, const char *prefix)
{
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, prefix, h, sizeof h);
	vdir *v = NULL;
	HASH_FIND_STR(vdirs, h, v);
	if (v)
		return 0;
	if (!(v = calloc(1, sizeof *v)) || !(v->hkey = strdup(h))) {
		free(v);
		return -ENOMEM;
	}
	HASH_ADD_KEYPTR(hh, vdirs, v->hkey, strlen(v->hkey), v);
	return 0;
}

/* The directory that held a key (or a directory, "a/b/") removed or renamed away stays until
 * rmdir, as on a disk, although the store has nothing left to show for it. Caller holds
 * up.lock. */
static void keep_parent(const up_route *ur, const char *key)
{
	char root[RT_KEY_MAX + 2], parent[RT_KEY_MAX + 2];
	size_t n = strlen(key);
	if (up_key(ur, "", 1, root, sizeof root) < 0 || n == 0 || n >= sizeof parent)
		return;
	memcpy(parent, key, n + 1);
	if (parent[n - 1] == '/')
		parent[--n] = '\0';
	char *slash = strrchr(parent, '/');
	if (!slash || (size_t)(slash + 1 - parent) <= strlen(root))
		return; /* the route root is always there */
	slash[1] = '\0';
	vdir_add(ur, parent);
}

static int count_entry(void *arg, const s3_list_entry *e)
{
	(void)e;
	(*(int *)arg)++;
	return 0;
}

/* Pending files whose key starts with prefix. Caller holds up.lock. */
static int pending_below(const up_route *ur, const char *prefix)
{
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, prefix, h, sizeof h);
	size_t n = strlen(h);
	for (up_file *f = up.pending; f; f = f->hh.next)
		if (strncmp(f->hkey, h, n) == 0)
			return 1;
	return 0;
}

/* Whether a vdir or a pending file is at or below prefix. Caller holds up.lock. */
static int local_below(const up_route *ur, const char *prefix)
{
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, prefix, h, sizeof h);
	size_t n = strlen(h);
	for (vdir *v = vdirs; v; v = v->hh.next)
		if (strncmp(v->hkey, h, n) == 0)
			return 1;
	return pending_below(ur, prefix);
}

typedef struct live_count {
	const up_route *ur;
	uint64_t since;
	int n;
} live_count;

static int count_live(void *arg, const s3_list_entry *e)
{
	live_count *l = arg;
	pthread_mutex_lock(&up.lock);
	if (!up_tomb_has(l->ur, e->key, l->since))
		l->n++;
	pthread_mutex_unlock(&up.lock);
	return 0;
}

/* Whether the store holds a key below prefix that no tombstone (for a view at since) hides.
 * With no tombstone below prefix one key answers; otherwise every key below is looked at.
 * Caller holds up.lock; it is released during the LIST. Sets *err (0 or -errno). */
static int store_below(const up_route *ur, const char *prefix, uint64_t since, int *err)
{
	int tombs = up_tomb_below(ur, prefix, since);
	pthread_mutex_unlock(&up.lock);
	s3_client *c;
	const s3_api *api;
	live_count l = { .ur = ur, .since = since };
	s3_error e;
	if ((*err = up_store(ur, &c, &api)) == 0)
		*err = tombs ? api->list(c, ur->cfg->bucket, prefix, NULL, 0, count_live, &l, &e)
			     : api->list(c, ur->cfg->bucket, prefix, "/", 1, count_entry, &l.n, &e);
	pthread_mutex_lock(&up.lock);
	return *err == 0 && l.n > 0;
}

/* A prefix is a directory when something is below it, here or in the store. */
static int is_dir(const up_route *ur, const char *rest, int *err)
{
	char prefix[RT_KEY_MAX + 2];
	*err = up_key(ur, rest, 1, prefix, sizeof prefix);
	if (*err < 0)
		return 0;
	pthread_mutex_lock(&up.lock);
	int found = local_below(ur, prefix);
	if (!found) {
		uint64_t since = up_view_begin();
		found = store_below(ur, prefix, since, err);
		up_view_end();
	}
	pthread_mutex_unlock(&up.lock);
	return found;
}

static void dir_stat(struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 1;
	st->st_size = 4096;
	st->st_blocks = 8;
	st->st_blksize = 4096;
	clock_gettime(CLOCK_REALTIME, &st->st_mtim);
	st->st_atim = st->st_ctim = st->st_mtim;
}

int up_stat(const cfg_route *r, const char *rest, struct stat *st)
{
	up_route *ur = up_route_of(r);
	if (!*rest) {
		dir_stat(st);
		return 0;
	}
	char key[RT_KEY_MAX + 1];
	int rc = up_key(ur, rest, 0, key, sizeof key);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&up.lock);
	up_file *f = up_find(ur, key);
	rc = f ? stat(f->data, st) == 0 ? 0 : -errno : up_tomb_has(ur, key, up.gen) ? -ENOENT : 1;
	pthread_mutex_unlock(&up.lock);
	if (rc <= 0) {
		if (rc == 0)
			st->st_mode = S_IFREG | 0644;
		return rc;
	}
	s3_client *c;
	const s3_api *api;
	if ((rc = up_store(ur, &c, &api)) < 0)
		return rc;
	s3_object_info info;
	s3_error e;
	rc = api->head_object(c, ur->cfg->bucket, key, &info, &e);
	if (rc == 0) {
		memset(st, 0, sizeof *st);
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		st->st_size = (off_t)info.size;
		st->st_blocks = (blkcnt_t)((info.size + 511) / 512);
		st->st_blksize = 4096;
		st->st_mtim.tv_sec = info.mtime;
		st->st_atim = st->st_ctim = st->st_mtim;
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	if (is_dir(ur, rest, &rc)) {
		dir_stat(st);
		return 0;
	}
	return rc < 0 && rc != -ENOENT ? rc : -ENOENT;
}

int up_unlink(const cfg_route *r, const char *rest)
{
	up_route *ur = up_route_of(r);
	char key[RT_KEY_MAX + 1];
	int rc = up_key(ur, rest, 0, key, sizeof key);
	if (rc < 0)
		return rc;
	if (!*rest)
		return -EISDIR;
	pthread_mutex_lock(&up.lock);
	up_file *f = up_find(ur, key);
	int was_pending = f != NULL, stored = f && f->maybe_stored;
	if (f) {
		HASH_DEL(up.pending, f);
		f->removed = 1;
		if (f->state == UP_UPLOADING)
			up_tomb_add(ur, key);
		if (f->refs == 0 && f->state == UP_QUEUED)
			up_dequeue(f);
		/* The spool space is freed now: an upload under way reads through its own fd. */
		up_discard(f->data, f->meta);
		if (f->refs == 0 && f->state != UP_UPLOADING)
			free(f);
	}
	if (was_pending && !stored) {
		/* Never in the store: nothing to delete there. */
		keep_parent(ur, key);
		pthread_mutex_unlock(&up.lock);
		return 0;
	}
	pthread_mutex_unlock(&up.lock);
	s3_client *c;
	const s3_api *api;
	if ((rc = up_store(ur, &c, &api)) < 0)
		return rc;
	s3_error e;
	s3_object_info info;
	if (!was_pending && (rc = api->head_object(c, ur->cfg->bucket, key, &info, &e)) < 0)
		return rc == -ENOENT && is_dir(ur, rest, &rc) ? -EISDIR : rc;
	if ((rc = api->delete(c, ur->cfg->bucket, key, &e)) == 0) {
		pthread_mutex_lock(&up.lock);
		keep_parent(ur, key);
		pthread_mutex_unlock(&up.lock);
	}
	return rc;
}

typedef struct key_list {
	char **keys;
	size_t n, cap;
} key_list;

static int collect_key(void *arg, const s3_list_entry *e)
{
	key_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		char **p = realloc(l->keys, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		l->keys = p;
		l->cap = cap;
	}
	if (!(l->keys[l->n] = strdup(e->key)))
		return -ENOMEM;
	l->n++;
	return 0;
}

typedef struct live_keys {
	key_list *l;
	const up_route *ur;
	uint64_t since;
} live_keys;

/* Collects the keys no tombstone hides (a renamed-away name an upload may still create). */
static int collect_live(void *arg, const s3_list_entry *e)
{
	live_keys *k = arg;
	pthread_mutex_lock(&up.lock);
	int gone = up_tomb_has(k->ur, e->key, k->since);
	pthread_mutex_unlock(&up.lock);
	return gone ? 0 : collect_key(k->l, e);
}

/* Renames the vdirs at and below prefix from to prefix to. Caller holds up.lock. Returns how
 * many moved. */
static int vdir_move(const up_route *ur, const char *from, const char *to)
{
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, from, h, sizeof h);
	size_t hn = strlen(h);
	int n = 0;
	for (vdir *v = vdirs, *next; v; v = next) {
		next = v->hh.next;
		if (strncmp(v->hkey, h, hn) != 0)
			continue;
		char dst[RT_KEY_MAX * 2 + 2];
		snprintf(dst, sizeof dst, "%s%s", to, v->hkey + hn);
		/* The analyzer loses track of uthash's head after a deletion that empties it. */
		HASH_DEL(vdirs, v); // NOLINT(clang-analyzer-unix.Malloc)
		free(v->hkey);
		free(v);
		if (strlen(dst) <= RT_KEY_MAX)
			vdir_add(ur, dst); /* appended: the scan meets it last and skips it */
		n++;
	}
	return n;
}

/* Moves one key: a pending file is retargeted (no data moves), an object copied and
 * deleted. Returns 0, -ENOENT when neither exists, or -errno. */
static int move_key(up_route *ur, const char *from, const char *to)
{
	pthread_mutex_lock(&up.lock);
	up_file *f = up_find(ur, from);
	int in_flight = f && f->state == UP_UPLOADING;
	int stored = f && f->maybe_stored;
	if (in_flight)
		up_tomb_add(ur, from); /* the upload under way may still create it */
	if (f) {
		up_tomb_drop(ur, to);
		up_file *old = up_find(ur, to);
		if (old && old != f) { /* replaced, as rename(2) replaces */
			HASH_DEL(up.pending, old);
			old->removed = 1;
			if (old->refs == 0 && old->state == UP_QUEUED)
				up_dequeue(old);
			up_discard(old->data, old->meta);
			if (old->refs == 0 && old->state != UP_UPLOADING)
				free(old);
		}
		/* f is in the hash (up_find found it): the analyzer cannot see that through
		 * uthash's macros after the deletion above. */
		HASH_DEL(up.pending, f); // NOLINT(clang-analyzer-core.NullDereference)
		snprintf(f->key, sizeof f->key, "%s", to);
		f->synced = 0; /* what fsync uploaded is under the old name */
		f->maybe_stored = 1; /* an older object under the new name, for all we know */
		up_hkey(ur, to, f->hkey, sizeof f->hkey);
		HASH_ADD_STR(up.pending, hkey, f);
		if (f->state == UP_UPLOADING)
			f->again = 1;
		up_write_meta(f, "pending", 0);
	}
	pthread_mutex_unlock(&up.lock);
	s3_client *c;
	const s3_api *api;
	int rc = up_store(ur, &c, &api);
	if (rc < 0)
		return rc;
	s3_error e;
	if (f) {
		/* An older object of the source name must not survive the rename. */
		if (stored)
			api->delete(c, ur->cfg->bucket, from, &e);
		return 0;
	}
	rc = api->copy(c, ur->cfg->bucket, from, ur->cfg->bucket, to, NULL, &e);
	if (rc == 0)
		rc = api->delete(c, ur->cfg->bucket, from, &e);
	return rc;
}

static int exists(up_route *ur, const char *rest)
{
	struct stat st;
	return up_stat(ur->cfg, rest, &st) == 0;
}

int up_rename(const cfg_route *r, const char *from, const char *to, unsigned flags)
{
	up_route *ur = up_route_of(r);
	if (strcmp(from, to) == 0)
		return 0;
	if (!*from || !*to)
		return -EBUSY; /* the route root itself */
	if ((flags & RENAME_NOREPLACE) && exists(ur, to))
		return -EEXIST;
	char kf[RT_KEY_MAX + 1], kt[RT_KEY_MAX + 1];
	int rc = up_key(ur, from, 0, kf, sizeof kf);
	if (rc == 0)
		rc = up_key(ur, to, 0, kt, sizeof kt);
	if (rc < 0)
		return rc;
	rc = move_key(ur, kf, kt);
	if (rc == 0) {
		pthread_mutex_lock(&up.lock);
		keep_parent(ur, kf);
		pthread_mutex_unlock(&up.lock);
	}
	if (rc != -ENOENT)
		return rc;
	/* A directory: every key below it, pending files included. */
	char pf[RT_KEY_MAX + 2], pt[RT_KEY_MAX + 2];
	if ((rc = up_key(ur, from, 1, pf, sizeof pf)) < 0 ||
	    (rc = up_key(ur, to, 1, pt, sizeof pt)) < 0)
		return rc;
	if (strncmp(pt, pf, strlen(pf)) == 0)
		return -EINVAL; /* into itself */
	key_list l = { 0 };
	pthread_mutex_lock(&up.lock);
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, pf, h, sizeof h);
	size_t hn = strlen(h);
	for (up_file *f = up.pending; f; f = f->hh.next) {
		s3_list_entry e = { .key = f->key };
		if (strncmp(f->hkey, h, hn) == 0)
			collect_key(&l, &e);
	}
	int moved = vdir_move(ur, pf, pt);
	live_keys live = { .l = &l, .ur = ur, .since = up_view_begin() };
	pthread_mutex_unlock(&up.lock);
	s3_client *c;
	const s3_api *api;
	if ((rc = up_store(ur, &c, &api)) == 0) {
		s3_error e;
		rc = api->list(c, ur->cfg->bucket, pf, NULL, 0, collect_live, &live, &e);
	}
	pthread_mutex_lock(&up.lock);
	up_view_end();
	pthread_mutex_unlock(&up.lock);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		char dst[RT_KEY_MAX * 2 + 2];
		snprintf(dst, sizeof dst, "%s%s", pt, l.keys[i] + strlen(pf));
		if (strlen(dst) > RT_KEY_MAX) {
			rc = -ENAMETOOLONG;
			break;
		}
		int one = move_key(ur, l.keys[i], dst);
		if (one == 0)
			moved++;
		else if (one != -ENOENT)
			rc = one;
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.keys[i]);
	free(l.keys);
	if (rc < 0)
		return rc;
	if (!moved)
		return -ENOENT;
	pthread_mutex_lock(&up.lock);
	keep_parent(ur, pf);
	pthread_mutex_unlock(&up.lock);
	return 0;
}

int up_mkdir(const cfg_route *r, const char *rest)
{
	up_route *ur = up_route_of(r);
	if (!*rest)
		return -EEXIST;
	char prefix[RT_KEY_MAX + 2];
	int rc = up_key(ur, rest, 1, prefix, sizeof prefix);
	if (rc < 0)
		return rc;
	struct stat st;
	if (up_stat(r, rest, &st) == 0)
		return -EEXIST;
	pthread_mutex_lock(&up.lock);
	rc = vdir_add(ur, prefix);
	pthread_mutex_unlock(&up.lock);
	return rc;
}

int up_rmdir(const cfg_route *r, const char *rest)
{
	up_route *ur = up_route_of(r);
	if (!*rest)
		return -EBUSY;
	char prefix[RT_KEY_MAX + 2], h[RT_KEY_MAX + 24];
	int rc = up_key(ur, rest, 1, prefix, sizeof prefix);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&up.lock);
	up_hkey(ur, prefix, h, sizeof h);
	size_t hn = strlen(h);
	int busy = pending_below(ur, prefix);
	for (vdir *v = vdirs; v && !busy; v = v->hh.next)
		busy = strncmp(v->hkey, h, hn) == 0 && v->hkey[hn];
	if (!busy) {
		uint64_t since = up_view_begin();
		busy = store_below(ur, prefix, since, &rc);
		up_view_end();
	}
	vdir *v = NULL;
	if (rc == 0 && !busy) {
		HASH_FIND_STR(vdirs, h, v);
		if (v)
			HASH_DEL(vdirs, v);
	}
	pthread_mutex_unlock(&up.lock);
	if (rc < 0)
		return rc;
	if (busy)
		return -ENOTEMPTY;
	if (!v)
		return -ENOENT;
	free(v->hkey);
	free(v);
	return 0;
}

typedef struct listing_ctx {
	int dfd;
	size_t prefix_len;
	const up_route *ur;
	uint64_t since;          /* see up_view_begin */
	key_list doubtful;       /* sub-directories with tombstones below them */
} listing_ctx;

static void add_entry(int dfd, const char *name, size_t len, int dir, uint64_t size,
		      time_t mtime)
{
	char n[NAME_MAX + 1];
	if (len == 0 || len > NAME_MAX || (len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return;
	memcpy(n, name, len);
	n[len] = '\0';
	if (dir) {
		mkdirat(dfd, n, 0755);
		return;
	}
	int fd = openat(dfd, n, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (ftruncate(fd, (off_t)size) == 0 && mtime > 0) {
		struct timespec t[2] = { { .tv_sec = mtime }, { .tv_sec = mtime } };
		futimens(fd, t);
	}
	close(fd);
}

static int listing_entry(void *arg, const s3_list_entry *e)
{
	listing_ctx *l = arg;
	size_t klen = strlen(e->key);
	if (klen <= l->prefix_len)
		return 0;
	pthread_mutex_lock(&up.lock);
	int gone = !e->is_prefix && up_tomb_has(l->ur, e->key, l->since);
	int doubtful = e->is_prefix && up_tomb_below(l->ur, e->key, l->since);
	pthread_mutex_unlock(&up.lock);
	if (gone)
		return 0;
	if (doubtful)
		return collect_key(&l->doubtful, e); /* decided after the LIST */
	add_entry(l->dfd, e->key + l->prefix_len, klen - l->prefix_len - (e->is_prefix ? 1 : 0),
		  e->is_prefix, e->size, e->mtime);
	return 0;
}

/* Pending files and mkdir'd directories one level below prefix, into dfd. Caller holds
 * up.lock. */
static void add_pending(const up_route *ur, const char *prefix, int dfd)
{
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, prefix, h, sizeof h);
	size_t hn = strlen(h);
	for (up_file *f = up.pending; f; f = f->hh.next) {
		if (strncmp(f->hkey, h, hn) != 0)
			continue;
		const char *name = f->hkey + hn, *slash = strchr(name, '/');
		struct stat st;
		uint64_t size = stat(f->data, &st) == 0 ? (uint64_t)st.st_size : 0;
		add_entry(dfd, name, slash ? (size_t)(slash - name) : strlen(name), slash != NULL,
			  size, 0);
	}
	for (vdir *v = vdirs; v; v = v->hh.next) {
		if (strncmp(v->hkey, h, hn) != 0 || !v->hkey[hn])
			continue;
		const char *name = v->hkey + hn, *slash = strchr(name, '/');
		add_entry(dfd, name, slash ? (size_t)(slash - name) : strlen(name), 1, 0, 0);
	}
}

int up_listing_dir(const cfg_route *r, const char *rest, char *out, size_t cap)
{
	up_route *ur = up_route_of(r);
	char prefix[RT_KEY_MAX + 2];
	int rc = up_key(ur, rest, 1, prefix, sizeof prefix);
	if (rc < 0 || (rc = up_prepare(ur)) < 0)
		return rc;
	if (*rest && !is_dir(ur, rest, &rc)) {
		struct stat st;
		return rc < 0 && rc != -ENOENT ? rc : up_stat(r, rest, &st) == 0 ? -ENOTDIR : -ENOENT;
	}
	pthread_mutex_lock(&up.lock);
	unsigned n = ++ur->seq;
	pthread_mutex_unlock(&up.lock);
	int len = snprintf(out, cap, "%s/ls.%u", ur->mine, n);
	if (len < 0 || (size_t)len >= cap)
		return -ENAMETOOLONG;
	if (mkdir(out, 0755) < 0)
		return -errno;
	listing_ctx l = { .dfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
			  .prefix_len = strlen(prefix), .ur = ur };
	if (l.dfd < 0)
		return -errno;
	/* Pending files are listed before the LIST (one uploaded while it runs leaves the
	 * pending hash but may be missing from the answer) and after it (their spool sizes win
	 * over older objects of the same name). */
	pthread_mutex_lock(&up.lock);
	add_pending(ur, prefix, l.dfd);
	l.since = up_view_begin();
	pthread_mutex_unlock(&up.lock);
	s3_client *c;
	const s3_api *api;
	if ((rc = up_store(ur, &c, &api)) == 0) {
		s3_error e;
		rc = api->list(c, ur->cfg->bucket, prefix, "/", 0, listing_entry, &l, &e);
	}
	pthread_mutex_lock(&up.lock);
	/* A sub-directory whose keys are all renamed away or unlinked is gone. */
	for (size_t i = 0; rc == 0 && i < l.doubtful.n; i++) {
		const char *sub = l.doubtful.keys[i];
		if (local_below(ur, sub) || store_below(ur, sub, l.since, &rc))
			add_entry(l.dfd, sub + l.prefix_len, strlen(sub) - l.prefix_len - 1, 1, 0, 0);
	}
	up_view_end();
	add_pending(ur, prefix, l.dfd);
	pthread_mutex_unlock(&up.lock);
	for (size_t i = 0; i < l.doubtful.n; i++)
		free(l.doubtful.keys[i]);
	free(l.doubtful.keys);
	close(l.dfd);
	return rc;
}

void up_fork_prepare(void)
{
	pthread_mutex_lock(&up.lock);
}

void up_fork_parent(void)
{
	pthread_mutex_unlock(&up.lock);
}

void up_fork_child(void)
{
	/* The parent's workers do not exist here; this process's own files start new ones. The
	 * parent's queue and spool directories stay the parent's. */
	pthread_mutex_init(&up.lock, NULL);
	pthread_cond_init(&up.changed, NULL);
	up.queue = up.queue_tail = NULL;
	up.workers = up.busy = up.recovering = 0;
	up.uploaded = up.uploaded_bytes = up.failed = 0;
	up.drained = 0;
	for (size_t i = 0; up.cfg && i < up.cfg->nroutes; i++) {
		up_route *ur = &up.routes[i];
		/* Own spool directory, own lock: the parent's lock fd is inherited but ours is
		 * taken when this process first writes. */
		if (ur->lock_fd >= 0)
			close(ur->lock_fd); /* the parent's lock stays the parent's */
		ur->prepared = 0;
		ur->mine[0] = '\0';
		ur->lock_fd = -1;
	}
}
