/* rwsplit stats: the node's view of a config's routes. Read routes from their counters files
 * (every process of the node adds to them), write routes from their tree agents (UP_STATS),
 * temporary credentials from the node's shared credential files; as a table, JSON, or
 * Prometheus text, once or every --watch seconds. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/sb.h"
#include "reader/rd.h"
#include "uploader/up.h"
#include "uploader/up_wire.h"

static const char stats_usage[] =
	"usage: rwsplit stats [-c CONFIG] [--json | --prometheus] [--watch [SECONDS]]\n"
	"\n"
	"Prints what the node's processes did on CONFIG's routes: per read route the cache's\n"
	"bytes, opens and cache hits, GETs and bytes from the store, GETs in flight, prefetch,\n"
	"evictions and failed GETs (summed over every process since the cache was made); per\n"
	"write route its agent's uploads, bytes, files pending and failed; and when the\n"
	"temporary credentials of the node expire.\n"
	"\n"
	"  -c, --config FILE   path-routing config (default $RWSPLIT_CONFIG)\n"
	"      --json          one JSON object\n"
	"      --prometheus    Prometheus text format 0.0.4 (for node_exporter's textfile\n"
	"                      collector, or a scrape)\n"
	"  -w, --watch [N]     print again every N seconds (default 2) until interrupted\n"
	"  -h, --help          this text\n"
	"exit status: 0, 78 bad config.\n";

typedef struct write_view {
	int up;                  /* an agent answered */
	up_reply rep;
} write_view;

static void json_str(sb *o, const char *s)
{
	sb_putc(o, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			sb_printf(o, "\\%c", c);
		else if (c < 0x20)
			sb_printf(o, "\\u%04x", c);
		else
			sb_putc(o, (char)c);
	}
	sb_putc(o, '"');
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label(sb *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			sb_printf(o, "\\%c", *s);
		else if (*s == '\n')
			sb_puts(o, "\\n");
		else
			sb_putc(o, *s);
	}
}

/* Seconds until the soonest expiry among the node's shared temporary credentials of this
 * user, and how many sets there are; -1 when there are none. */
static long long credentials_left(const cfg *c, int *sets)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/u%u", c->cache_dir, (unsigned)geteuid());
	*sets = 0;
	DIR *d = opendir(dir);
	long long soonest = -1;
	for (struct dirent *e; d && (e = readdir(d));) {
		size_t n = strlen(e->d_name);
		if (strncmp(e->d_name, "creds-", 6) != 0 || n != 22)
			continue;
		char path[PATH_MAX + 32], buf[128] = "";
		snprintf(path, sizeof path, "%s/%.22s", dir, e->d_name);
		FILE *f = fopen(path, "re");
		long long fetched = 0, expires = 0;
		/* Only the first lines: the file's keys are never read here. */
		if (f && fgets(buf, sizeof buf, f) && strcmp(buf, "rwsplit-credentials 1\n") == 0 &&
		    fscanf(f, "%lld %lld", &fetched, &expires) == 2) {
			long long left = expires - (long long)time(NULL);
			(*sets)++;
			if (soonest < 0 || left < soonest)
				soonest = left;
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return soonest;
}

static void table(sb *o, const cfg *c, uint64_t (*rv)[RD_NCOUNTERS], const int64_t *cache,
		  const write_view *wv, long long cred_left, int cred_sets)
{
	char a[32], b[32], d[32];
	for (size_t i = 0; i < c->nroutes; i++) {
		const cfg_route *r = &c->routes[i];
		if (r->mode == CFG_READ) {
			const uint64_t *v = rv[i];
			sb_printf(o, "read  %s  s3://%s/%s\n", r->local, r->bucket, r->prefix);
			sb_printf(o, "      cache %s of %s; %llu opens, %llu from the cache; %llu GETs "
				  "(%s), %llu LISTs; in flight %llu GETs (%s)\n",
				  cache[i] >= 0 ? cli_human_bytes((uint64_t)cache[i], a, sizeof a) : "?",
				  cli_human_bytes(r->cache_bytes, b, sizeof b),
				  (unsigned long long)v[RD_C_opens], (unsigned long long)v[RD_C_cache_hits],
				  (unsigned long long)v[RD_C_gets], cli_human_bytes(v[RD_C_bytes_store], d, sizeof d),
				  (unsigned long long)v[RD_C_lists],
				  (unsigned long long)v[RD_C_gets_in_flight],
				  cli_human_bytes(v[RD_C_bytes_in_flight], a, sizeof a));
			sb_printf(o, "      prefetched %llu (%llu hits), %llu evictions, %llu failed "
				  "GETs\n", (unsigned long long)v[RD_C_prefetched],
				  (unsigned long long)v[RD_C_prefetch_hits],
				  (unsigned long long)v[RD_C_evictions],
				  (unsigned long long)v[RD_C_get_failures]);
		} else {
			sb_printf(o, "write %s  s3://%s/%s\n", r->local, r->bucket, r->prefix);
			if (wv[i].up)
				sb_printf(o, "      agent: %llu files uploaded (%s), %llu pending (%s), "
					  "%llu failed, %llu retries\n",
					  (unsigned long long)wv[i].rep.uploaded,
					  cli_human_bytes(wv[i].rep.bytes, a, sizeof a),
					  (unsigned long long)wv[i].rep.pending,
					  cli_human_bytes(wv[i].rep.pending_bytes, b, sizeof b),
					  (unsigned long long)wv[i].rep.failed,
					  (unsigned long long)wv[i].rep.retries);
			else
				sb_puts(o, "      no agent running (nothing to upload, or run "
					"`rwsplit recover`)\n");
		}
	}
	if (cred_sets)
		sb_printf(o, "credentials: %d temporary set%s on this node, the soonest expires in "
			  "%lld s\n", cred_sets, cred_sets == 1 ? "" : "s", cred_left);
}

static void json(sb *o, const cfg *c, uint64_t (*rv)[RD_NCOUNTERS], const int64_t *cache,
		 const write_view *wv, long long cred_left, int cred_sets)
{
	sb_printf(o, "{\"time\": %lld, \"routes\": [", (long long)time(NULL));
	for (size_t i = 0; i < c->nroutes; i++) {
		const cfg_route *r = &c->routes[i];
		sb_puts(o, i ? ", {\"path\": " : "{\"path\": ");
		json_str(o, r->local);
		sb_puts(o, ", \"url\": ");
		char url[2048];
		snprintf(url, sizeof url, "s3://%s/%s", r->bucket, r->prefix);
		json_str(o, url);
		if (r->mode == CFG_READ) {
			sb_printf(o, ", \"mode\": \"read\", \"cache_bytes\": %lld, \"cache_budget\": "
				  "%llu", (long long)cache[i], (unsigned long long)r->cache_bytes);
			for (int k = 0; k < RD_NCOUNTERS; k++)
				sb_printf(o, ", \"%s\": %llu", rd_counter_name(k),
					  (unsigned long long)rv[i][k]);
		} else {
			sb_printf(o, ", \"mode\": \"write\", \"agent\": %s", wv[i].up ? "true" : "false");
			if (wv[i].up)
				sb_printf(o, ", \"uploaded\": %llu, \"uploaded_bytes\": %llu, \"pending\": "
					  "%llu, \"pending_bytes\": %llu, \"failed\": %llu, \"retries\": %llu",
					  (unsigned long long)wv[i].rep.uploaded,
					  (unsigned long long)wv[i].rep.bytes,
					  (unsigned long long)wv[i].rep.pending,
					  (unsigned long long)wv[i].rep.pending_bytes,
					  (unsigned long long)wv[i].rep.failed,
					  (unsigned long long)wv[i].rep.retries);
		}
		sb_putc(o, '}');
	}
	sb_printf(o, "], \"credentials\": {\"temporary_sets\": %d, \"expires_in_s\": %lld}}\n",
		  cred_sets, cred_left);
}

static void metric_head(sb *o, const char *name, const char *type, const char *help)
{
	sb_printf(o, "# HELP rwsplit_%s %s\n# TYPE rwsplit_%s %s\n", name, help, name, type);
}

static void prometheus(sb *o, const cfg *c, uint64_t (*rv)[RD_NCOUNTERS], const int64_t *cache,
		       const write_view *wv, long long cred_left, int cred_sets)
{
	for (int k = 0; k < RD_NCOUNTERS; k++) {
		char name[64];
		int gauge = rd_counter_kind(k);
		snprintf(name, sizeof name, "read_%s%s", rd_counter_name(k), gauge ? "" : "_total");
		metric_head(o, name, gauge ? "gauge" : "counter", rd_counter_help(k));
		for (size_t i = 0; i < c->nroutes; i++) {
			if (c->routes[i].mode != CFG_READ)
				continue;
			sb_printf(o, "rwsplit_%s{route=\"", name);
			label(o, c->routes[i].local);
			sb_printf(o, "\"} %llu\n", (unsigned long long)rv[i][k]);
		}
	}
	metric_head(o, "read_cache_bytes", "gauge", "bytes the route's cache holds");
	for (size_t i = 0; i < c->nroutes; i++)
		if (c->routes[i].mode == CFG_READ && cache[i] >= 0) {
			sb_puts(o, "rwsplit_read_cache_bytes{route=\"");
			label(o, c->routes[i].local);
			sb_printf(o, "\"} %lld\n", (long long)cache[i]);
		}
	static const struct {
		const char *name, *type, *help;
	} w[] = {
		{ "write_uploaded_total", "counter", "files the route's agent uploaded" },
		{ "write_uploaded_bytes_total", "counter", "bytes the route's agent uploaded" },
		{ "write_pending", "gauge", "files of the tree not yet in the store" },
		{ "write_failed", "gauge", "files whose last upload failed" },
		{ "write_pending_bytes", "gauge", "the size of the files not yet in the store" },
		{ "write_retries_total", "counter", "requests the route's agent sent again" },
	};
	for (size_t k = 0; k < sizeof w / sizeof *w; k++) {
		metric_head(o, w[k].name, w[k].type, w[k].help);
		for (size_t i = 0; i < c->nroutes; i++) {
			if (c->routes[i].mode != CFG_WRITE || !wv[i].up)
				continue;
			const up_reply *rep = &wv[i].rep;
			const uint64_t vals[] = { rep->uploaded, rep->bytes, rep->pending, rep->failed,
						  rep->pending_bytes, rep->retries };
			uint64_t v = vals[k];
			sb_printf(o, "rwsplit_%s{route=\"", w[k].name);
			label(o, c->routes[i].local);
			sb_printf(o, "\"} %llu\n", (unsigned long long)v);
		}
	}
	if (cred_sets) {
		metric_head(o, "credentials_expiry_seconds", "gauge",
			    "seconds until the node's soonest temporary credentials expire");
		sb_printf(o, "rwsplit_credentials_expiry_seconds %lld\n", cred_left);
	}
}

void cli_stats_render(const cfg *c, enum cli_stats_format fmt, sb *o)
{
	uint64_t (*rv)[RD_NCOUNTERS] = calloc(c->nroutes ? c->nroutes : 1, sizeof *rv);
	int64_t *cache = calloc(c->nroutes ? c->nroutes : 1, sizeof *cache);
	write_view *wv = calloc(c->nroutes ? c->nroutes : 1, sizeof *wv);
	if (!rv || !cache || !wv) {
		sb_puts(o, "rwsplit stats: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < c->nroutes; i++) {
		const cfg_route *r = &c->routes[i];
		if (r->mode == CFG_READ)
			rd_route_counters(r, rv[i], &cache[i]);
		else
			wv[i].up = up_query(r, UP_STATS, 0, &wv[i].rep) == 0 && wv[i].rep.rc == 0;
	}
	int sets;
	long long left = credentials_left(c, &sets);
	if (fmt == CLI_STATS_JSON)
		json(o, c, rv, cache, wv, left, sets);
	else if (fmt == CLI_STATS_PROMETHEUS)
		prometheus(o, c, rv, cache, wv, left, sets);
	else
		table(o, c, rv, cache, wv, left, sets);
out:
	free(rv);
	free(cache);
	free(wv);
}

int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'J' },
		{ "prometheus", no_argument, NULL, 'P' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL;
	enum cli_stats_format fmt = CLI_STATS_TABLE;
	long watch = 0;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:w::h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'J': fmt = CLI_STATS_JSON; break;
		case 'P': fmt = CLI_STATS_PROMETHEUS; break;
		case 'w':
			watch = optarg ? strtol(optarg, NULL, 10) : 2;
			if (watch < 1) {
				fprintf(stderr, "rwsplit stats: --watch wants a number of seconds\n");
				return EXIT_USAGE;
			}
			break;
		case 'h': fputs(stats_usage, stdout); return 0;
		default: fputs(stats_usage, stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(stats_usage, stderr);
		return EXIT_USAGE;
	}
	int status;
	cfg *c = cli_load_config("stats", config, &status);
	if (!c)
		return status;
	if (rd_init(c) < 0) {
		fprintf(stderr, "rwsplit stats: out of memory (or cache_dir too long)\n");
		return EXIT_OSERR;
	}
	int tty = isatty(STDOUT_FILENO);
	for (;;) {
		sb o = SB_INIT;
		cli_stats_render(c, fmt, &o);
		if (watch && tty && fmt == CLI_STATS_TABLE)
			fputs("\033[H\033[2J", stdout);
		fputs(sb_str(&o) ? sb_str(&o) : "", stdout);
		fflush(stdout);
		sb_free(&o);
		if (!watch)
			break;
		sleep((unsigned)watch);
	}
	return 0;
}
