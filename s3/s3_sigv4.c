/* AWS Signature Version 4. The canonical forms follow the SigV4 specification; S3 differs
 * from other services only in that the path is neither normalized nor encoded twice. */
#include "s3/s3_sigv4.h"
#include "common/ascii.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void s3_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(data, len, md);
	to_hex(md, sizeof md, hex);
}

static void hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
	unsigned int outlen = 32;
	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &outlen);
}

static int is_unreserved(unsigned char c)
{
	return ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

void s3_uri_encode(sb *s, const char *src, size_t len, int keep_slash)
{
	static const char upper[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		if (is_unreserved(c) || (keep_slash && c == '/')) {
			sb_putc(s, (char)c);
		} else {
			char esc[3] = { '%', upper[c >> 4], upper[c & 15] };
			sb_append(s, esc, 3);
		}
	}
}

int s3_uri_decode(sb *s, const char *src, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (src[i] != '%') {
			sb_putc(s, src[i]);
			continue;
		}
		if (i + 2 >= len)
			return -1;
		int hi = ascii_hexval((unsigned char)src[i + 1]);
		int lo = ascii_hexval((unsigned char)src[i + 2]);
		if (hi < 0 || lo < 0)
			return -1;
		sb_putc(s, (char)(hi << 4 | lo));
		i += 2;
	}
	return 0;
}

/* Removes "." and ".." segments and empty segments, keeping a trailing '/' (RFC 3986 section
 * 5.2.4 as the generic AWS services apply it). Writes into out. */
static void normalize_path(sb *out, const char *path)
{
	const char *segs[256];
	size_t lens[256];
	size_t n = 0;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *start = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - start);
		if (len == 0 || (len == 1 && start[0] == '.'))
			continue;
		if (len == 2 && start[0] == '.' && start[1] == '.') {
			if (n > 0)
				n--;
			continue;
		}
		if (n < 256) {
			segs[n] = start;
			lens[n++] = len;
		}
	}
	for (size_t i = 0; i < n; i++) {
		sb_putc(out, '/');
		sb_append(out, segs[i], lens[i]);
	}
	size_t plen = strlen(path);
	if (n == 0 || (plen > 0 && path[plen - 1] == '/'))
		sb_putc(out, '/');
}

static void canonical_uri(sb *out, const s3_sign_req *req)
{
	const char *path = req->path && *req->path ? req->path : "/";
	if (req->normalize_path) {
		sb tmp = SB_INIT;
		normalize_path(&tmp, path);
		s3_uri_encode(out, sb_str(&tmp), tmp.len, 1);
		sb_free(&tmp);
	} else {
		s3_uri_encode(out, path, strlen(path), 1);
	}
}

typedef struct enc_pair {
	char *name;
	char *value;
} enc_pair;

static int cmp_pair(const void *a, const void *b)
{
	const enc_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

/* Builds the canonical query string of params (plus extra, already decoded) into out. */
static int canonical_query(sb *out, const s3_kv *params, size_t n, const s3_kv *extra,
			   size_t nextra)
{
	size_t total = n + nextra;
	if (total == 0)
		return 0;
	enc_pair *pairs = calloc(total, sizeof *pairs);
	if (!pairs)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < total; i++) {
		const s3_kv *kv = i < n ? &params[i] : &extra[i - n];
		sb name = SB_INIT, value = SB_INIT;
		s3_uri_encode(&name, kv->name, strlen(kv->name), 0);
		if (kv->value)
			s3_uri_encode(&value, kv->value, strlen(kv->value), 0);
		pairs[i].name = sb_take(&name);
		pairs[i].value = sb_take(&value);
		if (!pairs[i].name || !pairs[i].value)
			rc = -ENOMEM;
	}
	if (rc == 0) {
		qsort(pairs, total, sizeof *pairs, cmp_pair);
		for (size_t i = 0; i < total; i++) {
			if (i)
				sb_putc(out, '&');
			sb_puts(out, pairs[i].name);
			sb_putc(out, '=');
			sb_puts(out, pairs[i].value);
		}
	}
	for (size_t i = 0; i < total; i++) {
		free(pairs[i].name);
		free(pairs[i].value);
	}
	free(pairs);
	return rc;
}

typedef struct canon_header {
	char *name;   /* lowercase */
	sb value;     /* trimmed, folded, duplicates joined with ',' */
} canon_header;

static int cmp_header(const void *a, const void *b)
{
	return strcmp(((const canon_header *)a)->name, ((const canon_header *)b)->name);
}

/* Appends value trimmed, with every run of whitespace (including folded line breaks) reduced
 * to one space. */
static void append_folded(sb *out, const char *v)
{
	while (*v && ascii_isspace((unsigned char)*v))
		v++;
	int pending_space = 0;
	for (; *v; v++) {
		if (ascii_isspace((unsigned char)*v)) {
			pending_space = 1;
			continue;
		}
		if (pending_space)
			sb_putc(out, ' ');
		pending_space = 0;
		sb_putc(out, *v);
	}
}

typedef struct header_set {
	canon_header *items;
	size_t n;
} header_set;

static void header_set_free(header_set *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		free(hs->items[i].name);
		sb_free(&hs->items[i].value);
	}
	free(hs->items);
}

/* Merges headers (case-insensitively, joining duplicates in order) and sorts them. */
static int header_set_build(header_set *hs, const s3_kv *h, size_t n)
{
	hs->items = calloc(n ? n : 1, sizeof *hs->items);
	hs->n = 0;
	if (!hs->items)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		canon_header *found = NULL;
		for (size_t j = 0; j < hs->n; j++)
			if (ascii_strcasecmp(hs->items[j].name, h[i].name) == 0)
				found = &hs->items[j];
		if (found) {
			sb_putc(&found->value, ',');
		} else {
			found = &hs->items[hs->n++];
			found->name = strdup(h[i].name);
			if (!found->name)
				return -ENOMEM;
			for (char *p = found->name; *p; p++)
				*p = (char)ascii_tolower((unsigned char)*p);
		}
		append_folded(&found->value, h[i].value ? h[i].value : "");
		if (sb_failed(&found->value))
			return -ENOMEM;
	}
	qsort(hs->items, hs->n, sizeof *hs->items, cmp_header);
	return 0;
}

static void signed_header_names(sb *out, const header_set *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		if (i)
			sb_putc(out, ';');
		sb_puts(out, hs->items[i].name);
	}
}

static void format_amz_date(time_t when, char out[17])
{
	struct tm tm;
	gmtime_r(&when, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* The scope "YYYYMMDD/region/service/aws4_request". */
static void credential_scope(sb *out, const s3_sign_out *o, const s3_sign_req *req)
{
	sb_append(out, o->amz_date, 8);
	sb_printf(out, "/%s/%s/aws4_request", req->region, req->service);
}

/* Canonical request -> string to sign -> signature, all stored in out. */
static void finish_signature(const s3_sign_req *req, s3_sign_out *out)
{
	char crhash[65];
	s3_sha256_hex(sb_str(&out->canonical_request), out->canonical_request.len, crhash);
	sb_puts(&out->string_to_sign, ALGORITHM "\n");
	sb_puts(&out->string_to_sign, out->amz_date);
	sb_putc(&out->string_to_sign, '\n');
	credential_scope(&out->string_to_sign, out, req);
	sb_putc(&out->string_to_sign, '\n');
	sb_puts(&out->string_to_sign, crhash);

	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
	unsigned char k[32];
	sb secret = SB_INIT;
	sb_puts(&secret, "AWS4");
	sb_puts(&secret, req->secret_key);
	char date[9];
	memcpy(date, out->amz_date, 8);
	date[8] = '\0';
	hmac(sb_str(&secret), secret.len, date, k);
	OPENSSL_cleanse(secret.buf, secret.cap);
	sb_free(&secret);
	hmac(k, 32, req->region, k);
	hmac(k, 32, req->service, k);
	hmac(k, 32, "aws4_request", k);
	unsigned char sig[32];
	hmac(k, 32, sb_str(&out->string_to_sign), sig);
	OPENSSL_cleanse(k, sizeof k);
	to_hex(sig, sizeof sig, out->signature);
}

/* METHOD, URI, query (req's parameters plus extra), headers, signed names, payload hash:
 * the canonical request, with the URI and query also kept in out for the wire. */
static int canonical_request(const s3_sign_req *req, const header_set *hs, const s3_kv *extra,
			     size_t nextra, s3_sign_out *out)
{
	sb *cr = &out->canonical_request;
	sb_puts(cr, req->method);
	sb_putc(cr, '\n');
	canonical_uri(&out->canonical_uri, req);
	sb_puts(cr, sb_str(&out->canonical_uri));
	sb_putc(cr, '\n');
	int rc = canonical_query(&out->query, req->query, req->nquery, extra, nextra);
	if (rc < 0)
		return rc;
	sb_puts(cr, sb_str(&out->query));
	sb_putc(cr, '\n');
	for (size_t i = 0; i < hs->n; i++)
		sb_printf(cr, "%s:%s\n", hs->items[i].name, sb_str(&hs->items[i].value));
	sb_putc(cr, '\n');
	signed_header_names(cr, hs);
	sb_putc(cr, '\n');
	sb_puts(cr, req->payload_hash);
	return 0;
}

static int has_token(const s3_sign_req *req)
{
	return req->session_token && *req->session_token && !req->omit_session_token;
}

int s3_sign_headers(const s3_sign_req *req, s3_sign_out *out)
{
	format_amz_date(req->when, out->amz_date);

	/* The signer adds the headers it owns, so callers cannot get their values wrong. */
	size_t n = req->nheaders;
	s3_kv *all = calloc(n + 3, sizeof *all);
	if (!all)
		return -ENOMEM;
	memcpy(all, req->headers, n * sizeof *all);
	all[n++] = (s3_kv){ "x-amz-date", out->amz_date };
	if (has_token(req))
		all[n++] = (s3_kv){ "x-amz-security-token", req->session_token };
	if (req->add_content_sha256)
		all[n++] = (s3_kv){ "x-amz-content-sha256", req->payload_hash };

	header_set hs = { 0 };
	int rc = header_set_build(&hs, all, n);
	free(all);
	if (rc < 0)
		goto out;

	rc = canonical_request(req, &hs, NULL, 0, out);
	if (rc < 0)
		goto out;
	finish_signature(req, out);

	sb *auth = &out->authorization;
	sb_printf(auth, ALGORITHM " Credential=%s/", req->access_key);
	credential_scope(auth, out, req);
	sb_puts(auth, ", SignedHeaders=");
	signed_header_names(auth, &hs);
	sb_printf(auth, ", Signature=%s", out->signature);
out:
	header_set_free(&hs);
	if (rc == 0 && (sb_failed(&out->canonical_request) || sb_failed(&out->authorization) ||
			sb_failed(&out->string_to_sign) || sb_failed(&out->canonical_uri) ||
			sb_failed(&out->query)))
		rc = -ENOMEM;
	return rc;
}

int s3_sign_query(const s3_sign_req *req, s3_sign_out *out)
{
	format_amz_date(req->when, out->amz_date);
	header_set hs = { 0 };
	int rc = header_set_build(&hs, req->headers, req->nheaders);
	if (rc < 0)
		goto out;

	sb cred = SB_INIT, names = SB_INIT;
	char expires[16];
	sb_printf(&cred, "%s/", req->access_key);
	credential_scope(&cred, out, req);
	signed_header_names(&names, &hs);
	snprintf(expires, sizeof expires, "%u", req->expires);
	s3_kv extra[6] = {
		{ "X-Amz-Algorithm", ALGORITHM },
		{ "X-Amz-Credential", sb_str(&cred) },
		{ "X-Amz-Date", out->amz_date },
		{ "X-Amz-Expires", expires },
		{ "X-Amz-SignedHeaders", sb_str(&names) },
		{ "X-Amz-Security-Token", req->session_token },
	};
	size_t nextra = has_token(req) ? 6 : 5;

	rc = canonical_request(req, &hs, extra, nextra, out);
	sb_free(&cred);
	sb_free(&names);
	if (rc < 0)
		goto out;
	finish_signature(req, out);
	sb_printf(&out->query, "&X-Amz-Signature=%s", out->signature);
	if (req->omit_session_token && req->session_token && *req->session_token) {
		/* STS-style: the token travels with the URL but is not part of the signature. */
		sb_puts(&out->query, "&X-Amz-Security-Token=");
		s3_uri_encode(&out->query, req->session_token, strlen(req->session_token), 0);
	}
out:
	header_set_free(&hs);
	if (rc == 0 && (sb_failed(&out->canonical_request) || sb_failed(&out->query) ||
			sb_failed(&out->string_to_sign)))
		rc = -ENOMEM;
	return rc;
}

void s3_sign_out_free(s3_sign_out *out)
{
	sb_free(&out->canonical_request);
	sb_free(&out->string_to_sign);
	sb_free(&out->authorization);
	sb_free(&out->query);
	sb_free(&out->canonical_uri);
}
