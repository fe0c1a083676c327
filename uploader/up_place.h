/* Placeholders: how an object that is only in the store shows in a write route's tree.
 *
 * A placeholder is a regular file with no permission bits whose extended attribute
 * UP_PLACE_XATTR says "v1 SIZE MTIME_SEC MTIME_NSEC MARKER_LEN ETAG", whose modification time
 * is the object's, and whose content (MARKER_LEN bytes) is a readable note naming the object.
 * Through rwsplit it stats as the object and is downloaded on first open. A program that
 * bypasses rwsplit gets EACCES (or, as root, the note): never zeros presented as data. A
 * write to it by such a program changes its size or time, and it is then a file like any
 * other. */
#ifndef RWSPLIT_UP_PLACE_H
#define RWSPLIT_UP_PLACE_H

#include <stddef.h>

#include "uploader/up.h"

#define UP_PLACE_XATTR "user.rwsplit.remote"
#define UP_PLACE_XATTR_MAX 160

/* Parses an attribute value of n bytes. Returns 0 or -1. */
int up_place_parse(const char *val, size_t n, up_remote *r);

/* Formats r as the attribute value into out (UP_PLACE_XATTR_MAX bytes). Returns its
 * length. */
size_t up_place_format(const up_remote *r, char *out);

#endif
