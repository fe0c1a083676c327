/* Rules that relate routes to each other and to stores. */
#include "config/cfg.h"
#include "config/cfg_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *cfg_local_path(const char *path, const char **why)
{
	if (path[0] != '/') {
		*why = "the local path must be absolute";
		return NULL;
	}
	char *out = malloc(strlen(path) + 1);
	if (!out) {
		*why = NULL;
		return NULL;
	}
	size_t len = 0;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (n == 0)
			break;
		/* A config is read by people: "/mnt/x/../y" would more likely be a mistake than a
		 * wish, and rejecting it keeps one spelling per route. */
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			free(out);
			*why = "the local path must not contain \".\" or \"..\" components";
			return NULL;
		}
		out[len++] = '/';
		memcpy(out + len, p, n);
		len += n;
		p += n;
	}
	out[len] = '\0';
	if (len == 0) {
		free(out);
		*why = "cannot route \"/\" itself";
		return NULL;
	}
	return out;
}

static const char *mode_name(enum cfg_mode m)
{
	return m == CFG_READ ? "read" : "write";
}

/* True when inner lies strictly below outer, on a component boundary. */
static bool is_below(const cfg_route *inner, const cfg_route *outer)
{
	return inner->local_len > outer->local_len &&
	       memcmp(inner->local, outer->local, outer->local_len) == 0 &&
	       inner->local[outer->local_len] == '/';
}

int cfg_check_local(const cfg *c, size_t i, char *msg, size_t msglen)
{
	const cfg_route *r = &c->routes[i];
	for (size_t j = 0; j < i; j++) {
		const cfg_route *o = &c->routes[j];
		if (strcmp(r->local, o->local) == 0) {
			snprintf(msg, msglen, "[%s %s] has the same local path as [%s %s] (line %d)",
				 mode_name(r->mode), r->local, mode_name(o->mode), o->local, o->line);
			return -1;
		}
		/* Read routes may nest (the longest prefix wins); anything else would leave files
		 * whose fate depends on which route a lookup happens to try. */
		if (r->mode == CFG_READ && o->mode == CFG_READ)
			continue;
		if (is_below(r, o) || is_below(o, r)) {
			snprintf(msg, msglen,
				 "[%s %s] %s [%s %s] (line %d): only a read route may be nested in "
				 "another read route",
				 mode_name(r->mode), r->local, is_below(r, o) ? "is inside" : "contains",
				 mode_name(o->mode), o->local, o->line);
			return -1;
		}
	}
	return 0;
}

static bool remote_overlap(const cfg_route *a, const cfg_route *b)
{
	if (strcmp(a->store->endpoint, b->store->endpoint) != 0 || strcmp(a->bucket, b->bucket) != 0)
		return false;
	size_t la = strlen(a->prefix), lb = strlen(b->prefix);
	/* Prefixes are "" or end in '/', so a string prefix is a directory prefix. */
	return strncmp(a->prefix, b->prefix, la < lb ? la : lb) == 0;
}

int cfg_check_routes(cfg *c, char *const *names, char *msg, size_t msglen, int *line)
{
	for (size_t i = 0; i < c->nroutes; i++) {
		cfg_route *r = &c->routes[i];
		*line = r->line;
		r->store = cfg_find_store(c, names[i] ? names[i] : "");
		if (!r->store && names[i]) {
			snprintf(msg, msglen, "[%s %s] names store \"%s\", but there is no [store %s]",
				 mode_name(r->mode), r->local, names[i], names[i]);
			return -1;
		}
		if (!r->store) {
			snprintf(msg, msglen,
				 "[%s %s] uses the default store, but there is no [store] section",
				 mode_name(r->mode), r->local);
			return -1;
		}
		/* Comparing endpoints, not store names, also catches two names for one service. */
		for (size_t j = 0; j < i; j++) {
			const cfg_route *o = &c->routes[j];
			if ((r->mode == CFG_READ && o->mode == CFG_READ) || !remote_overlap(r, o))
				continue;
			snprintf(msg, msglen,
				 "[%s %s] (s3://%s/%s) overlaps [%s %s] (line %d, s3://%s/%s): a write "
				 "route must not share objects with another route",
				 mode_name(r->mode), r->local, r->bucket, r->prefix, mode_name(o->mode),
				 o->local, o->line, o->bucket, o->prefix);
			return -1;
		}
	}
	return 0;
}
