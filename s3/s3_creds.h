/* Credential sources for one store: the environment (AWS_* then OSS_*), an INI credentials
 * file (the AWS shared credentials file, or an env-style KEY=VALUE file such as a mounted
 * Kubernetes secret), chosen by the store's `credentials` setting. A file source is re-read
 * when it changes (checked at most once a second), because Kubernetes rotates mounted secrets.
 * Secrets are only ever copied into caller buffers; nothing here logs them. */
#ifndef RWSPLIT_S3_CREDS_H
#define RWSPLIT_S3_CREDS_H

#include <stddef.h>

#include "config/cfg.h"

typedef struct s3_creds s3_creds;

typedef struct s3_cred_values {
	char access_key[256];
	char secret_key[256];
	char token[4096];     /* "" when none */
} s3_cred_values;

/* Resolves the source now. Returns 0 and *out (free with s3_creds_free), or -EACCES when no
 * source has credentials (why receives a one-line reason), or -ENOMEM. */
int s3_creds_new(const cfg_store *store, s3_creds **out, char *why, size_t whylen);
void s3_creds_free(s3_creds *c);

/* Copies the current credentials into out (re-reading a changed file first). Returns 0, or
 * -EACCES when a file source became unreadable and nothing was ever loaded. Thread-safe. */
int s3_creds_get(s3_creds *c, s3_cred_values *out);

/* "env AWS_ACCESS_KEY_ID" or "file /path [profile]": where the keys come from, no secrets. */
void s3_creds_describe(s3_creds *c, char *buf, size_t len);

/* Fork hooks: prepare takes the lock, so that no thread is loading the file at the fork;
 * release gives it back, in the parent and in the child. */
void s3_creds_fork_prepare(s3_creds *c);
void s3_creds_fork_release(s3_creds *c);

#endif
