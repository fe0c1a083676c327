#include "s3/s3_creds.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/ascii.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/sha256.h"
#include "s3/s3_credfile.h"
#include "s3/s3_sts.h"

enum kind { K_STATIC, K_FILE, K_WEB_IDENTITY, K_RRSA, K_IMDS };

/* Renewals of temporary credentials come this far apart at least, whatever the margin. */
#define RENEW_MIN_S 2
#define IMDS_DEFAULT "http://169.254.169.254"

struct s3_creds {
	pthread_mutex_t lock;
	pthread_cond_t renewed;  /* a renewal ended */
	enum kind kind;
	const cfg_store *store;
	s3_cred_values values;
	char source[160];        /* for s3_creds_describe */
	/* K_FILE */
	char *file;
	char *profile;
	struct stat seen;        /* identity of the file last loaded */
	time_t checked;          /* when the file was last stat'ed */
	int loaded;
	/* temporary credentials (web identity, RRSA, IMDS) */
	s3_sts_source sts;
	char imds[256];
	time_t fetched, expires; /* of values */
	int renewing;            /* a thread renews them, without the lock */
	time_t next_try;         /* after a failed renewal */
	unsigned failures;
	char shared[PATH_MAX - 16]; /* the node-wide file of these credentials; "" for none */
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

/* -- temporary credentials ---------------------------------------------------------- */

static time_t renew_due(const s3_creds *c, time_t fetched, time_t expires)
{
	time_t margin = (time_t)(c->store->refresh_before_ms / 1000);
	time_t due = expires - margin;
	return due < fetched + RENEW_MIN_S ? fetched + RENEW_MIN_S : due;
}

/* The node-wide file: CREDS_CACHE/u<uid>/creds-<hash of the source>, 0600 in the user's
 * private directory, so that the processes of a node (DataLoader workers, agents) renew
 * once between them. Left "" when that directory cannot be used safely. */
static void shared_path(s3_creds *c)
{
	char bad[256], dir[PATH_MAX - 128];
	const char *top = c->store->creds_cache;
	if (!top || snprintf(dir, sizeof dir, "%s/u%u", top, (unsigned)geteuid()) >=
			    (int)sizeof dir)
		return;
	int fd = fs_open_dir_safe(top, 01777, FS_SHARED, bad, sizeof bad);
	if (fd >= 0) {
		close(fd);
		fd = fs_open_dir_safe(dir, 0700, FS_PRIVATE, bad, sizeof bad);
	}
	if (fd < 0) {
		log_debug("credentials: not shared with other processes: %s", bad);
		return;
	}
	close(fd);
	char id[3 * 1024], hex[65];
	snprintf(id, sizeof id, "%d|%s|%s|%s|%s|%s|%u", (int)c->kind, c->sts.endpoint,
		 c->sts.role_arn, c->sts.provider_arn, c->sts.token_file, c->imds,
		 c->sts.duration_s);
	sha256_hex(id, strlen(id), hex);
	snprintf(c->shared, sizeof c->shared, "%s/creds-%.16s", dir, hex);
}

/* Reads the shared file: 0 with v, *fetched and *expires, or -1 (absent, not ours, bad). */
static int read_shared(const char *path, s3_cred_values *v, time_t *fetched, time_t *expires)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	char buf[sizeof *v + 128];
	ssize_t n = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
	    !(st.st_mode & 077) && st.st_size < (off_t)sizeof buf)
		n = read(fd, buf, sizeof buf - 1);
	close(fd);
	int rc = -1;
	if (n > 0) {
		buf[n] = '\0';
		char *save, *magic = strtok_r(buf, "\n", &save), *f = strtok_r(NULL, "\n", &save);
		char *e = strtok_r(NULL, "\n", &save), *a = strtok_r(NULL, "\n", &save);
		char *k = strtok_r(NULL, "\n", &save), *t = strtok_r(NULL, "\n", &save);
		if (magic && strcmp(magic, "rwsplit-credentials 1") == 0 && f && e && a && k &&
		    strlen(a) < sizeof v->access_key && strlen(k) < sizeof v->secret_key &&
		    (!t || strlen(t) < sizeof v->token)) {
			*fetched = (time_t)strtoll(f, NULL, 10);
			*expires = (time_t)strtoll(e, NULL, 10);
			snprintf(v->access_key, sizeof v->access_key, "%s", a);
			snprintf(v->secret_key, sizeof v->secret_key, "%s", k);
			snprintf(v->token, sizeof v->token, "%s", t ? t : "");
			rc = 0;
		}
	}
	OPENSSL_cleanse(buf, sizeof buf);
	return rc;
}

static void write_shared(const char *path, const s3_cred_values *v, time_t fetched,
			 time_t expires)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return;
	}
	fprintf(f, "rwsplit-credentials 1\n%lld\n%lld\n%s\n%s\n%s\n", (long long)fetched,
		(long long)expires, v->access_key, v->secret_key, v->token);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		unlink(tmp);
}

static int fetch(s3_creds *c, s3_cred_values *v, time_t *expires, char *why, size_t whylen)
{
	switch (c->kind) {
	case K_WEB_IDENTITY:
		return s3_sts_web_identity(c->store, &c->sts, v, expires, why, whylen);
	case K_RRSA:
		return s3_sts_rrsa(c->store, &c->sts, v, expires, why, whylen);
	default:
		return s3_imds(c->store, c->imds, v, expires, why, whylen);
	}
}

/* New temporary credentials (newer than the ones fetched at have): from the shared file when
 * another process renewed them recently, else from the service under the shared file's lock
 * (one process of the node calls it; the others then read its answer). Called without
 * c->lock. */
static int obtain(s3_creds *c, time_t have, s3_cred_values *v, time_t *fetched,
		  time_t *expires, char *why, size_t whylen)
{
	time_t now = time(NULL);
	if (c->shared[0] && read_shared(c->shared, v, fetched, expires) == 0 &&
	    now < renew_due(c, *fetched, *expires) && *fetched > have) {
		log_debug("credentials (%s): taken from the node's shared file", c->source);
		return 0;
	}
	int lock_fd = -1;
	if (c->shared[0]) {
		char lock[PATH_MAX];
		snprintf(lock, sizeof lock, "%s.lock", c->shared);
		lock_fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (lock_fd >= 0 && flock(lock_fd, LOCK_EX) == 0 &&
		    read_shared(c->shared, v, fetched, expires) == 0 &&
		    time(NULL) < renew_due(c, *fetched, *expires) && *fetched > have) {
			close(lock_fd);
			log_debug("credentials (%s): taken from the node's shared file", c->source);
			return 0;
		}
	}
	/* What the shared file holds, kept in case the service refuses now. */
	s3_cred_values old;
	time_t old_fetched = 0, old_expires = 0;
	int have_old = c->shared[0] && read_shared(c->shared, &old, &old_fetched, &old_expires) == 0 &&
		       old_expires > time(NULL) + 60 && old_fetched > have;
	*fetched = time(NULL);
	int rc = fetch(c, v, expires, why, whylen);
	if (rc < 0 && have_old) {
		/* Another process's keys that still work: better than none (the caller retries). */
		log_warn("credentials (%s): cannot get new ones (%s); using the node's current ones, "
			 "which expire in %lld s", c->source, why, (long long)(old_expires - time(NULL)));
		*v = old;
		*fetched = old_fetched;
		*expires = old_expires;
		rc = 0;
	}
	OPENSSL_cleanse(&old, sizeof old);
	if (rc == 0)
		log_debug("credentials (%s): new ones from the service, valid %lld s", c->source,
			  (long long)(*expires - *fetched));
	if (rc == 0 && c->shared[0])
		write_shared(c->shared, v, *fetched, *expires);
	if (lock_fd >= 0)
		close(lock_fd);
	return rc;
}

/* Renews c's credentials when they are due, outside the lock; the caller holds c->lock and
 * still does on return. Threads that find them expired while another renews wait for it. */
static void renew_if_due(s3_creds *c)
{
	time_t now = time(NULL);
	if (now < renew_due(c, c->fetched, c->expires) || (c->renewing && now < c->expires))
		return;
	if (c->renewing) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 20;
		while (c->renewing &&
		       pthread_cond_timedwait(&c->renewed, &c->lock, &until) != ETIMEDOUT)
			;
		return;
	}
	if (now < c->next_try)
		return;
	c->renewing = 1;
	s3_cred_values v;
	time_t fetched = 0, expires = 0;
	char why[512] = "";
	time_t have = c->fetched; /* read under the lock, which is given up next */
	pthread_mutex_unlock(&c->lock);
	int rc = obtain(c, have, &v, &fetched, &expires, why, sizeof why);
	pthread_mutex_lock(&c->lock);
	c->renewing = 0;
	if (rc == 0) {
		if (c->failures)
			log_info("credentials (%s) renewed after %u failed attempts", c->source,
				 c->failures);
		else
			log_debug("credentials (%s) renewed; they expire in %lld s", c->source,
				  (long long)(expires - time(NULL)));
		c->values = v;
		c->fetched = fetched;
		c->expires = expires;
		c->failures = 0;
	} else {
		/* Retried with backoff; the old keys stay in use until they expire. */
		unsigned wait = c->failures < 5 ? 2u << c->failures : 60;
		c->failures++;
		c->next_try = time(NULL) + (time_t)wait;
		log_warn("credentials (%s): renewal failed (%s); trying again in %u s, the current "
			 "keys expire in %lld s", c->source, why, wait,
			 (long long)(c->expires - time(NULL)));
	}
	OPENSSL_cleanse(&v, sizeof v);
	pthread_cond_broadcast(&c->renewed);
}

static int temp_source(s3_creds *c, enum kind kind, char *why, size_t whylen)
{
	c->kind = kind;
	const char *ep = c->store->sts_endpoint;
	c->sts.duration_s = c->store->duration_ms / 1000;
	const char *session = getenv(kind == K_RRSA ? "ALIBABA_CLOUD_ROLE_SESSION_NAME"
						    : "AWS_ROLE_SESSION_NAME");
	snprintf(c->sts.session_name, sizeof c->sts.session_name, "%s", session ? session : "");
	if (kind == K_WEB_IDENTITY) {
		if (!ep && !(ep = getenv("AWS_ENDPOINT_URL_STS")))
			ep = "https://sts.amazonaws.com";
		snprintf(c->sts.role_arn, sizeof c->sts.role_arn, "%s", getenv("AWS_ROLE_ARN"));
		snprintf(c->sts.token_file, sizeof c->sts.token_file, "%s",
			 getenv("AWS_WEB_IDENTITY_TOKEN_FILE"));
		snprintf(c->source, sizeof c->source, "web identity %.60s", c->sts.role_arn);
	} else if (kind == K_RRSA) {
		if (!ep && !(ep = getenv("ALIBABA_CLOUD_STS_ENDPOINT")))
			ep = "https://sts.aliyuncs.com";
		snprintf(c->sts.role_arn, sizeof c->sts.role_arn, "%s",
			 getenv("ALIBABA_CLOUD_ROLE_ARN"));
		snprintf(c->sts.provider_arn, sizeof c->sts.provider_arn, "%s",
			 getenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"));
		snprintf(c->sts.token_file, sizeof c->sts.token_file, "%s",
			 getenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE"));
		snprintf(c->source, sizeof c->source, "RRSA %.60s", c->sts.role_arn);
	} else {
		const char *imds = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
		snprintf(c->imds, sizeof c->imds, "%s", imds && *imds ? imds : IMDS_DEFAULT);
		size_t n = strlen(c->imds);
		if (n && c->imds[n - 1] == '/')
			c->imds[n - 1] = '\0';
		snprintf(c->source, sizeof c->source, "instance metadata %.60s", c->imds);
	}
	snprintf(c->sts.endpoint, sizeof c->sts.endpoint, "%s", ep ? ep : "");
	size_t n = strlen(c->sts.endpoint);
	if (n && c->sts.endpoint[n - 1] == '/')
		c->sts.endpoint[n - 1] = '\0';
	shared_path(c);
	char bad[512] = "";
	int rc = obtain(c, 0, &c->values, &c->fetched, &c->expires, bad, sizeof bad);
	if (rc < 0)
		snprintf(why, whylen, "%s: %s", c->source, bad);
	return rc;
}

static int env_set(const char *name)
{
	const char *v = getenv(name);
	return v && *v;
}

/* The first of the temporary sources whose variables are set, or -1. */
static int temp_kind_from_env(void)
{
	if (env_set("AWS_ROLE_ARN") && env_set("AWS_WEB_IDENTITY_TOKEN_FILE"))
		return K_WEB_IDENTITY;
	if (env_set("ALIBABA_CLOUD_ROLE_ARN") && env_set("ALIBABA_CLOUD_OIDC_PROVIDER_ARN") &&
	    env_set("ALIBABA_CLOUD_OIDC_TOKEN_FILE"))
		return K_RRSA;
	return -1;
}

static const char *source_name(enum cfg_cred_source s)
{
	return s == CFG_CRED_WEB_IDENTITY ? "web_identity" : s == CFG_CRED_RRSA ? "rrsa" : "imds";
}

int s3_creds_new(const cfg_store *store, s3_creds **out, char *why, size_t whylen)
{
	*out = NULL;
	s3_creds *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->renewed, NULL);
	c->store = store;
	c->kind = K_STATIC;
	int rc = -EACCES;
	enum cfg_cred_source want = store->credentials;
	if (want == CFG_CRED_WEB_IDENTITY || want == CFG_CRED_RRSA || want == CFG_CRED_IMDS) {
		enum kind k = want == CFG_CRED_WEB_IDENTITY ? K_WEB_IDENTITY
			    : want == CFG_CRED_RRSA ? K_RRSA : K_IMDS;
		if (k != K_IMDS && temp_kind_from_env() != (int)k) {
			snprintf(why, whylen, "credentials = %s, but %s", source_name(want),
				 k == K_WEB_IDENTITY
				 ? "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are not both set"
				 : "ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN and "
				   "ALIBABA_CLOUD_OIDC_TOKEN_FILE are not all set");
			goto on_error;
		}
		if ((rc = temp_source(c, k, why, whylen)) < 0)
			goto on_error;
		goto done;
	}
	if (want != CFG_CRED_FILE) {
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
		if (want == CFG_CRED_ENV) {
			snprintf(why, whylen, "credentials = env, but neither AWS_ACCESS_KEY_ID/"
				 "AWS_SECRET_ACCESS_KEY nor OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET is set");
			goto on_error;
		}
		int k = temp_kind_from_env();
		if (k >= 0) {
			if ((rc = temp_source(c, (enum kind)k, why, whylen)) < 0)
				goto on_error;
			goto done;
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
	/* The instance metadata service, when asked for (its endpoint set) and nothing else
	 * gave keys: probing 169.254.169.254 unasked would delay every "no credentials" error
	 * by the connect timeout on machines that are not EC2 instances. */
	if (!found && want == CFG_CRED_AUTO && env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT")) {
		free(c->file);
		c->file = NULL;
		if ((rc = temp_source(c, K_IMDS, why, whylen)) < 0)
			goto on_error;
		goto done;
	}
	if (!found || load_file(c, &st, bad, sizeof bad) < 0) {
		snprintf(why, whylen, "no credentials: %s%s",
			 want == CFG_CRED_FILE ? "" : "no AWS_*/OSS_* variables, no web identity or "
			 "RRSA token, and ", bad);
		goto on_error;
	}
	c->kind = K_FILE;
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
	pthread_cond_destroy(&c->renewed);
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
	if (c->kind >= K_WEB_IDENTITY)
		renew_if_due(c);
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

void s3_creds_after_fork(s3_creds *c)
{
	/* A parent thread renewing them does not exist here: this process renews by itself
	 * (the shared file usually has the answer). */
	c->renewing = 0;
	pthread_cond_init(&c->renewed, NULL);
	pthread_mutex_unlock(&c->lock);
}

time_t s3_creds_expiry(s3_creds *c)
{
	pthread_mutex_lock(&c->lock);
	time_t e = c->kind >= K_WEB_IDENTITY ? c->expires : 0;
	pthread_mutex_unlock(&c->lock);
	return e;
}

void s3_creds_describe(s3_creds *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s", c->source);
}
