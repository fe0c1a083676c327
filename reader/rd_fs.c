/* Small filesystem helpers for the cache directories. */
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

void rd_unlock(int fd)
{
	flock(fd, LOCK_UN);
	close(fd);
}

int rd_reopen(int fd, int oflags)
{
	char self[64];
	snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
	int nfd = open(self, O_RDONLY | oflags);
	return nfd >= 0 ? nfd : -errno;
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

int rd_stamp_fresh(const char *stamp, uint32_t ttl_ms)
{
	struct stat st;
	if (stat(stamp, &st) < 0)
		return 0;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t age_ms = (int64_t)(now.tv_sec - st.st_mtim.tv_sec) * 1000 +
			 (now.tv_nsec - st.st_mtim.tv_nsec) / 1000000;
	return age_ms >= 0 && age_ms < (int64_t)ttl_ms;
}

void rd_stamp_touch(const char *stamp)
{
	int fd = open(stamp, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0) {
		futimens(fd, NULL);
		close(fd);
	}
}

