/* Unit tests for config/: value syntax, every validation error (with its line), defaults,
 * every key, and the example configs. Run from the repository root. */
#include "unit_run.h"
#include "common/sha256.h"
#include "config/cfg.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define KI 1024ULL
#define MI (1024ULL * 1024)
#define GI (1024ULL * 1024 * 1024)
#define TI (GI * 1024)

static char tmpdir[64];

/* Writes text to a fresh file and returns its path (static buffer). */
static const char *write_file(const char *text, size_t len)
{
	static char path[128];
	static int seq;
	snprintf(path, sizeof path, "%s/t%d-%d.conf", tmpdir, (int)getpid(), seq++);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

/* Loads text; returns cfg_load's result. path receives the file name for messages. */
static int load_text(const char *text, cfg **c, char *err, const char **path)
{
	const char *p = write_file(text, strlen(text));
	if (path)
		*path = p;
	return cfg_load(p, c, err, CFG_ERR_MAX);
}

static cfg *load_ok(const char *text)
{
	cfg *c = NULL;
	char err[CFG_ERR_MAX] = "";
	int rc = load_text(text, &c, err, NULL);
	ck_assert_msg(rc == 0, "expected success, got: %s\n--- config:\n%s", err, text);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* Expects failure with exactly "PATH:LINE: " (or "PATH: " for line 0) in front and frag
 * somewhere in the message. */
static void expect_error(const char *text, int line, const char *frag)
{
	cfg *c = (cfg *)1;
	char err[CFG_ERR_MAX] = "";
	const char *path;
	int rc = load_text(text, &c, err, &path);
	ck_assert_msg(rc == -1, "expected an error at line %d (%s), loaded:\n%s", line, frag, text);
	ck_assert_ptr_null(c);
	char want[256];
	if (line > 0)
		snprintf(want, sizeof want, "%s:%d: ", path, line);
	else
		snprintf(want, sizeof want, "%s: ", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "want prefix \"%s\", got \"%s\"", want,
		      err);
	ck_assert_msg(strstr(err, frag) != NULL, "want \"%s\" in \"%s\"", frag, err);
	ck_assert_msg(strchr(err, '\n') == NULL, "message is not one line: \"%s\"", err);
}

/* ---------------------------------------------------------------- value syntax */

static const struct {
	const char *in;
	int ok;
	uint64_t want;
} size_cases[] = {
	{ "0", 1, 0 },
	{ "4096", 1, 4096 },
	{ "1B", 1, 1 },
	{ "1K", 1, KI },
	{ "1k", 1, KI },
	{ "1KiB", 1, KI },
	{ "1kiB", 1, KI },
	{ "100KB", 1, 100000 },
	{ "100kB", 1, 100000 },
	{ "64 KiB", 1, 64 * KI },
	{ "512M", 1, 512 * MI },
	{ "512MiB", 1, 512 * MI },
	{ "3MB", 1, 3000000 },
	{ "2G", 1, 2 * GI },
	{ "2GiB", 1, 2 * GI },
	{ "2GB", 1, 2000000000ULL },
	{ "1T", 1, TI },
	{ "1TiB", 1, TI },
	{ "1TB", 1, 1000000000000ULL },
	{ " 7 ", 1, 7 },
	{ "8\tMiB", 1, 8 * MI },
	{ "18446744073709551615", 1, UINT64_MAX },
	{ "16777215TiB", 1, 16777215ULL * TI },
	{ "", 0, 0 },
	{ " ", 0, 0 },
	{ "abc", 0, 0 },
	{ "-1", 0, 0 },
	{ "+1", 0, 0 },
	{ "2GiX", 0, 0 },
	{ "2 G iB", 0, 0 },
	{ "1.5GiB", 0, 0 },
	{ "1e9", 0, 0 },
	{ "0x10", 0, 0 },
	{ "1m", 0, 0 },
	{ "1mb", 0, 0 },
	{ "1Mib", 0, 0 },
	{ "1gb", 0, 0 },
	{ "1KIB", 0, 0 },
	{ "1P", 0, 0 },
	{ "1PiB", 0, 0 },
	{ "GiB", 0, 0 },
	{ "18446744073709551616", 0, 0 },
	{ "99999999999999999999999", 0, 0 },
	{ "16777216TiB", 0, 0 },
	{ "18446744073709551615K", 0, 0 },
};

START_TEST(test_parse_size)
{
	uint64_t v = 12345;
	int rc = cfg_parse_size(size_cases[_i].in, &v);
	ck_assert_msg(rc == (size_cases[_i].ok ? 0 : -1), "\"%s\": rc %d", size_cases[_i].in, rc);
	if (size_cases[_i].ok)
		ck_assert_uint_eq(v, size_cases[_i].want);
	else
		ck_assert_uint_eq(v, 12345);
}
END_TEST

static const struct {
	const char *in;
	int ok;
	uint32_t want;
} duration_cases[] = {
	{ "0", 1, 0 },
	{ "10", 1, 10000 },
	{ "30s", 1, 30000 },
	{ "500ms", 1, 500 },
	{ "5m", 1, 300000 },
	{ "1h", 1, 3600000 },
	{ "2 s", 1, 2000 },
	{ "4294967295ms", 1, 4294967295U },
	{ "4294967s", 1, 4294967000U },
	{ "1193h", 1, 1193U * 3600000U },
	{ "", 0, 0 },
	{ "s", 0, 0 },
	{ "-1", 0, 0 },
	{ "+1s", 0, 0 },
	{ "1.5s", 0, 0 },
	{ "5x", 0, 0 },
	{ "5 sec", 0, 0 },
	{ "1d", 0, 0 },
	{ "1S", 0, 0 },
	{ "1H", 0, 0 },
	{ "1MS", 0, 0 },
	{ "4294967296ms", 0, 0 },
	{ "4294968s", 0, 0 },
	{ "1194h", 0, 0 },
	{ "99999999999999999999999s", 0, 0 },
};

START_TEST(test_parse_duration)
{
	uint32_t v = 777;
	int rc = cfg_parse_duration(duration_cases[_i].in, &v);
	ck_assert_msg(rc == (duration_cases[_i].ok ? 0 : -1), "\"%s\": rc %d",
		      duration_cases[_i].in, rc);
	ck_assert_uint_eq(v, duration_cases[_i].ok ? duration_cases[_i].want : 777);
}
END_TEST

static const struct {
	const char *in;
	int rc;
	bool want;
} bool_cases[] = {
	{ "true", 0, true },  { "TRUE", 0, true },   { "Yes", 0, true },  { "on", 0, true },
	{ "1", 0, true },     { "false", 0, false }, { "No", 0, false },  { "OFF", 0, false },
	{ "0", 0, false },    { "", -1, false },     { "2", -1, false },  { "maybe", -1, false },
	{ "tru", -1, false }, { "yes ", -1, false }, { "t", -1, false },
};

START_TEST(test_parse_bool)
{
	bool v = !bool_cases[_i].want;
	ck_assert_int_eq(cfg_parse_bool(bool_cases[_i].in, &v), bool_cases[_i].rc);
	if (bool_cases[_i].rc == 0)
		ck_assert(v == bool_cases[_i].want);
}
END_TEST

static const struct {
	const char *url;
	const char *bucket; /* NULL: expect failure, with why containing prefix */
	const char *prefix;
} url_cases[] = {
	{ "s3://bucket", "bucket", "" },
	{ "s3://bucket/", "bucket", "" },
	{ "s3://bucket/a", "bucket", "a/" },
	{ "s3://bucket/a/", "bucket", "a/" },
	{ "s3://tf-train/train/data/", "tf-train", "train/data/" },
	{ "s3://my.bucket-1/x y/%2F+ü/", "my.bucket-1", "x y/%2F+ü/" },
	{ "s3://abc/...x/", "abc", "...x/" },
	{ "s3://abc/.hidden/a..b", "abc", ".hidden/a..b/" },
	{ "s3://0ab", "0ab", "" },
	{ "s3://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 63 */
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "" },
	{ "http://bucket/a", NULL, "not an s3:// URL" },
	{ "S3://bucket", NULL, "not an s3:// URL" },
	{ "bucket/a", NULL, "not an s3:// URL" },
	{ "", NULL, "not an s3:// URL" },
	{ "s3:/bucket", NULL, "not an s3:// URL" },
	{ "s3://", NULL, "missing bucket" },
	{ "s3:///a", NULL, "missing bucket" },
	{ "s3://ab", NULL, "3 to 63" },
	{ "s3://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, "3 to 63" },
	{ "s3://Bucket", NULL, "a-z, 0-9" },
	{ "s3://my_bucket", NULL, "a-z, 0-9" },
	{ "s3://my bucket", NULL, "a-z, 0-9" },
	{ "s3://bucket?x=1", NULL, "a-z, 0-9" },
	{ "s3://-bucket", NULL, "start and end" },
	{ "s3://bucket-", NULL, "start and end" },
	{ "s3://.bucket", NULL, "start and end" },
	{ "s3://bucket.", NULL, "start and end" },
	{ "s3://my..bucket", NULL, "\"..\"" },
	{ "s3://192.168.1.10", NULL, "IP address" },
	{ "s3://bucket//", NULL, "\"//\"" },
	{ "s3://bucket//a", NULL, "\"//\"" },
	{ "s3://bucket/a//b", NULL, "\"//\"" },
	{ "s3://bucket/a//", NULL, "\"//\"" },
	{ "s3://bucket/.", NULL, "\".\" or \"..\"" },
	{ "s3://bucket/./a", NULL, "\".\" or \"..\"" },
	{ "s3://bucket/a/..", NULL, "\".\" or \"..\"" },
	{ "s3://bucket/a/../b/", NULL, "\".\" or \"..\"" },
	{ "s3://bucket/../escape", NULL, "\".\" or \"..\"" },
};

START_TEST(test_parse_url)
{
	char *bucket = NULL, *prefix = NULL;
	const char *why = NULL;
	int rc = cfg_parse_url(url_cases[_i].url, &bucket, &prefix, &why);
	if (url_cases[_i].bucket) {
		ck_assert_msg(rc == 0, "%s: %s", url_cases[_i].url, why);
		ck_assert_str_eq(bucket, url_cases[_i].bucket);
		ck_assert_str_eq(prefix, url_cases[_i].prefix);
		free(bucket);
		free(prefix);
	} else {
		ck_assert_msg(rc == -1, "%s accepted", url_cases[_i].url);
		ck_assert_ptr_nonnull(why);
		ck_assert_msg(strstr(why, url_cases[_i].prefix), "%s: want \"%s\" in \"%s\"",
			      url_cases[_i].url, url_cases[_i].prefix, why);
	}
}
END_TEST

/* ---------------------------------------------------------------- errors, with lines */

/* A valid default store: two lines. */
#define S "[store]\nendpoint = http://127.0.0.1:9000\n"
/* A valid read route on the default store: two lines. */
#define R "[read /mnt/data]\nurl = s3://bkt/data/\n"

static const struct {
	const char *name;
	const char *text;
	int line;
	const char *frag;
} error_cases[] = {
	/* syntax errors reported by libinih */
	{ "unterminated header", S "[read /mnt/x\nurl = s3://bkt/\n", 3, "syntax error" },
	{ "key without =", S "region\n", 3, "syntax error" },
	{ "syntax error late", S R "\n; c\n\ncache = 1GiB\nprefetch\n", 9, "syntax error" },
	{ "syntax error before bad key", S "nonsense\nfoo = 1\n", 3, "syntax error" },
	{ "bad key before syntax error", S "foo = 1\nnonsense\n", 3, "unknown key \"foo\"" },
	{ "header with inline comment inside", S "[read /mnt/x ;]\nurl = s3://bkt/\n", 3,
	  "syntax error" },
	{ "syntax error after BOM and indentation", "\xef\xbb\xbf[store]\n  endpoint = http://h\n  oops\n",
	  3, "syntax error" },
	{ "syntax error with CRLF", "[store]\r\nendpoint = http://h\r\n\r\nx\r\n", 4, "syntax error" },
	/* lines inih cannot take */
	{ "line too long", S "region = "
			       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
	  3, "line is too long" },
	/* sections */
	{ "unknown section kind", S "[reader /mnt/x]\n", 3, "unknown section [reader /mnt/x]" },
	{ "unknown section lists kinds", "[foo]\n", 1, "use [global], [store], [store NAME]" },
	{ "section kinds are case-sensitive", "[Store]\nendpoint = http://h\n", 1,
	  "unknown section [Store]" },
	{ "empty section name", "[]\n", 1, "unknown section []" },
	{ "global with a name", "[global x]\n", 1, "[global] takes no name" },
	{ "read without path", S "[read]\nurl = s3://bkt/\n", 3, "[read] needs a local path" },
	{ "write without path", S "[write  ]\n", 3, "[write] needs a local path" },
	{ "bad store section name", "[store a/b]\nendpoint = http://h\n", 1, "bad store name \"a/b\"" },
	{ "key outside any section", "endpoint = http://h\n[store]\n", 1,
	  "key \"endpoint\" is outside any section" },
	/* unknown keys */
	{ "unknown store key", S "colour = blue\n", 3, "unknown key \"colour\" in a [store] section" },
	{ "unknown global key", "[global]\nendpoint = http://h\n", 2,
	  "unknown key \"endpoint\" in a [global] section (endpoint is a [store] key)" },
	{ "read key in write route", S "[write /mnt/w]\nurl = s3://bkt/w/\ncache = 1GiB\n", 5,
	  "unknown key \"cache\" in a [write] section (cache is a [read] key)" },
	{ "write key in read route", S "[read /mnt/r]\nspool = /tmp/s\n", 4,
	  "unknown key \"spool\" in a [read] section (spool is a [write] key)" },
	{ "prefetch in write route", S "[write /mnt/w]\nprefetch = all\n", 4,
	  "unknown key \"prefetch\" in a [write] section" },
	{ "part_size in read route", S "[read /mnt/r]\npart_size = 8MiB\n", 4,
	  "unknown key \"part_size\" in a [read] section" },
	{ "store key in route", S "[read /mnt/r]\nregion = x\n", 4,
	  "unknown key \"region\" in a [read] section (region is a [store] key)" },
	{ "keys are case-sensitive", S "Region = x\n", 3, "unknown key \"Region\"" },
	{ "empty key name", S "= x\n", 3, "unknown key \"\"" },
	/* duplicates */
	{ "duplicate key", S "region = a\n\nregion = b\n", 5,
	  "duplicate key \"region\" (first set on line 3)" },
	{ "duplicate key in route", S R "cache = 1G\ncache = 2G\n", 6,
	  "duplicate key \"cache\" (first set on line 5)" },
	{ "duplicate key, same value", S "endpoint = http://127.0.0.1:9000\n", 3,
	  "duplicate key \"endpoint\" (first set on line 2)" },
	{ "duplicate default store", S "[store]\nendpoint = http://h\n", 3,
	  "duplicate section [store] (first on line 1)" },
	{ "duplicate named store", S "[store x]\nendpoint = http://h\n\n[store x]\n", 6,
	  "duplicate section [store x] (first on line 3)" },
	{ "duplicate empty store", "[store x]\nendpoint = http://h\n[store  x ]\n", 3,
	  "duplicate section [store x] (first on line 1)" },
	{ "duplicate global", "[global]\n[global]\n", 2, "duplicate section [global] (first on line 1)" },
	/* missing required keys: reported at the section's header */
	{ "store without endpoint", "[store]\nregion = x\n\n[global]\n", 1,
	  "missing required key \"endpoint\" in [store]" },
	{ "named store without endpoint at EOF", S "[store archive]\n", 3,
	  "missing required key \"endpoint\" in [store archive]" },
	{ "read route without url", S "[read /mnt/x]\ncache = 1GiB\n" R, 3,
	  "missing required key \"url\" in [read /mnt/x]" },
	{ "write route without url at EOF", S R "[write /mnt/w/]\nspool = /s\n", 5,
	  "missing required key \"url\" in [write /mnt/w]" },
	/* sizes */
	{ "bad size suffix", S R "cache = 2GiX\n", 5,
	  "cache: bad size \"2GiX\" (use e.g. 512MiB, 2GiB)" },
	{ "negative size", S R "cache = -1\n", 5, "cache: bad size \"-1\"" },
	{ "word as size", S R "whole_object_max = abc\n", 5, "whole_object_max: bad size \"abc\"" },
	{ "size overflow", S R "cache = 99999999999999999999\n", 5,
	  "cache: bad size \"99999999999999999999\"" },
	{ "size overflow by unit", S R "cache = 17000000TiB\n", 5, "cache: bad size" },
	{ "fractional size", S R "cache = 1.5GiB\n", 5, "cache: bad size \"1.5GiB\"" },
	{ "lower-case unit", S R "cache = 2gib\n", 5, "cache: bad size \"2gib\"" },
	{ "empty size", S R "cache =\n", 5, "cache: bad size \"\"" },
	{ "zero cache", S R "cache = 0\n", 5, "cache: \"0\" is out of range (must be more than 0)" },
	{ "multipart threshold too small",
	  S "[write /mnt/w]\nurl = s3://bkt/w/\nmultipart_threshold = 4MiB\n",
	  5, "multipart_threshold: \"4MiB\" is out of range (use 5MiB to 5GiB)" },
	{ "multipart threshold too large",
	  S "[write /mnt/w]\nurl = s3://bkt/w/\nmultipart_threshold = 6GiB\n",
	  5, "out of range (use 5MiB to 5GiB)" },
	{ "part size too small", S "[write /mnt/w]\nurl = s3://bkt/w/\npart_size = 5242879\n", 5,
	  "part_size: \"5242879\" is out of range (use 5MiB to 5GiB)" },
	{ "part size too large", S "[write /mnt/w]\nurl = s3://bkt/w/\npart_size = 5369709121\n", 5,
	  "part_size: \"5369709121\" is out of range" },
	/* durations */
	{ "bad duration", S "connect_timeout = 5x\n", 3,
	  "connect_timeout: bad duration \"5x\" (use e.g. 500ms, 30s, 10m, 1h)" },
	{ "negative duration", S "stall_timeout = -1\n", 3, "stall_timeout: bad duration \"-1\"" },
	{ "fractional duration", S "retry_time = 1.5s\n", 3, "retry_time: bad duration \"1.5s\"" },
	{ "duration in days", S "stall_timeout = 2d\n", 3, "bad duration \"2d\"" },
	{ "duration overflow", S "retry_time = 5000000s\n", 3, "bad duration \"5000000s\"" },
	{ "zero connect timeout", S "connect_timeout = 0\n", 3,
	  "connect_timeout: \"0\" is out of range (must be more than 0)" },
	{ "zero stall timeout", S "stall_timeout = 0ms\n", 3, "stall_timeout: \"0ms\" is out of range" },
	{ "bad drain timeout", S "[write /mnt/w]\nurl = s3://bkt/w/\ndrain_timeout = soon\n", 5,
	  "drain_timeout: bad duration \"soon\"" },
	{ "upload delay too long", S "[write /mnt/w]\nurl = s3://bkt/w/\nupload_delay = 2m\n", 5,
	  "upload_delay" },
	/* booleans */
	{ "bad bool", S "tls_verify = maybe\n", 3,
	  "tls_verify: bad boolean \"maybe\" (use true or false)" },
	{ "bool 2", S "tls_verify = 2\n", 3, "tls_verify: bad boolean \"2\"" },
	/* enums */
	{ "bad addressing", S "addressing = host\n", 3,
	  "addressing: bad value \"host\" (use path or virtual)" },
	{ "bad credentials", S "credentials = vault\n", 3,
	  "credentials: bad value \"vault\" (use auto, env, file, web_identity, rrsa or imds)" },
	{ "bad payload signing", S "payload_signing = yes\n", 3,
	  "payload_signing: bad value \"yes\" (use unsigned or signed)" },
	{ "bad prefetch", S R "prefetch = some\n", 5,
	  "prefetch: bad value \"some\" (use off, listing or all)" },
	/* integers */
	{ "short credentials", S "credentials_duration = 10m\n", 3,
	  "credentials_duration: \"10m\" is out of range (at least 900000ms)" },
	{ "sts endpoint with a path", S "sts_endpoint = https://sts.example.com/x\n", 3,
	  "sts_endpoint:" },
	{ "zero attempts", S "max_attempts = 0\n", 3,
	  "max_attempts: bad value \"0\" (use an integer of at least 1)" },
	{ "negative attempts", S "max_attempts = -1\n", 3, "max_attempts: bad value \"-1\"" },
	{ "word attempts", S "max_attempts = ten\n", 3, "max_attempts: bad value \"ten\"" },
	{ "attempts overflow", S "max_attempts = 4294967296\n", 3, "max_attempts: bad value" },
	{ "hex integer", S R "prefetch_concurrency = 0x10\n", 5,
	  "prefetch_concurrency: bad value \"0x10\" (use an integer from 1 to 1024)" },
	{ "prefetch concurrency 0", S R "prefetch_concurrency = 0\n", 5, "from 1 to 1024" },
	{ "prefetch concurrency 1025", S R "prefetch_concurrency = 1025\n", 5, "bad value \"1025\"" },
	{ "signed integer", S R "prefetch_concurrency = +8\n", 5, "bad value \"+8\"" },
	{ "upload workers 0", S "[write /mnt/w]\nurl = s3://bkt/w/\nupload_workers = 0\n", 5,
	  "upload_workers: bad value \"0\" (use an integer from 1 to 256)" },
	{ "upload workers 257", S "[write /mnt/w]\nurl = s3://bkt/w/\nupload_workers = 257\n", 5,
	  "from 1 to 256" },
	{ "part concurrency 65", S "[write /mnt/w]\nurl = s3://bkt/w/\npart_concurrency = 65\n", 5,
	  "part_concurrency: bad value \"65\" (use an integer from 1 to 64)" },
	{ "integer with unit", S "[write /mnt/w]\nurl = s3://bkt/w/\npart_concurrency = 4x\n", 5,
	  "bad value \"4x\"" },
	/* URLs */
	{ "url not s3", S "[read /mnt/x]\nurl = https://bkt/x/\n", 4,
	  "url: bad URL \"https://bkt/x/\": not an s3:// URL" },
	{ "url bad bucket", S "[read /mnt/x]\nurl = s3://My_Bucket/x/\n", 4,
	  "url: bad URL \"s3://My_Bucket/x/\": bucket name may only contain" },
	{ "url short bucket", S "[read /mnt/x]\nurl = s3://ab/\n", 4, "3 to 63 characters" },
	{ "url bucket edge", S "[read /mnt/x]\nurl = s3://bkt-/\n", 4,
	  "start and end with a letter or digit" },
	{ "url //", S "[write /mnt/x]\nurl = s3://bkt/a//b/\n", 4, "empty path segment (\"//\")" },
	{ "url ..", S "[write /mnt/x]\nurl = s3://bkt/a/../b/\n", 4, "\".\" or \"..\" path segment" },
	{ "url .", S "[read /mnt/x]\nurl = s3://bkt/./b/\n", 4, "\".\" or \"..\" path segment" },
	{ "url empty", S "[read /mnt/x]\nurl =\n", 4, "url: bad URL \"\"" },
	/* endpoints */
	{ "endpoint scheme", "[store]\nendpoint = ftp://h\n", 2,
	  "endpoint: bad endpoint \"ftp://h\": must start with http:// or https://" },
	{ "endpoint without scheme", "[store]\nendpoint = 127.0.0.1:9000\n", 2, "http:// or https://" },
	{ "endpoint path", "[store]\nendpoint = http://h:9000/bkt\n", 2,
	  "must not have a path, query or fragment" },
	{ "endpoint two slashes", "[store]\nendpoint = http://h//\n", 2, "must not have a path" },
	{ "endpoint query", "[store]\nendpoint = https://h?x=1\n", 2, "must not have a path" },
	{ "endpoint fragment", "[store]\nendpoint = https://h#x\n", 2, "must not have a path" },
	{ "endpoint user info", "[store]\nendpoint = https://key:secret@h\n", 2,
	  "must not contain user information" },
	{ "endpoint no host", "[store]\nendpoint = http://\n", 2, "missing host name" },
	{ "endpoint no host but port", "[store]\nendpoint = http://:9000\n", 2, "missing host name" },
	{ "endpoint port 0", "[store]\nendpoint = http://h:0\n", 2, "bad port" },
	{ "endpoint port too big", "[store]\nendpoint = http://h:65536\n", 2, "bad port" },
	{ "endpoint port word", "[store]\nendpoint = http://h:http\n", 2, "bad port" },
	{ "endpoint empty port", "[store]\nendpoint = http://h:\n", 2, "bad port" },
	{ "endpoint bad host", "[store]\nendpoint = http://h_x\n", 2, "bad character in host name" },
	{ "endpoint space", "[store]\nendpoint = http://my host\n", 2, "bad character in host name" },
	{ "endpoint bad v6", "[store]\nendpoint = http://[::1\n", 2, "bad IPv6 address" },
	{ "endpoint bad v6 literal", "[store]\nendpoint = http://[zz::1]:9000\n", 2, "bad IPv6 address" },
	{ "endpoint after v6", "[store]\nendpoint = http://[::1]x\n", 2, "after the IPv6 address" },
	{ "endpoint empty", "[store]\nendpoint =\n", 2, "endpoint: empty value" },
	/* other values */
	{ "empty region", S "region =\n", 3, "region: empty value" },
	{ "empty profile", S "profile = ; comment\n", 3, "profile: empty value" },
	{ "relative credentials file", S "credentials_file = creds\n", 3,
	  "credentials_file: \"creds\" is not an absolute path" },
	{ "relative ca bundle", S "ca_bundle = ./ca.pem\n", 3,
	  "ca_bundle: \"./ca.pem\" is not an absolute path" },
	{ "tilde path", S "credentials_file = ~/.aws/credentials\n", 3, "is not an absolute path" },
	{ "relative spool", S "[write /mnt/w]\nurl = s3://bkt/w/\nspool = var/tmp\n", 5,
	  "spool: \"var/tmp\" is not an absolute path" },
	{ "relative cache dir", "[global]\ncache_dir = shm\n", 2,
	  "cache_dir: \"shm\" is not an absolute path" },
	{ "agent not a boolean", "[global]\nagent = sometimes\n", 2,
	  "agent: bad boolean \"sometimes\"" },
	{ "agent_idle too short", "[global]\nagent_idle = 10ms\n", 2, "agent_idle" },
	{ "agent_handoff negative", "[global]\nagent_handoff = -1\n", 2, "agent_handoff" },
	{ "bad store name value", S "[read /mnt/x]\nurl = s3://bkt/\nstore = a b\n", 5,
	  "store: bad store name \"a b\"" },
	/* route paths */
	{ "relative route", S "[read mnt/x]\nurl = s3://bkt/\n", 3,
	  "[read mnt/x]: the local path must be absolute" },
	{ "root route", S "[write /]\nurl = s3://bkt/\n", 3, "cannot route \"/\" itself" },
	{ "root route, slashes", S "[read ///]\nurl = s3://bkt/\n", 3, "cannot route \"/\" itself" },
	{ "dotdot route", S "[write /mnt/../x]\nurl = s3://bkt/\n", 3,
	  "must not contain \".\" or \"..\" components" },
	{ "dot route", S "[read /mnt/./x]\nurl = s3://bkt/\n", 3, "must not contain \".\" or \"..\"" },
	/* stores named by routes */
	{ "unknown store", S R "[read /mnt/other]\nurl = s3://bkt/o/\nstore = nope\n", 5,
	  "[read /mnt/other] names store \"nope\", but there is no [store nope]" },
	{ "no default store", "[store x]\nendpoint = http://h\n[write /mnt/w]\nurl = s3://bkt/w/\n", 3,
	  "[write /mnt/w] uses the default store, but there is no [store] section" },
	{ "no store at all", "[read /mnt/r]\nurl = s3://bkt/\n", 1, "no [store] section" },
	/* local paths of routes */
	{ "same local path", S R "[write /mnt/data]\nurl = s3://bkt/w/\n", 5,
	  "[write /mnt/data] has the same local path as [read /mnt/data] (line 3)" },
	{ "same local path, trailing slash", S R "[read /mnt/data/]\nurl = s3://bkt/x/\n", 5,
	  "[read /mnt/data] has the same local path as [read /mnt/data] (line 3)" },
	{ "same local path, double slash", S R "[read //mnt//data]\nurl = s3://bkt/x/\n", 5,
	  "has the same local path" },
	{ "same local path, blanks", S R "[read   /mnt/data  ]\nurl = s3://bkt/x/\n", 5,
	  "has the same local path" },
	{ "write inside read", S R "\n[write /mnt/data/ckpt]\nurl = s3://other/\n", 6,
	  "[write /mnt/data/ckpt] is inside [read /mnt/data] (line 3): only a read route may be "
	  "nested in another read route" },
	{ "read inside write",
	  S "[write /mnt/out]\nurl = s3://bkt/out/\n[read /mnt/out/in]\nurl = s3://x12/\n", 5,
	  "[read /mnt/out/in] is inside [write /mnt/out] (line 3)" },
	{ "write inside write",
	  S "[write /mnt/out]\nurl = s3://bkt/out/\n[write /mnt/out/a/b]\nurl = s3://x12/\n", 5,
	  "[write /mnt/out/a/b] is inside [write /mnt/out] (line 3)" },
	{ "read contains earlier write",
	  S "[write /mnt/d/w]\nurl = s3://bkt/w/\n[read /mnt/d]\nurl = s3://x12/\n", 5,
	  "[read /mnt/d] contains [write /mnt/d/w] (line 3)" },
	{ "write contains earlier reads",
	  S R "[read /mnt/data/sub]\nurl = s3://x12/\n[write /mnt]\nurl = s3://y12/\n", 7,
	  "[write /mnt] contains [read /mnt/data] (line 3)" },
	/* remote locations */
	{ "write on read's prefix", S R "[write /mnt/w]\nurl = s3://bkt/data/\n", 5,
	  "[write /mnt/w] (s3://bkt/data/) overlaps [read /mnt/data] (line 3, s3://bkt/data/)" },
	{ "write below read's prefix", S R "[write /mnt/w]\nurl = s3://bkt/data/ckpt/\n", 5,
	  "a write route must not share objects with another route" },
	{ "write above read's prefix", S R "[write /mnt/w]\nurl = s3://bkt\n", 5,
	  "overlaps [read /mnt/data]" },
	{ "read below write's prefix", S "[write /mnt/w]\nurl = s3://bkt/\n" R, 5,
	  "[read /mnt/data] (s3://bkt/data/) overlaps [write /mnt/w] (line 3, s3://bkt/)" },
	{ "two writes, same prefix",
	  S "[write /mnt/a]\nurl = s3://bkt/x\n[write /mnt/b]\nurl = s3://bkt/x/\n", 5,
	  "overlaps [write /mnt/a]" },
	{ "same service under two store names", S "[store again]\nendpoint = HTTP://127.0.0.1:9000/\n" R
	  "[write /mnt/w]\nurl = s3://bkt/data/w/\nstore = again\n", 7, "overlaps [read /mnt/data]" },
	/* the first problem wins */
	{ "first of two key errors", S "region =\nmax_attempts = 0\n", 3, "region: empty value" },
	{ "local path checks are in file order", S R "[write /mnt/data]\nurl = s3://x/\n", 5,
	  "has the same local path" },
	/* store references and remote overlaps need the whole file, so line checks come first */
	{ "whole-file checks come last", S "[read /mnt/x]\nurl = s3://bkt/\nstore = nope\n"
					 "[global]\ncache_dir = rel\n", 7, "cache_dir: \"rel\"" },
};

START_TEST(test_errors)
{
	expect_error(error_cases[_i].text, error_cases[_i].line, error_cases[_i].frag);
}
END_TEST

/* inih's line buffer holds 198 characters plus the line end. */
START_TEST(test_line_length)
{
	char text[512], err[CFG_ERR_MAX], want[256];
	for (int len = 197; len <= 200; len++) {
		int n = snprintf(text, sizeof text, S "region = ");
		memset(text + n, 'r', (size_t)(len - 9));
		snprintf(text + n + len - 9, sizeof text - (size_t)(n + len - 9), "\n");
		cfg *c = NULL;
		const char *path;
		int rc = load_text(text, &c, err, &path);
		if (len <= 198) {
			ck_assert_msg(rc == 0, "%d: %s", len, err);
			ck_assert_uint_eq(strlen(c->stores[0].region), (size_t)len - 9);
			cfg_free(c);
		} else {
			ck_assert_int_eq(rc, -1);
			snprintf(want, sizeof want, "%s:3: line is too long (at most 198 characters)", path);
			ck_assert_str_eq(err, want);
		}
	}
}
END_TEST

START_TEST(test_nul_byte)
{
	static const char text[] = "[store]\nendpoint = http://h\nregion = a\0b\n";
	const char *path = write_file(text, sizeof text - 1);
	cfg *c = NULL;
	char err[CFG_ERR_MAX], want[256];
	ck_assert_int_eq(cfg_load(path, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:3: line contains a NUL byte", path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_missing_file)
{
	char path[128], err[CFG_ERR_MAX], want[256];
	cfg *c = (cfg *)1;
	snprintf(path, sizeof path, "%s/does-not-exist.conf", tmpdir);
	ck_assert_int_eq(cfg_load(path, &c, err, sizeof err), -1);
	ck_assert_ptr_null(c);
	snprintf(want, sizeof want, "%s: cannot read: No such file or directory", path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_directory)
{
	char err[CFG_ERR_MAX], want[256];
	cfg *c = NULL;
	ck_assert_int_eq(cfg_load(tmpdir, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: cannot read: Is a directory", tmpdir);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_unreadable)
{
	if (geteuid() == 0)
		return; /* root reads anything */
	const char *path = write_file(S, strlen(S));
	ck_assert_int_eq(chmod(path, 0), 0);
	char err[CFG_ERR_MAX], want[256];
	cfg *c = NULL;
	ck_assert_int_eq(cfg_load(path, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: cannot read: Permission denied", path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_error_buffer)
{
	const char *path = write_file("[bogus]\n", 8);
	cfg *c = NULL;
	char small[12];
	memset(small, 'x', sizeof small);
	ck_assert_int_eq(cfg_load(path, &c, small, sizeof small), -1);
	ck_assert_uint_eq(strlen(small), sizeof small - 1);
	ck_assert(strncmp(small, path, sizeof small - 1) == 0);
	ck_assert_int_eq(cfg_load(path, &c, NULL, 0), -1);
	ck_assert_ptr_null(c);
	/* success clears whatever was in err */
	char err[CFG_ERR_MAX] = "stale";
	const char *ok = write_file(S, strlen(S));
	ck_assert_int_eq(cfg_load(ok, &c, err, sizeof err), 0);
	ck_assert_str_eq(err, "");
	cfg_free(c);
}
END_TEST

/* ---------------------------------------------------------------- valid configs */

START_TEST(test_store_defaults)
{
	cfg *c = load_ok(S);
	ck_assert_str_eq(c->cache_dir, "/dev/shm/rwsplit");
	ck_assert(c->agent);
	ck_assert_uint_eq(c->agent_idle_ms, 60 * 1000);
	ck_assert_uint_eq(c->agent_handoff, 0);
	ck_assert_uint_eq(c->nstores, 1);
	ck_assert_uint_eq(c->nroutes, 0);
	const cfg_store *s = &c->stores[0];
	ck_assert_str_eq(s->name, "");
	ck_assert_str_eq(s->endpoint, "http://127.0.0.1:9000");
	ck_assert_str_eq(s->region, "us-east-1");
	ck_assert_int_eq(s->addressing, CFG_ADDR_PATH);
	ck_assert_int_eq(s->credentials, CFG_CRED_AUTO);
	ck_assert_ptr_null(s->credentials_file);
	ck_assert_ptr_null(s->profile);
	ck_assert_ptr_null(s->ca_bundle);
	ck_assert(s->tls_verify);
	ck_assert(!s->sign_payload);
	ck_assert_uint_eq(s->connect_timeout_ms, 5000);
	ck_assert_uint_eq(s->stall_timeout_ms, 30000);
	ck_assert_uint_eq(s->retry_time_ms, 60000);
	ck_assert_uint_eq(s->max_attempts, 10);
	ck_assert_ptr_null(s->sts_endpoint);
	ck_assert_uint_eq(s->refresh_before_ms, 5 * 60 * 1000);
	ck_assert_uint_eq(s->duration_ms, 60 * 60 * 1000);
	ck_assert_str_eq(s->creds_cache, "/dev/shm/rwsplit");
	ck_assert_int_eq(s->line, 1);
	ck_assert_ptr_eq(cfg_find_store(c, ""), s);
	ck_assert_ptr_null(cfg_find_store(c, "x"));
	cfg_free(c);
}
END_TEST

START_TEST(test_route_defaults)
{
	cfg *c = load_ok(S "[read /mnt/r]\nurl = s3://bkt/r\n[write /mnt/w]\nurl = s3://bkt/w/\n");
	ck_assert_uint_eq(c->nroutes, 2);
	const cfg_route *r = &c->routes[0], *w = &c->routes[1];
	ck_assert_int_eq(r->mode, CFG_READ);
	ck_assert_str_eq(r->local, "/mnt/r");
	ck_assert_uint_eq(r->local_len, 6);
	ck_assert_str_eq(r->bucket, "bkt");
	ck_assert_str_eq(r->prefix, "r/");
	ck_assert_ptr_eq(r->store, &c->stores[0]);
	ck_assert_uint_eq(r->cache_bytes, GI);
	ck_assert_int_eq(r->prefetch, CFG_PREFETCH_LISTING);
	ck_assert_uint_eq(r->prefetch_concurrency, 16);
	ck_assert_uint_eq(r->whole_max, 8 * MI);
	ck_assert_ptr_null(r->spool);
	ck_assert_int_eq(r->line, 3);
	ck_assert_int_eq(w->mode, CFG_WRITE);
	ck_assert_str_eq(w->local, "/mnt/w");
	ck_assert_str_eq(w->prefix, "w/");
	ck_assert_ptr_eq(w->store, &c->stores[0]);
	ck_assert_str_eq(w->spool, "/var/tmp/rwsplit");
	ck_assert_uint_eq(w->multipart_threshold, 64 * MI);
	ck_assert_uint_eq(w->part_size, 16 * MI);
	ck_assert_uint_eq(w->upload_workers, 4);
	ck_assert_uint_eq(w->part_concurrency, 4);
	ck_assert_uint_eq(w->drain_timeout_ms, 600000);
	ck_assert_uint_eq(w->upload_delay_ms, 100);
	ck_assert_int_eq(w->line, 5);
	cfg_free(c);
}
END_TEST

/* The digest names the text exactly as read: a BOM, indentation, comments and a last line
 * without a newline all count (the fetch agent refuses a config whose text changed). */
START_TEST(test_digest_is_of_the_text)
{
	static const char *const texts[] = {
		S,
		"\xef\xbb\xbf" S "; a comment\n",
		S "  region = eu-west-1",
		S "region = eu-west-1\n\n\n",
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		cfg *c = load_ok(texts[i]);
		char want[65];
		sha256_hex(texts[i], strlen(texts[i]), want);
		ck_assert_str_eq(c->digest, want);
		cfg_free(c);
	}
}
END_TEST

START_TEST(test_every_key)
{
	cfg *c = load_ok("[global]\n"
			 "cache_dir = /dev/shm/custom\n"
			 "agent = off\n"
			 "agent_idle = 1500ms\n"
			 "agent_handoff = 0\n"
			 "[store s3]\n"
			 "endpoint = https://s3.eu-west-1.amazonaws.com\n"
			 "region = eu-west-1\n"
			 "addressing = path\n"
			 "credentials = file\n"
			 "credentials_file = /etc/aws/credentials\n"
			 "profile = training\n"
			 "ca_bundle = /etc/ssl/ca.pem\n"
			 "tls_verify = off\n"
			 "payload_signing = signed\n"
			 "connect_timeout = 1500ms\n"
			 "stall_timeout = 2m\n"
			 "retry_time = 0\n"
			 "max_attempts = 1\n"
			 "[read /data/in]\n"
			 "url = s3://in-bucket/x/y\n"
			 "store = s3\n"
			 "cache = 64 KiB\n"
			 "prefetch = ALL\n"
			 "prefetch_concurrency = 1024\n"
			 "whole_object_max = 0\n"
			 "[write /data/out]\n"
			 "url = s3://out-bucket\n"
			 "store = s3\n"
			 "spool = /spool\n"
			 "multipart_threshold = 5GiB\n"
			 "part_size = 5MiB\n"
			 "upload_workers = 256\n"
			 "part_concurrency = 64\n"
			 "drain_timeout = 0\n"
			 "upload_delay = 60s\n");
	ck_assert_str_eq(c->cache_dir, "/dev/shm/custom");
	ck_assert(!c->agent);
	ck_assert_uint_eq(c->agent_idle_ms, 1500);
	ck_assert_uint_eq(c->agent_handoff, 0);
	const cfg_store *s = cfg_find_store(c, "s3");
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_null(cfg_find_store(c, ""));
	ck_assert_str_eq(s->endpoint, "https://s3.eu-west-1.amazonaws.com");
	ck_assert_str_eq(s->region, "eu-west-1");
	ck_assert_int_eq(s->addressing, CFG_ADDR_PATH);
	ck_assert_int_eq(s->credentials, CFG_CRED_FILE);
	ck_assert_str_eq(s->credentials_file, "/etc/aws/credentials");
	ck_assert_str_eq(s->profile, "training");
	ck_assert_str_eq(s->ca_bundle, "/etc/ssl/ca.pem");
	ck_assert(!s->tls_verify);
	ck_assert(s->sign_payload);
	ck_assert_uint_eq(s->connect_timeout_ms, 1500);
	ck_assert_uint_eq(s->stall_timeout_ms, 120000);
	ck_assert_uint_eq(s->retry_time_ms, 0);
	ck_assert_uint_eq(s->max_attempts, 1);
	ck_assert_int_eq(s->line, 6);
	const cfg_route *r = &c->routes[0], *w = &c->routes[1];
	ck_assert_ptr_eq(r->store, s);
	ck_assert_str_eq(r->bucket, "in-bucket");
	ck_assert_str_eq(r->prefix, "x/y/");
	ck_assert_uint_eq(r->cache_bytes, 64 * KI);
	ck_assert_int_eq(r->prefetch, CFG_PREFETCH_ALL);
	ck_assert_uint_eq(r->prefetch_concurrency, 1024);
	ck_assert_uint_eq(r->whole_max, 0);
	ck_assert_ptr_eq(w->store, s);
	ck_assert_str_eq(w->bucket, "out-bucket");
	ck_assert_str_eq(w->prefix, "");
	ck_assert_str_eq(w->spool, "/spool");
	ck_assert_uint_eq(w->multipart_threshold, 5 * GI);
	ck_assert_uint_eq(w->part_size, 5 * MI);
	ck_assert_uint_eq(w->upload_workers, 256);
	ck_assert_uint_eq(w->part_concurrency, 64);
	ck_assert_uint_eq(w->drain_timeout_ms, 0);
	ck_assert_uint_eq(w->upload_delay_ms, 60000);
	cfg_free(c);
}
END_TEST

START_TEST(test_enum_values)
{
	cfg *c = load_ok("[store]\nendpoint = http://h\naddressing = virtual\ncredentials = env\n"
			 "payload_signing = unsigned\n"
			 "[read /a]\nurl = s3://bkt/a/\nprefetch = off\n"
			 "[store f]\nendpoint = http://h\ncredentials = file\n"
			 "[read /b]\nurl = s3://bkt/b/\nprefetch = Listing\nstore = f\n");
	ck_assert_int_eq(c->stores[0].addressing, CFG_ADDR_VIRTUAL);
	ck_assert_int_eq(c->stores[0].credentials, CFG_CRED_ENV);
	ck_assert(!c->stores[0].sign_payload);
	ck_assert_int_eq(c->stores[1].credentials, CFG_CRED_FILE);
	ck_assert_ptr_null(c->stores[1].credentials_file); /* AWS's default file */
	ck_assert_int_eq(c->routes[0].prefetch, CFG_PREFETCH_OFF);
	ck_assert_int_eq(c->routes[1].prefetch, CFG_PREFETCH_LISTING);
	ck_assert_ptr_eq(c->routes[1].store, &c->stores[1]);
	cfg_free(c);
}
END_TEST

static const struct {
	const char *endpoint;
	const char *want;
	enum cfg_addressing addressing;
} endpoint_cases[] = {
	{ "http://127.0.0.1:9000", "http://127.0.0.1:9000", CFG_ADDR_PATH },
	{ "http://127.0.0.1:9000/", "http://127.0.0.1:9000", CFG_ADDR_PATH },
	{ "http://10.1.2.3", "http://10.1.2.3", CFG_ADDR_PATH },
	{ "http://localhost:9000", "http://localhost:9000", CFG_ADDR_PATH },
	{ "HTTP://LocalHost:9000/", "http://localhost:9000", CFG_ADDR_PATH },
	{ "http://[::1]:9000", "http://[::1]:9000", CFG_ADDR_PATH },
	{ "https://[2001:db8::1]/", "https://[2001:db8::1]", CFG_ADDR_PATH },
	{ "https://oss-cn-hangzhou.aliyuncs.com", "https://oss-cn-hangzhou.aliyuncs.com",
	  CFG_ADDR_VIRTUAL },
	{ "https://S3.Amazonaws.com/", "https://s3.amazonaws.com", CFG_ADDR_VIRTUAL },
	{ "http://minio:9000", "http://minio:9000", CFG_ADDR_VIRTUAL },
	{ "http://localhost.example.com", "http://localhost.example.com", CFG_ADDR_VIRTUAL },
	{ "http://127.0.0.1.nip.io:9000", "http://127.0.0.1.nip.io:9000", CFG_ADDR_VIRTUAL },
	{ "https://h:65535", "https://h:65535", CFG_ADDR_VIRTUAL },
};

START_TEST(test_endpoints)
{
	char text[256];
	snprintf(text, sizeof text, "[store]\nendpoint = %s\n", endpoint_cases[_i].endpoint);
	cfg *c = load_ok(text);
	ck_assert_str_eq(c->stores[0].endpoint, endpoint_cases[_i].want);
	ck_assert_int_eq(c->stores[0].addressing, endpoint_cases[_i].addressing);
	cfg_free(c);
}
END_TEST

/* Route section names and the normalized local path they give. */
static const struct {
	const char *header;
	const char *local;
} local_cases[] = {
	{ "read /mnt/x", "/mnt/x" },
	{ "read /mnt/x/", "/mnt/x" },
	{ "read /mnt//x", "/mnt/x" },
	{ "read //mnt///x//", "/mnt/x" },
	{ "read\t/mnt/x", "/mnt/x" },
	{ "  read   /mnt/x  ", "/mnt/x" },
	{ "read /mnt/my data", "/mnt/my data" },
	{ "write /mnt/my  data /x", "/mnt/my  data /x" },
	{ "read /mnt/ünï cødé/%41+b", "/mnt/ünï cødé/%41+b" },
	{ "read /.hidden/...", "/.hidden/..." },
	{ "read /a", "/a" },
	/* longer than the 49 bytes inih keeps of a section name */
	{ "read /mnt/a-rather-long-path/that/goes/on/and/on/past/inih/limit/x",
	  "/mnt/a-rather-long-path/that/goes/on/and/on/past/inih/limit/x" },
	{ "write /mnt/a-rather-long-path/that/goes/on/and/on/past/inih/limit/y/",
	  "/mnt/a-rather-long-path/that/goes/on/and/on/past/inih/limit/y" },
};

START_TEST(test_local_paths)
{
	char text[512];
	snprintf(text, sizeof text, S "[%s]\nurl = s3://bkt/p/\n", local_cases[_i].header);
	cfg *c = load_ok(text);
	ck_assert_uint_eq(c->nroutes, 1);
	ck_assert_str_eq(c->routes[0].local, local_cases[_i].local);
	ck_assert_uint_eq(c->routes[0].local_len, strlen(local_cases[_i].local));
	ck_assert_int_eq(c->routes[0].line, 3);
	cfg_free(c);
}
END_TEST

/* Configs that must load, each with the number of routes it has. */
static const struct {
	const char *name;
	const char *text;
	size_t nroutes;
} valid_cases[] = {
	{ "empty file", "", 0 },
	{ "only comments", "# a\n; b\n\n   \n", 0 },
	{ "only global", "[global]\n", 0 },
	{ "store without routes", S, 0 },
	{ "unused named store", S "[store spare]\nendpoint = https://h\n", 0 },
	{ "read nested in read", S R "[read /mnt/data/sub]\nurl = s3://bkt/other/\n"
				     "[read /mnt/data/sub/deeper]\nurl = s3://bkt/deep/\n", 3 },
	{ "reads overlapping remotely", S R "[read /mnt/copy]\nurl = s3://bkt/data/\n"
					    "[read /mnt/sub]\nurl = s3://bkt/data/sub\n"
					    "[read /mnt/root]\nurl = s3://bkt\n", 4 },
	{ "sibling paths are not nested", S R "[write /mnt/data2]\nurl = s3://bkt/data2/\n"
					      "[write /mnt/dat]\nurl = s3://bkt/dat/\n", 3 },
	{ "sibling prefixes do not overlap", S R "[write /mnt/w]\nurl = s3://bkt/dat/\n"
						 "[write /mnt/v]\nurl = s3://bkt/data2/\n", 3 },
	{ "same prefix, other bucket", S R "[write /mnt/w]\nurl = s3://bkt2/data/\n", 2 },
	{ "same prefix, other service", S R "[store b]\nendpoint = http://127.0.0.2:9000\n"
					    "[write /mnt/w]\nurl = s3://bkt/data/\nstore = b\n", 2 },
	{ "store after its routes", R "[write /mnt/w]\nurl = s3://bkt/w/\nstore = late\n"
				      "[store late]\nendpoint = http://h\n" S, 2 },
	{ "inline comments", "[store] ; default\nendpoint = http://h ; local\n"
			     "[read /mnt/r] ; comment\nurl = s3://bkt/r/ ; the data\n", 1 },
	{ "indented keys and headers", "  [store]\n\tendpoint = http://h\n    region = r\n"
				       "  [read /mnt/r]\n  url = s3://bkt/\n  cache = 1G\n", 1 },
	{ "CRLF line ends", "[store]\r\nendpoint = http://h\r\n\r\n[read /r]\r\nurl = s3://bkt/\r\n", 1 },
	{ "UTF-8 BOM", "\xef\xbb\xbf[store]\nendpoint = http://h\n", 0 },
	{ "no final newline", "[store]\nendpoint = http://h\n[read /r]\nurl = s3://bkt/", 1 },
	{ "colon separator", "[store]\nendpoint: http://h\n", 0 },
	{ "credentials=file without file", S "credentials = file\n", 0 },
	{ "tls off with bundle", S "tls_verify = no\nca_bundle = /x.pem\n", 0 },
	{ "max line length", S "region = "
			       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			       "xxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", 0 },
};

START_TEST(test_valid)
{
	cfg *c = load_ok(valid_cases[_i].text);
	ck_assert_msg(c->nroutes == valid_cases[_i].nroutes, "%s: %zu routes", valid_cases[_i].name,
		      c->nroutes);
	for (size_t i = 0; i < c->nroutes; i++) {
		ck_assert_ptr_nonnull(c->routes[i].store);
		ck_assert(c->routes[i].store >= c->stores &&
			  c->routes[i].store < c->stores + c->nstores);
	}
	cfg_free(c);
}
END_TEST

START_TEST(test_values_in_valid_configs)
{
	cfg *c = load_ok("[store]\r\nendpoint = http://h ; local\r\nregion = a;b\r\n"
			 "[read /mnt/r] ; c\nurl = s3://bkt/r/ ; the data\n"
			 "  cache = 1G\n");
	ck_assert_str_eq(c->stores[0].endpoint, "http://h");
	ck_assert_str_eq(c->stores[0].region, "a;b"); /* only " ;" starts a comment */
	ck_assert_str_eq(c->routes[0].prefix, "r/");
	ck_assert_uint_eq(c->routes[0].cache_bytes, GI);
	ck_assert_int_eq(c->routes[0].line, 4);
	cfg_free(c);
}
END_TEST

START_TEST(test_file_order)
{
	cfg *c = load_ok("[write /z]\nurl = s3://bkt/z/\n[read /a]\nurl = s3://bkt/a/\n"
			 "[store b]\nendpoint = http://b\n[store]\nendpoint = http://d\n"
			 "[read /m]\nurl = s3://bkt/m/\nstore = b\n");
	ck_assert_uint_eq(c->nroutes, 3);
	ck_assert_str_eq(c->routes[0].local, "/z");
	ck_assert_str_eq(c->routes[1].local, "/a");
	ck_assert_str_eq(c->routes[2].local, "/m");
	ck_assert_str_eq(c->stores[0].name, "b");
	ck_assert_str_eq(c->stores[1].name, "");
	ck_assert_ptr_eq(c->routes[0].store, &c->stores[1]);
	ck_assert_ptr_eq(c->routes[2].store, &c->stores[0]);
	ck_assert_int_eq(c->stores[1].line, 7);
	ck_assert_int_eq(c->routes[2].line, 9);
	cfg_free(c);
}
END_TEST

START_TEST(test_many_sections)
{
	/* More sections than any initial allocation, so the arrays move while loading. */
	char text[16384] = S;
	size_t len = strlen(text);
	for (int i = 0; i < 40; i++) {
		len += (size_t)snprintf(text + len, sizeof text - len,
					"[store s%d]\nendpoint = http://h%d\n[read /r/%d]\nurl = s3://bkt/%d/\nstore = s%d\n"
					"[write /w/%d]\nurl = s3://out/%d/\n",
					i, i, i, i, i, i, i);
	}
	cfg *c = load_ok(text);
	ck_assert_uint_eq(c->nstores, 41);
	ck_assert_uint_eq(c->nroutes, 80);
	for (int i = 0; i < 40; i++) {
		char name[16];
		snprintf(name, sizeof name, "s%d", i);
		ck_assert_ptr_eq(c->routes[2 * i].store, cfg_find_store(c, name));
		ck_assert_ptr_eq(c->routes[2 * i + 1].store, cfg_find_store(c, ""));
	}
	cfg_free(c);
}
END_TEST

START_TEST(test_minio_example)
{
	cfg *c = NULL;
	char err[CFG_ERR_MAX];
	ck_assert_msg(cfg_load("config/examples/minio.conf", &c, err, sizeof err) == 0, "%s", err);
	ck_assert_str_eq(c->path, "config/examples/minio.conf");
	ck_assert_uint_eq(c->nstores, 1);
	const cfg_store *s = cfg_find_store(c, "");
	ck_assert_str_eq(s->endpoint, "http://127.0.0.1:9000");
	ck_assert_int_eq(s->addressing, CFG_ADDR_PATH);
	ck_assert_int_eq(s->credentials, CFG_CRED_ENV);
	ck_assert_uint_eq(c->nroutes, 2);
	ck_assert_int_eq(c->routes[0].mode, CFG_READ);
	ck_assert_str_eq(c->routes[0].local, "/mnt/train/data");
	ck_assert_str_eq(c->routes[0].bucket, "tf-train");
	ck_assert_str_eq(c->routes[0].prefix, "train/data/");
	ck_assert_uint_eq(c->routes[0].cache_bytes, 2 * GI);
	ck_assert_int_eq(c->routes[1].mode, CFG_WRITE);
	ck_assert_str_eq(c->routes[1].local, "/mnt/training_logs");
	ck_assert_str_eq(c->routes[1].prefix, "training_logs/");
	cfg_free(c);
}
END_TEST

START_TEST(test_oss_example)
{
	cfg *c = NULL;
	char err[CFG_ERR_MAX];
	ck_assert_msg(cfg_load("config/examples/oss.conf", &c, err, sizeof err) == 0, "%s", err);
	const cfg_store *s = cfg_find_store(c, "");
	ck_assert_str_eq(s->endpoint, "https://oss-cn-hangzhou.aliyuncs.com");
	ck_assert_str_eq(s->region, "cn-hangzhou");
	ck_assert_int_eq(s->addressing, CFG_ADDR_VIRTUAL);
	ck_assert_int_eq(s->credentials, CFG_CRED_ENV);
	ck_assert(s->tls_verify);
	ck_assert_ptr_nonnull(cfg_find_store(c, "shanghai"));
	ck_assert_uint_eq(c->nroutes, 4);
	for (size_t i = 0; i < c->nroutes; i++)
		ck_assert_ptr_nonnull(c->routes[i].store);
	cfg_free(c);
}
END_TEST

START_TEST(test_free_null)
{
	cfg_free(NULL);
}
END_TEST

static Suite *cfg_suite(void)
{
	Suite *s = suite_create("cfg");
	TCase *tc = tcase_create("values");
	tcase_add_loop_test(tc, test_parse_size, 0, N(size_cases));
	tcase_add_loop_test(tc, test_parse_duration, 0, N(duration_cases));
	tcase_add_loop_test(tc, test_parse_bool, 0, N(bool_cases));
	tcase_add_loop_test(tc, test_parse_url, 0, N(url_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_loop_test(tc, test_errors, 0, N(error_cases));
	tcase_add_test(tc, test_line_length);
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_directory);
	tcase_add_test(tc, test_unreadable);
	tcase_add_test(tc, test_error_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("valid");
	tcase_add_test(tc, test_store_defaults);
	tcase_add_test(tc, test_route_defaults);
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_digest_is_of_the_text);
	tcase_add_test(tc, test_enum_values);
	tcase_add_loop_test(tc, test_endpoints, 0, N(endpoint_cases));
	tcase_add_loop_test(tc, test_local_paths, 0, N(local_cases));
	tcase_add_loop_test(tc, test_valid, 0, N(valid_cases));
	tcase_add_test(tc, test_values_in_valid_configs);
	tcase_add_test(tc, test_file_order);
	tcase_add_test(tc, test_many_sections);
	tcase_add_test(tc, test_minio_example);
	tcase_add_test(tc, test_oss_example);
	tcase_add_test(tc, test_free_null);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_cfg.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	int failed = unit_run(cfg_suite()) != EXIT_SUCCESS;
	/* Each test removes nothing; the directory only holds this run's small files. */
	DIR *d = opendir(tmpdir);
	for (struct dirent *e; d && (e = readdir(d));) {
		char p[512];
		snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
		if (e->d_name[0] != '.')
			unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(tmpdir);
	return failed ? 1 : 0;
}
