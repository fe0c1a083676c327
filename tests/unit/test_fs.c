/* fs_open_dir_safe (common/fs.c): the walk that keeps a shared node's other users out of
 * the trees and spools rwsplit makes. Table-driven: each case prepares a small tree below
 * a private temp dir, then opens one path with given flags and expects an errno and the
 * words of the reason. Owner cases chown to uid 65534 and so need root (as the test runs
 * in `make test`); without root they fail rather than pass silently. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit_run.h"
#include "common/fs.h"

#define OTHER 65534

static char top[64];

static void setup(void)
{
	snprintf(top, sizeof top, "/tmp/rwsplit-fs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(top));
}

static void teardown(void)
{
	fs_rm_rf(top);
}

static void at(char *out, size_t cap, const char *rel)
{
	snprintf(out, cap, "%s/%s", top, rel);
}

static void mkdir_mode(const char *rel, mode_t mode, uid_t owner)
{
	char p[256];
	at(p, sizeof p, rel);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	ck_assert_int_eq(chmod(p, mode), 0);
	if (owner != (uid_t)-1)
		ck_assert_int_eq(chown(p, owner, owner), 0);
}

/* How each case prepares the node. */
enum prep { NONE, LINKED_PARENT, OTHERS_LAST, OTHERS_PARENT, WORLD_PARENT, STICKY_PARENT,
	    OPEN_PRIVATE, FILE_PARENT, OTHERS_SHARED };

static const struct {
	const char *name;
	enum prep prep;
	const char *open;   /* below top */
	unsigned flags;
	int err;            /* 0: opens */
	const char *why;    /* words of the reason */
} cases[] = {
	{ "made from nothing", NONE, "a/b/c", 0, 0, NULL },
	{ "a linked parent", LINKED_PARENT, "link/c", 0, ELOOP, "symbolic link" },
	{ "a linked last", LINKED_PARENT, "link", 0, ELOOP, "symbolic link" },
	{ "the last owned by another", OTHERS_LAST, "theirs", 0, EPERM, "owned by another user" },
	{ "a parent owned by another", OTHERS_PARENT, "theirs/mine", 0, EPERM, "could replace" },
	{ "a world-writable parent", WORLD_PARENT, "open/mine", 0, EPERM, "not sticky" },
	{ "a sticky world-writable parent", STICKY_PARENT, "sticky/mine", 0, 0, NULL },
	{ "private but open to others", OPEN_PRIVATE, "open", FS_PRIVATE, EPERM, "0700" },
	{ "a file on the way", FILE_PARENT, "file/c", 0, ENOTDIR, "not a directory" },
	{ "shared and another's", OTHERS_SHARED, "shared", FS_SHARED, EPERM, "another user" },
	{ "shared, made here, exact mode", NONE, "spool", FS_SHARED, 0, NULL },
};

static void prepare(enum prep p)
{
	char a[256], b[256];
	switch (p) {
	case NONE:
		break;
	case LINKED_PARENT:
		mkdir_mode("real", 0755, (uid_t)-1);
		at(a, sizeof a, "real");
		at(b, sizeof b, "link");
		ck_assert_int_eq(symlink(a, b), 0);
		break;
	case OTHERS_LAST:
	case OTHERS_PARENT:
		mkdir_mode("theirs", 0777, OTHER);
		break;
	case WORLD_PARENT:
		mkdir_mode("open", 0777, (uid_t)-1);
		break;
	case STICKY_PARENT:
		mkdir_mode("sticky", 01777, (uid_t)-1);
		break;
	case OPEN_PRIVATE:
		mkdir_mode("open", 0755, (uid_t)-1);
		break;
	case FILE_PARENT:
		at(a, sizeof a, "file");
		close(open(a, O_CREAT | O_WRONLY, 0644));
		break;
	case OTHERS_SHARED:
		mkdir_mode("shared", 01777, OTHER);
		break;
	}
}

START_TEST(test_cases)
{
	char path[256], bad[512] = "";
	prepare(cases[_i].prep);
	at(path, sizeof path, cases[_i].open);
	int fd = fs_open_dir_safe(path, cases[_i].flags & FS_SHARED ? 01777 : 0700,
				  cases[_i].flags, bad, sizeof bad);
	if (!cases[_i].err) {
		ck_assert_msg(fd >= 0, "%s: %s", cases[_i].name, bad);
		struct stat st;
		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert(S_ISDIR(st.st_mode));
		if (cases[_i].flags & FS_SHARED)
			ck_assert_int_eq(st.st_mode & 07777, 01777); /* no umask */
		close(fd);
		return;
	}
	ck_assert_msg(fd == -cases[_i].err, "%s: got %d (%s), want -%d", cases[_i].name, fd, bad,
		      cases[_i].err);
	ck_assert_msg(strstr(bad, cases[_i].why) != NULL, "%s: reason %s", cases[_i].name, bad);
	/* the reason names the path up to the component at fault */
	ck_assert_msg(strncmp(bad, top, strlen(top)) == 0, "%s: reason %s", cases[_i].name, bad);
}
END_TEST

START_TEST(test_nothing_made_past_a_refusal)
{
	char path[256], under[256];
	mkdir_mode("open", 0777, (uid_t)-1);
	at(path, sizeof path, "open/a/b");
	ck_assert_int_eq(fs_open_dir_safe(path, 0755, 0, NULL, 0), -EPERM);
	at(under, sizeof under, "open/a");
	ck_assert_int_eq(access(under, F_OK), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fs");
	TCase *tc = tcase_create("open_dir_safe");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_cases, 0, (int)(sizeof cases / sizeof *cases));
	tcase_add_test(tc, test_nothing_made_past_a_refusal);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
