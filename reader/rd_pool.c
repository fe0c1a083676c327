/* The reader's worker threads: prefetch and background fills. Started on the first job,
 * with every signal blocked (the program's handlers belong on its own threads), and
 * restarted lazily in a forked child, which inherits no threads. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/thread.h"
#include "reader/rd_priv.h"

#define POOL_MAX_THREADS 64

typedef struct job {
	rd_job_fn fn;
	void *arg;
	struct job *next;
} job;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t ready;
	job *head, *tail;
	unsigned threads, idle, max;
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, 0 };

static void *worker(void *unused)
{
	(void)unused;
	if (rd.hooks.thread_start)
		rd.hooks.thread_start();
	for (;;) {
		pthread_mutex_lock(&pool.lock);
		while (!pool.head) {
			pool.idle++;
			pthread_cond_wait(&pool.ready, &pool.lock);
			pool.idle--;
		}
		job *j = pool.head;
		pool.head = j->next;
		if (!pool.head)
			pool.tail = NULL;
		pthread_mutex_unlock(&pool.lock);
		j->fn(j->arg);
		free(j);
	}
	return NULL;
}

/* As many threads as the most parallel read route asks for. */
static unsigned max_threads(void)
{
	unsigned n = 1;
	for (size_t i = 0; i < rd.cfg->nroutes; i++)
		if (rd.cfg->routes[i].mode == CFG_READ && rd.cfg->routes[i].prefetch_concurrency > n)
			n = rd.cfg->routes[i].prefetch_concurrency;
	return n > POOL_MAX_THREADS ? POOL_MAX_THREADS : n;
}

/* One more worker. Caller holds pool.lock. */
static int add_thread(void)
{
	int rc = thread_start(NULL, 256 * 1024, "rws-fetch", worker, NULL);
	if (rc == 0)
		pool.threads++;
	return rc;
}

int rd_pool_submit(rd_job_fn fn, void *arg)
{
	job *j = malloc(sizeof *j);
	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&pool.lock);
	if (!pool.max)
		pool.max = max_threads();
	/* Grow only while work waits: a process that needs one fetch starts one thread. */
	if (pool.idle == 0 && pool.threads < pool.max && add_thread() != 0 && pool.threads == 0) {
		pthread_mutex_unlock(&pool.lock);
		free(j);
		log_warn("reader: cannot start a worker thread");
		return -EAGAIN;
	}
	if (pool.tail)
		pool.tail->next = j;
	else
		pool.head = j;
	pool.tail = j;
	pthread_cond_signal(&pool.ready);
	pthread_mutex_unlock(&pool.lock);
	return 0;
}

void rd_pool_fork_prepare(void)
{
	pthread_mutex_lock(&pool.lock);
}

void rd_pool_fork_parent(void)
{
	pthread_mutex_unlock(&pool.lock);
}

void rd_pool_fork_child(void)
{
	/* Queued jobs are the parent's business: it still runs them. */
	job *j = pool.head;
	while (j) {
		job *next = j->next;
		free(j);
		j = next;
	}
	pool.head = pool.tail = NULL;
	pool.threads = pool.idle = 0;
	pthread_mutex_init(&pool.lock, NULL);
	pthread_cond_init(&pool.ready, NULL);
}
