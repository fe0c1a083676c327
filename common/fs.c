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
#include <sys/socket.h>
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

static int refuse(char *bad, size_t cap, const char *path, size_t n, int rc, const char *why)
{
	if (bad && cap)
		snprintf(bad, cap, "%.*s: %s", (int)n, path, why);
	return rc;
}

int fs_open_dir_safe(const char *path, mode_t mode, unsigned flags, char *bad, size_t badcap)
{
	size_t len = strlen(path);
	char name[NAME_MAX + 1];
	int fd = open(path[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return refuse(bad, badcap, path, path[0] == '/', -errno, strerror(errno));
	uid_t me = geteuid();
	for (size_t i = 0; i < len;) {
		while (path[i] == '/')
			i++;
		size_t j = i;
		while (j < len && path[j] != '/')
			j++;
		if (j == i)
			break;
		if (j - i > NAME_MAX) {
			close(fd);
			return refuse(bad, badcap, path, j, -ENAMETOOLONG, "name too long");
		}
		memcpy(name, path + i, j - i);
		name[j - i] = '\0';
		int last = path[j + strspn(path + j, "/")] == '\0';
		int made = mkdirat(fd, name, mode) == 0;
		if (!made && errno != EEXIST) {
			int e = errno;
			close(fd);
			char why[160];
			/* Where the caller may not make it, say what to do instead. */
			snprintf(why, sizeof why, "%s%s", strerror(e),
				 e == EACCES || e == EROFS || e == EPERM
					 ? " (make the directory beforehand; in a pod, mount an emptyDir there)"
					 : "");
			return refuse(bad, badcap, path, j, -e, why);
		}
		int next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		struct stat lst;
		/* O_DIRECTORY answers ENOTDIR for a link too */
		if (next < 0 && e == ENOTDIR && fstatat(fd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(lst.st_mode))
			e = ELOOP;
		close(fd);
		if (next < 0)
			return refuse(bad, badcap, path, j, -e, e == ELOOP ? "a symbolic link (rwsplit "
				      "never follows one there)" : e == ENOTDIR ? "not a directory"
				      : strerror(e));
		fd = next;
		if (made && last && (flags & FS_SHARED))
			fchmod(fd, mode);
		struct stat st;
		if (fstat(fd, &st) < 0) {
			e = errno;
			close(fd);
			return refuse(bad, badcap, path, j, -e, strerror(e));
		}
		const char *why = NULL;
		int as_parent = !last || (flags & FS_SHARED);
		if (!as_parent && st.st_uid != me)
			why = "owned by another user";
		else if (as_parent && st.st_uid != me && st.st_uid != 0)
			why = "owned by another user, who could replace what is made in it";
		else if (last && (flags & FS_PRIVATE) && (st.st_mode & 077))
			why = "open to other users (needs mode 0700)";
		else if (as_parent && (st.st_mode & 002) && !(st.st_mode & S_ISVTX))
			why = "writable by everyone and not sticky (chmod +t), so another user could "
			      "replace what is made in it";
		if (why) {
			close(fd);
			return refuse(bad, badcap, path, j, -EPERM, why);
		}
		i = j;
	}
	return fd;
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

int fs_peer_is_us(int sock)
{
	struct ucred cr;
	socklen_t len = sizeof cr;
	return getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.uid == geteuid();
}
