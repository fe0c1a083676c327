/* Client lifetime: endpoint parsing, credentials, the pool of curl handles. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "s3/s3_request.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int s3_client_new(const cfg_store *store, s3_client **out, s3_error *err)
{
	*out = NULL;
	if (err)
		memset(err, 0, sizeof *err);
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return -ENOMEM;

	s3_client *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->pool_lock, NULL);
	c->store = store;
	c->virtual_host = store->addressing == CFG_ADDR_VIRTUAL;
	int rc = -ENOMEM;
	const char *sep = strstr(store->endpoint, "://");
	if (!sep) {
		rc = -EINVAL;
		goto on_error;
	}
	c->scheme = strndup(store->endpoint, (size_t)(sep - store->endpoint));
	c->host = strdup(sep + 3);
	if (!c->scheme || !c->host)
		goto on_error;

	char why[256] = "";
	rc = s3_creds_new(store, &c->creds, why, sizeof why);
	if (rc < 0) {
		if (err) {
			snprintf(err->code, sizeof err->code, "NoCredentials");
			snprintf(err->message, sizeof err->message, "%s", why);
		}
		goto on_error;
	}
	if (!store->tls_verify && strcmp(c->scheme, "https") == 0)
		log_warn("store %s: TLS peer verification is disabled (tls_verify = false)",
			 store->endpoint);
	*out = c;
	return 0;
on_error:
	s3_client_free(c);
	return rc;
}

void s3_client_free(s3_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	for (int i = 0; i < c->nbatch; i++)
		free(c->batch[i]);
	pthread_mutex_destroy(&c->pool_lock);
	s3_creds_free(c->creds);
	free(c->scheme);
	free(c->host);
	free(c);
}

void s3_client_fork_prepare(s3_client *c)
{
	s3_creds_fork_prepare(c->creds);
	pthread_mutex_lock(&c->pool_lock);
}

void s3_client_fork_parent(s3_client *c)
{
	pthread_mutex_unlock(&c->pool_lock);
	s3_creds_fork_release(c->creds);
}

void s3_client_after_fork(s3_client *c)
{
	/* The handles' sockets (and TLS sessions) belong to the parent: closing them here would
	 * send a TLS close_notify on the parent's connection, so they are dropped unclosed. */
	c->npool = 0;
	c->nbatch_made = c->nbatch; /* those the parent's other threads held are theirs */
	pthread_mutex_unlock(&c->pool_lock);
	s3_creds_after_fork(c->creds);
}

void s3_client_cred_source(s3_client *c, char *buf, size_t len)
{
	s3_creds_describe(c->creds, buf, len);
}

void s3_client_stats(s3_client *c, s3_stats *out)
{
	out->requests = atomic_load(&c->requests);
	out->retries = atomic_load(&c->retries);
	out->bytes_in = atomic_load(&c->bytes_in);
	out->bytes_out = atomic_load(&c->bytes_out);
}
