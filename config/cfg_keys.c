/* Every key of every section kind: its type, range and where it is stored, plus defaults. */
#include "config/cfg.h"
#include "config/cfg_priv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIB (1024ULL * 1024)
#define GIB (1024ULL * MIB)

enum vtype {
	V_STRING,   /* any non-empty text */
	V_PATH,     /* an absolute path */
	V_ENDPOINT, /* http[s]://host[:port] */
	V_SIZE,     /* uint64_t, cfg_parse_size, within min..max */
	V_DURATION, /* uint32_t milliseconds, cfg_parse_duration, within min..max */
	V_UINT,     /* uint32_t decimal, within min..max */
	V_BOOL,     /* bool */
	V_CHOICE,   /* one of choices; the index is stored as an enum (int) or a bool */
	V_URL,      /* s3://bucket/prefix into cfg_route bucket and prefix */
	V_STORE,    /* a store name into cfg_target.store_name */
};

struct key {
	const char *name;
	size_t off;  /* into the target object */
	size_t size; /* of the field at off */
	uint64_t min, max;          /* V_SIZE, V_UINT; V_DURATION: max 0 means no limit */
	const char *const *choices; /* V_CHOICE: NULL-terminated, in enum order */
	enum vtype type;
	bool required;
};

/* Enum fields are written through a same-sized integer (memcpy), so they must be int-sized. */
_Static_assert(sizeof(enum cfg_addressing) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_cred_source) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_prefetch) == sizeof(int), "enum size");

#define FIELD(type, f) .off = offsetof(type, f), .size = sizeof(((type *)0)->f)

static const char *const addressing_names[] = { "path", "virtual", NULL };
static const char *const cred_names[] = { "auto", "env", "file", "web_identity", "rrsa",
					   "imds", NULL };
static const char *const signing_names[] = { "unsigned", "signed", NULL };
static const char *const prefetch_names[] = { "off", "listing", "all", NULL };

static const struct key global_keys[] = {
	{ .name = "cache_dir", .type = V_PATH, FIELD(cfg, cache_dir) },
	{ .name = "metrics", .type = V_STRING, FIELD(cfg, metrics) },
	{ .name = "agent", .type = V_BOOL, FIELD(cfg, agent) },
	{ .name = "agent_idle", .type = V_DURATION, FIELD(cfg, agent_idle_ms), .min = 100 },
	{ .name = "agent_handoff", .type = V_UINT, FIELD(cfg, agent_handoff), .max = UINT32_MAX },
	{ .name = NULL },
};

static const struct key store_keys[] = {
	{ .name = "endpoint", .type = V_ENDPOINT, FIELD(cfg_store, endpoint), .required = true },
	{ .name = "region", .type = V_STRING, FIELD(cfg_store, region) },
	{ .name = "addressing", .type = V_CHOICE, FIELD(cfg_store, addressing),
	  .choices = addressing_names },
	{ .name = "credentials", .type = V_CHOICE, FIELD(cfg_store, credentials),
	  .choices = cred_names },
	{ .name = "credentials_file", .type = V_PATH, FIELD(cfg_store, credentials_file) },
	{ .name = "profile", .type = V_STRING, FIELD(cfg_store, profile) },
	{ .name = "sts_endpoint", .type = V_ENDPOINT, FIELD(cfg_store, sts_endpoint) },
	{ .name = "credentials_refresh", .type = V_DURATION,
	  FIELD(cfg_store, refresh_before_ms) },
	{ .name = "credentials_duration", .type = V_DURATION, FIELD(cfg_store, duration_ms),
	  .min = 900 * 1000 },
	{ .name = "ca_bundle", .type = V_PATH, FIELD(cfg_store, ca_bundle) },
	{ .name = "tls_verify", .type = V_BOOL, FIELD(cfg_store, tls_verify) },
	{ .name = "payload_signing", .type = V_CHOICE, FIELD(cfg_store, sign_payload),
	  .choices = signing_names },
	{ .name = "connect_timeout", .type = V_DURATION, FIELD(cfg_store, connect_timeout_ms),
	  .min = 1 },
	{ .name = "stall_timeout", .type = V_DURATION, FIELD(cfg_store, stall_timeout_ms),
	  .min = 1 },
	{ .name = "retry_time", .type = V_DURATION, FIELD(cfg_store, retry_time_ms) },
	{ .name = "max_attempts", .type = V_UINT, FIELD(cfg_store, max_attempts), .min = 1,
	  .max = UINT32_MAX },
	{ .name = NULL },
};

static const struct key read_keys[] = {
	{ .name = "url", .type = V_URL, .required = true },
	{ .name = "store", .type = V_STORE },
	{ .name = "cache", .type = V_SIZE, FIELD(cfg_route, cache_bytes), .min = 1,
	  .max = UINT64_MAX },
	{ .name = "prefetch", .type = V_CHOICE, FIELD(cfg_route, prefetch),
	  .choices = prefetch_names },
	{ .name = "prefetch_concurrency", .type = V_UINT, FIELD(cfg_route, prefetch_concurrency),
	  .min = 1, .max = 1024 },
	{ .name = "whole_object_max", .type = V_SIZE, FIELD(cfg_route, whole_max),
	  .max = UINT64_MAX },
	{ .name = "listing_ttl", .type = V_DURATION, FIELD(cfg_route, listing_ttl_ms) },
	{ .name = NULL },
};

/* A single PUT and a multipart part both top out at 5 GiB, and parts other than the last
 * must be at least 5 MiB. */
static const struct key write_keys[] = {
	{ .name = "url", .type = V_URL, .required = true },
	{ .name = "store", .type = V_STORE },
	{ .name = "spool", .type = V_PATH, FIELD(cfg_route, spool) },
	{ .name = "multipart_threshold", .type = V_SIZE, FIELD(cfg_route, multipart_threshold),
	  .min = 5 * MIB, .max = 5 * GIB },
	{ .name = "part_size", .type = V_SIZE, FIELD(cfg_route, part_size), .min = 5 * MIB,
	  .max = 5 * GIB },
	{ .name = "upload_workers", .type = V_UINT, FIELD(cfg_route, upload_workers), .min = 1,
	  .max = 256 },
	{ .name = "part_concurrency", .type = V_UINT, FIELD(cfg_route, part_concurrency),
	  .min = 1, .max = 64 },
	{ .name = "drain_timeout", .type = V_DURATION, FIELD(cfg_route, drain_timeout_ms) },
	{ .name = "upload_delay", .type = V_DURATION, FIELD(cfg_route, upload_delay_ms),
	  .max = 60 * 1000 },
	{ .name = "snapshot_interval", .type = V_DURATION,
	  FIELD(cfg_route, snapshot_interval_ms) },
	{ .name = "spool_budget", .type = V_SIZE, FIELD(cfg_route, spool_budget), .min = 0,
	  .max = UINT64_MAX },
	{ .name = NULL },
};

static const struct key *const tables[] = {
	[CFG_SEC_GLOBAL] = global_keys,
	[CFG_SEC_STORE] = store_keys,
	[CFG_SEC_READ] = read_keys,
	[CFG_SEC_WRITE] = write_keys,
};

int cfg_key_index(enum cfg_section kind, const char *name)
{
	for (int i = 0; tables[kind][i].name; i++) {
		if (strcmp(tables[kind][i].name, name) == 0)
			return i;
	}
	return -1;
}

const char *cfg_key_name(enum cfg_section kind, int index)
{
	return tables[kind][index].name;
}

bool cfg_key_required(enum cfg_section kind, int index)
{
	return tables[kind][index].required;
}

/* Fields are bool, uint32_t or an int-sized enum (same representation for these small
 * values), or uint64_t. */
static void put_uint(void *field, size_t size, uint64_t v)
{
	if (size == sizeof(bool)) {
		bool b = v != 0;
		memcpy(field, &b, sizeof b);
	} else if (size == sizeof(uint32_t)) {
		uint32_t u = (uint32_t)v;
		memcpy(field, &u, sizeof u);
	} else {
		memcpy(field, &v, sizeof v);
	}
}

static void put_string(void *field, char *s)
{
	memcpy(field, &s, sizeof s);
}

/* 5 GiB reads better than 5368709120 in a message. */
static void format_size(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;
	while (u < 4 && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%" PRIu64 "%s", v, units[u]);
}

static int size_range(const struct key *k, const char *value, char *msg, size_t msglen)
{
	char lo[32], hi[32];
	format_size(k->min, lo, sizeof lo);
	format_size(k->max, hi, sizeof hi);
	if (k->max == UINT64_MAX && k->min == 1)
		snprintf(msg, msglen, "%s: \"%s\" is out of range (must be more than 0)", k->name,
			 value);
	else
		snprintf(msg, msglen, "%s: \"%s\" is out of range (use %s to %s)", k->name, value, lo,
			 hi);
	return -1;
}

static int choice_problem(const struct key *k, const char *value, char *msg, size_t msglen)
{
	char list[128] = "";
	size_t n = 0;
	while (k->choices[n])
		n++;
	for (size_t i = 0; i < n; i++) {
		const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
		size_t used = strlen(list);
		snprintf(list + used, sizeof list - used, "%s%s", sep, k->choices[i]);
	}
	snprintf(msg, msglen, "%s: bad value \"%s\" (use %s)", k->name, value, list);
	return -1;
}

static int parse_uint(const struct key *k, const char *value, uint64_t *v, char *msg,
		      size_t msglen)
{
	char *end;
	/* strtoull alone would accept "-1", "+3" and " 7". */
	bool digits = value[0] >= '0' && value[0] <= '9';
	*v = digits ? strtoull(value, &end, 10) : 0;
	if (!digits || *end != '\0' || *v < k->min || *v > k->max) {
		if (k->max == UINT32_MAX)
			snprintf(msg, msglen, "%s: bad value \"%s\" (use an integer of at least %" PRIu64
					      ")", k->name, value, k->min);
		else
			snprintf(msg, msglen, "%s: bad value \"%s\" (use an integer from %" PRIu64
					      " to %" PRIu64 ")", k->name, value, k->min, k->max);
		return -1;
	}
	return 0;
}

static int apply_special(const struct key *k, const struct cfg_target *t, const char *value,
			 char *msg, size_t msglen)
{
	const char *why = NULL;
	if (k->type == V_URL) {
		cfg_route *r = t->obj;
		if (cfg_parse_url(value, &r->bucket, &r->prefix, &why) == 0)
			return 0;
		snprintf(msg, msglen, "%s: bad URL \"%s\": %s (use e.g. s3://bucket/some/prefix/)",
			 k->name, value, why);
		return -1;
	}
	if (!cfg_store_name_ok(value)) {
		snprintf(msg, msglen, "%s: bad store name \"%s\" (use letters, digits, '.', '_' and '-')",
			 k->name, value);
		return -1;
	}
	*t->store_name = strdup(value);
	if (*t->store_name)
		return 0;
	snprintf(msg, msglen, "out of memory");
	return -1;
}

static int apply_string(const struct key *k, void *field, const char *value, char *msg,
			size_t msglen)
{
	const char *why = NULL;
	char *s = NULL;
	if (value[0] == '\0') {
		snprintf(msg, msglen, "%s: empty value", k->name);
		return -1;
	}
	if (k->type == V_ENDPOINT) {
		s = cfg_parse_endpoint(value, &why);
		if (!s && why) {
			snprintf(msg, msglen, "%s: bad endpoint \"%s\": %s", k->name, value, why);
			return -1;
		}
	} else if (k->type == V_PATH && value[0] != '/') {
		/* The preloaded program may chdir; a relative path would move with it. */
		snprintf(msg, msglen, "%s: \"%s\" is not an absolute path", k->name, value);
		return -1;
	} else {
		s = strdup(value);
	}
	if (!s) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	put_string(field, s);
	return 0;
}

int cfg_key_apply(enum cfg_section kind, int index, const struct cfg_target *t,
		  const char *value, char *msg, size_t msglen)
{
	const struct key *k = &tables[kind][index];
	void *field = (char *)t->obj + k->off;
	uint64_t v = 0;
	uint32_t ms;
	bool b;
	switch (k->type) {
	case V_URL:
	case V_STORE:
		return apply_special(k, t, value, msg, msglen);
	case V_STRING:
	case V_PATH:
	case V_ENDPOINT:
		return apply_string(k, field, value, msg, msglen);
	case V_SIZE:
		if (cfg_parse_size(value, &v) < 0) {
			snprintf(msg, msglen, "%s: bad size \"%s\" (use e.g. 512MiB, 2GiB)", k->name,
				 value);
			return -1;
		}
		if (v < k->min || v > k->max)
			return size_range(k, value, msg, msglen);
		break;
	case V_DURATION:
		if (cfg_parse_duration(value, &ms) < 0) {
			snprintf(msg, msglen, "%s: bad duration \"%s\" (use e.g. 500ms, 30s, 10m, 1h)",
				 k->name, value);
			return -1;
		}
		if (ms < k->min) {
			if (k->min <= 1)
				snprintf(msg, msglen, "%s: \"%s\" is out of range (must be more than 0)",
					 k->name, value);
			else
				snprintf(msg, msglen, "%s: \"%s\" is out of range (at least %llums)",
					 k->name, value, (unsigned long long)k->min);
			return -1;
		}
		if (k->max && ms > k->max) {
			snprintf(msg, msglen, "%s: \"%s\" is out of range (at most %llus)", k->name,
				 value, (unsigned long long)(k->max / 1000));
			return -1;
		}
		v = ms;
		break;
	case V_UINT:
		if (parse_uint(k, value, &v, msg, msglen) < 0)
			return -1;
		break;
	case V_BOOL:
		if (cfg_parse_bool(value, &b) < 0) {
			snprintf(msg, msglen, "%s: bad boolean \"%s\" (use true or false)", k->name,
				 value);
			return -1;
		}
		v = b;
		break;
	case V_CHOICE:
		while (k->choices[v] && strcasecmp(k->choices[v], value) != 0)
			v++;
		if (!k->choices[v])
			return choice_problem(k, value, msg, msglen);
		break;
	}
	put_uint(field, k->size, v);
	return 0;
}

void cfg_store_init(cfg_store *s)
{
	s->credentials = CFG_CRED_AUTO;
	s->refresh_before_ms = 5 * 60 * 1000;
	s->duration_ms = 60 * 60 * 1000;
	s->tls_verify = true;
	s->sign_payload = false;
	s->connect_timeout_ms = 5 * 1000;
	s->stall_timeout_ms = 30 * 1000;
	s->retry_time_ms = 60 * 1000;
	s->max_attempts = 10;
}

void cfg_route_init(cfg_route *r, enum cfg_mode mode)
{
	r->mode = mode;
	if (mode == CFG_READ) {
		r->cache_bytes = GIB;
		r->prefetch = CFG_PREFETCH_LISTING;
		r->prefetch_concurrency = 16;
		r->whole_max = 8 * MIB;
		r->listing_ttl_ms = 10 * 60 * 1000;
	} else {
		r->multipart_threshold = 64 * MIB;
		r->part_size = 16 * MIB;
		r->upload_workers = 4;
		r->part_concurrency = 4;
		r->drain_timeout_ms = 10 * 60 * 1000;
		r->upload_delay_ms = 100;
		r->snapshot_interval_ms = 30 * 1000;
	}
}

int cfg_store_finish(cfg_store *s, const int *key_line)
{
	/* Path-style for what cannot carry a bucket in its host name (an IP or localhost, as
	 * with a local MinIO), virtual-host style, which AWS and OSS expect, otherwise. */
	if (!key_line[cfg_key_index(CFG_SEC_STORE, "addressing")])
		s->addressing = cfg_endpoint_is_local(s->endpoint) ? CFG_ADDR_PATH : CFG_ADDR_VIRTUAL;
	if (!s->region)
		s->region = strdup("us-east-1");
	return s->region ? 0 : -1;
}

int cfg_route_finish(cfg_route *r)
{
	if (r->mode == CFG_WRITE && !r->spool)
		r->spool = strdup("/var/tmp/rwsplit");
	return r->mode == CFG_READ || r->spool ? 0 : -1;
}

bool cfg_store_name_ok(const char *name)
{
	size_t len = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
	return len > 0 && name[len] == '\0';
}
