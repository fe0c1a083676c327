/* The protocol between preloaded processes and a write route's agent, and the names both
 * sides derive from a route: its state directory and its socket.
 *
 * The socket is a SOCK_SEQPACKET one in the abstract namespace (no file a local user could
 * replace); both ends check that the other runs as the same user (SO_PEERCRED). A request
 * is an up_req followed by a NUL-terminated route-relative path; the reply is one up_reply.
 * A process keeps its ATTACH connection open for its lifetime: the agent does not exit
 * while a process may still write into its tree. */
#ifndef RWSPLIT_UP_WIRE_H
#define RWSPLIT_UP_WIRE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "config/cfg.h"

/* Bumped whenever a message changes: it is part of the socket name. */
#define UP_PROTO 1

enum up_op {
	UP_ATTACH = 1, /* wait until the agent has taken the tree over */
	UP_FETCH = 2,  /* download the object behind the placeholder at path */
	UP_SYNC = 3,   /* upload path now (fsync) */
	UP_DRAIN = 4,  /* wait until every closed file of the tree is in the store */
	UP_STATS = 5,  /* the totals, and what is pending and failed now (changes nothing) */
};

typedef struct up_req {
	uint32_t op;
	uint32_t timeout_ms;     /* DRAIN */
} up_req;

#define UP_WHY_MAX 256
typedef struct up_reply {
	int32_t rc;              /* 0 or -errno */
	uint32_t pad;
	uint64_t uploaded, bytes;/* the agent's totals since it started */
	uint64_t pending, failed;/* DRAIN: left when it returned; failed uploads */
	uint64_t pending_bytes;  /* STATS: the size of the files pending */
	uint64_t retries;        /* STATS: requests the agent's client sent again */
	char why[UP_WHY_MAX];
} up_reply;

#define UP_MSG_MAX (sizeof(up_req) + PATH_MAX + 1)

/* The route's state directory, SPOOL/u<uid>/<id> (journal, lock), into out. Returns 0 or
 * -ENAMETOOLONG. */
int up_state_dir(const cfg_route *r, char *out, size_t cap);

/* The abstract socket address of r's agent. Returns the length to pass to bind/connect. */
socklen_t up_socket_addr(const cfg_route *r, struct sockaddr_un *a);

/* Creates r's state directory as needed and writes its path into out: the spool shared
 * like /tmp (01777), then u<uid>/<id> private to the caller, every level checked with
 * fs_open_dir_safe (no link, right owner and mode). Returns 0 or -errno; bad (badcap
 * bytes) then says which directory is at fault and why. */
int up_state_make(const cfg_route *r, char *out, size_t cap, char *bad, size_t badcap);

#endif
