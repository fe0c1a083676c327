#include "common/sb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sb_reserve(sb *s, size_t extra)
{
	if (s->failed)
		return -1;
	if (s->len + extra + 1 <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap : 64;
	while (cap < s->len + extra + 1)
		cap *= 2;
	char *p = realloc(s->buf, cap);
	if (!p) {
		s->failed = 1;
		return -1;
	}
	s->buf = p;
	s->cap = cap;
	return 0;
}

void sb_append(sb *s, const char *data, size_t len)
{
	if (sb_reserve(s, len) < 0)
		return;
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	s->buf[s->len] = '\0';
}

void sb_puts(sb *s, const char *str)
{
	sb_append(s, str, strlen(str));
}

void sb_putc(sb *s, char c)
{
	sb_append(s, &c, 1);
}

void sb_printf(sb *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
	va_end(ap);
	if (n < 0 || sb_reserve(s, (size_t)n) < 0) {
		s->failed = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
	va_end(ap);
	s->len += (size_t)n;
}

const char *sb_str(const sb *s)
{
	return s->buf ? s->buf : "";
}

int sb_failed(const sb *s)
{
	return s->failed;
}

char *sb_take(sb *s)
{
	if (s->failed) {
		sb_free(s);
		return NULL;
	}
	char *p = s->buf ? s->buf : strdup("");
	s->buf = NULL;
	s->len = s->cap = 0;
	return p;
}

void sb_reset(sb *s)
{
	s->len = 0;
	s->failed = 0;
	if (s->buf)
		s->buf[0] = '\0';
}

void sb_free(sb *s)
{
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
	s->failed = 0;
}
