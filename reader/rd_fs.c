/* Small filesystem helpers for the cache directories. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "reader/rd_priv.h"
#include "common/sb.h"
#include "common/sha256.h"

int rd_lock(const char *path)
{
	int fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
		;
	return fd;
}

int rd_mkdir_p(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	size_t len = strlen(path);
	if (len >= sizeof p)
		return -ENAMETOOLONG;
	memcpy(p, path, len + 1);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = c;
		if (!c)
			return 0;
	}
}

int rd_rm_rf_at(int parent, const char *name)
{
	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rd_rm_rf_at(dirfd(d), de->d_name);
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int rd_rm_rf(const char *path)
{
	return rd_rm_rf_at(AT_FDCWD, path);
}

void rd_hash(char *out, size_t nhex, const char *a, const char *b, const char *c)
{
	sb s = SB_INIT;
	sb_puts(&s, a);
	sb_putc(&s, '\0');
	sb_puts(&s, b ? b : "");
	sb_putc(&s, '\0');
	sb_puts(&s, c ? c : "");
	char hex[65];
	sha256_hex(s.buf ? s.buf : "", s.len, hex);
	sb_free(&s);
	if (nhex > 64)
		nhex = 64;
	memcpy(out, hex, nhex);
	out[nhex] = '\0';
}

uint64_t rd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
