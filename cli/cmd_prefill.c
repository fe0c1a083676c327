/* rwsplit prefill: fills the node's cache with read routes' objects before the job starts
 * (an init container, a Kubernetes Job), with a progress bar on a terminal and plain lines
 * otherwise. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/log.h"
#include "reader/rd.h"
#include "router/rt.h"

#define PLAIN_EVERY_MS 5000
#define BAR_EVERY_MS 200
#define BAR_WIDTH 24

static const char prefill_usage[] =
	"usage: rwsplit prefill [-c CONFIG] [-j N] [--cache-dir DIR] [-q] ROUTE|PATH...\n"
	"\n"
	"Downloads the objects of each read route (its local path) or of a file or directory\n"
	"inside one into the cache, so that a job that starts later reads them without a GET.\n"
	"What is already cached in its current version (ETag, size) is not downloaded again:\n"
	"a second run is a no-op unless objects changed. Objects are taken in key order while\n"
	"they fit the route's cache budget (less a tenth); the others are left to the job.\n"
	"The cache belongs to the user who runs this: run it as the job's user.\n"
	"\n"
	"  -c, --config FILE    path-routing config (default $RWSPLIT_CONFIG)\n"
	"  -j, --jobs N         downloads in flight (default: the route's prefetch_concurrency)\n"
	"      --cache-dir DIR  fill DIR instead of the config's cache_dir (a volume the job\n"
	"                       then mounts there)\n"
	"  -q, --quiet          only the summary line of each route\n"
	"  -h, --help           this text\n"
	"Progress: a bar (files, bytes, rate, ETA) when stderr is a terminal, else a line every\n"
	"5 s.\n"
	"exit status: 0 when every object is cached, 69 when objects could not be downloaded\n"
	"  (or cannot be listed), 77 permission denied, 64 a PATH outside every read route,\n"
	"  78 bad config.\n";

typedef struct view {
	const char *name;        /* what the user named */
	int bar;                 /* a terminal: redraw one line */
	int quiet;
	uint64_t start_ms;
	int drawn;               /* a bar line is on screen */
} view;

static const char *duration(double s, char *out, size_t cap)
{
	unsigned long t = (unsigned long)(s + 0.5);
	if (t >= 3600)
		snprintf(out, cap, "%luh%02lum", t / 3600, t / 60 % 60);
	else if (t >= 60)
		snprintf(out, cap, "%lum%02lus", t / 60, t % 60);
	else
		snprintf(out, cap, "%lus", t);
	return out;
}

static void report(void *arg, const rd_prefill_progress *p)
{
	view *v = arg;
	double secs = (double)(clock_ms() - v->start_ms) / 1000;
	double rate = secs > 0 ? (double)p->got / secs : 0;
	char done[32], total[32], speed[32], eta[32], took[32], out[32];
	cli_human_bytes(p->done_bytes, done, sizeof done);
	cli_human_bytes(p->bytes, total, sizeof total);
	cli_human_bytes((uint64_t)rate, speed, sizeof speed);
	if (p->finished) {
		if (v->drawn)
			fputc('\n', stderr);
		fprintf(stderr, "prefill %s: %llu files (%s): %llu downloaded (%s), %llu already "
			"cached, %llu failed in %s", v->name, (unsigned long long)p->files, total,
			(unsigned long long)p->fetched, cli_human_bytes(p->got, speed, sizeof speed),
			(unsigned long long)p->cached, (unsigned long long)p->failed,
			duration(secs, took, sizeof took));
		if (p->left_out)
			fprintf(stderr, "; %llu more (%s) left out: they do not fit the route's cache "
				"budget (%s usable)", (unsigned long long)p->left_out,
				cli_human_bytes(p->left_out_bytes, out, sizeof out),
				cli_human_bytes(p->budget, speed, sizeof speed));
		fputc('\n', stderr);
		return;
	}
	if (v->quiet)
		return;
	/* ETA from the bytes still to go at the store rate so far; cached files cost nothing */
	uint64_t left = p->bytes > p->done_bytes ? p->bytes - p->done_bytes : 0;
	if (rate > 0)
		duration((double)left / rate, eta, sizeof eta);
	else
		snprintf(eta, sizeof eta, "?");
	if (v->bar) {
		int filled = p->bytes ? (int)((double)p->done_bytes * BAR_WIDTH / (double)p->bytes) : 0;
		char bar[BAR_WIDTH + 1];
		for (int i = 0; i < BAR_WIDTH; i++)
			bar[i] = i < filled ? '#' : '.';
		bar[BAR_WIDTH] = '\0';
		fprintf(stderr, "\r\033[Kprefill %s [%s] %llu/%llu files  %s/%s  %s/s  ETA %s",
			v->name, bar, (unsigned long long)p->done_files, (unsigned long long)p->files,
			done, total, speed, eta);
		v->drawn = 1;
	} else {
		fprintf(stderr, "prefill %s: %llu/%llu files, %s/%s, %s/s, ETA %s\n", v->name,
			(unsigned long long)p->done_files, (unsigned long long)p->files, done, total,
			speed, eta);
	}
	fflush(stderr);
}

int cmd_prefill(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "cache-dir", required_argument, NULL, 'C' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *cache_dir = NULL;
	unsigned jobs = 0;
	int quiet = 0, ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:j:qh", opts, NULL)) != -1) {
		char *end;
		switch (ch) {
		case 'c': config = optarg; break;
		case 'C': cache_dir = optarg; break;
		case 'q': quiet = 1; break;
		case 'j':
			jobs = (unsigned)strtoul(optarg, &end, 10);
			if (*end || jobs < 1 || jobs > 256) {
				fprintf(stderr, "rwsplit prefill: --jobs wants 1..256, not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': fputs(prefill_usage, stdout); return 0;
		default: fputs(prefill_usage, stderr); return EXIT_USAGE;
		}
	}
	if (optind == argc) {
		fputs(prefill_usage, stderr);
		return EXIT_USAGE;
	}
	int status;
	cfg *c = cli_load_config("prefill", config, &status);
	if (!c)
		return status;
	if (cache_dir) {
		char *copy = strdup(cache_dir);
		if (!copy || cache_dir[0] != '/') {
			fprintf(stderr, "rwsplit prefill: --cache-dir wants an absolute path\n");
			free(copy);
			cfg_free(c);
			return EXIT_USAGE;
		}
		free(c->cache_dir);
		c->cache_dir = copy;
	}
	/* This process downloads by itself (no fetch agent) and only what it is asked. */
	c->agent = false;
	for (size_t i = 0; i < c->nroutes; i++)
		c->routes[i].prefetch = CFG_PREFETCH_OFF;
	cli_use_linked_client();
	rt_table *t = rt_table_new(c);
	if (!t || rd_init(c) < 0) {
		fprintf(stderr, "rwsplit prefill: out of memory (or cache_dir too long)\n");
		rt_table_free(t);
		cfg_free(c);
		return EXIT_OSERR;
	}
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		snprintf(cwd, sizeof cwd, "/");
	status = 0;
	for (int i = optind; i < argc; i++) {
		char norm[PATH_MAX];
		const char *rest = NULL;
		const cfg_route *r = rt_normalize(cwd, argv[i], norm, sizeof norm) < 0 ? NULL
				     : rt_match(t, norm, &rest);
		if (!r || r->mode != CFG_READ) {
			fprintf(stderr, "rwsplit prefill: %s: %s\n", argv[i],
				r ? "is in a write route: nothing to prefill"
				  : "not inside any read route of the config");
			status = EXIT_USAGE;
			continue;
		}
		view v = { .name = argv[i], .bar = !quiet && isatty(STDERR_FILENO), .quiet = quiet,
			   .start_ms = clock_ms() };
		unsigned n = jobs ? jobs : r->prefetch_concurrency ? r->prefetch_concurrency : 8;
		char why[1024] = "";
		int rc = rd_prefill(r, rest, n, v.bar ? BAR_EVERY_MS : PLAIN_EVERY_MS, report, &v,
				    why, sizeof why);
		if (rc < 0) {
			fprintf(stderr, "rwsplit prefill: %s: %s\n", argv[i], why);
			int s = rc == -EACCES ? EXIT_NOPERM : EXIT_UNAVAILABLE;
			if (!status)
				status = s;
		}
	}
	rt_table_free(t);
	/* c stays: the reader keeps pointers into it until the process exits. */
	return status;
}
