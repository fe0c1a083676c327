/* Test shim, preloaded after librwsplit.so: readdir() returns each entry of a directory whose
 * path ends in $DUP_READDIR_SUFFIX twice in a row. Linux's tmpfs was seen returning entries
 * twice in one pass over a directory that other processes renamed into and unlinked from;
 * this makes that happen on every pass. Says so once on stderr, so a test can tell that it
 * was in effect. */
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static int matches(DIR *d)
{
	const char *suffix = getenv("DUP_READDIR_SUFFIX");
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd(d));
	ssize_t n = suffix ? readlink(link, path, sizeof path - 1) : -1;
	if (n < 0)
		return 0;
	path[n] = '\0';
	size_t len = strlen(suffix);
	if ((size_t)n < len || strcmp(path + n - len, suffix) != 0)
		return 0;
	static int said;
	if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
		fprintf(stderr, "dup_readdir: repeating the entries of %s\n", path);
	return 1;
}

/* The entry to return once more on the next call for the same stream (per thread). */
#define REPEATING(name, entry_type)                                                         \
	EXPORT entry_type *name(DIR *d)                                                     \
	{                                                                                   \
		static entry_type *(*real)(DIR *);                                          \
		static _Thread_local DIR *again_dir;                                        \
		static _Thread_local entry_type *again;                                     \
		if (!real)                                                                  \
			*(void **)&real = dlsym(RTLD_NEXT, #name);                          \
		if (again && again_dir == d) {                                              \
			entry_type *e = again;                                              \
			again = NULL;                                                       \
			return e;                                                           \
		}                                                                           \
		entry_type *e = real(d);                                                    \
		if (e && e->d_name[0] != '.' && matches(d)) {                               \
			again_dir = d;                                                      \
			again = e;                                                          \
		}                                                                           \
		return e;                                                                   \
	}

REPEATING(readdir, struct dirent)
REPEATING(readdir64, struct dirent64)
