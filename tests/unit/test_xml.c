/* Tests of the S3 XML parsers and builder (s3/s3_xml.h) on real S3- and MinIO-shaped
 * documents (tests/unit/data/xml/) and on malformed input: every prefix of a valid document,
 * garbage, bad numbers, deep nesting, entity bombs. The parsers see untrusted network input, so
 * a malformed body must give -EIO and must never crash or hang; the tests run forked
 * (CK_FORK=yes, the default) so a crash fails one test instead of the binary, and the
 * hostile-input tests have a timeout.
 *
 * Run from the repository root (the data paths are relative to it). */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "unit_run.h"
#include "common/sb.h"
#include "s3/s3.h"
#include "s3/s3_xml.h"

#define XML_DIR "tests/unit/data/xml"

/* ---------------------------------------------------------------------------------------- */
/* Helpers */

/* Reads XML_DIR/name whole; *len gets the size. Aborts the test when missing. */
static char *fixture(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", XML_DIR, name);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s (run from the repository root)", path);
	sb s = SB_INIT;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_append(&s, buf, n);
	fclose(f);
	ck_assert_msg(!sb_failed(&s) && s.len > 0, "cannot read %s", path);
	*len = s.len;
	return sb_take(&s);
}

/* What the listing callback saw, copied because the strings live only during the call. */
typedef struct seen {
	int is_prefix;
	char key[S3_KEY_MAX + 64];
	uint64_t size;
	time_t mtime;
	char etag[80];
} seen;

typedef struct listing {
	seen e[32];
	int n;
	int stop_after; /* > 0: return stop_rc from the stop_after-th call */
	int stop_rc;
} listing;

static int collect(void *arg, const s3_list_entry *e)
{
	listing *l = arg;
	ck_assert_msg(e != NULL && e->key != NULL, "callback got an entry without a key");
	if (l->n == (int)(sizeof(l->e) / sizeof(l->e[0])))
		return -ENOSPC; /* more entries than any fixture holds: fail loudly, no overflow */
	seen *s = &l->e[l->n++];
	s->is_prefix = e->is_prefix;
	snprintf(s->key, sizeof(s->key), "%s", e->key);
	s->size = e->size;
	s->mtime = e->mtime;
	/* The contract does not say whether a listing's etag keeps S3's quotes; compare it
	 * unquoted, the form s3_object_info uses. */
	s->etag[0] = '\0';
	if (!e->is_prefix && e->etag)
		s3_etag_copy(s->etag, sizeof(s->etag), e->etag);
	if (l->stop_after > 0 && l->n == l->stop_after)
		return l->stop_rc;
	return 0;
}

/* Parses body as a listing page into l; returns the rc, *next_token freed and replaced by a
 * copy in token (or "" / "(null)"). */
static int list_page(const char *body, size_t len, int url_encoded, listing *l, int *truncated,
		     char *token, size_t token_cap)
{
	char *next = NULL;
	*truncated = -1;
	int rc = s3_xml_list_page(body, len, url_encoded, collect, l, truncated, &next);
	snprintf(token, token_cap, "%s", next ? next : "(null)");
	free(next);
	return rc;
}

static void expect_entry(const listing *l, int i, int is_prefix, const char *key, uint64_t size,
			 time_t mtime, const char *etag)
{
	ck_assert_msg(i < l->n, "entry %d missing (got %d entries)", i, l->n);
	const seen *s = &l->e[i];
	ck_assert_msg(s->is_prefix == is_prefix, "entry %d (%s): is_prefix %d, expected %d", i,
		      s->key, s->is_prefix, is_prefix);
	ck_assert_msg(strcmp(s->key, key) == 0, "entry %d: key \"%s\", expected \"%s\"", i, s->key,
		      key);
	if (is_prefix)
		return;
	ck_assert_msg(s->size == size, "entry %d (%s): size %llu, expected %llu", i, key,
		      (unsigned long long)s->size, (unsigned long long)size);
	ck_assert_msg(s->mtime == mtime, "entry %d (%s): mtime %lld, expected %lld", i, key,
		      (long long)s->mtime, (long long)mtime);
	ck_assert_msg(strcmp(s->etag, etag) == 0, "entry %d (%s): etag \"%s\", expected \"%s\"", i,
		      key, s->etag, etag);
}

/* ---------------------------------------------------------------------------------------- */
/* ListObjectsV2 pages */

START_TEST(test_list_page_truncated)
{
	size_t len;
	char *body = fixture("list-page1.xml", &len);
	listing l = { 0 };
	int truncated;
	char token[256];
	ck_assert_int_eq(list_page(body, len, 0, &l, &truncated, token, sizeof(token)), 0);
	ck_assert_int_eq(truncated, 1);
	ck_assert_str_eq(token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	/* Contents first, then CommonPrefixes; the top-level <Prefix> and the nested <Owner>
	 * are not entries. */
	ck_assert_int_eq(l.n, 5);
	expect_entry(&l, 0, 0, "photos/empty.txt", 0, 1760549395,
		     "d41d8cd98f00b204e9800998ecf8427e");
	expect_entry(&l, 1, 0, "photos/huge.tar", 5497558138880ULL, 1709251199,
		     "3858f62230ac3c915f300c664312c11f-9");
	expect_entry(&l, 2, 0, "photos/cat.jpg", 434234, 1255369830,
		     "fba9dede5f27731c9771645a39863328");
	expect_entry(&l, 3, 1, "photos/2024/", 0, 0, "");
	expect_entry(&l, 4, 1, "photos/2025/", 0, 0, "");
	free(body);
}
END_TEST

START_TEST(test_list_minio)
{
	size_t len;
	char *body = fixture("list-minio.xml", &len);
	listing l = { 0 };
	int truncated;
	char token[256];
	ck_assert_int_eq(list_page(body, len, 0, &l, &truncated, token, sizeof(token)), 0);
	ck_assert_int_eq(truncated, 0);
	ck_assert_str_eq(token, "(null)");
	ck_assert_int_eq(l.n, 2);
	/* MinIO quotes ETags with &#34; and sends milliseconds */
	expect_entry(&l, 0, 0, "file.bin", 5, 1760549395, "5d41402abc4b2a76b9719d911017c592");
	expect_entry(&l, 1, 1, "dir/", 0, 0, "");
	free(body);
}
END_TEST

START_TEST(test_list_empty)
{
	size_t len;
	char *body = fixture("list-empty.xml", &len);
	listing l = { 0 };
	int truncated;
	char token[256];
	ck_assert_int_eq(list_page(body, len, 0, &l, &truncated, token, sizeof(token)), 0);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(truncated, 0);
	ck_assert_str_eq(token, "(null)");
	free(body);
}
END_TEST

/* Entities, CDATA, non-ASCII, and spaces at either end of a key must come through byte for
 * byte; a CommonPrefixes before the Contents is still reported after them. Without
 * url_encoded, "%20" and '+' in a key are literal. */
START_TEST(test_list_specials)
{
	size_t len;
	char *body = fixture("list-specials.xml", &len);
	listing l = { 0 };
	int truncated;
	char token[256];
	ck_assert_int_eq(list_page(body, len, 0, &l, &truncated, token, sizeof(token)), 0);
	ck_assert_int_eq(truncated, 0);
	ck_assert_int_eq(l.n, 5);
	expect_entry(&l, 0, 0, "a&b<c>'d\".txt", 1, 1735689600, "plainquotes");
	expect_entry(&l, 1, 0, " lead and trail ", 2, 1735689600, "e");
	expect_entry(&l, 2, 0, "cdata \xe6\x95\xb0\xe6\x8d\xae/x%20y+z", 3, 1735689600, "f");
	expect_entry(&l, 3, 1, "p&q/", 0, 0, "");
	expect_entry(&l, 4, 1, "\xe6\x95\xb0\xe6\x8d\xae/", 0, 0, "");
	free(body);
}
END_TEST

/* AWS S3 answers encoding-type=url with form encoding: a space becomes '+', a literal '+'
 * becomes %2B, '/' stays (measured against S3; botocore decodes these keys with
 * unquote_plus). So with url_encoded set, '+' must decode to a space. */
START_TEST(test_list_url_encoded_aws)
{
	size_t len;
	char *body = fixture("list-url-aws.xml", &len);
	listing l = { 0 };
	int truncated;
	char token[256];
	ck_assert_int_eq(list_page(body, len, 1, &l, &truncated, token, sizeof(token)), 0);
	ck_assert_int_eq(l.n, 6);
	const char *etag = "6761d6772dc789aa1a2be9e51757c93b";
	expect_entry(&l, 0, 0, "run books/a b.txt", 10, 1760549395, etag);
	expect_entry(&l, 1, 0, "run books/a+b.txt", 11, 1760549395, etag);
	expect_entry(&l, 2, 0, "run books/100%.csv", 12, 1760549395, etag);
	expect_entry(&l, 3, 0, "run books/\xed\x95\x9c\xea\xb8\x80/x.txt", 13, 1760549395, etag);
	expect_entry(&l, 4, 1, "run books/sub dir/", 0, 0, "");
	expect_entry(&l, 5, 1, "run books/\xe6\x95\xb0\xe6\x8d\xae+%/", 0, 0, "");
	free(body);
}
END_TEST

/* MinIO (and Ceph) percent-encode everything, spaces as %20 and '/' as %2F. */
START_TEST(test_list_url_encoded_minio)
{
	size_t len;
	char *body = fixture("list-url-minio.xml", &len);
	listing l = { 0 };
	int truncated;
	char token[256];
	ck_assert_int_eq(list_page(body, len, 1, &l, &truncated, token, sizeof(token)), 0);
	ck_assert_int_eq(l.n, 4);
	const char *etag = "5d41402abc4b2a76b9719d911017c592";
	expect_entry(&l, 0, 0, "a b/file 1.txt", 1, 1760549395, etag);
	expect_entry(&l, 1, 0, "a b/c+d", 2, 1760549395, etag);
	expect_entry(&l, 2, 0, "a b/100%", 3, 1760549395, etag);
	expect_entry(&l, 3, 1, "a b/\xe6\x95\xb0\xe6\x8d\xae/\xc3\xb1/", 0, 0, "");
	free(body);
}
END_TEST

/* The same document without url_encoded: keys are taken literally, nothing decoded. */
START_TEST(test_list_url_not_requested)
{
	size_t len;
	char *body = fixture("list-url-aws.xml", &len);
	listing l = { 0 };
	int truncated;
	char token[256];
	ck_assert_int_eq(list_page(body, len, 0, &l, &truncated, token, sizeof(token)), 0);
	ck_assert_int_eq(l.n, 6);
	expect_entry(&l, 0, 0, "run+books/a+b.txt", 10, 1760549395,
		     "6761d6772dc789aa1a2be9e51757c93b");
	expect_entry(&l, 2, 0, "run+books/100%25.csv", 12, 1760549395,
		     "6761d6772dc789aa1a2be9e51757c93b");
	expect_entry(&l, 4, 1, "run+books/sub+dir/", 0, 0, "");
	free(body);
}
END_TEST

START_TEST(test_list_callback_stops)
{
	size_t len;
	char *body = fixture("list-page1.xml", &len);
	listing l = { .stop_after = 2, .stop_rc = 42 };
	int truncated;
	char token[256];
	ck_assert_int_eq(list_page(body, len, 0, &l, &truncated, token, sizeof(token)), 42);
	ck_assert_int_eq(l.n, 2); /* not called again after it asked to stop */
	free(body);
}
END_TEST

/* Bodies that must be rejected with -EIO. */
#define LBR_OPEN "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult " \
		 "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>false</IsTruncated>"
#define CONTENTS(key, size)                                                                  \
	"<Contents>" key "<LastModified>2025-10-15T17:29:55.000Z</LastModified>"             \
	"<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>" size "</Size>"     \
	"</Contents>"
#define LBR_CLOSE "</ListBucketResult>"

static const struct {
	const char *what;
	const char *body;
	int url_encoded;
} bad_lists[] = {
	{ "empty body", "", 0 },
	{ "whitespace only", " \n\t ", 0 },
	{ "not XML", "this is not xml at all", 0 },
	{ "HTML error page", "<html><body><h1>502 Bad Gateway</h1></body></html>", 0 },
	{ "JSON", "{\"Contents\": [{\"Key\": \"a\"}]}", 0 },
	{ "XML declaration only", "<?xml version=\"1.0\"?>", 0 },
	{ "unclosed root", LBR_OPEN CONTENTS("<Key>a</Key>", "1"), 0 },
	{ "mismatched tags", LBR_OPEN "<Contents><Key>a</Contents></Key>" LBR_CLOSE, 0 },
	{ "two roots", LBR_OPEN LBR_CLOSE LBR_OPEN LBR_CLOSE, 0 },
	{ "trailing garbage", LBR_OPEN LBR_CLOSE "garbage", 0 },
	{ "an Error document", "<Error><Code>NoSuchBucket</Code></Error>", 0 },
	{ "another result type",
	  "<InitiateMultipartUploadResult><UploadId>x</UploadId></InitiateMultipartUploadResult>",
	  0 },
	{ "Contents without Key", LBR_OPEN CONTENTS("", "1") LBR_CLOSE, 0 },
	{ "Size abc", LBR_OPEN CONTENTS("<Key>a</Key>", "abc") LBR_CLOSE, 0 },
	{ "Size negative", LBR_OPEN CONTENTS("<Key>a</Key>", "-1") LBR_CLOSE, 0 },
	{ "Size empty", LBR_OPEN CONTENTS("<Key>a</Key>", "") LBR_CLOSE, 0 },
	{ "Size with junk", LBR_OPEN CONTENTS("<Key>a</Key>", "12abc") LBR_CLOSE, 0 },
	{ "Size hex", LBR_OPEN CONTENTS("<Key>a</Key>", "0x10") LBR_CLOSE, 0 },
	{ "Size above 2^64", LBR_OPEN CONTENTS("<Key>a</Key>", "18446744073709551616") LBR_CLOSE,
	  0 },
	{ "Size huge", LBR_OPEN CONTENTS("<Key>a</Key>", "999999999999999999999999999999999")
	  LBR_CLOSE, 0 },
	{ "second Contents bad", LBR_OPEN CONTENTS("<Key>a</Key>", "1")
	  CONTENTS("<Key>b</Key>", "x") LBR_CLOSE, 0 },
	{ "bad escape in url-encoded key", LBR_OPEN CONTENTS("<Key>a%G1</Key>", "1") LBR_CLOSE,
	  1 },
	{ "cut escape in url-encoded key", LBR_OPEN CONTENTS("<Key>a%2</Key>", "1") LBR_CLOSE,
	  1 },
	{ "bad escape in url-encoded prefix",
	  LBR_OPEN "<CommonPrefixes><Prefix>%zz/</Prefix></CommonPrefixes>" LBR_CLOSE, 1 },
	{ "undefined entity", LBR_OPEN CONTENTS("<Key>&nosuch;</Key>", "1") LBR_CLOSE, 0 },
	{ "invalid UTF-8", LBR_OPEN CONTENTS("<Key>\xff\xfe</Key>", "1") LBR_CLOSE, 0 },
};

START_TEST(test_list_malformed)
{
	const char *body = bad_lists[_i].body;
	listing l = { 0 };
	int truncated;
	char token[256];
	int rc = list_page(body, strlen(body), bad_lists[_i].url_encoded, &l, &truncated, token,
			   sizeof(token));
	ck_assert_msg(rc == -EIO, "%s: rc %d, expected -EIO (-%d)", bad_lists[_i].what, rc, EIO);
}
END_TEST

/* An embedded NUL is not XML; the length, not strlen, bounds the input. */
START_TEST(test_list_embedded_nul)
{
	static const char body[] = LBR_OPEN CONTENTS("<Key>a\0b</Key>", "1") LBR_CLOSE;
	listing l = { 0 };
	int truncated;
	char token[256];
	int rc = list_page(body, sizeof(body) - 1, 0, &l, &truncated, token, sizeof(token));
	ck_assert_msg(rc == -EIO, "rc %d", rc);
}
END_TEST

/* The body need not be NUL-terminated: parse a valid listing followed by junk that is not
 * part of len. */
START_TEST(test_list_not_nul_terminated)
{
	static const char doc[] = LBR_OPEN CONTENTS("<Key>a</Key>", "7") LBR_CLOSE;
	size_t len = sizeof(doc) - 1;
	char *body = malloc(len + 16);
	ck_assert_ptr_nonnull(body);
	memcpy(body, doc, len);
	memset(body + len, '<', 16);
	listing l = { 0 };
	int truncated;
	char token[256];
	ck_assert_int_eq(list_page(body, len, 0, &l, &truncated, token, sizeof(token)), 0);
	ck_assert_int_eq(l.n, 1);
	expect_entry(&l, 0, 0, "a", 7, 1760549395, "d41d8cd98f00b204e9800998ecf8427e");
	free(body);
}
END_TEST

START_TEST(test_list_deep_nesting)
{
	/* 100000 levels of junk inside the root: more than libxml2 allows by default, and a
	 * recursive walk of it could overflow the stack. */
	enum { DEPTH = 100000 };
	sb s = SB_INIT;
	sb_puts(&s, LBR_OPEN);
	for (int i = 0; i < DEPTH; i++)
		sb_puts(&s, "<a>");
	for (int i = 0; i < DEPTH; i++)
		sb_puts(&s, "</a>");
	sb_puts(&s, LBR_CLOSE);
	ck_assert(!sb_failed(&s));
	listing l = { 0 };
	int truncated;
	char token[256];
	int rc = list_page(sb_str(&s), s.len, 0, &l, &truncated, token, sizeof(token));
	ck_assert_msg(rc == -EIO, "rc %d", rc);
	sb_free(&s);
}
END_TEST

START_TEST(test_list_unknown_elements_ignored)
{
	/* Elements a newer S3 may add (and moderate nesting) are not errors. */
	static const char doc[] = LBR_OPEN
		"<ChecksumType>FULL_OBJECT</ChecksumType><X><Y><Z>junk</Z></Y></X>"
		"<Contents><Key>k</Key><RestoreStatus><IsRestoreInProgress>false"
		"</IsRestoreInProgress></RestoreStatus>"
		"<LastModified>2025-10-15T17:29:55.000Z</LastModified>"
		"<ETag>&quot;e&quot;</ETag><Size>3</Size><Future>1</Future></Contents>"
		LBR_CLOSE;
	listing l = { 0 };
	int truncated;
	char token[256];
	ck_assert_int_eq(list_page(doc, sizeof(doc) - 1, 0, &l, &truncated, token, sizeof(token)),
			 0);
	ck_assert_int_eq(l.n, 1);
	expect_entry(&l, 0, 0, "k", 3, 1760549395, "e");
}
END_TEST

/* A billion-laughs document: expanding it takes 3 GB. The parser must refuse it or leave the
 * entities unexpanded, quickly (the tcase's timeout catches a hang). */
START_TEST(test_list_billion_laughs)
{
	size_t len;
	char *body = fixture("billion-laughs.xml", &len);
	listing l = { 0 };
	int truncated;
	char token[4096];
	int rc = list_page(body, len, 0, &l, &truncated, token, sizeof(token));
	ck_assert_msg(rc == -EIO || rc == 0, "rc %d", rc);
	if (rc == 0) {
		ck_assert_msg(strlen(token) < 100, "NextContinuationToken expanded: %zu bytes",
			      strlen(token));
		for (int i = 0; i < l.n; i++)
			ck_assert_msg(strlen(l.e[i].key) < 100, "key %d expanded", i);
	}
	free(body);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Every prefix of a valid document: -EIO (or, for the whole document minus trailing
 * whitespace, a clean parse), never a crash and never a partial listing passed off as
 * complete. */

typedef enum { KIND_LIST, KIND_LIST_URL, KIND_ERROR, KIND_UPLOAD_ID, KIND_ETAG } doc_kind;

static const struct {
	const char *file;
	doc_kind kind;
} prefix_docs[] = {
	{ "list-page1.xml", KIND_LIST },
	{ "list-minio.xml", KIND_LIST },
	{ "list-specials.xml", KIND_LIST },
	{ "list-url-aws.xml", KIND_LIST_URL },
	{ "list-url-minio.xml", KIND_LIST_URL },
	{ "list-empty.xml", KIND_LIST },
	{ "error-nosuchkey.xml", KIND_ERROR },
	{ "initiate-mpu.xml", KIND_UPLOAD_ID },
	{ "complete-mpu.xml", KIND_ETAG },
	{ "copy-object.xml", KIND_ETAG },
	{ "error-in-200.xml", KIND_ETAG },
};

static int parse_as(doc_kind kind, const char *body, size_t len, int *entries)
{
	*entries = 0;
	switch (kind) {
	case KIND_LIST:
	case KIND_LIST_URL: {
		listing l = { 0 };
		int truncated;
		char token[256];
		int rc = list_page(body, len, kind == KIND_LIST_URL, &l, &truncated, token,
				   sizeof(token));
		*entries = l.n;
		return rc;
	}
	case KIND_ERROR: {
		s3_error err;
		memset(&err, 0, sizeof(err));
		return s3_xml_error(body, len, &err);
	}
	case KIND_UPLOAD_ID: {
		char id[S3_UPLOAD_ID_MAX];
		return s3_xml_upload_id(body, len, id);
	}
	case KIND_ETAG: {
		char etag[80];
		s3_error err;
		memset(&err, 0, sizeof(err));
		int rc = s3_xml_etag_result(body, len, etag, &err);
		/* error-in-200.xml is -EIO even whole; tell it apart by the filled code */
		return rc == -EIO && err.code[0] ? 1 : rc;
	}
	}
	return -1;
}

START_TEST(test_every_prefix)
{
	size_t len;
	char *doc = fixture(prefix_docs[_i].file, &len);
	doc_kind kind = prefix_docs[_i].kind;
	int full_entries;
	int full_rc = parse_as(kind, doc, len, &full_entries);
	ck_assert_msg(full_rc == 0 || full_rc == 1, "%s: the whole document gives %d",
		      prefix_docs[_i].file, full_rc);

	size_t content_end = len;
	while (content_end > 0 && strchr(" \t\r\n", doc[content_end - 1]))
		content_end--;
	for (size_t n = 0; n < len; n++) {
		/* A private, exactly-sized copy so a read past len is visible to valgrind/ASan. */
		char *cut = malloc(n ? n : 1);
		ck_assert_ptr_nonnull(cut);
		memcpy(cut, doc, n);
		int entries;
		int rc = parse_as(kind, cut, n, &entries);
		if (n < content_end)
			ck_assert_msg(rc == -EIO, "%s cut to %zu of %zu bytes: rc %d, expected -EIO",
				      prefix_docs[_i].file, n, len, rc);
		else
			ck_assert_msg(rc == full_rc && entries == full_entries,
				      "%s cut to %zu bytes (only trailing whitespace missing): "
				      "rc %d with %d entries, expected %d with %d",
				      prefix_docs[_i].file, n, rc, entries, full_rc, full_entries);
		free(cut);
	}
	free(doc);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Error documents */

START_TEST(test_error_nosuchkey)
{
	size_t len;
	char *body = fixture("error-nosuchkey.xml", &len);
	s3_error err;
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(s3_xml_error(body, len, &err), 0);
	ck_assert_str_eq(err.code, "NoSuchKey");
	ck_assert_str_eq(err.message, "The specified key does not exist.");
	ck_assert_str_eq(err.request_id, "4442587FB7D0A2F9");
	free(body);
}
END_TEST

START_TEST(test_error_minio)
{
	size_t len;
	char *body = fixture("error-minio-access-denied.xml", &len);
	s3_error err;
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(s3_xml_error(body, len, &err), 0);
	ck_assert_str_eq(err.code, "AccessDenied");
	ck_assert_str_eq(err.message, "Access Denied.");
	ck_assert_str_eq(err.request_id, "186E7A0B2C8D3F41");
	free(body);
}
END_TEST

START_TEST(test_error_not_an_error_document)
{
	static const char *bodies[] = {
		"",
		"garbage",
		"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
		"<Error><Code>Unterminated</Code>",
		"<html><body>Service Unavailable</body></html>",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		s3_error err;
		memset(&err, 0, sizeof(err));
		int rc = s3_xml_error(bodies[i], strlen(bodies[i]), &err);
		ck_assert_msg(rc == -EIO, "\"%s\": rc %d, expected -EIO", bodies[i], rc);
	}
}
END_TEST

/* Over-long fields are cut to fit, NUL-terminated, and do not spill into the next field. */
START_TEST(test_error_long_fields)
{
	sb s = SB_INIT;
	sb_puts(&s, "<Error><Code>");
	for (int i = 0; i < 200; i++)
		sb_putc(&s, 'C');
	sb_puts(&s, "</Code><Message>");
	for (int i = 0; i < 2000; i++)
		sb_putc(&s, 'm');
	sb_puts(&s, "</Message><RequestId>");
	for (int i = 0; i < 500; i++)
		sb_putc(&s, 'R');
	sb_puts(&s, "</RequestId></Error>");
	struct {
		s3_error err;
		char canary[64];
	} box;
	memset(&box, 0, sizeof(box));
	memset(box.canary, 0x5a, sizeof(box.canary));
	ck_assert_int_eq(s3_xml_error(sb_str(&s), s.len, &box.err), 0);
	ck_assert_uint_lt(strlen(box.err.code), sizeof(box.err.code));
	ck_assert_uint_lt(strlen(box.err.message), sizeof(box.err.message));
	ck_assert_uint_lt(strlen(box.err.request_id), sizeof(box.err.request_id));
	ck_assert(strspn(box.err.code, "C") == strlen(box.err.code));
	ck_assert(strspn(box.err.message, "m") == strlen(box.err.message));
	ck_assert(strspn(box.err.request_id, "R") == strlen(box.err.request_id));
	for (size_t i = 0; i < sizeof(box.canary); i++)
		ck_assert_int_eq((unsigned char)box.canary[i], 0x5a);
	sb_free(&s);
}
END_TEST

/* An external entity must not be resolved (no file or network access). */
START_TEST(test_error_external_entity)
{
	char path[] = "/tmp/rwsplit-xxe-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	static const char secret[] = "TOP-SECRET-FILE-CONTENT";
	ck_assert_int_eq(write(fd, secret, sizeof(secret) - 1), (ssize_t)(sizeof(secret) - 1));
	close(fd);
	sb s = SB_INIT;
	sb_printf(&s,
		  "<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY xxe SYSTEM \"file://%s\">]>"
		  "<Error><Code>&xxe;</Code><Message>&xxe;</Message>"
		  "<RequestId>&xxe;</RequestId></Error>",
		  path);
	s3_error err;
	memset(&err, 0, sizeof(err));
	int rc = s3_xml_error(sb_str(&s), s.len, &err);
	unlink(path);
	ck_assert_msg(rc == 0 || rc == -EIO, "rc %d", rc);
	ck_assert_msg(!strstr(err.code, "SECRET") && !strstr(err.message, "SECRET") &&
		      !strstr(err.request_id, "SECRET"), "external entity was loaded");
	sb_free(&s);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* ListMultipartUploadsResult */

typedef struct seen_uploads {
	int n;
	char keys[4][64], ids[4][32];
	time_t initiated[4];
} seen_uploads;

static int collect_upload(void *arg, const char *key, const char *id, time_t initiated)
{
	seen_uploads *s = arg;
	ck_assert_int_lt(s->n, 4);
	snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
	snprintf(s->ids[s->n], sizeof s->ids[0], "%s", id);
	s->initiated[s->n++] = initiated;
	return 0;
}

START_TEST(test_uploads)
{
	size_t len;
	char *body = fixture("list-uploads.xml", &len);
	seen_uploads s = { 0 };
	ck_assert_int_eq(s3_xml_uploads(body, len, collect_upload, &s), 0);
	ck_assert_int_eq(s.n, 3);
	ck_assert_str_eq(s.keys[0], "run1/model.bin");
	ck_assert_str_eq(s.ids[0], "a1-first");
	ck_assert_int_eq(s.initiated[0], 1796282102); /* 2026-12-03T07:15:02Z */
	ck_assert_str_eq(s.ids[1], "b2");
	ck_assert_int_eq(s.initiated[1], 1796282103); /* fractions dropped */
	ck_assert_str_eq(s.keys[2], "run1/no date.bin");
	ck_assert_int_eq(s.initiated[2], 0); /* not given */
	free(body);
}
END_TEST

START_TEST(test_uploads_bad)
{
	static const char *const bad[] = {
		"",
		"<Error><Code>AccessDenied</Code></Error>",
		"<ListMultipartUploadsResult><Upload><Key>k</Key></Upload></ListMultipartUploadsResult>",
		"<ListMultipartUploadsResult><Upload><UploadId>i</UploadId></Upload>"
		"</ListMultipartUploadsResult>",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		seen_uploads s = { 0 };
		ck_assert_int_eq(s3_xml_uploads(bad[i], strlen(bad[i]), collect_upload, &s), -EIO);
	}
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* InitiateMultipartUploadResult */

START_TEST(test_upload_id)
{
	size_t len;
	char *body = fixture("initiate-mpu.xml", &len);
	char id[S3_UPLOAD_ID_MAX];
	ck_assert_int_eq(s3_xml_upload_id(body, len, id), 0);
	ck_assert_str_eq(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA--");
	free(body);
}
END_TEST

START_TEST(test_upload_id_bad)
{
	static const struct {
		const char *what, *body;
	} bad[] = {
		{ "empty", "" },
		{ "garbage", "nope" },
		{ "no UploadId",
		  "<InitiateMultipartUploadResult><Bucket>b</Bucket></InitiateMultipartUploadResult>" },
		{ "empty UploadId",
		  "<InitiateMultipartUploadResult><UploadId></UploadId>"
		  "</InitiateMultipartUploadResult>" },
		{ "an Error document",
		  "<Error><Code>NoSuchBucket</Code><UploadId>x</UploadId></Error>" },
		{ "truncated",
		  "<InitiateMultipartUploadResult><UploadId>abc</UploadId>" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char id[S3_UPLOAD_ID_MAX];
		int rc = s3_xml_upload_id(bad[i].body, strlen(bad[i].body), id);
		ck_assert_msg(rc == -EIO, "%s: rc %d, expected -EIO", bad[i].what, rc);
	}
}
END_TEST

/* An UploadId that does not fit must not overflow the buffer, and must not come back cut
 * short as a success: a truncated id would fail later as NoSuchUpload, far from the cause. */
START_TEST(test_upload_id_too_long)
{
	sb s = SB_INIT;
	sb_puts(&s, "<InitiateMultipartUploadResult><UploadId>");
	for (int i = 0; i < 4 * S3_UPLOAD_ID_MAX; i++)
		sb_putc(&s, 'U');
	sb_puts(&s, "</UploadId></InitiateMultipartUploadResult>");
	struct {
		char id[S3_UPLOAD_ID_MAX];
		char canary[64];
	} box;
	memset(box.canary, 0x5a, sizeof(box.canary));
	int rc = s3_xml_upload_id(sb_str(&s), s.len, box.id);
	for (size_t i = 0; i < sizeof(box.canary); i++)
		ck_assert_int_eq((unsigned char)box.canary[i], 0x5a);
	ck_assert_msg(rc == -EIO, "rc %d, expected -EIO", rc);
	sb_free(&s);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* CompleteMultipartUploadResult / CopyObjectResult, and the 200 that is an Error */

START_TEST(test_etag_complete)
{
	size_t len;
	char *body = fixture("complete-mpu.xml", &len);
	char etag[80] = "untouched";
	s3_error err;
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(s3_xml_etag_result(body, len, etag, &err), 0);
	ck_assert_str_eq(etag, "3858f62230ac3c915f300c664312c11f-9");
	/* etag is optional */
	ck_assert_int_eq(s3_xml_etag_result(body, len, NULL, &err), 0);
	free(body);
}
END_TEST

START_TEST(test_etag_copy_result)
{
	size_t len;
	char *body = fixture("copy-object.xml", &len);
	char etag[80];
	s3_error err;
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(s3_xml_etag_result(body, len, etag, &err), 0);
	ck_assert_str_eq(etag, "9b2cf535f27731c974343645a3985328");
	free(body);
}
END_TEST

/* CompleteMultipartUpload and CopyObject may answer 200 and then report an error in the
 * body (the request failed after the headers went out). */
START_TEST(test_etag_error_in_200)
{
	size_t len;
	char *body = fixture("error-in-200.xml", &len);
	char etag[80] = "";
	s3_error err;
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(s3_xml_etag_result(body, len, etag, &err), -EIO);
	ck_assert_str_eq(err.code, "InternalError");
	ck_assert_str_eq(err.message, "We encountered an internal error. Please try again.");
	ck_assert_str_eq(err.request_id, "656c76696e6727732072657175657374");
	free(body);
}
END_TEST

START_TEST(test_etag_bad)
{
	static const struct {
		const char *what, *body;
	} bad[] = {
		{ "empty", "" },
		{ "whitespace (a keep-alive space before the real body never came)", "   \n  " },
		{ "garbage", "<<<>>>" },
		{ "result without ETag",
		  "<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
		  "</CompleteMultipartUploadResult>" },
		{ "unrelated document", "<ListBucketResult></ListBucketResult>" },
		{ "truncated", "<CopyObjectResult><ETag>&quot;abc&quot;</ETag>" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char etag[80];
		s3_error err;
		memset(&err, 0, sizeof(err));
		int rc = s3_xml_etag_result(bad[i].body, strlen(bad[i].body), etag, &err);
		ck_assert_msg(rc == -EIO, "%s: rc %d, expected -EIO", bad[i].what, rc);
	}
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The CompleteMultipartUpload body, parsed back with libxml2 */

/* Text of the first child element of node called name, or NULL (caller xmlFree's). */
static xmlChar *child_text(xmlNode *node, const char *name)
{
	for (xmlNode *c = node->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && !xmlStrcmp(c->name, BAD_CAST name))
			return xmlNodeGetContent(c);
	return NULL;
}

/* Parses body and checks it lists exactly parts, in order, each ETag quoted. */
static void check_complete_body(const char *body, size_t len, const s3_part *parts, int nparts)
{
	xmlDoc *doc = xmlReadMemory(body, (int)len, NULL, NULL, XML_PARSE_NONET);
	ck_assert_msg(doc != NULL, "the body is not well-formed XML:\n%s", body);
	xmlNode *root = xmlDocGetRootElement(doc);
	ck_assert_ptr_nonnull(root);
	ck_assert_str_eq((const char *)root->name, "CompleteMultipartUpload");
	int i = 0;
	for (xmlNode *c = root->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		ck_assert_str_eq((const char *)c->name, "Part");
		ck_assert_msg(i < nparts, "more Part elements than parts");
		xmlChar *num = child_text(c, "PartNumber");
		xmlChar *etag = child_text(c, "ETag");
		ck_assert_msg(num && etag, "Part %d lacks PartNumber or ETag", i);
		char want_num[16], want_etag[96];
		snprintf(want_num, sizeof(want_num), "%d", parts[i].number);
		snprintf(want_etag, sizeof(want_etag), "\"%s\"", parts[i].etag);
		ck_assert_str_eq((const char *)num, want_num);
		ck_assert_str_eq((const char *)etag, want_etag);
		xmlFree(num);
		xmlFree(etag);
		i++;
	}
	ck_assert_int_eq(i, nparts);
	xmlFreeDoc(doc);
}

START_TEST(test_complete_body)
{
	s3_part parts[] = {
		{ 1, "a54357aff0632cce46d942af68356b38" },
		{ 2, "0c78aef83f66abc1fa1e8477f296d394" },
		{ 3, "acbd18db4cc2f85cedef654fccc4a4d8" },
	};
	sb out = SB_INIT;
	s3_xml_complete_body(&out, parts, 3);
	ck_assert(!sb_failed(&out));
	check_complete_body(sb_str(&out), out.len, parts, 3);
	/* Part order is the caller's (S3 requires ascending; the builder must not reorder). */
	const char *p1 = strstr(sb_str(&out), parts[0].etag);
	const char *p3 = strstr(sb_str(&out), parts[2].etag);
	ck_assert(p1 && p3 && p1 < p3);
	sb_free(&out);
}
END_TEST

START_TEST(test_complete_body_appends)
{
	s3_part part = { 7, "0123456789abcdef0123456789abcdef-2" };
	sb out = SB_INIT;
	sb_puts(&out, "KEEP");
	s3_xml_complete_body(&out, &part, 1);
	ck_assert(strncmp(sb_str(&out), "KEEP", 4) == 0);
	check_complete_body(sb_str(&out) + 4, out.len - 4, &part, 1);
	sb_free(&out);
}
END_TEST

START_TEST(test_complete_body_escapes)
{
	/* ETags come from response headers; a hostile or odd one must not break the XML. */
	s3_part parts[] = { { 1, "a&b<c>d]]>e'f" }, { 2, "</ETag></Part><Part>" } };
	sb out = SB_INIT;
	s3_xml_complete_body(&out, parts, 2);
	check_complete_body(sb_str(&out), out.len, parts, 2);
	sb_free(&out);
}
END_TEST

START_TEST(test_complete_body_max_parts)
{
	s3_part *parts = calloc(S3_MAX_PARTS, sizeof(*parts));
	ck_assert_ptr_nonnull(parts);
	for (int i = 0; i < S3_MAX_PARTS; i++) {
		parts[i].number = i + 1;
		snprintf(parts[i].etag, sizeof(parts[i].etag), "%032x", (unsigned)i * 2654435761u);
	}
	sb out = SB_INIT;
	s3_xml_complete_body(&out, parts, S3_MAX_PARTS);
	ck_assert(!sb_failed(&out));
	check_complete_body(sb_str(&out), out.len, parts, S3_MAX_PARTS);
	sb_free(&out);
	free(parts);
}
END_TEST

START_TEST(test_complete_body_empty)
{
	sb out = SB_INIT;
	s3_xml_complete_body(&out, NULL, 0);
	check_complete_body(sb_str(&out), out.len, NULL, 0);
	sb_free(&out);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Dates */

static const struct {
	const char *in;
	time_t want;
} iso_dates[] = {
	{ "2025-10-15T17:29:55.000Z", 1760549395 },
	{ "2025-10-15T17:29:55Z", 1760549395 },
	{ "2025-10-15T17:29:55.123Z", 1760549395 },   /* MinIO's milliseconds */
	{ "2025-10-15T17:29:55.999999Z", 1760549395 }, /* fractions are dropped, not rounded */
	{ "2024-02-29T23:59:59.000Z", 1709251199 },
	{ "1970-01-01T00:00:00.000Z", 0 },
	{ "2038-01-19T03:14:08.000Z", 2147483648LL }, /* past 32-bit time_t */
	{ "2099-12-31T23:59:59Z", 4102444799LL },
	{ "", -1 },
	{ "garbage", -1 },
	{ "2025-10-15", -1 },
	{ "2025-10-15T17:29", -1 },
	{ "2025-13-15T17:29:55.000Z", -1 },
	{ "2025-00-15T17:29:55.000Z", -1 },
	{ "2025-10-32T17:29:55.000Z", -1 },
	{ "2025-10-00T17:29:55.000Z", -1 },
	{ "2025-10-15T24:29:55.000Z", -1 },
	{ "2025-10-15T17:60:55.000Z", -1 },
	{ "2025-10-15T17:29:61.000Z", -1 },
	{ "2025-1a-15T17:29:55.000Z", -1 },
	{ "2025-10-15T17:29:55.000Zjunk", -1 },
	{ "Wed, 15 Oct 2025 17:29:55 GMT", -1 },
};

START_TEST(test_parse_iso8601)
{
	time_t got = s3_parse_iso8601(iso_dates[_i].in);
	ck_assert_msg(got == iso_dates[_i].want, "s3_parse_iso8601(\"%s\") = %lld, expected %lld",
		      iso_dates[_i].in, (long long)got, (long long)iso_dates[_i].want);
}
END_TEST

static const struct {
	const char *in;
	time_t want;
} http_dates[] = {
	{ "Wed, 15 Oct 2025 17:29:55 GMT", 1760549395 },
	{ "Thu, 29 Feb 2024 23:59:59 GMT", 1709251199 },
	{ "Thu, 01 Jan 1970 00:00:00 GMT", 0 },
	{ "Tue, 19 Jan 2038 03:14:08 GMT", 2147483648LL },
	{ "Mon, 12 Oct 2009 17:50:30 GMT", 1255369830 },
	{ "", -1 },
	{ "garbage", -1 },
	{ "Wed, 15 Foo 2025 17:29:55 GMT", -1 },
	{ "Wed, 32 Oct 2025 17:29:55 GMT", -1 },
	{ "Wed, 15 Oct 2025 25:29:55 GMT", -1 },
	{ "Wed, 15 Oct 2025", -1 },
	{ "2025-10-15T17:29:55.000Z", -1 },
};

START_TEST(test_parse_http_date)
{
	time_t got = s3_parse_http_date(http_dates[_i].in);
	ck_assert_msg(got == http_dates[_i].want,
		      "s3_parse_http_date(\"%s\") = %lld, expected %lld", http_dates[_i].in,
		      (long long)got, (long long)http_dates[_i].want);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* s3_etag_copy */

static const struct {
	const char *in;
	size_t cap;
	const char *want;
} etags[] = {
	{ "\"d41d8cd98f00b204e9800998ecf8427e\"", 80, "d41d8cd98f00b204e9800998ecf8427e" },
	{ "&quot;d41d8cd98f00b204e9800998ecf8427e&quot;", 80, "d41d8cd98f00b204e9800998ecf8427e" },
	{ "d41d8cd98f00b204e9800998ecf8427e", 80, "d41d8cd98f00b204e9800998ecf8427e" },
	{ "\"3858f62230ac3c915f300c664312c11f-9\"", 80, "3858f62230ac3c915f300c664312c11f-9" },
	{ "", 80, "" },
	{ "\"\"", 80, "" },
	{ "\"abcdef\"", 4, "abc" }, /* cut to fit, NUL-terminated */
	{ "abcdef", 1, "" },
};

START_TEST(test_etag_copy)
{
	char out[96];
	memset(out, 'X', sizeof(out));
	s3_etag_copy(out, etags[_i].cap, etags[_i].in);
	ck_assert_msg(strcmp(out, etags[_i].want) == 0,
		      "s3_etag_copy(\"%s\", cap %zu) = \"%s\", expected \"%s\"", etags[_i].in,
		      etags[_i].cap, out, etags[_i].want);
	ck_assert_msg(out[etags[_i].cap] == 'X', "wrote past cap %zu", etags[_i].cap);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *xml_suite(void)
{
	Suite *s = suite_create("s3_xml");

	TCase *tc = tcase_create("list");
	tcase_add_test(tc, test_list_page_truncated);
	tcase_add_test(tc, test_list_minio);
	tcase_add_test(tc, test_list_empty);
	tcase_add_test(tc, test_list_specials);
	tcase_add_test(tc, test_list_url_encoded_aws);
	tcase_add_test(tc, test_list_url_encoded_minio);
	tcase_add_test(tc, test_list_url_not_requested);
	tcase_add_test(tc, test_list_callback_stops);
	tcase_add_test(tc, test_list_not_nul_terminated);
	tcase_add_test(tc, test_list_unknown_elements_ignored);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_set_timeout(tc, 60); /* the prefix loops parse thousands of documents */
	tcase_add_loop_test(tc, test_list_malformed, 0, N(bad_lists));
	tcase_add_test(tc, test_list_embedded_nul);
	tcase_add_test(tc, test_list_deep_nesting);
	tcase_add_test(tc, test_list_billion_laughs);
	tcase_add_loop_test(tc, test_every_prefix, 0, N(prefix_docs));
	suite_add_tcase(s, tc);

	tc = tcase_create("error");
	tcase_add_test(tc, test_error_nosuchkey);
	tcase_add_test(tc, test_error_minio);
	tcase_add_test(tc, test_error_not_an_error_document);
	tcase_add_test(tc, test_error_long_fields);
	tcase_add_test(tc, test_error_external_entity);
	suite_add_tcase(s, tc);

	tc = tcase_create("multipart");
	tcase_add_test(tc, test_uploads);
	tcase_add_test(tc, test_uploads_bad);
	tcase_add_test(tc, test_upload_id);
	tcase_add_test(tc, test_upload_id_bad);
	tcase_add_test(tc, test_upload_id_too_long);
	tcase_add_test(tc, test_etag_complete);
	tcase_add_test(tc, test_etag_copy_result);
	tcase_add_test(tc, test_etag_error_in_200);
	tcase_add_test(tc, test_etag_bad);
	tcase_add_test(tc, test_complete_body);
	tcase_add_test(tc, test_complete_body_appends);
	tcase_add_test(tc, test_complete_body_escapes);
	tcase_add_test(tc, test_complete_body_max_parts);
	tcase_add_test(tc, test_complete_body_empty);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_loop_test(tc, test_parse_iso8601, 0, N(iso_dates));
	tcase_add_loop_test(tc, test_parse_http_date, 0, N(http_dates));
	tcase_add_loop_test(tc, test_etag_copy, 0, N(etags));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(xml_suite());
}
