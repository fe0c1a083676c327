/* rwsplit recover: bring the store in line with every write route's tree when no agent
 * does (after a node or pod restart), or wait for the agent that does. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/fs.h"
#include "common/log.h"
#include "uploader/up.h"
#include "uploader/up_engine.h"
#include "uploader/up_wire.h"

static const char recover_usage[] =
	"usage: rwsplit recover [-c CONFIG]\n"
	"\n"
	"Uploads what the tree of every write route of CONFIG (default $RWSPLIT_CONFIG) holds\n"
	"and the store lacks, and mirrors the renames and deletions made while no agent was\n"
	"watching (after a node or pod restart, or a killed agent), using the route's journal\n"
	"in its spool. When the route's agent is running, waits for it to finish instead.\n"
	"Multipart uploads a dead agent left are aborted.\n"
	"\n"
	"  -c, --config FILE  path-routing config\n"
	"  -h, --help         this text\n"
	"exit status: 0 when everything is in the store, 75 when some files could not be\n"
	"  uploaded (they stay in the tree; run again later), 78 bad config.\n";

/* Asks a running agent to drain. Returns files left, or -1 when there is no agent. */
static long drain_agent(const cfg_route *r)
{
	up_reply rep;
	return up_query(r, UP_DRAIN, r->drain_timeout_ms, &rep) == 0 ? (long)rep.pending : -1;
}

int cmd_recover(int argc, char **argv)
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
		case 'h': fputs(recover_usage, stdout); return 0;
		default: fputs(recover_usage, stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(recover_usage, stderr);
		return EXIT_USAGE;
	}
	int status;
	cfg *c = cli_load_config("recover", config, &status);
	if (!c)
		return status;
	cli_use_linked_client();
	long left = 0;
	status = 0;
	for (size_t i = 0; i < c->nroutes; i++) {
		const cfg_route *r = &c->routes[i];
		if (r->mode != CFG_WRITE)
			continue;
		long n = drain_agent(r);
		if (n < 0)
			n = up_engine_run(c, r, -1, 1, NULL);
		if (n < 0) {
			fprintf(stderr, "rwsplit recover: write route %s: %s\n", r->local,
				strerror((int)-n));
			status = EXIT_TEMPFAIL;
		} else {
			left += n;
		}
	}
	if (left > 0) {
		fprintf(stderr, "rwsplit recover: %ld file%s could not be uploaded and stay in the "
			"tree\n", left, left == 1 ? "" : "s");
		status = EXIT_TEMPFAIL;
	} else if (status == 0) {
		printf("rwsplit recover: nothing left to upload\n");
	}
	cfg_free(c);
	return status;
}
