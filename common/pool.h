/* The process's one worker pool. Every thread rwsplit runs besides the program's own comes
 * from here: the reader's fetches and prefetch, a tree agent's uploads and their parts, the
 * agents' connections. Work is submitted to a queue; the pool runs each queue's jobs in
 * order of submission, at most the queue's width at once, and round-robin between queues.
 * Threads start when work waits and no thread is free, up to POOL_MAX_THREADS, run with every
 * signal blocked (the program's handlers belong on its own threads), carry the name of the
 * queue whose job they run (top -H, perf, /proc/PID/task/TID/comm), and end after a minute
 * without work. A forked child starts with no threads and no queued jobs (the parent still
 * runs those); its queues stay usable. */
#ifndef RWSPLIT_POOL_H
#define RWSPLIT_POOL_H

#include <stddef.h>

#define POOL_MAX_THREADS 1024

typedef struct pool_queue pool_queue;
typedef void (*pool_fn)(void *arg);

/* A new queue whose jobs run on threads called name (first 15 bytes), at most width at a
 * time (0: as many as the pool has). Returns NULL without memory. The caller owns it and
 * frees it with pool_queue_free. */
pool_queue *pool_queue_new(const char *name, unsigned width);

/* Queues fn(arg) on q. Returns 0, or -ENOMEM, or -EAGAIN when no thread could be started
 * and none exists to run it (fn is then not called; the caller still owns arg). */
int pool_submit(pool_queue *q, pool_fn fn, void *arg);

/* Takes back q's jobs that have not started (their fn is never called; their args remain
 * the caller's), then waits until none of q's jobs runs. Returns how many it took back. Do
 * not call from one of q's own jobs. */
size_t pool_queue_drain(pool_queue *q);

/* Frees q, which must have no job queued or running (pool_queue_drain first). */
void pool_queue_free(pool_queue *q);

/* fn runs first on every thread the pool starts (the preload library marks its threads as
 * its own). Set it before the first submit. */
void pool_set_thread_hook(void (*fn)(void));

#endif
