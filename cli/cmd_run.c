/* rwsplit run: validate the config, then exec the program with the library preloaded. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char run_usage[] =
	"usage: rwsplit run [-c CONFIG] [--lib PATH] [--] PROGRAM [ARGS...]\n"
	"\n"
	"Validates CONFIG (default $RWSPLIT_CONFIG), then runs PROGRAM with\n"
	"LD_PRELOAD=librwsplit.so (prepended to any existing LD_PRELOAD) and\n"
	"RWSPLIT_CONFIG set to CONFIG's absolute path, so child processes are covered too.\n"
	"\n"
	"  -c, --config FILE  path-routing config\n"
	"      --lib PATH     librwsplit.so to preload (default: ../lib/librwsplit.so next to\n"
	"                     this binary, or $RWSPLIT_LIB)\n"
	"  -h, --help         this text\n"
	"exit status: PROGRAM's, or 78 for a bad config, 127 when PROGRAM cannot be run.\n";

/* <dir of /proc/self/exe>/../lib/librwsplit.so, into out. */
static int default_lib(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n < 0)
		return -1;
	exe[n] = '\0';
	int w = snprintf(out, cap, "%s/../lib/librwsplit.so", dirname(exe));
	return w < 0 || (size_t)w >= cap ? -1 : 0;
}

static int already_preloaded(const char *list, const char *lib)
{
	size_t len = strlen(lib);
	for (const char *p = list; (p = strstr(p, lib)) != NULL; p += len) {
		int starts = p == list || p[-1] == ':' || p[-1] == ' ';
		int ends = p[len] == '\0' || p[len] == ':' || p[len] == ' ';
		if (starts && ends)
			return 1;
	}
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "lib", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *lib = getenv("RWSPLIT_LIB");
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'L': lib = optarg; break;
		case 'h': fputs(run_usage, stdout); return 0;
		default: fputs(run_usage, stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs("rwsplit run: no PROGRAM given\n", stderr);
		fputs(run_usage, stderr);
		return EXIT_USAGE;
	}
	int status;
	cfg *c = cli_load_config("run", config, &status);
	if (!c)
		return status;
	char conf_abs[PATH_MAX];
	if (!realpath(c->path, conf_abs)) {
		fprintf(stderr, "rwsplit run: %s: %s\n", c->path, strerror(errno));
		cfg_free(c);
		return EXIT_CONFIG;
	}
	cfg_free(c);

	char libbuf[PATH_MAX], lib_abs[PATH_MAX];
	if (!lib || !*lib) {
		if (default_lib(libbuf, sizeof libbuf) < 0) {
			fputs("rwsplit run: cannot locate librwsplit.so; use --lib\n", stderr);
			return EXIT_SOFTWARE;
		}
		lib = libbuf;
	}
	if (!realpath(lib, lib_abs)) {
		fprintf(stderr, "rwsplit run: %s: %s\n", lib, strerror(errno));
		return EXIT_SOFTWARE;
	}

	const char *old = getenv("LD_PRELOAD");
	if (!old || !*old) {
		setenv("LD_PRELOAD", lib_abs, 1);
	} else if (!already_preloaded(old, lib_abs)) {
		size_t n = strlen(lib_abs) + strlen(old) + 2;
		char *joined = malloc(n);
		if (!joined)
			return EXIT_OSERR;
		snprintf(joined, n, "%s:%s", lib_abs, old);
		setenv("LD_PRELOAD", joined, 1);
		free(joined);
	}
	setenv("RWSPLIT_CONFIG", conf_abs, 1);
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "rwsplit run: %s: %s\n", argv[optind], strerror(errno));
	return 127;
}
