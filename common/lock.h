/* A mutex that clang's thread-safety analysis knows (make lint runs clang -Wthread-safety):
 * state marked GUARDED_BY(l) may only be touched holding l, and a function marked
 * REQUIRES(l) only called holding it. Other compilers see a plain pthread mutex. */
#ifndef RWSPLIT_LOCK_H
#define RWSPLIT_LOCK_H

#include <pthread.h>
#include <time.h>

#if defined(__clang__)
#define TSA(x) __attribute__((x))
#else
#define TSA(x)
#endif
#define GUARDED_BY(l) TSA(guarded_by(l))
#define PT_GUARDED_BY(l) TSA(pt_guarded_by(l))
#define REQUIRES(l) TSA(requires_capability(l))
#define ACQUIRE(l) TSA(acquire_capability(l))
#define RELEASE(l) TSA(release_capability(l))
#define NO_TSA TSA(no_thread_safety_analysis)

/* A struct tag, not a typedef: a member called lock can then be named in GUARDED_BY. */
struct TSA(capability("mutex")) lock {
	pthread_mutex_t m;
};

#define LOCK_INITIALIZER { PTHREAD_MUTEX_INITIALIZER }

static inline void lock_take(struct lock *l) ACQUIRE(*l) NO_TSA;
static inline void lock_give(struct lock *l) RELEASE(*l) NO_TSA;
/* pthread_cond_wait / _timedwait on l, which the caller holds before and after. */
static inline int lock_wait(pthread_cond_t *c, struct lock *l, const struct timespec *until)
	REQUIRES(*l) NO_TSA;
/* Makes l, or makes it anew in a fork child (the thread that held it may not exist there). */
static inline void lock_init(struct lock *l) NO_TSA;

static inline void lock_take(struct lock *l)
{
	pthread_mutex_lock(&l->m);
}

static inline void lock_give(struct lock *l)
{
	pthread_mutex_unlock(&l->m);
}

static inline int lock_wait(pthread_cond_t *c, struct lock *l, const struct timespec *until)
{
	return until ? pthread_cond_timedwait(c, &l->m, until) : pthread_cond_wait(c, &l->m);
}

static inline void lock_init(struct lock *l)
{
	pthread_mutex_init(&l->m, NULL);
}

#endif
