/* Temporary credentials (s3/s3_sts.c, s3_xml_sts_credentials): recorded replies of AWS STS,
 * MinIO's STS (recorded from the pinned MinIO in this repo's tests) and Alibaba's STS
 * (AssumeRoleWithOIDC, the RRSA call, in the shape of Alibaba's API reference: MinIO does
 * not implement it, so its request and reply are checked here against vectors, not against
 * a server), their error documents, the RRSA request's form body, and IMDS's JSON. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "unit_run.h"
#include "common/sb.h"
#include "s3/s3_sts.h"
#include "s3/s3_xml.h"

#define XML_DIR "tests/unit/data/xml"

static char *fixture(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", XML_DIR, name);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s (run from the repository root)", path);
	sb s = SB_INIT;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		sb_append(&s, buf, n);
	fclose(f);
	*len = s.len;
	return sb_take(&s);
}

static const struct good {
	const char *file, *id, *secret, *token, *expires;
} goods[] = {
	{ "sts-aws-web-identity.xml", "ASgeIAIOSFODNN7EXAMPLE",
	  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
	  "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE", "2026-12-03T15:30:00Z" },
	{ "sts-minio-web-identity.xml", "P07ZB3JAC5PD8S4BNSKC",
	  "1wYjmCmgwoxV2tXqhPnOYtklh1OOyW7attskPBVG",
	  "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJhY2Nlc3NLZXkiOiJQMDdaQjNKQUM1UEQ4UzRCTlNLQyJ9."
	  "dBFBnXORHwfZmWQhlZ3PQBlfde", "2026-12-03T14:13:28Z" },
	{ "sts-alibaba-oidc.xml", "STS.NUgYrLnoC37mZZCNnAbez****",
	  "CVwjCkNzTMupZ8NbTCxCBRq3K16jtcWFTJAyBEv2****",
	  "CAIShwJ1q6Ft5B2yfSjIr5bSEsj4g7BihPWGWHvXXXXX", "2026-12-03T15:05:00Z" },
};

START_TEST(test_credentials_replies)
{
	const struct good *g = &goods[_i];
	size_t len;
	char *body = fixture(g->file, &len);
	s3_cred_values v;
	time_t expires = 0;
	s3_error err;
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(s3_xml_sts_credentials(body, len, &v, &expires, &err), 0);
	ck_assert_str_eq(v.access_key, g->id);
	ck_assert_str_eq(v.secret_key, g->secret);
	ck_assert_str_eq(v.token, g->token);
	ck_assert_int_eq(expires, s3_parse_iso8601(g->expires));
	free(body);
}
END_TEST

static const struct bad {
	const char *file, *code, *message, *request_id;
} bads[] = {
	{ "sts-minio-error.xml", "InvalidParameterValue", "invalid token expiry",
	  "18EDC3281A2E9B4C" },
	{ "sts-alibaba-error.xml", "AuthenticationFail.OIDCToken.Expired",
	  "The OIDC token has expired.", "6D2EB6C4-77AA-5D85-A7B0-2D1A8F6E3B0C" },
};

START_TEST(test_error_replies)
{
	const struct bad *b = &bads[_i];
	size_t len;
	char *body = fixture(b->file, &len);
	s3_cred_values v;
	time_t expires = 0;
	s3_error err;
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(s3_xml_sts_credentials(body, len, &v, &expires, &err), -EACCES);
	ck_assert_str_eq(err.code, b->code);
	ck_assert_str_eq(err.message, b->message);
	ck_assert_str_eq(err.request_id, b->request_id);
	free(body);
}
END_TEST

/* Replies that must not give credentials: missing fields, an empty key, a bad date, other
 * documents, and a token longer than the buffer (never cut). */
static const char *const malformed[] = {
	"",
	"not xml",
	"<ListBucketResult><Name>b</Name></ListBucketResult>",
	"<R><Credentials><AccessKeyId>a</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
	"<SessionToken>t</SessionToken></Credentials></R>",
	"<R><Credentials><AccessKeyId></AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
	"<SessionToken>t</SessionToken><Expiration>2026-12-03T15:05:00Z</Expiration>"
	"</Credentials></R>",
	"<R><Credentials><AccessKeyId>a</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
	"<SessionToken>t</SessionToken><Expiration>tomorrow</Expiration></Credentials></R>",
	"<!DOCTYPE R [<!ENTITY x \"y\">]><R><Credentials><AccessKeyId>&x;</AccessKeyId>"
	"</Credentials></R>",
};

START_TEST(test_malformed_replies)
{
	s3_cred_values v;
	time_t expires = 0;
	s3_error err;
	memset(&err, 0, sizeof err);
	const char *body = malformed[_i];
	ck_assert_int_eq(s3_xml_sts_credentials(body, strlen(body), &v, &expires, &err), -EIO);
	ck_assert_str_eq(v.access_key, "");
}
END_TEST

START_TEST(test_token_too_long_is_refused)
{
	sb s = SB_INIT;
	sb_puts(&s, "<R><Credentials><AccessKeyId>a</AccessKeyId><SecretAccessKey>s"
		"</SecretAccessKey><SessionToken>");
	for (int i = 0; i < 5000; i++)
		sb_putc(&s, 'x');
	sb_puts(&s, "</SessionToken><Expiration>2026-12-03T15:05:00Z</Expiration></Credentials>"
		"</R>");
	s3_cred_values v;
	time_t expires;
	ck_assert_int_eq(s3_xml_sts_credentials(sb_str(&s), s.len, &v, &expires, NULL), -EIO);
	sb_free(&s);
}
END_TEST

START_TEST(test_rrsa_request_body)
{
	s3_sts_source src;
	memset(&src, 0, sizeof src);
	snprintf(src.role_arn, sizeof src.role_arn, "acs:ram::113511544585:role/trainer");
	snprintf(src.provider_arn, sizeof src.provider_arn,
		 "acs:ram::113511544585:oidc-provider/ack-rrsa-c0a23a0f");
	snprintf(src.session_name, sizeof src.session_name, "rwsplit-node-1");
	src.duration_s = 3600;
	sb q = SB_INIT;
	ck_assert_int_eq(s3_sts_rrsa_query(&src, "eyJ0.eyJz+/=.sig", 1796310000, "0123abcd", &q),
			 0);
	ck_assert_str_eq(sb_str(&q),
		"Action=AssumeRoleWithOIDC&Format=XML&Version=2015-04-01"
		"&RoleArn=acs%3Aram%3A%3A113511544585%3Arole%2Ftrainer"
		"&OIDCProviderArn=acs%3Aram%3A%3A113511544585%3Aoidc-provider%2Fack-rrsa-c0a23a0f"
		"&RoleSessionName=rwsplit-node-1&DurationSeconds=3600"
		"&Timestamp=2026-12-03T15%3A00%3A00Z&SignatureNonce=0123abcd"
		"&OIDCToken=eyJ0.eyJz%2B%2F%3D.sig");
	sb_free(&q);
}
END_TEST

static const char imds_reply[] =
	"{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-12-03T14:00:00Z\",\n"
	"  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAIOSFODNN7EXAMPLE\",\n"
	"  \"SecretAccessKey\" : \"wJalrXUtnFEMI\\/K7MDENG\",\n  \"Token\" : \"IQoJb3\\\"x\",\n"
	"  \"Expiration\" : \"2026-12-03T20:00:00Z\"\n}";

START_TEST(test_imds_json)
{
	char out[64];
	ck_assert_int_eq(s3_json_string(imds_reply, "AccessKeyId", out, sizeof out), 0);
	ck_assert_str_eq(out, "ASIAIOSFODNN7EXAMPLE");
	ck_assert_int_eq(s3_json_string(imds_reply, "SecretAccessKey", out, sizeof out), 0);
	ck_assert_str_eq(out, "wJalrXUtnFEMI/K7MDENG");
	ck_assert_int_eq(s3_json_string(imds_reply, "Token", out, sizeof out), 0);
	ck_assert_str_eq(out, "IQoJb3\"x");
	ck_assert_int_eq(s3_json_string(imds_reply, "Code", out, sizeof out), 0);
	ck_assert_str_eq(out, "Success");
	ck_assert_int_eq(s3_json_string(imds_reply, "Missing", out, sizeof out), -1);
	ck_assert_int_eq(s3_json_string(imds_reply, "AccessKeyId", out, 5), -1);
	ck_assert_int_eq(s3_json_string("{\"a\": 1}", "a", out, sizeof out), -1);
	ck_assert_int_eq(s3_json_string("{\"a\": \"\\u0041\"}", "a", out, sizeof out), -1);
	ck_assert_int_eq(s3_json_string("{\"a\": \"open", "a", out, sizeof out), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sts");
	TCase *tc = tcase_create("replies");
	tcase_add_loop_test(tc, test_credentials_replies, 0, (int)(sizeof goods / sizeof *goods));
	tcase_add_loop_test(tc, test_error_replies, 0, (int)(sizeof bads / sizeof *bads));
	tcase_add_loop_test(tc, test_malformed_replies, 0,
			    (int)(sizeof malformed / sizeof *malformed));
	tcase_add_test(tc, test_token_too_long_is_refused);
	tcase_add_test(tc, test_rrsa_request_body);
	tcase_add_test(tc, test_imds_json);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
