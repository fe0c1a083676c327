/* The fetch agent's messages (reader/rd_agent_wire.c): requests and LIST bodies survive a
 * round trip with awkward keys, and every malformed message is refused rather than read past
 * its end. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unit_run.h"
#include "reader/rd_agent.h"

static char buf[RD_AGENT_MSG_MAX];

static const char *const keys[] = {
	"data/d0/f00001.bin",
	"odd/ünï cødé %41+=.bin",
	"with space/and\ttab",
	"",
};

START_TEST(test_request_round_trip)
{
	rd_agent_req req = { .op = RD_AGENT_GET, .max_keys = 7, .off = 1ULL << 40,
			     .len = S3_TO_END, .fd_off = 12345 };
	const char *in[4] = { "store-a", "bucket", keys[_i], "/" };
	long n = rd_agent_req_pack(buf, sizeof buf, &req, in);
	ck_assert_int_gt(n, (long)sizeof req);
	rd_agent_req out;
	const char *s[4];
	ck_assert_int_eq(rd_agent_req_unpack(buf, (size_t)n, &out, s), 0);
	ck_assert_uint_eq(out.op, RD_AGENT_GET);
	ck_assert_uint_eq(out.max_keys, 7);
	ck_assert_uint_eq(out.off, 1ULL << 40);
	ck_assert_uint_eq(out.len, S3_TO_END);
	ck_assert_int_eq(out.fd_off, 12345);
	for (int i = 0; i < 4; i++)
		ck_assert_str_eq(s[i], in[i]);
}
END_TEST

START_TEST(test_request_null_strings_are_empty)
{
	rd_agent_req req = { .op = RD_AGENT_LIST };
	const char *in[4] = { "", "bucket", "prefix/", NULL };
	long n = rd_agent_req_pack(buf, sizeof buf, &req, in);
	rd_agent_req out;
	const char *s[4];
	ck_assert_int_eq(rd_agent_req_unpack(buf, (size_t)n, &out, s), 0);
	ck_assert_str_eq(s[3], "");
}
END_TEST

START_TEST(test_request_too_long)
{
	char *big = malloc(RD_AGENT_MSG_MAX);
	ck_assert_ptr_nonnull(big);
	memset(big, 'k', RD_AGENT_MSG_MAX - 1);
	big[RD_AGENT_MSG_MAX - 1] = '\0';
	rd_agent_req req = { .op = RD_AGENT_GET };
	const char *in[4] = { "", "bucket", big, "" };
	ck_assert_int_eq(rd_agent_req_pack(buf, sizeof buf, &req, in), -ENAMETOOLONG);
	/* The caller's buffer is the limit when it is smaller. */
	const char *small[4] = { "", "bucket", "key", "" };
	ck_assert_int_eq(rd_agent_req_pack(buf, sizeof(rd_agent_req) + 12, &req, small),
			 -ENAMETOOLONG);
	ck_assert_int_eq(rd_agent_req_pack(buf, sizeof(rd_agent_req) + 13, &req, small),
			 (long)sizeof(rd_agent_req) + 13);
	free(big);
}
END_TEST

/* Cut a valid request anywhere, or leave out a terminator, or add a byte: refused. */
START_TEST(test_request_malformed)
{
	rd_agent_req req = { .op = RD_AGENT_GET };
	const char *in[4] = { "s", "bucket", "key", "" };
	long n = rd_agent_req_pack(buf, sizeof buf, &req, in);
	rd_agent_req out;
	const char *s[4];
	for (long cut = 0; cut < n; cut++)
		ck_assert_msg(rd_agent_req_unpack(buf, (size_t)cut, &out, s) == -EPROTO,
			      "accepted %ld of %ld bytes", cut, n);
	buf[n] = 'x';
	ck_assert_int_eq(rd_agent_req_unpack(buf, (size_t)n + 1, &out, s), -EPROTO);
	buf[n - 1] = 'x'; /* the last string loses its NUL */
	ck_assert_int_eq(rd_agent_req_unpack(buf, (size_t)n, &out, s), -EPROTO);
}
END_TEST

typedef struct seen {
	int n;
	int stop_after;
	s3_list_entry e[8];
	char key[8][64], etag[8][64];
} seen;

static int remember(void *arg, const s3_list_entry *e)
{
	seen *s = arg;
	s->e[s->n] = *e;
	strcpy(s->key[s->n], e->key);
	strcpy(s->etag[s->n], e->etag);
	s->n++;
	return s->n == s->stop_after ? 42 : 0;
}

static size_t pack_three(void)
{
	const s3_list_entry in[] = {
		{ .key = "p/a.bin", .size = 1, .mtime = 1700000000, .etag = "0123abcd" },
		{ .is_prefix = 1, .key = "p/sub/", .etag = NULL },
		{ .key = "p/ünï %2F+.bin", .size = 1ULL << 40, .mtime = 0, .etag = "ab-3" },
	};
	size_t len = 0;
	for (size_t i = 0; i < 3; i++) {
		size_t used = rd_agent_entry_pack(buf + len, sizeof buf - len, &in[i]);
		ck_assert_uint_gt(used, 0);
		len += used;
	}
	return len;
}

START_TEST(test_entries_round_trip)
{
	size_t len = pack_three();
	seen s = { .stop_after = -1 };
	ck_assert_int_eq(rd_agent_entries_each(buf, len, 3, remember, &s), 0);
	ck_assert_int_eq(s.n, 3);
	ck_assert_str_eq(s.key[0], "p/a.bin");
	ck_assert_str_eq(s.etag[0], "0123abcd");
	ck_assert_uint_eq(s.e[0].size, 1);
	ck_assert_int_eq(s.e[0].mtime, 1700000000);
	ck_assert_int_eq(s.e[1].is_prefix, 1);
	ck_assert_str_eq(s.key[1], "p/sub/");
	ck_assert_str_eq(s.etag[1], "");
	ck_assert_str_eq(s.key[2], "p/ünï %2F+.bin");
	ck_assert_uint_eq(s.e[2].size, 1ULL << 40);
}
END_TEST

START_TEST(test_entries_callback_stops)
{
	size_t len = pack_three();
	seen s = { .stop_after = 2 };
	ck_assert_int_eq(rd_agent_entries_each(buf, len, 3, remember, &s), 42);
	ck_assert_int_eq(s.n, 2);
}
END_TEST

START_TEST(test_entries_malformed)
{
	size_t len = pack_three();
	seen s = { .stop_after = -1 };
	/* A count larger than the body, a body cut short, trailing bytes. */
	ck_assert_int_eq(rd_agent_entries_each(buf, len, 4, remember, &s), -EPROTO);
	s.n = 0;
	ck_assert_int_eq(rd_agent_entries_each(buf, len - 1, 3, remember, &s), -EPROTO);
	s.n = 0;
	ck_assert_int_eq(rd_agent_entries_each(buf, len, 2, remember, &s), -EPROTO);
}
END_TEST

START_TEST(test_entry_that_does_not_fit)
{
	const s3_list_entry e = { .key = "p/a.bin", .etag = "0123" };
	ck_assert_uint_eq(rd_agent_entry_pack(buf, sizeof(rd_agent_packed) + 4 + 6, &e), 0);
	ck_assert_uint_eq(rd_agent_entry_pack(buf, sizeof(rd_agent_packed) + 4 + 7, &e),
			  sizeof(rd_agent_packed) + 11);
	char *key = malloc(RD_AGENT_KEY_MAX + 2);
	ck_assert_ptr_nonnull(key);
	memset(key, 'k', RD_AGENT_KEY_MAX + 1);
	key[RD_AGENT_KEY_MAX + 1] = '\0';
	const s3_list_entry long_key = { .key = key };
	ck_assert_uint_eq(rd_agent_entry_pack(buf, sizeof buf, &long_key), 0);
	free(key);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agent_wire");
	TCase *tc = tcase_create("agent_wire");
	tcase_add_loop_test(tc, test_request_round_trip, 0, sizeof keys / sizeof keys[0]);
	tcase_add_test(tc, test_request_null_strings_are_empty);
	tcase_add_test(tc, test_request_too_long);
	tcase_add_test(tc, test_request_malformed);
	tcase_add_test(tc, test_entries_round_trip);
	tcase_add_test(tc, test_entries_callback_stops);
	tcase_add_test(tc, test_entries_malformed);
	tcase_add_test(tc, test_entry_that_does_not_fit);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
