/* rwsplit ls: list a store location like `ls -l`, named by URL or by a routed local path. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "router/rt.h"

static const char ls_usage[] =
	"usage: rwsplit ls [-c CONFIG] [-s STORE] [-R] s3://BUCKET[/PREFIX] | PATH\n"
	"\n"
	"Lists objects and sub-directories like `ls -l`: mode, size, modification time, name.\n"
	"A URL lists what starts with PREFIX one level deep, like `aws s3 ls` (end PREFIX with\n"
	"'/' to list a directory's contents); it uses the config's default store unless -s\n"
	"names another. A PATH inside a configured route lists that directory of the route.\n"
	"\n"
	"  -c, --config FILE  path-routing config (default $RWSPLIT_CONFIG)\n"
	"  -s, --store NAME   store for a URL (a [store NAME] section)\n"
	"  -R, --recursive    list every key below, with its path relative to the prefix\n"
	"  -h, --help         this text\n"
	"exit status: 0 ok, 66 no such bucket or prefix, 77 access denied, 69 store\n"
	"  unreachable, 78 bad config.\n";

typedef struct ls_state {
	size_t strip;   /* bytes of each key not printed (the listed "directory") */
	unsigned long count;
} ls_state;

static int print_entry(void *arg, const s3_list_entry *e)
{
	ls_state *st = arg;
	const char *name = strlen(e->key) >= st->strip ? e->key + st->strip : e->key;
	st->count++;
	if (e->is_prefix) {
		printf("drwxr-xr-x  %12s  %-16s  %s\n", "-", "-", name);
		return 0;
	}
	char when[32] = "-";
	if (e->mtime > 0) {
		struct tm tm;
		localtime_r(&e->mtime, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
	}
	printf("-rw-r--r--  %12llu  %-16s  %s\n", (unsigned long long)e->size, when, name);
	return 0;
}

/* Resolves a local path through the config's routes into (route, key). */
static int resolve_path(const cfg *c, const char *path, const cfg_route **route, char *key,
			size_t cap)
{
	char cwd[PATH_MAX], norm[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		return -errno;
	long n = rt_normalize(cwd, path, norm, sizeof norm);
	if (n < 0)
		return (int)n;
	rt_table *t = rt_table_new(c);
	if (!t)
		return -ENOMEM;
	const char *rest = NULL;
	*route = rt_match(t, norm, &rest);
	long k = *route ? rt_object_key(*route, rest, 1, key, cap) : -ENOENT;
	rt_table_free(t);
	return k < 0 ? (int)k : 0;
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "store", required_argument, NULL, 's' },
		{ "recursive", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *store_name = "";
	int recursive = 0, ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:s:Rh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 's': store_name = optarg; break;
		case 'R': recursive = 1; break;
		case 'h': fputs(ls_usage, stdout); return 0;
		default: fputs(ls_usage, stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fputs(ls_usage, stderr);
		return EXIT_USAGE;
	}
	const char *target = argv[optind];
	int status;
	cfg *c = cli_load_config("ls", config, &status);
	if (!c)
		return status;

	char bucket[256], key[S3_KEY_MAX + 2];
	const cfg_store *store;
	if (strncmp(target, "s3://", 5) == 0) {
		const char *b = target + 5, *slash = strchr(b, '/');
		size_t blen = slash ? (size_t)(slash - b) : strlen(b);
		if (blen == 0 || blen >= sizeof bucket) {
			fprintf(stderr, "rwsplit ls: %s: not an s3://BUCKET[/PREFIX] URL\n", target);
			cfg_free(c);
			return EXIT_USAGE;
		}
		memcpy(bucket, b, blen);
		bucket[blen] = '\0';
		snprintf(key, sizeof key, "%s", slash ? slash + 1 : "");
		store = cfg_find_store(c, store_name);
		if (!store) {
			fprintf(stderr, "rwsplit ls: %s: no [store%s%s] in the config\n", c->path,
				store_name[0] ? " " : "", store_name);
			cfg_free(c);
			return EXIT_CONFIG;
		}
	} else {
		const cfg_route *route = NULL;
		int rc = resolve_path(c, target, &route, key, sizeof key);
		if (rc < 0 || !route) {
			fprintf(stderr, "rwsplit ls: %s: %s\n", target,
				rc == -ENOENT || !route ? "not inside any route of the config"
							: strerror(-rc));
			cfg_free(c);
			return rc == -ENAMETOOLONG ? EXIT_DATAERR : EXIT_USAGE;
		}
		snprintf(bucket, sizeof bucket, "%s", route->bucket);
		store = route->store;
	}

	s3_client *cl = NULL;
	s3_error err;
	int rc = s3_client_new(store, &cl, &err);
	if (rc < 0) {
		fprintf(stderr, "rwsplit ls: %s\n", err.message[0] ? err.message : strerror(-rc));
		cfg_free(c);
		return cli_status_for(rc);
	}
	const char *last_slash = strrchr(key, '/');
	ls_state st = { .strip = last_slash ? (size_t)(last_slash - key) + 1 : 0 };
	rc = s3_list(cl, bucket, key, recursive ? NULL : "/", 0, print_entry, &st, &err);
	char what[S3_KEY_MAX + 300];
	snprintf(what, sizeof what, "s3://%s/%s", bucket, key);
	int exit_status = 0;
	if (rc < 0) {
		cli_report("ls", what, rc, &err);
		exit_status = cli_status_for(rc);
	} else if (st.count == 0 && key[0]) {
		fprintf(stderr, "rwsplit ls: %s: no such prefix or object\n", what);
		exit_status = EXIT_NOINPUT;
	}
	s3_client_free(cl);
	cfg_free(c);
	return exit_status;
}
