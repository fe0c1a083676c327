/* Opening files under a write route, and what closing and fsync do to them. */
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

/* Copies the object into fd (append, or open without O_TRUNC). Returns 0, or -errno;
 * -ENOENT when there is no such object. */
static int copy_in(const up_route *ur, const char *key, int fd)
{
	s3_client *c;
	const s3_api *api;
	int rc = up_store(ur, &c, &api);
	if (rc < 0)
		return rc;
	uint64_t got;
	s3_error err;
	return api->get_fd(c, ur->cfg->bucket, key, 0, S3_TO_END, fd, 0, &got, NULL, &err);
}

/* Objects of a write route opened for reading are read from a local copy. The copy is kept
 * (as rc.N in this process's spool directory, removed at exit) and reused while the object's
 * ETag is unchanged: TensorFlow's restore opens the same checkpoint file several times. */
typedef struct read_copy {
	char *hkey;
	char etag[80];
	char path[PATH_MAX];
	UT_hash_handle hh;
} read_copy;
static read_copy *read_copies; /* under up.lock */

/* Opens the kept copy of key if it has etag; -1 otherwise. Caller holds up.lock. */
static int open_kept(const up_route *ur, const char *key, const char *etag, int flags)
{
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, key, h, sizeof h);
	read_copy *rc = NULL;
	HASH_FIND_STR(read_copies, h, rc);
	if (!rc || !*etag || strcmp(rc->etag, etag) != 0)
		return -1;
	return open(rc->path, O_RDONLY | (flags & (O_CLOEXEC | O_NONBLOCK)));
}

/* Remembers path as the copy of key with etag (replacing an older one). Caller holds
 * up.lock. */
static void keep(const up_route *ur, const char *key, const char *etag, const char *path)
{
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, key, h, sizeof h);
	read_copy *rc = NULL;
	HASH_FIND_STR(read_copies, h, rc);
	if (!rc) {
		if (!(rc = calloc(1, sizeof *rc)) || !(rc->hkey = strdup(h))) {
			free(rc);
			unlink(path);
			return;
		}
		HASH_ADD_KEYPTR(hh, read_copies, rc->hkey, strlen(rc->hkey), rc);
	} else {
		unlink(rc->path); /* open fds keep the old bytes */
	}
	snprintf(rc->etag, sizeof rc->etag, "%s", etag);
	snprintf(rc->path, sizeof rc->path, "%s", path);
}

/* A read-only open of an object: its local copy, fetched unless one with the same ETag is
 * kept. Returns an fd or -errno (-ENOENT: no such object). */
static int open_object_copy(up_route *ur, const char *key, int flags)
{
	s3_client *c;
	const s3_api *api;
	int rc = up_store(ur, &c, &api);
	if (rc < 0)
		return rc;
	s3_error err;
	s3_object_info info;
	if ((rc = api->head_object(c, ur->cfg->bucket, key, &info, &err)) < 0)
		return rc;
	pthread_mutex_lock(&up.lock);
	int fd = open_kept(ur, key, info.etag, flags);
	unsigned n = ++ur->seq;
	pthread_mutex_unlock(&up.lock);
	if (fd >= 0)
		return fd;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/rc.%u", ur->mine, n);
	int wfd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (wfd < 0)
		return -errno;
	uint64_t got;
	rc = api->get_fd(c, ur->cfg->bucket, key, 0, S3_TO_END, wfd, 0, &got, &info, &err);
	close(wfd);
	if (rc == 0)
		rc = fd = open(path, O_RDONLY | (flags & (O_CLOEXEC | O_NONBLOCK)));
	if (rc < 0) {
		rc = rc == -1 ? -errno : rc;
		unlink(path);
		return rc;
	}
	pthread_mutex_lock(&up.lock);
	keep(ur, key, info.etag, path);
	pthread_mutex_unlock(&up.lock);
	return fd;
}

/* A new spool file for key. Caller holds up.lock. */
static up_file *new_file(up_route *ur, const char *key)
{
	up_file *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->ur = ur;
	f->owner = getpid();
	f->state = UP_WRITING;
	snprintf(f->key, sizeof f->key, "%s", key);
	unsigned n = ++ur->seq;
	snprintf(f->data, sizeof f->data, "%s/%u.data", ur->mine, n);
	snprintf(f->meta, sizeof f->meta, "%s/%u.meta", ur->mine, n);
	up_hkey(ur, key, f->hkey, sizeof f->hkey);
	up_tomb_drop(ur, key);
	return f;
}

static int writing(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
}

int up_open(const cfg_route *r, const char *rest, int flags, mode_t mode, up_file **out)
{
	(void)mode; /* objects have no mode */
	*out = NULL;
	up_route *ur = up_route_of(r);
	char key[RT_KEY_MAX + 1];
	int rc = up_key(ur, rest, 0, key, sizeof key);
	if (rc < 0)
		return rc;
	if (!*rest)
		return writing(flags) ? -EISDIR : -EISDIR;
	rc = up_prepare(ur);
	if (rc < 0)
		return rc;
	int keep = flags & (O_CLOEXEC | O_NONBLOCK | O_APPEND | O_ACCMODE);
	pthread_mutex_lock(&up.lock);
	up_file *f = up_find(ur, key);
	if (f && (flags & O_CREAT) && (flags & O_EXCL)) {
		pthread_mutex_unlock(&up.lock);
		return -EEXIST;
	}
	if (!writing(flags)) {
		/* Read-after-write: a pending file is read from the spool. */
		int fd = f ? open(f->data, O_RDONLY | (flags & (O_CLOEXEC | O_NONBLOCK))) : -1;
		pthread_mutex_unlock(&up.lock);
		if (f)
			return fd < 0 ? -errno : fd;
		return open_object_copy(ur, key, flags);
	}
	if (f) {
		/* Written again before its upload finished: the same spool file. */
		int fd = open(f->data, keep | ((flags & O_TRUNC) ? O_TRUNC : 0));
		if (fd < 0) {
			rc = -errno;
			pthread_mutex_unlock(&up.lock);
			return rc;
		}
		if (f->state == UP_QUEUED) {
			up_dequeue(f); /* back on the queue at the last close */
		} else if (f->state == UP_UPLOADING) {
			f->again = 1;
		} else if (f->state == UP_FAILED) {
			f->state = UP_WRITING;
		}
		f->refs++;
		pthread_mutex_unlock(&up.lock);
		*out = f;
		return fd;
	}
	f = new_file(ur, key);
	pthread_mutex_unlock(&up.lock);
	if (!f)
		return -ENOMEM;
	int fd = open(f->data, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		free(f);
		return rc;
	}
	f->maybe_stored = 1;
	if (!(flags & O_TRUNC)) {
		rc = copy_in(ur, key, fd);
		f->maybe_stored = rc != -ENOENT;
		if (rc == -ENOENT && !(flags & O_CREAT))
			goto on_error;
		if (rc == 0 && (flags & O_CREAT) && (flags & O_EXCL)) {
			rc = -EEXIST;
			goto on_error;
		}
		if (rc < 0 && rc != -ENOENT)
			goto on_error;
	} else if ((flags & O_CREAT) && (flags & O_EXCL)) {
		/* O_EXCL needs to know whether the object exists. */
		s3_client *c;
		const s3_api *api;
		s3_error err;
		s3_object_info info;
		int h = up_store(ur, &c, &api);
		if (h == 0)
			h = api->head_object(c, ur->cfg->bucket, key, &info, &err);
		if (h == 0) {
			rc = -EEXIST;
			goto on_error;
		}
		f->maybe_stored = h != -ENOENT;
	}
	rc = up_write_meta(f, "pending", 0);
	if (rc < 0)
		goto on_error;
	/* The program's own descriptor, with its access mode and flags. */
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	int pfd = open(proc, keep);
	if (pfd < 0) {
		rc = -errno;
		goto on_error;
	}
	close(fd);
	pthread_mutex_lock(&up.lock);
	up_file *other = up_find(ur, key);
	if (other) {
		/* Two threads created the same key at once: the later one replaces it. */
		HASH_DEL(up.pending, other);
		other->removed = 1;
	}
	f->refs = 1;
	HASH_ADD_STR(up.pending, hkey, f);
	pthread_mutex_unlock(&up.lock);
	*out = f;
	return pfd;
on_error:
	close(fd);
	up_discard(f->data, f->meta);
	free(f);
	return rc;
}

void up_ref(up_file *f)
{
	pthread_mutex_lock(&up.lock);
	f->refs++;
	pthread_mutex_unlock(&up.lock);
}

static int before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Stats data before fsync uploads it, so that the last close can tell whether anything was
 * written since. The kernel stamps files from a coarse clock, so a write in the same tick as
 * the stat could leave the times unchanged: the snapshot only counts once both times are
 * older than the current tick (waiting a tick or two if the file was just written). Every
 * later write is then stamped with a later time. Returns 1 when st is such a snapshot. */
static int snapshot(const char *data, struct stat *st)
{
	for (int i = 0; i < 20; i++) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME_COARSE, &now);
		if (stat(data, st) < 0)
			return 0;
		if (before(&st->st_mtim, &now) && before(&st->st_ctim, &now))
			return 1;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	return 0;
}

/* Whether f's spool file is as fsync uploaded it: any write or truncate since then moved
 * its modification or change time. */
static int unchanged_since_sync(const up_file *f)
{
	struct stat st;
	return f->synced && stat(f->data, &st) == 0 && st.st_size == f->synced_st.st_size &&
	       st.st_mtim.tv_sec == f->synced_st.st_mtim.tv_sec &&
	       st.st_mtim.tv_nsec == f->synced_st.st_mtim.tv_nsec &&
	       st.st_ctim.tv_sec == f->synced_st.st_ctim.tv_sec &&
	       st.st_ctim.tv_nsec == f->synced_st.st_ctim.tv_nsec;
}

void up_release(up_file *f)
{
	pthread_mutex_lock(&up.lock);
	if (--f->refs > 0) {
		pthread_mutex_unlock(&up.lock);
		return;
	}
	if (f->removed) {
		if (f->state != UP_UPLOADING && f->state != UP_QUEUED) {
			up_discard(f->data, f->meta);
			free(f);
		}
	} else if (f->owner != getpid()) {
		/* A forked child closing what its parent wrote: the parent uploads it. */
	} else if (f->state == UP_WRITING && unchanged_since_sync(f)) {
		/* fsync already put these very bytes under this key. */
		HASH_DEL(up.pending, f);
		up_discard(f->data, f->meta);
		free(f);
	} else if (f->state == UP_WRITING) {
		up_write_meta(f, "pending", 0);
		up_enqueue(f);
	}
	pthread_mutex_unlock(&up.lock);
}

int up_sync(up_file *f)
{
	pthread_mutex_lock(&up.lock);
	/* An upload already on its way covers everything written before it started only if
	 * nothing was written since; simplest and always right: wait for it, then upload. */
	if (f->state == UP_QUEUED)
		up_dequeue(f); /* uploaded here and now instead */
	while (f->state == UP_UPLOADING || up_key_in_flight(f->hkey))
		pthread_cond_wait(&up.changed, &up.lock);
	int rc = 0;
	if (!f->removed && f->owner == getpid()) {
		up_write_meta(f, "pending", 0);
		f->synced = snapshot(f->data, &f->synced_st);
		rc = up_upload_now(f);
		if (rc < 0 || f->again || f->removed)
			f->synced = 0;
		f->state = rc == 0 ? UP_WRITING : UP_FAILED;
		if (rc == 0) {
			up.uploaded++;
			up.uploaded_bytes += (uint64_t)f->synced_st.st_size;
		}
		pthread_cond_broadcast(&up.changed);
	}
	pthread_mutex_unlock(&up.lock);
	return rc < 0 ? -EIO : 0;
}
