/* The tree's journal (up_journal.h). Callers serialize access (the engine's lock). */
#include "uploader/up_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static void put_escaped(FILE *f, const char *s)
{
	if (!*s) {
		fputc('-', f); /* an empty field */
		return;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '%' || *p <= 0x20 || *p == 0x7f || (*p == '-' && p == (const unsigned char *)s && !p[1]))
			fprintf(f, "%%%02X", *p);
		else
			fputc(*p, f);
	}
}

static void unescape(char *s)
{
	if (strcmp(s, "-") == 0) {
		*s = '\0';
		return;
	}
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

static void ent_free(up_jent *e)
{
	free(e->rel);
	free(e->key);
	free(e);
}

static void written(up_journal *j)
{
	if (fflush(j->f) != 0 && !j->failed) {
		j->failed = 1;
		log_error("write route journal %s: cannot write (%s): after a crash, recovery may "
			  "upload files again", j->path, strerror(errno));
	}
}

static void log_ent(up_journal *j, const up_jent *e)
{
	if (!j->f)
		return;
	fprintf(j->f, "U %" PRIu64 " %" PRId64 " %" PRIu64 " %d ", e->size, e->mtime_ns, e->ino,
		e->remote);
	put_escaped(j->f, e->etag);
	fputc(' ', j->f);
	put_escaped(j->f, e->key ? e->key : "");
	fputc(' ', j->f);
	put_escaped(j->f, e->rel);
	fputc('\n', j->f);
	written(j);
}

up_jent *up_journal_find(up_journal *j, const char *rel)
{
	up_jent *e = NULL;
	HASH_FIND_STR(j->ents, rel, e);
	return e;
}

static up_jent *set_quiet(up_journal *j, const char *rel, const char *key, int remote,
			  uint64_t size, int64_t mtime_ns, uint64_t ino, const char *etag)
{
	up_jent *e = up_journal_find(j, rel);
	if (!e) {
		if (!(e = calloc(1, sizeof *e)) || !(e->rel = strdup(rel))) {
			free(e);
			return NULL;
		}
		HASH_ADD_KEYPTR(hh, j->ents, e->rel, strlen(e->rel), e);
	}
	char *k = key && *key ? strdup(key) : NULL;
	free(e->key);
	e->key = k;
	e->remote = remote;
	e->size = size;
	e->mtime_ns = mtime_ns;
	e->ino = ino;
	snprintf(e->etag, sizeof e->etag, "%s", etag ? etag : "");
	return e;
}

up_jent *up_journal_set(up_journal *j, const char *rel, const char *key, int remote,
			uint64_t size, int64_t mtime_ns, uint64_t ino, const char *etag)
{
	up_jent *e = set_quiet(j, rel, key, remote, size, mtime_ns, ino, etag);
	if (e)
		log_ent(j, e);
	return e;
}

void up_journal_drop(up_journal *j, const char *rel)
{
	up_jent *e = up_journal_find(j, rel);
	if (!e)
		return;
	HASH_DEL(j->ents, e);
	if (j->f) {
		fputs("D ", j->f);
		put_escaped(j->f, rel);
		fputc('\n', j->f);
		written(j);
	}
	ent_free(e);
}

void up_journal_move(up_journal *j, up_jent *e, const char *to)
{
	if (strcmp(e->rel, to) == 0)
		return;
	char *rel = strdup(to);
	if (!rel)
		return;
	up_journal_drop(j, to);
	if (j->f) {
		fputs("D ", j->f);
		put_escaped(j->f, e->rel);
		fputc('\n', j->f);
	}
	HASH_DEL(j->ents, e); // NOLINT(clang-analyzer-core.NullDereference): e is in it
	free(e->rel);
	e->rel = rel;
	HASH_ADD_KEYPTR(hh, j->ents, e->rel, strlen(e->rel), e);
	log_ent(j, e);
}

int up_journal_key_used(up_journal *j, const char *key, const up_jent *except)
{
	for (up_jent *e = j->ents; e; e = e->hh.next)
		if (e != except && e->key && strcmp(e->key, key) == 0)
			return 1;
	return 0;
}

void up_journal_mpu(up_journal *j, const char *id, const char *key, int started)
{
	up_mpu_rec *m = NULL;
	HASH_FIND_STR(j->mpus, id, m);
	if (started && !m && (m = calloc(1, sizeof *m))) {
		m->id = strdup(id);
		m->key = strdup(key);
		if (!m->id || !m->key) {
			free(m->id);
			free(m->key);
			free(m);
			return;
		}
		HASH_ADD_KEYPTR(hh, j->mpus, m->id, strlen(m->id), m);
	} else if (!started && m) {
		HASH_DEL(j->mpus, m);
		free(m->id);
		free(m->key);
		free(m);
	}
	if (!j->f)
		return;
	fprintf(j->f, "%c ", started ? 'M' : 'm');
	put_escaped(j->f, id);
	if (started) {
		fputc(' ', j->f);
		put_escaped(j->f, key);
	}
	fputc('\n', j->f);
	written(j);
}

/* A key of the route and a path inside the tree: see up_journal_open. */
static int in_route(const up_journal *j, const char *key)
{
	return strncmp(key, j->prefix, strlen(j->prefix)) == 0 && key[strlen(j->prefix)];
}

static int in_tree(const char *rel)
{
	if (!*rel || *rel == '/')
		return 0;
	for (const char *c = rel; c;) {
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c = end ? end + 1 : NULL;
	}
	return 1;
}

/* Applies one line; a malformed one (a torn last write) is skipped. */
static void replay_line(up_journal *j, char *line)
{
	char *f[8];
	int n = 0;
	for (char *s = strtok(line, " \n"); s && n < 8; s = strtok(NULL, " \n"))
		f[n++] = s;
	if (n == 8 && strcmp(f[0], "U") == 0) {
		unescape(f[5]);
		unescape(f[6]);
		unescape(f[7]);
		if (!in_route(j, f[6]) || !in_tree(f[7])) {
			j->refused++;
			return;
		}
		set_quiet(j, f[7], f[6], atoi(f[4]), strtoull(f[1], NULL, 10),
			  strtoll(f[2], NULL, 10), strtoull(f[3], NULL, 10), f[5]);
	} else if (n == 2 && strcmp(f[0], "D") == 0) {
		unescape(f[1]);
		up_jent *e = up_journal_find(j, f[1]);
		if (e) {
			HASH_DEL(j->ents, e);
			ent_free(e);
		}
	} else if ((n == 3 && strcmp(f[0], "M") == 0) || (n == 2 && strcmp(f[0], "m") == 0)) {
		unescape(f[1]);
		if (n == 3)
			unescape(f[2]);
		if (n == 3 && !in_route(j, f[2])) {
			j->refused++;
			return;
		}
		FILE *keep = j->f;
		j->f = NULL;
		up_journal_mpu(j, f[1], n == 3 ? f[2] : "", n == 3);
		j->f = keep;
	}
}

int up_journal_open(up_journal *j, const char *dir, const char *prefix, dev_t dev, ino_t ino)
{
	memset(j, 0, sizeof *j);
	j->prefix = prefix;
	snprintf(j->path, sizeof j->path, "%s/journal", dir);
	FILE *in = fopen(j->path, "re");
	char *line = NULL;
	size_t cap = 0;
	int ours = 0;
	if (in && getline(&line, &cap, in) > 0) {
		unsigned long long d = 0, i = 0;
		ours = sscanf(line, "T %llu %llu", &d, &i) == 2 && d == (unsigned long long)dev &&
		       i == (unsigned long long)ino;
	}
	if (in && !ours) {
		char old[sizeof j->path + 8];
		snprintf(old, sizeof old, "%s.old", j->path);
		rename(j->path, old);
		log_warn("write route journal %s describes another tree (made anew?): set aside as %s",
			 j->path, old);
	}
	while (in && ours && getline(&line, &cap, in) > 0) {
		size_t len = strlen(line);
		if (len && line[len - 1] == '\n')
			replay_line(j, line);
	}
	free(line);
	if (in)
		fclose(in);
	if (j->refused)
		log_warn("write route journal %s: %u record%s name a key outside the route's prefix "
			 "'%s' or a path outside its tree: ignored", j->path, j->refused,
			 j->refused == 1 ? "" : "s", prefix);
	j->prefix = NULL;
	/* Compacted: written beside, then renamed over. */
	char tmp[sizeof j->path + 8];
	snprintf(tmp, sizeof tmp, "%s.new", j->path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || !(j->f = fdopen(fd, "w"))) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return -e;
	}
	fprintf(j->f, "T %llu %llu\n", (unsigned long long)dev, (unsigned long long)ino);
	for (up_jent *e = j->ents; e; e = e->hh.next)
		log_ent(j, e);
	for (up_mpu_rec *m = j->mpus; m; m = m->hh.next) {
		fputs("M ", j->f);
		put_escaped(j->f, m->id);
		fputc(' ', j->f);
		put_escaped(j->f, m->key);
		fputc('\n', j->f);
	}
	written(j);
	if (rename(tmp, j->path) < 0)
		return -errno;
	return 0;
}

void up_journal_close(up_journal *j)
{
	if (j->f)
		fclose(j->f);
	j->f = NULL;
	for (up_jent *e = j->ents, *n; e; e = n) {
		n = e->hh.next;
		/* The analyzer loses track of uthash's head after a deletion that empties it. */
		HASH_DEL(j->ents, e); // NOLINT(clang-analyzer-unix.Malloc)
		ent_free(e);
	}
	for (up_mpu_rec *m = j->mpus, *n; m; m = n) {
		n = m->hh.next;
		HASH_DEL(j->mpus, m); // NOLINT(clang-analyzer-unix.Malloc)
		free(m->id);
		free(m->key);
		free(m);
	}
}
