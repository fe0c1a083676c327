/* The S3 operations rwsplit uses, each a thin description of one request for s3_perform. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3/s3_request.h"
#include "s3/s3_xml.h"

static void fill_info(const s3_request *r, s3_object_info *info)
{
	if (!info)
		return;
	info->size = r->has_content_range ? r->total_size : r->content_length;
	info->mtime = r->last_modified;
	memcpy(info->etag, r->etag, sizeof info->etag);
}

static void header(s3_request *r, const char *name, const char *value)
{
	r->headers[r->nheaders++] = (s3_kv){ name, value };
}

int s3_run(s3_client *c, s3_request *r, s3_error *err)
{
	int rc = s3_perform(c, r, err);
	s3_request_free(r);
	return rc;
}

int s3_head_bucket(s3_client *c, const char *bucket, s3_error *err)
{
	s3_request r = { .method = "HEAD", .bucket = bucket, .range_len = S3_TO_END };
	return s3_run(c, &r, err);
}

int s3_head_object(s3_client *c, const char *bucket, const char *key, s3_object_info *info,
		   s3_error *err)
{
	int rc = s3_check_key(key);
	if (rc < 0)
		return rc;
	s3_request r = { .method = "HEAD", .bucket = bucket, .key = key, .range_len = S3_TO_END };
	rc = s3_run(c, &r, err);
	if (rc == 0)
		fill_info(&r, info);
	return rc;
}

/* A 412 to a GET means the version asked for (or begun) is no longer the key's. */
static int run_get(s3_client *c, s3_request *r, s3_error *err)
{
	int rc = s3_run(c, r, err);
	return rc == -EEXIST && r->status == 412 ? -ESTALE : rc;
}

int s3_get_buf(s3_client *c, const char *bucket, const char *key, const char *if_match,
	       uint64_t off, uint64_t len, void *buf, size_t cap, size_t *got,
	       s3_object_info *info, s3_error *err)
{
	*got = 0;
	int rc = s3_check_key(key);
	if (rc < 0)
		return rc;
	if (len > cap)
		len = cap;
	if (len == 0)
		return 0;
	s3_request r = { .method = "GET", .bucket = bucket, .key = key, .if_match = if_match,
			 .range_off = off, .range_len = len, .sink = S3_SINK_BUF, .buf = buf,
			 .cap = cap };
	rc = run_get(c, &r, err);
	if (rc == 0) {
		*got = (size_t)r.delivered;
		fill_info(&r, info);
	}
	return rc;
}

int s3_get_fd(s3_client *c, const char *bucket, const char *key, const char *if_match,
	      uint64_t off, uint64_t len, int fd, off_t fd_off, uint64_t *got,
	      s3_object_info *info, s3_error *err)
{
	*got = 0;
	int rc = s3_check_key(key);
	if (rc < 0)
		return rc;
	if (len == 0)
		return 0;
	s3_request r = { .method = "GET", .bucket = bucket, .key = key, .if_match = if_match,
			 .range_off = off, .range_len = len, .sink = S3_SINK_FD, .sink_fd = fd,
			 .sink_off = fd_off };
	rc = run_get(c, &r, err);
	if (rc == 0) {
		*got = r.delivered;
		fill_info(&r, info);
	}
	return rc;
}

int s3_put_fd(s3_client *c, const char *bucket, const char *key, int fd, off_t off,
	      uint64_t len, char *etag, s3_error *err)
{
	int rc = s3_check_key(key);
	if (rc < 0)
		return rc;
	s3_request r = { .method = "PUT", .bucket = bucket, .key = key, .range_len = S3_TO_END,
			 .body = S3_BODY_FD, .body_fd = fd, .body_off = off, .body_len = len };
	rc = s3_run(c, &r, err);
	if (rc == 0 && etag)
		memcpy(etag, r.etag, sizeof r.etag);
	return rc;
}

int s3_put_buf(s3_client *c, const char *bucket, const char *key, const void *data,
	       size_t len, char *etag, s3_error *err)
{
	int rc = s3_check_key(key);
	if (rc < 0)
		return rc;
	s3_request r = { .method = "PUT", .bucket = bucket, .key = key, .range_len = S3_TO_END,
			 .body = S3_BODY_MEM, .body_mem = data, .body_len = len };
	rc = s3_run(c, &r, err);
	if (rc == 0 && etag)
		memcpy(etag, r.etag, sizeof r.etag);
	return rc;
}

int s3_delete(s3_client *c, const char *bucket, const char *key, s3_error *err)
{
	int rc = s3_check_key(key);
	if (rc < 0)
		return rc;
	s3_request r = { .method = "DELETE", .bucket = bucket, .key = key, .range_len = S3_TO_END };
	s3_error local = { 0 };
	s3_error *e = err ? err : &local;
	rc = s3_run(c, &r, e);
	/* S3 answers 204 for a missing key; some stores say 404 NoSuchKey. Both mean "gone",
	 * but a missing bucket is still an error. */
	if (rc == -ENOENT && strcmp(e->code, "NoSuchBucket") != 0)
		return 0;
	return rc;
}

int s3_copy(s3_client *c, const char *src_bucket, const char *src_key, const char *dst_bucket,
	    const char *dst_key, char *etag, s3_error *err)
{
	int rc = s3_check_key(src_key);
	if (rc == 0)
		rc = s3_check_key(dst_key);
	if (rc < 0)
		return rc;
	sb source = SB_INIT;
	sb_putc(&source, '/');
	sb_puts(&source, src_bucket);
	sb_putc(&source, '/');
	s3_uri_encode(&source, src_key, strlen(src_key), 1);
	if (sb_failed(&source))
		return -ENOMEM;
	s3_request r = { .method = "PUT", .bucket = dst_bucket, .key = dst_key,
			 .range_len = S3_TO_END, .sink = S3_SINK_MEM, .check_200_error = 1 };
	header(&r, "x-amz-copy-source", sb_str(&source));
	rc = s3_run(c, &r, err);
	sb_free(&source);
	if (rc == 0 && etag)
		memcpy(etag, r.etag, sizeof r.etag);
	return rc;
}

typedef struct list_state {
	s3_list_cb cb;
	void *arg;
	unsigned remaining;   /* 0 = unlimited */
	int limited;
	int limit_hit;
} list_state;

static int list_entry(void *arg, const s3_list_entry *e)
{
	list_state *ls = arg;
	if (ls->limited && ls->remaining == 0) {
		ls->limit_hit = 1;
		return 1;
	}
	int rc = ls->cb(ls->arg, e);
	if (ls->limited)
		ls->remaining--;
	return rc;
}

int s3_list(s3_client *c, const char *bucket, const char *prefix, const char *delimiter,
	    unsigned max_keys, s3_list_cb cb, void *arg, s3_error *err)
{
	list_state ls = { .cb = cb, .arg = arg, .remaining = max_keys, .limited = max_keys > 0 };
	char *token = NULL;
	char maxbuf[16];
	int rc;
	for (;;) {
		s3_request r = { .method = "GET", .bucket = bucket, .range_len = S3_TO_END,
				 .sink = S3_SINK_MEM };
		s3_query(&r, "list-type", "2");
		s3_query(&r, "encoding-type", "url");
		if (prefix && *prefix)
			s3_query(&r, "prefix", prefix);
		if (delimiter && *delimiter)
			s3_query(&r, "delimiter", delimiter);
		if (ls.limited && ls.remaining < 1000) {
			snprintf(maxbuf, sizeof maxbuf, "%u", ls.remaining ? ls.remaining : 1);
			s3_query(&r, "max-keys", maxbuf);
		}
		if (token)
			s3_query(&r, "continuation-token", token);
		rc = s3_perform(c, &r, err);
		free(token);
		token = NULL;
		int truncated = 0;
		if (rc == 0) {
			rc = s3_xml_list_page(sb_str(&r.mem), r.mem.len, 1, list_entry, &ls,
					      &truncated, &token);
			if (rc < 0 && err) {
				snprintf(err->code, sizeof err->code, "MalformedResponse");
				snprintf(err->message, sizeof err->message, "ListObjectsV2 body is not "
					 "valid ListBucketResult XML");
			}
		}
		s3_request_free(&r);
		if (rc != 0 || !truncated || (ls.limited && ls.remaining == 0))
			break;
	}
	free(token);
	return ls.limit_hit && rc == 1 ? 0 : rc;
}
