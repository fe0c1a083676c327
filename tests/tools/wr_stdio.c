/* wr_stdio: a TensorFlow-style writer for the write-route integration tests.
 *
 * TensorFlow's PosixWritableFile opens with fopen(fname, "w") (or "a"), appends with fwrite,
 * flushes with fflush, syncs with fflush + fsync(fileno(f)) and closes with fclose; a
 * checkpoint is then published with rename(). This program does the same with stdin as the
 * data, so that the test knows exactly what must arrive in the bucket.
 *
 * usage: wr_stdio [-d] [-s] [-b BUFSIZE] [-c CHUNK] [-p FIRST] [-r FINAL] MODE PATH
 *   MODE      fopen mode ("w", "wb", "a", "w+", ...)
 *   -d        open(2) + fdopen(3) instead of fopen(3) (O_CREAT, plus O_TRUNC or O_APPEND
 *             following MODE)
 *   -s        fflush + fsync(fileno(f)) before fclose (TensorFlow's Sync())
 *   -b BUFSIZE  setvbuf a full buffer of BUFSIZE bytes (what is still buffered is written
 *             by fclose itself, after the program's last fwrite)
 *   -c CHUNK  fwrite in pieces of CHUNK bytes (default 4093: never aligned to stdio's buffer)
 *   -p FIRST  first write "first\n" to FIRST (fopen, fputs, fclose) and wait 300 ms, so that
 *             PATH is closed while this process already has an idle upload worker
 *   -r FINAL  rename(PATH, FINAL) after fclose (the checkpoint pattern)
 *
 * Prints "ok BYTES" on success. On failure prints "error STEP ERRNO_NAME" on stdout and the
 * strerror text on stderr, and exits 1. Usage errors exit 64. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *step)
{
	int e = errno;
	const char *name = strerrorname_np(e);

	printf("error %s %s\n", step, name ? name : "E?");
	fprintf(stderr, "wr_stdio: %s: %s\n", step, strerror(e));
	return 1;
}

int main(int argc, char **argv)
{
	size_t chunk = 4093, bufsize = 0;
	int use_fdopen = 0, do_sync = 0;
	const char *final = NULL, *first = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "dsb:c:p:r:")) != -1) {
		switch (opt) {
		case 'd':
			use_fdopen = 1;
			break;
		case 's':
			do_sync = 1;
			break;
		case 'b':
			bufsize = strtoul(optarg, NULL, 10);
			break;
		case 'c':
			chunk = strtoul(optarg, NULL, 10);
			break;
		case 'p':
			first = optarg;
			break;
		case 'r':
			final = optarg;
			break;
		default:
			return 64;
		}
	}
	if (argc - optind != 2 || chunk == 0) {
		fprintf(stderr, "usage: wr_stdio [-d] [-s] [-b BUFSIZE] [-c CHUNK] [-p FIRST] "
			"[-r FINAL] MODE PATH\n");
		return 64;
	}
	const char *mode = argv[optind], *path = argv[optind + 1];

	FILE *f;
	if (first) {
		f = fopen(first, "w");
		if (!f)
			return fail("fopen-first");
		if (fputs("first\n", f) < 0 || fclose(f) != 0)
			return fail("fclose-first");
		usleep(300000);
	}
	if (use_fdopen) {
		int flags = O_CREAT | O_CLOEXEC | (strchr(mode, '+') ? O_RDWR : O_WRONLY);
		flags |= mode[0] == 'a' ? O_APPEND : O_TRUNC;
		int fd = open(path, flags, 0644);
		if (fd < 0)
			return fail("open");
		f = fdopen(fd, mode);
		if (!f)
			return fail("fdopen");
	} else {
		f = fopen(path, mode);
		if (!f)
			return fail("fopen");
	}

	if (bufsize && setvbuf(f, NULL, _IOFBF, bufsize) != 0)
		return fail("setvbuf");
	char *buf = malloc(chunk);
	if (!buf)
		return fail("malloc");
	size_t total = 0, n;
	while ((n = fread(buf, 1, chunk, stdin)) > 0) {
		if (fwrite(buf, 1, n, f) != n)
			return fail("fwrite");
		total += n;
	}
	if (ferror(stdin))
		return fail("fread-stdin");
	free(buf);
	if (do_sync) {
		if (fflush(f) != 0)
			return fail("fflush");
		if (fsync(fileno(f)) != 0)
			return fail("fsync");
	}
	if (fclose(f) != 0)
		return fail("fclose");
	if (final && rename(path, final) != 0)
		return fail("rename");
	printf("ok %zu\n", total);
	return 0;
}
