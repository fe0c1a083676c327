/* Directory helpers shared by the cache and the spool. They never allocate, so a vfork
 * child may call fs_mkdir_p. */
#include "common/fs.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *path, mode_t mode)
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

int fs_rm_rf_at(int parent, const char *name)
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
		fs_rm_rf_at(dirfd(d), de->d_name);
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int fs_rm_rf(const char *path)
{
	return fs_rm_rf_at(AT_FDCWD, path);
}

int fs_self_dir(char *out, size_t cap)
{
	Dl_info info;
	if (!dladdr((void *)&fs_self_dir, &info) || !info.dli_fname)
		return -1;
	const char *slash = strrchr(info.dli_fname, '/');
	int n = slash ? snprintf(out, cap, "%.*s", (int)(slash - info.dli_fname), info.dli_fname)
		      : snprintf(out, cap, ".");
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}
