/* The journal of a write route's tree: for each file, what the store holds for it (the key
 * its data is under, and the size, modification time and inode it had when uploaded), and
 * the multipart uploads under way. It is what the agent compares the tree with when it
 * takes a tree over, after a crash or a node restart. Agent side only.
 *
 * On disk, SPOOL/u<uid>/<id>/journal is a log of lines, replayed at start and rewritten
 * whole (compacted) then: "T dev ino" (the tree it describes), "U size mtime_ns ino remote
 * etag key rel" (set), "D rel" (gone), "M id key" (multipart started), "m id" (ended).
 * Fields are %XX-escaped. A torn last line is ignored. */
#ifndef RWSPLIT_UP_JOURNAL_H
#define RWSPLIT_UP_JOURNAL_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <uthash.h>

typedef struct up_jent {
	char *rel;               /* the file's path in the tree; hash key */
	char *key;               /* the object its data is under (may differ after a rename
				  * that is not mirrored yet) */
	int remote;              /* a placeholder: the data is only in the store */
	uint64_t size;
	int64_t mtime_ns;
	uint64_t ino;
	char etag[80];
	UT_hash_handle hh;
} up_jent;

typedef struct up_mpu_rec {
	char *id;
	char *key;
	UT_hash_handle hh;
} up_mpu_rec;

typedef struct up_journal {
	FILE *f;                 /* append */
	char path[4096];
	up_jent *ents;
	up_mpu_rec *mpus;        /* started and not ended */
	int failed;              /* a write failed: logged once */
	const char *prefix;      /* the route's key prefix, while replaying (not owned) */
	unsigned refused;        /* records dropped by the replay (outside the route) */
} up_journal;

/* Opens dir/journal, replays it for the tree (dev, ino) and rewrites it compacted. A journal
 * of another tree (the directory was made anew: a new pod's emptyDir) is set aside as
 * journal.old and an empty one started. A record whose key does not start with prefix (the
 * route's, "" for the whole bucket) or whose path would leave the tree (absolute, empty, a
 * "." or ".." component) is dropped with a warning: the agent deletes and copies the keys
 * it finds here, and must never touch one outside its route. Returns 0 or -errno. */
int up_journal_open(up_journal *j, const char *dir, const char *prefix, dev_t dev, ino_t ino);

/* Sets rel's entry (replacing any) and logs it. key is copied. Returns the entry. */
up_jent *up_journal_set(up_journal *j, const char *rel, const char *key, int remote,
			uint64_t size, int64_t mtime_ns, uint64_t ino, const char *etag);

/* Moves an entry to another path (a rename in the tree), replacing what is there. */
void up_journal_move(up_journal *j, up_jent *e, const char *to);

/* Drops rel's entry, if any, and logs it. */
void up_journal_drop(up_journal *j, const char *rel);

up_jent *up_journal_find(up_journal *j, const char *rel);

/* Whether an entry other than except has its data under key. */
int up_journal_key_used(up_journal *j, const char *key, const up_jent *except);

void up_journal_mpu(up_journal *j, const char *id, const char *key, int started);

void up_journal_close(up_journal *j);

#endif
