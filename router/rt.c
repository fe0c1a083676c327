/* Path routing. The table is built once and read without locks; nothing below allocates. */
#include "router/rt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct first {
	const char *name; /* points into a route's local path */
	size_t len;
};

struct rt_table {
	const cfg_route **routes; /* longest local path first, so the first match is the longest */
	size_t n;
	size_t min_len;           /* of any route's local path */
	struct first *firsts;     /* distinct first components of the routes' local paths */
	size_t nfirst;
};

static int by_len_desc(const void *a, const void *b)
{
	size_t la = (*(const cfg_route *const *)a)->local_len;
	size_t lb = (*(const cfg_route *const *)b)->local_len;
	return (la < lb) - (la > lb);
}

rt_table *rt_table_new(const cfg *c)
{
	rt_table *t = calloc(1, sizeof *t);
	if (!t)
		goto on_error;
	t->routes = calloc(c->nroutes ? c->nroutes : 1, sizeof *t->routes);
	t->firsts = calloc(c->nroutes ? c->nroutes : 1, sizeof *t->firsts);
	if (!t->routes || !t->firsts)
		goto on_error;
	for (size_t i = 0; i < c->nroutes; i++) {
		const cfg_route *r = &c->routes[i];
		t->routes[t->n++] = r;
		if (t->min_len == 0 || r->local_len < t->min_len)
			t->min_len = r->local_len;
		const char *name = r->local + 1;
		size_t len = strcspn(name, "/");
		size_t j = 0;
		while (j < t->nfirst && !(t->firsts[j].len == len && !memcmp(t->firsts[j].name, name, len)))
			j++;
		if (j == t->nfirst)
			t->firsts[t->nfirst++] = (struct first){ name, len };
	}
	qsort(t->routes, t->n, sizeof *t->routes, by_len_desc);
	return t;
on_error:
	rt_table_free(t);
	errno = ENOMEM;
	return NULL;
}

void rt_table_free(rt_table *t)
{
	if (!t)
		return;
	free(t->routes);
	free(t->firsts);
	free(t);
}

/* Steps back over the component that ends at s[*end] (exclusive), skipping the slashes after
 * it. Sets *comp and returns its length; 0 when only slashes were left. */
static size_t prev_component(const char *s, size_t *end, const char **comp)
{
	size_t e = *end;
	while (e > 0 && s[e - 1] == '/')
		e--;
	size_t b = e;
	while (b > 0 && s[b - 1] != '/')
		b--;
	*comp = s + b;
	*end = b;
	return e - b;
}

/* Walks the components of cwd/path (or path alone) from the right, where a ".." simply means
 * "drop the next kept component", so the result's length is known before anything is written
 * and a long intermediate path that ".." shortens still fits. With out set, writes the kept
 * components backwards ending at out[len]. Returns the length of the normalized path. */
static size_t walk(const char *cwd, const char *path, char *out, size_t len)
{
	const char *parts[2] = { path, path[0] == '/' ? NULL : cwd };
	size_t total = 0, skip = 0, pos = len;
	for (int p = 0; p < 2 && parts[p]; p++) {
		size_t end = strlen(parts[p]);
		while (end > 0) {
			const char *comp;
			size_t n = prev_component(parts[p], &end, &comp);
			if (n == 0 || (n == 1 && comp[0] == '.'))
				continue;
			if (n == 2 && comp[0] == '.' && comp[1] == '.') {
				skip++;
			} else if (skip > 0) {
				skip--;
			} else {
				total += n + 1;
				if (out) {
					pos -= n;
					memcpy(out + pos, comp, n);
					out[--pos] = '/';
				}
			}
		}
	}
	return total;
}

long rt_normalize(const char *cwd, const char *path, char *out, size_t cap)
{
	if (!path || !path[0])
		return -ENOENT;
	if (path[0] != '/' && (!cwd || cwd[0] != '/'))
		return -EINVAL;
	size_t len = walk(cwd, path, NULL, 0);
	size_t need = len ? len : 1;
	if (need + 1 > cap)
		return -ENAMETOOLONG;
	if (len)
		walk(cwd, path, out, len);
	else
		out[0] = '/';
	out[need] = '\0';
	return (long)need;
}

const cfg_route *rt_match(const rt_table *t, const char *path, const char **rest)
{
	size_t len = strlen(path);
	for (size_t i = 0; i < t->n; i++) {
		const cfg_route *r = t->routes[i];
		size_t n = r->local_len;
		if (n > len || memcmp(path, r->local, n) != 0 || (path[n] != '\0' && path[n] != '/'))
			continue;
		if (rest)
			*rest = path + n + (path[n] == '/');
		return r;
	}
	return NULL;
}

int rt_maybe_routed(const rt_table *t, const char *path)
{
	if (t->n == 0 || !path)
		return 0;
	/* Relative paths depend on the cwd, which only the caller knows. */
	if (path[0] != '/')
		return 1;
	const char *p = path;
	while (*p == '/' || (p[0] == '.' && (p[1] == '/' || p[1] == '\0')))
		p++;
	size_t len = strcspn(p, "/");
	bool candidate = len == 2 && p[0] == '.' && p[1] == '.';
	for (size_t i = 0; i < t->nfirst && !candidate; i++)
		candidate = t->firsts[i].len == len && memcmp(t->firsts[i].name, p, len) == 0;
	/* A later ".." can climb out of the first component into a route. */
	if (!candidate && !strstr(p + len, ".."))
		return 0;
	/* Normalizing an absolute path never lengthens it. */
	return strlen(path) >= t->min_len;
}

/* True when a is b or lies below it (both absolute; b without a trailing '/' unless "/"). */
static bool within(const char *a, const char *b, size_t blen)
{
	if (blen == 1 && b[0] == '/')
		return true;
	return strncmp(a, b, blen) == 0 && (a[blen] == '\0' || a[blen] == '/');
}

int rt_maybe_routed_from(const rt_table *t, const char *cwd, const char *rel)
{
	if (t->n == 0 || !rel)
		return 0;
	if (!cwd || cwd[0] != '/' || strstr(rel, "..") || strstr(cwd, "/.") || strstr(cwd, "//"))
		return 1; /* not the simple case: let the caller normalize */
	size_t clen = strlen(cwd);
	while (clen > 1 && cwd[clen - 1] == '/')
		clen--;
	for (size_t i = 0; i < t->n; i++) {
		const cfg_route *r = t->routes[i];
		if (within(cwd, r->local, r->local_len))
			return 1;
		if (clen <= r->local_len && within(r->local, cwd, clen))
			return 1;
	}
	return 0;
}

long rt_object_key(const cfg_route *route, const char *rest, int dir, char *key, size_t cap)
{
	size_t plen = strlen(route->prefix), rlen = strlen(rest);
	size_t len = plen + rlen + (dir && rlen > 0);
	if (len > RT_KEY_MAX || len + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(key, route->prefix, plen);
	memcpy(key + plen, rest, rlen);
	if (dir && rlen > 0)
		key[plen + rlen] = '/';
	key[len] = '\0';
	return (long)len;
}
