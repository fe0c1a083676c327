/* One S3 REST request and its execution (signing, transport, retries, error translation).
 * Private to s3/: the operations in s3_ops.c fill an s3_request and call s3_perform. */
#ifndef RWSPLIT_S3_REQUEST_H
#define RWSPLIT_S3_REQUEST_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <curl/curl.h>

#include "common/sb.h"
#include "s3/s3.h"
#include "s3/s3_creds.h"
#include "s3/s3_sigv4.h"

#define S3_POOL_MAX 64
/* Buffers that gather a GET's body before it is written to a file (s3_transport.c): at
 * most this many per client, so that a process with a hundred fetching threads does not
 * keep a hundred of them; a GET that finds none free writes curl's pieces directly. */
#define S3_BATCH_MAX 32
#define S3_BATCH_BYTES (128 * 1024)
#define S3_MAX_EXTRA 6

struct s3_client {
	const cfg_store *store;   /* borrowed: must outlive the client */
	char *scheme;             /* "http" or "https" */
	char *host;               /* "host[:port]" as written in the endpoint */
	int virtual_host;
	s3_creds *creds;
	pthread_mutex_t pool_lock;
	CURL *pool[S3_POOL_MAX];  /* idle handles; each keeps its connections alive */
	int npool;
	char *batch[S3_BATCH_MAX]; /* idle body buffers of S3_BATCH_BYTES (under pool_lock) */
	int nbatch;               /* idle ones in batch[] */
	int nbatch_made;          /* allocated, idle or in use */
	atomic_uint_fast64_t requests, retries, bytes_in, bytes_out;
};

enum s3_body { S3_BODY_NONE, S3_BODY_MEM, S3_BODY_FD };
enum s3_sink { S3_SINK_DISCARD, S3_SINK_MEM, S3_SINK_BUF, S3_SINK_FD };

typedef struct s3_request {
	/* what to send */
	const char *method;
	const char *bucket;
	const char *key;          /* NULL for bucket-level requests */
	s3_kv query[S3_MAX_EXTRA];
	size_t nquery;
	s3_kv headers[S3_MAX_EXTRA]; /* extra headers; x-amz-* ones are signed */
	size_t nheaders;
	enum s3_body body;
	const void *body_mem;
	int body_fd;
	off_t body_off;
	uint64_t body_len;
	/* byte range to GET; range_len S3_TO_END = open-ended, (0, S3_TO_END) = no Range */
	uint64_t range_off, range_len;
	int check_200_error;      /* the 200 body may be an <Error> (CompleteMPU, CopyObject) */
	const char *if_match;     /* GET: the version to read (ETag without quotes), or NULL */

	/* where the response body goes */
	enum s3_sink sink;
	sb mem;                   /* S3_SINK_MEM; owned by the request, free with s3_request_free */
	char *buf;                /* S3_SINK_BUF */
	size_t cap;
	int sink_fd;              /* S3_SINK_FD */
	off_t sink_off;
	uint64_t delivered;       /* body bytes given to the sink, across retries */
	unsigned sent;            /* times the request went on the wire (libcurl's re-sends on a
				   * dead reused connection included; e->attempts are ours) */

	/* what came back (last attempt) */
	int status;
	uint64_t content_length;
	uint64_t total_size;      /* from Content-Range "bytes a-b/total" */
	int has_content_range;
	char etag[80];
	time_t last_modified;
	time_t date;              /* the store's clock (Date), 0 if not sent */
	char request_id[64];
} s3_request;

/* Runs req to completion: signs each attempt, retries transient failures with backoff until
 * the store's retry_time / max_attempts run out, and translates the outcome to 0 or -errno.
 * err (optional) gets the last status, S3 code, message and request id. */
int s3_perform(s3_client *c, s3_request *req, s3_error *err);

/* Frees what the request owns (the memory sink). */
void s3_request_free(s3_request *req);

/* s3_perform, then s3_request_free. */
int s3_run(s3_client *c, s3_request *req, s3_error *err);

/* 0, or -EINVAL for an empty key, -ENAMETOOLONG for one over S3_KEY_MAX bytes. */
static inline int s3_check_key(const char *key)
{
	if (!key || !*key)
		return -EINVAL;
	return strlen(key) > S3_KEY_MAX ? -ENAMETOOLONG : 0;
}

/* Adds query parameter name (value NULL for a bare "?uploads"); both strings must outlive r. */
static inline void s3_query(s3_request *r, const char *name, const char *value)
{
	r->query[r->nquery++] = (s3_kv){ name, value };
}

/* Process exit: the library's finalizer runs before libcrypto's (it depends on it), so it
 * stops new requests, aborts transfers in progress and waits (briefly) for them to leave the
 * client; worker threads must not be inside OpenSSL when it cleans up. */
void s3_shutdown(void);

/* What every handle of a store gets: no signals, errbuf (CURL_ERROR_SIZE) for messages, the
 * user agent, the connect timeout and the store's TLS settings (verification, CA bundle). */
void s3_curl_store_options(CURL *h, const cfg_store *st, char *errbuf);

/* errno for an S3 error code and HTTP status (code may be ""). */
int s3_errno_for(int status, const char *code);

/* True when the failure should be retried. */
int s3_is_retryable(int status, const char *code);

#endif
