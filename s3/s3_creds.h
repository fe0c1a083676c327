/* Credential sources for one store, chosen by its `credentials` setting; auto tries them in
 * this order: the environment (AWS_* then OSS_*), a web identity token (AWS_ROLE_ARN +
 * AWS_WEB_IDENTITY_TOKEN_FILE: EKS IRSA, or MinIO's STS), an Alibaba RRSA token
 * (ALIBABA_CLOUD_ROLE_ARN, _OIDC_PROVIDER_ARN, _OIDC_TOKEN_FILE), an INI credentials file (the
 * AWS shared credentials file, or an env-style KEY=VALUE file such as a mounted Kubernetes
 * secret), and the EC2 instance metadata service when AWS_EC2_METADATA_SERVICE_ENDPOINT is
 * set (credentials = imds asks for it at 169.254.169.254 too).
 *
 * A file source is re-read when it changes (checked at most once a second), because
 * Kubernetes rotates mounted secrets. Temporary credentials are renewed `credentials_refresh`
 * before they expire (at most every 2 s) by the thread that finds them due, without the lock
 * (the others keep the current keys meanwhile, or wait for the renewal once they expired); a
 * failed renewal is logged and retried with backoff. The processes of a node share them
 * through a 0600 file in CACHE_DIR/u<uid>/, renewed under its lock file, so a node calls STS
 * once per renewal, not once per DataLoader worker. Secrets are only ever copied into caller
 * buffers and that file; nothing here logs them. */
#ifndef RWSPLIT_S3_CREDS_H
#define RWSPLIT_S3_CREDS_H

#include <stddef.h>
#include <time.h>

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
 * release gives it back in the parent, after_fork in the child (which also forgets a renewal
 * a parent thread had under way). */
void s3_creds_fork_prepare(s3_creds *c);
void s3_creds_fork_release(s3_creds *c);
void s3_creds_after_fork(s3_creds *c);

/* When the current temporary credentials expire (UTC seconds), or 0 for keys that do not. */
time_t s3_creds_expiry(s3_creds *c);

#endif
