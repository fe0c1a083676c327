/* Process lifecycle in one place: every module's fork hooks, run in the written lock order.
 * A fork that another thread could interrupt in the middle of a critical section leaves the
 * child with a lock nobody will release; so each module's prepare hook takes its locks, and
 * the parent and child hooks release them (the child also forgets what belonged to the
 * parent's other threads). A vfork child runs none of these and must mutate nothing. */
#ifndef RWSPLIT_LIFECYCLE_H
#define RWSPLIT_LIFECYCLE_H

/* The order prepare hooks run in, which is the in-process lock order, outermost first: a
 * module may only take a lock while it holds locks of earlier ranks. Parent and child hooks
 * run in the reverse order. */
enum lc_rank {
	LC_GUARD,         /* the preload library's re-entry guard: no shim runs our code meanwhile */
	LC_UPLOAD_ATTACH, /* up_client.c: attaching to a write route's agent */
	LC_READ_ROUTES,   /* each read route's mutex */
	LC_POOL,          /* the worker pool (common/pool.c) */
	LC_AGENT_CLIENT,  /* the fetch agent client's connection list */
	LC_S3_CLIENTS,    /* the store client table, then each client's credentials and pool */
	LC_PREFETCH_HITS, /* the prefetch-hit table */
	LC_WINDOWS,       /* windowed files' pins */
	LC_FDTAB,         /* the fd table's spin stripes, under which nothing is called */
	LC_NRANKS
};

typedef struct lc_hooks {
	void (*prepare)(void); /* before fork(), in the forking thread; may be NULL */
	void (*parent)(void);  /* after it, in the parent; may be NULL */
	void (*child)(void);   /* after it, in the child, whose only thread is the forking one */
} lc_hooks;

/* Registers h (kept by pointer: a static table) for rank, at most once per rank; the first
 * call installs the process's one pthread_atfork handler. Thread-safe. Returns 0, or -EEXIST
 * when the rank already has hooks. */
int lc_register(enum lc_rank rank, const lc_hooks *h);

#endif
