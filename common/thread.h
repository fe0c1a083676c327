/* Threads rwsplit starts inside the program. */
#ifndef RWSPLIT_THREAD_H
#define RWSPLIT_THREAD_H

#include <pthread.h>
#include <stddef.h>

/* Starts fn(arg) on a new thread with every signal blocked: the program's signal handlers
 * belong on its own threads. With t NULL the thread is detached, else joinable and stored
 * in *t. stack 0 keeps the default size. Returns 0 or the pthread_create error. */
int thread_start(pthread_t *t, size_t stack, void *(*fn)(void *), void *arg);

#endif
