#include "s3/s3_dl.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

#define S3_LIBRARY "librwsplit-s3.so"

static s3_api api;
static const s3_api *loaded;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

/* The directory this library was loaded from: the store library is installed beside it. */
static int beside_this_library(char *out, size_t cap)
{
	Dl_info info;
	if (!dladdr((void *)&beside_this_library, &info) || !info.dli_fname)
		return -1;
	const char *slash = strrchr(info.dli_fname, '/');
	int dirlen = slash ? (int)(slash - info.dli_fname) : 1;
	int n = snprintf(out, cap, "%.*s/%s", dirlen, slash ? info.dli_fname : ".", S3_LIBRARY);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static void nothing(void)
{
}

static void load(void)
{
	char path[PATH_MAX];
	if (beside_this_library(path, sizeof path) < 0) {
		log_error("cannot locate %s", S3_LIBRARY);
		return;
	}
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		log_error("cannot load %s: %s", path, dlerror());
		return;
	}
#define S3_API_LOOKUP(name) \
	if (!(*(void **)&api.name = dlsym(h, "s3_" #name))) { \
		log_error("%s does not export s3_%s", path, #name); \
		return; \
	}
	S3_API_FUNCTIONS(S3_API_LOOKUP)
#undef S3_API_LOOKUP
	loaded = &api;
}

const s3_api *s3_dl(void)
{
	pthread_once(&load_once, load);
	return loaded;
}

void s3_dl_use(const s3_api *linked)
{
	api = *linked;
	loaded = &api;
	pthread_once(&load_once, nothing);
}

const s3_api *s3_dl_loaded(void)
{
	return loaded;
}
