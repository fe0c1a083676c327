/* Directory helpers shared by the cache and the spool. */
#ifndef RWSPLIT_FS_H
#define RWSPLIT_FS_H

#include <sys/types.h>

/* mkdir -p: creates path and its missing parents with mode. No allocation. Returns 0 or
 * -errno. */
int fs_mkdir_p(const char *path, mode_t mode);

/* rm -rf of name relative to directory fd parent (AT_FDCWD for a path). Returns 0 (also when
 * it did not exist) or -errno. */
int fs_rm_rf_at(int parent, const char *name);
int fs_rm_rf(const char *path);

/* The directory of the file (shared library or program) this code was loaded from, into out
 * (cap bytes). Returns 0, or -1 when it cannot be told or does not fit. */
int fs_self_dir(char *out, size_t cap);

#endif
