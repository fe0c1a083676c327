/* Releasing and querying a loaded cfg. cfg_free also takes the half-built cfg that a failed
 * cfg_load leaves: every pointer is either NULL or owned. */
#include "config/cfg.h"

#include <stdlib.h>
#include <string.h>

void cfg_free(cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nstores; i++) {
		cfg_store *s = &c->stores[i];
		free(s->name);
		free(s->endpoint);
		free(s->region);
		free(s->credentials_file);
		free(s->sts_endpoint);
		free(s->creds_cache);
		free(s->profile);
		free(s->ca_bundle);
	}
	for (size_t i = 0; i < c->nroutes; i++) {
		cfg_route *r = &c->routes[i];
		free(r->local);
		free(r->bucket);
		free(r->prefix);
		free(r->spool);
	}
	free(c->stores);
	free(c->routes);
	free(c->path);
	free(c->cache_dir);
	free(c->metrics);
	free(c);
}

const cfg_store *cfg_find_store(const cfg *c, const char *name)
{
	for (size_t i = 0; i < c->nstores; i++) {
		if (strcmp(c->stores[i].name, name) == 0)
			return &c->stores[i];
	}
	return NULL;
}
