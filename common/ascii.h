/* ASCII character classes and case folding that ignore the program's locale.
 *
 * Protocol text (SigV4's canonical request, HTTP header names) must not change when the
 * program we are preloaded into calls setlocale(): under a single-byte locale such as
 * en_US.ISO-8859-1, isalnum(0xE9) is true, so an object key with "é" would be signed
 * unencoded; under tr_TR.UTF-8, tolower('I') is not 'i', so "If-Match" would not fold to
 * "if-match" and strcasecmp("Id", "id") would differ. */
#ifndef RWSPLIT_ASCII_H
#define RWSPLIT_ASCII_H

#include <stddef.h>

/* 'A'-'Z', 'a'-'z', '0'-'9'. */
static inline int ascii_isalnum(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* The value of hex digit c ('0'-'9', 'a'-'f', 'A'-'F'), or -1. */
static inline int ascii_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ' ', '\t', '\n', '\v', '\f', '\r'. */
static inline int ascii_isspace(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* c with 'A'-'Z' folded to 'a'-'z'; every other byte unchanged. */
static inline unsigned char ascii_tolower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* strncasecmp for ASCII letters only: <0, 0 or >0 as the first n bytes of a and b,
 * folded with ascii_tolower, compare. */
static inline int ascii_strncasecmp(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = ascii_tolower((unsigned char)a[i]);
		unsigned char y = ascii_tolower((unsigned char)b[i]);
		if (x != y || !x)
			return (int)x - (int)y;
	}
	return 0;
}

/* strcasecmp for ASCII letters only. */
static inline int ascii_strcasecmp(const char *a, const char *b)
{
	return ascii_strncasecmp(a, b, (size_t)-1);
}

#endif
