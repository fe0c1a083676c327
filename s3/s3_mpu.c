/* Multipart uploads, with retries that know which of these requests are not idempotent.
 *
 * s3_perform retries any request whose response did not arrive. Two of these requests change
 * the store's state in a way a blind retry gets wrong:
 * - CreateMultipartUpload: each attempt that reached the store made an upload, and only the
 *   last one's id comes back; the others would stay open (and billed) forever.
 * - CompleteMultipartUpload: the first attempt may have completed the upload, so the retry is
 *   told NoSuchUpload although the object is there.
 * Both are repaired here, after the retry, by asking the store what happened. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "common/ascii.h"
#include "common/log.h"
#include "s3/s3_request.h"
#include "s3/s3_xml.h"

/* Uploads aborted after one retried create at most (each lost response made one). */
#define ORPHANS_MAX 16
/* Slack around the store's clock readings (Date and Initiated have 1 s resolution). */
#define CLOCK_SLACK_S 2

typedef struct orphans {
	const char *key, *mine;
	time_t from, to;          /* the store's clock while the create ran */
	int n;
	char ids[ORPHANS_MAX][S3_UPLOAD_ID_MAX];
} orphans;

static int collect_orphan(void *arg, const char *key, const char *id, time_t initiated)
{
	orphans *o = arg;
	if (strcmp(key, o->key) != 0 || strcmp(id, o->mine) == 0 || initiated < o->from ||
	    initiated > o->to || o->n == ORPHANS_MAX)
		return 0;
	snprintf(o->ids[o->n++], S3_UPLOAD_ID_MAX, "%s", id);
	return 0;
}

/* After a retried create: aborts the key's other uploads initiated in [from, to] (the store's
 * clock). Another writer's upload of the same key begun within those seconds is aborted too;
 * its complete then fails and that writer uploads again. */
static void abort_orphans(s3_client *c, const char *bucket, const char *key, const char *mine,
			  time_t from, time_t to)
{
	orphans o = { .key = key, .mine = mine, .from = from - CLOCK_SLACK_S,
		      .to = to + CLOCK_SLACK_S };
	s3_error err;
	int rc = s3_mpu_list(c, bucket, key, collect_orphan, &o, &err);
	if (rc < 0) {
		char why[256];
		log_warn("s3://%s/%s: a CreateMultipartUpload was retried and the uploads it may "
			 "have left cannot be listed (%s): abort them with ListMultipartUploads",
			 bucket, key, s3_error_str(&err, why, sizeof why));
		return;
	}
	for (int i = 0; i < o.n; i++) {
		rc = s3_mpu_abort(c, bucket, key, o.ids[i], &err);
		log_info("s3://%s/%s: upload %s, left by a lost CreateMultipartUpload response, %s",
			 bucket, key, o.ids[i], rc == 0 ? "aborted" : "could not be aborted");
	}
}

int s3_mpu_create(s3_client *c, const char *bucket, const char *key, char *upload_id,
		  s3_error *err)
{
	int rc = s3_check_key(key);
	if (rc < 0)
		return rc;
	s3_error local = { 0 };
	s3_error *e = err ? err : &local;
	time_t began = time(NULL);
	s3_request r = { .method = "POST", .bucket = bucket, .key = key, .range_len = S3_TO_END,
			 .sink = S3_SINK_MEM };
	s3_query(&r, "uploads", NULL);
	rc = s3_perform(c, &r, e);
	if (rc == 0 && s3_xml_upload_id(sb_str(&r.mem), r.mem.len, upload_id) < 0) {
		rc = -EIO;
		snprintf(e->code, sizeof e->code, "MalformedResponse");
	}
	/* Our clock mapped onto the store's through the last response's Date. */
	time_t ended = time(NULL), skew = r.date ? r.date - ended : 0;
	unsigned sent = r.sent;
	s3_request_free(&r);
	if (rc == 0 && sent > 1)
		abort_orphans(c, bucket, key, upload_id, began + skew, ended + skew);
	return rc;
}

int s3_mpu_part_fd(s3_client *c, const char *bucket, const char *key, const char *upload_id,
		   int number, int fd, off_t off, uint64_t len, s3_part *part, s3_error *err)
{
	int rc = s3_check_key(key);
	if (rc < 0)
		return rc;
	if (number < 1 || number > S3_MAX_PARTS)
		return -EINVAL;
	char num[16];
	snprintf(num, sizeof num, "%d", number);
	s3_request r = { .method = "PUT", .bucket = bucket, .key = key, .range_len = S3_TO_END,
			 .body = S3_BODY_FD, .body_fd = fd, .body_off = off, .body_len = len };
	s3_query(&r, "partNumber", num);
	s3_query(&r, "uploadId", upload_id);
	rc = s3_run(c, &r, err);
	if (rc == 0) {
		part->number = number;
		memcpy(part->etag, r.etag, sizeof part->etag);
	}
	return rc;
}

/* The ETag S3 gives the object these parts make: hex md5 of the concatenated binary md5s,
 * "-", the part count. -EINVAL when a part's ETag is not an md5 (SSE-KMS, some stores). */
static int multipart_etag(const s3_part *parts, int nparts, char out[80])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	int rc = 0;
	for (int i = 0; i < nparts && rc == 0; i++) {
		unsigned char md5[16];
		const char *h = parts[i].etag;
		if (strlen(h) != 32) {
			rc = -EINVAL;
			break;
		}
		for (int b = 0; b < 16 && rc == 0; b++) {
			int hi = ascii_hexval((unsigned char)h[2 * b]);
			int lo = ascii_hexval((unsigned char)h[2 * b + 1]);
			if (hi < 0 || lo < 0)
				rc = -EINVAL;
			else
				md5[b] = (unsigned char)(hi << 4 | lo);
		}
		if (rc == 0 && !EVP_DigestUpdate(ctx, md5, sizeof md5))
			rc = -ENOMEM;
	}
	unsigned char sum[16];
	unsigned int sumlen = 0;
	if (rc == 0 && !EVP_DigestFinal_ex(ctx, sum, &sumlen))
		rc = -ENOMEM;
	EVP_MD_CTX_free(ctx);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < sumlen; i++)
		snprintf(out + 2 * i, 3, "%02x", sum[i]);
	snprintf(out + 2 * sumlen, 80 - 2 * sumlen, "-%d", nparts);
	return 0;
}

/* The retried complete was told NoSuchUpload: 0 when the key already holds what these parts
 * make (the lost first attempt completed it), with its ETag in etag. */
static int completed_before(s3_client *c, const char *bucket, const char *key,
			    const s3_part *parts, int nparts, char *etag)
{
	char want[80];
	if (multipart_etag(parts, nparts, want) < 0)
		return -ENOENT;
	s3_object_info info;
	s3_error err;
	if (s3_head_object(c, bucket, key, &info, &err) < 0 || strcmp(info.etag, want) != 0)
		return -ENOENT;
	log_info("s3://%s/%s: CompleteMultipartUpload's response was lost; the object is there "
		 "(ETag %s)", bucket, key, want);
	if (etag)
		memcpy(etag, info.etag, sizeof info.etag);
	return 0;
}

int s3_mpu_complete(s3_client *c, const char *bucket, const char *key, const char *upload_id,
		    const s3_part *parts, int nparts, char *etag, s3_error *err)
{
	int rc = s3_check_key(key);
	if (rc < 0)
		return rc;
	s3_error local = { 0 };
	s3_error *e = err ? err : &local;
	sb body = SB_INIT;
	s3_xml_complete_body(&body, parts, nparts);
	if (sb_failed(&body))
		return -ENOMEM;
	s3_request r = { .method = "POST", .bucket = bucket, .key = key, .range_len = S3_TO_END,
			 .body = S3_BODY_MEM, .body_mem = sb_str(&body), .body_len = body.len,
			 .sink = S3_SINK_MEM, .check_200_error = 1 };
	s3_query(&r, "uploadId", upload_id);
	rc = s3_run(c, &r, e);
	sb_free(&body);
	if (rc == 0 && etag)
		memcpy(etag, r.etag, sizeof r.etag);
	/* Whether the request was re-sent (by us or by libcurl) matters not: a NoSuchUpload
	 * that these parts' object in the key explains is a success. */
	if (rc == -ENOENT && strcmp(e->code, "NoSuchUpload") == 0 &&
	    completed_before(c, bucket, key, parts, nparts, etag) == 0)
		rc = 0;
	return rc;
}

int s3_mpu_list(s3_client *c, const char *bucket, const char *prefix, s3_upload_cb cb,
		void *arg, s3_error *err)
{
	s3_request r = { .method = "GET", .bucket = bucket, .range_len = S3_TO_END,
			 .sink = S3_SINK_MEM };
	s3_query(&r, "uploads", NULL);
	if (prefix && *prefix)
		s3_query(&r, "prefix", prefix);
	int rc = s3_perform(c, &r, err);
	if (rc == 0)
		rc = s3_xml_uploads(sb_str(&r.mem), r.mem.len, cb, arg);
	s3_request_free(&r);
	return rc;
}

int s3_mpu_abort(s3_client *c, const char *bucket, const char *key, const char *upload_id,
		 s3_error *err)
{
	int rc = s3_check_key(key);
	if (rc < 0)
		return rc;
	s3_request r = { .method = "DELETE", .bucket = bucket, .key = key, .range_len = S3_TO_END };
	s3_query(&r, "uploadId", upload_id);
	return s3_run(c, &r, err);
}
