/* Data-driven tests of the SigV4 signer (s3/s3_sigv4.h).
 *
 * Two sets of vectors in the same directory format, one directory per case:
 *   tests/unit/data/aws-sigv4-test-suite/v4/  the AWS SigV4 test suite (aws-c-auth, Apache-2.0)
 *   tests/unit/data/s3-sigv4/                 S3 requests signed by botocore
 *                                             (tests/unit/gen_s3_sigv4.py, see its header for
 *                                             the context.json conventions: "s3", "payload_hash")
 * Each case holds context.json, request.txt and the expected canonical request, string to
 * sign and signature for header signing and for query (presigned URL) signing. The cases are
 * discovered with opendir at start-up and each becomes one iteration of a loop test, so a
 * failure names its case and prints expected against actual.
 *
 * Run from the repository root (the data paths are relative to it). */
#include <check.h>
#include <ctype.h>
#include <locale.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "unit_run.h"
#include "common/sb.h"
#include "s3/s3_sigv4.h"

#define AWS_DIR "tests/unit/data/aws-sigv4-test-suite/v4"
#define S3_DIR "tests/unit/data/s3-sigv4"
/* The vendored suite has 38 cases; gen_s3_sigv4.py writes 37. A smaller count means a
 * directory went missing (or the tests run from the wrong directory) and would otherwise pass
 * silently. Update S3_CASES together with the generator's CASES. */
#define AWS_CASES 38
#define S3_CASES 37

#define MAX_KV 64

/* ---------------------------------------------------------------------------------------- */
/* Case discovery */

typedef struct case_list {
	const char *dir;
	char **names; /* sorted, so a loop index always means the same case */
	int n;
} case_list;

static case_list aws_cases = { AWS_DIR, NULL, 0 };
static case_list s3_cases = { S3_DIR, NULL, 0 };

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every subdirectory holding a context.json is a case. Runs before the suite is built because
 * the loop tests need the count; a missing directory just gives 0 cases (the count test then
 * fails with a message instead of the whole binary aborting). */
static void discover(case_list *cl)
{
	DIR *d = opendir(cl->dir);
	if (!d)
		return;
	struct dirent *e;
	int cap = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[1024];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s/context.json", cl->dir, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (cl->n == cap) {
			cap = cap ? cap * 2 : 64;
			char **p = realloc(cl->names, cap * sizeof(*p));
			if (!p)
				abort();
			cl->names = p;
		}
		cl->names[cl->n] = strdup(e->d_name);
		if (!cl->names[cl->n])
			abort();
		cl->n++;
	}
	closedir(d);
	if (cl->n)
		qsort(cl->names, cl->n, sizeof(*cl->names), cmp_str);
}

static void free_cases(case_list *cl)
{
	for (int i = 0; i < cl->n; i++)
		free(cl->names[i]);
	free(cl->names);
	cl->names = NULL;
	cl->n = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* File helpers */

/* Reads dir/name/file whole into a NUL-terminated malloc'd buffer; *len (optional) gets the
 * size, which matters for request bodies with NUL bytes. NULL if it cannot be read. */
static char *slurp(const char *dir, const char *name, const char *file, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s/%s", dir, name, file);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	sb s = SB_INIT;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_append(&s, buf, n);
	int bad = ferror(f) || sb_failed(&s);
	fclose(f);
	if (bad) {
		sb_free(&s);
		return NULL;
	}
	if (len)
		*len = s.len;
	if (!s.buf) /* empty file: sb has not allocated yet */
		return strdup("");
	return sb_take(&s);
}

/* An expected-output file without its trailing newline: some of the suite's files end with
 * one and some do not, while the signer's strings never do. */
static char *expected(const char *dir, const char *name, const char *file)
{
	char *s = slurp(dir, name, file, NULL);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* Line i (0-based) of s, copied into a malloc'd string; NULL past the end. */
static char *line_at(const char *s, int i)
{
	for (; i > 0; i--) {
		s = strchr(s, '\n');
		if (!s)
			return NULL;
		s++;
	}
	return strndup(s, strcspn(s, "\n"));
}

/* The line before the last one: in a canonical request, the signed headers list. */
static char *signed_headers_line(const char *canonical)
{
	const char *last = strrchr(canonical, '\n');
	if (!last)
		return NULL;
	const char *start = last;
	while (start > canonical && start[-1] != '\n')
		start--;
	return strndup(start, last - start);
}

/* ---------------------------------------------------------------------------------------- */
/* context.json: the suite's files are small and flat apart from the "credentials" object, and
 * every key name is unique in them, so a key is looked up by name wherever it appears. */

/* Copies the value of "key" into out: a string's contents (only the \" \\ \/ escapes, the
 * only ones the vectors use) or a bare literal such as true or 3600.
 * Returns 0, -1 when the key is absent, -2 when the value is malformed or too long. */
static int json_get(const char *doc, const char *key, char *out, size_t cap)
{
	char quoted[128];
	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	for (const char *p = strstr(doc, quoted); p; p = strstr(p + 1, quoted)) {
		const char *q = p + strlen(quoted);
		q += strspn(q, " \t\r\n");
		if (*q != ':')
			continue; /* the key's name appeared as a value */
		q++;
		q += strspn(q, " \t\r\n");
		size_t n = 0;
		if (*q == '"') {
			for (q++; *q != '"'; q++) {
				if (*q == '\0')
					return -2;
				if (*q == '\\') {
					q++;
					if (*q != '"' && *q != '\\' && *q != '/')
						return -2;
				}
				if (n + 1 >= cap)
					return -2;
				out[n++] = *q;
			}
		} else {
			size_t len = strcspn(q, ",} \t\r\n");
			if (len == 0 || len >= cap)
				return -2;
			memcpy(out, q, len);
			n = len;
		}
		out[n] = '\0';
		return 0;
	}
	return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* One loaded case */

typedef struct vec {
	const char *dir;
	const char *name;
	/* context.json */
	char access_key[128], secret_key[128], token[1024], region[64], service[64];
	char timestamp[32], payload_override[80];
	time_t when;
	int normalize, sign_body, omit_token, is_s3;
	unsigned expires;
	/* request.txt, decoded */
	char *method;
	char *raw_path;            /* as written on the request line */
	char *path;                /* percent-decoded */
	s3_kv query[MAX_KV];
	size_t nquery;
	s3_kv headers[MAX_KV];
	size_t nheaders;
	char body_hash[65];
	/* every string above that is malloc'd, freed by vec_free */
	char *owned[4 * MAX_KV + 8];
	int nowned;
} vec;

static char *keep(vec *v, char *s)
{
	ck_assert_msg(s != NULL, "%s: out of memory", v->name);
	ck_assert_int_lt(v->nowned, (int)(sizeof(v->owned) / sizeof(v->owned[0])));
	v->owned[v->nowned++] = s;
	return s;
}

static void vec_free(vec *v)
{
	for (int i = 0; i < v->nowned; i++)
		free(v->owned[i]);
	v->nowned = 0;
}

/* Percent-decodes src[0..len) with the function under test; the request line of every vector
 * is well-formed, so a decoding failure is a failure of s3_uri_decode. */
static char *decode(vec *v, const char *src, size_t len)
{
	sb s = SB_INIT;
	int rc = s3_uri_decode(&s, src, len);
	ck_assert_msg(rc == 0, "%s: s3_uri_decode(\"%.*s\") = %d", v->name, (int)len, src, rc);
	sb_append(&s, "", 0); /* so an empty result is "" rather than NULL */
	return keep(v, sb_take(&s));
}

static int ctx_bool(const vec *v, const char *doc, const char *key, int dflt)
{
	char val[16];
	int rc = json_get(doc, key, val, sizeof(val));
	if (rc == -1)
		return dflt;
	ck_assert_msg(rc == 0 && (!strcmp(val, "true") || !strcmp(val, "false")),
		      "%s: context.json: bad boolean %s", v->name, key);
	return !strcmp(val, "true");
}

static void ctx_str(const vec *v, const char *doc, const char *key, char *out, size_t cap,
		    int required)
{
	int rc = json_get(doc, key, out, cap);
	if (rc == -1 && !required) {
		out[0] = '\0';
		return;
	}
	ck_assert_msg(rc == 0, "%s: context.json: %s %s", v->name, key,
		      rc == -1 ? "missing" : "malformed");
}

static void load_context(vec *v)
{
	char *doc = slurp(v->dir, v->name, "context.json", NULL);
	ck_assert_msg(doc != NULL, "%s: cannot read context.json", v->name);
	ctx_str(v, doc, "access_key_id", v->access_key, sizeof(v->access_key), 1);
	ctx_str(v, doc, "secret_access_key", v->secret_key, sizeof(v->secret_key), 1);
	ctx_str(v, doc, "token", v->token, sizeof(v->token), 0);
	ctx_str(v, doc, "region", v->region, sizeof(v->region), 1);
	ctx_str(v, doc, "service", v->service, sizeof(v->service), 1);
	ctx_str(v, doc, "timestamp", v->timestamp, sizeof(v->timestamp), 1);
	ctx_str(v, doc, "payload_hash", v->payload_override, sizeof(v->payload_override), 0);

	char num[32];
	ctx_str(v, doc, "expiration_in_seconds", num, sizeof(num), 1);
	char *end;
	unsigned long exp = strtoul(num, &end, 10);
	ck_assert_msg(*end == '\0' && exp > 0, "%s: bad expiration_in_seconds %s", v->name, num);
	v->expires = (unsigned)exp;

	v->normalize = ctx_bool(v, doc, "normalize", 1);
	v->sign_body = ctx_bool(v, doc, "sign_body", 0);
	v->omit_token = ctx_bool(v, doc, "omit_session_token", 0);
	v->is_s3 = ctx_bool(v, doc, "s3", 0);
	free(doc);

	struct tm tm = { 0 };
	char z = 0;
	int got = sscanf(v->timestamp, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon,
			 &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z);
	ck_assert_msg(got == 7 && z == 'Z', "%s: bad timestamp %s", v->name, v->timestamp);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	v->when = timegm(&tm);
}

/* Splits the raw query string into decoded name/value pairs. "a" (no '=') gives a NULL value,
 * which the signer must treat like "" ("a="). */
static void parse_query(vec *v, const char *q, size_t len)
{
	const char *end = q + len;
	while (q < end) {
		const char *amp = memchr(q, '&', end - q);
		const char *item_end = amp ? amp : end;
		if (item_end > q) {
			ck_assert_msg(v->nquery < MAX_KV, "%s: too many query parameters", v->name);
			const char *eq = memchr(q, '=', item_end - q);
			s3_kv *kv = &v->query[v->nquery++];
			kv->name = decode(v, q, (eq ? eq : item_end) - q);
			kv->value = eq ? decode(v, eq + 1, item_end - eq - 1) : NULL;
		}
		q = item_end + 1;
	}
}

/* request.txt: "METHOD target HTTP/1.1", then "Name:value" lines where a line starting with
 * whitespace continues the previous value, then an empty line and the body. The target may
 * hold raw spaces (get-space-*), so the method ends at the first space and the version starts
 * at the last one. Header values are passed untrimmed: trimming is the signer's job. */
static void load_request(vec *v)
{
	size_t len;
	char *raw = keep(v, slurp(v->dir, v->name, "request.txt", &len));
	const char *p = raw, *end = raw + len;

	/* The request line, in its own string cut into method, path and query in place. */
	const char *eol = memchr(p, '\n', len);
	char *line = keep(v, strndup(p, eol ? (size_t)(eol - p) : len));
	line[strcspn(line, "\r")] = '\0';
	char *sp1 = strchr(line, ' ');
	char *sp2 = strrchr(line, ' ');
	ck_assert_msg(sp1 && sp2 > sp1 + 1, "%s: bad request line", v->name);
	*sp1 = '\0';
	*sp2 = '\0';
	v->method = line;
	char *target = sp1 + 1;
	char *qmark = strchr(target, '?');
	if (qmark) {
		*qmark = '\0';
		parse_query(v, qmark + 1, strlen(qmark + 1));
	}
	v->raw_path = target;
	v->path = decode(v, target, strlen(target));
	p = eol ? eol + 1 : end;

	/* Header values grow with continuation lines, so they are built in sbs first. */
	sb values[MAX_KV];
	memset(values, 0, sizeof(values));
	while (p < end) {
		eol = memchr(p, '\n', end - p);
		const char *line_end = eol ? eol : end;
		const char *next = eol ? eol + 1 : end;
		if (line_end > p && line_end[-1] == '\r')
			line_end--;
		if (line_end == p) { /* the empty line: the body follows */
			p = next;
			break;
		}
		if (*p == ' ' || *p == '\t') {
			/* obs-fold: the line break becomes a space; the signer folds the rest */
			ck_assert_msg(v->nheaders > 0, "%s: continuation before any header", v->name);
			sb_putc(&values[v->nheaders - 1], ' ');
			sb_append(&values[v->nheaders - 1], p, line_end - p);
		} else {
			const char *colon = memchr(p, ':', line_end - p);
			ck_assert_msg(colon != NULL, "%s: header line without ':'", v->name);
			ck_assert_msg(v->nheaders < MAX_KV, "%s: too many headers", v->name);
			v->headers[v->nheaders].name = keep(v, strndup(p, colon - p));
			sb_append(&values[v->nheaders], colon + 1, line_end - colon - 1);
			v->nheaders++;
		}
		p = next;
	}
	for (size_t i = 0; i < v->nheaders; i++) {
		sb_append(&values[i], "", 0);
		v->headers[i].value = keep(v, sb_take(&values[i]));
	}
	s3_sha256_hex(p, end - p, v->body_hash);
}

static void load_vec(vec *v, const case_list *cl, int i)
{
	memset(v, 0, sizeof(*v));
	ck_assert_msg(i < cl->n, "case index %d out of range", i);
	v->dir = cl->dir;
	v->name = cl->names[i];
	load_context(v);
	load_request(v);
}

/* The request the signer gets. In header mode the suite's "sign_body" means "sign an
 * x-amz-content-sha256 header" (the signer adds it, as it adds x-amz-date and
 * x-amz-security-token, so request.txt never contains them). The suite's query vectors never
 * sign that header, whatever sign_body says, and keep the body's hash as payload hash; S3
 * presigned URLs carry UNSIGNED-PAYLOAD instead. */
static void build_req(const vec *v, int query_mode, s3_sign_req *r)
{
	memset(r, 0, sizeof(*r));
	r->method = v->method;
	r->path = v->path;
	r->query = v->query;
	r->nquery = v->nquery;
	r->headers = v->headers;
	r->nheaders = v->nheaders;
	r->region = v->region;
	r->service = v->service;
	r->access_key = v->access_key;
	r->secret_key = v->secret_key;
	r->session_token = v->token[0] ? v->token : NULL;
	r->when = v->when;
	r->normalize_path = v->normalize;
	r->omit_session_token = v->omit_token;
	r->expires = v->expires;
	if (query_mode) {
		r->add_content_sha256 = 0;
		r->payload_hash = v->is_s3 ? "UNSIGNED-PAYLOAD" : v->body_hash;
	} else {
		r->add_content_sha256 = v->sign_body;
		r->payload_hash = v->payload_override[0] ? v->payload_override : v->body_hash;
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Checks */

static void check_eq(const vec *v, const char *mode, const char *what, const char *exp,
		     const char *act)
{
	ck_assert_msg(exp != NULL, "%s [%s]: cannot read the expected %s", v->name, mode, what);
	ck_assert_msg(strcmp(exp, act) == 0,
		      "%s [%s]: %s differs\n--- expected\n%s\n--- actual\n%s\n---", v->name, mode,
		      what, exp, act);
}

/* Compares the canonical request, string to sign and signature with the case's
 * PREFIX-*.txt files, and returns the expected canonical request and string to sign for
 * further checks (caller frees). */
static void check_signing(const vec *v, const char *prefix, const s3_sign_out *out,
			  char **exp_canon, char **exp_sts)
{
	char file[64];
	snprintf(file, sizeof(file), "%s-canonical-request.txt", prefix);
	*exp_canon = expected(v->dir, v->name, file);
	check_eq(v, prefix, "canonical request", *exp_canon, sb_str(&out->canonical_request));
	snprintf(file, sizeof(file), "%s-string-to-sign.txt", prefix);
	*exp_sts = expected(v->dir, v->name, file);
	check_eq(v, prefix, "string to sign", *exp_sts, sb_str(&out->string_to_sign));
	snprintf(file, sizeof(file), "%s-signature.txt", prefix);
	char *exp_sig = expected(v->dir, v->name, file);
	check_eq(v, prefix, "signature", exp_sig, out->signature);
	free(exp_sig);

	/* The string to sign's second line is the request date the caller must send. */
	char *date = line_at(*exp_sts, 1);
	check_eq(v, prefix, "amz_date", date, out->amz_date);
	free(date);
}

static void check_header_case(const case_list *cl, int i)
{
	vec v;
	load_vec(&v, cl, i);
	s3_sign_req r;
	build_req(&v, 0, &r);
	s3_sign_out out;
	memset(&out, 0, sizeof(out));
	ck_assert_msg(s3_sign_headers(&r, &out) == 0, "%s: s3_sign_headers failed", v.name);

	char *canon, *sts;
	check_signing(&v, "header", &out, &canon, &sts);

	/* Authorization as AWS documents it, assembled from the expected pieces. */
	char *scope = line_at(sts, 2);
	char *signed_hdrs = signed_headers_line(canon);
	sb auth = SB_INIT;
	sb_printf(&auth, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		  v.access_key, scope, signed_hdrs, out.signature);
	check_eq(&v, "header", "Authorization", sb_str(&auth), sb_str(&out.authorization));

	/* out.query is the query to send, and the one signed: line 3 of the canonical request. */
	char *canon_query = line_at(canon, 2);
	check_eq(&v, "header", "query", canon_query, sb_str(&out.query));
	free(canon_query);

	/* S3 requests go on the wire with the canonical URI; the vectors write it on the
	 * request line. (The generic suite's raw paths are not encoded like that.) */
	if (v.is_s3)
		check_eq(&v, "header", "canonical_uri", v.raw_path, sb_str(&out.canonical_uri));

	sb_free(&auth);
	free(scope);
	free(signed_hdrs);
	free(canon);
	free(sts);
	s3_sign_out_free(&out);
	vec_free(&v);
}

/* Local encoder for the expected X-Amz-Security-Token, kept apart from s3_uri_encode so the
 * check does not just repeat the code under test. */
static void encode_all(sb *s, const char *src)
{
	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p))
			sb_putc(s, (char)*p);
		else
			sb_printf(s, "%%%02X", *p);
	}
}

/* Sorts the '&'-separated items of a query string, so two query strings can be compared as
 * sets of parameters: where X-Amz-Signature (and a token added after signing) goes is not
 * part of the contract. */
static char *sorted_query(const char *q)
{
	char *copy = strdup(q);
	char *items[4 * MAX_KV];
	int n = 0;
	for (char *save = NULL, *t = strtok_r(copy, "&", &save); t && n < 4 * MAX_KV;
	     t = strtok_r(NULL, "&", &save))
		items[n++] = t;
	qsort(items, n, sizeof(items[0]), cmp_str);
	sb s = SB_INIT;
	for (int i = 0; i < n; i++) {
		if (i)
			sb_putc(&s, '\n'); /* one per line reads better in a failure message */
		sb_puts(&s, items[i]);
	}
	sb_append(&s, "", 0);
	free(copy);
	return sb_take(&s);
}

static void check_query_case(const case_list *cl, int i)
{
	vec v;
	load_vec(&v, cl, i);
	s3_sign_req r;
	build_req(&v, 1, &r);
	s3_sign_out out;
	memset(&out, 0, sizeof(out));
	ck_assert_msg(s3_sign_query(&r, &out) == 0, "%s: s3_sign_query failed", v.name);

	char *canon, *sts;
	check_signing(&v, "query", &out, &canon, &sts);

	/* out.query = the signed parameters (line 3 of the canonical request) plus the
	 * signature, plus the session token when it was left out of the signature. */
	char *canon_query = line_at(canon, 2);
	sb want = SB_INIT;
	sb_printf(&want, "%s&X-Amz-Signature=%s", canon_query, out.signature);
	if (v.token[0] && v.omit_token) {
		sb_puts(&want, "&X-Amz-Security-Token=");
		encode_all(&want, v.token);
	}
	char *want_sorted = sorted_query(sb_str(&want));
	char *got_sorted = sorted_query(sb_str(&out.query));
	check_eq(&v, "query", "presigned query (parameters sorted)", want_sorted, got_sorted);
	ck_assert_msg(sb_str(&out.query)[0] != '?' && sb_str(&out.query)[0] != '&',
		      "%s [query]: query starts with a separator: %s", v.name, sb_str(&out.query));

	if (v.is_s3)
		check_eq(&v, "query", "canonical_uri", v.raw_path, sb_str(&out.canonical_uri));

	free(want_sorted);
	free(got_sorted);
	sb_free(&want);
	free(canon_query);
	free(canon);
	free(sts);
	s3_sign_out_free(&out);
	vec_free(&v);
}

/* ---------------------------------------------------------------------------------------- */
/* The vector tests */

START_TEST(test_case_counts)
{
	ck_assert_msg(aws_cases.n == AWS_CASES,
		      "found %d AWS test-suite cases in %s, expected %d (run from the repo root)",
		      aws_cases.n, AWS_DIR, AWS_CASES);
	ck_assert_msg(s3_cases.n == S3_CASES,
		      "found %d S3 cases in %s, expected %d (run from the repo root)", s3_cases.n,
		      S3_DIR, S3_CASES);
}
END_TEST

START_TEST(test_aws_header)
{
	check_header_case(&aws_cases, _i);
}
END_TEST

START_TEST(test_aws_query)
{
	check_query_case(&aws_cases, _i);
}
END_TEST

START_TEST(test_s3_header)
{
	check_header_case(&s3_cases, _i);
}
END_TEST

START_TEST(test_s3_query)
{
	check_query_case(&s3_cases, _i);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The primitives, with known answers */

START_TEST(test_sha256_known_answers)
{
	char hex[65];
	s3_sha256_hex("", 0, hex);
	ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	s3_sha256_hex("abc", 3, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* NUL bytes count: the length, not strlen, decides */
	s3_sha256_hex("a\0b", 3, hex);
	ck_assert_str_eq(hex, "59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138");
}
END_TEST

static const struct {
	const char *in;
	int keep_slash;
	const char *out;
} encode_cases[] = {
	{ "", 0, "" },
	{ "AZaz09-._~", 0, "AZaz09-._~" },
	{ "a b", 0, "a%20b" },
	{ "a+b=c&d", 0, "a%2Bb%3Dc%26d" },
	{ "100%", 0, "100%25" },
	{ "a/b/", 0, "a%2Fb%2F" },
	{ "a/b/", 1, "a/b/" },
	{ "!'()*", 1, "%21%27%28%29%2A" },
	{ "\xc3\xb1\xe6\x95\xb0", 1, "%C3%B1%E6%95%B0" }, /* UTF-8, uppercase hex */
	{ "\x7f\x80\xff", 1, "%7F%80%FF" },
};

START_TEST(test_uri_encode)
{
	sb s = SB_INIT;
	s3_uri_encode(&s, encode_cases[_i].in, strlen(encode_cases[_i].in),
		      encode_cases[_i].keep_slash);
	ck_assert_msg(strcmp(sb_str(&s), encode_cases[_i].out) == 0,
		      "s3_uri_encode(\"%s\", keep_slash=%d) = \"%s\", expected \"%s\"",
		      encode_cases[_i].in, encode_cases[_i].keep_slash, sb_str(&s),
		      encode_cases[_i].out);
	sb_free(&s);
}
END_TEST

START_TEST(test_uri_encode_embedded_nul)
{
	sb s = SB_INIT;
	s3_uri_encode(&s, "a\0b", 3, 0);
	ck_assert_str_eq(sb_str(&s), "a%00b");
	sb_free(&s);
}
END_TEST

static const struct {
	const char *in;
	int rc;
	const char *out;
} decode_cases[] = {
	{ "", 0, "" },
	{ "plain", 0, "plain" },
	{ "a%20b", 0, "a b" },
	{ "a+b", 0, "a+b" },        /* '+' is not a space in a path or SigV4 query */
	{ "%2b%2B", 0, "++" },      /* either hex case */
	{ "%25", 0, "%" },
	{ "%2525", 0, "%25" },      /* decoded once only */
	{ "%E6%95%B0", 0, "\xe6\x95\xb0" },
	{ "%", -1, NULL },
	{ "%4", -1, NULL },
	{ "a%G1", -1, NULL },
	{ "a%1G", -1, NULL },
	{ "%%41", -1, NULL },
};

START_TEST(test_uri_decode)
{
	sb s = SB_INIT;
	const char *in = decode_cases[_i].in;
	int rc = s3_uri_decode(&s, in, strlen(in));
	ck_assert_msg(rc == decode_cases[_i].rc, "s3_uri_decode(\"%s\") = %d, expected %d", in,
		      rc, decode_cases[_i].rc);
	if (rc == 0)
		ck_assert_msg(strcmp(sb_str(&s), decode_cases[_i].out) == 0,
			      "s3_uri_decode(\"%s\") gave \"%s\"", in, sb_str(&s));
	sb_free(&s);
}
END_TEST

START_TEST(test_uri_decode_length_bound)
{
	/* Only len bytes are read: the escape cut off by len is malformed, not "%41". */
	sb s = SB_INIT;
	ck_assert_int_eq(s3_uri_decode(&s, "ab%41", 4), -1);
	sb_reset(&s);
	ck_assert_int_eq(s3_uri_decode(&s, "ab%41", 2), 0);
	ck_assert_str_eq(sb_str(&s), "ab");
	sb_free(&s);
}
END_TEST

/* Signing is a pure function of the request: the same input twice gives the same output, and
 * the order and case in which headers and query parameters are given do not matter. */
START_TEST(test_sign_order_independent)
{
	s3_kv h1[] = { { "Host", "bkt.s3.us-east-1.amazonaws.com" }, { "Range", "bytes=0-9" } };
	s3_kv h2[] = { { "range", "bytes=0-9" }, { "HOST", "bkt.s3.us-east-1.amazonaws.com" } };
	s3_kv q1[] = { { "list-type", "2" }, { "prefix", "a b/" }, { "delimiter", "/" } };
	s3_kv q2[] = { { "delimiter", "/" }, { "prefix", "a b/" }, { "list-type", "2" } };
	s3_sign_req r = {
		.method = "GET", .path = "/", .query = q1, .nquery = 3, .headers = h1,
		.nheaders = 2,
		.payload_hash = "UNSIGNED-PAYLOAD", .region = "us-east-1", .service = "s3",
		.access_key = "AKIDEXAMPLE", .secret_key = "secret", .when = 1760549395,
		.add_content_sha256 = 1, .expires = 60,
	};
	s3_sign_out a, b, c;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(s3_sign_headers(&r, &a), 0);
	ck_assert_int_eq(s3_sign_headers(&r, &b), 0);
	r.headers = h2;
	r.query = q2;
	ck_assert_int_eq(s3_sign_headers(&r, &c), 0);
	ck_assert_str_eq(a.signature, b.signature);
	ck_assert_str_eq(a.signature, c.signature);
	ck_assert_str_eq(sb_str(&a.canonical_request), sb_str(&c.canonical_request));
	ck_assert_str_eq(a.amz_date, "20251015T172955Z");
	s3_sign_out_free(&a);
	s3_sign_out_free(&b);
	s3_sign_out_free(&c);
}
END_TEST

START_TEST(test_sign_out_free_zeroed)
{
	/* Freeing an untouched (zeroed) result must be safe, for error paths. */
	s3_sign_out out;
	memset(&out, 0, sizeof(out));
	s3_sign_out_free(&out);
}
END_TEST

/* A program we are preloaded into may call setlocale(). Signing must not change: under
 * en_US.ISO-8859-1 the bytes of "é" are letters to isalnum(), under tr_TR.UTF-8 tolower('I')
 * is not 'i' (so "If-Match" would not fold). Each locale is compiled with localedef into a
 * private LOCPATH; a locale that cannot be made fails the test (scripts/deps.sh installs
 * Debian's locales), and each case first shows that libc's classes really differ there. */
static int latin1_differs(void)
{
	return isalnum(0xC3) != 0;
}

static int turkish_differs(void)
{
	return tolower('I') != 'i' || strcasecmp("Id", "id") != 0;
}

static const struct {
	const char *input, *charmap, *name;
	int (*differs)(void);   /* libc's classes there are not C's */
} locale_cases[] = {
	{ "en_US", "ISO-8859-1", "en_US.ISO-8859-1", latin1_differs },
	{ "tr_TR", "UTF-8", "tr_TR.UTF-8", turkish_differs },
};

static void sign_with_keys_and_headers(s3_sign_out *out)
{
	s3_kv h[] = { { "Host", "127.0.0.1:9000" }, { "If-Match", "\"0123abcd\"" },
		      { "X-Amz-Meta-Id", "Iİ" }, { "INFO", " a\t b " } };
	s3_kv q[] = { { "prefix", "d\xc3\xa9j\xc3\xa0 vu/I" }, { "list-type", "2" } };
	s3_sign_req r = {
		.method = "GET", .path = "/bkt/caf\xc3\xa9/\xc3\x89t\xc3\xa9 ID.bin", .query = q,
		.nquery = 2, .headers = h, .nheaders = 4, .payload_hash = "UNSIGNED-PAYLOAD",
		.region = "us-east-1", .service = "s3", .access_key = "AKIDEXAMPLE",
		.secret_key = "secret", .when = 1760549395, .add_content_sha256 = 1,
	};
	memset(out, 0, sizeof *out);
	ck_assert_int_eq(s3_sign_headers(&r, out), 0);
}

START_TEST(test_sign_locale_independent)
{
	s3_sign_out c_locale, there;
	sign_with_keys_and_headers(&c_locale);
	const char *canon = sb_str(&c_locale.canonical_request);
	ck_assert_ptr_nonnull(strstr(canon, "/bkt/caf%C3%A9/%C3%89t%C3%A9%20ID.bin\n"));
	ck_assert_ptr_nonnull(strstr(canon, "\nif-match:\"0123abcd\"\n"));
	ck_assert_ptr_nonnull(strstr(canon, "\ninfo:a b\n"));

	char dir[] = "/tmp/rwsplit-locales-XXXXXX", cmd[512];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof cmd, "localedef -c -i %s -f %s %s/%s >/dev/null 2>&1",
		 locale_cases[_i].input, locale_cases[_i].charmap, dir, locale_cases[_i].name);
	int made = system(cmd);
	snprintf(cmd, sizeof cmd, "%s/%s", dir, locale_cases[_i].name);
	struct stat st;
	ck_assert_msg(stat(cmd, &st) == 0, "localedef did not make %s (exit %d): install "
		      "Debian's locales (scripts/deps.sh)", cmd, made);
	setenv("LOCPATH", dir, 1);
	const char *set = setlocale(LC_ALL, locale_cases[_i].name);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_msg(set != NULL, "setlocale(%s) failed", locale_cases[_i].name);
	ck_assert_msg(locale_cases[_i].differs(), "%s: libc classes as in C; the case shows nothing",
		      locale_cases[_i].name);
	sign_with_keys_and_headers(&there);
	ck_assert_str_eq(sb_str(&there.canonical_request), canon);
	ck_assert_str_eq(there.signature, c_locale.signature);
	s3_sign_out_free(&c_locale);
	s3_sign_out_free(&there);
}
END_TEST

static Suite *sigv4_suite(void)
{
	Suite *s = suite_create("sigv4");

	TCase *tc = tcase_create("discovery");
	tcase_add_test(tc, test_case_counts);
	suite_add_tcase(s, tc);

	tc = tcase_create("aws-test-suite");
	tcase_add_loop_test(tc, test_aws_header, 0, aws_cases.n);
	tcase_add_loop_test(tc, test_aws_query, 0, aws_cases.n);
	suite_add_tcase(s, tc);

	tc = tcase_create("s3-botocore");
	tcase_add_loop_test(tc, test_s3_header, 0, s3_cases.n);
	tcase_add_loop_test(tc, test_s3_query, 0, s3_cases.n);
	suite_add_tcase(s, tc);

	tc = tcase_create("primitives");
	tcase_add_test(tc, test_sha256_known_answers);
	tcase_add_loop_test(tc, test_uri_encode, 0,
			    (int)(sizeof(encode_cases) / sizeof(encode_cases[0])));
	tcase_add_test(tc, test_uri_encode_embedded_nul);
	tcase_add_loop_test(tc, test_uri_decode, 0,
			    (int)(sizeof(decode_cases) / sizeof(decode_cases[0])));
	tcase_add_test(tc, test_uri_decode_length_bound);
	tcase_add_test(tc, test_sign_order_independent);
	tcase_add_test(tc, test_sign_out_free_zeroed);
	tcase_add_loop_test(tc, test_sign_locale_independent, 0,
			    (int)(sizeof(locale_cases) / sizeof(locale_cases[0])));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	discover(&aws_cases);
	discover(&s3_cases);
	int failed = unit_run(sigv4_suite()) != EXIT_SUCCESS;
	free_cases(&aws_cases);
	free_cases(&s3_cases);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
