/* The spool: per-process directories with a held lock, journal records, and recovery of
 * what processes that died left behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/sb.h"
#include "common/sha256.h"
#include "common/thread.h"
#include "uploader/up_priv.h"

up_state_t up;

int up_init(const cfg *c, const up_hooks *hooks)
{
	up.cfg = c;
	if (hooks)
		up.hooks = *hooks;
	pthread_mutex_init(&up.lock, NULL);
	pthread_cond_init(&up.changed, NULL);
	up.routes = calloc(c->nroutes ? c->nroutes : 1, sizeof *up.routes);
	if (!up.routes)
		return -ENOMEM;
	for (size_t i = 0; i < c->nroutes; i++) {
		up_route *ur = &up.routes[i];
		const cfg_route *r = &c->routes[i];
		ur->cfg = r;
		ur->index = i;
		ur->lock_fd = -1;
		if (r->mode != CFG_WRITE)
			continue;
		sb id = SB_INIT;
		sb_printf(&id, "%s\n%s\n%s", r->store->endpoint, r->bucket, r->prefix);
		char hex[65];
		sha256_hex(sb_str(&id), id.len, hex);
		sb_free(&id);
		int n = snprintf(ur->root, sizeof ur->root, "%s/%.16s", r->spool, hex);
		if (n < 0 || (size_t)n >= sizeof ur->root)
			return -ENAMETOOLONG;
	}
	return 0;
}

up_route *up_route_of(const cfg_route *r)
{
	return &up.routes[r - up.cfg->routes];
}

int up_key(const up_route *ur, const char *rest, int dir, char *key, size_t cap)
{
	long n = rt_object_key(ur->cfg, rest, dir, key, cap);
	return n < 0 ? (int)n : 0;
}

void up_hkey(const up_route *ur, const char *key, char *out, size_t cap)
{
	snprintf(out, cap, "%zu\n%s", ur->index, key);
}

void up_tomb_add(const up_route *ur, const char *key)
{
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, key, h, sizeof h);
	up_tomb *t = NULL;
	HASH_FIND_STR(up.tombs, h, t);
	if (t) {
		t->dropped = 0;
		return;
	}
	if (!(t = calloc(1, sizeof *t)) || !(t->hkey = strdup(h))) {
		free(t);
		return;
	}
	HASH_ADD_KEYPTR(hh, up.tombs, t->hkey, strlen(t->hkey), t);
}

static void tomb_free(up_tomb *t)
{
	/* The analyzer loses track of uthash's head after a deletion that empties it. */
	HASH_DEL(up.tombs, t); // NOLINT(clang-analyzer-unix.Malloc)
	free(t->hkey);
	free(t);
}

void up_tomb_drop(const up_route *ur, const char *key)
{
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, key, h, sizeof h);
	up_tomb *t = NULL;
	HASH_FIND_STR(up.tombs, h, t);
	if (!t || t->dropped)
		return;
	if (up.views)
		t->dropped = ++up.gen;
	else
		tomb_free(t);
}

int up_tomb_has(const up_route *ur, const char *key, uint64_t since)
{
	if (!up.tombs)
		return 0;
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, key, h, sizeof h);
	up_tomb *t = NULL;
	HASH_FIND_STR(up.tombs, h, t);
	return t && (!t->dropped || t->dropped > since);
}

int up_tomb_below(const up_route *ur, const char *prefix, uint64_t since)
{
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, prefix, h, sizeof h);
	size_t n = strlen(h);
	for (up_tomb *t = up.tombs; t; t = t->hh.next)
		if (strncmp(t->hkey, h, n) == 0 && (!t->dropped || t->dropped > since))
			return 1;
	return 0;
}

uint64_t up_view_begin(void)
{
	up.views++;
	return up.gen;
}

void up_view_end(void)
{
	if (--up.views)
		return;
	for (up_tomb *t = up.tombs, *next; t; t = next) {
		next = t->hh.next;
		if (t->dropped)
			tomb_free(t);
	}
}

up_file *up_find(const up_route *ur, const char *key)
{
	char h[RT_KEY_MAX + 24];
	up_hkey(ur, key, h, sizeof h);
	up_file *f = NULL;
	HASH_FIND_STR(up.pending, h, f);
	return f;
}

s3_client *up_client(const up_route *ur, int *err)
{
	s3_error e;
	s3_client *c = s3_dl_client(ur->cfg->store, err, &e);
	if (!c && *err != -ENOSYS)
		log_error("write route %s: %s", ur->cfg->local,
			  e.message[0] ? e.message : strerror(-*err));
	return c;
}

int up_store(const up_route *ur, s3_client **c, const s3_api **api)
{
	int rc;
	*c = up_client(ur, &rc);
	*api = s3_dl();
	return *c && *api ? 0 : rc ? rc : -ENOSYS;
}

/* Escapes a key for the journal: %XX for '%', newlines and other control bytes. */
static void escape_key(sb *out, const char *key)
{
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		if (*p == '%' || *p < 0x20 || *p == 0x7f)
			sb_printf(out, "%%%02X", *p);
		else
			sb_putc(out, (char)*p);
	}
}

static void unescape_key(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		unsigned v;
		if (*r == '%' && sscanf(r + 1, "%2x", &v) == 1) {
			*w++ = (char)v;
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

int up_write_meta(const up_file *f, const char *state, unsigned attempts)
{
	sb m = SB_INIT;
	sb_printf(&m, "bucket=%s\nkey=", f->ur->cfg->bucket);
	escape_key(&m, f->key);
	struct stat st;
	long long size = stat(f->data, &st) == 0 ? (long long)st.st_size : -1;
	sb_printf(&m, "\nsize=%lld\nstate=%s\nattempts=%u\n", size, state, attempts);
	/* Rewritten in place rather than through a temporary file and rename: creating a file
	 * costs ~0.5 ms on a cold ext4 inode table, and a sharded checkpoint closes hundreds.
	 * Write first, then cut: a process killed in between leaves the new record followed by
	 * the old one's tail, which never holds a key line (bucket and key do not change, so the
	 * old key line lies before the new end) and whose stray upload ids recovery's abort
	 * merely finds gone. Cutting first could leave a record without its key. */
	int rc = 0;
	int fd = open(f->meta, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = open(f->meta, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ssize_t w = fd < 0 ? -1 : pwrite(fd, sb_str(&m), m.len, 0);
	if (w < 0)
		rc = -errno;
	else if ((size_t)w != m.len)
		rc = -ENOSPC; /* a short write to a regular file: the filesystem is full */
	else if (ftruncate(fd, (off_t)m.len) < 0)
		rc = -errno;
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = -errno;
	sb_free(&m);
	return rc;
}

void up_discard(const char *data, const char *meta)
{
	unlink(data);
	unlink(meta);
}

typedef struct abort_ctx {
	up_route *ur;
	s3_client *c;
	const char *key;
} abort_ctx;

static int abort_listed(void *arg, const char *key, const char *upload_id)
{
	abort_ctx *ac = arg;
	s3_error e;
	if (strcmp(key, ac->key) == 0)
		s3_dl()->mpu_abort(ac->c, ac->ur->cfg->bucket, key, upload_id, &e);
	return 0;
}

/* Uploads every journaled file of a dead process's directory. Returns how many remain. */
static long recover_dir(up_route *ur, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	long left = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".meta") != 0)
			continue;
		char meta[PATH_MAX], data[PATH_MAX], line[RT_KEY_MAX * 3 + 32], key[RT_KEY_MAX * 3 + 1];
		int nm = snprintf(meta, sizeof meta, "%s/%s", dir, de->d_name);
		int nd = snprintf(data, sizeof data, "%s/%.*s.data", dir, (int)(len - 5), de->d_name);
		if (nm < 0 || nd < 0 || (size_t)nm >= sizeof meta || (size_t)nd >= sizeof data)
			continue;
		FILE *m = fopen(meta, "re");
		key[0] = '\0';
		char upload_ids[4][S3_UPLOAD_ID_MAX];
		int nids = 0;
		while (m && fgets(line, sizeof line, m)) {
			if (strncmp(line, "upload_id=", 10) == 0 && nids < 4) {
				size_t ilen = strcspn(line + 10, "\n");
				if (ilen > 0 && ilen < S3_UPLOAD_ID_MAX) {
					memcpy(upload_ids[nids], line + 10, ilen);
					upload_ids[nids++][ilen] = '\0';
				}
			}
			if (strncmp(line, "key=", 4) == 0) {
				size_t klen = strcspn(line + 4, "\n");
				if (klen < sizeof key) {
					memcpy(key, line + 4, klen);
					key[klen] = '\0';
				}
			}
		}
		if (m)
			fclose(m);
		unescape_key(key);
		/* A multipart upload the dead process started would linger (and be billed). "?"
		 * marks one whose id it never learned: those of the key are found by listing. */
		int crc;
		s3_client *c = nids && key[0] ? up_client(ur, &crc) : NULL;
		for (int i = 0; c && i < nids; i++) {
			s3_error e;
			if (strcmp(upload_ids[i], "?") != 0) {
				s3_dl()->mpu_abort(c, ur->cfg->bucket, key, upload_ids[i], &e);
			} else {
				abort_ctx ac = { ur, c, key };
				s3_dl()->mpu_list(c, ur->cfg->bucket, key, abort_listed, &ac, &e);
			}
		}
		if (!key[0] || access(data, F_OK) != 0) {
			up_discard(data, meta); /* a record without data (or the reverse) is done */
			continue;
		}
		int attempts = 0;
		int rc = up_put(ur, key, data, meta, &attempts);
		if (rc == 0) {
			log_info("recovered s3://%s/%s from %s", ur->cfg->bucket, key, dir);
			up_discard(data, meta);
			pthread_mutex_lock(&up.lock);
			up.uploaded++;
			pthread_mutex_unlock(&up.lock);
		} else {
			log_error("write route %s: recovering %s to s3://%s/%s failed (%s); it stays "
				  "in the spool", ur->cfg->local, data, ur->cfg->bucket, key, strerror(-rc));
			left++;
		}
	}
	closedir(d);
	return left;
}

/* Removes the listing directories (ls.N) and read copies (rc.N) of a spool directory: they
 * are a process's scratch, worthless once it is gone. Returns how many upload files (N.data,
 * N.meta) are in it. */
static int remove_scratch(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int left = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "ls.", 3) == 0 || strncmp(de->d_name, "rc.", 3) == 0)
			fs_rm_rf_at(dirfd(d), de->d_name);
		else if (strstr(de->d_name, ".data") || strstr(de->d_name, ".meta"))
			left++;
	}
	closedir(d);
	return left;
}

/* Every directory of ur's spool whose owner is gone (its lock can be taken). */
static long recover_route(up_route *ur)
{
	DIR *d = opendir(ur->root);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	long left = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != 'p')
			continue;
		char dir[PATH_MAX], lock[PATH_MAX + 8];
		int n = snprintf(dir, sizeof dir, "%s/%s", ur->root, de->d_name);
		if (n < 0 || (size_t)n >= sizeof dir || (ur->mine[0] && strcmp(dir, ur->mine) == 0))
			continue;
		snprintf(lock, sizeof lock, "%s/lock", dir);
		int fd = open(lock, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			long n = recover_dir(ur, dir);
			left += n;
			if (n == 0 && remove_scratch(dir) == 0) {
				unlink(lock);
				rmdir(dir);
			}
		}
		close(fd);
	}
	closedir(d);
	return left;
}

static void *recover_thread(void *arg)
{
	if (up.hooks.thread_start)
		up.hooks.thread_start();
	recover_route(arg);
	pthread_mutex_lock(&up.lock);
	up.recovering--;
	pthread_cond_broadcast(&up.changed);
	pthread_mutex_unlock(&up.lock);
	return NULL;
}

void up_recover_dead(void)
{
	for (size_t i = 0; up.cfg && i < up.cfg->nroutes; i++)
		if (up.cfg->routes[i].mode == CFG_WRITE && up.routes[i].prepared)
			recover_route(&up.routes[i]);
}

int up_prepare(up_route *ur)
{
	pthread_mutex_lock(&up.lock);
	int rc = 0, start_recovery = 0;
	if (!ur->prepared) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		snprintf(ur->mine, sizeof ur->mine, "%s/p%d-%lld%03ld", ur->root, (int)getpid(),
			 (long long)now.tv_sec, now.tv_nsec / 1000000);
		/* Built under another name and renamed once its lock is held: recovery looks at
		 * "p*" directories only, and must never find one whose lock is free while its
		 * owner is alive. */
		char building[PATH_MAX], lock[PATH_MAX + 8];
		snprintf(building, sizeof building, "%s/.new-%d", ur->root, (int)getpid());
		snprintf(lock, sizeof lock, "%s/lock", building);
		rc = fs_mkdir_p(building, 0700);
		if (rc == 0) {
			ur->lock_fd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
			if (ur->lock_fd < 0 || flock(ur->lock_fd, LOCK_EX) < 0 ||
			    rename(building, ur->mine) < 0)
				rc = -errno;
		}
		if (rc == 0) {
			ur->prepared = 1;
			start_recovery = 1;
			up.recovering++;
			if (up.hooks.first_use)
				up.hooks.first_use();
		} else {
			log_error("write route %s: cannot use spool %s: %s", ur->cfg->local, ur->mine,
				  strerror(-rc));
		}
	}
	pthread_mutex_unlock(&up.lock);
	if (start_recovery) {
		/* What a dead process left here is uploaded by the next one, in the background. */
		if (thread_start(NULL, 0, "rws-recover", recover_thread, ur) != 0) {
			log_warn("write route %s: cannot start spool recovery", ur->cfg->local);
			pthread_mutex_lock(&up.lock);
			up.recovering--;
			pthread_mutex_unlock(&up.lock);
		}
	}
	return rc;
}

void up_spool_tidy(up_route *ur)
{
	if (!ur->prepared)
		return;
	if (remove_scratch(ur->mine) == 0) {
		char lock[PATH_MAX + 8];
		snprintf(lock, sizeof lock, "%s/lock", ur->mine);
		unlink(lock);
		rmdir(ur->mine);
	}
}

long up_recover(const cfg *c, const char *spool_override)
{
	long left = 0;
	for (size_t i = 0; i < c->nroutes; i++) {
		up_route *ur = &up.routes[i];
		if (c->routes[i].mode != CFG_WRITE)
			continue;
		if (spool_override) {
			char id[32];
			const char *slash = strrchr(ur->root, '/');
			snprintf(id, sizeof id, "%s", slash ? slash + 1 : "");
			snprintf(ur->root, sizeof ur->root, "%s/%s", spool_override, id);
		}
		long n = recover_route(ur);
		if (n < 0)
			return n;
		left += n;
	}
	return left;
}
