/* The reader's two requests to the store, GET into a file and LIST, sent through the fetch
 * agent when there is one (rd_agent.h), else made by this process's own client. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "reader/rd_agent.h"
#include "reader/rd_priv.h"

s3_client *rd_client(const cfg_store *st, int *err, char *why, size_t whylen)
{
	s3_error e;
	s3_client *c = s3_dl_client(st, err, &e);
	if (!c) {
		snprintf(why, whylen, "%s", e.message[0] ? e.message : strerror(-*err));
		if (*err != -ENOSYS)
			log_error("store %s: %s", st->endpoint, why);
	}
	return c;
}

int rd_store_get(rd_route *rr, const char *key, const char *etag, uint64_t off, uint64_t len,
		 int fd, off_t fd_off, uint64_t *got, s3_object_info *info, char *why, size_t whylen)
{
	const cfg_route *r = rr->cfg;
	s3_object_info unused;
	if (!info)
		info = &unused;
	*got = 0;
	rd_count(rr, RD_C_gets, 1);
	rd_count(rr, RD_C_gets_in_flight, 1);
	rd_count(rr, RD_C_bytes_in_flight, (int64_t)len);
	int rc = rd_agent_get(r->store, r->bucket, key, etag, off, len, fd, fd_off, got, info, why,
			      whylen);
	if (rc == RD_AGENT_NONE) {
		s3_client *c = rd_client(r->store, &rc, why, whylen);
		if (c) {
			s3_error err;
			memset(&err, 0, sizeof err);
			rc = s3_dl()->get_fd(c, r->bucket, key, etag, off, len, fd, fd_off, got,
					     info, &err);
			if (rc < 0)
				s3_dl()->error_str(&err, why, whylen);
			if (err.attempts > 1)
				rd_count(rr, RD_C_retries, err.attempts - 1);
		}
	}
	rd_count(rr, RD_C_bytes_store, (int64_t)*got);
	rd_count(rr, RD_C_gets_in_flight, -1);
	rd_count(rr, RD_C_bytes_in_flight, -(int64_t)len);
	if (rc < 0 && rc != -ECANCELED)
		rd_count(rr, RD_C_get_failures, 1);
	return rc;
}

int rd_store_list(rd_route *rr, const char *prefix, const char *delimiter, s3_list_cb cb,
		  void (*restart)(void *arg), void *arg, char *why, size_t whylen)
{
	const cfg_route *r = rr->cfg;
	rd_count(rr, RD_C_lists, 1);
	int rc = rd_agent_list(r->store, r->bucket, prefix, delimiter, 0, cb, arg, why, whylen);
	if (rc == RD_AGENT_LOST && restart) {
		restart(arg);
		rc = RD_AGENT_NONE;
	} else if (rc == RD_AGENT_LOST) {
		snprintf(why, whylen, "the fetch agent went away during the listing");
		rc = -EIO;
	}
	if (rc == RD_AGENT_NONE) {
		s3_client *c = rd_client(r->store, &rc, why, whylen);
		if (c) {
			s3_error err;
			rc = s3_dl()->list(c, r->bucket, prefix, delimiter, 0, cb, arg, &err);
			if (rc < 0)
				s3_dl()->error_str(&err, why, whylen);
		}
	}
	return rc;
}
