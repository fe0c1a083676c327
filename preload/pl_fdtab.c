#include "preload/pl_fdtab.h"
#include "preload/pl_symbols.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "common/lifecycle.h"

#define FDTAB_MAX (1u << 22)

_Atomic(pl_fd *) *pl_fdtab;
size_t pl_fdtab_size;
atomic_long pl_fd_count;

/* Taken around a slot's exchange and around a lookup's load + reference, for a few
 * instructions (no call, no allocation), so spinning is cheaper than a mutex. */
#define STRIPES 64
static atomic_flag stripe[STRIPES];
/* Set in the thread that forks, which holds every stripe from prepare to parent/child: an
 * fd call made meanwhile by another library's fork handler must not wait for itself. */
static __thread int forking;

static void lock_slot(int fd)
{
	if (forking)
		return;
	while (atomic_flag_test_and_set_explicit(&stripe[fd % STRIPES], memory_order_acquire))
		;
}

static void unlock_slot(int fd)
{
	if (!forking)
		atomic_flag_clear_explicit(&stripe[fd % STRIPES], memory_order_release);
}

pl_fd *pl_fd_get(int fd)
{
	if (!pl_fd_routed(fd))
		return NULL;
	lock_slot(fd);
	pl_fd *e = atomic_load_explicit(&pl_fdtab[fd], memory_order_acquire);
	if (e)
		atomic_fetch_add(&e->refs, 1);
	unlock_slot(fd);
	return e;
}

static pl_fd *exchange_slot(int fd, pl_fd *e)
{
	lock_slot(fd);
	pl_fd *old = atomic_exchange(&pl_fdtab[fd], e);
	unlock_slot(fd);
	return old;
}

/* Fork hooks (LC_FDTAB, the innermost rank): prepare takes every lock stripe, so that no
 * other thread holds one at the fork; parent and child release them. */
static void fork_prepare(void)
{
	for (int i = 0; i < STRIPES; i++)
		lock_slot(i);
	forking = 1;
}

static void fork_release(void)
{
	if (!forking)
		return; /* a fork that began before the library was set up */
	forking = 0;
	for (int i = 0; i < STRIPES; i++)
		unlock_slot(i);
}

int pl_fdtab_init(void)
{
	static const lc_hooks hooks = { fork_prepare, fork_release, fork_release };
	lc_register(LC_FDTAB, &hooks);
	struct rlimit rl;
	size_t n = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    rl.rlim_max > n)
		n = rl.rlim_max;
	if (n > FDTAB_MAX)
		n = FDTAB_MAX;
	/* Anonymous memory is zero and costs nothing until touched, so a table sized for the
	 * hard limit is only address space. */
	void *p = mmap(NULL, n * sizeof *pl_fdtab, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	pl_fdtab = p;
	pl_fdtab_size = n;
	return 0;
}

pl_fd *pl_fd_new(enum pl_fd_kind kind, const cfg_route *route, const char *rest, int fd,
		 const struct stat *shadow, rd_file *lazy)
{
	pl_fd *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->rest = strdup(rest);
	if (!e->rest) {
		free(e);
		return NULL;
	}
	struct stat st = { 0 };
	if (PL_REAL(fstat)(fd, &st) == 0) {
		e->real_dev = st.st_dev;
		e->real_ino = st.st_ino;
	}
	atomic_init(&e->refs, 1);
	e->kind = kind;
	e->route = route;
	e->dev = shadow->st_dev;
	e->ino = shadow->st_ino;
	e->mtime = shadow->st_mtim;
	e->lazy = lazy;
	return e;
}

void pl_fd_unref(pl_fd *e)
{
	if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
		return;
	if (e->lazy)
		rd_file_release(e->lazy);
	free(e->rest);
	free(e);
}

int pl_fd_install(int fd, pl_fd *e)
{
	if (fd < 0 || (size_t)fd >= pl_fdtab_size) {
		pl_fd_unref(e);
		return -1;
	}
	pl_fd *old = exchange_slot(fd, e);
	if (old)
		pl_fd_unref(old);
	else
		atomic_fetch_add(&pl_fd_count, 1);
	return 0;
}

void pl_fd_forget(int fd)
{
	if (fd < 0 || (size_t)fd >= pl_fdtab_size)
		return;
	pl_fd *old = exchange_slot(fd, NULL);
	if (old) {
		atomic_fetch_sub(&pl_fd_count, 1);
		pl_fd_unref(old);
	}
}
