/* How preloaded code reaches the object-store client. s3/ is built into librwsplit-s3.so
 * beside the preload library and loaded on the first request that needs the network: every
 * process that inherits LD_PRELOAD (shells, coreutils, workers reading only from the cache)
 * would otherwise pay for loading libcurl, libxml2 and their dependencies at start-up.
 * This file is compiled into the preload library, not into librwsplit-s3.so. */
#ifndef RWSPLIT_S3_DL_H
#define RWSPLIT_S3_DL_H

#include "common/lifecycle.h"
#include "s3/s3.h"

/* The client's functions, with the signatures of s3.h. */
typedef struct s3_api {
#define S3_API_FUNCTIONS(X) \
	X(client_new) X(client_fork_prepare) X(client_fork_parent) X(client_after_fork) \
	X(error_str) X(head_object) X(get_fd) X(put_fd) \
	X(delete) X(copy) X(list) X(mpu_create) X(mpu_part_fd) X(mpu_complete) X(mpu_abort) \
	X(mpu_list)
#define S3_API_SLOT(name) __typeof__(s3_##name) *name;
	S3_API_FUNCTIONS(S3_API_SLOT)
#undef S3_API_SLOT
} s3_api;

/* The client, loading the library on first use (thread-safe). Returns NULL, with one error
 * logged, when it cannot be loaded. */
const s3_api *s3_dl(void);

/* The client when already loaded, else NULL; never loads (for fork handlers). */
const s3_api *s3_dl_loaded(void);

/* The client of store st, created on first use and shared by everything in this process
 * (reader and uploader alike). Returns NULL, with *err set to -errno and e (optional) filled,
 * when the library cannot be loaded or the client cannot be made (no credentials). */
s3_client *s3_dl_client(const cfg_store *st, int *err, s3_error *e);

/* Fork hooks (rank LC_S3_CLIENTS): the client table's lock, then each client's locks; in the
 * child every client drops the connections it inherited (they stay the parent's). Register
 * them at start-up (common/lifecycle.h). */
extern const lc_hooks s3_dl_fork_hooks;

/* For programs that link s3/ themselves (the rwsplit command): use these functions instead
 * of loading the library. Call before anything uses s3_dl(). */
void s3_dl_use(const s3_api *linked);

#endif
