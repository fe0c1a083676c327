/* Threads rwsplit starts inside the program. */
#ifndef RWSPLIT_THREAD_H
#define RWSPLIT_THREAD_H

#include <pthread.h>
#include <stddef.h>

/* Starts fn(arg) on a new thread with every signal blocked: the program's signal handlers
 * belong on its own threads. The thread is called name (its first 15 bytes), so that top -H,
 * perf and /proc/PID/task/TID/comm tell rwsplit's threads from the program's. With t NULL the
 * thread is detached, else joinable and stored in *t. stack 0 keeps the default size.
 * Returns 0 or an errno value (pthread_create's, or EAGAIN without memory). */
int thread_start(pthread_t *t, size_t stack, const char *name, void *(*fn)(void *),
		 void *arg);

#endif
