/* Unit tests for router/: normalization, longest-prefix matching, the cheap pre-check and
 * object keys, including an exhaustive check that no path escapes its route. */
#include "unit_run.h"
#include "config/cfg.h"
#include "router/rt.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The nested route comes first so that only the table's ordering can make it win. */
static const char routes_conf[] = "[store]\n"
				  "endpoint = http://127.0.0.1:9000\n"
				  "[read /mnt/data/sub]\n"
				  "url = s3://bkt/other/\n"
				  "[read /mnt/data]\n"
				  "url = s3://bkt/data/\n"
				  "[write /mnt/ckpt]\n"
				  "url = s3://bkt/ckpt/\n"
				  "[write /mnt/data2]\n"
				  "url = s3://out/d2\n"
				  "[read /srv/my data]\n"
				  "url = s3://bkt2\n";

static cfg *conf;
static rt_table *table;

static cfg *load(const char *text)
{
	char path[] = "/tmp/test_rt.XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cfg *c = NULL;
	char err[CFG_ERR_MAX];
	int rc = cfg_load(path, &c, err, sizeof err);
	unlink(path);
	ck_assert_msg(rc == 0, "%s", err);
	return c;
}

static void setup(void)
{
	conf = load(routes_conf);
	table = rt_table_new(conf);
	ck_assert_ptr_nonnull(table);
}

static void teardown(void)
{
	rt_table_free(table);
	cfg_free(conf);
}

/* ---------------------------------------------------------------- rt_normalize */

static const struct {
	const char *cwd;
	const char *path;
	const char *want; /* NULL: expect err */
	long err;
} norm_cases[] = {
	{ NULL, "/", "/", 0 },
	{ NULL, "//", "/", 0 },
	{ NULL, "///", "/", 0 },
	{ NULL, "/.", "/", 0 },
	{ NULL, "/./", "/", 0 },
	{ NULL, "/..", "/", 0 },
	{ NULL, "/../..", "/", 0 },
	{ NULL, "/../../x", "/x", 0 },
	{ NULL, "/a", "/a", 0 },
	{ NULL, "/mnt/data", "/mnt/data", 0 },
	{ NULL, "/mnt/data/", "/mnt/data", 0 },
	{ NULL, "/mnt/data//", "/mnt/data", 0 },
	{ NULL, "//mnt//data///", "/mnt/data", 0 },
	{ NULL, "/mnt/./data/.", "/mnt/data", 0 },
	{ NULL, "/mnt/data/./a//b/", "/mnt/data/a/b", 0 },
	{ NULL, "/mnt/data/../data2/x", "/mnt/data2/x", 0 },
	{ NULL, "/mnt/data/..", "/mnt", 0 },
	{ NULL, "/mnt/data/../..", "/", 0 },
	{ NULL, "/mnt/data/a/../../../etc/passwd", "/etc/passwd", 0 },
	{ NULL, "/mnt/data/a/b/../../c", "/mnt/data/c", 0 },
	{ NULL, "/mnt/data/...", "/mnt/data/...", 0 },
	{ NULL, "/mnt/data/..a/.b/a..", "/mnt/data/..a/.b/a..", 0 },
	{ NULL, "/mnt/data/ü ber/%20+x", "/mnt/data/ü ber/%20+x", 0 },
	{ NULL, "/mnt/data/ trailing space /", "/mnt/data/ trailing space ", 0 },
	{ "/ignored", "/abs/path", "/abs/path", 0 },
	{ "relative-cwd-ignored", "/abs", "/abs", 0 },
	{ "/mnt/data", "a/b", "/mnt/data/a/b", 0 },
	{ "/mnt/data", ".", "/mnt/data", 0 },
	{ "/mnt/data", "./", "/mnt/data", 0 },
	{ "/mnt/data", "..", "/mnt", 0 },
	{ "/mnt/data", "../data2/x", "/mnt/data2/x", 0 },
	{ "/mnt/data", "../../../../etc", "/etc", 0 },
	{ "/mnt/data", "a/../../..", "/", 0 },
	{ "/mnt/data/", "./x/", "/mnt/data/x", 0 },
	{ "/", "x", "/x", 0 },
	{ "/", "..", "/", 0 },
	{ "//mnt//", "x", "/mnt/x", 0 },
	{ "/mnt/x/../data", "y", "/mnt/data/y", 0 },
	{ "/mnt/data", "x//y/./z/", "/mnt/data/x/y/z", 0 },
	{ NULL, "", NULL, -ENOENT },
	{ "/mnt", "", NULL, -ENOENT },
	{ NULL, NULL, NULL, -ENOENT },
	{ NULL, "rel", NULL, -EINVAL },
	{ "rel", "x", NULL, -EINVAL },
	{ "", "x", NULL, -EINVAL },
};

START_TEST(test_normalize)
{
	char out[PATH_MAX];
	memset(out, 'Z', sizeof out);
	long n = rt_normalize(norm_cases[_i].cwd, norm_cases[_i].path, out, sizeof out);
	if (norm_cases[_i].want) {
		ck_assert_msg(n >= 0, "%s: %ld", norm_cases[_i].path, n);
		ck_assert_str_eq(out, norm_cases[_i].want);
		ck_assert_int_eq(n, (long)strlen(norm_cases[_i].want));
	} else {
		ck_assert_int_eq(n, norm_cases[_i].err);
	}
}
END_TEST

/* "/d/d/.../d" (or ".../de") of exactly len >= 2 bytes, already normalized. */
static char *long_path(size_t len)
{
	char *p = malloc(len + 1);
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < len; i++)
		p[i] = i % 2 == 0 ? '/' : 'd';
	if (len % 2 == 1)
		p[len - 1] = 'e';
	p[len] = '\0';
	return p;
}

START_TEST(test_normalize_path_max)
{
	char out[PATH_MAX + 8];
	/* PATH_MAX counts the terminating NUL, like the kernel's limit. */
	char *fits = long_path(PATH_MAX - 1);
	char *over = long_path(PATH_MAX);
	memset(out, 'Z', sizeof out);
	ck_assert_int_eq(rt_normalize(NULL, fits, out, PATH_MAX), PATH_MAX - 1);
	ck_assert_str_eq(out, fits);
	memset(out, 'Z', sizeof out);
	ck_assert_int_eq(rt_normalize(NULL, over, out, PATH_MAX), -ENAMETOOLONG);
	for (size_t i = 0; i < sizeof out; i++)
		ck_assert_int_eq(out[i], 'Z'); /* nothing written on failure */
	/* A trailing '/' or a "/." more is normalized away and still fits. */
	char *slash = malloc(PATH_MAX + 3);
	snprintf(slash, PATH_MAX + 3, "%s/.", fits);
	ck_assert_int_eq(rt_normalize(NULL, slash, out, PATH_MAX), PATH_MAX - 1);
	/* Long on the way, short at the end: ".." is applied before anything is written. */
	char *detour = malloc(3 * PATH_MAX);
	snprintf(detour, 3 * PATH_MAX, "%s%s/../../b", over, over);
	ck_assert_int_eq(rt_normalize(NULL, detour, out, 64), -ENAMETOOLONG);
	memcpy(detour, "/mnt/", 5);
	memset(detour + 5, 'a', 2 * PATH_MAX);
	memcpy(detour + 5 + 2 * PATH_MAX, "/../b", 6);
	ck_assert_int_eq(rt_normalize(NULL, detour, out, 64), 6);
	ck_assert_str_eq(out, "/mnt/b");
	/* A relative path is measured together with the cwd. */
	char *cwd = long_path(PATH_MAX - 3);
	ck_assert_int_eq(rt_normalize(cwd, "x", out, PATH_MAX), PATH_MAX - 1);
	ck_assert_int_eq(rt_normalize(cwd, "xy", out, PATH_MAX), -ENAMETOOLONG);
	ck_assert_int_eq(rt_normalize(cwd, "xy/..", out, PATH_MAX), PATH_MAX - 3);
	free(fits);
	free(over);
	free(slash);
	free(detour);
	free(cwd);
}
END_TEST

START_TEST(test_normalize_capacity)
{
	char out[16];
	memset(out, 'Z', sizeof out);
	ck_assert_int_eq(rt_normalize(NULL, "/abc//", out, 5), 4);
	ck_assert_str_eq(out, "/abc");
	ck_assert_int_eq(out[5], 'Z');
	ck_assert_int_eq(rt_normalize(NULL, "/abc", out, 4), -ENAMETOOLONG);
	ck_assert_int_eq(rt_normalize(NULL, "/..", out, 2), 1);
	ck_assert_str_eq(out, "/");
	ck_assert_int_eq(rt_normalize(NULL, "/", out, 1), -ENAMETOOLONG);
	ck_assert_int_eq(rt_normalize(NULL, "/", out, 0), -ENAMETOOLONG);
}
END_TEST

/* ---------------------------------------------------------------- rt_match */

static const struct {
	const char *path;
	const char *local; /* NULL: no route */
	const char *rest;
} match_cases[] = {
	{ "/mnt/data", "/mnt/data", "" },
	{ "/mnt/data/a", "/mnt/data", "a" },
	{ "/mnt/data/a/b", "/mnt/data", "a/b" },
	{ "/mnt/data/sub", "/mnt/data/sub", "" },
	{ "/mnt/data/sub/x/y", "/mnt/data/sub", "x/y" },
	{ "/mnt/data/subway", "/mnt/data", "subway" },
	{ "/mnt/data/su", "/mnt/data", "su" },
	{ "/mnt/data/x/sub", "/mnt/data", "x/sub" },
	{ "/mnt/data2", "/mnt/data2", "" },
	{ "/mnt/data2/x", "/mnt/data2", "x" },
	{ "/mnt/ckpt/epoch 1/model+%20.pt", "/mnt/ckpt", "epoch 1/model+%20.pt" },
	{ "/srv/my data", "/srv/my data", "" },
	{ "/srv/my data/f", "/srv/my data", "f" },
	{ "/mnt/datax", NULL, NULL },
	{ "/mnt/dat", NULL, NULL },
	{ "/mnt/data3/x", NULL, NULL },
	{ "/mnt", NULL, NULL },
	{ "/", NULL, NULL },
	{ "/mnt/ckpt2", NULL, NULL },
	{ "/srv/my", NULL, NULL },
	{ "/srv/my data2", NULL, NULL },
	{ "/MNT/data", NULL, NULL },
	{ "/tmp/mnt/data", NULL, NULL },
	{ "/data", NULL, NULL },
};

START_TEST(test_match)
{
	const char *rest = "unset";
	const cfg_route *r = rt_match(table, match_cases[_i].path, &rest);
	if (!match_cases[_i].local) {
		ck_assert_msg(r == NULL, "%s matched %s", match_cases[_i].path, r ? r->local : "");
		ck_assert_str_eq(rest, "unset");
		return;
	}
	ck_assert_msg(r != NULL, "%s did not match", match_cases[_i].path);
	ck_assert_str_eq(r->local, match_cases[_i].local);
	ck_assert_str_eq(rest, match_cases[_i].rest);
	ck_assert_ptr_eq(rt_match(table, match_cases[_i].path, NULL), r);
	ck_assert(rt_maybe_routed(table, match_cases[_i].path));
}
END_TEST

/* ---------------------------------------------------------------- the whole path */

/* cwd + path -> normalize -> match -> object key (a file, then a directory). */
static const struct {
	const char *cwd;
	const char *path;
	const char *bucket; /* NULL: no route */
	const char *key;
	const char *dir_key;
} pipeline_cases[] = {
	{ NULL, "/mnt/data/x", "bkt", "data/x", "data/x/" },
	{ NULL, "/mnt/data/./a//b/", "bkt", "data/a/b", "data/a/b/" },
	{ NULL, "/mnt/data/", "bkt", "data/", "data/" },
	{ NULL, "/mnt/data/../data2/x", "out", "d2/x", "d2/x/" },
	{ NULL, "/mnt/data/sub/../x", "bkt", "data/x", "data/x/" },
	{ NULL, "/mnt/data/sub/..", "bkt", "data/", "data/" },
	{ NULL, "/mnt/data/sub/./f", "bkt", "other/f", "other/f/" },
	{ NULL, "/mnt/data/../../etc/passwd", NULL, NULL, NULL },
	{ NULL, "/mnt/data/..", NULL, NULL, NULL },
	{ NULL, "/mnt/data/../data", "bkt", "data/", "data/" },
	{ NULL, "/mnt/data/日本語/ü ñ/a%2Fb+c d", "bkt", "data/日本語/ü ñ/a%2Fb+c d",
	  "data/日本語/ü ñ/a%2Fb+c d/" },
	{ NULL, "/srv/my data/x y", "bkt2", "x y", "x y/" },
	{ NULL, "/srv/my data", "bkt2", "", "" },
	{ NULL, "/srv/my data/..", NULL, NULL, NULL },
	{ "/mnt/data", "f", "bkt", "data/f", "data/f/" },
	{ "/mnt/data", ".", "bkt", "data/", "data/" },
	{ "/mnt/data", "..", NULL, NULL, NULL },
	{ "/mnt/data", "../ckpt/m.pt", "bkt", "ckpt/m.pt", "ckpt/m.pt/" },
	{ "/mnt/data", "../../mnt/data/x", "bkt", "data/x", "data/x/" },
	{ "/mnt/data", "../../../../etc/shadow", NULL, NULL, NULL },
	{ "/mnt/data/sub", "../../data2", "out", "d2/", "d2/" },
	{ "/tmp", "../mnt/data/f", "bkt", "data/f", "data/f/" },
	{ "/mnt/data/a/b", "../../../data2/../ckpt/./z", "bkt", "ckpt/z", "ckpt/z/" },
};

START_TEST(test_pipeline)
{
	char norm[PATH_MAX], key[RT_KEY_MAX + 1];
	long n = rt_normalize(pipeline_cases[_i].cwd, pipeline_cases[_i].path, norm, sizeof norm);
	ck_assert_int_gt(n, 0);
	const char *rest = NULL;
	const cfg_route *r = rt_match(table, norm, &rest);
	if (!pipeline_cases[_i].bucket) {
		ck_assert_msg(r == NULL, "%s -> %s matched %s", pipeline_cases[_i].path, norm, r->local);
		return;
	}
	ck_assert_msg(r != NULL, "%s -> %s did not match", pipeline_cases[_i].path, norm);
	ck_assert_str_eq(r->bucket, pipeline_cases[_i].bucket);
	ck_assert_int_eq(rt_object_key(r, rest, 0, key, sizeof key), (long)strlen(pipeline_cases[_i].key));
	ck_assert_str_eq(key, pipeline_cases[_i].key);
	ck_assert_int_eq(rt_object_key(r, rest, 1, key, sizeof key),
			 (long)strlen(pipeline_cases[_i].dir_key));
	ck_assert_str_eq(key, pipeline_cases[_i].dir_key);
	if (pipeline_cases[_i].path[0] == '/')
		ck_assert(rt_maybe_routed(table, pipeline_cases[_i].path));
}
END_TEST

/* Left-to-right normalization with a stack, written the obvious way, to check against. */
static void reference_normalize(const char *cwd, const char *path, char *out)
{
	char buf[1024];
	const char *comps[256];
	size_t lens[256], n = 0;
	snprintf(buf, sizeof buf, "%s/%s", path[0] == '/' ? "" : cwd, path);
	for (const char *p = buf; *p;) {
		while (*p == '/')
			p++;
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (n > 0)
				n--;
		} else if (len > 0 && !(len == 1 && p[0] == '.')) {
			comps[n] = p;
			lens[n++] = len;
		}
		p += len;
	}
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		out[o++] = '/';
		memcpy(out + o, comps[i], lens[i]);
		o += lens[i];
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
}

static bool has_dot_component(const char *s)
{
	for (const char *p = s; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return true;
		p += len;
		if (*p == '/')
			p++;
	}
	return false;
}

static const char *const parts[] = { "mnt", "data", "data2", "sub", "..", ".", "", "x" };

/* Every path of up to 5 components from parts, absolute and relative to two cwds: the result
 * agrees with the reference, a match is on a component boundary, its rest has no ".", ".."
 * or empty component, its key starts with the route's prefix, and the pre-check never says
 * no to a path that matches. */
START_TEST(test_no_escape_exhaustive)
{
	static const char *const cwds[] = { NULL, "/mnt/data", "/mnt/data/sub/x", "/mnt", "/",
					    "/usr/lib", "/srv" };
	size_t np = sizeof parts / sizeof parts[0];
	long checked = 0, matched = 0;
	for (int depth = 1; depth <= 5; depth++) {
		size_t total = 1;
		for (int d = 0; d < depth; d++)
			total *= np;
		for (size_t combo = 0; combo < total; combo++) {
			char rel[256] = "";
			size_t c = combo, len = 0;
			for (int d = 0; d < depth; d++, c /= np)
				len += (size_t)snprintf(rel + len, sizeof rel - len, "%s%s",
							d > 0 ? "/" : "", parts[c % np]);
			if (rel[0] == '\0')
				continue;
			for (size_t w = 0; w < sizeof cwds / sizeof cwds[0]; w++) {
				char path[300], norm[PATH_MAX], ref[1024], key[RT_KEY_MAX + 1];
				snprintf(path, sizeof path, "%s%s", cwds[w] ? "" : "/", rel);
				const char *cwd = cwds[w] ? cwds[w] : "/";
				long n = rt_normalize(cwd, path, norm, sizeof norm);
				reference_normalize(cwd, path, ref);
				ck_assert_msg(n > 0 && strcmp(norm, ref) == 0, "%s + %s: %s, want %s",
					      cwd, path, norm, ref);
				checked++;
				const char *rest;
				const cfg_route *r = rt_match(table, norm, &rest);
				if (!r)
					continue;
				matched++;
				ck_assert(strncmp(norm, r->local, r->local_len) == 0);
				ck_assert(norm[r->local_len] == '\0' || norm[r->local_len] == '/');
				ck_assert_msg(rest[0] == '\0' || !has_dot_component(rest), "rest %s", rest);
				long k = rt_object_key(r, rest, 0, key, sizeof key);
				ck_assert_int_ge(k, 0);
				ck_assert(strncmp(key, r->prefix, strlen(r->prefix)) == 0);
				ck_assert(strstr(key, "/../") == NULL && strstr(key, "//") == NULL);
				ck_assert_msg(rt_maybe_routed(table, path[0] == '/' ? path : norm),
					      "pre-check refused %s", path);
				ck_assert_msg(path[0] == '/' || rt_maybe_routed_from(table, cwd, path),
					      "relative pre-check refused %s from %s", path, cwd);
			}
		}
	}
	ck_assert_int_gt(checked, 100000);
	ck_assert_int_gt(matched, 1000);
}
END_TEST

/* ---------------------------------------------------------------- rt_maybe_routed */

static const struct {
	const char *path;
	int want; /* 1: must be true; 0: must be false */
} maybe_cases[] = {
	{ "/mnt/data", 1 },
	{ "/mnt/data/x", 1 },
	{ "//mnt/data", 1 },
	{ "/./mnt/data", 1 },
	{ "/././/mnt/data/x", 1 },
	{ "/tmp/../mnt/data", 1 },
	{ "/../mnt/data", 1 },
	{ "/usr/lib/../../mnt/data2", 1 },
	{ "/srv/my data/f", 1 },
	{ "relative/path", 1 },
	{ "x", 1 },
	{ "/usr/lib/x86_64-linux-gnu/libc.so.6", 0 },
	{ "/etc/passwd", 0 },
	{ "/proc/self/maps", 0 },
	{ "/", 0 },
	{ "//", 0 },
	{ "/mn", 0 },
	{ "/mntx/data/long/enough", 0 },
	{ "/mnt", 0 },     /* shorter than any route */
	{ "/srv/my", 0 },  /* shorter than any route */
	{ "/t/a..b", 0 },   /* too short, even though ".." might climb */
	{ "/.hidden/mnt/data", 0 },
	{ "/dev/shm/rwsplit/cache/file", 0 },
};

START_TEST(test_maybe_routed)
{
	ck_assert_msg(rt_maybe_routed(table, maybe_cases[_i].path) == maybe_cases[_i].want, "%s",
		      maybe_cases[_i].path);
}
END_TEST

static const struct {
	const char *cwd, *rel;
	int want; /* 1: must be true; 0: must be false */
} from_cases[] = {
	{ "/mnt/data", "x", 1 },          /* cwd in a route */
	{ "/mnt/data/sub/deep", "x", 1 },
	{ "/mnt", "data/x", 1 },          /* a route below cwd */
	{ "/", "mnt/data", 1 },
	{ "/srv", "my data/f", 1 },
	{ "/mnt/", "x", 1 },              /* trailing '/' on cwd */
	{ "/usr/lib", "../../mnt/data", 1 }, /* ".." may climb into a route */
	{ "/usr/lib", "a..b", 1 },        /* any "..": the caller normalizes */
	{ "/mnt/./data", "x", 1 },        /* an unnormalized cwd: the caller normalizes */
	{ "relative", "x", 1 },
	{ "/usr/lib", "x", 0 },
	{ "/usr/lib", "./libc.so.6", 0 },
	{ "/home/u/mnt/data", "x", 0 },   /* the route's name, elsewhere */
	{ "/mn", "t/data", 0 },           /* not on a component boundary */
	{ "/mnt/data2x", "f", 0 },
	{ "/tmp", "mnt/data", 0 },
};

START_TEST(test_maybe_routed_from)
{
	ck_assert_msg(rt_maybe_routed_from(table, from_cases[_i].cwd, from_cases[_i].rel) ==
			      from_cases[_i].want,
		      "%s + %s", from_cases[_i].cwd, from_cases[_i].rel);
}
END_TEST

START_TEST(test_maybe_routed_null)
{
	ck_assert_int_eq(rt_maybe_routed(table, NULL), 0);
}
END_TEST

START_TEST(test_empty_table)
{
	cfg *c = load("");
	rt_table *t = rt_table_new(c);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(rt_maybe_routed(t, "/mnt/data"), 0);
	ck_assert_int_eq(rt_maybe_routed(t, "relative"), 0);
	ck_assert_int_eq(rt_maybe_routed_from(t, "/mnt", "data"), 0);
	ck_assert_ptr_null(rt_match(t, "/mnt/data", NULL));
	ck_assert_ptr_null(rt_match(t, "/", NULL));
	rt_table_free(t);
	rt_table_free(NULL);
	cfg_free(c);
}
END_TEST

/* ---------------------------------------------------------------- rt_object_key */

START_TEST(test_object_key)
{
	cfg_route r = { .prefix = "data/" };
	char key[RT_KEY_MAX + 1];
	ck_assert_int_eq(rt_object_key(&r, "a/b", 0, key, sizeof key), 8);
	ck_assert_str_eq(key, "data/a/b");
	ck_assert_int_eq(rt_object_key(&r, "a/b", 1, key, sizeof key), 9);
	ck_assert_str_eq(key, "data/a/b/");
	ck_assert_int_eq(rt_object_key(&r, "", 0, key, sizeof key), 5);
	ck_assert_str_eq(key, "data/");
	ck_assert_int_eq(rt_object_key(&r, "", 1, key, sizeof key), 5);
	ck_assert_str_eq(key, "data/");
	r.prefix = "";
	ck_assert_int_eq(rt_object_key(&r, "x", 1, key, sizeof key), 2);
	ck_assert_str_eq(key, "x/");
	ck_assert_int_eq(rt_object_key(&r, "", 1, key, sizeof key), 0);
	ck_assert_str_eq(key, "");
	ck_assert_int_eq(rt_object_key(&r, "ü +%", 0, key, sizeof key), 5);
	ck_assert_str_eq(key, "ü +%");
}
END_TEST

START_TEST(test_object_key_limits)
{
	cfg_route r = { .prefix = "p/" };
	char rest[RT_KEY_MAX + 2], key[RT_KEY_MAX + 16];
	memset(rest, 'k', sizeof rest);
	rest[RT_KEY_MAX - 2] = '\0'; /* 1022 + "p/" = 1024 bytes */
	ck_assert_int_eq(rt_object_key(&r, rest, 0, key, sizeof key), RT_KEY_MAX);
	ck_assert_uint_eq(strlen(key), RT_KEY_MAX);
	ck_assert_int_eq(rt_object_key(&r, rest, 0, key, RT_KEY_MAX + 1), RT_KEY_MAX);
	ck_assert_int_eq(rt_object_key(&r, rest, 0, key, RT_KEY_MAX), -ENAMETOOLONG);
	/* the directory's '/' makes it 1025 */
	ck_assert_int_eq(rt_object_key(&r, rest, 1, key, sizeof key), -ENAMETOOLONG);
	rest[RT_KEY_MAX - 2] = 'k';
	rest[RT_KEY_MAX - 1] = '\0'; /* 1025 bytes */
	memset(key, 'Z', sizeof key);
	ck_assert_int_eq(rt_object_key(&r, rest, 0, key, sizeof key), -ENAMETOOLONG);
	ck_assert_int_eq(key[0], 'Z');
	ck_assert_int_eq(rt_object_key(&r, "ab", 0, key, 4), -ENAMETOOLONG);
	ck_assert_int_eq(rt_object_key(&r, "a", 0, key, 4), 3);
}
END_TEST

/* A key past the limit through the whole pipeline: the path fits PATH_MAX, its key does not. */
START_TEST(test_long_key_via_path)
{
	char path[PATH_MAX], norm[PATH_MAX], key[RT_KEY_MAX + 1];
	const char *rest;
	int n = snprintf(path, sizeof path, "/mnt/data/");
	memset(path + n, 'q', RT_KEY_MAX - 5); /* "data/" + 1019 = 1024 */
	path[n + RT_KEY_MAX - 5] = '\0';
	ck_assert_int_gt(rt_normalize(NULL, path, norm, sizeof norm), 0);
	const cfg_route *r = rt_match(table, norm, &rest);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(rt_object_key(r, rest, 0, key, sizeof key), RT_KEY_MAX);
	ck_assert_int_eq(rt_object_key(r, rest, 1, key, sizeof key), -ENAMETOOLONG);
	path[n + RT_KEY_MAX - 5] = 'q';
	path[n + RT_KEY_MAX - 4] = '\0';
	ck_assert_int_gt(rt_normalize(NULL, path, norm, sizeof norm), 0);
	r = rt_match(table, norm, &rest);
	ck_assert_int_eq(rt_object_key(r, rest, 0, key, sizeof key), -ENAMETOOLONG);
}
END_TEST

static Suite *rt_suite(void)
{
	Suite *s = suite_create("rt");
	TCase *tc = tcase_create("normalize");
	tcase_add_loop_test(tc, test_normalize, 0, N(norm_cases));
	tcase_add_test(tc, test_normalize_path_max);
	tcase_add_test(tc, test_normalize_capacity);
	suite_add_tcase(s, tc);

	tc = tcase_create("match");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_match, 0, N(match_cases));
	tcase_add_loop_test(tc, test_pipeline, 0, N(pipeline_cases));
	tcase_add_test(tc, test_no_escape_exhaustive);
	tcase_add_loop_test(tc, test_maybe_routed, 0, N(maybe_cases));
	tcase_add_loop_test(tc, test_maybe_routed_from, 0, N(from_cases));
	tcase_add_test(tc, test_maybe_routed_null);
	tcase_add_test(tc, test_long_key_via_path);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_test(tc, test_empty_table);
	tcase_add_test(tc, test_object_key);
	tcase_add_test(tc, test_object_key_limits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(rt_suite());
}
