/* The AWS shared credentials file (~/.aws/credentials, also ~/.aws/config and OSS's copies of
 * it): a small INI subset, read here without a line-length limit (an STS session token is
 * about 900 characters; the system's libinih stops at 200). */
#ifndef RWSPLIT_S3_CREDFILE_H
#define RWSPLIT_S3_CREDFILE_H

/* Called for each "name = value" (or "name: value"); section is "" before the first
 * "[section]" header. The strings are valid during the call only. Return 0 to go on, or a
 * negative errno to stop the scan (s3_credfile_scan then returns it). */
typedef int (*s3_credfile_fn)(void *arg, const char *section, const char *name,
			      const char *value);

/* Scans path as botocore reads it: blank lines and lines starting with '#' or ';' are
 * skipped; names and values are trimmed of blanks; there are no inline comments (a '#'
 * in a value is part of it); an indented line after a key continues that key (nested
 * settings of ~/.aws/config) and is not reported. Returns 0, fn's negative value, -errno if
 * path cannot be read, or a positive line number for a line that is neither a header nor a
 * key (then *bad_line is set too, if not NULL). No memory outlives the call. */
int s3_credfile_scan(const char *path, s3_credfile_fn fn, void *arg, int *bad_line);

#endif
