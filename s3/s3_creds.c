#include "s3/s3_creds.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/ascii.h"
#include "common/log.h"
#include "s3/s3_credfile.h"

struct s3_creds {
	pthread_mutex_t lock;
	s3_cred_values values;
	char *file;            /* NULL for an environment source */
	char *profile;
	char source[96];       /* for s3_creds_describe */
	struct stat seen;      /* identity of the file last loaded */
	time_t checked;        /* when the file was last stat'ed */
	int loaded;
};

static int from_env(s3_cred_values *v, const char *id, const char *secret, const char *token)
{
	const char *a = getenv(id), *s = getenv(secret), *t = getenv(token);
	if (!a || !*a || !s || !*s)
		return 0;
	snprintf(v->access_key, sizeof v->access_key, "%s", a);
	snprintf(v->secret_key, sizeof v->secret_key, "%s", s);
	snprintf(v->token, sizeof v->token, "%s", t ? t : "");
	return 1;
}

typedef struct file_scan {
	const char *profile;
	s3_cred_values v;
	char too_long[64];     /* the key whose value did not fit */
} file_scan;

static int key_is(const char *name, const char *const *choices)
{
	for (; *choices; choices++)
		if (ascii_strcasecmp(name, *choices) == 0)
			return 1;
	return 0;
}

/* Picks keys from the profile's section, or from a file with no sections; a value too long
 * for its buffer stops the scan (-E2BIG) rather than being cut. */
static int scan_entry(void *user, const char *section, const char *name, const char *value)
{
	static const char *const ids[] = { "aws_access_key_id", "oss_access_key_id",
					   "access_key_id", NULL };
	static const char *const secrets[] = { "aws_secret_access_key", "oss_access_key_secret",
					       "secret_access_key", NULL };
	static const char *const tokens[] = { "aws_session_token", "oss_session_token",
					      "session_token", "security_token", NULL };
	file_scan *fs = user;
	/* The AWS config file spells non-default profiles "[profile NAME]". */
	const char *sect = strncmp(section, "profile ", 8) == 0 ? section + 8 : section;
	if (*sect && strcmp(sect, fs->profile) != 0)
		return 0;
	char *to = NULL;
	size_t cap = 0;
	if (key_is(name, ids)) {
		to = fs->v.access_key;
		cap = sizeof fs->v.access_key;
	} else if (key_is(name, secrets)) {
		to = fs->v.secret_key;
		cap = sizeof fs->v.secret_key;
	} else if (key_is(name, tokens)) {
		to = fs->v.token;
		cap = sizeof fs->v.token;
	}
	if (!to)
		return 0;
	if (strlen(value) >= cap) {
		snprintf(fs->too_long, sizeof fs->too_long, "%s", name);
		return -E2BIG;
	}
	memcpy(to, value, strlen(value) + 1);
	return 0;
}

/* Loads c->file into c->values, or says in why (whylen bytes) what is wrong with it. Caller
 * holds the lock (or owns c exclusively). */
static int load_file(s3_creds *c, const struct stat *st, char *why, size_t whylen)
{
	file_scan fs = { .profile = c->profile };
	int rc = s3_credfile_scan(c->file, scan_entry, &fs, NULL);
	int ok = rc == 0 && fs.v.access_key[0] && fs.v.secret_key[0];
	if (ok) {
		c->values = fs.v;
		c->seen = *st;
		c->loaded = 1;
	} else if (rc > 0) {
		snprintf(why, whylen, "%s:%d: neither a [section] nor a key = value line", c->file,
			 rc);
	} else if (rc == -E2BIG) {
		snprintf(why, whylen, "%s: the value of %s in [%s] is too long", c->file, fs.too_long,
			 c->profile);
	} else if (rc < 0) {
		snprintf(why, whylen, "%s: %s", c->file, strerror(-rc));
	} else {
		snprintf(why, whylen, "%s has no keys for profile [%s]", c->file, c->profile);
	}
	OPENSSL_cleanse(&fs.v, sizeof fs.v);
	return ok ? 0 : -EACCES;
}

static void default_file(s3_creds *c, const cfg_store *store)
{
	const char *f = store->credentials_file ? store->credentials_file
						: getenv("AWS_SHARED_CREDENTIALS_FILE");
	const char *home = getenv("HOME");
	if (f && *f) {
		c->file = strdup(f);
	} else if (home) {
		size_t n = strlen(home) + 32;
		c->file = malloc(n);
		if (c->file)
			snprintf(c->file, n, "%s/.aws/credentials", home);
	}
	const char *p = store->profile ? store->profile : getenv("AWS_PROFILE");
	c->profile = strdup(p && *p ? p : "default");
}

int s3_creds_new(const cfg_store *store, s3_creds **out, char *why, size_t whylen)
{
	*out = NULL;
	s3_creds *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	int rc = -EACCES;
	if (store->credentials != CFG_CRED_FILE) {
		if (from_env(&c->values, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
			     "AWS_SESSION_TOKEN")) {
			snprintf(c->source, sizeof c->source, "env AWS_ACCESS_KEY_ID");
			goto done;
		}
		if (from_env(&c->values, "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET",
			     "OSS_SESSION_TOKEN")) {
			snprintf(c->source, sizeof c->source, "env OSS_ACCESS_KEY_ID");
			goto done;
		}
		if (store->credentials == CFG_CRED_ENV) {
			snprintf(why, whylen, "credentials = env, but neither AWS_ACCESS_KEY_ID/"
				 "AWS_SECRET_ACCESS_KEY nor OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET is set");
			goto on_error;
		}
	}
	default_file(c, store);
	if (!c->file || !c->profile) {
		rc = c->profile ? -EACCES : -ENOMEM;
		snprintf(why, whylen, "no credentials: no AWS_*/OSS_* variables and no HOME for "
			 "~/.aws/credentials");
		goto on_error;
	}
	struct stat st;
	char bad[512];
	int found = stat(c->file, &st) == 0;
	if (!found)
		snprintf(bad, sizeof bad, "%s: %s", c->file, strerror(errno));
	if (!found || load_file(c, &st, bad, sizeof bad) < 0) {
		snprintf(why, whylen, "no credentials: %s%s",
			 store->credentials == CFG_CRED_FILE ? "" : "no AWS_*/OSS_* variables and ",
			 bad);
		goto on_error;
	}
	snprintf(c->source, sizeof c->source, "file %.60s [%.20s]", c->file, c->profile);
	c->checked = time(NULL);
done:
	*out = c;
	return 0;
on_error:
	s3_creds_free(c);
	return rc;
}

void s3_creds_free(s3_creds *c)
{
	if (!c)
		return;
	OPENSSL_cleanse(&c->values, sizeof c->values);
	pthread_mutex_destroy(&c->lock);
	free(c->file);
	free(c->profile);
	free(c);
}

static int changed(const struct stat *a, const struct stat *b)
{
	return a->st_ino != b->st_ino || a->st_dev != b->st_dev || a->st_size != b->st_size ||
	       a->st_mtim.tv_sec != b->st_mtim.tv_sec || a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

int s3_creds_get(s3_creds *c, s3_cred_values *out)
{
	pthread_mutex_lock(&c->lock);
	time_t now = time(NULL);
	if (c->file && now != c->checked) {
		c->checked = now;
		struct stat st;
		if (stat(c->file, &st) == 0 && changed(&st, &c->seen)) {
			char bad[512];
			if (load_file(c, &st, bad, sizeof bad) == 0)
				log_info("credentials reloaded from %s", c->file);
			else
				log_warn("credentials file changed but is not usable (%s); "
					 "keeping the previous keys", bad);
		}
	}
	int rc = c->loaded || !c->file ? 0 : -EACCES;
	*out = c->values;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void s3_creds_fork_prepare(s3_creds *c)
{
	pthread_mutex_lock(&c->lock);
}

void s3_creds_fork_release(s3_creds *c)
{
	pthread_mutex_unlock(&c->lock);
}

void s3_creds_describe(s3_creds *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s", c->source);
}
