#include "reader/rd_store.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

#define S3_LIBRARY "librwsplit-s3.so"

static rd_store_api api;
static const rd_store_api *loaded;
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
	*(void **)&api.client_new = dlsym(h, "s3_client_new");
	*(void **)&api.client_after_fork = dlsym(h, "s3_client_after_fork");
	*(void **)&api.list = dlsym(h, "s3_list");
	*(void **)&api.get_fd = dlsym(h, "s3_get_fd");
	*(void **)&api.error_str = dlsym(h, "s3_error_str");
	if (!api.client_new || !api.client_after_fork || !api.list || !api.get_fd ||
	    !api.error_str) {
		log_error("%s does not export the s3 client", path);
		return;
	}
	loaded = &api;
}

const rd_store_api *rd_store(void)
{
	pthread_once(&load_once, load);
	return loaded;
}

const rd_store_api *rd_store_loaded(void)
{
	return loaded;
}
