/* The write route journal (uploader/up_journal.c) and the placeholder attribute
 * (uploader/up_place.c): what the agent trusts after a crash must read back exactly. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit_run.h"
#include "common/fs.h"
#include "uploader/up_journal.h"
#include "uploader/up_place.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/rwsplit-journal-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	fs_rm_rf(dir);
}

/* Awkward names: spaces, %, +, a newline, unicode, a lone "-". */
static const char *const names[] = { "a b/c%41+.bin", "line\nbreak", "ünï 文件", "-", "x" };

START_TEST(test_replay_after_reopen)
{
	up_journal j;
	ck_assert_int_eq(up_journal_open(&j, dir, "ckpt/", 7, 42), 0);
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		char key[64];
		snprintf(key, sizeof key, "ckpt/%s", names[i]);
		ck_assert_ptr_nonnull(up_journal_set(&j, names[i], key, (int)(i & 1), i * 10,
						     (int64_t)i * 1000000007, i + 100, "e t%ag"));
	}
	up_journal_drop(&j, "x");
	up_jent *e = up_journal_find(&j, "-");
	up_journal_move(&j, e, "moved/-");
	up_journal_mpu(&j, "id 1", "ckpt/big", 1);
	up_journal_mpu(&j, "id 2", "ckpt/big", 1);
	up_journal_mpu(&j, "id 1", "", 0);
	up_journal_close(&j);

	ck_assert_int_eq(up_journal_open(&j, dir, "ckpt/", 7, 42), 0);
	ck_assert_uint_eq(HASH_COUNT(j.ents), 4);
	ck_assert_ptr_null(up_journal_find(&j, "x"));
	ck_assert_ptr_null(up_journal_find(&j, "-"));
	e = up_journal_find(&j, "moved/-");
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->key, "ckpt/-"); /* the data is still under its old key */
	for (size_t i = 0; i < 3; i++) {
		e = up_journal_find(&j, names[i]);
		ck_assert_ptr_nonnull(e);
		char key[64];
		snprintf(key, sizeof key, "ckpt/%s", names[i]);
		ck_assert_str_eq(e->key, key);
		ck_assert_int_eq(e->remote, (int)(i & 1));
		ck_assert_uint_eq(e->size, i * 10);
		ck_assert_int_eq(e->mtime_ns, (int64_t)i * 1000000007);
		ck_assert_uint_eq(e->ino, i + 100);
		ck_assert_str_eq(e->etag, "e t%ag");
	}
	ck_assert(up_journal_key_used(&j, "ckpt/-", NULL));
	ck_assert(!up_journal_key_used(&j, "ckpt/x", NULL));
	ck_assert_uint_eq(HASH_COUNT(j.mpus), 1);
	ck_assert_str_eq(j.mpus->id, "id 2");
	ck_assert_str_eq(j.mpus->key, "ckpt/big");
	up_journal_close(&j);
}
END_TEST

/* A journal the agent did not write (planted, or corrupted): records naming a key outside
 * the route's prefix or a path outside the tree are dropped, and gone after compaction. */
START_TEST(test_records_outside_the_route_are_dropped)
{
	char path[128];
	snprintf(path, sizeof path, "%s/journal", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("T 1 2\n"
	      "U 1 0 3 0 e ckpt/good good\n"
	      "U 1 0 3 0 e data/train-00000.tar x\n"     /* the dataset, beside the route */
	      "U 1 0 3 0 e ckpt ckpt-exact\n"            /* the prefix without its slash */
	      "U 1 0 3 0 e ckpt/ empty-key\n"
	      "U 1 0 3 0 e ckpt/z ../../etc/passwd\n"
	      "U 1 0 3 0 e ckpt/w %2Fetc%2Fpasswd\n"
	      "U 1 0 3 0 e ckpt/v a/./b\n"
	      "M id1 data/big\n"
	      "M id2 ckpt/big\n", f);
	fclose(f);
	up_journal j;
	ck_assert_int_eq(up_journal_open(&j, dir, "ckpt/", 1, 2), 0);
	ck_assert_uint_eq(j.refused, 7);
	ck_assert_uint_eq(HASH_COUNT(j.ents), 1);
	ck_assert_ptr_nonnull(up_journal_find(&j, "good"));
	ck_assert_uint_eq(HASH_COUNT(j.mpus), 1);
	ck_assert_str_eq(j.mpus->key, "ckpt/big");
	up_journal_close(&j);
	ck_assert_int_eq(up_journal_open(&j, dir, "ckpt/", 1, 2), 0);
	ck_assert_uint_eq(j.refused, 0);
	ck_assert_uint_eq(HASH_COUNT(j.ents), 1);
	up_journal_close(&j);
}
END_TEST

START_TEST(test_torn_last_line_is_ignored)
{
	up_journal j;
	ck_assert_int_eq(up_journal_open(&j, dir, "ckpt/", 1, 2), 0);
	up_journal_set(&j, "kept", "ckpt/kept", 0, 1, 2, 3, "e");
	up_journal_close(&j);
	char path[128];
	snprintf(path, sizeof path, "%s/journal", dir);
	FILE *f = fopen(path, "a");
	ck_assert_ptr_nonnull(f);
	fputs("D kept", f); /* killed before the newline */
	fclose(f);
	ck_assert_int_eq(up_journal_open(&j, dir, "ckpt/", 1, 2), 0);
	ck_assert_ptr_nonnull(up_journal_find(&j, "kept"));
	up_journal_close(&j);
}
END_TEST

START_TEST(test_other_tree_is_set_aside)
{
	up_journal j;
	ck_assert_int_eq(up_journal_open(&j, dir, "ckpt/", 1, 2), 0);
	up_journal_set(&j, "old", "ckpt/old", 0, 1, 2, 3, "e");
	up_journal_close(&j);
	/* The tree was made anew (another inode): nothing of the old journal may be used to
	 * delete objects. */
	ck_assert_int_eq(up_journal_open(&j, dir, "ckpt/", 1, 99), 0);
	ck_assert_ptr_null(up_journal_find(&j, "old"));
	up_journal_close(&j);
	char old[128];
	snprintf(old, sizeof old, "%s/journal.old", dir);
	ck_assert_int_eq(access(old, F_OK), 0);
}
END_TEST

START_TEST(test_placeholder_attribute_round_trip)
{
	up_remote r = { .size = 123456789012ULL, .mtime = { .tv_sec = 1700000000, .tv_nsec = 5 },
			.marker_len = 151 };
	snprintf(r.etag, sizeof r.etag, "%s", "0123456789abcdef0123456789abcdef-13");
	char val[UP_PLACE_XATTR_MAX];
	size_t n = up_place_format(&r, val);
	up_remote back;
	ck_assert_int_eq(up_place_parse(val, n, &back), 0);
	ck_assert_uint_eq(back.size, r.size);
	ck_assert_int_eq(back.mtime.tv_sec, r.mtime.tv_sec);
	ck_assert_int_eq(back.mtime.tv_nsec, r.mtime.tv_nsec);
	ck_assert_uint_eq(back.marker_len, r.marker_len);
	ck_assert_str_eq(back.etag, r.etag);
	static const char *const bad[] = { "", "v2 1 2 3 4 e", "v1 x 2 3 4 e", "v1 1 2 1000000000 4 e",
					   "v1 1 2 -1 4 e", "v1 1 2 3" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_msg(up_place_parse(bad[i], strlen(bad[i]), &back) < 0, "accepted '%s'",
			      bad[i]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("journal");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_replay_after_reopen);
	tcase_add_test(tc, test_records_outside_the_route_are_dropped);
	tcase_add_test(tc, test_torn_last_line_is_ignored);
	tcase_add_test(tc, test_other_tree_is_set_aside);
	tcase_add_test(tc, test_placeholder_attribute_round_trip);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
