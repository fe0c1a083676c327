/* The worker pool (common/pool.c) and the fork hooks' order (common/lifecycle.c): widths are
 * kept, queues do not wait for each other, a drain takes back what has not started and waits
 * for what has, threads carry their queue's name, and a forked child starts with no threads
 * and none of the parent's queued jobs yet can use its queues. Each test runs in a process
 * of its own (CK_FORK). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit_run.h"
#include "common/lifecycle.h"
#include "common/pool.h"

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000L }, NULL);
}

/* A latch: jobs wait until it opens; tests wait for counts. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int gate_open;
static int started, finished, now, most;

static void reset(void)
{
	gate_open = started = finished = now = most = 0;
}

/* Waits (up to 10 s) until *what reaches n; returns whether it did. */
static int wait_count(int *what, int n)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&mu);
	int rc = 0;
	while (*what < n && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&cv, &mu, &until);
	int ok = *what >= n;
	pthread_mutex_unlock(&mu);
	return ok;
}

static void open_gate(void)
{
	pthread_mutex_lock(&mu);
	gate_open = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Counts itself running, waits for the gate (when gated) or 20 ms, and ends. */
static void job(void *gated)
{
	pthread_mutex_lock(&mu);
	started++;
	if (++now > most)
		most = now;
	pthread_cond_broadcast(&cv);
	while (gated && !gate_open)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	if (!gated)
		sleep_ms(20);
	pthread_mutex_lock(&mu);
	now--;
	finished++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

START_TEST(test_width_is_kept)
{
	reset();
	pool_queue *q = pool_queue_new("t-width", 2);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(pool_submit(q, job, NULL), 0);
	ck_assert(wait_count(&finished, 8));
	ck_assert_int_eq(most, 2);
	ck_assert_uint_eq(pool_queue_drain(q), 0);
	pool_queue_free(q);
}
END_TEST

START_TEST(test_queues_do_not_wait_for_each_other)
{
	reset();
	pool_queue *a = pool_queue_new("t-a", 1), *b = pool_queue_new("t-b", 1);
	ck_assert_int_eq(pool_submit(a, job, &gate_open), 0);
	ck_assert(wait_count(&started, 1));
	ck_assert_int_eq(pool_submit(a, job, NULL), 0); /* waits behind the gated one */
	ck_assert_int_eq(pool_submit(b, job, NULL), 0);
	ck_assert(wait_count(&finished, 1));            /* b's, while a's first still waits */
	ck_assert_int_eq(started, 2);
	open_gate();
	ck_assert(wait_count(&finished, 3));
	pool_queue_drain(a);
	pool_queue_drain(b);
	pool_queue_free(a);
	pool_queue_free(b);
}
END_TEST

static void *open_gate_later(void *unused)
{
	(void)unused;
	sleep_ms(100);
	open_gate();
	return NULL;
}

START_TEST(test_drain_takes_back_and_waits)
{
	reset();
	pool_queue *q = pool_queue_new("t-drain", 1);
	ck_assert_int_eq(pool_submit(q, job, &gate_open), 0);
	ck_assert(wait_count(&started, 1));
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(pool_submit(q, job, NULL), 0);
	pthread_t t;
	pthread_create(&t, NULL, open_gate_later, NULL);
	ck_assert_uint_eq(pool_queue_drain(q), 5);
	/* the running job had ended when drain returned; the others never ran */
	ck_assert_int_eq(finished, 1);
	pthread_join(t, NULL);
	sleep_ms(50);
	ck_assert_int_eq(started, 1);
	pool_queue_free(q);
}
END_TEST

static char seen_name[16];

static void name_job(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&mu);
	pthread_getname_np(pthread_self(), seen_name, sizeof seen_name);
	finished++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

START_TEST(test_threads_carry_the_queue_name)
{
	reset();
	pool_queue *q = pool_queue_new("rws-a-long-queue-name", 0);
	ck_assert_int_eq(pool_submit(q, name_job, NULL), 0);
	ck_assert(wait_count(&finished, 1));
	ck_assert_str_eq(seen_name, "rws-a-long-queu");
	pool_queue_drain(q);
	pool_queue_free(q);
}
END_TEST

START_TEST(test_fork_child_starts_clean)
{
	reset();
	pool_queue *q = pool_queue_new("t-fork", 1);
	ck_assert_int_eq(pool_submit(q, job, &gate_open), 0);
	ck_assert(wait_count(&started, 1));
	ck_assert_int_eq(pool_submit(q, job, NULL), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The parent's running job is not running here, its queued one is gone, and
		 * the queue runs new work on threads of the child's own. */
		int bad = pool_queue_drain(q) != 0;
		reset();
		pthread_mutex_init(&mu, NULL);
		pthread_cond_init(&cv, NULL);
		bad |= pool_submit(q, job, NULL) != 0;
		bad |= !wait_count(&finished, 1);
		_exit(bad);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	open_gate();
	ck_assert(wait_count(&finished, 2));
	pool_queue_drain(q);
	pool_queue_free(q);
}
END_TEST

/* The order the hooks ran in, as letters: prepare P<rank>, parent A<rank>, child C<rank>. */
static char order[64];

static void note(char what, int rank)
{
	size_t n = strlen(order);
	order[n] = what;
	order[n + 1] = (char)('0' + rank);
	order[n + 2] = '\0';
}

#define HOOKS(rank) \
	static void prepare_##rank(void) { note('P', rank); } \
	static void parent_##rank(void) { note('A', rank); } \
	static void child_##rank(void) { note('C', rank); } \
	static const lc_hooks hooks_##rank = { prepare_##rank, parent_##rank, child_##rank };
HOOKS(0)
HOOKS(2)
HOOKS(8)

START_TEST(test_fork_hooks_run_in_lock_order)
{
	ck_assert_int_eq(LC_GUARD, 0);
	ck_assert_int_eq(LC_READ_ROUTES, 2);
	ck_assert_int_eq(LC_FDTAB, 8);
	/* registered out of order: the rank decides */
	ck_assert_int_eq(lc_register(LC_FDTAB, &hooks_8), 0);
	ck_assert_int_eq(lc_register(LC_GUARD, &hooks_0), 0);
	ck_assert_int_eq(lc_register(LC_READ_ROUTES, &hooks_2), 0);
	ck_assert_int_eq(lc_register(LC_READ_ROUTES, &hooks_0), -EEXIST);
	order[0] = '\0';
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(strcmp(order, "P0P2P8C8C2C0") != 0);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child saw another order");
	ck_assert_str_eq(order, "P0P2P8A8A2A0");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("pool");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_width_is_kept);
	tcase_add_test(tc, test_queues_do_not_wait_for_each_other);
	tcase_add_test(tc, test_drain_takes_back_and_waits);
	tcase_add_test(tc, test_threads_carry_the_queue_name);
	tcase_add_test(tc, test_fork_child_starts_clean);
	tcase_add_test(tc, test_fork_hooks_run_in_lock_order);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
