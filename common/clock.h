/* The monotonic clock in milliseconds, for timeouts, ages and durations in every module
 * (header-only: the store library links none of common/'s objects but log and sb). */
#ifndef RWSPLIT_CLOCK_H
#define RWSPLIT_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC: never goes back, meaningless across boots. */
static inline uint64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
