/* ofrc: the cost of I/O calls on local, non-routed files, for bench/passthrough.py.
 *
 *   ofrc MODE DIR NFILES ITERATIONS
 *
 * DIR holds NFILES files named f00000 .. (each at least 4 KiB; the caller makes them).
 * MODE says what one iteration is, cycling over the files:
 *   read     open(O_RDONLY) + fstat + read(4 KiB) + close
 *   stat     stat(path)
 *   readdir  opendir(DIR) + readdir to the end + closedir (ITERATIONS counts whole listings)
 *
 * One untimed pass over every file first (page cache, dentry cache, the library's lazy
 * start), then ITERATIONS timed, both on the wall clock (CLOCK_MONOTONIC) and in CPU time of
 * the process (CLOCK_PROCESS_CPUTIME_ID: user + system; what other processes on a shared
 * machine do to the wall clock mostly stays out of it). Prints one line:
 *   mode=read iterations=200000 ns_per_iter=1234.5 cpu_ns_per_iter=1200.1 check=N
 * check is a sum over what the calls returned, so the compiler cannot drop the work and a
 * short read or a missing file shows (the program also exits 1 on any failed call).
 *
 * Build: gcc -O2 -o ofrc bench/ofrc.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096

static char **paths;

static void die(const char *what, const char *path)
{
	fprintf(stderr, "ofrc: %s %s: ", what, path);
	perror(NULL);
	exit(1);
}

/* One iteration of MODE on file i; returns what goes into the check sum. */
static long one_read(long i, char *buf)
{
	const char *p = paths[i];
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		die("open", p);
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("fstat", p);
	ssize_t n = read(fd, buf, BLOCK);
	if (n != BLOCK)
		die("read (short)", p);
	if (close(fd) < 0)
		die("close", p);
	return (long)st.st_size + (unsigned char)buf[n - 1];
}

static long one_stat(long i)
{
	struct stat st;
	if (stat(paths[i], &st) < 0)
		die("stat", paths[i]);
	return (long)st.st_size;
}

static long one_readdir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		die("opendir", dir);
	long n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static double now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: ofrc read|stat|readdir DIR NFILES ITERATIONS\n");
		return 2;
	}
	const char *mode = argv[1], *dir = argv[2];
	long nfiles = atol(argv[3]), iters = atol(argv[4]);
	int m = !strcmp(mode, "read") ? 0 : !strcmp(mode, "stat") ? 1 : !strcmp(mode, "readdir") ? 2 : -1;
	if (m < 0 || nfiles < 1 || iters < 1) {
		fprintf(stderr, "ofrc: bad arguments\n");
		return 2;
	}
	/* The paths are built before timing: the loop itself formats nothing. */
	paths = malloc(nfiles * sizeof *paths);
	for (long i = 0; i < nfiles; i++)
		if (!paths || asprintf(&paths[i], "%s/f%05ld", dir, i) < 0)
			die("out of memory", "");
	static char buf[BLOCK];
	long check = 0;
	for (long i = 0; i < nfiles; i++)
		check += m == 0 ? one_read(i, buf) : one_stat(i);
	if (m == 2)
		check += one_readdir(dir);
	check = 0;
	double t0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	for (long k = 0, i = 0; k < iters; k++) {
		check += m == 0 ? one_read(i, buf) : m == 1 ? one_stat(i) : one_readdir(dir);
		if (++i == nfiles)
			i = 0;
	}
	double dc = now_ns(CLOCK_PROCESS_CPUTIME_ID) - c0, dt = now_ns(CLOCK_MONOTONIC) - t0;
	printf("mode=%s iterations=%ld ns_per_iter=%.1f cpu_ns_per_iter=%.1f check=%ld\n", mode,
	       iters, dt / iters, dc / iters, check);
	return 0;
}
