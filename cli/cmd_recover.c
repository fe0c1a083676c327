/* rwsplit recover: upload what processes that died left in the write routes' spools. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "uploader/up.h"

static const char recover_usage[] =
	"usage: rwsplit recover [-c CONFIG] [--spool DIR]\n"
	"\n"
	"Uploads the files that processes which died (killed, crashed, or out of time to drain\n"
	"at exit) left in the spool of every write route of CONFIG (default $RWSPLIT_CONFIG),\n"
	"or in DIR instead of the configured spool. A spool directory whose process is still\n"
	"running is never touched. Files are deleted from the spool only once the store has\n"
	"confirmed them.\n"
	"\n"
	"  -c, --config FILE  path-routing config\n"
	"      --spool DIR    spool directory to recover instead of the configured one\n"
	"  -h, --help         this text\n"
	"exit status: 0 when nothing is left, 75 when some files could not be uploaded (they\n"
	"  stay in the spool; run again later), 78 bad config.\n";

int cmd_recover(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "spool", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *spool = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'S': spool = optarg; break;
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
	if (up_init(c, NULL) < 0) {
		cfg_free(c);
		return EXIT_OSERR;
	}
	long left = up_recover(c, spool);
	if (left < 0) {
		fprintf(stderr, "rwsplit recover: %s\n", strerror((int)-left));
		status = EXIT_OSERR;
	} else if (left > 0) {
		fprintf(stderr, "rwsplit recover: %ld file%s could not be uploaded and stay in the "
			"spool\n", left, left == 1 ? "" : "s");
		status = EXIT_TEMPFAIL;
	} else {
		printf("rwsplit recover: nothing left to upload\n");
		status = 0;
	}
	cfg_free(c);
	return status;
}
