/* Translation of S3 outcomes into errno values and retry decisions: the one place where HTTP
 * statuses and S3 error codes become the errno a program sees. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "s3/s3_request.h"

typedef struct code_errno {
	const char *code;
	int err;
} code_errno;

/* Codes whose meaning is sharper than their HTTP status. */
static const code_errno code_table[] = {
	{ "NoSuchKey", ENOENT },
	{ "NoSuchBucket", ENOENT },
	{ "NoSuchUpload", ENOENT },
	{ "NotFound", ENOENT },
	{ "AccessDenied", EACCES },
	{ "AllAccessDisabled", EACCES },
	{ "InvalidAccessKeyId", EACCES },
	{ "SignatureDoesNotMatch", EACCES },
	{ "ExpiredToken", EACCES },
	{ "InvalidToken", EACCES },
	{ "RequestTimeTooSkewed", EACCES },
	{ "KeyTooLongError", ENAMETOOLONG },
	{ "EntityTooLarge", EFBIG },
	{ "BucketNotEmpty", ENOTEMPTY },
	{ "PreconditionFailed", EEXIST },
	{ "NotImplemented", ENOTSUP },
	{ "XMinioStorageFull", ENOSPC },
};

int s3_errno_for(int status, const char *code)
{
	for (size_t i = 0; code && i < sizeof code_table / sizeof code_table[0]; i++)
		if (strcmp(code, code_table[i].code) == 0)
			return code_table[i].err;
	switch (status) {
	case 401:
	case 403:
		return EACCES;
	case 404:
		return ENOENT;
	case 412:
		return EEXIST;
	case 501:
		return ENOTSUP;
	}
	return status >= 400 && status < 500 ? EINVAL : EIO;
}

int s3_is_retryable(int status, const char *code)
{
	static const char *const codes[] = { "SlowDown", "InternalError", "ServiceUnavailable",
					     "RequestTimeout", "XMinioServerNotInitialized",
					     "OperationAborted", NULL };
	for (const char *const *c = codes; code && *c; c++)
		if (strcmp(code, *c) == 0)
			return 1;
	switch (status) {
	case 408:
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		return 1;
	}
	return 0;
}

const char *s3_error_str(const s3_error *err, char *buf, size_t len)
{
	if (!err) {
		snprintf(buf, len, "unknown error");
		return buf;
	}
	snprintf(buf, len, "%s%s%s (status %d, %d attempt%s%s%s)", err->code[0] ? err->code : "error",
		 err->message[0] ? ": " : "", err->message, err->status, err->attempts,
		 err->attempts == 1 ? "" : "s", err->request_id[0] ? ", request-id " : "",
		 err->request_id);
	return buf;
}
