/* S3 XML with libxml2. Responses are untrusted: documents with a DTD are refused (S3 never
 * sends one, and refusing it rules out entity expansion), and every field is validated. */
#include "s3/s3_xml.h"
#include "s3/s3_sigv4.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

static xmlDocPtr parse(const char *body, size_t len)
{
	if (!body || len == 0 || len > INT_MAX)
		return NULL;
	xmlDocPtr doc = xmlReadMemory(body, (int)len, "s3.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc && (doc->intSubset || doc->extSubset)) {
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

static int is_element(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr root_named(xmlDocPtr doc, const char *name)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);
	return is_element(root, name) ? root : NULL;
}

static xmlNodePtr child(const xmlNode *parent, const char *name)
{
	for (xmlNodePtr n = parent->children; n; n = n->next)
		if (is_element(n, name))
			return n;
	return NULL;
}

/* The element's direct text (text and CDATA children only; entity references are never
 * followed). Returns a malloc'd string, "" for an empty element, NULL when n is NULL or on
 * allocation failure. */
static char *text_of(const xmlNode *n)
{
	if (!n)
		return NULL;
	sb s = SB_INIT;
	for (xmlNodePtr c = n->children; c; c = c->next)
		if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
			sb_puts(&s, (const char *)c->content);
	return sb_take(&s);
}

/* Copies child text into out (cap bytes, truncated). Returns 0 when the child exists. */
static int copy_child(const xmlNode *parent, const char *name, char *out, size_t cap)
{
	char *t = text_of(child(parent, name));
	if (!t)
		return -1;
	snprintf(out, cap, "%s", t);
	free(t);
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

/* Decodes an encoding-type=url value: %XX escapes and '+' for space (S3 and MinIO encode a
 * literal '+' as %2B). Returns a malloc'd string or NULL when malformed. */
static char *url_decode(const char *s)
{
	sb out = SB_INIT;
	for (; *s; s++) {
		if (*s == '+') {
			sb_putc(&out, ' ');
		} else if (*s == '%') {
			if (!s[1] || !s[2] || s3_uri_decode(&out, s, 3) < 0) {
				sb_free(&out);
				return NULL;
			}
			s += 2;
		} else {
			sb_putc(&out, *s);
		}
	}
	return sb_take(&out);
}

void s3_etag_copy(char *out, size_t cap, const char *etag)
{
	if (!out || cap == 0)
		return;
	if (!etag)
		etag = "";
	size_t len = strlen(etag);
	if (len >= 2 && etag[0] == '"' && etag[len - 1] == '"') {
		etag++;
		len -= 2;
	} else if (len >= 12 && strncmp(etag, "&quot;", 6) == 0 &&
		   strcmp(etag + len - 6, "&quot;") == 0) {
		etag += 6;
		len -= 12;
	}
	if (len >= cap)
		len = cap - 1;
	memcpy(out, etag, len);
	out[len] = '\0';
}

int s3_xml_error(const char *body, size_t len, s3_error *err)
{
	xmlDocPtr doc = parse(body, len);
	xmlNodePtr root = doc ? root_named(doc, "Error") : NULL;
	int rc = -EIO;
	if (root) {
		copy_child(root, "Code", err->code, sizeof err->code);
		copy_child(root, "Message", err->message, sizeof err->message);
		copy_child(root, "RequestId", err->request_id, sizeof err->request_id);
		rc = err->code[0] ? 0 : -EIO;
	}
	xmlFreeDoc(doc);
	return rc;
}

/* Fills e from a <Contents> element; strings are malloc'd into *key and *etag. */
static int contents_entry(const xmlNode *c, int url_encoded, s3_list_entry *e, char **key,
			  char **etag)
{
	char *raw = text_of(child(c, "Key"));
	char *size = text_of(child(c, "Size"));
	char *mtime = text_of(child(c, "LastModified"));
	char *tag = text_of(child(c, "ETag"));
	int rc = -EIO;
	if (!raw || !*raw || !size)
		goto out;
	*key = url_encoded ? url_decode(raw) : strdup(raw);
	if (!*key || parse_u64(size, &e->size) < 0)
		goto out;
	e->mtime = mtime ? s3_parse_iso8601(mtime) : 0;
	if (e->mtime < 0)
		e->mtime = 0;
	char clean[80];
	s3_etag_copy(clean, sizeof clean, tag);
	*etag = strdup(clean);
	if (!*etag)
		goto out;
	e->is_prefix = 0;
	e->key = *key;
	e->etag = *etag;
	rc = 0;
out:
	free(raw);
	free(size);
	free(mtime);
	free(tag);
	return rc;
}

int s3_xml_list_page(const char *body, size_t len, int url_encoded, s3_list_cb cb, void *arg,
		     int *truncated, char **next_token)
{
	*truncated = 0;
	*next_token = NULL;
	xmlDocPtr doc = parse(body, len);
	xmlNodePtr root = doc ? root_named(doc, "ListBucketResult") : NULL;
	if (!root) {
		xmlFreeDoc(doc);
		return -EIO;
	}
	int rc = 0;
	char *trunc = text_of(child(root, "IsTruncated"));
	*truncated = trunc && strcmp(trunc, "true") == 0;
	free(trunc);
	if (*truncated) {
		*next_token = text_of(child(root, "NextContinuationToken"));
		if (!*next_token || !**next_token) {
			rc = -EIO; /* a truncated page must say where to go on */
			goto out;
		}
	}
	/* Validate every entry before reporting any, so a bad page reports nothing twice when
	 * the caller retries it. */
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		for (xmlNodePtr n = root->children; n && rc == 0; n = n->next) {
			if (!is_element(n, "Contents"))
				continue;
			s3_list_entry e = { 0 };
			char *key = NULL, *etag = NULL;
			rc = contents_entry(n, url_encoded, &e, &key, &etag);
			if (rc == 0 && pass == 1)
				rc = cb(arg, &e);
			free(key);
			free(etag);
		}
		for (xmlNodePtr n = root->children; n && rc == 0; n = n->next) {
			if (!is_element(n, "CommonPrefixes"))
				continue;
			char *raw = text_of(child(n, "Prefix"));
			char *prefix = raw && *raw ? (url_encoded ? url_decode(raw) : strdup(raw)) : NULL;
			free(raw);
			if (!prefix) {
				rc = -EIO;
				break;
			}
			s3_list_entry e = { .is_prefix = 1, .key = prefix, .etag = "" };
			if (pass == 1)
				rc = cb(arg, &e);
			free(prefix);
		}
	}
out:
	if (rc != 0) {
		free(*next_token);
		*next_token = NULL;
	}
	xmlFreeDoc(doc);
	return rc;
}

int s3_xml_upload_id(const char *body, size_t len, char *upload_id)
{
	xmlDocPtr doc = parse(body, len);
	xmlNodePtr root = doc ? root_named(doc, "InitiateMultipartUploadResult") : NULL;
	int rc = -EIO;
	if (root) {
		char *id = text_of(child(root, "UploadId"));
		size_t len = id ? strlen(id) : 0;
		if (len > 0 && len < S3_UPLOAD_ID_MAX) {
			memcpy(upload_id, id, len + 1);
			rc = 0;
		}
		free(id);
	}
	xmlFreeDoc(doc);
	return rc;
}

int s3_xml_etag_result(const char *body, size_t len, char *etag, s3_error *err)
{
	xmlDocPtr doc = parse(body, len);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
	int rc = -EIO;
	if (is_element(root, "Error")) {
		if (err) {
			copy_child(root, "Code", err->code, sizeof err->code);
			copy_child(root, "Message", err->message, sizeof err->message);
			copy_child(root, "RequestId", err->request_id, sizeof err->request_id);
		}
	} else if (is_element(root, "CompleteMultipartUploadResult") ||
		   is_element(root, "CopyObjectResult") || is_element(root, "CopyPartResult")) {
		char *tag = text_of(child(root, "ETag"));
		if (tag && *tag) {
			if (etag)
				s3_etag_copy(etag, 80, tag);
			rc = 0;
		}
		free(tag);
	}
	xmlFreeDoc(doc);
	return rc;
}

int s3_xml_uploads(const char *body, size_t len, s3_upload_cb cb, void *arg)
{
	xmlDocPtr doc = parse(body, len);
	xmlNodePtr root = doc ? root_named(doc, "ListMultipartUploadsResult") : NULL;
	int rc = root ? 0 : -EIO;
	for (xmlNodePtr n = root ? root->children : NULL; n && rc == 0; n = n->next) {
		if (!is_element(n, "Upload"))
			continue;
		char *key = text_of(child(n, "Key"));
		char *id = text_of(child(n, "UploadId"));
		char *when = text_of(child(n, "Initiated"));
		time_t initiated = when ? s3_parse_iso8601(when) : 0;
		rc = key && id && *key && *id ? cb(arg, key, id, initiated < 0 ? 0 : initiated)
					      : -EIO;
		free(key);
		free(id);
		free(when);
	}
	xmlFreeDoc(doc);
	return rc;
}

static void xml_escape(sb *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': sb_puts(out, "&amp;"); break;
		case '<': sb_puts(out, "&lt;"); break;
		case '>': sb_puts(out, "&gt;"); break;
		case '"': sb_puts(out, "&quot;"); break;
		default: sb_putc(out, *s);
		}
	}
}

void s3_xml_complete_body(sb *out, const s3_part *parts, int nparts)
{
	sb_puts(out, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (int i = 0; i < nparts; i++) {
		sb_printf(out, "<Part><PartNumber>%d</PartNumber><ETag>&quot;", parts[i].number);
		xml_escape(out, parts[i].etag);
		sb_puts(out, "&quot;</ETag></Part>");
	}
	sb_puts(out, "</CompleteMultipartUpload>");
}

static int valid_tm(const struct tm *tm)
{
	return tm->tm_year >= 70 && tm->tm_mon >= 0 && tm->tm_mon < 12 && tm->tm_mday >= 1 &&
	       tm->tm_mday <= 31 && tm->tm_hour >= 0 && tm->tm_hour < 24 && tm->tm_min >= 0 &&
	       tm->tm_min < 60 && tm->tm_sec >= 0 && tm->tm_sec <= 60;
}

time_t s3_parse_iso8601(const char *s)
{
	struct tm tm = { 0 };
	int n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
		return -1;
	const char *p = s + n;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (strcmp(p, "Z") != 0)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return valid_tm(&tm) ? timegm(&tm) : -1;
}

time_t s3_parse_http_date(const char *s)
{
	/* Parsed by hand: strptime() depends on the host program's LC_TIME. */
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm = { 0 };
	char wday[4], mon[4], zone[4];
	int n = 0;
	if (!s || sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d %3s%n", wday, &tm.tm_mday, mon,
			 &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, zone, &n) != 8 ||
	    s[n] != '\0' || strcmp(zone, "GMT") != 0 || strlen(mon) != 3)
		return -1;
	const char *m = strstr(months, mon);
	if (!m || (m - months) % 3)
		return -1;
	tm.tm_mon = (int)(m - months) / 3;
	tm.tm_year -= 1900;
	return valid_tm(&tm) ? timegm(&tm) : -1;
}

/* The first element called name at most depth levels below n (breadth first is not needed:
 * the documents are small and the names unique). */
static xmlNodePtr find(xmlNodePtr n, const char *name, int depth)
{
	for (xmlNodePtr c = n ? n->children : NULL; c && depth > 0; c = c->next) {
		if (is_element(c, name))
			return c;
		xmlNodePtr below = find(c, name, depth - 1);
		if (below)
			return below;
	}
	return NULL;
}

/* Copies the first child that exists of names[] into out; -1 when none does or it does not
 * fit (a credential is never cut). */
static int copy_one_of(const xmlNode *parent, const char *const *names, char *out, size_t cap)
{
	for (; *names; names++) {
		char *t = text_of(child(parent, *names));
		if (!t)
			continue;
		size_t n = strlen(t);
		int rc = n > 0 && n < cap ? 0 : -1;
		if (rc == 0)
			memcpy(out, t, n + 1);
		free(t);
		return rc;
	}
	return -1;
}

int s3_xml_sts_credentials(const char *body, size_t len, s3_cred_values *v, time_t *expires,
			   s3_error *err)
{
	static const char *const ids[] = { "AccessKeyId", NULL };
	static const char *const secrets[] = { "SecretAccessKey", "AccessKeySecret", NULL };
	static const char *const tokens[] = { "SessionToken", "SecurityToken", NULL };
	memset(v, 0, sizeof *v);
	xmlDocPtr doc = parse(body, len);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
	int rc = -EIO;
	xmlNodePtr e = is_element(root, "Error") ? root : root ? find(root, "Error", 1) : NULL;
	xmlNodePtr cr = root && !e ? find(root, "Credentials", 2) : NULL;
	if (e) {
		if (err) {
			copy_child(e, "Code", err->code, sizeof err->code);
			copy_child(e, "Message", err->message, sizeof err->message);
			if (copy_child(e, "RequestId", err->request_id, sizeof err->request_id) < 0)
				copy_child(root, "RequestId", err->request_id, sizeof err->request_id);
		}
		rc = -EACCES;
	} else if (cr) {
		char when[64] = "";
		if (copy_one_of(cr, ids, v->access_key, sizeof v->access_key) == 0 &&
		    copy_one_of(cr, secrets, v->secret_key, sizeof v->secret_key) == 0 &&
		    copy_one_of(cr, tokens, v->token, sizeof v->token) == 0 &&
		    copy_child(cr, "Expiration", when, sizeof when) == 0 &&
		    (*expires = s3_parse_iso8601(when)) > 0)
			rc = 0;
		else
			memset(v, 0, sizeof *v);
	}
	xmlFreeDoc(doc);
	return rc;
}
