/* mtread: many files read by N threads of one process, the way a data loader with a thread
 * pool reads a data set. Each thread takes the next path of the list (one shared counter), and
 * opens, reads fully (1 MiB read() calls into its own buffer) and closes it, until the list is
 * done.
 *
 *   mtread THREADS LIST_FILE
 *
 * LIST_FILE has one path per line. Prints one JSON line
 *   {"files": N, "bytes": B, "seconds": S, "files_per_s": F, "mb_per_s": M}
 * (S from the first open to the last close; MB = 10^6 bytes) and exits 1 at the first error,
 * naming the file and errno (the other threads stop taking paths).
 * Build: gcc -O2 -pthread -o mtread mtread.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 1024
#define BUF_BYTES (1 << 20)

static char **paths;
static size_t npaths;
static atomic_size_t next_path;
static atomic_int failed;
static atomic_ullong total_bytes;
static atomic_size_t total_files;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fails the run: the first error is printed, the other threads stop at their next path. */
static void fail(const char *what, const char *path, int err)
{
	if (atomic_exchange(&failed, 1) == 0)
		fprintf(stderr, "mtread: %s %s: %s (errno %d)\n", what, path, strerror(err), err);
}

static int read_one(const char *path, char *buf, unsigned long long *bytes)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fail("open", path, errno);
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, buf, BUF_BYTES);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail("read", path, errno);
			close(fd);
			return -1;
		}
		*bytes += (unsigned long long)n;
	}
	if (close(fd) < 0) {
		fail("close", path, errno);
		return -1;
	}
	return 0;
}

static void *worker(void *arg)
{
	(void)arg;
	char *buf = malloc(BUF_BYTES);
	if (!buf) {
		fail("malloc", "(buffer)", ENOMEM);
		return NULL;
	}
	unsigned long long bytes = 0;
	size_t files = 0;
	while (!atomic_load(&failed)) {
		size_t i = atomic_fetch_add(&next_path, 1);
		if (i >= npaths || read_one(paths[i], buf, &bytes) < 0)
			break;
		files++;
	}
	atomic_fetch_add(&total_bytes, bytes);
	atomic_fetch_add(&total_files, files);
	free(buf);
	return NULL;
}

/* Every line of the file (without its newline), empty lines skipped. */
static int read_list(const char *file)
{
	FILE *f = fopen(file, "r");
	if (!f) {
		fprintf(stderr, "mtread: %s: %s\n", file, strerror(errno));
		return -1;
	}
	size_t cap = 1024;
	paths = malloc(cap * sizeof *paths);
	char *line = NULL;
	size_t linecap = 0;
	ssize_t len;
	while (paths && (len = getline(&line, &linecap, f)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (npaths == cap) {
			cap *= 2;
			char **grown = realloc(paths, cap * sizeof *paths);
			if (!grown)
				break;
			paths = grown;
		}
		paths[npaths] = strdup(line);
		if (!paths[npaths])
			break;
		npaths++;
	}
	int bad = ferror(f) || !feof(f);
	free(line);
	fclose(f);
	if (bad || !paths) {
		fprintf(stderr, "mtread: %s: could not read the list\n", file);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: mtread THREADS LIST_FILE\n");
		return 64;
	}
	char *end;
	long nthreads = strtol(argv[1], &end, 10);
	if (*end || nthreads < 1 || nthreads > MAX_THREADS) {
		fprintf(stderr, "mtread: THREADS must be 1..%d\n", MAX_THREADS);
		return 64;
	}
	if (read_list(argv[2]) < 0)
		return 66;
	static pthread_t threads[MAX_THREADS];
	double t0 = now();
	long started = 0;
	for (; started < nthreads; started++) {
		int rc = pthread_create(&threads[started], NULL, worker, NULL);
		if (rc) {
			fail("pthread_create", "(thread)", rc);
			break;
		}
	}
	for (long i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	double dt = now() - t0;
	if (atomic_load(&failed))
		return 1;
	size_t files = atomic_load(&total_files);
	unsigned long long bytes = atomic_load(&total_bytes);
	printf("{\"files\": %zu, \"bytes\": %llu, \"seconds\": %.6f, \"files_per_s\": %.1f, "
	       "\"mb_per_s\": %.1f}\n",
	       files, bytes, dt, dt > 0 ? (double)files / dt : 0.0,
	       dt > 0 ? (double)bytes / 1e6 / dt : 0.0);
	return 0;
}
