/* rwsplit check: parse the config, resolve credentials, probe every route's bucket and
 * prefix, print a table, and exit non-zero when any route would not work. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char check_usage[] =
	"usage: rwsplit check [-c CONFIG]\n"
	"\n"
	"Loads CONFIG (default $RWSPLIT_CONFIG), resolves each store's credentials, and for\n"
	"every route checks that the bucket is reachable (HeadBucket) and the prefix can be\n"
	"listed (one key), and that a write route's spool directory is writable.\n"
	"Prints one line per route. Probes give up after about 5 seconds per request.\n"
	"\n"
	"exit status: 0 when every route works, 77 when credentials are missing or rejected,\n"
	"  66 when a bucket does not exist, 69 when the store is unreachable, 78 bad config.\n";

#define PROBE_RETRY_MS 5000
#define PROBE_ATTEMPTS 3

typedef struct row {
	char route[PATH_MAX + 8];
	char url[1100];
	char creds[128];
	char result[PATH_MAX + 600];
	int status;
} row;

static int count_entry(void *arg, const s3_list_entry *e)
{
	(void)e;
	(*(int *)arg)++;
	return 0;
}

/* Nearest existing ancestor of dir is writable (the spool is created on first use). */
static int spool_writable(const char *dir, char *why, size_t len)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s", dir);
	for (;;) {
		if (access(p, F_OK) == 0) {
			if (access(p, W_OK | X_OK) == 0)
				return 1;
			snprintf(why, len, "spool %s: %s is not writable", dir, p);
			return 0;
		}
		char *slash = strrchr(p, '/');
		if (!slash || slash == p)
			break;
		*slash = '\0';
	}
	snprintf(why, len, "spool %s: no writable parent directory", dir);
	return 0;
}

static void probe(s3_client *cl, const cfg_route *r, row *out)
{
	s3_error err;
	int rc = s3_head_bucket(cl, r->bucket, &err);
	if (rc < 0) {
		char detail[384];
		s3_error_str(&err, detail, sizeof detail);
		snprintf(out->result, sizeof out->result, "FAIL: bucket %s: %s (%s)", r->bucket,
			 rc == -ENOENT ? "does not exist" : rc == -EACCES ? "access denied"
			 : strerror(-rc), detail);
		out->status = cli_status_for(rc);
		return;
	}
	int n = 0;
	rc = s3_list(cl, r->bucket, r->prefix, "/", 1, count_entry, &n, &err);
	if (rc < 0) {
		char detail[384];
		s3_error_str(&err, detail, sizeof detail);
		snprintf(out->result, sizeof out->result, "FAIL: list %s: %s (%s)",
			 r->prefix[0] ? r->prefix : "/", strerror(-rc), detail);
		out->status = cli_status_for(rc);
		return;
	}
	char why[PATH_MAX + 64];
	if (r->mode == CFG_WRITE && !spool_writable(r->spool, why, sizeof why)) {
		snprintf(out->result, sizeof out->result, "FAIL: %s", why);
		out->status = EXIT_NOPERM;
		return;
	}
	snprintf(out->result, sizeof out->result, "ok: bucket reachable, prefix %s",
		 n ? "has objects" : r->mode == CFG_READ ? "is EMPTY (nothing to read)" : "empty");
	out->status = 0;
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'h': fputs(check_usage, stdout); return 0;
		default: fputs(check_usage, stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(check_usage, stderr);
		return EXIT_USAGE;
	}
	int status;
	cfg *c = cli_load_config("check", config, &status);
	if (!c)
		return status;
	printf("config %s: %zu route%s, %zu store%s\n", c->path, c->nroutes,
	       c->nroutes == 1 ? "" : "s", c->nstores, c->nstores == 1 ? "" : "s");

	/* Probes use a short retry budget: check should answer in seconds, not minutes. */
	cfg_store *stores = calloc(c->nstores ? c->nstores : 1, sizeof *stores);
	s3_client **clients = calloc(c->nstores ? c->nstores : 1, sizeof *clients);
	int *client_rc = calloc(c->nstores ? c->nstores : 1, sizeof *client_rc);
	s3_error *client_err = calloc(c->nstores ? c->nstores : 1, sizeof *client_err);
	row *rows = calloc(c->nroutes ? c->nroutes : 1, sizeof *rows);
	int exit_status = 0;
	if (!stores || !clients || !client_rc || !client_err || !rows) {
		exit_status = EXIT_OSERR;
		goto out;
	}
	for (size_t i = 0; i < c->nstores; i++) {
		stores[i] = c->stores[i];
		if (stores[i].retry_time_ms > PROBE_RETRY_MS)
			stores[i].retry_time_ms = PROBE_RETRY_MS;
		if (stores[i].max_attempts > PROBE_ATTEMPTS)
			stores[i].max_attempts = PROBE_ATTEMPTS;
		client_rc[i] = s3_client_new(&stores[i], &clients[i], &client_err[i]);
	}
	size_t w_route = 5, w_url = 3, w_creds = 11;
	for (size_t i = 0; i < c->nroutes; i++) {
		const cfg_route *r = &c->routes[i];
		row *o = &rows[i];
		size_t si = (size_t)(r->store - c->stores);
		snprintf(o->route, sizeof o->route, "%s", r->local);
		snprintf(o->url, sizeof o->url, "s3://%s/%s", r->bucket, r->prefix);
		if (client_rc[si] < 0) {
			snprintf(o->creds, sizeof o->creds, "none");
			snprintf(o->result, sizeof o->result, "FAIL: store %s: %s",
				 r->store->name[0] ? r->store->name : "(default)",
				 client_err[si].message[0] ? client_err[si].message
							   : strerror(-client_rc[si]));
			o->status = cli_status_for(client_rc[si]);
		} else {
			s3_client_cred_source(clients[si], o->creds, sizeof o->creds);
			probe(clients[si], r, o);
		}
		if (o->status && !exit_status)
			exit_status = o->status;
		if (strlen(o->route) > w_route)
			w_route = strlen(o->route);
		if (strlen(o->url) > w_url)
			w_url = strlen(o->url);
		if (strlen(o->creds) > w_creds)
			w_creds = strlen(o->creds);
	}
	if (c->nroutes) {
		printf("%-*s  %-5s  %-*s  %-*s  %s\n", (int)w_route, "ROUTE", "MODE", (int)w_url,
		       "URL", (int)w_creds, "CREDENTIALS", "RESULT");
		for (size_t i = 0; i < c->nroutes; i++)
			printf("%-*s  %-5s  %-*s  %-*s  %s\n", (int)w_route, rows[i].route,
			       c->routes[i].mode == CFG_READ ? "read" : "write", (int)w_url,
			       rows[i].url, (int)w_creds, rows[i].creds, rows[i].result);
	} else {
		printf("no routes: every path passes through untouched\n");
	}
	for (size_t i = 0; i < c->nstores; i++)
		if (c->nroutes)
			printf("store %s: %s, region %s, %s addressing\n",
			       c->stores[i].name[0] ? c->stores[i].name : "(default)",
			       c->stores[i].endpoint, c->stores[i].region,
			       c->stores[i].addressing == CFG_ADDR_PATH ? "path" : "virtual-hosted");
	if (exit_status)
		fprintf(stderr, "rwsplit check: some routes do not work (see RESULT)\n");
out:
	for (size_t i = 0; clients && i < c->nstores; i++)
		s3_client_free(clients[i]);
	free(stores);
	free(clients);
	free(client_rc);
	free(client_err);
	free(rows);
	cfg_free(c);
	return exit_status;
}
