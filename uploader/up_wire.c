/* Names shared by the agent and its clients (up_wire.h). */
#include "uploader/up_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/sb.h"
#include "common/sha256.h"

/* Everything that makes two routes different trees with different uploads. */
static void route_id(const cfg_route *r, char hex[65])
{
	sb id = SB_INIT;
	sb_printf(&id, "%s\n%s\n%s\n%s\n%s", r->local, r->store->endpoint, r->bucket, r->prefix,
		  r->spool);
	sha256_hex(sb_str(&id), id.len, hex);
	sb_free(&id);
}

int up_state_dir(const cfg_route *r, char *out, size_t cap)
{
	char hex[65];
	route_id(r, hex);
	int n = snprintf(out, cap, "%s/u%u/%.16s", r->spool, (unsigned)geteuid(), hex);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

socklen_t up_socket_addr(const cfg_route *r, struct sockaddr_un *a)
{
	char hex[65];
	route_id(r, hex);
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	/* sun_path[0] stays NUL: the abstract namespace. */
	int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "rwsplit-tree-%d-u%u-%.24s",
			 UP_PROTO, (unsigned)geteuid(), hex);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int up_state_make(const cfg_route *r, char *out, size_t cap, char *bad, size_t badcap)
{
	int rc = up_state_dir(r, out, cap);
	if (rc < 0)
		return rc;
	/* The spool is shared by the node's users (sticky, like /tmp); below it all is ours. */
	int fd = fs_open_dir_safe(r->spool, 01777, FS_SHARED, bad, badcap);
	if (fd >= 0) {
		close(fd);
		fd = fs_open_dir_safe(out, 0700, FS_PRIVATE, bad, badcap);
	}
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}
