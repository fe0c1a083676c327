/* Opening routed paths, shared by the open, stdio and directory shims. */
#ifndef RWSPLIT_PL_OPEN_H
#define RWSPLIT_PL_OPEN_H

#include <stddef.h>
#include <sys/stat.h>

#include "preload/pl_route.h"
#include "reader/rd.h"

/* Opens routed target t with open(2) flags and installs the fd in the fd table. Returns the
 * fd or -errno. *lazy (optional) receives the entry's background-fill handle, not a new
 * reference. Read routes refuse writing flags with -EROFS. */
int pl_open_routed(const pl_target *t, int flags, rd_file **lazy);

/* The shadow path of t (its directory listed; t itself too with list_self) and its lstat.
 * Returns 0 or -errno. Call between pl_enter() and pl_leave(). */
int pl_shadow_lstat(const pl_target *t, int list_self, char *shadow, size_t cap,
		    struct stat *st);

#endif
