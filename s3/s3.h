/* The object-store client: S3 REST over libcurl, SigV4 (OpenSSL), S3 XML (libxml2).
 *
 * A client is created from a cfg_store and is safe to use from many threads at once: its
 * settings are immutable, idle connections live in a mutex-protected pool of curl handles and
 * credentials are read under a lock. It knows nothing of files, fds or routes.
 *
 * Every operation returns 0 on success or a negative errno:
 *   -ENOENT  404 (NoSuchKey, NoSuchBucket, NoSuchUpload)
 *   -EACCES  403 (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch), no credentials
 *   -ENAMETOOLONG  key longer than 1024 bytes (checked before any request)
 *   -EINVAL  other 4xx (bad request, entity too small, invalid part order, ...)
 *   -EEXIST  412 PreconditionFailed (conditional writes)
 *   -ESTALE  412 on a GET with if_match: the object was overwritten (s3_get_fd)
 *   -EIO     retries exhausted (connection errors, timeouts, 5xx, SlowDown), malformed XML
 *   -ECANCELED  the process is exiting (see s3_shutdown in s3_request.h)
 *   -ENOMEM, and errno values from local I/O on the caller's fd (e.g. -ENOSPC)
 * Transient failures (connect errors, timeouts, 408/429/500/502/503/504, SlowDown) are retried
 * with exponential backoff and full jitter until the store's retry_time or max_attempts runs out.
 * When err is not NULL it receives the last HTTP status, S3 error code, message and request id
 * (never credentials), for logs. */
#ifndef RWSPLIT_S3_H
#define RWSPLIT_S3_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config/cfg.h"

/* The client's functions are exported from librwsplit-s3.so (everything else is hidden). */
#define S3_API __attribute__((visibility("default")))

#define S3_KEY_MAX 1024
#define S3_TO_END UINT64_MAX /* length meaning "through the end of the object" */
#define S3_MIN_PART_SIZE (5ULL << 20)
#define S3_MAX_PARTS 10000

typedef struct s3_client s3_client;

typedef struct s3_error {
	int status;           /* HTTP status of the last attempt, 0 if none was received */
	int attempts;         /* requests sent */
	char code[64];        /* S3 error code ("NoSuchKey"), or a curl error name */
	char message[256];
	char request_id[64];
} s3_error;

typedef struct s3_object_info {
	uint64_t size;        /* whole object size (from Content-Length or Content-Range) */
	time_t mtime;         /* Last-Modified */
	char etag[80];        /* as sent by the store, quotes removed */
} s3_object_info;

typedef struct s3_client_opts {
	const cfg_store *store;   /* endpoint, region, addressing, TLS, timeouts, credentials */
} s3_client_opts;

/* Creates a client for store. Credentials are resolved now (env, file) and re-read from a
 * file source when it changes. Returns 0 and *out (free with s3_client_free), or -errno;
 * a store with no credentials at all is an error (-EACCES) with a message in err. */
S3_API int s3_client_new(const cfg_store *store, s3_client **out, s3_error *err);
S3_API void s3_client_free(s3_client *c);

/* Fork hooks of c: prepare takes its locks (credentials, then the connection pool) so that
 * no other thread holds one at the fork; parent releases them. In the child, after_fork
 * drops (without closing the parent's sockets) the pooled connections inherited from the
 * parent and releases the locks; call it before using c there. */
S3_API void s3_client_fork_prepare(s3_client *c);
S3_API void s3_client_fork_parent(s3_client *c);
S3_API void s3_client_after_fork(s3_client *c);

/* Describes where the credentials came from ("env AWS_ACCESS_KEY_ID", "file PATH [profile]")
 * into buf; never the secret. */
S3_API void s3_client_cred_source(s3_client *c, char *buf, size_t len);

S3_API int s3_head_bucket(s3_client *c, const char *bucket, s3_error *err);

S3_API int s3_head_object(s3_client *c, const char *bucket, const char *key, s3_object_info *info,
		   s3_error *err);

/* Reads len bytes (S3_TO_END for all) from offset off of the object into buf (cap bytes).
 * *got receives the number of bytes stored; reading at or past the end gives 0 bytes and
 * success. info (optional) receives the object's size, mtime and etag.
 * if_match (NULL or "" for any) is the ETag, without quotes, of the version to read: the
 * request carries If-Match, and -ESTALE means the key now holds another version (412).
 * Without it, a retry that resumes a partial body still pins the version the first
 * response named, so one call never mixes two versions. */
S3_API int s3_get_buf(s3_client *c, const char *bucket, const char *key, const char *if_match,
		      uint64_t off, uint64_t len, void *buf, size_t cap, size_t *got,
		      s3_object_info *info, s3_error *err);

/* Like s3_get_buf but writes with pwrite() into fd starting at file offset fd_off, streaming
 * (no full copy in memory). A retried request resumes after the bytes already written. */
S3_API int s3_get_fd(s3_client *c, const char *bucket, const char *key, const char *if_match,
		     uint64_t off, uint64_t len, int fd, off_t fd_off, uint64_t *got,
		     s3_object_info *info, s3_error *err);

/* PutObject of len bytes read with pread() from fd at offset off (streamed, retried from the
 * start). etag (optional, 80 bytes) receives the new object's ETag. */
S3_API int s3_put_fd(s3_client *c, const char *bucket, const char *key, int fd, off_t off,
	      uint64_t len, char *etag, s3_error *err);

S3_API int s3_put_buf(s3_client *c, const char *bucket, const char *key, const void *data,
	       size_t len, char *etag, s3_error *err);

/* Deleting a key that does not exist succeeds (S3 semantics). */
S3_API int s3_delete(s3_client *c, const char *bucket, const char *key, s3_error *err);

/* Server-side copy (objects up to 5 GiB). */
S3_API int s3_copy(s3_client *c, const char *src_bucket, const char *src_key, const char *dst_bucket,
	    const char *dst_key, char *etag, s3_error *err);

/* One listing entry. Strings are valid only during the callback. */
typedef struct s3_list_entry {
	int is_prefix;        /* a CommonPrefixes entry ("dir/"): only key is set */
	const char *key;      /* full key (decoded) */
	uint64_t size;
	time_t mtime;
	const char *etag;
} s3_list_entry;

/* Return 0 to continue, anything else to stop the listing (returned from s3_list). */
typedef int (*s3_list_cb)(void *arg, const s3_list_entry *e);

/* ListObjectsV2 of prefix with optional delimiter (NULL or ""), following continuation tokens
 * through all pages; max_keys 0 means all, otherwise stop after that many entries. */
S3_API int s3_list(s3_client *c, const char *bucket, const char *prefix, const char *delimiter,
	    unsigned max_keys, s3_list_cb cb, void *arg, s3_error *err);

/* Multipart upload. upload_id buffers are S3_UPLOAD_ID_MAX bytes. */
#define S3_UPLOAD_ID_MAX 256
typedef struct s3_part {
	int number;           /* 1..10000 */
	char etag[80];
} s3_part;

/* CreateMultipartUpload. If a response was lost and the request retried, the store may hold
 * an upload the client never heard of, billed until aborted: after a retried create, the
 * key's uploads that the store initiated while this call ran, other than the one returned,
 * are aborted. */
S3_API int s3_mpu_create(s3_client *c, const char *bucket, const char *key, char *upload_id,
			 s3_error *err);
S3_API int s3_mpu_part_fd(s3_client *c, const char *bucket, const char *key, const char *upload_id,
		   int number, int fd, off_t off, uint64_t len, s3_part *part, s3_error *err);
/* parts must be in ascending part number order. A retried complete that the store answers
 * with NoSuchUpload (the first attempt's response was lost after it completed) is checked
 * with a HEAD: when the key holds the object these parts make (the multipart ETag, md5 of
 * the parts' md5s and "-N"), it succeeds with that ETag; otherwise -ENOENT as before. */
S3_API int s3_mpu_complete(s3_client *c, const char *bucket, const char *key, const char *upload_id,
		    const s3_part *parts, int nparts, char *etag, s3_error *err);
S3_API int s3_mpu_abort(s3_client *c, const char *bucket, const char *key, const char *upload_id,
		 s3_error *err);

/* In-progress multipart uploads of keys starting with prefix (ListMultipartUploads, first
 * 1000). cb gets each key, upload id and when the store initiated it (its clock; 0 if not
 * given); returning non-zero stops. */
typedef int (*s3_upload_cb)(void *arg, const char *key, const char *upload_id,
			    time_t initiated);
S3_API int s3_mpu_list(s3_client *c, const char *bucket, const char *prefix, s3_upload_cb cb,
		       void *arg, s3_error *err);

/* One line for a log: "NoSuchKey (404) ... request-id X" from err. */
S3_API const char *s3_error_str(const s3_error *err, char *buf, size_t len);

/* Counters, for the stats line and the CLI. */
typedef struct s3_stats {
	uint64_t requests, retries, bytes_in, bytes_out;
} s3_stats;
S3_API void s3_client_stats(s3_client *c, s3_stats *out);

#endif
