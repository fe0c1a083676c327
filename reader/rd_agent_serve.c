/* The fetch agent's side: the reader's own cache code and store client, run in
 * `rwsplit agent`. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "reader/rd_agent.h"
#include "reader/rd_priv.h"

int rd_agent_serve_init(cfg *c)
{
	/* The agent is where requests end: it fetches with its own client, and it warms
	 * nothing by itself (prefetch is the processes' decision, sent as FETCHes). */
	c->agent = false;
	for (size_t i = 0; i < c->nroutes; i++)
		c->routes[i].prefetch = CFG_PREFETCH_OFF;
	int rc = rd_init(c);
	rd.agent_side = 1;
	return rc;
}

s3_client *rd_agent_serve_client(const char *store, int *rc, char *why, size_t whylen)
{
	const cfg_store *st = cfg_find_store(rd.cfg, store);
	if (!st) {
		*rc = -EINVAL;
		snprintf(why, whylen, "the agent's config has no store \"%s\"", store);
		return NULL;
	}
	return rd_client(st, rc, why, whylen);
}

void rd_agent_serve_fetch(const rd_agent_req *req, const char *key, const char *etag,
			  rd_agent_get_reply *r)
{
	if (req->route >= rd.cfg->nroutes || rd.cfg->routes[req->route].mode != CFG_READ) {
		r->rc = -EINVAL;
		snprintf(r->why, sizeof r->why, "the agent's config has no read route #%u",
			 (unsigned)req->route);
		return;
	}
	rd_route *rr = &rd.routes[req->route];
	r->rc = rd_route_prepare(rr);
	if (r->rc < 0) {
		snprintf(r->why, sizeof r->why, "cannot create the cache directory: %s",
			 strerror(-r->rc));
		return;
	}
	struct stat st;
	memset(&st, 0, sizeof st);
	st.st_size = (off_t)req->size;
	st.st_mtim.tv_sec = (time_t)req->mtime_sec;
	st.st_mtim.tv_nsec = (long)req->mtime_nsec;
	int fetched;
	uint64_t evicted_before = rd_evicted_by_thread;
	r->rc = rd_fetch_for_agent(rr, key, etag, &st, &r->got, &fetched, r->why, sizeof r->why);
	r->fetched = (uint32_t)fetched;
	r->evicted = rd_evicted_by_thread - evicted_before;
	if (fetched) {
		rd_count_node(rr, RD_C_gets, st.st_size > 0);
		rd_count_node(rr, RD_C_bytes_store, (int64_t)r->got);
	}
	if (r->evicted)
		rd_count_node(rr, RD_C_evictions, (int64_t)r->evicted);
}
