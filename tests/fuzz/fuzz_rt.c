/* libFuzzer target: path normalization (router/rt.c rt_normalize). Input: cwd NUL path.
 * A success must be an absolute path with no empty, "." or ".." component and no trailing
 * '/', of the length returned. */
#include "router/rt.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	if (!s)
		return 0;
	const char *cwd = s, *path = s + strlen(s) + (strlen(s) < size ? 1 : 0);
	char out[4096];
	long n = rt_normalize(cwd, path, out, sizeof out);
	if (n >= 0) {
		if ((size_t)n != strlen(out) || out[0] != '/' || (n > 1 && out[n - 1] == '/') ||
		    strstr(out, "//") || strstr(out, "/./") || strstr(out, "/../") ||
		    (n >= 2 && strcmp(out + n - 2, "/.") == 0) ||
		    (n >= 3 && strcmp(out + n - 3, "/..") == 0))
			abort();
	}
	free(s);
	return 0;
}
