/* cfg_load: libinih does the INI syntax; this file feeds it the file's lines and turns its
 * callbacks into sections.
 *
 * The system's libinih (built without INI_HANDLER_LINENO and INI_CALL_HANDLER_ON_NEW_SECTION)
 * gives the handler neither a line number nor a call for a section header, and cuts section
 * names at 49 bytes (longer route paths would be silently truncated). So the reader hands
 * inih one synthetic line after every real line: after a line that looks like a "[header]",
 * a marker key that the handler recognizes (st->in_marker) as "a section starts here",
 * taking the whole name from the real line; after any other line, an empty line. Real line
 * N is therefore inih's line 2N-1, which turns inih's error line back into the file's. */
#include "config/cfg.h"
#include "config/cfg_priv.h"
#include "common/sha256.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOM "\xef\xbb\xbf"

enum synthetic { SYN_NONE, SYN_BLANK, SYN_MARKER };

struct section {
	bool open;
	enum cfg_section kind;
	size_t index; /* into c->stores or c->routes, which may move while the file is read */
	int line;
	int key_line[CFG_KEYS_MAX]; /* 0 until the key is set */
};

struct parse {
	const char *file;
	FILE *fp;
	char *line; /* getline's buffer, still holding the last real line */
	size_t line_cap;
	int lineno;       /* real lines read */
	int ini_lineno;   /* lines handed to inih, synthetic ones included */
	enum synthetic pending;
	bool in_marker;   /* the line inih is handling now is a marker */
	char *header;     /* the last header's name, NUL-terminated inside line */
	cfg *c;
	size_t stores_cap, routes_cap, names_cap;
	char **store_names; /* a route's store = NAME, parallel to c->routes */
	struct section sec;
	int global_line;
	char *err;
	size_t errlen;
	bool failed;
	int err_ini_line; /* inih's line number when the first problem was found */
	sha256_ctx text;  /* of every real line read */
};

static const char *const kind_names[] = {
	[CFG_SEC_GLOBAL] = "global",
	[CFG_SEC_STORE] = "store",
	[CFG_SEC_READ] = "read",
	[CFG_SEC_WRITE] = "write",
};

/* Records the first problem only; returns 0 so that a handler can `return fail(...)`. */
__attribute__((format(printf, 3, 4))) static int fail(struct parse *st, int line,
						       const char *fmt, ...)
{
	if (st->failed)
		return 0;
	st->failed = true;
	st->err_ini_line = st->ini_lineno;
	if (!st->err || st->errlen == 0)
		return 0;
	char msg[CFG_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	/* clang-analyzer loses track of va_start when it inlines a variadic callee. */
	vsnprintf(msg, sizeof msg, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
	va_end(ap);
	if (line > 0)
		snprintf(st->err, st->errlen, "%s:%d: %s", st->file, line, msg);
	else
		snprintf(st->err, st->errlen, "%s: %s", st->file, msg);
	return 0;
}

static int fail_errno(struct parse *st, int errnum)
{
	char buf[128];
	return fail(st, 0, "cannot read: %s", strerror_r(errnum, buf, sizeof buf));
}

static char *read_line(char *buf, int num, void *user)
{
	struct parse *st = user;
	st->in_marker = false;
	if (st->failed)
		return NULL;
	if (st->pending != SYN_NONE) {
		st->in_marker = st->pending == SYN_MARKER;
		snprintf(buf, (size_t)num, "%s", st->in_marker ? "marker=\n" : "\n");
		st->pending = SYN_NONE;
		st->ini_lineno++;
		return buf;
	}
	errno = 0;
	ssize_t n = getline(&st->line, &st->line_cap, st->fp);
	if (n < 0) {
		if (ferror(st->fp))
			fail_errno(st, errno);
		return NULL;
	}
	st->lineno++;
	sha256_update(&st->text, st->line, (size_t)n);
	if (memchr(st->line, '\0', (size_t)n)) {
		fail(st, st->lineno, "line contains a NUL byte");
		return NULL;
	}
	char *s = st->line;
	if (st->lineno == 1 && strncmp(s, BOM, strlen(BOM)) == 0)
		s += strlen(BOM);
	/* inih would join an indented line to the previous key's value; indenting keys under
	 * their section is common, so leading blanks are simply dropped instead. */
	s += strspn(s, " \t");
	size_t len = strlen(s);
	if (len + 1 > (size_t)num) {
		fail(st, st->lineno, "line is too long (at most %d characters)", num - 2);
		return NULL;
	}
	memcpy(buf, s, len + 1);
	st->pending = SYN_BLANK;
	char *end = s[0] == '[' ? strchr(s + 1, ']') : NULL;
	if (end) {
		*end = '\0';
		st->header = s + 1;
		st->pending = SYN_MARKER;
	}
	st->ini_lineno++;
	return buf;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	return s;
}

/* Returns arr, or a larger copy of it when n elements fill it; NULL when that fails. */
static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return arr;
	size_t ncap = *cap ? *cap * 2 : 4;
	void *p = realloc(arr, ncap * size);
	if (p)
		*cap = ncap;
	return p;
}

static void section_label(const struct parse *st, char *buf, size_t len)
{
	const struct section *sec = &st->sec;
	const char *arg = "";
	if (sec->kind == CFG_SEC_STORE)
		arg = st->c->stores[sec->index].name;
	else if (sec->kind != CFG_SEC_GLOBAL)
		arg = st->c->routes[sec->index].local;
	snprintf(buf, len, "[%s%s%s]", kind_names[sec->kind], *arg ? " " : "", arg);
}

static int close_section(struct parse *st)
{
	struct section *sec = &st->sec;
	if (!sec->open)
		return 1;
	sec->open = false;
	for (int i = 0; cfg_key_name(sec->kind, i); i++) {
		if (cfg_key_required(sec->kind, i) && !sec->key_line[i]) {
			char label[CFG_MSG_MAX / 2];
			section_label(st, label, sizeof label);
			return fail(st, sec->line, "missing required key \"%s\" in %s",
				    cfg_key_name(sec->kind, i), label);
		}
	}
	int rc = 0;
	if (sec->kind == CFG_SEC_STORE)
		rc = cfg_store_finish(&st->c->stores[sec->index], sec->key_line);
	else if (sec->kind != CFG_SEC_GLOBAL)
		rc = cfg_route_finish(&st->c->routes[sec->index]);
	return rc == 0 ? 1 : fail(st, 0, "out of memory");
}

static int open_global(struct parse *st, const char *arg)
{
	if (*arg)
		return fail(st, st->lineno, "[global] takes no name (found \"%s\")", arg);
	if (st->global_line)
		return fail(st, st->lineno, "duplicate section [global] (first on line %d)",
			    st->global_line);
	st->global_line = st->lineno;
	st->sec.kind = CFG_SEC_GLOBAL;
	return 1;
}

static int open_store(struct parse *st, const char *arg)
{
	cfg *c = st->c;
	if (*arg && !cfg_store_name_ok(arg))
		return fail(st, st->lineno,
			    "bad store name \"%s\" (use letters, digits, '.', '_' and '-')", arg);
	for (size_t i = 0; i < c->nstores; i++) {
		if (strcmp(c->stores[i].name, arg) == 0)
			return fail(st, st->lineno, "duplicate section [store%s%s] (first on line %d)",
				    *arg ? " " : "", arg, c->stores[i].line);
	}
	cfg_store *stores = grow(c->stores, &st->stores_cap, c->nstores, sizeof *stores);
	if (!stores)
		return fail(st, 0, "out of memory");
	c->stores = stores;
	cfg_store *s = &stores[c->nstores];
	memset(s, 0, sizeof *s);
	st->sec.kind = CFG_SEC_STORE;
	st->sec.index = c->nstores++;
	s->line = st->lineno;
	cfg_store_init(s);
	s->name = strdup(arg);
	return s->name ? 1 : fail(st, 0, "out of memory");
}

static int open_route(struct parse *st, const char *arg, enum cfg_mode mode)
{
	cfg *c = st->c;
	const char *kind = mode == CFG_READ ? "read" : "write";
	if (!*arg)
		return fail(st, st->lineno, "[%s] needs a local path, e.g. [%s /mnt/data]", kind, kind);
	const char *why = NULL;
	char *local = cfg_local_path(arg, &why);
	if (!local && why)
		return fail(st, st->lineno, "[%s %s]: %s", kind, arg, why);
	cfg_route *routes = local ? grow(c->routes, &st->routes_cap, c->nroutes, sizeof *routes)
				  : NULL;
	if (routes)
		c->routes = routes;
	char **names = routes ? grow(st->store_names, &st->names_cap, c->nroutes, sizeof *names)
			      : NULL;
	if (!names) {
		free(local);
		return fail(st, 0, "out of memory");
	}
	st->store_names = names;
	names[c->nroutes] = NULL;
	cfg_route *r = &routes[c->nroutes];
	memset(r, 0, sizeof *r);
	r->local = local;
	r->local_len = strlen(local);
	r->line = st->lineno;
	cfg_route_init(r, mode);
	st->sec.kind = mode == CFG_READ ? CFG_SEC_READ : CFG_SEC_WRITE;
	st->sec.index = c->nroutes++;
	char msg[CFG_MSG_MAX];
	if (cfg_check_local(c, st->sec.index, msg, sizeof msg) < 0)
		return fail(st, st->lineno, "%s", msg);
	return 1;
}

static bool is_kind(const char *name, size_t len, const char *kind)
{
	return strlen(kind) == len && memcmp(name, kind, len) == 0;
}

static int open_section(struct parse *st)
{
	if (!close_section(st))
		return 0;
	char *name = trim(st->header);
	/* The first blank run ends the kind; a route's path may itself contain blanks. */
	size_t klen = strcspn(name, " \t");
	const char *arg = name + klen + strspn(name + klen, " \t");
	memset(&st->sec, 0, sizeof st->sec);
	st->sec.line = st->lineno;
	int rc;
	if (is_kind(name, klen, "global"))
		rc = open_global(st, arg);
	else if (is_kind(name, klen, "store"))
		rc = open_store(st, arg);
	else if (is_kind(name, klen, "read"))
		rc = open_route(st, arg, CFG_READ);
	else if (is_kind(name, klen, "write"))
		rc = open_route(st, arg, CFG_WRITE);
	else
		return fail(st, st->lineno,
			    "unknown section [%s] (use [global], [store], [store NAME], [read /path] "
			    "or [write /path])",
			    name);
	st->sec.open = rc != 0;
	return rc;
}

static int unknown_key(struct parse *st, const char *name)
{
	enum cfg_section kind = st->sec.kind;
	for (enum cfg_section k = CFG_SEC_GLOBAL; k <= CFG_SEC_WRITE; k++) {
		if (k != kind && cfg_key_index(k, name) >= 0)
			return fail(st, st->lineno, "unknown key \"%s\" in a [%s] section (%s is a [%s] key)",
				    name, kind_names[kind], name, kind_names[k]);
	}
	return fail(st, st->lineno, "unknown key \"%s\" in a [%s] section", name, kind_names[kind]);
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse *st = user;
	(void)section; /* possibly truncated; st->sec has the whole name */
	if (st->in_marker)
		return open_section(st);
	struct section *sec = &st->sec;
	if (!sec->open)
		return fail(st, st->lineno, "key \"%s\" is outside any section", name);
	int i = cfg_key_index(sec->kind, name);
	if (i < 0)
		return unknown_key(st, name);
	if (sec->key_line[i])
		return fail(st, st->lineno, "duplicate key \"%s\" (first set on line %d)", name,
			    sec->key_line[i]);
	sec->key_line[i] = st->lineno;
	struct cfg_target t = { .obj = st->c, .store_name = NULL };
	if (sec->kind == CFG_SEC_STORE) {
		t.obj = &st->c->stores[sec->index];
	} else if (sec->kind != CFG_SEC_GLOBAL) {
		t.obj = &st->c->routes[sec->index];
		t.store_name = &st->store_names[sec->index];
	}
	char msg[CFG_MSG_MAX];
	if (cfg_key_apply(sec->kind, i, &t, value, msg, sizeof msg) < 0)
		return fail(st, st->lineno, "%s", msg);
	return 1;
}

static void finish(struct parse *st)
{
	if (!close_section(st))
		return;
	cfg *c = st->c;
	if (!c->cache_dir && !(c->cache_dir = strdup("/dev/shm/rwsplit"))) {
		fail(st, 0, "out of memory");
		return;
	}
	if (c->metrics && c->metrics[0] != '/' && cfg_parse_listen(c->metrics, NULL) < 0) {
		fail(st, 0, "metrics: \"%s\" is neither IPV4:PORT nor an absolute file path",
		     c->metrics);
		return;
	}
	for (size_t i = 0; i < c->nstores; i++)
		if (!(c->stores[i].creds_cache = strdup(c->cache_dir))) {
			fail(st, 0, "out of memory");
			return;
		}
	char msg[CFG_MSG_MAX];
	int line = 0;
	if (cfg_check_routes(c, st->store_names, msg, sizeof msg, &line) < 0)
		fail(st, line, "%s", msg);
}

static void parse_release(struct parse *st)
{
	if (st->fp)
		fclose(st->fp);
	free(st->line);
	for (size_t i = 0; st->store_names && i < st->c->nroutes; i++)
		free(st->store_names[i]);
	free(st->store_names);
}

int cfg_load(const char *path, cfg **out, char *err, size_t errlen)
{
	struct parse st = { .file = path, .err = err, .errlen = errlen };
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	st.c = calloc(1, sizeof *st.c);
	if (st.c) {
		st.c->agent = true;
		st.c->agent_idle_ms = 60 * 1000;
		st.c->agent_handoff = 0;
	}
	if (!st.c || !(st.c->path = strdup(path))) {
		fail(&st, 0, "out of memory");
		goto on_error;
	}
	st.fp = fopen(path, "re");
	if (!st.fp) {
		fail_errno(&st, errno);
		goto on_error;
	}
	sha256_init(&st.text);
	int rc = ini_parse_stream(read_line, &st, on_key, &st);
	/* inih reports the first failing line, ours (the handler returned 0) or a syntax error
	 * it found earlier. A synthetic line never fails to parse, so a syntax error's line is
	 * odd and never equals err_ini_line when only the reader found a problem. */
	if (rc > 0 && rc != st.err_ini_line) {
		st.failed = false;
		fail(&st, (rc + 1) / 2, "syntax error: expected [section] or key = value");
	} else if (rc < 0) {
		fail(&st, 0, "out of memory");
	}
	if (!st.failed)
		finish(&st);
	if (st.failed)
		goto on_error;
	/* inih stops at the end of the file, so every line went through the digest. */
	unsigned char sum[32];
	sha256_final(&st.text, sum);
	for (int i = 0; i < 32; i++)
		snprintf(st.c->digest + 2 * i, 3, "%02x", sum[i]);
	parse_release(&st);
	*out = st.c;
	return 0;
on_error:
	parse_release(&st);
	cfg_free(st.c);
	return -1;
}
