#include "common/thread.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct named_start {
	void *(*fn)(void *);
	void *arg;
	char name[16]; /* the kernel keeps 15 bytes of a thread's name */
} named_start;

static void *run_named(void *p)
{
	named_start s = *(named_start *)p;
	free(p);
	pthread_setname_np(pthread_self(), s.name);
	return s.fn(s.arg);
}

int thread_start(pthread_t *t, size_t stack, const char *name, void *(*fn)(void *), void *arg)
{
	named_start *s = malloc(sizeof *s);
	if (!s)
		return EAGAIN;
	s->fn = fn;
	s->arg = arg;
	snprintf(s->name, sizeof s->name, "%s", name);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (!t)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (stack)
		pthread_attr_setstacksize(&attr, stack);
	pthread_t ignored;
	int rc = pthread_create(t ? t : &ignored, &attr, run_named, s);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		free(s);
	return rc;
}
