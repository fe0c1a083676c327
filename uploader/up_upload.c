/* Moving spool files to the store: PutObject or multipart with parallel parts, the queue
 * and its worker threads, and the drain at exit. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/thread.h"
#include "uploader/up_priv.h"

typedef struct mpu {
	const s3_api *api;
	s3_client *c;
	const char *bucket, *key, *upload_id;
	int fd;
	uint64_t size, part_size;
	int nparts;
	atomic_int next;         /* next part number to take */
	atomic_int failed;       /* first error (-errno) */
	s3_part *parts;
} mpu;

static void *part_worker(void *arg)
{
	mpu *m = arg;
	if (up.hooks.thread_start)
		up.hooks.thread_start();
	for (int n; !atomic_load(&m->failed) && (n = atomic_fetch_add(&m->next, 1)) <= m->nparts;) {
		uint64_t off = (uint64_t)(n - 1) * m->part_size;
		uint64_t len = m->size - off < m->part_size ? m->size - off : m->part_size;
		s3_error err;
		int rc = m->api->mpu_part_fd(m->c, m->bucket, m->key, m->upload_id, n, m->fd,
					     (off_t)off, len, &m->parts[n - 1], &err);
		if (rc < 0) {
			int zero = 0;
			atomic_compare_exchange_strong(&m->failed, &zero, rc);
		}
	}
	return NULL;
}

/* Multipart: parts of part_size (grown so there are at most 10,000), part_concurrency at a
 * time, then complete; abort on any failure so no parts are left billed. */
/* Journals a multipart upload id (an append: the rest of the record stays valid). */
static void journal_upload_id(const char *meta, const char *upload_id)
{
	int fd = meta ? open(meta, O_WRONLY | O_APPEND | O_CLOEXEC) : -1;
	if (fd < 0)
		return;
	char line[S3_UPLOAD_ID_MAX + 16];
	int n = snprintf(line, sizeof line, "upload_id=%s\n", upload_id);
	if (n > 0 && (size_t)n < sizeof line && write(fd, line, (size_t)n) < 0)
		log_debug("cannot journal upload id in %s", meta);
	close(fd);
}

static int put_multipart(const up_route *ur, const s3_api *api, s3_client *c, const char *key,
			 int fd, uint64_t size, const char *meta)
{
	mpu m = { .api = api, .c = c, .bucket = ur->cfg->bucket, .key = key, .fd = fd,
		  .size = size, .part_size = ur->cfg->part_size };
	if ((size + m.part_size - 1) / m.part_size > S3_MAX_PARTS)
		m.part_size = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
	m.nparts = (int)((size + m.part_size - 1) / m.part_size);
	atomic_init(&m.next, 1);
	atomic_init(&m.failed, 0);
	char upload_id[S3_UPLOAD_ID_MAX];
	s3_error err;
	/* Journaled before the request: a process killed before it learns the id leaves an
	 * upload that recovery must find by listing. */
	journal_upload_id(meta, "?");
	int rc = api->mpu_create(c, ur->cfg->bucket, key, upload_id, &err);
	if (rc < 0)
		return rc;
	m.upload_id = upload_id;
	journal_upload_id(meta, upload_id);
	m.parts = calloc((size_t)m.nparts, sizeof *m.parts);
	if (!m.parts) {
		api->mpu_abort(c, ur->cfg->bucket, key, upload_id, &err);
		return -ENOMEM;
	}
	unsigned helpers = ur->cfg->part_concurrency - 1;
	pthread_t threads[64];
	unsigned started = 0;
	for (; started < helpers && started < 64 && (int)started + 1 < m.nparts; started++)
		if (thread_start(&threads[started], 0, "rws-upload-part", part_worker, &m) != 0)
			break;
	part_worker(&m);
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	rc = atomic_load(&m.failed);
	if (rc == 0)
		rc = api->mpu_complete(c, ur->cfg->bucket, key, upload_id, m.parts, m.nparts, NULL,
				       &err);
	if (rc < 0)
		api->mpu_abort(c, ur->cfg->bucket, key, upload_id, &err);
	free(m.parts);
	return rc;
}

int up_put(const up_route *ur, const char *key, const char *data, const char *meta,
	   int *attempts)
{
	s3_client *c;
	const s3_api *api;
	int rc = up_store(ur, &c, &api);
	if (rc < 0)
		return rc;
	int fd = open(data, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	(*attempts)++;
	uint64_t size = (uint64_t)st.st_size;
	if (size >= ur->cfg->multipart_threshold) {
		rc = put_multipart(ur, api, c, key, fd, size, meta);
	} else {
		s3_error err;
		rc = api->put_fd(c, ur->cfg->bucket, key, fd, 0, size, NULL, &err);
		if (rc < 0 && rc != -ECANCELED) {
			char msg[512];
			log_error("write route %s: upload of s3://%s/%s failed: %s", ur->cfg->local,
				  ur->cfg->bucket, key, api->error_str(&err, msg, sizeof msg));
		}
	}
	close(fd);
	return rc;
}

/* Spool files a worker deletes once it has let go of up.lock: unlinking a file of a few
 * MiB takes milliseconds on ext4, and under the lock every open and close of a write route
 * would wait for it. Their names are never reused (new_file numbers them), so nothing can
 * take them over meanwhile. */
typedef struct discard_paths {
	char data[PATH_MAX];
	char meta[PATH_MAX + 8];
	int set;
} discard_paths;

static void discard_later(discard_paths *d, const up_file *f)
{
	memcpy(d->data, f->data, sizeof d->data);
	memcpy(d->meta, f->meta, sizeof d->meta);
	d->set = 1;
}

/* Ends an upload of f (caller holds up.lock): done, again, or failed. uploaded: whether
 * this worker did put it under uploaded_key (not for a file removed while queued). A spool
 * file that is done with is left in *d for the caller to delete after unlocking. */
static void finish(up_file *f, int rc, const char *uploaded_key, int uploaded, discard_paths *d)
{
	const s3_api *api = s3_dl();
	int err;
	s3_client *c = up_client(f->ur, &err);
	if (uploaded && (f->removed || strcmp(uploaded_key, f->key) != 0) && api && c) {
		/* Unlinked or renamed while it was on its way: that key must not stay, unless
		 * a newer file of that name is waiting to be uploaded over it anyway. */
		s3_error e;
		if (rc == 0 && !up_find(f->ur, uploaded_key))
			api->delete(c, f->ur->cfg->bucket, uploaded_key, &e);
		up_tomb_drop(f->ur, uploaded_key);
	}
	if (f->removed) {
		/* Already out of the pending hash (unlink or replacement took it out). */
		discard_later(d, f);
		if (f->refs == 0)
			free(f);
		else
			f->state = UP_WRITING;
	} else if (rc == 0 && !f->again && strcmp(uploaded_key, f->key) == 0) {
		up.uploaded++;
		struct stat st;
		if (stat(f->data, &st) == 0)
			up.uploaded_bytes += (uint64_t)st.st_size;
		HASH_DEL(up.pending, f);
		discard_later(d, f);
		free(f);
	} else if (rc == 0 || f->again) {
		f->again = 0;
		f->state = UP_WRITING;
		if (f->refs == 0)
			up_enqueue(f);
	} else {
		f->state = UP_FAILED;
		up.failed++;
		up_write_meta(f, "failed", 1);
		log_error("write route %s: s3://%s/%s was not uploaded (%s); the data stays in %s "
			  "for `rwsplit recover`", f->ur->cfg->local, f->ur->cfg->bucket, f->key,
			  strerror(-rc), f->data);
	}
	pthread_cond_broadcast(&up.changed);
}

int up_key_in_flight(const char *hkey)
{
	for (const up_inflight *i = up.inflight; i; i = i->next)
		if (strcmp(i->hkey, hkey) == 0)
			return 1;
	return 0;
}

int up_upload_now(up_file *f)
{
	char key[RT_KEY_MAX + 1], hkey[sizeof f->hkey];
	memcpy(key, f->key, sizeof key);
	memcpy(hkey, f->hkey, sizeof hkey);
	up_inflight me = { .hkey = hkey, .next = up.inflight };
	up.inflight = &me;
	f->state = UP_UPLOADING;
	f->maybe_stored = 1;
	pthread_mutex_unlock(&up.lock);
	int attempts = 0;
	int rc = up_put(f->ur, key, f->data, f->meta, &attempts);
	pthread_mutex_lock(&up.lock);
	for (up_inflight **p = &up.inflight; *p; p = &(*p)->next)
		if (*p == &me) {
			*p = me.next;
			break;
		}
	return rc;
}

/* CLOCK_REALTIME in milliseconds: the clock pthread_cond_timedwait measures. */
static uint64_t realtime_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

static struct timespec timespec_of_ms(uint64_t ms)
{
	return (struct timespec){ .tv_sec = (time_t)(ms / 1000),
				  .tv_nsec = (long)(ms % 1000) * 1000000L };
}

/* The first queued file that may be uploaded now: its upload_delay is over (or the process
 * is exiting) and no upload of its key is under way. Otherwise NULL, with *wake_ms set to
 * when the earliest delay ends (0: nothing to wait for but a change). Caller holds up.lock. */
static up_file *next_ready(uint64_t *wake_ms)
{
	uint64_t now = realtime_ms();
	*wake_ms = 0;
	for (up_file *f = up.queue; f; f = f->next) {
		if (up_key_in_flight(f->hkey))
			continue;
		if (up.drained || f->ready_ms <= now)
			return f;
		if (!*wake_ms || f->ready_ms < *wake_ms)
			*wake_ms = f->ready_ms;
	}
	return NULL;
}

static void *worker(void *unused)
{
	(void)unused;
	if (up.hooks.thread_start)
		up.hooks.thread_start();
	pthread_mutex_lock(&up.lock);
	for (;;) {
		uint64_t wake_ms;
		up_file *f = next_ready(&wake_ms);
		if (!f) {
			/* upload_delay: a rename or unlink may still make the upload moot. */
			struct timespec wake = timespec_of_ms(wake_ms);
			if (wake_ms)
				pthread_cond_timedwait(&up.changed, &up.lock, &wake);
			else
				pthread_cond_wait(&up.changed, &up.lock);
			continue;
		}
		up_dequeue(f);
		up.busy++;
		char key[RT_KEY_MAX + 1];
		memcpy(key, f->key, sizeof key);
		int uploaded = !f->removed;
		int rc = uploaded ? up_upload_now(f) : 0;
		discard_paths d = { .set = 0 };
		finish(f, rc, key, uploaded, &d);
		if (d.set) {
			/* busy until the files are gone: the exit drain then leaves no spool
			 * file behind to remove. */
			pthread_mutex_unlock(&up.lock);
			up_discard(d.data, d.meta);
			pthread_mutex_lock(&up.lock);
		}
		up.busy--;
		pthread_cond_broadcast(&up.changed);
	}
	return NULL;
}

static unsigned max_workers(void)
{
	unsigned n = 1;
	for (size_t i = 0; i < up.cfg->nroutes; i++)
		if (up.cfg->routes[i].mode == CFG_WRITE && up.cfg->routes[i].upload_workers > n)
			n = up.cfg->routes[i].upload_workers;
	return n;
}

void up_enqueue(up_file *f)
{
	f->state = UP_QUEUED;
	f->ready_ms = realtime_ms() + f->ur->cfg->upload_delay_ms;
	f->next = NULL;
	if (up.queue_tail)
		up.queue_tail->next = f;
	else
		up.queue = f;
	up.queue_tail = f;
	if (up.workers < max_workers() && up.workers <= up.busy) {
		if (thread_start(NULL, 0, "rws-upload", worker, NULL) == 0)
			up.workers++;
	}
	pthread_cond_broadcast(&up.changed);
}

void up_dequeue(up_file *f)
{
	up_file **p = &up.queue;
	up.queue_tail = NULL;
	while (*p) {
		if (*p == f) {
			*p = f->next;
		} else {
			up.queue_tail = *p;
			p = &(*p)->next;
		}
	}
	f->state = UP_WRITING;
}

static uint32_t drain_timeout_ms(void)
{
	uint32_t ms = 0;
	for (size_t i = 0; i < up.cfg->nroutes; i++)
		if (up.cfg->routes[i].mode == CFG_WRITE && up.cfg->routes[i].drain_timeout_ms > ms)
			ms = up.cfg->routes[i].drain_timeout_ms;
	return ms;
}

void up_drain(void)
{
	if (!up.cfg)
		return;
	pthread_mutex_lock(&up.lock);
	if (up.drained) {
		pthread_mutex_unlock(&up.lock);
		return;
	}
	up.drained = 1;
	pthread_cond_broadcast(&up.changed); /* workers waiting out upload_delay start now */
	/* Files still open at exit are closed by the kernel: upload them too. */
	pid_t me = getpid();
	for (up_file *f = up.pending, *next; f; f = next) {
		next = f->hh.next;
		if (f->owner == me && f->state == UP_WRITING && !f->removed)
			up_enqueue(f);
	}
	struct timespec deadline = timespec_of_ms(realtime_ms() + drain_timeout_ms());
	while ((up.queue || up.busy || up.recovering) &&
	       pthread_cond_timedwait(&up.changed, &up.lock, &deadline) == 0)
		;
	/* Workers this process started may have been killed (a pool's terminate) with files
	 * in their spools: the last process out uploads them. */
	if (getpid() == me && !up.recovering) {
		pthread_mutex_unlock(&up.lock);
		up_recover_dead();
		pthread_mutex_lock(&up.lock);
	}
	unsigned long pending = 0;
	for (up_file *f = up.pending; f; f = f->hh.next)
		if (f->owner == me)
			pending++;
	int any = up.uploaded || up.failed || pending;
	if (any)
		log_info("write summary: %llu files uploaded (%llu bytes), %lu pending, %llu failed",
			 (unsigned long long)up.uploaded, (unsigned long long)up.uploaded_bytes,
			 pending, (unsigned long long)up.failed);
	if (pending)
		log_warn("write: %lu upload%s did not finish before exit; the data stays in the "
			 "spool: run `rwsplit recover`", pending, pending == 1 ? "" : "s");
	for (size_t i = 0; i < up.cfg->nroutes; i++)
		if (up.cfg->routes[i].mode == CFG_WRITE)
			up_spool_tidy(&up.routes[i]);
	pthread_mutex_unlock(&up.lock);
}
