/* The shared credentials file (s3/s3_credfile.c) and the keys s3_creds takes from it: lines of
 * any length (an STS token of 900+ characters), botocore's comment and continuation rules,
 * profiles, and clear errors for a bad line, a missing file and a value too long. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit_run.h"
#include "common/fs.h"
#include "common/sb.h"
#include "config/cfg.h"
#include "s3/s3_credfile.h"
#include "s3/s3_creds.h"

static char dir[64], path[128];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/rwsplit-credfile-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/credentials", dir);
}

static void teardown(void)
{
	fs_rm_rf(dir);
}

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Every reported entry as "section|name|value\n". */
static int record(void *arg, const char *section, const char *name, const char *value)
{
	sb *out = arg;
	sb_printf(out, "%s|%s|%s\n", section, name, value);
	return 0;
}

static const struct {
	const char *name, *text, *want;
	int rc;
} scan_cases[] = {
	{ "keys before any section", "a = 1\nb=2\n", "|a|1\n|b|2\n", 0 },
	{ "sections and blanks", "[default]\n  x  =  y z  \n\n[profile p]\nx=q\n",
	  "default|x|y z\nprofile p|x|q\n", 0 },
	{ "comments are whole lines only", "# c\n; c\n[s]\nk = v # not a comment\n",
	  "s|k|v # not a comment\n", 0 },
	{ "colon as separator, empty value", "[s]\nk: v\ne =\n", "s|k|v\ns|e|\n", 0 },
	{ "nested settings are not keys", "[s]\ns3 =\n  max_concurrent_requests = 20\nk = v\n",
	  "s|s3|\ns|k|v\n", 0 },
	{ "CRLF line ends", "[s]\r\nk = v\r\n", "s|k|v\n", 0 },
	{ "no newline at the end", "[s]\nk = v", "s|k|v\n", 0 },
	{ "a line that is neither", "[s]\nk = v\njust words\nz = 1\n", "s|k|v\n", 3 },
	{ "an unclosed header", "[s\nk = v\n", "", 1 },
	{ "a name missing", "[s]\n= v\n", "", 2 },
};

START_TEST(test_scan)
{
	write_file(scan_cases[_i].text);
	sb got = SB_INIT;
	int bad = 0;
	int rc = s3_credfile_scan(path, record, &got, &bad);
	ck_assert_msg(rc == scan_cases[_i].rc, "%s: rc %d", scan_cases[_i].name, rc);
	ck_assert_msg(strcmp(sb_str(&got), scan_cases[_i].want) == 0, "%s: got\n%s",
		      scan_cases[_i].name, sb_str(&got));
	ck_assert_int_eq(bad, scan_cases[_i].rc);
	sb_free(&got);
}
END_TEST

START_TEST(test_missing_file)
{
	ck_assert_int_eq(s3_credfile_scan("/nonexistent/credentials", record, NULL, NULL),
			 -ENOENT);
}
END_TEST

static s3_creds *creds_of(const char *profile, char *why, size_t whylen, int *rc)
{
	cfg_store st;
	memset(&st, 0, sizeof st);
	st.credentials = CFG_CRED_FILE;
	st.credentials_file = path;
	st.profile = (char *)profile;
	s3_creds *c = NULL;
	*rc = s3_creds_new(&st, &c, why, whylen);
	return c;
}

START_TEST(test_sts_token_of_any_length)
{
	/* A real STS session token is ~900 characters (longer with session tags). */
	char token[2001];
	for (size_t i = 0; i < sizeof token - 1; i++)
		token[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="[i % 65];
	token[sizeof token - 1] = '\0';
	sb text = SB_INIT;
	sb_printf(&text, "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n"
		  "\n[profile train]\nAWS_ACCESS_KEY_ID = ASIATRAIN\naws_secret_access_key = s/+x=\n"
		  "aws_session_token = %s\nregion = us-east-1\n", token);
	write_file(sb_str(&text));
	sb_free(&text);
	char why[256] = "";
	int rc;
	s3_creds *c = creds_of("train", why, sizeof why, &rc);
	ck_assert_msg(rc == 0 && c, "%s", why);
	s3_cred_values v;
	ck_assert_int_eq(s3_creds_get(c, &v), 0);
	ck_assert_str_eq(v.access_key, "ASIATRAIN");
	ck_assert_str_eq(v.secret_key, "s/+x=");
	ck_assert_str_eq(v.token, token);
	s3_creds_free(c);
}
END_TEST

START_TEST(test_errors_say_what_is_wrong)
{
	char why[512], big[5000];
	int rc;
	write_file("[default]\naws_access_key_id = A\nnot a key\n");
	ck_assert_ptr_null(creds_of("default", why, sizeof why, &rc));
	ck_assert_int_lt(rc, 0);
	ck_assert_msg(strstr(why, ":3: neither a [section] nor a key = value line"), "%s", why);

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	sb text = SB_INIT;
	sb_printf(&text, "[default]\naws_access_key_id = A\naws_secret_access_key = B\n"
		  "aws_session_token = %s\n", big);
	write_file(sb_str(&text));
	sb_free(&text);
	ck_assert_ptr_null(creds_of("default", why, sizeof why, &rc));
	ck_assert_msg(strstr(why, "the value of aws_session_token in [default] is too long"), "%s",
		      why);

	write_file("[default]\naws_access_key_id = A\naws_secret_access_key = B\n");
	ck_assert_ptr_null(creds_of("other", why, sizeof why, &rc));
	ck_assert_msg(strstr(why, "has no keys for profile [other]"), "%s", why);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("credfile");
	TCase *tc = tcase_create("credfile");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_scan, 0, (int)(sizeof scan_cases / sizeof *scan_cases));
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_sts_token_of_any_length);
	tcase_add_test(tc, test_errors_say_what_is_wrong);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
