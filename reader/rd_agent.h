/* The fetch agent: one background process per user, cache directory, config and credentials
 * that holds the object-store client (libcurl, its connections, the credentials) for every
 * preloaded process of the node. A process that must fetch sends its GETs and LISTs to the
 * agent over a UNIX socket in the cache directory instead of loading the client library and
 * opening its own connections: that load and those connections cost every short-lived
 * process (a `cat`, a `cp`, a shell) more than the GETs themselves.
 *
 * Data never crosses the socket: a whole object is downloaded and published into the cache
 * by the agent (FETCH), and a range of a lazily filled object is written by the agent into
 * the caller's file, whose fd comes with the request (SCM_RIGHTS). Each calling thread
 * keeps one connection (SOCK_SEQPACKET: one message per request or reply, in order).
 *
 * The first process that finds no agent starts one (`rwsplit agent`, found beside the
 * library as ../bin/rwsplit or ./rwsplit) under a lock file. When there is none to be had, or
 * it dies, requests run in the calling process as before: nothing depends on it. A
 * process that has sent [global] agent_handoff requests fetches by itself from then on. It exits after [global] agent_idle without connections, or when its socket file
 * is removed (cache_dir deleted). */
#ifndef RWSPLIT_RD_AGENT_H
#define RWSPLIT_RD_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/lifecycle.h"
#include "config/cfg.h"
#include "s3/s3.h"

/* Bumped whenever a message changes: the socket name carries it, so processes of
 * different versions never talk to each other's agent. */
#define RD_AGENT_PROTO 2
#define RD_AGENT_WHY_MAX 512
/* Largest message either side sends; a LIST reply is split into messages of this size. */
#define RD_AGENT_MSG_MAX 65536
/* S3 keys are at most 1024 bytes; room for any store that allows more. */
#define RD_AGENT_KEY_MAX 4096

/* GET: a range of an object into the fd that comes with the request (a lazily filled cache
 * file). FETCH: an object whole into the cache (obj/), downloaded and published by the
 * agent itself, so that it is there for the next process even if the asking one exits
 * first. LIST: ListObjectsV2. */
enum rd_agent_op { RD_AGENT_GET = 1, RD_AGENT_LIST = 2, RD_AGENT_FETCH = 3 };

/* A request: this header, then NUL-terminated store name, bucket, key (GET, FETCH) or
 * prefix (LIST), and delimiter (LIST, "" for none) or ETag (GET, FETCH: the version to
 * read, "" for any). */
typedef struct rd_agent_req {
	uint32_t op;
	uint32_t max_keys;       /* LIST */
	uint32_t route;          /* FETCH: the read route's index in the config */
	uint32_t pad;
	uint64_t off, len;       /* GET: the object's range (len S3_TO_END for the rest) */
	int64_t fd_off;          /* GET: where the range goes in the fd */
	uint64_t size;           /* FETCH: the object as listed: size and mtime */
	int64_t mtime_sec, mtime_nsec;
} rd_agent_req;

/* The reply to a GET or a FETCH. */
typedef struct rd_agent_get_reply {
	int32_t rc;              /* 0 or -errno, as s3_get_fd */
	uint32_t fetched;        /* FETCH: the agent downloaded it (else it was cached) */
	uint64_t got;            /* bytes from the store */
	uint64_t evicted;        /* FETCH: objects evicted to make room */
	s3_object_info info;     /* GET */
	char why[RD_AGENT_WHY_MAX]; /* on failure: the store's error, readable */
} rd_agent_get_reply;

/* A LIST reply is messages of this header followed by n packed entries (more = 1), then
 * one with more = 0 that carries the result. Entry: rd_agent_packed, etag, key (no NULs). */
typedef struct rd_agent_list_head {
	uint32_t more;
	int32_t rc;              /* last message only: 0 or -errno, as s3_list */
	uint32_t n;
	uint32_t pad;
} rd_agent_list_head;

typedef struct rd_agent_packed {
	uint8_t is_prefix;
	uint8_t etag_len;
	uint16_t key_len;
	uint32_t pad;
	uint64_t size;
	int64_t mtime;
} rd_agent_packed;

/* Builds a request into buf (cap bytes, at most RD_AGENT_MSG_MAX are used): strings[0..3]
 * as above, NULL for "". Returns its length, or -ENAMETOOLONG. */
long rd_agent_req_pack(char *buf, size_t cap, const rd_agent_req *req,
		       const char *const strings[4]);

/* Splits a received request of n bytes: *req and pointers into buf for the four strings.
 * Returns 0, or -EPROTO for a malformed message. */
int rd_agent_req_unpack(char *buf, size_t n, rd_agent_req *req, const char *strings[4]);

/* Appends entry e to a LIST reply body at buf (cap bytes left). Returns the bytes used, or
 * 0 when it does not fit (send the message and start another; a key longer than
 * RD_AGENT_KEY_MAX never fits). */
size_t rd_agent_entry_pack(char *buf, size_t cap, const s3_list_entry *e);

/* Calls cb for each of the n entries packed in buf (len bytes). Returns 0, cb's first
 * non-zero result, or -EPROTO for a malformed body. */
int rd_agent_entries_each(const char *buf, size_t len, uint32_t n, s3_list_cb cb, void *arg);

/* Client side (rd_agent_client.c), used by rd_store.c. rd_agent_init notes c's config path
 * (at start-up, before the program can change directory); nothing else happens until the
 * first request. */
void rd_agent_init(const cfg *c);
/* Client side, continued. Each returns RD_AGENT_NONE when no
 * agent can serve the request (the caller then does it in-process), else what the s3
 * call returns, with why filled on failure. */
#define RD_AGENT_NONE 1
/* rd_agent_list only: the agent went away after some entries had reached cb. */
#define RD_AGENT_LOST 2
int rd_agent_get(const cfg_store *st, const char *bucket, const char *key, const char *etag,
		 uint64_t off, uint64_t len, int fd, off_t fd_off, uint64_t *got,
		 s3_object_info *info, char *why, size_t whylen);
int rd_agent_list(const cfg_store *st, const char *bucket, const char *prefix,
		  const char *delimiter, unsigned max_keys, s3_list_cb cb, void *arg, char *why,
		  size_t whylen);
/* FETCH of key (listed as st, with etag) for read route number route: *got, *fetched and
 * *evicted as in the reply. */
int rd_agent_fetch(size_t route, const char *key, const char *etag, const struct stat *st,
		   uint64_t *got, int *fetched, uint64_t *evicted, char *why, size_t whylen);
/* Server side (rd_agent_serve.c), for `rwsplit agent`: rd_agent_serve_init prepares c's
 * read routes for FETCH in the agent process (which fetches by itself and prefetches
 * nothing) and must come first; rd_agent_serve_fetch answers one FETCH into r. */
int rd_agent_serve_init(cfg *c);
/* The agent's client of the store named store (GET, LIST), as rd_client: NULL with *rc and
 * why set when there is no such store or no client. */
s3_client *rd_agent_serve_client(const char *store, int *rc, char *why, size_t whylen);
void rd_agent_serve_fetch(const rd_agent_req *req, const char *key, const char *etag,
			  rd_agent_get_reply *r);

/* Fork hooks (LC_AGENT_CLIENT): the child drops the connections it inherited (they are the
 * parent's). rd_init registers them. */
extern const lc_hooks rd_agent_fork_hooks;

#endif
