/* The fetch agent's messages, packed and checked the same way by both sides. */
#include <errno.h>
#include <string.h>

#include "reader/rd_agent.h"

long rd_agent_req_pack(char *buf, size_t cap, const rd_agent_req *req,
		       const char *const strings[4])
{
	if (cap > RD_AGENT_MSG_MAX)
		cap = RD_AGENT_MSG_MAX;
	if (cap < sizeof *req)
		return -ENAMETOOLONG;
	size_t at = sizeof *req;
	memcpy(buf, req, sizeof *req);
	for (int i = 0; i < 4; i++) {
		const char *s = strings[i] ? strings[i] : "";
		size_t len = strlen(s) + 1;
		if (at + len > cap)
			return -ENAMETOOLONG;
		memcpy(buf + at, s, len);
		at += len;
	}
	return (long)at;
}

int rd_agent_req_unpack(char *buf, size_t n, rd_agent_req *req, const char *strings[4])
{
	if (n < sizeof *req)
		return -EPROTO;
	memcpy(req, buf, sizeof *req);
	size_t at = sizeof *req;
	for (int i = 0; i < 4; i++) {
		const char *end = at < n ? memchr(buf + at, '\0', n - at) : NULL;
		if (!end)
			return -EPROTO;
		strings[i] = buf + at;
		at = (size_t)(end - buf) + 1;
	}
	return at == n ? 0 : -EPROTO;
}

size_t rd_agent_entry_pack(char *buf, size_t cap, const s3_list_entry *e)
{
	size_t klen = strlen(e->key), elen = e->etag ? strlen(e->etag) : 0;
	if (elen > UINT8_MAX)
		elen = 0; /* not an ETag the cache could use anyway */
	size_t need = sizeof(rd_agent_packed) + elen + klen;
	if (klen > RD_AGENT_KEY_MAX || need > cap)
		return 0;
	rd_agent_packed p = { .is_prefix = (uint8_t)(e->is_prefix != 0),
			      .etag_len = (uint8_t)elen, .key_len = (uint16_t)klen,
			      .size = e->size, .mtime = (int64_t)e->mtime };
	memcpy(buf, &p, sizeof p);
	if (elen)
		memcpy(buf + sizeof p, e->etag, elen);
	memcpy(buf + sizeof p + elen, e->key, klen);
	return need;
}

int rd_agent_entries_each(const char *buf, size_t len, uint32_t n, s3_list_cb cb, void *arg)
{
	size_t at = 0;
	for (uint32_t i = 0; i < n; i++) {
		rd_agent_packed p;
		if (len - at < sizeof p)
			return -EPROTO;
		memcpy(&p, buf + at, sizeof p);
		at += sizeof p;
		if (len - at < (size_t)p.etag_len + p.key_len || p.key_len > RD_AGENT_KEY_MAX)
			return -EPROTO;
		char etag[UINT8_MAX + 1], key[RD_AGENT_KEY_MAX + 1];
		memcpy(etag, buf + at, p.etag_len);
		etag[p.etag_len] = '\0';
		memcpy(key, buf + at + p.etag_len, p.key_len);
		key[p.key_len] = '\0';
		at += (size_t)p.etag_len + p.key_len;
		s3_list_entry e = { .is_prefix = p.is_prefix, .key = key, .size = p.size,
				    .mtime = (time_t)p.mtime, .etag = etag };
		int rc = cb(arg, &e);
		if (rc)
			return rc;
	}
	return at == len ? 0 : -EPROTO;
}
