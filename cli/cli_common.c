#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "s3/s3_dl.h"

cfg *cli_load_config(const char *cmd, const char *path, int *status)
{
	if (!path)
		path = getenv("RWSPLIT_CONFIG");
	if (!path || !*path) {
		fprintf(stderr, "rwsplit %s: no config: use -c FILE or set RWSPLIT_CONFIG\n", cmd);
		*status = EXIT_USAGE;
		return NULL;
	}
	cfg *c = NULL;
	char err[CFG_ERR_MAX];
	if (cfg_load(path, &c, err, sizeof err) < 0) {
		fprintf(stderr, "rwsplit %s: %s\n", cmd, err);
		*status = EXIT_CONFIG;
		return NULL;
	}
	return c;
}

void cli_use_linked_client(void)
{
	static const s3_api linked = {
#define S3_API_LINKED(name) .name = s3_##name,
		S3_API_FUNCTIONS(S3_API_LINKED)
#undef S3_API_LINKED
	};
	s3_dl_use(&linked);
}

int cli_status_for(int neg_errno)
{
	switch (-neg_errno) {
	case EACCES:
	case EPERM:
		return EXIT_NOPERM;
	case ENOENT:
		return EXIT_NOINPUT;
	case EINVAL:
	case ENAMETOOLONG:
		return EXIT_DATAERR;
	case EIO:
	case ETIMEDOUT:
		return EXIT_UNAVAILABLE;
	case ENOMEM:
		return EXIT_OSERR;
	default:
		return EXIT_SOFTWARE;
	}
}

void cli_report(const char *cmd, const char *what, int neg_errno, const s3_error *err)
{
	char detail[512] = "";
	if (err && (err->code[0] || err->status))
		s3_error_str(err, detail, sizeof detail);
	fprintf(stderr, "rwsplit %s: %s: %s%s%s%s\n", cmd, what, strerror(-neg_errno),
		detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
}

const char *cli_human_bytes(uint64_t n, char *out, size_t cap)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return out;
}
