/* The object-store client as the reader sees it: s3/ lives in librwsplit-s3.so beside the
 * preload library and is loaded on the first request that needs the network. Every process
 * that inherits LD_PRELOAD (shells, coreutils, workers reading only from the cache) would
 * otherwise pay for loading libcurl, libxml2 and their dependencies at start-up. */
#ifndef RWSPLIT_RD_STORE_H
#define RWSPLIT_RD_STORE_H

#include "s3/s3.h"

typedef struct rd_store_api {
	int (*client_new)(const cfg_store *store, s3_client **out, s3_error *err);
	void (*client_after_fork)(s3_client *c);
	int (*list)(s3_client *c, const char *bucket, const char *prefix, const char *delimiter,
		    unsigned max_keys, s3_list_cb cb, void *arg, s3_error *err);
	int (*get_fd)(s3_client *c, const char *bucket, const char *key, uint64_t off,
		      uint64_t len, int fd, off_t fd_off, uint64_t *got, s3_object_info *info,
		      s3_error *err);
	const char *(*error_str)(const s3_error *err, char *buf, size_t len);
} rd_store_api;

/* The client's functions, loading the library on first use (thread-safe). Returns NULL, with
 * one error logged, when it cannot be loaded. */
const rd_store_api *rd_store(void);

/* The API when already loaded, else NULL; never loads (for fork handlers). */
const rd_store_api *rd_store_loaded(void);

#endif
