/* The write route engine (up_engine.h): takes a tree over, watches it, schedules its paths
 * and answers the processes that use it. */
#include "uploader/up_engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/pool.h"
#include "uploader/up_wire.h"

/* The kernel queues IN_CLOSE_WRITE before it drops the file's write count, so a look that
 * follows the event at once can still find the file open for writing. After a close event
 * an "open" answer is doubted this many times, CLOSE_RECHECK_MS apart (1 s in all). */
#define CLOSE_RECHECKS 50
#define CLOSE_RECHECK_MS 20

/* While files keep being created and closed in the tree (a save in progress), due uploads
 * wait until it has been quiet for upload_delay, at most this long: the save's own writes
 * then do not compete with its uploads for the CPU, memory bandwidth and page cache. */
#define SAVE_HOLD_MAX_MS 5000

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | \
		    IN_MOVED_FROM | IN_MOVED_TO | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_ONLYDIR)

/* Names the engine uses for its own downloads and placeholders while it builds them. */
static int ours(const char *rel)
{
	const char *base = strrchr(rel, '/');
	return strncmp(base ? base + 1 : rel, ".rwsplit-", 9) == 0;
}

static void wake(up_engine *e)
{
	uint64_t one = 1;
	if (e->wake_fd >= 0 && write(e->wake_fd, &one, sizeof one) < 0)
		log_debug("agent: wake: %s", strerror(errno));
}

/* touch, or with postpone 0 only make it due no later than delay_ms from now. */
static void mark(up_engine *e, const char *rel, uint64_t delay_ms, int postpone)
{
	if (!*rel || ours(rel))
		return;
	up_item *it = NULL;
	HASH_FIND_STR(e->items, rel, it);
	uint64_t now = clock_ms();
	if (!it) {
		if (!(it = calloc(1, sizeof *it)) || !(it->rel = strdup(rel))) {
			free(it);
			log_error("agent: out of memory: %s is not kept in sync", rel);
			return;
		}
		it->seq = ++e->seq;
		it->last_put = now;
		it->due = now + delay_ms;
		HASH_ADD_KEYPTR(hh, e->items, it->rel, strlen(it->rel), it);
	}
	if (it->state == IT_RUNNING)
		it->again = 1;
	if (it->state == IT_WAIT && (postpone || it->due > now + delay_ms))
		it->due = now + delay_ms;
	it->open = 0;
	e->last_activity = now;
}

void up_engine_touch(up_engine *e, const char *rel, uint64_t delay_ms)
{
	mark(e, rel, delay_ms, 1);
}

void up_engine_delete_later(up_engine *e, const char *key)
{
	up_del *d = calloc(1, sizeof *d);
	if (!d || !(d->key = strdup(key))) {
		free(d);
		return;
	}
	d->next = e->dels;
	e->dels = d;
	pthread_cond_signal(&e->work);
}

void up_engine_journal_mpu(up_engine *e, const char *id, const char *key, int started)
{
	lock_take(&e->lock);
	up_journal_mpu(&e->j, id, key, started);
	lock_give(&e->lock);
}

static void join(char *out, size_t cap, const char *dir, const char *name)
{
	snprintf(out, cap, "%s%s%s", dir, *dir ? "/" : "", name);
}

static void watch_add(up_engine *e, const char *rel)
{
	char abs[PATH_MAX];
	join(abs, sizeof abs, e->route->local, rel);
	int wd = inotify_add_watch(e->inotify_fd, abs, WATCH_MASK);
	if (wd < 0) {
		if (errno == ENOSPC)
			log_error("agent: %s: no inotify watch left (fs.inotify.max_user_watches): "
				  "changes below it are found only when the agent starts again", abs);
		return;
	}
	up_watch *w = NULL;
	HASH_FIND_INT(e->watches, &wd, w);
	log_debug("agent: watch %d %s%s", wd, rel, w ? " (again)" : "");
	if (!w) {
		if (!(w = calloc(1, sizeof *w)))
			return;
		w->wd = wd;
		HASH_ADD_INT(e->watches, wd, w);
	}
	char *copy = strdup(rel);
	if (copy) {
		free(w->rel);
		w->rel = copy;
	}
}

void up_engine_walk(up_engine *e, const char *rel, uint64_t delay_ms)
{
	watch_add(e, rel);
	int fd = *rel ? openat(e->rootfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
		      : dup(e->rootfd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	struct dirent *de;
	char child[PATH_MAX];
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		join(child, sizeof child, rel, de->d_name);
		if (ours(child)) {
			if (e->taking_over) /* a dead agent's half-made download */
				unlinkat(e->rootfd, child, 0);
			continue;
		}
		unsigned char type = de->d_type;
		if (type == DT_UNKNOWN) {
			struct stat st;
			type = fstatat(e->rootfd, child, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			       S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
		}
		if (type == DT_DIR)
			up_engine_walk(e, child, delay_ms);
		else
			up_engine_touch(e, child, delay_ms);
	}
	closedir(d);
}

/* Watches and journal entries below a directory that left the tree, or moved in it. */
static int below(const char *rel, const char *dir, size_t n)
{
	return strncmp(rel, dir, n) == 0 && rel[n] == '/';
}

static void dir_gone(up_engine *e, const char *rel) REQUIRES(e->lock)
{
	size_t n = strlen(rel);
	for (up_watch *w = e->watches, *next; w; w = next) {
		next = w->hh.next;
		if (strcmp(w->rel, rel) == 0 || below(w->rel, rel, n))
			inotify_rm_watch(e->inotify_fd, w->wd); /* IN_IGNORED frees it */
	}
	for (up_jent *j = e->j.ents; j; j = j->hh.next)
		if (below(j->rel, rel, n))
			up_engine_touch(e, j->rel, 0);
}

/* A journal entry moves with its file, so that the move is mirrored by a copy in the
 * store; what was under the target name before is replaced. */
static void move_entry(up_engine *e, const char *from, const char *to) REQUIRES(e->lock)
{
	up_jent *old = up_journal_find(&e->j, to);
	if (old && old->key) {
		char key[4096];
		snprintf(key, sizeof key, "%s%s", e->route->prefix, to);
		if (strcmp(old->key, key) != 0 && !up_journal_key_used(&e->j, old->key, old))
			up_engine_delete_later(e, old->key);
	}
	up_jent *j = up_journal_find(&e->j, from);
	if (j)
		up_journal_move(&e->j, j, to);
	else if (old)
		up_journal_drop(&e->j, to);
}

static void moved(up_engine *e, const char *from, const char *to, int isdir) REQUIRES(e->lock)
{
	uint64_t delay = e->route->upload_delay_ms;
	if (!isdir) {
		move_entry(e, from, to);
		up_engine_touch(e, from, delay);
		up_engine_touch(e, to, delay);
		return;
	}
	size_t n = strlen(from);
	char dst[PATH_MAX];
	/* Collected first: moving rehashes the table. */
	size_t cnt = 0;
	for (up_jent *j = e->j.ents; j; j = j->hh.next)
		cnt += below(j->rel, from, n);
	char **rels = calloc(cnt ? cnt : 1, sizeof *rels);
	cnt = 0;
	for (up_jent *j = e->j.ents; rels && j; j = j->hh.next)
		if (below(j->rel, from, n))
			rels[cnt++] = strdup(j->rel);
	for (size_t i = 0; rels && i < cnt; i++) {
		if (rels[i]) {
			snprintf(dst, sizeof dst, "%s%s", to, rels[i] + n);
			move_entry(e, rels[i], dst);
			up_engine_touch(e, rels[i], delay);
		}
		free(rels[i]);
	}
	free(rels);
	for (up_watch *w = e->watches; w; w = w->hh.next) {
		if (strcmp(w->rel, from) == 0 || below(w->rel, from, n)) {
			snprintf(dst, sizeof dst, "%s%s", to, w->rel + n);
			char *c = strdup(dst);
			if (c) {
				free(w->rel);
				w->rel = c;
			}
		}
	}
	up_engine_walk(e, to, delay);
}

/* One-sided moves: out of the tree (or to one of our names), into it (or from one). */
static void moved_out(up_engine *e, const char *rel, int isdir) REQUIRES(e->lock)
{
	if (isdir)
		dir_gone(e, rel);
	else
		up_engine_touch(e, rel, 0);
}

static void moved_in(up_engine *e, const char *rel, int isdir) REQUIRES(e->lock)
{
	if (isdir)
		up_engine_walk(e, rel, e->route->upload_delay_ms);
	else
		up_engine_touch(e, rel, e->route->upload_delay_ms);
}

typedef struct pending_from {
	uint32_t cookie;
	int isdir, set;
	char rel[PATH_MAX];
} pending_from;

static void flush_from(up_engine *e, pending_from *pf) REQUIRES(e->lock)
{
	if (pf->set && !ours(pf->rel))
		moved_out(e, pf->rel, pf->isdir);
	pf->set = 0;
}

static void handle_event(up_engine *e, const struct inotify_event *ev, pending_from *pf) REQUIRES(e->lock)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		log_warn("agent: inotify queue overflowed: looking at the whole tree %s again",
			 e->route->local);
		up_engine_walk(e, "", 0);
		for (up_jent *j = e->j.ents; j; j = j->hh.next)
			up_engine_touch(e, j->rel, 0);
		return;
	}
	up_watch *w = NULL;
	HASH_FIND_INT(e->watches, &ev->wd, w);
	if (!w) {
		log_debug("agent: event %#x for unknown wd %d (%s)", (unsigned)ev->mask, ev->wd,
			  ev->len ? ev->name : "");
		return;
	}
	if (ev->mask & IN_IGNORED) {
		HASH_DEL(e->watches, w);
		free(w->rel);
		free(w);
		return;
	}
	if (!ev->len)
		return;
	char rel[PATH_MAX];
	join(rel, sizeof rel, w->rel, ev->name);
	log_debug("agent: event %#x wd %d %s", (unsigned)ev->mask, ev->wd, rel);
	int isdir = (ev->mask & IN_ISDIR) != 0;
	uint64_t delay = e->route->upload_delay_ms;
	if (ev->mask & IN_MOVED_TO) {
		if (pf->set && pf->cookie == ev->cookie) {
			pf->set = 0;
			if (ours(pf->rel) || ours(rel)) {
				if (!ours(pf->rel))
					moved_out(e, pf->rel, isdir);
				if (!ours(rel))
					moved_in(e, rel, isdir);
			} else {
				moved(e, pf->rel, rel, isdir);
			}
			return;
		}
		flush_from(e, pf);
		if (!ours(rel))
			moved_in(e, rel, isdir);
		return;
	}
	flush_from(e, pf);
	if (ev->mask & IN_MOVED_FROM) {
		pf->set = 1;
		pf->cookie = ev->cookie;
		pf->isdir = isdir;
		snprintf(pf->rel, sizeof pf->rel, "%s", rel);
		return;
	}
	if (isdir) {
		if (ev->mask & IN_CREATE)
			up_engine_walk(e, rel, delay);
		return;
	}
	up_item *it = NULL;
	if (ev->mask & (IN_CLOSE_WRITE | IN_CREATE))
		e->last_save_event = clock_ms();
	if (ev->mask & (IN_CLOSE_WRITE | IN_CREATE | IN_DELETE)) {
		up_engine_touch(e, rel, delay);
		HASH_FIND_STR(e->items, rel, it);
		if (it && (ev->mask & IN_CLOSE_WRITE))
			it->closed = CLOSE_RECHECKS;
	} else if (ev->mask & (IN_MODIFY | IN_ATTRIB)) {
		/* A file being written: looked at again once it is closed, or for a snapshot. */
		HASH_FIND_STR(e->items, rel, it);
		if (!it)
			mark(e, rel, (ev->mask & IN_MODIFY) ? 1000 : delay, 0);
		else if (ev->mask & IN_MODIFY)
			it->closed = 0; /* written again: open means open */
		e->last_activity = clock_ms();
	}
}

/* Reads every queued event (non-blocking). */
static void read_events(up_engine *e) REQUIRES(e->lock)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	pending_from *pf = calloc(1, sizeof *pf);
	for (;;) {
		ssize_t n = read(e->inotify_fd, buf, sizeof buf);
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (pf)
				handle_event(e, ev, pf);
			p += sizeof *ev + ev->len;
		}
	}
	if (pf)
		flush_from(e, pf);
	free(pf);
}

/* Pushes due items to the run queue; returns ms until the next one is due (<= 1000). */
static uint64_t schedule(up_engine *e) REQUIRES(e->lock)
{
	uint64_t now = clock_ms(), next = 1000;
	uint64_t quiet = e->route->upload_delay_ms, since = now - e->last_save_event;
	int hold = !e->draining && e->last_save_event && since < quiet;
	for (up_item *it = e->items; it; it = it->hh.next) {
		if (it->state != IT_WAIT)
			continue;
		if (it->due <= now && hold && now - it->due < SAVE_HOLD_MAX_MS) {
			if (quiet - since < next)
				next = quiet - since;
			continue;
		}
		if (it->due <= now) {
			it->state = IT_QUEUED;
			it->next = NULL;
			if (e->queue_tail)
				e->queue_tail->next = it;
			else
				e->queue = it;
			e->queue_tail = it;
			pthread_cond_signal(&e->work);
		} else if (it->due - now < next) {
			next = it->due - now;
		}
	}
	return next;
}

static void item_free(up_engine *e, up_item *it) REQUIRES(e->lock)
{
	HASH_DEL(e->items, it);
	free(it->rel);
	free(it);
}

/* The end of one look at it. */
static void looked(up_engine *e, up_item *it, int rc, const char *why) REQUIRES(e->lock)
{
	uint64_t now = clock_ms();
	it->state = IT_WAIT;
	if (rc < 0) {
		it->failures++;
		unsigned shift = it->failures < 3 ? (unsigned)it->failures : 3; /* at most 8 s */
		it->due = now + (1000u << shift);
		if (it->failures == 1 || it->failures % 10 == 0)
			log_error("write route %s: %s is not in s3://%s/%s yet (%s%s%s); the file stays "
				  "in the tree and the agent tries again", e->route->local, it->rel,
				  e->route->bucket, e->route->prefix, strerror(-rc), why[0] ? ": " : "", why);
	} else if (it->again || rc == LOOK_AGAIN) {
		it->again = 0;
		it->due = now + e->route->upload_delay_ms;
	} else if (rc == LOOK_OPEN && it->closed > 0) {
		it->closed--;
		it->open = 0; /* still waited for by drains */
		it->due = now + CLOSE_RECHECK_MS;
	} else if (rc == LOOK_OPEN && e->route->snapshot_interval_ms) {
		it->open = 1;
		it->due = it->last_put + e->route->snapshot_interval_ms;
		if (it->due < now + 1000)
			it->due = now + 1000;
	} else {
		item_free(e, it);
	}
	pthread_cond_broadcast(&e->changed);
}

static void worker(void *arg)
{
	up_engine *e = arg;
	lock_take(&e->lock);
	while (!e->stop) {
		if (e->dels) {
			up_del *d = e->dels;
			e->dels = d->next;
			e->deleting++;
			int used = up_journal_key_used(&e->j, d->key, NULL);
			lock_give(&e->lock);
			if (!used) {
				s3_error err;
				log_debug("agent: DELETE %s", d->key);
				int rc = s3_delete(e->client, e->route->bucket, d->key, &err);
				if (rc < 0 && rc != -ENOENT)
					log_warn("write route %s: cannot delete s3://%s/%s: %s",
						 e->route->local, e->route->bucket, d->key, strerror(-rc));
			}
			free(d->key);
			free(d);
			lock_take(&e->lock);
			e->deleting--;
			pthread_cond_broadcast(&e->changed);
			continue;
		}
		up_item *it = e->queue;
		if (!it) {
			lock_wait(&e->work, &e->lock, NULL);
			continue;
		}
		e->queue = it->next;
		if (!e->queue)
			e->queue_tail = NULL;
		it->state = IT_RUNNING;
		it->again = 0;
		lock_give(&e->lock);
		char why[UP_WHY_MAX] = "";
		int rc = up_reconcile(e, it, 0, why, sizeof why);
		if (rc == LOOK_DONE)
			up_evict(e);
		lock_take(&e->lock);
		log_debug("agent: looked at %s: %d (again %d)", it->rel, rc, it->again);
		looked(e, it, rc, why);
	}
	lock_give(&e->lock);
}

/* Paths dirty since before seq that a drain waits for, and those that failed. */
/* The size the pending files have now in the tree (a stat each: only for UP_STATS). */
static uint64_t pending_bytes(up_engine *e) REQUIRES(e->lock)
{
	uint64_t sum = 0;
	for (up_item *it = e->items; it; it = it->hh.next) {
		struct stat st;
		if (!it->open && fstatat(e->rootfd, it->rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
	}
	return sum;
}

static void count_left(up_engine *e, uint64_t seq, uint64_t *pending, uint64_t *failed)
	REQUIRES(e->lock)
{
	*pending = *failed = 0;
	for (up_item *it = e->items; it; it = it->hh.next) {
		if (it->seq <= seq && !it->open)
			(*pending)++;
		if (it->failures)
			(*failed)++;
	}
	for (up_del *d = e->dels; d; d = d->next)
		(*pending)++;
	*pending += e->deleting;
}

static void drain(up_engine *e, uint32_t timeout_ms, up_reply *rep)
{
	lock_take(&e->lock);
	read_events(e);
	uint64_t target = e->seq, now = clock_ms(), end = now + timeout_ms;
	for (up_item *it = e->items; it; it = it->hh.next)
		if (it->seq <= target && it->state == IT_WAIT && !it->open)
			it->due = now; /* exit does not wait the delay out */
	e->draining++;
	wake(e);
	for (;;) {
		count_left(e, target, &rep->pending, &rep->failed);
		if (!rep->pending || clock_ms() >= end)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		lock_wait(&e->changed, &e->lock, &ts);
	}
	e->draining--;
	lock_give(&e->lock);
}

/* fsync: rel is looked at now, on this thread, open or not. */
static int sync_now(up_engine *e, const char *rel, char *why, size_t whylen)
{
	lock_take(&e->lock);
	read_events(e);
	up_engine_touch(e, rel, 0);
	up_item *it = NULL;
	HASH_FIND_STR(e->items, rel, it);
	while (it && it->state != IT_WAIT) {
		lock_wait(&e->changed, &e->lock, NULL);
		it = NULL;
		HASH_FIND_STR(e->items, rel, it);
	}
	if (!it) {
		/* a worker finished it meanwhile: touch again and look once more */
		up_engine_touch(e, rel, 0);
		HASH_FIND_STR(e->items, rel, it);
	}
	int rc = 0;
	if (it) {
		it->state = IT_RUNNING;
		lock_give(&e->lock);
		rc = up_reconcile(e, it, 1, why, whylen);
		lock_take(&e->lock);
		it->again = 0;
		looked(e, it, rc < 0 ? rc : LOOK_DONE, why);
	}
	lock_give(&e->lock);
	return rc < 0 ? rc : 0;
}

static void serve_conn(void *arg)
{
	up_engine *e = ((void **)arg)[0];
	int sock = (int)(intptr_t)((void **)arg)[1];
	free(arg);
	char msg[UP_MSG_MAX + 1];
	for (;;) {
		ssize_t n;
		while ((n = recv(sock, msg, UP_MSG_MAX, 0)) < 0 && errno == EINTR)
			;
		if (n < (ssize_t)sizeof(up_req))
			break;
		msg[n] = '\0';
		up_req q;
		memcpy(&q, msg, sizeof q);
		const char *rel = msg + sizeof q;
		up_reply rep;
		memset(&rep, 0, sizeof rep);
		if (strstr(rel, "/../") || strncmp(rel, "../", 3) == 0 || strcmp(rel, "..") == 0 ||
		    rel[0] == '/') {
			rep.rc = -EINVAL;
		} else if (q.op == UP_FETCH) {
			rep.rc = up_fetch_placeholder(e, rel, rep.why, sizeof rep.why);
		} else if (q.op == UP_SYNC) {
			rep.rc = sync_now(e, rel, rep.why, sizeof rep.why);
		} else if (q.op == UP_DRAIN) {
			drain(e, q.timeout_ms, &rep);
		} else if (q.op == UP_STATS) {
			lock_take(&e->lock);
			count_left(e, UINT64_MAX, &rep.pending, &rep.failed);
			rep.pending_bytes = pending_bytes(e);
			lock_give(&e->lock);
			s3_stats cs;
			s3_client_stats(e->client, &cs);
			rep.retries = cs.retries;
		} else if (q.op != UP_ATTACH) {
			break;
		}
		lock_take(&e->lock);
		rep.uploaded = e->uploaded;
		rep.bytes = e->bytes;
		lock_give(&e->lock);
		if (send(sock, &rep, sizeof rep, MSG_NOSIGNAL) != (ssize_t)sizeof rep)
			break;
	}
	close(sock);
	lock_take(&e->lock);
	e->last_activity = clock_ms();
	lock_give(&e->lock);
	atomic_fetch_sub(&e->conns, 1);
}

static void accept_one(up_engine *e)
{
	int sock = accept4(e->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (sock < 0)
		return;
	void **arg = malloc(2 * sizeof *arg);
	if (!arg || !fs_peer_is_us(sock)) {
		free(arg);
		close(sock);
		return;
	}
	arg[0] = e;
	arg[1] = (void *)(intptr_t)sock;
	atomic_fetch_add(&e->conns, 1);
	if (pool_submit(e->conn_queue, serve_conn, arg) != 0) {
		free(arg);
		close(sock);
		atomic_fetch_sub(&e->conns, 1);
	}
}

/* Multipart uploads a dead agent left: aborted, so that no parts stay billed. */
static void abort_leftovers(up_engine *e)
{
	for (up_mpu_rec *m = e->j.mpus, *next; m; m = next) {
		next = m->hh.next;
		s3_error err;
		log_info("write route %s: aborting the multipart upload of %s a dead agent left",
			 e->route->local, m->key);
		s3_mpu_abort(e->client, e->route->bucket, m->key, m->id, &err);
		up_journal_mpu(&e->j, m->id, m->key, 0);
	}
}

/* Makes the tree (or checks the one there) and opens it, every level checked. */
static int open_tree(up_engine *e)
{
	const char *local = e->route->local;
	char bad[PATH_MAX + 128];
	e->rootfd = fs_open_dir_safe(local, 0755, 0, bad, sizeof bad);
	if (e->rootfd >= 0)
		return 0;
	log_error("write route %s: refusing it: %s%s", local, bad,
		  e->rootfd == -EACCES || e->rootfd == -EROFS ? " (mount a volume there, e.g. an "
		  "emptyDir, or create it writable for this user)" : "");
	return e->rootfd;
}

static int take_over(up_engine *e)
{
	char bad[PATH_MAX + 128];
	int rc = up_state_make(e->route, e->state, sizeof e->state, bad, sizeof bad);
	if (rc < 0) {
		log_error("write route %s: refusing the spool's state directory: %s",
			  e->route->local, bad);
		return rc;
	}
	char lock[PATH_MAX];
	snprintf(lock, sizeof lock, "%s/agent.lock", e->state);
	e->lock_fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (e->lock_fd < 0 || flock(e->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_error("write route %s: another agent keeps this tree in sync", e->route->local);
		return rc;
	}
	if ((rc = open_tree(e)) < 0)
		return rc;
	struct stat st;
	fstat(e->rootfd, &st);
	if ((rc = up_journal_open(&e->j, e->state, e->route->prefix, st.st_dev, st.st_ino)) < 0) {
		log_error("write route %s: journal in %s: %s", e->route->local, e->state,
			  strerror(-rc));
		return rc;
	}
	s3_error err;
	if ((rc = s3_client_new(e->route->store, &e->client, &err)) < 0) {
		char msg[300];
		log_error("write route %s: %s", e->route->local, s3_error_str(&err, msg, sizeof msg));
		return rc;
	}
	e->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (e->inotify_fd < 0)
		return -errno;
	/* Before any worker or connection thread exists, and without the lock: its aborts are
	 * network requests (no lock is held across network I/O). */
	abort_leftovers(e);
	lock_take(&e->lock);
	e->taking_over = 1;
	up_engine_walk(e, "", 0);
	e->taking_over = 0;
	/* What the journal has and the tree lost: deleted while no agent watched. */
	for (up_jent *j = e->j.ents; j; j = j->hh.next)
		up_engine_touch(e, j->rel, 0);
	lock_give(&e->lock);
	if (!e->once)
		up_populate(e);
	return 0;
}

long up_engine_run(const cfg *c, const cfg_route *r, int listen_fd, int once,
		   int (*ready)(void))
{
	up_engine *e = calloc(1, sizeof *e);
	if (!e)
		return -ENOMEM;
	e->cfg = c;
	e->route = r;
	e->once = once;
	e->listen_fd = listen_fd;
	e->rootfd = e->inotify_fd = e->lock_fd = -1;
	e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	lock_init(&e->lock);
	pthread_cond_init(&e->work, NULL);
	pthread_cond_init(&e->changed, NULL);
	/* Leases tell whether a file is open for writing; their break signal is not needed. */
	signal(SIGIO, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	long rc = take_over(e);
	if (rc < 0)
		return rc;
	if (ready && ready() < 0)
		return -ECHILD;
	/* Each upload worker is one long job that takes files off e->queue until e->stop. */
	unsigned nworkers = r->upload_workers ? r->upload_workers : 1;
	pool_queue *workers = pool_queue_new("rws-upload", nworkers);
	e->conn_queue = pool_queue_new("rws-agent-conn", 0);
	unsigned started = 0;
	for (; workers && e->conn_queue && started < nworkers; started++)
		if (pool_submit(workers, worker, e) != 0)
			break;
	if (!started) {
		log_error("write route %s: cannot start upload threads", r->local);
		return -EAGAIN;
	}
	uint32_t idle_ms = c->agent_idle_ms > 10000 ? c->agent_idle_ms : 10000;
	lock_take(&e->lock);
	e->last_activity = clock_ms();
	for (;;) {
		read_events(e);
		uint64_t next = schedule(e);
		uint64_t pending, failed;
		count_left(e, UINT64_MAX, &pending, &failed);
		uint64_t quiet = clock_ms() - e->last_activity;
		if (once && (!pending || pending == failed) && !e->queue) {
			rc = (long)pending;
			break;
		}
		if (!once && !pending && atomic_load(&e->conns) == 0 && quiet >= idle_ms) {
			rc = 0;
			break;
		}
		lock_give(&e->lock);
		struct pollfd p[3] = { { .fd = e->inotify_fd, .events = POLLIN },
				       { .fd = e->wake_fd, .events = POLLIN },
				       { .fd = listen_fd, .events = POLLIN } };
		int np = poll(p, listen_fd >= 0 ? 3 : 2, (int)next);
		if (np > 0 && (p[1].revents & POLLIN)) {
			uint64_t v;
			if (read(e->wake_fd, &v, sizeof v) < 0)
				log_debug("agent: wake read: %s", strerror(errno));
		}
		if (np > 0 && listen_fd >= 0 && (p[2].revents & POLLIN))
			accept_one(e);
		lock_take(&e->lock);
	}
	e->stop = 1;
	pthread_cond_broadcast(&e->work);
	lock_give(&e->lock);
	pool_queue_drain(workers);
	pool_queue_free(workers);
	up_journal_close(&e->j);
	/* e itself stays: connection threads may still hold it until the process exits. */
	return rc;
}
