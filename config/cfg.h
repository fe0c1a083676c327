/* The path-routing configuration: an INI file (parsed with libinih) loaded once into immutable
 * structs. See config/examples/ and README.md ("Configuration") for every key.
 *
 * Ownership: cfg_load() returns one cfg that owns every string and array it points to;
 * cfg_free() releases all of it. Nothing in a loaded cfg changes afterwards, so any number of
 * threads may read it without locks. */
#ifndef RWSPLIT_CFG_H
#define RWSPLIT_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_ERR_MAX 512

enum cfg_addressing { CFG_ADDR_PATH, CFG_ADDR_VIRTUAL };
enum cfg_cred_source {
	CFG_CRED_AUTO, CFG_CRED_ENV, CFG_CRED_FILE, CFG_CRED_WEB_IDENTITY, CFG_CRED_RRSA,
	CFG_CRED_IMDS
};
enum cfg_mode { CFG_READ, CFG_WRITE };
enum cfg_prefetch { CFG_PREFETCH_OFF, CFG_PREFETCH_LISTING, CFG_PREFETCH_ALL };

typedef struct cfg_store {
	char *name;              /* "" for the default [store], else NAME of [store NAME] */
	char *endpoint;          /* "http[s]://host[:port]", no trailing slash, no path */
	char *region;            /* default "us-east-1" */
	enum cfg_addressing addressing; /* default: path for an IP or localhost, else virtual */
	/* default auto: AWS_* env, OSS_* env, web identity, RRSA, shared file, IMDS */
	enum cfg_cred_source credentials;
	char *credentials_file;  /* NULL: $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials */
	char *profile;           /* NULL: $AWS_PROFILE or "default" */
	char *sts_endpoint;      /* NULL: $AWS_ENDPOINT_URL_STS / $ALIBABA_CLOUD_STS_ENDPOINT or
				  * the provider's public STS */
	uint32_t refresh_before_ms; /* temporary credentials are renewed this long before they
				     * expire; default 5 min */
	uint32_t duration_ms;    /* the life asked of STS credentials; default 1 h, at least 15 min */
	char *creds_cache;       /* [global] cache_dir, where every process of the node finds the
				  * temporary credentials one of them got (copied at load) */
	char *ca_bundle;         /* NULL: the system's CA store */
	bool tls_verify;         /* default true; false is allowed (the s3 client warns) */
	bool sign_payload;       /* payload_signing = signed|unsigned; default unsigned */
	uint32_t connect_timeout_ms; /* default 5 s */
	uint32_t stall_timeout_ms;   /* a transfer with no progress for this long fails; 30 s */
	uint32_t retry_time_ms;      /* total time budget for retries of one request; 60 s */
	uint32_t max_attempts;       /* default 10 */
	int line;                /* line of the section header, for messages */
} cfg_store;

typedef struct cfg_route {
	enum cfg_mode mode;
	char *local;             /* normalized absolute path, no trailing '/', never "/" */
	size_t local_len;
	char *bucket;
	char *prefix;            /* "" or ends with '/' */
	const cfg_store *store;  /* points into cfg.stores */
	/* read routes */
	uint64_t cache_bytes;        /* cache = SIZE; default 1 GiB */
	enum cfg_prefetch prefetch;  /* default listing */
	uint32_t prefetch_concurrency; /* default 16 */
	uint64_t whole_max;          /* whole_object_max = SIZE; default 8 MiB */
	uint32_t listing_ttl_ms;     /* listing_ttl: how long a shared listing stays fresh; 10m */
	/* write routes */
	char *spool;                 /* default /var/tmp/rwsplit */
	uint64_t multipart_threshold; /* default 64 MiB; >= 5 MiB */
	uint64_t part_size;          /* default 16 MiB; 5 MiB .. 5 GiB */
	uint32_t upload_workers;     /* default 4 */
	uint32_t part_concurrency;   /* default 4 */
	uint32_t drain_timeout_ms;   /* default 10 min; exit waits at most this long */
	uint32_t upload_delay_ms;    /* default 100 ms; a closed file waits this long to be
				      * uploaded, so that a temp file renamed or removed right
				      * after its close is never uploaded under its temp name */
	uint32_t snapshot_interval_ms; /* default 30 s; a file kept open for writing is
				      * uploaded this often while it changes (0: only at close) */
	uint64_t spool_budget;       /* default 0 (none): files of the tree already in the
				      * store beyond this many bytes become placeholders again,
				      * least recently used first */
	int line;
} cfg_route;

typedef struct cfg {
	char *path;              /* the file it was loaded from */
	char digest[65];         /* SHA-256 of the file's text as loaded, lowercase hex */
	char *cache_dir;         /* [global] cache_dir; default /dev/shm/rwsplit */
	char *metrics;           /* [global] metrics: NULL, "IPV4:PORT" or an absolute file path */
	bool agent;              /* [global] agent: fetch through the node's agent; default true */
	uint32_t agent_idle_ms;  /* [global] agent_idle: the agent exits after this; 1 min */
	uint32_t agent_handoff;  /* [global] agent_handoff: a process fetches by itself after
				  * this many requests through the agent; 0 (default): never */
	cfg_store *stores;
	size_t nstores;
	cfg_route *routes;       /* in file order */
	size_t nroutes;
} cfg;

/* Loads and validates the file at path. On success returns 0 and stores a new cfg in *out
 * (caller frees with cfg_free). On failure returns -1, leaves *out NULL and writes one line
 * "FILE:LINE: problem" (or "FILE: problem") into err (CFG_ERR_MAX bytes recommended). */
int cfg_load(const char *path, cfg **out, char *err, size_t errlen);

/* Frees everything cfg_load returned. NULL is fine. */
void cfg_free(cfg *c);

/* "A.B.C.D:PORT" (port 1..65535) into *out (may be NULL: only checks). Returns 0 or -1. */
struct sockaddr_in;
int cfg_parse_listen(const char *s, struct sockaddr_in *out);

/* Looks a store up by name ("" is the default store). Returns NULL when absent. */
const cfg_store *cfg_find_store(const cfg *c, const char *name);

/* "2GiB", "512M", "64 KiB", "100KB", "4096": K/KiB = 1024, KB = 1000 (like dd).
 * Returns 0, or -1 for anything else (negative, overflow, unknown suffix, empty). */
int cfg_parse_size(const char *s, uint64_t *out);

/* "30s", "500ms", "5m", "1h", "10" (seconds). Returns 0 or -1; result must fit 32 bits. */
int cfg_parse_duration(const char *s, uint32_t *ms);

/* "true|false|yes|no|on|off|1|0" (case-insensitive). Returns 0 or -1. */
int cfg_parse_bool(const char *s, bool *out);

/* Splits "s3://bucket/some/prefix/" into a newly allocated bucket and prefix (prefix "" or
 * ending in '/'). Rejects other schemes, invalid bucket names, empty, "." or ".." segments.
 * On success returns 0 and the caller frees both; on failure returns -1 and sets *why to a
 * static description. */
int cfg_parse_url(const char *url, char **bucket, char **prefix, const char **why);

#endif
