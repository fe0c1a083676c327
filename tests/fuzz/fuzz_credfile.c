/* libFuzzer target: the AWS credentials file scanner (s3_credfile_scan). */
#include "s3/s3_credfile.h"
#include "tests/fuzz/fuzz_input.h"

static int seen(void *arg, const char *section, const char *name, const char *value)
{
	/* The strings are whole C strings; touch every byte so ASan checks their bounds. */
	size_t *n = arg;
	*n += strlen(section) + strlen(name) + strlen(value);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = fuzz_file(data, size, path);
	if (fd < 0)
		return 0;
	size_t n = 0;
	int bad = 0;
	int rc = s3_credfile_scan(path, seen, &n, &bad);
	if (rc > 0 && bad != rc)
		abort(); /* a bad line is reported both ways */
	close(fd);
	return 0;
}
