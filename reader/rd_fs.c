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
