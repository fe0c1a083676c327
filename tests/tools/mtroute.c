/* mtroute: many threads of one process on a route at once, for the concurrency tests
 * (tests/integration/test_threads.py, test_write_tree.py; under `make asan` too).
 *
 *   mtroute read ROOT THREADS ROUNDS
 *     lists ROOT recursively (opendir/readdir/stat), then THREADS threads read every file
 *     ROUNDS times, in 64 KiB preads at offsets in a per-thread order, each also opening,
 *     fstat-ing and closing it; prints "<fnv1a-64 hex> <size> <path relative to ROOT>" per
 *     file, sorted, once all threads agree (exit 1 if any two disagree or a call fails).
 *   mtroute write ROOT THREADS FILES SIZE
 *     thread t writes FILES files ROOT/t<t>/f<i>.bin of SIZE bytes each (byte k of file i of
 *     thread t is (t*131 + i*31 + k) & 0xff), through a temporary name renamed into place,
 *     and renames t<t>/f0.bin to t<t>/first.bin at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIECE (64 * 1024)
#define MAX_FILES 4096
#define MAX_THREADS 64
/* Room for ROOT + "/" + a relative path of up to PATH_MAX bytes. */
#define PATH_CAP (2 * PATH_MAX + 2)

static char *files[MAX_FILES];
static int nfiles;
static const char *root;
static int rounds;
static uint64_t sums[MAX_THREADS][MAX_FILES];
static int64_t sizes[MAX_THREADS][MAX_FILES];

static void die(const char *what, const char *path)
{
	fprintf(stderr, "mtroute: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void walk(const char *rel)
{
	char dir[PATH_CAP];
	snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
	DIR *d = opendir(dir);
	if (!d)
		die("opendir", dir);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char sub[PATH_MAX], path[PATH_CAP];
		if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
		    (int)sizeof sub)
			die("path too long:", e->d_name);
		snprintf(path, sizeof path, "%s/%s", root, sub);
		struct stat st;
		if (stat(path, &st) < 0)
			die("stat", path);
		if (S_ISDIR(st.st_mode))
			walk(sub);
		else if (nfiles < MAX_FILES && !(files[nfiles++] = strdup(sub)))
			die("strdup", sub);
	}
	closedir(d);
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* The file's FNV-1a over its bytes in order, read in pieces visited in a thread-specific
 * order (each piece hashed apart, then combined in offset order). */
static int read_file(int t, int f, unsigned char *buf, uint64_t *out, int64_t *size)
{
	char path[PATH_CAP];
	snprintf(path, sizeof path, "%s/%s", root, files[f]);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	int64_t n = (st.st_size + PIECE - 1) / PIECE;
	uint64_t *piece = calloc(n ? (size_t)n : 1, sizeof *piece);
	int rc = piece ? 0 : -ENOMEM;
	for (int64_t k = 0; k < n && rc == 0; k++) {
		/* A rotation, backwards for odd threads: every piece once, in its own order. */
		int64_t p = (k + 7 * t) % n;
		if (t & 1)
			p = n - 1 - p;
		ssize_t got = pread(fd, buf, PIECE, (off_t)(p * PIECE));
		int64_t want = st.st_size - p * PIECE < PIECE ? st.st_size - p * PIECE : PIECE;
		if (got != want)
			rc = got < 0 ? -errno : -EIO;
		else
			piece[p] = fnv1a(0xcbf29ce484222325ull, buf, (size_t)got);
	}
	uint64_t h = 0xcbf29ce484222325ull;
	for (int64_t k = 0; k < n && rc == 0; k++)
		h = fnv1a(h, (const unsigned char *)&piece[k], sizeof piece[k]);
	free(piece);
	close(fd);
	*out = h;
	*size = st.st_size;
	return rc;
}

static void *reader(void *arg)
{
	int t = (int)(intptr_t)arg;
	unsigned char *buf = malloc(PIECE);
	if (!buf)
		return (void *)(intptr_t)-ENOMEM;
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < nfiles; i++) {
			int f = (i * 7 + t * 13 + r) % nfiles;
			int rc = read_file(t, f, buf, &sums[t][f], &sizes[t][f]);
			if (rc < 0) {
				fprintf(stderr, "mtroute: thread %d: %s: %s\n", t, files[f],
					strerror(-rc));
				free(buf);
				return (void *)(intptr_t)rc;
			}
		}
	}
	free(buf);
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_threads(int n, void *(*fn)(void *))
{
	pthread_t th[MAX_THREADS];
	for (int t = 0; t < n; t++)
		if (pthread_create(&th[t], NULL, fn, (void *)(intptr_t)t) != 0)
			die("pthread_create", "");
	int failed = 0;
	for (int t = 0; t < n; t++) {
		void *rc;
		pthread_join(th[t], &rc);
		failed |= rc != NULL;
	}
	return failed;
}

static int do_read(int threads)
{
	walk("");
	qsort(files, (size_t)nfiles, sizeof *files, cmp_str);
	if (run_threads(threads, reader))
		return 1;
	for (int f = 0; f < nfiles; f++) {
		for (int t = 1; t < threads; t++)
			if (sums[t][f] != sums[0][f] || sizes[t][f] != sizes[0][f]) {
				fprintf(stderr, "mtroute: threads 0 and %d disagree on %s\n", t,
					files[f]);
				return 1;
			}
		printf("%016" PRIx64 " %" PRId64 " %s\n", sums[0][f], sizes[0][f], files[f]);
	}
	return 0;
}

static int write_files, write_size;

static void *writer(void *arg)
{
	int t = (int)(intptr_t)arg;
	char dir[PATH_CAP];
	snprintf(dir, sizeof dir, "%s/t%d", root, t);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		die("mkdir", dir);
	unsigned char *buf = malloc((size_t)write_size + 1);
	if (!buf)
		return (void *)(intptr_t)-ENOMEM;
	for (int i = 0; i < write_files; i++) {
		char tmp[PATH_CAP + 32], final[PATH_CAP + 32];
		snprintf(tmp, sizeof tmp, "%s/.f%d.tmp", dir, i);
		snprintf(final, sizeof final, "%s/f%d.bin", dir, i);
		for (int k = 0; k < write_size; k++)
			buf[k] = (unsigned char)((t * 131 + i * 31 + k) & 0xff);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die("open", tmp);
		for (int off = 0; off < write_size;) {
			ssize_t n = write(fd, buf + off, (size_t)(write_size - off));
			if (n <= 0)
				die("write", tmp);
			off += (int)n;
		}
		if (close(fd) < 0)
			die("close", tmp);
		if (rename(tmp, final) < 0)
			die("rename", final);
	}
	char first[PATH_CAP + 32], f0[PATH_CAP + 32];
	snprintf(f0, sizeof f0, "%s/f0.bin", dir);
	snprintf(first, sizeof first, "%s/first.bin", dir);
	if (write_files > 0 && rename(f0, first) < 0)
		die("rename", first);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "read")) {
		root = argv[2];
		int threads = atoi(argv[3]);
		rounds = atoi(argv[4]);
		if (threads < 1 || threads > MAX_THREADS || rounds < 1)
			return 64;
		return do_read(threads);
	}
	if (argc >= 6 && !strcmp(argv[1], "write")) {
		root = argv[2];
		int threads = atoi(argv[3]);
		write_files = atoi(argv[4]);
		write_size = atoi(argv[5]);
		if (threads < 1 || threads > MAX_THREADS || write_files < 0 || write_size < 0)
			return 64;
		return run_threads(threads, writer);
	}
	fprintf(stderr, "usage: mtroute read ROOT THREADS ROUNDS | "
			"mtroute write ROOT THREADS FILES SIZE\n");
	return 64;
}
