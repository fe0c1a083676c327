/* The syntax of single values: sizes, durations, booleans, s3:// URLs and endpoints. */
#include "config/cfg.h"
#include "config/cfg_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct unit {
	const char *name;
	uint64_t mult;
};

#define KIB 1024ULL

/* Binary multiples for K/M/G/T with or without "iB", decimal ones for "B" after the letter,
 * as dd does. Lower-case letters are refused (is "mb" a millibit?) except k, the SI prefix. */
static const struct unit size_units[] = {
	{ "", 1 },
	{ "B", 1 },
	{ "K", KIB },
	{ "KiB", KIB },
	{ "KB", 1000ULL },
	{ "M", KIB * KIB },
	{ "MiB", KIB * KIB },
	{ "MB", 1000ULL * 1000 },
	{ "G", KIB * KIB * KIB },
	{ "GiB", KIB * KIB * KIB },
	{ "GB", 1000ULL * 1000 * 1000 },
	{ "T", KIB * KIB * KIB * KIB },
	{ "TiB", KIB * KIB * KIB * KIB },
	{ "TB", 1000ULL * 1000 * 1000 * 1000 },
	{ NULL, 0 },
};

static const struct unit duration_units[] = {
	{ "", 1000 },
	{ "ms", 1 },
	{ "s", 1000 },
	{ "m", 60 * 1000 },
	{ "h", 60 * 60 * 1000 },
	{ NULL, 0 },
};

static const char *skip_space(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* Digits only: strtoull would take a sign (and wrap "-1") and leading blanks. */
static const char *parse_digits(const char *s, uint64_t *v)
{
	uint64_t n = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			return NULL;
		n = n * 10 + d;
	}
	if (p == s)
		return NULL;
	*v = n;
	return p;
}

/* "<digits> [unit]" with blanks allowed around and between; unit lookup via the table, with
 * a leading 'k' read as 'K' when fold_k is set. */
static int parse_scaled(const char *s, const struct unit *units, bool fold_k, uint64_t *out)
{
	uint64_t n;
	const char *p = parse_digits(skip_space(s), &n);
	if (!p)
		return -1;
	p = skip_space(p);
	size_t len = 0;
	while (isalpha((unsigned char)p[len]))
		len++;
	if (*skip_space(p + len) != '\0')
		return -1;
	char unit[4];
	if (len >= sizeof unit)
		return -1;
	memcpy(unit, p, len);
	unit[len] = '\0';
	if (fold_k && unit[0] == 'k')
		unit[0] = 'K';
	for (const struct unit *u = units; u->name; u++) {
		if (strcmp(u->name, unit) != 0)
			continue;
		if (n > UINT64_MAX / u->mult)
			return -1;
		*out = n * u->mult;
		return 0;
	}
	return -1;
}

int cfg_parse_size(const char *s, uint64_t *out)
{
	return parse_scaled(s, size_units, true, out);
}

int cfg_parse_duration(const char *s, uint32_t *ms)
{
	uint64_t v;
	if (parse_scaled(s, duration_units, false, &v) < 0 || v > UINT32_MAX)
		return -1;
	*ms = (uint32_t)v;
	return 0;
}

int cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* S3's bucket naming rules, which also make a name usable as a DNS label for virtual-host
 * addressing. */
static const char *bucket_problem(const char *b, size_t len)
{
	if (len == 0)
		return "missing bucket name";
	if (len < 3 || len > 63)
		return "bucket name must be 3 to 63 characters long";
	for (size_t i = 0; i < len; i++) {
		if (!islower((unsigned char)b[i]) && !isdigit((unsigned char)b[i]) && b[i] != '.' &&
		    b[i] != '-')
			return "bucket name may only contain a-z, 0-9, '.' and '-'";
	}
	if (!isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[len - 1]))
		return "bucket name must start and end with a letter or digit";
	if (memmem(b, len, "..", 2))
		return "bucket name must not contain \"..\"";
	char copy[64];
	struct in_addr a;
	memcpy(copy, b, len);
	copy[len] = '\0';
	if (inet_pton(AF_INET, copy, &a) == 1)
		return "bucket name must not be an IP address";
	return NULL;
}

/* The prefix after "bucket/": segments separated by single '/', the last one possibly
 * empty (a trailing '/'). */
static const char *prefix_problem(const char *p)
{
	while (*p) {
		size_t len = strcspn(p, "/");
		if (len == 0)
			return "empty path segment (\"//\")";
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return "\".\" or \"..\" path segment";
		p += len;
		if (*p == '/')
			p++;
	}
	return NULL;
}

int cfg_parse_url(const char *url, char **bucket, char **prefix, const char **why)
{
	if (strncmp(url, "s3://", 5) != 0) {
		*why = "not an s3:// URL";
		return -1;
	}
	const char *b = url + 5;
	size_t blen = strcspn(b, "/");
	const char *p = b + blen;
	if (*p == '/')
		p++;
	*why = bucket_problem(b, blen);
	if (!*why)
		*why = prefix_problem(p);
	if (*why)
		return -1;
	size_t plen = strlen(p);
	bool slash = plen > 0 && p[plen - 1] != '/';
	*bucket = strndup(b, blen);
	*prefix = malloc(plen + slash + 1);
	if (!*bucket || !*prefix) {
		free(*bucket);
		free(*prefix);
		*bucket = *prefix = NULL;
		*why = "out of memory";
		return -1;
	}
	memcpy(*prefix, p, plen);
	if (slash)
		(*prefix)[plen++] = '/';
	(*prefix)[plen] = '\0';
	return 0;
}

static bool port_ok(const char *p)
{
	uint64_t port;
	const char *end = parse_digits(p, &port);
	return end && *end == '\0' && port >= 1 && port <= 65535;
}

/* host is "name", "1.2.3.4" or "[v6]", each optionally followed by ":port". */
static const char *authority_problem(const char *a)
{
	const char *colon;
	if (a[0] == '[') {
		const char *close = strchr(a, ']');
		char v6[INET6_ADDRSTRLEN];
		struct in6_addr addr;
		size_t len = close ? (size_t)(close - a - 1) : 0;
		if (!close || len >= sizeof v6)
			return "bad IPv6 address";
		memcpy(v6, a + 1, len);
		v6[len] = '\0';
		if (inet_pton(AF_INET6, v6, &addr) != 1)
			return "bad IPv6 address";
		colon = close + 1;
		if (*colon != '\0' && *colon != ':')
			return "unexpected characters after the IPv6 address";
	} else {
		size_t len = strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
		if (len == 0)
			return "missing host name";
		colon = a + len;
		if (*colon != '\0' && *colon != ':')
			return "bad character in host name";
	}
	if (*colon == ':' && !port_ok(colon + 1))
		return "bad port (use 1 to 65535)";
	return NULL;
}

char *cfg_parse_endpoint(const char *s, const char **why)
{
	static const char *const schemes[] = { "http://", "https://" };
	size_t slen = 0;
	for (size_t i = 0; i < 2; i++) {
		if (strncasecmp(s, schemes[i], strlen(schemes[i])) == 0)
			slen = strlen(schemes[i]);
	}
	if (slen == 0) {
		*why = "must start with http:// or https://";
		return NULL;
	}
	size_t alen = strlen(s + slen);
	if (alen > 0 && s[slen + alen - 1] == '/')
		alen--;
	size_t stop = strcspn(s + slen, "/?#@");
	if (stop < alen) {
		*why = s[slen + stop] == '@'
			       ? "must not contain user information (credentials belong in the "
				 "environment or a credentials file)"
			       : "must not have a path, query or fragment (the bucket and prefix "
				 "belong in a route's url)";
		return NULL;
	}
	char *out = strndup(s, slen + alen);
	if (!out) {
		*why = NULL;
		return NULL;
	}
	*why = authority_problem(out + slen);
	if (*why) {
		free(out);
		return NULL;
	}
	/* DNS names and schemes are case-insensitive; one spelling lets routes on the same
	 * service be compared by string. */
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

bool cfg_endpoint_is_local(const char *endpoint)
{
	const char *host = strstr(endpoint, "://") + 3;
	if (host[0] == '[')
		return true;
	size_t len = strcspn(host, ":");
	char name[256];
	struct in_addr a;
	if (len >= sizeof name)
		return false;
	memcpy(name, host, len);
	name[len] = '\0';
	return strcmp(name, "localhost") == 0 || inet_pton(AF_INET, name, &a) == 1;
}

int cfg_parse_listen(const char *s, struct sockaddr_in *out)
{
	const char *colon = strrchr(s, ':');
	char host[INET_ADDRSTRLEN];
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	if (!colon || (size_t)(colon - s) >= sizeof host)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	char *end;
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (errno || !colon[1] || *end || port < 1 || port > 65535 ||
	    inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return -1;
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	if (out)
		*out = a;
	return 0;
}
