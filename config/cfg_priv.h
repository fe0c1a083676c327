/* Internal to config/: what cfg_load.c shares with the files that know the keys, the value
 * syntax and the cross-route rules. Nothing outside config/ includes this. */
#ifndef RWSPLIT_CFG_PRIV_H
#define RWSPLIT_CFG_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "config/cfg.h"

/* Room for one problem text, before "FILE:LINE: " is put in front of it. */
#define CFG_MSG_MAX CFG_ERR_MAX

enum cfg_section { CFG_SEC_GLOBAL, CFG_SEC_STORE, CFG_SEC_READ, CFG_SEC_WRITE };

/* Upper bound on the number of keys of any one section kind. */
#define CFG_KEYS_MAX 16

/* Where a key's value goes: obj is the cfg (global), a cfg_store or a cfg_route; the store
 * key of a route writes a newly allocated name into *store_name, resolved after the whole
 * file is read because a store may be defined after the routes that use it. */
struct cfg_target {
	void *obj;
	char **store_name;
};

/* The key's index in its section kind's table, or -1. */
int cfg_key_index(enum cfg_section kind, const char *name);
const char *cfg_key_name(enum cfg_section kind, int index);
bool cfg_key_required(enum cfg_section kind, int index);

/* Parses value and stores it into t. Returns 0, or -1 with "key: problem" in msg. */
int cfg_key_apply(enum cfg_section kind, int index, const struct cfg_target *t,
		  const char *value, char *msg, size_t msglen);

/* Sets the defaults that do not depend on other keys. */
void cfg_store_init(cfg_store *s);
void cfg_route_init(cfg_route *r, enum cfg_mode mode);

/* Fills in defaults that depend on what the section set (seen: key_line[i] != 0).
 * Returns 0 or -1 on allocation failure. */
int cfg_store_finish(cfg_store *s, const int *key_line);
int cfg_route_finish(cfg_route *r);

/* "[store]" and "[store NAME]" names, and route store = NAME values. */
bool cfg_store_name_ok(const char *name);

/* Validates an endpoint and returns it as "scheme://host[:port]" with scheme and host in
 * lower case and one trailing '/' removed (caller frees). Returns NULL with *why set to a
 * static description, or with *why NULL on allocation failure. */
char *cfg_parse_endpoint(const char *s, const char **why);

/* True when an endpoint cfg_parse_endpoint returned names an IP address or localhost. */
bool cfg_endpoint_is_local(const char *endpoint);

/* Normalizes a route's local path: absolute, "//" collapsed, trailing '/' dropped, never
 * "/" and without "." or ".." components. Returns a new string (caller frees), or NULL with
 * *why set (*why NULL on allocation failure). */
char *cfg_local_path(const char *path, const char **why);

/* Checks route i against routes 0..i-1 for the same local path or a forbidden nesting.
 * Returns 0, or -1 with the problem in msg. */
int cfg_check_local(const cfg *c, size_t i, char *msg, size_t msglen);

/* After the whole file is read: points every route at its store (names[i] NULL means the
 * default store) and rejects write routes that share objects with another route. Returns 0,
 * or -1 with the problem in msg and the offending route's section line in *line. */
int cfg_check_routes(cfg *c, char *const *names, char *msg, size_t msglen, int *line);

#endif
