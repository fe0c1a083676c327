/* Recognising placeholders (up_place.h); the agent creates them (up_engine_place.c). */
#include "uploader/up_place.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

int up_place_parse(const char *val, size_t n, up_remote *r)
{
	char buf[UP_PLACE_XATTR_MAX + 1];
	if (n == 0 || n > UP_PLACE_XATTR_MAX)
		return -1;
	memcpy(buf, val, n);
	buf[n] = '\0';
	long long sec, nsec;
	int used = 0;
	if (sscanf(buf, "v1 %" SCNu64 " %lld %lld %" SCNu64 " %n", &r->size, &sec, &nsec,
		   &r->marker_len, &used) != 4 || used <= 0 || nsec < 0 || nsec >= 1000000000)
		return -1;
	r->mtime.tv_sec = (time_t)sec;
	r->mtime.tv_nsec = (long)nsec;
	snprintf(r->etag, sizeof r->etag, "%s", buf + used);
	return 0;
}

size_t up_place_format(const up_remote *r, char *out)
{
	int n = snprintf(out, UP_PLACE_XATTR_MAX, "v1 %" PRIu64 " %lld %ld %" PRIu64 " %s",
			 r->size, (long long)r->mtime.tv_sec, r->mtime.tv_nsec, r->marker_len,
			 r->etag);
	return n < 0 ? 0 : (size_t)n >= UP_PLACE_XATTR_MAX ? UP_PLACE_XATTR_MAX - 1 : (size_t)n;
}

int up_placeholder(int fd, int dirfd, const char *path, const struct stat *st, up_remote *r)
{
	if (!S_ISREG(st->st_mode) || (st->st_mode & 07777) != 0)
		return 0;
	char val[UP_PLACE_XATTR_MAX];
	ssize_t n;
	if (fd >= 0) {
		n = fgetxattr(fd, UP_PLACE_XATTR, val, sizeof val);
	} else if (dirfd == AT_FDCWD || path[0] == '/') {
		n = lgetxattr(path, UP_PLACE_XATTR, val, sizeof val);
	} else {
		char p[PATH_MAX];
		int len = snprintf(p, sizeof p, "/proc/self/fd/%d/%s", dirfd, path);
		n = len < 0 || (size_t)len >= sizeof p ? -1 : lgetxattr(p, UP_PLACE_XATTR, val, sizeof val);
	}
	if (n <= 0 || up_place_parse(val, (size_t)n, r) < 0)
		return 0;
	/* Written by a program that bypassed rwsplit: no longer the note. */
	return (uint64_t)st->st_size == r->marker_len && st->st_mtim.tv_sec == r->mtime.tv_sec &&
	       st->st_mtim.tv_nsec == r->mtime.tv_nsec;
}

void up_place_present(struct stat *st, const up_remote *r)
{
	st->st_size = (off_t)r->size;
	st->st_blocks = (blkcnt_t)((r->size + 511) / 512);
	st->st_mode = S_IFREG | 0644;
}
