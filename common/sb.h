/* A growable NUL-terminated byte string. Allocation failure is sticky: once an append fails,
 * sb_failed() is true and the contents are unspecified, so callers check once at the end. */
#ifndef RWSPLIT_SB_H
#define RWSPLIT_SB_H
#include <stddef.h>

typedef struct sb {
	char *buf;   /* owned; NULL until the first append */
	size_t len;
	size_t cap;
	int failed;
} sb;

#define SB_INIT { 0 }

void sb_append(sb *s, const char *data, size_t len);
void sb_puts(sb *s, const char *str);
void sb_putc(sb *s, char c);
void sb_printf(sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the contents ("" when empty); the pointer stays owned by s. */
const char *sb_str(const sb *s);
int sb_failed(const sb *s);
/* Returns the buffer, now owned by the caller (free()), and empties s; NULL if sb_failed. */
char *sb_take(sb *s);
void sb_reset(sb *s);
void sb_free(sb *s);

#endif
