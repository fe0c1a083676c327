/* libFuzzer target: rwsplit's config loader (cfg_load) on arbitrary file contents. Every
 * input must give a config or an error message, never a crash, leak or hang. */
#include "config/cfg.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], err[512];
	int fd = fuzz_file(data, size, path);
	if (fd < 0)
		return 0;
	cfg *c = NULL;
	if (cfg_load(path, &c, err, sizeof err) == 0)
		cfg_free(c);
	else if (!err[0])
		abort(); /* a refusal must say why */
	close(fd);
	return 0;
}
