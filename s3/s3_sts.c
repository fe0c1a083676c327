/* Temporary credentials from the services pods use: STS AssumeRoleWithWebIdentity (EKS IRSA,
 * and MinIO's STS), Alibaba's AssumeRoleWithOIDC (ACK RRSA), and the EC2 instance metadata
 * service (IMDSv2). Each call is one short HTTP exchange made here with a curl handle of its
 * own, retried a few times on connection errors and 5xx; errors are translated where they
 * enter (HTTP status, STS error document -> errno and a one-line reason). Tokens and keys are
 * never logged. */
#include "s3/s3_sts.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/sb.h"
#include "s3/s3_request.h"
#include "s3/s3_sigv4.h"
#include "s3/s3_xml.h"

#define ATTEMPTS 3
#define TOTAL_TIMEOUT_MS 15000
#define TOKEN_MAX (64 * 1024)   /* a projected service account token is ~1 KiB */
#define BODY_MAX (256 * 1024)

typedef struct http_reply {
	long status;
	sb body;
} http_reply;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	http_reply *r = arg;
	if (r->body.len + size * n > BODY_MAX)
		return 0;
	sb_append(&r->body, data, size * n);
	return size * n;
}

/* One request (POST with body when body is not NULL, PUT when put is set, else GET).
 * Returns 0 with r filled (any status), or -errno for a transport failure (why filled). */
static int http_once(const cfg_store *st, const char *url, const char *const *headers, int put,
		     const char *body, http_reply *r, char *why, size_t whylen)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hl = NULL;
	if (!h)
		return -ENOMEM;
	for (; headers && *headers; headers++)
		hl = curl_slist_append(hl, *headers);
	char curlerr[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, url);
	s3_curl_store_options(h, st, curlerr);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)TOTAL_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (body) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	} else if (put) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
	}
	CURLcode cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	if (cc == CURLE_OK)
		return sb_failed(&r->body) ? -ENOMEM : 0;
	snprintf(why, whylen, "%s", curlerr[0] ? curlerr : curl_easy_strerror(cc));
	return cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
}

/* http_once, again after a short pause on a transport failure or a 5xx/429. */
static int http(const cfg_store *st, const char *url, const char *const *headers, int put,
		const char *body, http_reply *r, char *why, size_t whylen)
{
	int rc = 0;
	for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
		if (attempt)
			nanosleep(&(struct timespec){ 0, 200L * 1000 * 1000 * attempt }, NULL);
		sb_reset(&r->body);
		r->status = 0;
		rc = http_once(st, url, headers, put, body, r, why, whylen);
		if (rc == 0 && r->status < 500 && r->status != 429)
			return 0;
	}
	if (rc == 0)
		snprintf(why, whylen, "HTTP %ld", r->status);
	return rc < 0 ? rc : -EIO;
}

/* The token file's contents, trimmed; a malloc'd string or NULL (why filled). Re-read at
 * every call: the kubelet rotates projected tokens. */
static char *read_token(const char *path, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "token file %s: %s", path, strerror(errno));
		return NULL;
	}
	sb s = SB_INIT;
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0 && s.len < TOKEN_MAX)
		sb_append(&s, buf, (size_t)n);
	close(fd);
	char *t = sb_take(&s);
	size_t len = t ? strlen(t) : 0;
	while (len && (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' '))
		t[--len] = '\0';
	if (!t || !len || n < 0) {
		snprintf(why, whylen, "token file %s is empty or unreadable", path);
		free(t);
		return NULL;
	}
	return t;
}

/* Frees s after overwriting what it held (a token, keys). */
static void wipe(sb *s)
{
	if (s->buf)
		OPENSSL_cleanse(s->buf, s->cap);
	sb_free(s);
}

static void param(sb *q, const char *name, const char *value)
{
	sb_printf(q, "%s%s=", q->len ? "&" : "", name);
	s3_uri_encode(q, value, strlen(value), 0);
}

/* The STS reply: credentials, or the error document's code and message in why. */
static int sts_reply(const http_reply *r, const char *what, s3_cred_values *v, time_t *exp,
		     char *why, size_t whylen)
{
	s3_error err;
	memset(&err, 0, sizeof err);
	int rc = s3_xml_sts_credentials(sb_str(&r->body), r->body.len, v, exp, &err);
	if (rc == 0 && r->status == 200)
		return 0;
	if (rc == -EACCES || r->status == 403 || r->status == 400)
		snprintf(why, whylen, "%s refused (HTTP %ld%s%s%s%s)", what, r->status,
			 err.code[0] ? ", " : "", err.code, err.message[0] ? ": " : "", err.message);
	else
		snprintf(why, whylen, "%s: HTTP %ld without credentials in the reply", what,
			 r->status);
	OPENSSL_cleanse(v, sizeof *v);
	return rc == -EACCES || r->status == 403 || r->status == 400 ? -EACCES : -EIO;
}

/* POSTs the form q (built with status rc) to src's endpoint and reads the credentials from
 * the reply; wipes q. */
static int sts_call(const cfg_store *st, const s3_sts_source *src, const char *what, sb *q,
		    int rc, s3_cred_values *v, time_t *expires, char *why, size_t whylen)
{
	static const char *const headers[] = {
		"Content-Type: application/x-www-form-urlencoded", "Accept: application/xml", NULL
	};
	http_reply r = { 0, SB_INIT };
	char url[512];
	snprintf(url, sizeof url, "%s/", src->endpoint);
	if (rc == 0)
		rc = http(st, url, headers, 0, sb_str(q), &r, why, whylen);
	if (rc == 0)
		rc = sts_reply(&r, what, v, expires, why, whylen);
	else if (!why[0])
		snprintf(why, whylen, "%s at %s: %s", what, src->endpoint, strerror(-rc));
	wipe(q);
	wipe(&r.body);
	return rc;
}

static void session_name(char *out, size_t cap)
{
	char host[64] = "";
	gethostname(host, sizeof host - 1);
	snprintf(out, cap, "rwsplit-%.40s-%d", host[0] ? host : "node", (int)getpid());
	for (char *p = out; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			*p = '-';
}

int s3_sts_web_identity(const cfg_store *st, const s3_sts_source *src, s3_cred_values *v,
			time_t *expires, char *why, size_t whylen)
{
	char *token = read_token(src->token_file, why, whylen);
	if (!token)
		return -EACCES;
	char name[64];
	session_name(name, sizeof name);
	sb q = SB_INIT;
	param(&q, "Action", "AssumeRoleWithWebIdentity");
	param(&q, "Version", "2011-06-15");
	param(&q, "RoleArn", src->role_arn);
	param(&q, "RoleSessionName", src->session_name[0] ? src->session_name : name);
	sb_printf(&q, "&DurationSeconds=%u", src->duration_s);
	param(&q, "WebIdentityToken", token);
	OPENSSL_cleanse(token, strlen(token));
	free(token);
	return sts_call(st, src, "AssumeRoleWithWebIdentity", &q, sb_failed(&q) ? -ENOMEM : 0, v,
			expires, why, whylen);
}

int s3_sts_rrsa_query(const s3_sts_source *src, const char *token, time_t now,
		      const char *nonce, sb *q)
{
	char stamp[32], name[64];
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	session_name(name, sizeof name);
	param(q, "Action", "AssumeRoleWithOIDC");
	param(q, "Format", "XML");
	param(q, "Version", "2015-04-01");
	param(q, "RoleArn", src->role_arn);
	param(q, "OIDCProviderArn", src->provider_arn);
	param(q, "RoleSessionName", src->session_name[0] ? src->session_name : name);
	sb_printf(q, "&DurationSeconds=%u", src->duration_s);
	param(q, "Timestamp", stamp);
	param(q, "SignatureNonce", nonce);
	param(q, "OIDCToken", token);
	return sb_failed(q) ? -ENOMEM : 0;
}

int s3_sts_rrsa(const cfg_store *st, const s3_sts_source *src, s3_cred_values *v,
		time_t *expires, char *why, size_t whylen)
{
	char *token = read_token(src->token_file, why, whylen);
	if (!token)
		return -EACCES;
	unsigned char rnd[16];
	char nonce[33];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		memset(rnd, 0, sizeof rnd);
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(nonce + 2 * i, 3, "%02x", rnd[i]);
	sb q = SB_INIT;
	int rc = s3_sts_rrsa_query(src, token, time(NULL), nonce, &q);
	OPENSSL_cleanse(token, strlen(token));
	free(token);
	return sts_call(st, src, "AssumeRoleWithOIDC", &q, rc, v, expires, why, whylen);
}

int s3_json_string(const char *json, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name);
	for (const char *p = json; (p = strchr(p, '"')) != NULL; p++) {
		if (strncmp(p + 1, name, nlen) != 0 || p[1 + nlen] != '"')
			continue;
		const char *c = p + 2 + nlen;
		while (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n')
			c++;
		if (*c != ':')
			continue;
		c++;
		while (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n')
			c++;
		if (*c != '"')
			return -1;
		size_t n = 0;
		for (c++; *c && *c != '"'; c++) {
			char ch = *c;
			if (ch == '\\') {
				c++;
				ch = *c == 'n' ? '\n' : *c == 't' ? '\t' : *c == '/' ? '/' :
				     *c == '"' ? '"' : *c == '\\' ? '\\' : 0;
				if (!ch) /* \uXXXX and others: not in credentials */
					return -1;
			}
			if (n + 1 >= cap)
				return -1;
			out[n++] = ch;
		}
		if (*c != '"')
			return -1;
		out[n] = '\0';
		return 0;
	}
	return -1;
}

int s3_imds(const cfg_store *st, const char *endpoint, s3_cred_values *v, time_t *expires,
	    char *why, size_t whylen)
{
	char url[512], token_hdr[512], role[256];
	http_reply r = { 0, SB_INIT };
	static const char *const ttl[] = { "X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL };
	snprintf(url, sizeof url, "%s/latest/api/token", endpoint);
	int rc = http(st, url, ttl, 1, NULL, &r, why, whylen);
	if (rc == 0 && (r.status != 200 || !r.body.len || r.body.len > 400)) {
		snprintf(why, whylen, "IMDS token: HTTP %ld", r.status);
		rc = -EACCES;
	}
	if (rc < 0)
		goto out;
	snprintf(token_hdr, sizeof token_hdr, "X-aws-ec2-metadata-token: %s", sb_str(&r.body));
	const char *const auth[] = { token_hdr, NULL };
	snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", endpoint);
	rc = http(st, url, auth, 0, NULL, &r, why, whylen);
	if (rc == 0 && (r.status != 200 || !r.body.len || r.body.len >= sizeof role)) {
		snprintf(why, whylen, "IMDS: no instance role (HTTP %ld)", r.status);
		rc = -EACCES;
	}
	if (rc < 0)
		goto out;
	snprintf(role, sizeof role, "%s", sb_str(&r.body));
	role[strcspn(role, "\r\n")] = '\0';
	snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", endpoint,
		 role);
	rc = http(st, url, auth, 0, NULL, &r, why, whylen);
	char code[32] = "", when[64] = "";
	memset(v, 0, sizeof *v);
	if (rc == 0 && (r.status != 200 ||
			s3_json_string(sb_str(&r.body), "AccessKeyId", v->access_key,
				       sizeof v->access_key) < 0 ||
			s3_json_string(sb_str(&r.body), "SecretAccessKey", v->secret_key,
				       sizeof v->secret_key) < 0 ||
			s3_json_string(sb_str(&r.body), "Token", v->token, sizeof v->token) < 0 ||
			s3_json_string(sb_str(&r.body), "Expiration", when, sizeof when) < 0 ||
			(*expires = s3_parse_iso8601(when)) <= 0 ||
			(s3_json_string(sb_str(&r.body), "Code", code, sizeof code) == 0 &&
			 strcmp(code, "Success") != 0))) {
		snprintf(why, whylen, "IMDS credentials of role %s: HTTP %ld%s%s", role, r.status,
			 code[0] ? ", code " : "", code);
		OPENSSL_cleanse(v, sizeof *v);
		rc = -EACCES;
	}
out:
	OPENSSL_cleanse(token_hdr, sizeof token_hdr);
	wipe(&r.body);
	return rc;
}
