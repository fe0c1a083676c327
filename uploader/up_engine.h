/* The agent side of a write route (`rwsplit agent --tree PATH`, and `rwsplit recover`): it
 * owns one tree, keeps the store in sync with it and answers the tree's processes.
 *
 * Threads and locks: the main thread reads inotify events and schedules; upload_workers
 * jobs on the worker pool (common/pool.h) reconcile paths with the store; one job per
 * connection answers requests. Everything in up_engine below `lock` is under it (functions
 * that need it held say REQUIRES(e->lock), which clang's -Wthread-safety checks); no thread
 * holds it across a request to the store, a sleep or a wait on a client (the condition waits
 * release it). It is the only lock of the engine besides the store client's own. */
#ifndef RWSPLIT_UP_ENGINE_H
#define RWSPLIT_UP_ENGINE_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <uthash.h>

#include "common/lock.h"
#include "config/cfg.h"
#include "s3/s3.h"
#include "uploader/up_journal.h"

/* A path of the tree that may differ from the store. */
typedef struct up_item {
	char *rel;               /* hash key */
	uint64_t due;            /* monotonic ms: not looked at before */
	uint64_t seq;            /* when it first became dirty: drains wait for older ones */
	enum { IT_WAIT, IT_QUEUED, IT_RUNNING } state;
	int again;               /* touched while running: look again */
	int open;                /* open for writing at its last look: drains do not wait */
	int closed;              /* looks left that doubt an "open" answer (see CLOSE_RECHECKS) */
	int failures;
	uint64_t last_put;       /* monotonic ms of its last upload, or when first seen */
	UT_hash_handle hh;
	struct up_item *next;    /* run queue */
} up_item;

typedef struct up_watch {
	int wd;
	char *rel;
	UT_hash_handle hh;
} up_watch;

typedef struct up_del {
	char *key;
	struct up_del *next;
} up_del;

typedef struct up_engine {
	const cfg *cfg;
	const cfg_route *route;
	int once;                /* recover: stop when nothing is left */
	int taking_over;         /* the first walk: leftovers of a dead agent are removed */
	char state[PATH_MAX - 64];
	int rootfd, inotify_fd, listen_fd, wake_fd, lock_fd;
	s3_client *client;
	struct lock lock;
	pthread_cond_t work;     /* run queue or deletes not empty, or stopping */
	pthread_cond_t changed;  /* an item finished, a fetch ended */
	up_journal j;
	up_item *items;
	up_item *queue, *queue_tail;
	up_del *dels;
	unsigned deleting; /* deletes taken off dels and not done yet */
	up_watch *watches;
	char **fetching; /* paths being downloaded */
	size_t nfetching;
	uint64_t seq;
	uint64_t uploaded, bytes;
	int stop;
	atomic_int conns;
	struct pool_queue *conn_queue; /* the connections' jobs (common/pool.h), set at start */
	uint64_t last_activity; /* monotonic ms */
	/* monotonic ms of the last file created or closed after writing */
	uint64_t last_save_event;
	/* drains waiting: nothing is held back for a quiet tree */
	unsigned draining;
} up_engine;

/* Runs the engine for write route r of c until it is idle (agent) or nothing is left to do
 * (once, for recover). listen_fd: the agent's listening socket (-1 for recover). Returns the
 * number of paths not in sync when it stopped, or -errno when it could not take the tree
 * over (logged). ready, when set, runs once the tree is taken over, before anything is
 * served (the agent detaches there); its failure ends the run. */
long up_engine_run(const cfg *c, const cfg_route *r, int listen_fd, int once,
		   int (*ready)(void));

/* Marks rel as differing from the store, to be looked at after delay_ms. */
void up_engine_touch(up_engine *e, const char *rel, uint64_t delay_ms) REQUIRES(e->lock);

/* Watches directory rel and everything below it, and touches every file in it. */
void up_engine_walk(up_engine *e, const char *rel, uint64_t delay_ms) REQUIRES(e->lock);

/* Queues a key for deletion (once no journal entry uses it). */
void up_engine_delete_later(up_engine *e, const char *key) REQUIRES(e->lock);

/* Journals a multipart upload id (started 1) or its end (0). Takes e->lock. */
void up_engine_journal_mpu(up_engine *e, const char *id, const char *key, int started);

/* up_reconcile.c. What one look at rel found. */
enum up_look { LOOK_DONE, LOOK_OPEN, LOOK_AGAIN };

/* Brings the store in line with rel (upload, copy, delete); sync uploads even a file that is
 * open for writing. Caller does not hold e->lock. Returns a up_look or -errno (why filled). */
int up_reconcile(up_engine *e, up_item *it, int sync, char *why, size_t whylen);

/* Downloads the placeholder at rel. Caller does not hold e->lock. */
int up_fetch_placeholder(up_engine *e, const char *rel, char *why, size_t whylen);

/* spool_budget: uploaded files beyond it become placeholders again, least recently used
 * first (they are downloaded again on the next open). Caller does not hold e->lock. */
void up_evict(up_engine *e);

/* Lists the route's prefix and makes a placeholder for each object the tree lacks. */
int up_populate(up_engine *e);

/* PutObject or multipart of size bytes of fd (up_put.c). etag: 80 bytes. */
int up_put_fd(up_engine *e, const char *key, int fd, uint64_t size, char *etag, s3_error *err);

#endif
