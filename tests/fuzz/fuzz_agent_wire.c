/* libFuzzer target: the fetch agent's wire format (reader/rd_agent_wire.c): a request as
 * the agent receives it, and a LIST reply body as a client receives it. Either side may be
 * a process of the same user that sends garbage. */
#include "reader/rd_agent.h"
#include "tests/fuzz/fuzz_input.h"

static int on_entry(void *arg, const s3_list_entry *e)
{
	size_t *n = arg;
	*n += strlen(e->key) + (e->etag ? strlen(e->etag) : 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > RD_AGENT_MSG_MAX)
		return 0;
	char *buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	size_t n = 0;
	if (data[0] & 1) {
		rd_agent_req req;
		const char *strings[4];
		if (rd_agent_req_unpack(buf, size - 1, &req, strings) == 0)
			for (int i = 0; i < 4; i++)
				n += strlen(strings[i]);
	} else {
		rd_agent_entries_each(buf, size - 1, data[0] >> 1, on_entry, &n);
	}
	free(buf);
	return 0;
}
