/* s3get: the server's ceiling for a set of objects. Reads every listed object fully with
 * GetObject over libcurl's multi interface, N transfers in flight, connections reused, SigV4
 * signed by libcurl itself (CURLOPT_AWS_SIGV4), the bodies counted and dropped.
 *
 *   s3get ENDPOINT BUCKET CONCURRENCY KEYS_FILE               whole objects, one GET each
 *   s3get ENDPOINT BUCKET CONCURRENCY KEYS_FILE PART_BYTES    ranged GETs of PART_BYTES
 *
 * KEYS_FILE has one "KEY SIZE" line per object (keys made of URL-safe characters). The
 * credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the region from AWS_REGION
 * (default us-east-1). Whole mode prints one line "objects=N bytes=B seconds=S failed=F" (S
 * measured from the first request to the last byte). Ranged mode splits every object into
 * parts of PART_BYTES (the last one shorter), reads them in order with CONCURRENCY ranged
 * GETs in flight -- what a client filling one large object in parallel does -- and prints
 * "objects=N parts=P bytes=B seconds=S failed=F". Exits 1 if any GET failed or came back
 * short.
 * Build: gcc -O2 -o s3get s3get.c -lcurl
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, strdup under -std=c11 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONCURRENCY 256

struct object {
	char *key;
	long long size;
};

/* One GET: a whole object (len < 0, no Range header) or the bytes [off, off + len). */
struct piece {
	size_t obj;
	long long off, len;
};

struct slot {
	CURL *easy;
	size_t index;          /* the piece this slot is reading */
	long long got;
	char url[2048];
	char range[64];
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	struct slot *s = userdata;
	s->got += (long long)(size * nmemb);
	return size * nmemb;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct object *read_keys(const char *path, size_t *count)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		return NULL;
	}
	size_t cap = 1024, n = 0;
	struct object *objs = malloc(cap * sizeof *objs);
	char key[1100];
	long long size;
	while (objs && fscanf(f, "%1023s %lld", key, &size) == 2) {
		if (n == cap) {
			cap *= 2;
			struct object *grown = realloc(objs, cap * sizeof *objs);
			if (!grown) {
				free(objs);
				objs = NULL;
				break;
			}
			objs = grown;
		}
		objs[n].key = strdup(key);
		objs[n].size = size;
		n++;
	}
	fclose(f);
	*count = n;
	return objs;
}

/* The GETs to send: one per object, or with part > 0 each object cut into parts of that
 * many bytes (an empty object still gets one whole GET, as there is no range to ask for). */
static struct piece *make_pieces(const struct object *objs, size_t n, long long part,
				 size_t *count)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += part > 0 && objs[i].size > 0 ? (size_t)((objs[i].size + part - 1) / part) : 1;
	struct piece *p = malloc((total ? total : 1) * sizeof *p);
	if (!p)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (part <= 0 || objs[i].size == 0) {
			p[k++] = (struct piece){ i, 0, -1 };
			continue;
		}
		for (long long off = 0; off < objs[i].size; off += part)
			p[k++] = (struct piece){ i, off,
						 objs[i].size - off < part ? objs[i].size - off : part };
	}
	*count = total;
	return p;
}

static long long piece_bytes(const struct piece *p, const struct object *objs)
{
	return p->len < 0 ? objs[p->obj].size : p->len;
}

static void start(CURLM *multi, struct slot *s, const char *endpoint, const char *bucket,
		  const struct object *objs, const struct piece *pieces, size_t index)
{
	const struct piece *p = &pieces[index];
	s->index = index;
	s->got = 0;
	snprintf(s->url, sizeof s->url, "%s/%s/%s", endpoint, bucket, objs[p->obj].key);
	curl_easy_setopt(s->easy, CURLOPT_URL, s->url);
	if (p->len < 0) {
		curl_easy_setopt(s->easy, CURLOPT_RANGE, NULL);
	} else {
		snprintf(s->range, sizeof s->range, "%lld-%lld", p->off, p->off + p->len - 1);
		curl_easy_setopt(s->easy, CURLOPT_RANGE, s->range);
	}
	curl_multi_add_handle(multi, s->easy);
}

/* A whole GET must answer 200; a ranged one 206, or 200 when the range was the whole
 * object (a server may ignore such a Range). Either way every byte asked for, no more. */
static int piece_ok(const struct piece *p, const struct object *objs, long status,
		    long long got)
{
	long long want = piece_bytes(p, objs);
	if (got != want)
		return 0;
	if (p->len < 0)
		return status == 200;
	return status == 206 || (status == 200 && p->off == 0 && p->len == objs[p->obj].size);
}

int main(int argc, char **argv)
{
	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: s3get ENDPOINT BUCKET CONCURRENCY KEYS_FILE [PART_BYTES]\n");
		return 64;
	}
	const char *endpoint = argv[1], *bucket = argv[2];
	int concurrency = atoi(argv[3]);
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *region = getenv("AWS_REGION");
	if (concurrency < 1 || concurrency > MAX_CONCURRENCY || !ak || !sk) {
		fprintf(stderr, "s3get: bad concurrency or missing AWS_ACCESS_KEY_ID/SECRET\n");
		return 64;
	}
	long long part = 0;
	if (argc == 6) {
		char *end;
		part = strtoll(argv[5], &end, 10);
		if (*end || part < 1) {
			fprintf(stderr, "s3get: PART_BYTES must be a positive number of bytes\n");
			return 64;
		}
	}
	size_t n = 0;
	struct object *objs = read_keys(argv[4], &n);
	if (!objs)
		return 66;
	size_t npieces = 0;
	struct piece *pieces = make_pieces(objs, n, part, &npieces);
	if (!pieces)
		return 71;

	char sigv4[128], userpwd[512];
	snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", region && *region ? region : "us-east-1");
	snprintf(userpwd, sizeof userpwd, "%s:%s", ak, sk);
	struct curl_slist *headers =
		curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURLM *multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)concurrency);
	struct slot slots[MAX_CONCURRENCY];
	for (int i = 0; i < concurrency; i++) {
		CURL *e = curl_easy_init();
		slots[i].easy = e;
		curl_easy_setopt(e, CURLOPT_PRIVATE, &slots[i]);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &slots[i]);
		curl_easy_setopt(e, CURLOPT_AWS_SIGV4, sigv4);
		curl_easy_setopt(e, CURLOPT_USERPWD, userpwd);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 5L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);   /* a stalled transfer fails */
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);
	}

	double t0 = now();
	size_t next = 0, done = 0, failed = 0;
	long long bytes = 0;
	for (int i = 0; i < concurrency && next < npieces; i++)
		start(multi, &slots[i], endpoint, bucket, objs, pieces, next++);
	while (done < npieces) {
		int running = 0;
		if (curl_multi_perform(multi, &running) != CURLM_OK)
			break;
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct slot *s;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			long status = 0;
			curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
			CURLcode rc = msg->data.result;
			curl_multi_remove_handle(multi, s->easy);
			const struct piece *p = &pieces[s->index];
			if (rc != CURLE_OK || !piece_ok(p, objs, status, s->got)) {
				if (failed++ < 5)
					fprintf(stderr, "s3get: %s (bytes from %lld): %s, HTTP %ld, "
						"%lld of %lld bytes\n", objs[p->obj].key, p->off,
						curl_easy_strerror(rc), status, s->got,
						piece_bytes(p, objs));
			} else {
				bytes += s->got;
			}
			done++;
			if (next < npieces)
				start(multi, s, endpoint, bucket, objs, pieces, next++);
		}
		if (done < npieces)
			curl_multi_poll(multi, NULL, 0, 1000, NULL);
	}
	double seconds = now() - t0;
	/* Whole mode keeps its original line: the small-file scripts' reports quote it. */
	if (part > 0)
		printf("objects=%zu parts=%zu bytes=%lld seconds=%.4f failed=%zu\n", n, done, bytes,
		       seconds, failed);
	else
		printf("objects=%zu bytes=%lld seconds=%.4f failed=%zu\n", done, bytes, seconds,
		       failed);

	for (int i = 0; i < concurrency; i++)
		curl_easy_cleanup(slots[i].easy);
	curl_multi_cleanup(multi);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	for (size_t i = 0; i < n; i++)
		free(objs[i].key);
	free(objs);
	free(pieces);
	return failed || done != npieces ? 1 : 0;
}
