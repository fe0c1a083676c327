/* SHA-256 (FIPS 180-4) for naming cache entries. The preload library uses this instead of
 * libcrypto: loading and initialising libcrypto costs every preloaded process about a
 * millisecond, and cache names are computed in processes that never touch the network. */
#ifndef RWSPLIT_SHA256_H
#define RWSPLIT_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct sha256_ctx {
	uint32_t h[8];
	uint64_t len;          /* bytes hashed so far */
	unsigned char block[64];
	size_t used;           /* bytes waiting in block */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
void sha256_final(sha256_ctx *c, unsigned char out[32]);

/* One call: the digest of data as 64 lowercase hex digits and a NUL. */
void sha256_hex(const void *data, size_t len, char hex[65]);

#endif
