/* Uploading one file of a tree: PutObject below the route's multipart_threshold, else a
 * multipart upload with part_concurrency parts in flight (part size grown to stay within
 * 10,000 parts), aborted on any failure so that no parts stay billed. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/pool.h"
#include "uploader/up_engine.h"

typedef struct mpu {
	s3_client *c;
	const char *bucket, *key, *upload_id;
	int fd;
	uint64_t size, part_size;
	int nparts;
	atomic_int next;         /* next part number to take */
	atomic_int failed;       /* first error (-errno) */
	s3_part *parts;
	s3_error err;            /* of the first failure */
} mpu;

static void part_worker(void *arg)
{
	mpu *m = arg;
	for (int n; !atomic_load(&m->failed) && (n = atomic_fetch_add(&m->next, 1)) <= m->nparts;) {
		uint64_t off = (uint64_t)(n - 1) * m->part_size;
		uint64_t len = m->size - off < m->part_size ? m->size - off : m->part_size;
		s3_error err;
		int rc = s3_mpu_part_fd(m->c, m->bucket, m->key, m->upload_id, n, m->fd, (off_t)off,
					len, &m->parts[n - 1], &err);
		int zero = 0;
		if (rc < 0 && atomic_compare_exchange_strong(&m->failed, &zero, rc))
			m->err = err;
	}
}

static int put_multipart(up_engine *e, const char *key, int fd, uint64_t size, char *etag,
			 s3_error *err)
{
	const cfg_route *r = e->route;
	mpu m = { .c = e->client, .bucket = r->bucket, .key = key, .fd = fd, .size = size,
		  .part_size = r->part_size };
	if ((size + m.part_size - 1) / m.part_size > S3_MAX_PARTS)
		m.part_size = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
	m.nparts = (int)((size + m.part_size - 1) / m.part_size);
	atomic_init(&m.next, 1);
	atomic_init(&m.failed, 0);
	char upload_id[S3_UPLOAD_ID_MAX];
	int rc = s3_mpu_create(e->client, r->bucket, key, upload_id, err);
	if (rc < 0)
		return rc;
	up_engine_journal_mpu(e, upload_id, key, 1);
	m.upload_id = upload_id;
	m.parts = calloc((size_t)m.nparts, sizeof *m.parts);
	if (!m.parts) {
		rc = -ENOMEM;
		goto out;
	}
	/* Helpers on the pool, and this thread too: the parts get done even when no helper
	 * starts, and the drain takes back the helpers that never did. */
	unsigned helpers = r->part_concurrency - 1;
	if ((int)helpers >= m.nparts)
		helpers = (unsigned)m.nparts - 1;
	pool_queue *q = helpers ? pool_queue_new("rws-upload-part", helpers) : NULL;
	for (unsigned i = 0; q && i < helpers; i++)
		if (pool_submit(q, part_worker, &m) != 0)
			break;
	part_worker(&m);
	if (q) {
		pool_queue_drain(q);
		pool_queue_free(q);
	}
	rc = atomic_load(&m.failed);
	if (rc < 0)
		*err = m.err;
	else
		rc = s3_mpu_complete(e->client, r->bucket, key, upload_id, m.parts, m.nparts, etag,
				     err);
out:
	if (rc < 0) {
		s3_error ignored;
		s3_mpu_abort(e->client, r->bucket, key, upload_id, &ignored);
	}
	up_engine_journal_mpu(e, upload_id, key, 0);
	free(m.parts);
	return rc;
}

int up_put_fd(up_engine *e, const char *key, int fd, uint64_t size, char *etag, s3_error *err)
{
	etag[0] = '\0';
	if (size >= e->route->multipart_threshold)
		return put_multipart(e, key, fd, size, etag, err);
	return s3_put_fd(e->client, e->route->bucket, key, fd, 0, size, etag, err);
}
