/* Parsing (libxml2) and building of the S3 XML bodies the client uses. Input is untrusted:
 * malformed, truncated or unexpected XML is an error (-EIO), never a crash. No network access,
 * no entity expansion. */
#ifndef RWSPLIT_S3_XML_H
#define RWSPLIT_S3_XML_H

#include <stddef.h>
#include <time.h>

#include "common/sb.h"
#include "s3/s3.h"
#include "s3/s3_creds.h"

/* An <Error> document: fills err->code, message and request_id. Returns 0, or -EIO when body
 * is not an Error document. */
int s3_xml_error(const char *body, size_t len, s3_error *err);

/* One ListObjectsV2 page (<ListBucketResult>). Calls cb for each <Contents> then each
 * <CommonPrefixes>, in document order within each kind. With url_encoded set (the request had
 * encoding-type=url) keys and prefixes are decoded first: %XX escapes, and '+' as a space
 * (AWS encodes a space as '+' and a literal '+' as %2B; MinIO uses %20). *truncated receives
 * IsTruncated; *next_token a malloc'd NextContinuationToken or NULL (caller frees).
 * Returns 0, the callback's non-zero value if it stopped, or -EIO on bad XML (a Contents
 * without Key, a Size that is not a number, a truncated document, ...). */
int s3_xml_list_page(const char *body, size_t len, int url_encoded, s3_list_cb cb, void *arg,
		     int *truncated, char **next_token);

/* <InitiateMultipartUploadResult>: copies UploadId into upload_id (S3_UPLOAD_ID_MAX).
 * Returns 0 or -EIO. */
int s3_xml_upload_id(const char *body, size_t len, char *upload_id);

/* The 200 response of CompleteMultipartUpload or CopyObject: either a result with an <ETag>
 * (copied unquoted into etag, 80 bytes, when not NULL) -> 0, or an <Error> document (S3 may
 * send one with status 200) -> err filled and -EIO, or anything else -> -EIO. */
int s3_xml_etag_result(const char *body, size_t len, char *etag, s3_error *err);

/* A <ListMultipartUploadsResult>: calls cb for each <Upload>'s Key, UploadId and Initiated. Returns 0,
 * the callback's non-zero value, or -EIO on bad XML. */
int s3_xml_uploads(const char *body, size_t len, s3_upload_cb cb, void *arg);

/* The answer of an STS call that hands out temporary credentials: AWS's (and MinIO's)
 * AssumeRoleWithWebIdentityResponse (Result/Credentials: AccessKeyId, SecretAccessKey,
 * SessionToken, Expiration) or Alibaba's AssumeRoleWithOIDCResponse (Credentials:
 * AccessKeyId, AccessKeySecret, SecurityToken, Expiration). Fills v and *expires (UTC).
 * Returns 0; -EACCES with err (may be NULL) filled for an error document
 * (<ErrorResponse><Error> or <Error>: Code, Message, RequestId); -EIO for anything else, or a
 * value too long for v. v is all zeros after a failure. */
int s3_xml_sts_credentials(const char *body, size_t len, s3_cred_values *v, time_t *expires,
			   s3_error *err);

/* Appends the <CompleteMultipartUpload> request body for parts to out. */
void s3_xml_complete_body(sb *out, const s3_part *parts, int nparts);

/* "2025-10-15T17:29:55.000Z" -> UTC seconds; -1 when malformed. */
time_t s3_parse_iso8601(const char *s);

/* "Wed, 15 Oct 2025 17:29:55 GMT" (RFC 7231) -> UTC seconds; -1 when malformed. */
time_t s3_parse_http_date(const char *s);

/* Copies an ETag without surrounding quotes (or &quot;) into out (cap bytes). */
void s3_etag_copy(char *out, size_t cap, const char *etag);

#endif
