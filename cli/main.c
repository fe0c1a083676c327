/* rwsplit: the command-line companion of librwsplit.so. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"

#define RWSPLIT_VERSION "0.1.0"

static const char usage[] =
	"usage: rwsplit COMMAND [options]\n"
	"\n"
	"Routes a program's dataset reads and checkpoint writes to an S3-compatible store,\n"
	"with no mount: librwsplit.so is loaded with LD_PRELOAD and a path-routing config.\n"
	"\n"
	"commands:\n"
	"  run [-c CONFIG] -- PROGRAM [ARGS...]   run PROGRAM with rwsplit preloaded\n"
	"  check [-c CONFIG]                      validate the config and probe every route\n"
	"  ls [-c CONFIG] [-s STORE] [-R] URL|PATH list objects like ls -l\n"
	"  recover [-c CONFIG]                    upload what no agent did (after a restart)\n"
	"  prefill [-c CONFIG] [-j N] ROUTE|PATH... fill the cache before a job starts\n"
	"  stats [-c CONFIG] [--json|--prometheus] [--watch] the node's counters per route\n"
	"  agent [-c CONFIG] --socket PATH        the fetch agent (the library starts it)\n"
	"\n"
	"Run 'rwsplit COMMAND --help' for a command's options.\n"
	"environment: RWSPLIT_CONFIG (config path), RWSPLIT_LOG=error|warn|info|debug,\n"
	"  RWSPLIT_LOG_FILE, RWSPLIT_DISABLE=1; credentials from AWS_ACCESS_KEY_ID/\n"
	"  AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN], OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET,\n"
	"  or the AWS shared credentials file.\n"
	"exit status: 0 ok, 64 usage, 66 not found, 69 store unavailable, 77 permission\n"
	"  denied (credentials), 78 bad config.\n";

int main(int argc, char **argv)
{
	log_init();
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("rwsplit %s\n", RWSPLIT_VERSION);
		return 0;
	}
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	if (strcmp(cmd, "ls") == 0)
		return cmd_ls(argc - 1, argv + 1);
	if (strcmp(cmd, "recover") == 0)
		return cmd_recover(argc - 1, argv + 1);
	if (strcmp(cmd, "stats") == 0)
		return cmd_stats(argc - 1, argv + 1);
	if (strcmp(cmd, "prefill") == 0)
		return cmd_prefill(argc - 1, argv + 1);
	if (strcmp(cmd, "agent") == 0)
		return cmd_agent(argc - 1, argv + 1);
	fprintf(stderr, "rwsplit: unknown command '%s'\n%s", cmd, usage);
	return EXIT_USAGE;
}
