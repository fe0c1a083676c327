/* Temporary credentials from a web identity token (STS AssumeRoleWithWebIdentity), an
 * Alibaba RRSA token (AssumeRoleWithOIDC) or the EC2 instance metadata service (IMDSv2).
 * s3_creds.c decides when to call these and shares what they return; these only make the
 * exchange. Each returns 0 with v and *expires (UTC seconds) filled, -EACCES when the service
 * refuses (why names its code and message), or another -errno when it cannot be reached
 * (why filled). The token file is read at every call (the kubelet rotates it). */
#ifndef RWSPLIT_S3_STS_H
#define RWSPLIT_S3_STS_H

#include <stddef.h>
#include <time.h>

#include "common/sb.h"
#include "config/cfg.h"
#include "s3/s3_creds.h"

typedef struct s3_sts_source {
	char endpoint[256];       /* "https://sts.amazonaws.com", no trailing slash */
	char role_arn[512];
	char provider_arn[512];   /* RRSA only */
	char token_file[1024];
	char session_name[64];    /* "" for rwsplit-<host>-<pid> */
	unsigned duration_s;
} s3_sts_source;

int s3_sts_web_identity(const cfg_store *st, const s3_sts_source *src, s3_cred_values *v,
			time_t *expires, char *why, size_t whylen);
int s3_sts_rrsa(const cfg_store *st, const s3_sts_source *src, s3_cred_values *v,
		time_t *expires, char *why, size_t whylen);
/* endpoint: "http://169.254.169.254" or $AWS_EC2_METADATA_SERVICE_ENDPOINT. */
int s3_imds(const cfg_store *st, const char *endpoint, s3_cred_values *v, time_t *expires,
	    char *why, size_t whylen);

/* The form body of an AssumeRoleWithOIDC call at time now with nonce (for the unit test's
 * recorded vector), appended to q. Returns 0 or -ENOMEM. */
int s3_sts_rrsa_query(const s3_sts_source *src, const char *token, time_t now,
		      const char *nonce, sb *q);

/* The string value of "name" in a flat JSON object (IMDS's reply), unescaped into out.
 * Returns 0, or -1 when absent, not a string, with a \u escape, or longer than cap. */
int s3_json_string(const char *json, const char *name, char *out, size_t cap);

#endif
