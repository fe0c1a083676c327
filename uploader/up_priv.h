/* Uploader internals shared by the files of uploader/. */
#ifndef RWSPLIT_UP_PRIV_H
#define RWSPLIT_UP_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

#include <uthash.h>

#include "router/rt.h"
#include "s3/s3_dl.h"
#include "uploader/up.h"

enum up_state {
	UP_WRITING,      /* fds open */
	UP_QUEUED,       /* closed, waiting for a worker */
	UP_UPLOADING,
	UP_FAILED,       /* the store refused; the spool keeps it for `rwsplit recover` */
};

typedef struct up_route up_route;

struct up_file {
	int refs;                /* open fds in this process; under up.lock */
	up_route *ur;
	char key[RT_KEY_MAX + 1];/* may change with rename; under up.lock */
	char data[PATH_MAX];     /* the spool file */
	char meta[PATH_MAX + 8]; /* its journal record */
	pid_t owner;             /* the process that created it uploads it */
	enum up_state state;
	int again;               /* written or renamed while uploading: upload once more */
	int removed;             /* unlinked: delete instead of upload */
	int synced;              /* fsync uploaded it as it was when synced_st was taken */
	int maybe_stored;        /* an object may exist under key (0: known absent), so a
				  * rename or unlink must delete it */
	uint64_t ready_ms;       /* queued: not uploaded before (CLOCK_REALTIME, ms) */
	struct stat synced_st;
	UT_hash_handle hh;       /* up.pending, by hkey */
	char hkey[RT_KEY_MAX + 24];
	struct up_file *next;    /* up.queue */
};

struct up_route {
	const cfg_route *cfg;
	size_t index;
	char root[PATH_MAX - 64];/* SPOOL/<route id> */
	char mine[PATH_MAX - 32];/* root/p<pid>-<start>: this process's files */
	int lock_fd;             /* held while the process lives */
	unsigned seq;
	int prepared;
};

/* A key this process renamed away or unlinked while an upload of it may still land: hidden
 * from listings and stat until that upload's own clean-up has deleted it. A listing whose
 * LIST was answered before that delete must still hide it, so while listings run a dropped
 * tombstone is kept with the generation it was dropped at. */
typedef struct up_tomb {
	char *hkey;
	uint64_t dropped;        /* 0: in force; else up.gen when dropped */
	UT_hash_handle hh;
} up_tomb;

/* A key an upload is under way for (on the uploading thread's stack). Two uploads of one key
 * never overlap: the later one would race the earlier, and the earlier's clean-up (deleting
 * a name renamed or unlinked meanwhile) could remove what the later one put. */
typedef struct up_inflight {
	const char *hkey;
	struct up_inflight *next;
} up_inflight;

/* Whether an upload of hkey is under way. Caller holds up.lock. */
int up_key_in_flight(const char *hkey);

typedef struct up_state_t {
	const cfg *cfg;
	up_hooks hooks;
	up_route *routes;        /* parallel to cfg->routes */
	pthread_mutex_t lock;    /* everything below, and every up_file's mutable fields */
	pthread_cond_t changed;  /* an upload finished */
	up_file *pending;        /* hash: files written and not yet uploaded */
	up_tomb *tombs;          /* hash by hkey */
	uint64_t gen;            /* counts tombstone drops */
	unsigned views;          /* LISTs of the store under way (up_view_begin) */
	up_file *queue, *queue_tail;
	struct up_inflight *inflight; /* keys being uploaded right now */
	unsigned workers, busy;
	unsigned recovering;     /* recovery threads running */
	int drained;
	uint64_t uploaded, uploaded_bytes, failed;
} up_state_t;

extern up_state_t up;

up_route *up_route_of(const cfg_route *r);

/* Creates this process's spool directory for ur once (and starts recovering what dead
 * processes left). Caller must not hold up.lock. Returns 0 or -errno. */
int up_prepare(up_route *ur);

/* Writes f's journal record (state "pending" or "failed"), creating it or replacing what
 * it held. Returns 0 or -errno. */
int up_write_meta(const up_file *f, const char *state, unsigned attempts);

/* The object key of rest (dir: with a trailing '/'). Returns 0 or -ENAMETOOLONG. */
int up_key(const up_route *ur, const char *rest, int dir, char *key, size_t cap);

/* "<route index>\n<key>", the pending hash key. */
void up_hkey(const up_route *ur, const char *key, char *out, size_t cap);

/* Tombstones (see up_tomb). Caller holds up.lock. up_tomb_has tells whether key is hidden
 * from a view of the store taken at generation since; up_tomb_below whether any key below
 * prefix is. */
void up_tomb_add(const up_route *ur, const char *key);
void up_tomb_drop(const up_route *ur, const char *key);
int up_tomb_has(const up_route *ur, const char *key, uint64_t since);
int up_tomb_below(const up_route *ur, const char *prefix, uint64_t since);

/* Brackets a LIST of the store whose answer tombstones must filter: returns the generation
 * to pass to up_tomb_has. Caller holds up.lock. */
uint64_t up_view_begin(void);
void up_view_end(void);

/* Pending file for key, or NULL. Caller holds up.lock. */
up_file *up_find(const up_route *ur, const char *key);

/* Uploads a spool file to bucket/key: PutObject, or multipart with parallel parts at or
 * above the route's threshold. A multipart upload's id is appended to the journal record
 * meta (when not NULL) so that recovery can abort it if this process dies midway. Returns 0
 * or -errno. */
int up_put(const up_route *ur, const char *key, const char *data, const char *meta,
	   int *attempts);

/* Queues f (caller holds up.lock) and makes sure a worker will take it. */
void up_enqueue(up_file *f);

/* Takes queued f off the queue (caller holds up.lock); it is then UP_WRITING. */
void up_dequeue(up_file *f);

/* Uploads f on the calling thread (fsync). Caller holds up.lock; it is released while the
 * data moves. */
int up_upload_now(up_file *f);

/* Removes a spool file and its journal record. */
void up_discard(const char *data, const char *meta);

s3_client *up_client(const up_route *ur, int *err);

/* The route's client and the loaded client library. Returns 0, or -errno (logged) when the
 * store cannot be used. */
int up_store(const up_route *ur, s3_client **c, const s3_api **api);


/* Uploads what dead processes (killed workers, say) left in the spools this process uses;
 * on the calling thread. Caller must not hold up.lock. */
void up_recover_dead(void);

/* At exit: removes this process's listing directories and, when no upload is left in it,
 * its spool directory. Caller holds up.lock. */
void up_spool_tidy(up_route *ur);

#endif
