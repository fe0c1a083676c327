/* One path of a tree brought in line with the store (upload, server-side copy after a
 * rename, delete), placeholders made from a listing, and their download on first open. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "router/rt.h"
#include "uploader/up_engine.h"
#include "uploader/up_place.h"

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static void say(char *why, size_t whylen, const s3_error *err)
{
	if (why && whylen)
		s3_error_str(err, why, whylen);
}

/* Whether someone has fd's file open for writing: a read lease is granted only when
 * nobody has. Where leases are not to be had, the file counts as closed. */
static int open_for_writing(int fd)
{
	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
		fcntl(fd, F_SETLEASE, F_UNLCK);
		return 0;
	}
	return errno == EAGAIN;
}

/* The snapshot of rel's journal entry a look starts from. */
typedef struct seen {
	int exists, remote;
	char key[RT_KEY_MAX + 1];
	uint64_t size, ino;
	int64_t mtime;
} seen;

static void seen_of(up_engine *e, const char *rel, seen *s)
{
	memset(s, 0, sizeof *s);
	lock_take(&e->lock);
	up_jent *j = up_journal_find(&e->j, rel);
	if (j) {
		s->exists = 1;
		s->remote = j->remote;
		snprintf(s->key, sizeof s->key, "%s", j->key ? j->key : "");
		s->size = j->size;
		s->ino = j->ino;
		s->mtime = j->mtime_ns;
	}
	lock_give(&e->lock);
}

/* rel is gone from the tree: so is its object, unless another entry still needs it. */
static int gone(up_engine *e, const char *rel, const seen *s, char *why, size_t whylen)
{
	if (!s->exists)
		return LOOK_DONE;
	lock_take(&e->lock);
	up_jent *j = up_journal_find(&e->j, rel);
	int used = !j || j->ino != s->ino || (s->key[0] && up_journal_key_used(&e->j, s->key, j));
	lock_give(&e->lock);
	if (j && j->ino != s->ino)
		return LOOK_AGAIN; /* replaced meanwhile */
	if (s->key[0] && !used) {
		s3_error err;
		log_debug("agent: DELETE %s", s->key);
		int rc = s3_delete(e->client, e->route->bucket, s->key, &err);
		if (rc < 0 && rc != -ENOENT) {
			say(why, whylen, &err);
			return rc;
		}
	}
	lock_take(&e->lock);
	j = up_journal_find(&e->j, rel);
	if (j && j->ino == s->ino)
		up_journal_drop(&e->j, rel);
	lock_give(&e->lock);
	return LOOK_DONE;
}

/* A renamed file whose data the store holds under its old key: copied there, old key
 * deleted. Returns -ENOENT when the old object is gone (the caller then uploads). */
static int copy_over(up_engine *e, const char *rel, const char *key, const seen *s,
		     char *why, size_t whylen)
{
	s3_error err;
	char etag[80] = "";
	log_debug("agent: COPY %s -> %s", s->key, key);
	int rc = s3_copy(e->client, e->route->bucket, s->key, e->route->bucket, key, etag, &err);
	if (rc < 0) {
		say(why, whylen, &err);
		return rc;
	}
	lock_take(&e->lock);
	up_jent *j = up_journal_find(&e->j, rel);
	if (j && j->ino == s->ino) {
		up_journal_set(&e->j, rel, key, j->remote, j->size, j->mtime_ns, j->ino, j->etag);
	}
	if (!up_journal_key_used(&e->j, s->key, NULL))
		up_engine_delete_later(e, s->key);
	lock_give(&e->lock);
	return LOOK_DONE;
}

int up_reconcile(up_engine *e, up_item *it, int sync, char *why, size_t whylen)
{
	const char *rel = it->rel;
	char key[RT_KEY_MAX + 1];
	if (rt_object_key(e->route, rel, 0, key, sizeof key) < 0) {
		snprintf(why, whylen, "the key would be longer than %d bytes", RT_KEY_MAX);
		return -ENAMETOOLONG;
	}
	seen s;
	seen_of(e, rel, &s);
	struct stat st;
	if (fstatat(e->rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT || errno == ENOTDIR ? gone(e, rel, &s, why, whylen) : -errno;
	if (S_ISDIR(st.st_mode)) {
		lock_take(&e->lock);
		up_engine_walk(e, rel, 0);
		lock_give(&e->lock);
		return s.exists ? gone(e, rel, &s, why, whylen) : LOOK_DONE;
	}
	if (!S_ISREG(st.st_mode))
		return LOOK_DONE; /* symbolic links and the like stay local */
	log_debug("agent: look %s: journal %d %llu %lld %llu, tree %llu %lld %llu", rel, s.exists,
		  (unsigned long long)s.size, (long long)s.mtime, (unsigned long long)s.ino,
		  (unsigned long long)st.st_size, (long long)mtime_ns(&st),
		  (unsigned long long)st.st_ino);
	if (s.exists && s.ino == st.st_ino && s.size == (uint64_t)st.st_size &&
	    s.mtime == mtime_ns(&st)) {
		if (!s.key[0] || strcmp(s.key, key) == 0)
			return LOOK_DONE;
		int rc = copy_over(e, rel, key, &s, why, whylen);
		if (rc != -ENOENT || s.remote)
			return rc;
	}
	up_remote pr;
	if (up_placeholder(-1, e->rootfd, rel, &st, &pr)) {
		/* A placeholder the journal lost: the object is the one it names. */
		lock_take(&e->lock);
		up_journal_set(&e->j, rel, key, 1, (uint64_t)st.st_size, mtime_ns(&st), st.st_ino,
			       pr.etag);
		lock_give(&e->lock);
		return LOOK_DONE;
	}
	int fd = openat(e->rootfd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? LOOK_AGAIN : -errno;
	int snapshot = 0;
	if (!sync && open_for_writing(fd)) {
		uint32_t every = e->route->snapshot_interval_ms;
		if (!every || clock_ms() - it->last_put < every) {
			close(fd);
			return LOOK_OPEN;
		}
		snapshot = 1;
	}
	fstat(fd, &st);
	char etag[80];
	s3_error err;
	log_debug("agent: PUT %s (%lld bytes%s)", key, (long long)st.st_size,
		  snapshot ? ", a snapshot of a file open for writing" : "");
	int rc = up_put_fd(e, key, fd, (uint64_t)st.st_size, etag, &err);
	struct stat after;
	int changed = fstat(fd, &after) == 0 &&
		      (after.st_size != st.st_size || mtime_ns(&after) != mtime_ns(&st));
	if (rc == 0)
		fremovexattr(fd, UP_PLACE_XATTR); /* a placeholder written over */
	close(fd);
	if (rc < 0) {
		say(why, whylen, &err);
		return rc;
	}
	it->last_put = clock_ms();
	struct stat now;
	lock_take(&e->lock);
	e->uploaded++;
	e->bytes += (uint64_t)st.st_size;
	if (fstatat(e->rootfd, rel, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_ino == st.st_ino) {
		up_jent *old = up_journal_find(&e->j, rel);
		if (old && old->key && strcmp(old->key, key) != 0 &&
		    !up_journal_key_used(&e->j, old->key, old))
			up_engine_delete_later(e, old->key);
		up_journal_set(&e->j, rel, key, 0, (uint64_t)st.st_size, mtime_ns(&st), st.st_ino,
			       etag);
	} else {
		/* Renamed or removed while it was on its way: the next look deletes or moves. */
		changed = 1;
		if (!up_journal_key_used(&e->j, key, NULL) &&
		    fstatat(e->rootfd, rel, &now, AT_SYMLINK_NOFOLLOW) < 0)
			up_engine_delete_later(e, key);
	}
	lock_give(&e->lock);
	if (changed)
		return LOOK_AGAIN;
	return snapshot ? LOOK_OPEN : LOOK_DONE;
}

/* -- placeholders ------------------------------------------------------------------------ */

static unsigned tmp_seq(void)
{
	static _Atomic unsigned n;
	return ++n;
}

/* A temporary name beside rel, for building a file that is then renamed into place. */
static void tmp_beside(const char *rel, const char *what, char *out, size_t cap)
{
	const char *slash = strrchr(rel, '/');
	snprintf(out, cap, "%.*s%s.rwsplit-%s-%d-%u", slash ? (int)(slash - rel) : 0, rel,
		 slash ? "/" : "", what, (int)getpid(), tmp_seq());
}

static int mkdirs_at(int rootfd, const char *rel, int with_last)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s", rel);
	for (char *s = p;; s++) {
		if (*s != '/' && (*s != '\0' || !with_last)) {
			if (!*s)
				return 0;
			continue;
		}
		char c = *s;
		*s = '\0';
		if (mkdirat(rootfd, p, 0755) < 0 && errno != EEXIST)
			return -errno;
		if (!c)
			return 0;
		*s = c;
	}
}

/* A key that can be a path of the tree: no empty, "." or ".." component, none too long. */
static int usable_rel(const char *rel)
{
	if (!*rel)
		return 0;
	for (const char *c = rel; *c;) {
		size_t n = strcspn(c, "/");
		if (n == 0 || n > 255 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c += n;
		if (*c == '/' && !*++c)
			return 0;
	}
	return 1;
}

/* Makes the placeholder of object key (size bytes, mtime, etag) at rel: built beside it and
 * renamed into place, over what is there when replace is set (eviction), else only where
 * nothing is. */
static int make_placeholder(up_engine *e, const char *rel, const char *key, uint64_t size,
			    struct timespec mtime, const char *etag, int replace)
{
	char tmp[PATH_MAX];
	tmp_beside(rel, "place", tmp, sizeof tmp);
	int rc = mkdirs_at(e->rootfd, rel, 0);
	int fd = rc < 0 ? -1 : openat(e->rootfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				      O_CLOEXEC, 0);
	if (fd < 0)
		return rc < 0 ? rc : -errno;
	char note[PATH_MAX + 512];
	int n = snprintf(note, sizeof note, "rwsplit placeholder: s3://%s/%s (%llu bytes) is not "
			 "downloaded yet.\nOpen it through rwsplit (LD_PRELOAD=librwsplit.so) to "
			 "download it.\n", e->route->bucket, key, (unsigned long long)size);
	up_remote r = { .size = size, .mtime = mtime, .marker_len = (uint64_t)n };
	snprintf(r.etag, sizeof r.etag, "%s", etag ? etag : "");
	char val[UP_PLACE_XATTR_MAX];
	size_t vlen = up_place_format(&r, val);
	struct timespec times[2] = { r.mtime, r.mtime };
	struct stat st;
	if (write(fd, note, (size_t)n) != n || fsetxattr(fd, UP_PLACE_XATTR, val, vlen, 0) < 0 ||
	    futimens(fd, times) < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		unlinkat(e->rootfd, tmp, 0);
		return rc;
	}
	close(fd);
	lock_take(&e->lock);
	up_journal_set(&e->j, rel, key, 1, (uint64_t)st.st_size, mtime_ns(&st), st.st_ino,
		       r.etag);
	lock_give(&e->lock);
	if (renameat2(e->rootfd, tmp, e->rootfd, rel, replace ? 0 : RENAME_NOREPLACE) < 0) {
		rc = -errno; /* a file of that name appeared meanwhile: it wins */
		unlinkat(e->rootfd, tmp, 0);
		lock_take(&e->lock);
		up_jent *j = up_journal_find(&e->j, rel);
		if (j && j->ino == st.st_ino)
			up_journal_drop(&e->j, rel);
		lock_give(&e->lock);
	}
	return rc;
}

static int populate_entry(void *arg, const s3_list_entry *o)
{
	up_engine *e = arg;
	size_t plen = strlen(e->route->prefix);
	if (strncmp(o->key, e->route->prefix, plen) != 0)
		return 0;
	const char *rel = o->key + plen;
	size_t n = strlen(rel);
	if (n && rel[n - 1] == '/') { /* a folder marker */
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%.*s", (int)(n - 1), rel);
		if (usable_rel(dir))
			mkdirs_at(e->rootfd, dir, 1);
		return 0;
	}
	if (!usable_rel(rel))
		return 0;
	lock_take(&e->lock);
	int known = up_journal_find(&e->j, rel) || up_journal_key_used(&e->j, o->key, NULL);
	lock_give(&e->lock);
	struct stat st;
	if (known || fstatat(e->rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
		return 0;
	int rc = make_placeholder(e, rel, o->key, o->size, (struct timespec){ .tv_sec = o->mtime },
				  o->etag, 0);
	if (rc < 0 && rc != -EEXIST && rc != -ENOTDIR)
		log_warn("write route %s: cannot show s3://%s/%s in the tree: %s", e->route->local,
			 e->route->bucket, o->key, strerror(-rc));
	return 0;
}

int up_populate(up_engine *e)
{
	s3_error err;
	log_debug("agent: LIST %s", e->route->prefix);
	int rc = s3_list(e->client, e->route->bucket, e->route->prefix, NULL, 0, populate_entry, e,
			 &err);
	if (rc < 0) {
		char msg[300];
		log_error("write route %s: cannot list s3://%s/%s (%s): objects already there do not "
			  "show in the tree", e->route->local, e->route->bucket, e->route->prefix,
			  s3_error_str(&err, msg, sizeof msg));
	}
	return rc;
}

/* Waits until nobody else downloads rel, then claims it. */
static void claim(up_engine *e, const char *rel, char *mine) REQUIRES(e->lock)
{
	for (;;) {
		int busy = 0;
		for (size_t i = 0; i < e->nfetching; i++)
			busy |= strcmp(e->fetching[i], rel) == 0;
		if (!busy)
			break;
		lock_wait(&e->changed, &e->lock, NULL);
	}
	char **grown = realloc(e->fetching, (e->nfetching + 1) * sizeof *grown);
	if (grown) {
		e->fetching = grown;
		e->fetching[e->nfetching++] = mine;
	}
}

static void unclaim(up_engine *e, const char *mine)
{
	for (size_t i = 0; i < e->nfetching; i++)
		if (e->fetching[i] == mine) {
			e->fetching[i] = e->fetching[--e->nfetching];
			break;
		}
	pthread_cond_broadcast(&e->changed);
}

static int download(up_engine *e, const char *rel, const seen *s, char *why, size_t whylen)
{
	struct stat st;
	up_remote pr;
	if (fstatat(e->rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (st.st_ino != s->ino || !up_placeholder(-1, e->rootfd, rel, &st, &pr))
		return 0; /* not a placeholder (any more) */
	char tmp[PATH_MAX];
	tmp_beside(rel, "fetch", tmp, sizeof tmp);
	int fd = openat(e->rootfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	uint64_t got;
	s3_object_info info;
	s3_error err;
	log_debug("agent: GET %s", s->key);
	int rc = s3_get_fd(e->client, e->route->bucket, s->key, NULL, 0, S3_TO_END, fd, 0, &got, &info,
			   &err);
	struct timespec times[2] = { { .tv_nsec = UTIME_NOW }, pr.mtime };
	struct stat fresh = { 0 };
	if (rc == 0 && (fchmod(fd, 0644) < 0 || futimens(fd, times) < 0 || fstat(fd, &fresh) < 0))
		rc = -errno;
	close(fd);
	if (rc < 0) {
		say(why, whylen, &err);
		unlinkat(e->rootfd, tmp, 0);
		return rc;
	}
	lock_take(&e->lock);
	up_journal_set(&e->j, rel, s->key, 0, (uint64_t)fresh.st_size, mtime_ns(&fresh),
		       fresh.st_ino, info.etag);
	lock_give(&e->lock);
	/* Exchanged, so that a file written over the placeholder meanwhile is never lost. */
	if (renameat2(e->rootfd, tmp, e->rootfd, rel, RENAME_EXCHANGE) < 0) {
		rc = -errno;
		unlinkat(e->rootfd, tmp, 0);
		return rc;
	}
	if (fstatat(e->rootfd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino != s->ino)
		renameat2(e->rootfd, tmp, e->rootfd, rel, RENAME_EXCHANGE);
	unlinkat(e->rootfd, tmp, 0);
	return 0;
}

int up_fetch_placeholder(up_engine *e, const char *rel, char *why, size_t whylen)
{
	char *mine = strdup(rel);
	if (!mine)
		return -ENOMEM;
	lock_take(&e->lock);
	claim(e, rel, mine);
	lock_give(&e->lock);
	seen s;
	seen_of(e, rel, &s);
	int rc = s.exists && s.remote && s.key[0] ? download(e, rel, &s, why, whylen) : 0;
	lock_take(&e->lock);
	unclaim(e, mine);
	lock_give(&e->lock);
	free(mine);
	return rc;
}

/* -- spool_budget ----------------------------------------------------------------------- */

typedef struct candidate {
	char *rel;
	char key[RT_KEY_MAX + 1];
	char etag[80];
	uint64_t size, ino;
	int64_t mtime;
	time_t used;             /* last access or change */
} candidate;

static int by_use(const void *a, const void *b)
{
	const candidate *x = a, *y = b;
	return (x->used > y->used) - (x->used < y->used);
}

/* Turns the uploaded, unchanged file of c back into a placeholder, unless somebody has it
 * open: a write lease is granted only to a process that is alone with the file. */
static int evict_one(up_engine *e, const candidate *c)
{
	int fd = openat(e->rootfd, c->rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = -EBUSY;
	if (fstat(fd, &st) == 0 && st.st_ino == c->ino && (uint64_t)st.st_size == c->size &&
	    mtime_ns(&st) == c->mtime && fcntl(fd, F_SETLEASE, F_WRLCK) == 0) {
		rc = make_placeholder(e, c->rel, c->key, c->size, st.st_mtim, c->etag, 1);
		fcntl(fd, F_SETLEASE, F_UNLCK);
	}
	close(fd);
	if (rc == 0)
		log_debug("agent: evicted %s (%llu bytes; spool_budget)", c->rel,
			  (unsigned long long)c->size);
	return rc;
}

void up_evict(up_engine *e)
{
	uint64_t budget = e->route->spool_budget, used = 0;
	if (!budget)
		return;
	size_t n = 0, cap = 0;
	candidate *cs = NULL;
	char key[RT_KEY_MAX + 1];
	lock_take(&e->lock);
	for (up_jent *j = e->j.ents; j; j = j->hh.next) {
		if (j->remote)
			continue;
		used += j->size;
		up_item *busy = NULL;
		HASH_FIND_STR(e->items, j->rel, busy);
		if (busy || !j->key || rt_object_key(e->route, j->rel, 0, key, sizeof key) < 0 ||
		    strcmp(key, j->key) != 0)
			continue; /* being looked at, or not where its name says yet */
		if (n == cap) {
			candidate *grown = realloc(cs, (cap = cap ? 2 * cap : 64) * sizeof *cs);
			if (!grown)
				break;
			cs = grown;
		}
		candidate *c = &cs[n];
		if (!(c->rel = strdup(j->rel)))
			break;
		snprintf(c->key, sizeof c->key, "%s", j->key);
		snprintf(c->etag, sizeof c->etag, "%s", j->etag);
		c->size = j->size;
		c->ino = j->ino;
		c->mtime = j->mtime_ns;
		n++;
	}
	lock_give(&e->lock);
	if (used > budget && cs) {
		for (size_t i = 0; i < n; i++) {
			struct stat st;
			cs[i].used = fstatat(e->rootfd, cs[i].rel, &st, AT_SYMLINK_NOFOLLOW) == 0
				     ? (st.st_atime > st.st_mtime ? st.st_atime : st.st_mtime) : 0;
		}
		qsort(cs, n, sizeof *cs, by_use);
		for (size_t i = 0; i < n && used > budget; i++)
			if (evict_one(e, &cs[i]) == 0)
				used -= cs[i].size;
		if (used > budget)
			log_warn("write route %s: %llu bytes of files kept locally, over spool_budget "
				 "(%llu): the rest is open or not uploaded yet", e->route->local,
				 (unsigned long long)used, (unsigned long long)budget);
	}
	for (size_t i = 0; i < n; i++)
		free(cs[i].rel);
	free(cs);
}
