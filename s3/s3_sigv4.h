/* AWS Signature Version 4, as a pure function of a request description: no clock, no I/O.
 * The same code signs S3 requests (normalize_path = 0, the key encoded once) and the generic
 * AWS test-suite requests (normalize_path as the vector says). */
#ifndef RWSPLIT_S3_SIGV4_H
#define RWSPLIT_S3_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "common/sb.h"

typedef struct s3_kv {
	const char *name;
	const char *value;
} s3_kv;

typedef struct s3_sign_req {
	const char *method;        /* "GET", "PUT", ... */
	const char *path;          /* decoded path as it names the resource, e.g. "/bkt/a b+c";
	                            * bytes outside A-Za-z0-9-._~/ are percent-encoded once */
	const s3_kv *query;        /* decoded query parameters, any order; value NULL or "" = no value */
	size_t nquery;
	const s3_kv *headers;      /* headers to sign, any case and order; duplicates are joined
	                            * with ',' and values trimmed, inner runs of spaces folded */
	size_t nheaders;
	const char *payload_hash;  /* lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
	const char *region;
	const char *service;       /* "s3" */
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL or "" when none */
	time_t when;               /* signing time (UTC seconds) */
	int normalize_path;        /* remove "." / ".." / "//" (never for S3) */
	int omit_session_token;    /* sign without x-amz-security-token and add it afterwards */
	int add_content_sha256;    /* sign an x-amz-content-sha256 header carrying payload_hash */
	unsigned expires;          /* presigning only: X-Amz-Expires seconds */
} s3_sign_req;

/* The result of signing. Every string is owned by this struct; free with s3_sign_out_free. */
typedef struct s3_sign_out {
	sb canonical_request;
	sb string_to_sign;
	char signature[65];
	char amz_date[17];         /* "YYYYMMDDTHHMMSSZ" */
	sb authorization;          /* header signing: the Authorization header's value */
	sb query;                  /* the canonical query string, ready to put after '?' on the
	                            * wire; when presigning it includes the X-Amz-* parameters
	                            * and X-Amz-Signature */
	sb canonical_uri;          /* the encoded path as it must be sent on the wire */
} s3_sign_out;

/* Header signing: fills out (canonical request, string to sign, signature, Authorization).
 * The caller must also send "x-amz-date: out->amz_date", the session token header when one is
 * given, and x-amz-content-sha256 when add_content_sha256 is set (the signed values).
 * Returns 0, or -ENOMEM. out must be zero-initialized; free it with s3_sign_out_free. */
int s3_sign_headers(const s3_sign_req *req, s3_sign_out *out);

/* Query (presigned URL) signing with X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders
 * (and X-Amz-Security-Token) added to the query. Returns 0, or -ENOMEM. */
int s3_sign_query(const s3_sign_req *req, s3_sign_out *out);

void s3_sign_out_free(s3_sign_out *out);

/* Percent-encodes src (len bytes) into s per SigV4: unreserved bytes stay, everything else
 * becomes %XX (uppercase); '/' stays when keep_slash is set. */
void s3_uri_encode(sb *s, const char *src, size_t len, int keep_slash);

/* Decodes %XX sequences (and nothing else) of src into s. Returns 0, or -1 on a malformed
 * escape. */
int s3_uri_decode(sb *s, const char *src, size_t len);

/* Lowercase hex SHA-256 of data into hex (65 bytes incl. NUL). */
void s3_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
