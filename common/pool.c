/* One lock for the whole pool, pool_lock (rank LC_POOL in common/lifecycle.h); no job runs
 * under it. */
#include "common/pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/lifecycle.h"
#include "common/lock.h"

#define IDLE_S 60
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STACK (4u << 20) /* sanitizers' frames are several times larger */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define STACK (4u << 20)
#endif
#endif
#ifndef STACK
/* Enough for a TLS handshake and a listing's parse; the default 8 MiB times 128 readers would
 * be the larger part of a process's memory beyond its cache. */
#define STACK (512u << 10)
#endif

static struct lock pool_lock = LOCK_INITIALIZER;

typedef struct job {
	pool_fn fn;
	void *arg;
	struct job *next;
} job;

struct pool_queue {
	char name[16];            /* the kernel keeps 15 bytes of a thread's name */
	unsigned width;           /* 0: no limit of its own */
	unsigned running GUARDED_BY(pool_lock);  /* its jobs running now */
	unsigned draining GUARDED_BY(pool_lock); /* callers waiting in pool_queue_drain */
	job *head GUARDED_BY(pool_lock), *tail GUARDED_BY(pool_lock);
	int listed GUARDED_BY(pool_lock);        /* on the ready list */
	pool_queue *ready_next GUARDED_BY(pool_lock);
	pool_queue *all_next GUARDED_BY(pool_lock); /* every queue, for the fork child */
};

static struct {
	pthread_cond_t work;      /* a queue became ready */
	pthread_cond_t done;      /* a job ended on a queue being drained */
	/* queues with a job they may start now */
	pool_queue *ready_head GUARDED_BY(pool_lock), *ready_tail GUARDED_BY(pool_lock);
	pool_queue *all GUARDED_BY(pool_lock);
	unsigned threads GUARDED_BY(pool_lock), idle GUARDED_BY(pool_lock);
	/* signals sent to idle threads and not yet taken */
	unsigned wakeups GUARDED_BY(pool_lock);
	void (*hook)(void);
} P;

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

static int runnable(const pool_queue *q) REQUIRES(pool_lock)
{
	return q->head && (!q->width || q->running < q->width);
}

static void list_ready(pool_queue *q) REQUIRES(pool_lock)
{
	q->listed = 1;
	q->ready_next = NULL;
	if (P.ready_tail)
		P.ready_tail->ready_next = q;
	else
		P.ready_head = q;
	P.ready_tail = q;
}

static void unlist(pool_queue *q) REQUIRES(pool_lock)
{
	pool_queue **pp = &P.ready_head, *prev = NULL;
	while (*pp && *pp != q) {
		prev = *pp;
		pp = &(*pp)->ready_next;
	}
	if (!*pp)
		return;
	*pp = q->ready_next;
	if (P.ready_tail == q)
		P.ready_tail = prev;
	q->listed = 0;
}

static void *worker(void *unused)
{
	(void)unused;
	if (P.hook)
		P.hook();
	char name[16] = "", want[16];
	lock_take(&pool_lock);
	for (;;) {
		pool_queue *q = P.ready_head;
		if (!q) {
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += IDLE_S;
			int rc = 0;
			P.idle++;
			while (!P.ready_head && rc != ETIMEDOUT)
				rc = lock_wait(&P.work, &pool_lock, &until);
			P.idle--;
			if (P.wakeups)
				P.wakeups--;
			if (!P.ready_head)
				break;
			continue;
		}
		job *j = q->head;
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
		q->running++;
		/* Round-robin: the queue goes to the back if it may start another job. */
		unlist(q);
		if (runnable(q))
			list_ready(q);
		memcpy(want, q->name, sizeof want);
		lock_give(&pool_lock);
		if (strcmp(name, want) != 0) {
			memcpy(name, want, sizeof name);
			pthread_setname_np(pthread_self(), name);
		}
		j->fn(j->arg);
		free(j);
		lock_take(&pool_lock);
		q->running--;
		if (!q->listed && runnable(q))
			list_ready(q);
		if (q->draining)
			pthread_cond_broadcast(&P.done);
	}
	P.threads--;
	lock_give(&pool_lock);
	return NULL;
}

/* One more thread, detached and with every signal blocked. */
static int add_thread(void) REQUIRES(pool_lock)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, STACK);
	pthread_t t;
	int rc = pthread_create(&t, &attr, worker, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		P.threads++;
	return rc;
}

static void init_conds(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&P.work, &a);
	pthread_condattr_destroy(&a);
	pthread_cond_init(&P.done, NULL);
}

static void fork_prepare(void) NO_TSA
{
	lock_take(&pool_lock);
}

static void fork_parent(void) NO_TSA
{
	lock_give(&pool_lock);
}

/* The child's only thread is the forking one, which holds pool_lock. */
static void fork_child(void) NO_TSA
{
	for (pool_queue *q = P.all; q; q = q->all_next) {
		for (job *j = q->head, *next; j; j = next) {
			next = j->next;
			free(j);
		}
		q->head = q->tail = NULL;
		q->running = q->draining = 0;
		q->listed = 0;
	}
	P.ready_head = P.ready_tail = NULL;
	P.threads = P.idle = P.wakeups = 0;
	init_conds();
	lock_give(&pool_lock);
}

static void setup(void)
{
	static const lc_hooks hooks = { fork_prepare, fork_parent, fork_child };
	init_conds();
	lc_register(LC_POOL, &hooks);
}

pool_queue *pool_queue_new(const char *name, unsigned width)
{
	pthread_once(&setup_once, setup);
	pool_queue *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	snprintf(q->name, sizeof q->name, "%s", name);
	q->width = width;
	lock_take(&pool_lock);
	q->all_next = P.all;
	P.all = q;
	lock_give(&pool_lock);
	return q;
}

int pool_submit(pool_queue *q, pool_fn fn, void *arg)
{
	job *j = malloc(sizeof *j);
	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	lock_take(&pool_lock);
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	if (!q->listed && runnable(q))
		list_ready(q);
	int rc = 0;
	if (!q->listed) {
		/* Waits for one of q's running jobs to end: no thread needed. */
	} else if (P.idle > P.wakeups) {
		P.wakeups++;
		pthread_cond_signal(&P.work);
	} else if ((P.threads >= POOL_MAX_THREADS || add_thread() != 0) && P.threads == 0) {
		/* Nothing would ever run it: take j, the tail, back. */
		job **pp = &q->head, *prev = NULL;
		while (*pp != j) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		*pp = NULL;
		q->tail = prev;
		if (!runnable(q))
			unlist(q);
		rc = -EAGAIN;
	}
	lock_give(&pool_lock);
	if (rc < 0)
		free(j);
	return rc;
}

size_t pool_queue_drain(pool_queue *q)
{
	lock_take(&pool_lock);
	job *taken = q->head;
	q->head = q->tail = NULL;
	if (q->listed)
		unlist(q);
	q->draining++;
	while (q->running)
		lock_wait(&P.done, &pool_lock, NULL);
	q->draining--;
	lock_give(&pool_lock);
	size_t n = 0;
	for (job *next; taken; taken = next, n++) {
		next = taken->next;
		free(taken);
	}
	return n;
}

void pool_queue_free(pool_queue *q)
{
	if (!q)
		return;
	lock_take(&pool_lock);
	pool_queue **pp = &P.all;
	while (*pp && *pp != q)
		pp = &(*pp)->all_next;
	if (*pp)
		*pp = q->all_next;
	lock_give(&pool_lock);
	free(q);
}

void pool_set_thread_hook(void (*fn)(void))
{
	P.hook = fn;
}
