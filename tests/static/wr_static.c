/* wr_static: a statically linked writer for the write-tree integration tests
 * (tests/integration/test_write_tree.py). It contains no rwsplit code and, being static,
 * ignores LD_PRELOAD: whatever it writes under a write route reaches the store only through
 * the tree agent watching the directory.
 *
 * usage: wr_static PATH SIZE [FINAL]
 *   PATH   file created (O_WRONLY | O_CREAT | O_TRUNC, 0644) and written with write(2)
 *   SIZE   number of bytes of the pattern to write, or "-" to copy stdin instead
 *   FINAL  if given, after close(2): the raw renameat syscall renames PATH to FINAL
 *
 * The pattern: byte i is (i * 131 + (i >> 12) * 7 + 13) & 0xff (the test computes the same).
 * Prints "ok BYTES" on success; on failure "error STEP ERRNO" on stdout and exits 1; usage
 * errors exit 64. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fail(const char *step)
{
	int e = errno;
	printf("error %s %d\n", step, e);
	fprintf(stderr, "wr_static: %s: %s\n", step, strerror(e));
	return 1;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static unsigned char buf[1 << 16];
	unsigned long long total = 0;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: wr_static PATH SIZE|- [FINAL]\n");
		return 64;
	}
	int from_stdin = strcmp(argv[2], "-") == 0;
	unsigned long long size = 0;
	if (!from_stdin) {
		char *end = NULL;
		errno = 0;
		size = strtoull(argv[2], &end, 10);
		if (errno != 0 || end == argv[2] || *end != '\0') {
			fprintf(stderr, "wr_static: bad SIZE %s\n", argv[2]);
			return 64;
		}
	}

	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail("open");
	if (from_stdin) {
		for (;;) {
			ssize_t r = read(0, buf, sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return fail("read");
			if (r == 0)
				break;
			if (write_all(fd, buf, (size_t)r) < 0)
				return fail("write");
			total += (unsigned long long)r;
		}
	} else {
		while (total < size) {
			size_t n = sizeof(buf);
			if (size - total < n)
				n = (size_t)(size - total);
			for (size_t k = 0; k < n; k++) {
				unsigned long long i = total + k;
				buf[k] = (unsigned char)((i * 131 + (i >> 12) * 7 + 13) & 0xff);
			}
			if (write_all(fd, buf, n) < 0)
				return fail("write");
			total += n;
		}
	}
	if (close(fd) < 0)
		return fail("close");
	if (argc == 4 && syscall(SYS_renameat, AT_FDCWD, argv[1], AT_FDCWD, argv[3]) != 0)
		return fail("renameat");
	printf("ok %llu\n", total);
	return 0;
}
