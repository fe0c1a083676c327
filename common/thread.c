#include "common/thread.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	char short_name[sizeof s->name];
	memcpy(short_name, s->name, sizeof short_name);
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
	if (rc != 0) {
		free(s);
		return rc;
	}
	/* Named before we return, not only once the thread runs: whoever looks at the
	 * process's threads right after (top -H, a test) sees the name. A detached thread may
	 * already be gone, so it is left to name itself. */
	if (t)
		pthread_setname_np(*t, short_name);
	return 0;
}
