/* Activation: the constructor loads the config before main() runs. A config that does not
 * load stops the program with status 78 (EX_CONFIG): a training job must not silently write
 * its checkpoints to local disk. */
#include "preload/pl_state.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/lifecycle.h"
#include "common/log.h"
#include "common/pool.h"
#include "preload/pl_fdtab.h"
#include "preload/pl_symbols.h"
#include "reader/rd.h"
#include "s3/s3_dl.h"
#include "preload/pl_write.h"
#include "uploader/up.h"

int pl_active;
const cfg *pl_cfg;
const rt_table *pl_routes;
uid_t pl_uid;
gid_t pl_gid;
pid_t pl_owner_pid;
__thread int pl_busy __attribute__((tls_model("initial-exec")));

static _Atomic(char *) cwd_cache;

const char *pl_cwd(void)
{
	char *cwd = atomic_load_explicit(&cwd_cache, memory_order_acquire);
	if (cwd)
		return cwd;
	pl_enter();
	char *fresh = getcwd(NULL, 0);
	pl_leave();
	if (!fresh)
		return NULL;
	char *expected = NULL;
	if (atomic_compare_exchange_strong(&cwd_cache, &expected, fresh))
		return fresh;
	free(fresh);
	return expected;
}

int pl_in_vfork_child(void)
{
	return getpid() != pl_owner_pid;
}

static atomic_int cwd_virtual;

void pl_cwd_changed(void)
{
	/* The old string may still be in use by another thread; it is left to leak (one small
	 * string per chdir) rather than freed under it. */
	atomic_store_explicit(&cwd_virtual, 0, memory_order_relaxed);
	atomic_store_explicit(&cwd_cache, NULL, memory_order_release);
}

void pl_cwd_set_virtual(const char *path)
{
	pl_enter();
	char *copy = strdup(path);
	pl_leave();
	if (!copy)
		return;
	atomic_store_explicit(&cwd_cache, copy, memory_order_release);
	atomic_store_explicit(&cwd_virtual, 1, memory_order_relaxed);
}

int pl_cwd_is_virtual(void)
{
	return atomic_load_explicit(&cwd_virtual, memory_order_relaxed);
}

/* From the first prepare hook to the last parent or child hook, the forking thread holds
 * rwsplit's locks: a call another library's fork handler makes meanwhile goes straight to
 * the real function instead of waiting for a lock its own thread holds. */
static void guard_fork_prepare(void)
{
	pl_enter();
}

static void guard_fork_parent(void)
{
	pl_leave();
}

static void guard_fork_child(void)
{
	pl_owner_pid = getpid();
	pl_leave();
}

/* A program exec'd by a process whose working directory was inside a route inherits the
 * shadow directory as its kernel cwd: report and resolve against the route path instead. */
static void adopt_inherited_cwd(void)
{
	char *cwd = getcwd(NULL, 0);
	const char *rest;
	const cfg_route *r = cwd ? rd_route_of_shadow(cwd, &rest) : NULL;
	if (r) {
		size_t n = strlen(r->local) + strlen(rest) + 2;
		char *virt = malloc(n);
		if (virt) {
			snprintf(virt, n, "%s%s%s", r->local, *rest ? "/" : "", rest);
			pl_cwd_set_virtual(virt);
			free(virt);
		}
	}
	free(cwd);
}

void pl_drain_uploads(void)
{
	if (pl_in_vfork_child())
		return;
	pl_enter();
	up_drain();
	pl_leave();
}

/* Registered when a write route is first used: after the program's own start-up
 * registrations, so it runs before them. */
static void register_drain_once(void)
{
	atexit(pl_drain_uploads);
}

static void register_drain(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_drain_once);
}

/* The pool's threads run only rwsplit code: mark them for good. */
static void mark_thread_ours(void)
{
	pl_busy = 1;
}

__attribute__((constructor)) static void pl_init(void)
{
	pl_resolve();
	const char *disable = getenv("RWSPLIT_DISABLE");
	if (disable && strcmp(disable, "1") == 0)
		return;
	const char *path = getenv("RWSPLIT_CONFIG");
	if (!path || !*path)
		return;
	pl_enter();
	log_init();
	cfg *c = NULL;
	char err[CFG_ERR_MAX];
	if (cfg_load(path, &c, err, sizeof err) < 0) {
		fprintf(stderr, "rwsplit: %s (set RWSPLIT_DISABLE=1 to run without rwsplit)\n",
			err);
		_exit(78);
	}
	rt_table *t = rt_table_new(c);
	if (!t || pl_fdtab_init() < 0) {
		fprintf(stderr, "rwsplit: out of memory at start-up\n");
		_exit(71);
	}
	static const lc_hooks guard = { guard_fork_prepare, guard_fork_parent, guard_fork_child };
	lc_register(LC_GUARD, &guard);
	lc_register(LC_S3_CLIENTS, &s3_dl_fork_hooks);
	pool_set_thread_hook(mark_thread_ours);
	if (rd_init(c) < 0 || up_init(c, register_drain) < 0) {
		fprintf(stderr, "rwsplit: cannot initialise the reader\n");
		_exit(71);
	}
	pl_cfg = c;
	pl_routes = t;
	pl_uid = geteuid();
	pl_gid = getegid();
	pl_owner_pid = getpid();
	adopt_inherited_cwd();
	pl_leave();
	for (size_t i = 0; i < c->nroutes; i++)
		pl_has_write |= c->routes[i].mode == CFG_WRITE;
	pl_active = c->nroutes > 0;
	log_debug("active with %zu routes from %s", c->nroutes, path);
}

__attribute__((destructor)) static void pl_fini(void)
{
	if (!pl_active)
		return;
	pl_enter();
	rd_exit_summary();
	pl_leave();
}
