/* Executing one S3 request with libcurl: sign each attempt, stream the body in and out,
 * retry transient failures with backoff and jitter, translate the outcome to errno. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/ascii.h"
#include "common/clock.h"
#include "common/log.h"
#include "s3/s3_request.h"
#include "s3/s3_xml.h"

#define ERROR_BODY_MAX (64 * 1024)
#define MEM_SINK_MAX (64u << 20)
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 5000
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHUTDOWN_WAIT_MS 3000
/* curl's receive buffer, one per handle and so one per request in flight: 32 KiB keeps a
 * process with a hundred fetching threads (and the agent serving it) within a few MiB, and
 * a small object still arrives in a few recv(); a ranged GET of a large object's part gets
 * the larger buffer, so that a sequential read makes a quarter of the recv() calls. */
#define RECV_BUFFER (32 * 1024)
#define RECV_BUFFER_LARGE (128 * 1024)
#define LARGE_RANGE (1024 * 1024)
#define SEND_BUFFER (256 * 1024)

static atomic_int shutting_down;
static atomic_int in_flight;

/* State of one attempt, shared with the curl callbacks. */
typedef struct attempt {
	s3_client *c;
	s3_request *req;
	sb errbody;            /* body of a non-2xx response, bounded */
	uint64_t upload_pos;
	int local_err;         /* errno from our side (the caller's fd, memory) */
	int status;            /* status line of the response being received */
	int ranged;            /* a Range header was sent */
	uint64_t range_off;    /* its first byte */
	uint64_t moved;        /* bytes transferred so far, both ways */
	uint64_t moved_at_ms;  /* when that number last changed */
	int stalled;           /* aborted for making no progress */
	int cancelled;         /* aborted because the process is exiting */
	char *batch;           /* S3_SINK_FD: body bytes not yet written (from batch_get) */
	size_t batched;
	int unbatched;         /* batch_get found none: pieces are written as they come */
} attempt;

/* curl hands the body over in pieces of at most 16 KiB; written one by one they made the
 * pwrite() calls a third of a small-object GET's CPU. A GET gathers them in a buffer taken
 * from its client at the first byte and given back when the request ends, so buffers are
 * held only while bodies arrive, not for the life of every thread that ever fetched. */
static char *batch_get(s3_client *c)
{
	char *b = NULL;
	int make = 0;
	pthread_mutex_lock(&c->pool_lock);
	if (c->nbatch > 0)
		b = c->batch[--c->nbatch];
	else if (c->nbatch_made < S3_BATCH_MAX)
		make = ++c->nbatch_made;
	pthread_mutex_unlock(&c->pool_lock);
	if (make && !(b = malloc(S3_BATCH_BYTES))) {
		pthread_mutex_lock(&c->pool_lock);
		c->nbatch_made--;
		pthread_mutex_unlock(&c->pool_lock);
	}
	return b;
}

static void batch_put(s3_client *c, char *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&c->pool_lock);
	c->batch[c->nbatch++] = b; /* room: at most nbatch_made <= S3_BATCH_MAX exist */
	pthread_mutex_unlock(&c->pool_lock);
}

static CURL *pool_get(s3_client *c)
{
	CURL *h = NULL;
	pthread_mutex_lock(&c->pool_lock);
	if (c->npool > 0)
		h = c->pool[--c->npool];
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_reset(h); /* keeps the live connection, clears the options */
	else
		h = curl_easy_init();
	return h;
}

static void pool_put(s3_client *c, CURL *h)
{
	pthread_mutex_lock(&c->pool_lock);
	if (c->npool < S3_POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

static int header_is(const char *line, size_t len, const char *name, const char **value,
		     size_t *vlen)
{
	size_t n = strlen(name);
	if (len <= n || line[n] != ':' || ascii_strncasecmp(line, name, n) != 0)
		return 0;
	const char *v = line + n + 1;
	const char *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	*value = v;
	*vlen = (size_t)(end - v);
	return 1;
}

/* Called each time a request goes on the wire, also when libcurl re-sends it by itself on a
 * fresh connection because a reused one died before answering. */
static int on_prereq(void *arg, char *ip, char *local_ip, int port, int local_port)
{
	(void)ip, (void)local_ip, (void)port, (void)local_port;
	((s3_request *)arg)->sent++;
	return CURL_PREREQFUNC_OK;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
	attempt *a = arg;
	s3_request *req = a->req;
	size_t len = size * n;
	const char *v;
	size_t vlen;
	char tmp[128];
	if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new status line (also after "100 Continue"): forget the previous headers. */
		const char *sp = memchr(line, ' ', len);
		a->status = sp ? atoi(sp + 1) : 0;
		req->etag[0] = '\0';
		req->has_content_range = 0;
		req->content_length = 0;
		req->last_modified = 0;
		req->date = 0;
		return len;
	}
	if (header_is(line, len, "ETag", &v, &vlen)) {
		snprintf(tmp, sizeof tmp, "%.*s", (int)vlen, v);
		s3_etag_copy(req->etag, sizeof req->etag, tmp);
	} else if (header_is(line, len, "Content-Length", &v, &vlen)) {
		req->content_length = strtoull(v, NULL, 10);
	} else if (header_is(line, len, "Content-Range", &v, &vlen)) {
		/* "bytes 0-99/1234" or, for 416, "bytes * /1234" */
		const char *slash = memchr(v, '/', vlen);
		if (slash && slash[1] != '*') {
			req->total_size = strtoull(slash + 1, NULL, 10);
			req->has_content_range = 1;
		}
	} else if (header_is(line, len, "Last-Modified", &v, &vlen)) {
		snprintf(tmp, sizeof tmp, "%.*s", (int)vlen, v);
		req->last_modified = s3_parse_http_date(tmp);
	} else if (header_is(line, len, "Date", &v, &vlen)) {
		snprintf(tmp, sizeof tmp, "%.*s", (int)vlen, v);
		req->date = s3_parse_http_date(tmp);
	} else if (header_is(line, len, "x-amz-request-id", &v, &vlen)) {
		if (vlen >= sizeof req->request_id)
			vlen = sizeof req->request_id - 1;
		memcpy(req->request_id, v, vlen);
		req->request_id[vlen] = '\0';
	}
	return len;
}

static int write_fd_all(int fd, const char *p, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Writes the gathered bytes at their place in the sink; they count as delivered only then,
 * so a retry resumes after the last byte actually written. */
static int flush_batch(attempt *a)
{
	s3_request *req = a->req;
	if (!a->batched)
		return 0;
	int err = write_fd_all(req->sink_fd, a->batch, a->batched,
			       req->sink_off + (off_t)req->delivered);
	if (!err)
		req->delivered += a->batched;
	a->batched = 0;
	return err;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	attempt *a = arg;
	s3_request *req = a->req;
	size_t len = size * n;
	if (a->status < 200 || a->status >= 300) {
		if (a->errbody.len < ERROR_BODY_MAX)
			sb_append(&a->errbody, data, len);
		return len;
	}
	if (a->ranged && a->status == 200 && a->range_off > 0) {
		a->local_err = EIO; /* the store ignored our Range: the bytes would land wrongly */
		return 0;
	}
	switch (req->sink) {
	case S3_SINK_DISCARD:
		break;
	case S3_SINK_MEM:
		if (req->mem.len + len > MEM_SINK_MAX) {
			a->local_err = EFBIG;
			return 0;
		}
		sb_append(&req->mem, data, len);
		if (sb_failed(&req->mem)) {
			a->local_err = ENOMEM;
			return 0;
		}
		break;
	case S3_SINK_BUF:
		if (req->delivered + len > req->cap) {
			a->local_err = EIO;
			return 0;
		}
		memcpy(req->buf + req->delivered, data, len);
		break;
	case S3_SINK_FD:
		if (!a->batch && !a->unbatched)
			a->unbatched = !(a->batch = batch_get(a->c));
		if (a->batched + len > S3_BATCH_BYTES && (a->local_err = flush_batch(a)))
			return 0;
		if (a->batch && len <= S3_BATCH_BYTES) {
			memcpy(a->batch + a->batched, data, len);
			a->batched += len;
		} else {
			a->local_err = write_fd_all(req->sink_fd, data, len,
						    req->sink_off + (off_t)req->delivered);
			if (a->local_err)
				return 0;
			req->delivered += len;
		}
		atomic_fetch_add(&a->c->bytes_in, len);
		return len;
	}
	req->delivered += len;
	atomic_fetch_add(&a->c->bytes_in, len);
	return len;
}

static size_t on_upload(char *buf, size_t size, size_t n, void *arg)
{
	attempt *a = arg;
	s3_request *req = a->req;
	size_t want = size * n;
	uint64_t left = req->body_len - a->upload_pos;
	if (want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (req->body == S3_BODY_MEM) {
		memcpy(buf, (const char *)req->body_mem + a->upload_pos, want);
	} else {
		ssize_t r;
		do
			r = pread(req->body_fd, buf, want, req->body_off + (off_t)a->upload_pos);
		while (r < 0 && errno == EINTR);
		if (r <= 0) {
			a->local_err = r < 0 ? errno : EIO; /* r == 0: the file shrank under us */
			return CURL_READFUNC_ABORT;
		}
		want = (size_t)r;
	}
	a->upload_pos += want;
	atomic_fetch_add(&a->c->bytes_out, want);
	return want;
}


/* curl's own low-speed check averages over several seconds, so a transfer that stops dead
 * would only fail well after stall_timeout: measure the time since bytes last moved. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	attempt *a = arg;
	(void)dltotal;
	(void)ultotal;
	if (atomic_load_explicit(&shutting_down, memory_order_relaxed)) {
		a->cancelled = 1;
		return 1;
	}
	uint64_t moved = (uint64_t)dlnow + (uint64_t)ulnow, now = clock_ms();
	if (moved != a->moved || !a->moved_at_ms) {
		a->moved = moved;
		a->moved_at_ms = now;
		return 0;
	}
	if (now - a->moved_at_ms >= a->c->store->stall_timeout_ms) {
		a->stalled = 1;
		return 1;
	}
	return 0;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
	attempt *a = arg;
	if (origin != SEEK_SET || off < 0 || (uint64_t)off > a->req->body_len)
		return CURL_SEEKFUNC_FAIL;
	a->upload_pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

/* SHA-256 of the fd body, for stores configured with payload_signing = signed. Not inlined:
 * its 64 KiB buffer would widen perform()'s frame for every request. */
__attribute__((noinline)) static int hash_fd_body(const s3_request *req, char hex[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	char buf[1 << 16];
	uint64_t pos = 0;
	int rc = 0;
	while (pos < req->body_len) {
		size_t want = req->body_len - pos < sizeof buf ? (size_t)(req->body_len - pos) : sizeof buf;
		ssize_t r = pread(req->body_fd, buf, want, req->body_off + (off_t)pos);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
			break;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)r);
		pos += (uint64_t)r;
	}
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return rc;
}

static int payload_hash(s3_client *c, const s3_request *req, char hex[65])
{
	switch (req->body) {
	case S3_BODY_NONE:
		memcpy(hex, EMPTY_SHA256, 65);
		return 0;
	case S3_BODY_MEM:
		s3_sha256_hex(req->body_mem, (size_t)req->body_len, hex);
		return 0;
	case S3_BODY_FD:
		if (c->store->sign_payload)
			return hash_fd_body(req, hex);
		memcpy(hex, "UNSIGNED-PAYLOAD", sizeof "UNSIGNED-PAYLOAD");
		return 0;
	}
	return -EINVAL;
}

static struct curl_slist *add_header(struct curl_slist *list, int *failed, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static struct curl_slist *add_header(struct curl_slist *list, int *failed, const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line) {
		*failed = 1;
		return list;
	}
	struct curl_slist *l = curl_slist_append(list, line);
	if (!l) {
		*failed = 1;
		return list;
	}
	return l;
}

/* Signs the attempt and sets every curl option. Returns 0 or -errno; *headers receives the
 * list to free after the transfer. */
static int prepare(attempt *a, CURL *h, const char *hash, struct curl_slist **headers,
		   char *url, size_t urlcap, char *curlerr)
{
	s3_client *c = a->c;
	s3_request *req = a->req;
	const cfg_store *st = c->store;

	s3_cred_values cred;
	int rc = s3_creds_get(c->creds, &cred);
	if (rc < 0)
		return rc;

	char host[512];
	sb path = SB_INIT;
	if (c->virtual_host && req->bucket) {
		snprintf(host, sizeof host, "%s.%s", req->bucket, c->host);
		sb_putc(&path, '/');
	} else {
		snprintf(host, sizeof host, "%s", c->host);
		sb_putc(&path, '/');
		if (req->bucket) {
			sb_puts(&path, req->bucket);
			if (req->key)
				sb_putc(&path, '/');
		}
	}
	if (req->key)
		sb_puts(&path, req->key);

	s3_kv signed_h[S3_MAX_EXTRA + 1];
	size_t nsigned = 0;
	signed_h[nsigned++] = (s3_kv){ "host", host };
	for (size_t i = 0; i < req->nheaders; i++)
		signed_h[nsigned++] = req->headers[i];

	s3_sign_req sr = {
		.method = req->method,
		.path = sb_str(&path),
		.query = req->query,
		.nquery = req->nquery,
		.headers = signed_h,
		.nheaders = nsigned,
		.payload_hash = hash,
		.region = st->region,
		.service = "s3",
		.access_key = cred.access_key,
		.secret_key = cred.secret_key,
		.session_token = cred.token,
		.when = time(NULL),
		.add_content_sha256 = 1,
	};
	s3_sign_out so = { 0 };
	rc = s3_sign_headers(&sr, &so);
	sb_free(&path);
	if (rc < 0)
		goto out;

	int n = snprintf(url, urlcap, "%s://%s%s%s%s", c->scheme, host, sb_str(&so.canonical_uri),
			 so.query.len ? "?" : "", sb_str(&so.query));
	if (n < 0 || (size_t)n >= urlcap) {
		rc = -ENAMETOOLONG;
		goto out;
	}

	int failed = 0;
	struct curl_slist *hl = NULL;
	hl = add_header(hl, &failed, "Host: %s", host);
	hl = add_header(hl, &failed, "x-amz-date: %s", so.amz_date);
	hl = add_header(hl, &failed, "x-amz-content-sha256: %s", hash);
	if (cred.token[0])
		hl = add_header(hl, &failed, "x-amz-security-token: %s", cred.token);
	for (size_t i = 0; i < req->nheaders; i++)
		hl = add_header(hl, &failed, "%s: %s", req->headers[i].name, req->headers[i].value);
	hl = add_header(hl, &failed, "Authorization: %s", sb_str(&so.authorization));
	hl = add_header(hl, &failed, "Expect:"); /* no 100-continue round trip */
	if (strcmp(req->method, "POST") == 0)
		hl = add_header(hl, &failed, "Content-Type: application/xml");
	a->ranged = 0;
	if (req->range_off != 0 || req->range_len != S3_TO_END || req->delivered > 0) {
		uint64_t off = req->range_off + req->delivered;
		a->ranged = 1;
		a->range_off = off;
		if (req->range_len == S3_TO_END)
			hl = add_header(hl, &failed, "Range: bytes=%llu-", (unsigned long long)off);
		else
			hl = add_header(hl, &failed, "Range: bytes=%llu-%llu", (unsigned long long)off,
					(unsigned long long)(req->range_off + req->range_len - 1));
	}
	/* The caller's version; else a resumed download continues the version it began. */
	if (req->if_match && req->if_match[0])
		hl = add_header(hl, &failed, "If-Match: \"%s\"", req->if_match);
	else if (req->delivered > 0 && req->etag[0])
		hl = add_header(hl, &failed, "If-Match: \"%s\"", req->etag);
	*headers = hl;
	if (failed) {
		rc = -ENOMEM;
		goto out;
	}

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L); /* keys may contain "./" and "../" */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	s3_curl_store_options(h, st, curlerr);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, a);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	int large = req->range_len != S3_TO_END && req->range_len >= LARGE_RANGE;
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)(large ? RECV_BUFFER_LARGE : RECV_BUFFER));
	curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, (long)SEND_BUFFER);
	curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(h, CURLOPT_PREREQDATA, req);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);

	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
	} else if (strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	} else if (strcmp(req->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	}
	curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
	curl_easy_setopt(h, CURLOPT_READDATA, a);
	curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
	curl_easy_setopt(h, CURLOPT_SEEKDATA, a);
out:
	OPENSSL_cleanse(&cred, sizeof cred);
	s3_sign_out_free(&so);
	return rc;
}

static int retryable_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/* Exponential backoff with equal jitter: half the step is fixed, half random. */
static uint64_t backoff_ms(int attempt_no)
{
	static _Thread_local unsigned seed;
	if (!seed)
		seed = (unsigned)clock_ms() ^ (unsigned)(uintptr_t)&seed;
	uint64_t step = BACKOFF_BASE_MS << (attempt_no < 16 ? attempt_no - 1 : 15);
	if (step > BACKOFF_CAP_MS)
		step = BACKOFF_CAP_MS;
	return step / 2 + (uint64_t)rand_r(&seed) % (step / 2 + 1);
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Classifies a finished attempt. Returns 0 on success, else -errno with *retry set. */
static int classify(attempt *a, CURLcode cc, const char *curlerr, s3_error *e, int *retry)
{
	s3_request *req = a->req;
	*retry = 0;
	e->status = a->status;
	snprintf(e->request_id, sizeof e->request_id, "%s", req->request_id);
	if (a->local_err)
		return -a->local_err;
	if (cc != CURLE_OK) {
		if (a->cancelled)
			return -ECANCELED;
		if (a->stalled) {
			snprintf(e->code, sizeof e->code, "Timeout");
			snprintf(e->message, sizeof e->message, "no data moved for %u ms",
				 a->c->store->stall_timeout_ms);
			*retry = 1;
			return -EIO;
		}
		snprintf(e->code, sizeof e->code, "%s",
			 cc == CURLE_COULDNT_CONNECT ? "ConnectionRefused"
			 : cc == CURLE_OPERATION_TIMEDOUT ? "Timeout"
			 : cc == CURLE_PEER_FAILED_VERIFICATION ? "TLSVerifyFailed" : "TransportError");
		snprintf(e->message, sizeof e->message, "%s",
			 curlerr[0] ? curlerr : curl_easy_strerror(cc));
		*retry = retryable_curl(cc);
		return -EIO;
	}
	if (a->status == 416 && a->ranged) /* a range at or past the end: no bytes, no error */
		return 0;
	if (a->status >= 200 && a->status < 300) {
		if (!req->check_200_error)
			return 0;
		/* CompleteMultipartUpload and CopyObject may fail after sending 200. */
		e->code[0] = '\0';
		if (s3_xml_etag_result(sb_str(&req->mem), req->mem.len, req->etag, e) == 0)
			return 0;
		if (!e->code[0])
			snprintf(e->code, sizeof e->code, "MalformedResponse");
		*retry = s3_is_retryable(0, e->code);
		return -EIO;
	}
	e->code[0] = e->message[0] = '\0';
	char rid[sizeof e->request_id];
	memcpy(rid, e->request_id, sizeof rid);
	if (s3_xml_error(sb_str(&a->errbody), a->errbody.len, e) < 0) {
		/* HEAD responses have no body; the status is all there is. */
		snprintf(e->code, sizeof e->code, "%s",
			 a->status == 404 ? "NotFound" : a->status == 403 ? "Forbidden" : "HTTPError");
		e->message[0] = '\0';
	}
	if (!e->request_id[0])
		memcpy(e->request_id, rid, sizeof rid);
	*retry = s3_is_retryable(a->status, e->code);
	return -s3_errno_for(a->status, e->code);
}

static int perform(s3_client *c, s3_request *req, s3_error *err);

int s3_perform(s3_client *c, s3_request *req, s3_error *err)
{
	atomic_fetch_add(&in_flight, 1);
	int rc = atomic_load(&shutting_down) ? -ECANCELED : perform(c, req, err);
	atomic_fetch_sub(&in_flight, 1);
	return rc;
}

void s3_shutdown(void)
{
	atomic_store(&shutting_down, 1);
	for (int waited = 0; atomic_load(&in_flight) > 0 && waited < SHUTDOWN_WAIT_MS; waited += 5)
		sleep_ms(5);
}

static int perform(s3_client *c, s3_request *req, s3_error *err)
{
	s3_error local = { 0 };
	s3_error *e = err ? err : &local;
	memset(e, 0, sizeof *e);
	const cfg_store *st = c->store;

	char hash[65];
	int rc = payload_hash(c, req, hash);
	if (rc < 0)
		return rc;

	uint64_t deadline = clock_ms() + st->retry_time_ms;
	char url[16384];
	char curlerr[CURL_ERROR_SIZE];
	for (int n = 1;; n++) {
		CURL *h = pool_get(c);
		if (!h)
			return -ENOMEM;
		attempt a = { .c = c, .req = req };
		struct curl_slist *headers = NULL;
		curlerr[0] = '\0';
		if (req->sink == S3_SINK_MEM || req->sink == S3_SINK_DISCARD) {
			sb_reset(&req->mem);
			req->delivered = 0;
		}
		req->request_id[0] = '\0';
		rc = prepare(&a, h, hash, &headers, url, sizeof url, curlerr);
		if (rc < 0) {
			curl_slist_free_all(headers);
			pool_put(c, h);
			return rc;
		}
		uint64_t t0 = clock_ms();
		unsigned sent_before = req->sent;
		CURLcode cc = curl_easy_perform(h);
		int flush_err = flush_batch(&a);
		if (flush_err && !a.local_err)
			a.local_err = flush_err;
		batch_put(c, a.batch);
		atomic_fetch_add(&c->requests, 1);
		curl_slist_free_all(headers);
		pool_put(c, h);
		e->attempts = n;

		int retry;
		rc = classify(&a, cc, curlerr, e, &retry);
		sb_free(&a.errbody);
		req->status = a.status;
		log_debug("%s %s/%s -> %d (%s) %llums%s", req->method, req->bucket ? req->bucket : "",
			  req->key ? req->key : "", a.status, rc ? e->code : "ok",
			  (unsigned long long)(clock_ms() - t0),
			  req->sent - sent_before > 1 ? ", re-sent by libcurl on a new connection" : "");
		if (rc == 0 || !retry || atomic_load(&shutting_down))
			return rc;
		if ((uint32_t)n >= st->max_attempts)
			break;
		uint64_t wait = backoff_ms(n);
		if (clock_ms() + wait >= deadline)
			break;
		log_info("retrying %s %s/%s after %s (attempt %d)", req->method,
			 req->bucket ? req->bucket : "", req->key ? req->key : "", e->code, n);
		atomic_fetch_add(&c->retries, 1);
		sleep_ms(wait);
	}
	return -EIO;
}

void s3_request_free(s3_request *req)
{
	sb_free(&req->mem);
}

void s3_curl_store_options(CURL *h, const cfg_store *st, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "rwsplit/0.1");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)st->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, st->tls_verify ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, st->tls_verify ? 2L : 0L);
	if (st->ca_bundle)
		curl_easy_setopt(h, CURLOPT_CAINFO, st->ca_bundle);
}
