#include "common/lifecycle.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

static _Atomic(const lc_hooks *) hooks[LC_NRANKS];
static pthread_once_t installed = PTHREAD_ONCE_INIT;
/* Held from prepare to parent/child, so a hook registered by another thread meanwhile does
 * not get a parent or child call without its prepare. Locks taken in prepare are unlocked,
 * not made anew, in the child: its one thread is the one that took them. */
static pthread_mutex_t registering = PTHREAD_MUTEX_INITIALIZER;

static void prepare(void)
{
	pthread_mutex_lock(&registering);
	for (int r = 0; r < LC_NRANKS; r++) {
		const lc_hooks *h = atomic_load(&hooks[r]);
		if (h && h->prepare)
			h->prepare();
	}
}

static void parent(void)
{
	for (int r = LC_NRANKS; r-- > 0;) {
		const lc_hooks *h = atomic_load(&hooks[r]);
		if (h && h->parent)
			h->parent();
	}
	pthread_mutex_unlock(&registering);
}

static void child(void)
{
	for (int r = LC_NRANKS; r-- > 0;) {
		const lc_hooks *h = atomic_load(&hooks[r]);
		if (h && h->child)
			h->child();
	}
	pthread_mutex_unlock(&registering);
}

static void install(void)
{
	pthread_atfork(prepare, parent, child);
}

int lc_register(enum lc_rank rank, const lc_hooks *h)
{
	if (rank < 0 || rank >= LC_NRANKS)
		return -EINVAL;
	pthread_once(&installed, install);
	pthread_mutex_lock(&registering);
	const lc_hooks *none = NULL;
	int rc = atomic_compare_exchange_strong(&hooks[rank], &none, h) ? 0 : -EEXIST;
	pthread_mutex_unlock(&registering);
	return rc;
}
