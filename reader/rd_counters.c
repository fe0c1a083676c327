/* The reader's counters (RD_COUNTERS in rd.h): this process's in rd.stats, the node's in a
 * file per route that every process maps and adds to with atomic operations, so that
 * `rwsplit stats` and the metrics see what all the node's processes did, without a daemon. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reader/rd_priv.h"

#define COUNTERS_MAGIC 0x72777363u /* "rwsc" */

struct rd_counter_file {
	uint32_t magic;          /* 0 in a file just made: then set by its first user */
	uint32_t ncounters;      /* how many the writer knew (append only) */
	_Atomic uint64_t v[RD_NCOUNTERS];
};

static const struct {
	const char *name, *help;
	int kind;
} info[] = {
#define RD_COUNTER_INFO(n, k, h) { #n, h, k },
	RD_COUNTERS(RD_COUNTER_INFO)
#undef RD_COUNTER_INFO
};

const char *rd_counter_name(enum rd_counter c)
{
	return info[c].name;
}

int rd_counter_kind(enum rd_counter c)
{
	return info[c].kind;
}

const char *rd_counter_help(enum rd_counter c)
{
	return info[c].help;
}

static int counters_path(const rd_route *rr, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/counters", rr->root);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Maps rr's file, making it (0600, in the user's private cache) when missing. */
static struct rd_counter_file *map_file(rd_route *rr)
{
	char path[PATH_MAX];
	if (counters_path(rr, path, sizeof path) < 0 || rd_route_prepare(rr) < 0)
		return NULL;
	struct rd_counter_file *f = rd_map_shared(path, sizeof *f);
	if (!f)
		return NULL;
	f->ncounters = RD_NCOUNTERS;
	f->magic = COUNTERS_MAGIC;
	return f;
}

void rd_count_node(rd_route *rr, enum rd_counter c, int64_t n)
{
	struct rd_counter_file *f = atomic_load_explicit(&rr->counters, memory_order_acquire);
	if (!f) {
		int untried = 0;
		/* One thread maps it; the others count in the process only meanwhile. */
		if (!atomic_compare_exchange_strong(&rr->counters_tried, &untried, 1))
			return;
		f = map_file(rr);
		if (!f)
			return;
		atomic_store_explicit(&rr->counters, f, memory_order_release);
	}
	atomic_fetch_add_explicit(&f->v[c], (uint64_t)n, memory_order_relaxed);
}

void rd_count(rd_route *rr, enum rd_counter c, int64_t n)
{
	atomic_fetch_add(&rd.stats[c], (uint64_t)n);
	/* The agent's work is counted by the process that asked, but for its retries, which
	 * only it sees, and its FETCHes (rd_agent_serve_fetch), which go on after the asking
	 * process has exited. */
	if (!rd.agent_side || c == RD_C_retries)
		rd_count_node(rr, c, n);
}

void rd_get_stats(uint64_t out[RD_NCOUNTERS])
{
	for (int i = 0; i < RD_NCOUNTERS; i++)
		out[i] = atomic_load(&rd.stats[i]);
}

int rd_route_counters(const cfg_route *r, uint64_t out[RD_NCOUNTERS], int64_t *cache_bytes)
{
	rd_route *rr = rd_route_of(r);
	memset(out, 0, RD_NCOUNTERS * sizeof *out);
	*cache_bytes = rd_cache_usage(rr);
	char path[PATH_MAX];
	if (counters_path(rr, path, sizeof path) < 0)
		return -ENAMETOOLONG;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	void *p = MAP_FAILED;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
	    st.st_size >= (off_t)sizeof(struct rd_counter_file))
		p = mmap(NULL, sizeof(struct rd_counter_file), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -EIO;
	const struct rd_counter_file *f = p;
	if (f->magic == COUNTERS_MAGIC)
		for (unsigned i = 0; i < RD_NCOUNTERS && i < f->ncounters; i++)
			out[i] = atomic_load(&f->v[i]);
	munmap(p, sizeof(struct rd_counter_file));
	return 0;
}
