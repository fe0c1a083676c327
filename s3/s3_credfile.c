#include "s3/s3_credfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ascii.h"

/* s with the blanks at both ends cut off (in place). */
static char *trim(char *s)
{
	while (ascii_isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && ascii_isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* One line (its end cut off). Returns 0 to go on, fn's value or -ENOMEM; sets *bad for a
 * line that is neither a header nor a key. */
static int scan_line(char *line, char **section, int *in_key, int *bad, s3_credfile_fn fn,
		     void *arg)
{
	int indented = ascii_isspace((unsigned char)line[0]);
	char *s = trim(line);
	if (!*s || *s == '#' || *s == ';')
		return 0;
	if (indented && *in_key)
		return 0; /* a nested setting of the key above */
	if (*s == '[') {
		char *end = strrchr(s, ']');
		if (!end || end[1]) {
			*bad = 1;
			return 0;
		}
		*end = '\0';
		char *name = strdup(trim(s + 1));
		if (!name)
			return -ENOMEM;
		free(*section);
		*section = name;
		*in_key = 0;
		return 0;
	}
	size_t sep = strcspn(s, "=:");
	if (!s[sep] || sep == 0) {
		*bad = 1;
		return 0;
	}
	s[sep] = '\0';
	*in_key = 1;
	return fn(arg, *section ? *section : "", trim(s), trim(s + sep + 1));
}

int s3_credfile_scan(const char *path, s3_credfile_fn fn, void *arg, int *bad_line)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char *line = NULL, *section = NULL;
	size_t cap = 0;
	int rc = 0, lineno = 0, in_key = 0, bad = 0;
	ssize_t n;
	while (rc == 0 && !bad && (n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		rc = scan_line(line, &section, &in_key, &bad, fn, arg);
	}
	if (bad) {
		rc = lineno;
		if (bad_line)
			*bad_line = lineno;
	}
	if (rc == 0 && ferror(f))
		rc = -EIO;
	/* Lines may hold secrets. */
	if (line)
		memset(line, 0, cap);
	free(line);
	free(section);
	fclose(f);
	return rc;
}
