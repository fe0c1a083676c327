/* libFuzzer target: the S3 XML parsers (s3/s3_xml.c), which read untrusted network input.
 * The first byte picks the parser, the rest is the body. */
#include "s3/s3_xml.h"
#include "tests/fuzz/fuzz_input.h"

static int on_entry(void *arg, const s3_list_entry *e)
{
	size_t *n = arg;
	*n += strlen(e->key) + (e->etag ? strlen(e->etag) : 0);
	return 0;
}

static int on_upload(void *arg, const char *key, const char *id, time_t initiated)
{
	size_t *n = arg;
	*n += strlen(key) + strlen(id) + (initiated != 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *body = (const char *)data + 1;
	size_t len = size - 1, n = 0;
	s3_error err;
	memset(&err, 0, sizeof err);
	char buf[S3_UPLOAD_ID_MAX > 80 ? S3_UPLOAD_ID_MAX : 80];
	switch (data[0] % 7) {
	case 0:
		s3_xml_error(body, len, &err);
		break;
	case 1:
	case 2: {
		int truncated = 0;
		char *next = NULL;
		s3_xml_list_page(body, len, data[0] % 7 == 2, on_entry, &n, &truncated, &next);
		free(next);
		break;
	}
	case 3:
		s3_xml_upload_id(body, len, buf);
		break;
	case 4:
		s3_xml_etag_result(body, len, buf, &err);
		break;
	case 5:
		s3_xml_uploads(body, len, on_upload, &n);
		break;
	default: {
		s3_cred_values v;
		time_t expires;
		s3_xml_sts_credentials(body, len, &v, &expires, &err);
	}
	}
	return 0;
}
