/* rwsplit agent: the fetch agent (reader/rd_agent.h). Preloaded processes start it
 * themselves; it serves their FETCHes, GETs and LISTs with one store client, one thread per
 * connection, and exits after --idle without connections or when its socket file goes. */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/pool.h"
#include "reader/rd_agent.h"
#include "uploader/up_engine.h"
#include "uploader/up_wire.h"

static const char agent_usage[] =
	"usage: rwsplit agent [-c CONFIG] --socket PATH [--idle DURATION] [--digest SHA256]\n"
	"                     [--foreground]\n"
	"       rwsplit agent [-c CONFIG] --tree ROUTE_PATH [--digest SHA256] [--foreground]\n"
	"\n"
	"The fetch agent: downloads objects into the read cache (and serves the LISTs and\n"
	"ranged GETs of read routes) for every preloaded process on this node that uses the\n"
	"same config and credentials, so that short-lived processes neither load the store\n"
	"client nor open connections, and a download goes on when the process that asked\n"
	"for it exits. The library starts it when [global] agent is on (the default); there\n"
	"is no need to run it by hand.\n"
	"\n"
	"With --tree, the agent of one write route instead: it creates the route's directory\n"
	"if needed, watches it (inotify) and keeps s3 in sync with it: closed files are\n"
	"uploaded, renames and deletions mirrored, files kept open uploaded every\n"
	"snapshot_interval, and objects that are only in the store shown as placeholders that\n"
	"preloaded processes download on first open. It listens on an abstract UNIX socket\n"
	"named after the route and exits once idle with nothing left to upload.\n"
	"\n"
	"  -c, --config FILE   config (default $RWSPLIT_CONFIG)\n"
	"      --tree PATH     serve the write route whose local path is PATH\n"
	"      --socket PATH   UNIX socket to listen on (created; replaced if stale)\n"
	"      --idle DURATION exit after this long without connections (default 1m)\n"
	"      --digest SHA256 exit with status 78 unless the config's text has this SHA-256\n"
	"                      (the one the starting process loaded)\n"
	"      --foreground    do not detach (by default it forks and exits once listening)\n";

static struct {
	atomic_int active;       /* open connections */
	atomic_uint_fast64_t last_ms; /* when the last connection ended */
} agent;

static int send_all(int sock, const void *buf, size_t len)
{
	ssize_t n;
	while ((n = send(sock, buf, len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n == (ssize_t)len ? 0 : -1;
}

static int serve_get(int sock, const rd_agent_req *req, const char *const s[4], int fd)
{
	rd_agent_get_reply r;
	memset(&r, 0, sizeof r);
	int rc = -EPROTO;
	s3_client *c = fd < 0 ? NULL : rd_agent_serve_client(s[0], &rc, r.why, sizeof r.why);
	if (c) {
		s3_error err;
		rc = s3_get_fd(c, s[1], s[2], s[3], req->off, req->len, fd, (off_t)req->fd_off, &r.got,
			       &r.info, &err);
		if (rc < 0)
			s3_error_str(&err, r.why, sizeof r.why);
	} else if (fd < 0) {
		snprintf(r.why, sizeof r.why, "a GET without a file");
	}
	r.rc = rc;
	return send_all(sock, &r, sizeof r);
}

typedef struct list_out {
	int sock;
	char *buf;
	size_t len;
	uint32_t n;
	int failed;
} list_out;

static int list_flush(list_out *o)
{
	rd_agent_list_head h = { .more = 1, .n = o->n };
	memcpy(o->buf, &h, sizeof h);
	if (send_all(o->sock, o->buf, o->len) < 0)
		o->failed = 1;
	o->len = sizeof h;
	o->n = 0;
	return o->failed;
}

static int list_entry(void *arg, const s3_list_entry *e)
{
	list_out *o = arg;
	size_t used = rd_agent_entry_pack(o->buf + o->len, RD_AGENT_MSG_MAX - o->len, e);
	if (!used && o->n) {
		if (list_flush(o))
			return 1; /* the caller went away: stop listing */
		used = rd_agent_entry_pack(o->buf + o->len, RD_AGENT_MSG_MAX - o->len, e);
	}
	if (!used) {
		log_warn("agent: key too long to pass on, skipped: %.64s...", e->key);
		return 0;
	}
	o->len += used;
	o->n++;
	return 0;
}

static int serve_fetch(int sock, const rd_agent_req *req, const char *const s[4])
{
	rd_agent_get_reply r;
	memset(&r, 0, sizeof r);
	rd_agent_serve_fetch(req, s[2], s[3], &r);
	return send_all(sock, &r, sizeof r);
}

static int serve_list(int sock, const rd_agent_req *req, const char *const s[4], char *buf)
{
	list_out o = { .sock = sock, .buf = buf, .len = sizeof(rd_agent_list_head) };
	char why[RD_AGENT_WHY_MAX] = "";
	int rc;
	s3_client *c = rd_agent_serve_client(s[0], &rc, why, sizeof why);
	if (c) {
		s3_error err;
		rc = s3_list(c, s[1], s[2], s[3], req->max_keys, list_entry, &o, &err);
		if (rc < 0)
			s3_error_str(&err, why, sizeof why);
		if (!o.failed && o.n)
			list_flush(&o);
	}
	if (o.failed)
		return -1;
	rd_agent_list_head h = { .more = 0, .rc = rc };
	memcpy(buf, &h, sizeof h);
	size_t wlen = strlen(why);
	memcpy(buf + sizeof h, why, wlen);
	return send_all(sock, buf, sizeof h + wlen);
}

/* Receives one request and the fd that may come with it. Returns its length, 0 at the end of
 * the connection, -1 on error. */
static ssize_t recv_req(int sock, char *buf, int *fd)
{
	struct iovec iov = { .iov_base = buf, .iov_len = RD_AGENT_MSG_MAX };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			    .msg_controllen = sizeof cm.buf };
	ssize_t n;
	while ((n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	*fd = -1;
	for (struct cmsghdr *h = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL; h; h = CMSG_NXTHDR(&m, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(h), sizeof *fd);
	return n;
}

static void serve_conn(void *arg)
{
	int sock = (int)(intptr_t)arg;
	char *buf = malloc(RD_AGENT_MSG_MAX), *out = malloc(RD_AGENT_MSG_MAX);
	for (int fd; buf && out;) {
		ssize_t n = recv_req(sock, buf, &fd);
		if (n <= 0)
			break;
		rd_agent_req req;
		const char *s[4];
		int rc = rd_agent_req_unpack(buf, (size_t)n, &req, s);
		if (rc == 0 && req.op == RD_AGENT_GET)
			rc = serve_get(sock, &req, s, fd);
		else if (rc == 0 && req.op == RD_AGENT_LIST)
			rc = serve_list(sock, &req, s, out);
		else if (rc == 0 && req.op == RD_AGENT_FETCH)
			rc = serve_fetch(sock, &req, s);
		else
			rc = -1; /* not our protocol: hang up */
		if (fd >= 0)
			close(fd);
		if (rc < 0)
			break;
	}
	free(buf);
	free(out);
	close(sock);
	atomic_store(&agent.last_ms, clock_ms());
	atomic_fetch_sub(&agent.active, 1);
}

static int still_ours(const char *path, const struct stat *bound)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_ino == bound->st_ino && st.st_dev == bound->st_dev;
}

static int serve(const cfg *c, int ls, const char *path, const struct stat *bound,
		 uint32_t idle_ms)
{
	pool_queue *conns = pool_queue_new("rws-agent-conn", 0);
	pool_queue *scrapes = pool_queue_new("rws-metrics", 2);
	if (!conns || !scrapes)
		return -ENOMEM;
	int ms = cli_metrics_listen(c);
	atomic_store(&agent.last_ms, clock_ms());
	for (;;) {
		struct pollfd p[2] = { { .fd = ls, .events = POLLIN }, { .fd = ms, .events = POLLIN } };
		int np = poll(p, ms >= 0 ? 2 : 1, 1000);
		cli_metrics_tick(c);
		if (np > 0 && ms >= 0 && (p[1].revents & POLLIN)) {
			/* A scrape: does not count as activity, so it does not keep the agent up. */
			int sock = accept4(ms, NULL, NULL, SOCK_CLOEXEC);
			if (sock >= 0 && pool_submit(scrapes, cli_metrics_serve, (void *)(intptr_t)sock))
				close(sock);
		}
		if (np > 0 && (p[0].revents & POLLIN)) {
			int sock = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
			if (sock >= 0 && !fs_peer_is_us(sock)) {
				close(sock);
			} else if (sock >= 0) {
				atomic_fetch_add(&agent.active, 1);
				if (pool_submit(conns, serve_conn, (void *)(intptr_t)sock) != 0) {
					close(sock);
					atomic_fetch_sub(&agent.active, 1);
				}
			}
		}
		if (!still_ours(path, bound)) {
			log_debug("agent: %s is gone; exiting", path);
			return 0;
		}
		if (atomic_load(&agent.active) == 0 &&
		    clock_ms() - atomic_load(&agent.last_ms) >= idle_ms) {
			log_debug("agent: idle; exiting");
			unlink(path);
			return 0;
		}
	}
}

/* Leaves the starting process once listening: it may connect at once. */
static int detach(void)
{
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "rwsplit agent: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid > 0)
		_exit(0);
	setsid();
	if (chdir("/") < 0)
		log_debug("agent: chdir /: %s", strerror(errno));
	return 0;
}

/* The config, provided its text is the one the starting process loaded (digest): route
 * numbers and settings must mean the same on both sides. NULL with *status set otherwise. */
static cfg *load_checked(const char *config, const char *digest, int *status)
{
	cfg *c = cli_load_config("agent", config, status);
	if (c && digest && strcmp(digest, c->digest) != 0) {
		fprintf(stderr, "rwsplit agent: %s changed since the process that started this "
			"agent read it\n", c->path);
		cfg_free(c);
		*status = EXIT_CONFIG;
		return NULL;
	}
	return c;
}

#define AGENT_ARENAS 2

/* The tree agent's nice value (see tree_agent). */
#define TREE_AGENT_NICE 10

/* rwsplit agent --tree: the engine of one write route (uploader/up_engine.h). */
static int tree_agent(const char *config, const char *digest, const char *tree, int foreground)
{
	int status;
	cfg *c = load_checked(config, digest, &status);
	if (!c)
		return status;
	const cfg_route *r = NULL;
	for (size_t i = 0; i < c->nroutes; i++)
		if (c->routes[i].mode == CFG_WRITE && strcmp(c->routes[i].local, tree) == 0)
			r = &c->routes[i];
	if (!r) {
		fprintf(stderr, "rwsplit agent: %s has no write route %s\n", c->path, tree);
		cfg_free(c);
		return EXIT_USAGE;
	}
	cli_use_linked_client();
	/* Its stderr is /dev/null: without RWSPLIT_LOG_FILE it logs beside its journal, at
	 * RWSPLIT_AGENT_LOG's level when that is set (debugging the agent alone). */
	char state[PATH_MAX - 16], logpath[PATH_MAX];
	const char *lf = getenv("RWSPLIT_LOG_FILE"), *level = getenv("RWSPLIT_AGENT_LOG");
	if (level && *level) {
		setenv("RWSPLIT_LOG", level, 1);
		log_init();
	}
	if ((!lf || !*lf) && !foreground && up_state_make(r, state, sizeof state, NULL, 0) == 0) {
		snprintf(logpath, sizeof logpath, "%s/agent.log", state);
		setenv("RWSPLIT_LOG_FILE", logpath, 1);
		log_init();
	}
	struct sockaddr_un a;
	socklen_t alen = up_socket_addr(r, &a);
	int ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, alen) < 0 || listen(ls, 256) < 0) {
		int e = errno;
		fprintf(stderr, "rwsplit agent: write route %s: %s\n", tree,
			e == EADDRINUSE ? "its agent is already running" : strerror(e));
		cfg_free(c);
		return e == EADDRINUSE ? EXIT_TEMPFAIL : EXIT_OSERR;
	}
	log_debug("agent: keeping %s in sync with s3://%s/%s (pid %d)", tree, r->bucket,
		  r->prefix, (int)getpid());
	/* Uploads are background work: where the job and the agent want the same cores (a
	 * save runs while the files saved before it upload), the job goes first. At a drain the
	 * job waits, so the agent then has the cores to itself. */
	if (setpriority(PRIO_PROCESS, 0, TREE_AGENT_NICE) < 0)
		log_debug("agent: setpriority: %s", strerror(errno));
	/* Detached only once the tree is taken over, so the starter learns of a failure. */
	long left = up_engine_run(c, r, ls, 0, foreground ? NULL : detach);
	_exit(left < 0 ? EXIT_TEMPFAIL : 0);
}

int cmd_agent(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 'S' },
		{ "idle", required_argument, NULL, 'i' },
		{ "digest", required_argument, NULL, 'd' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "tree", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *path = NULL, *digest = NULL, *tree = NULL;
	uint32_t idle_ms = 60 * 1000;
	/* A thread per connection would otherwise get a malloc arena each (up to 8 per CPU),
	 * and each kept what its eviction scans and listings had freed: at 128 connections
	 * under eviction the agent held 64 MiB. Its own allocations per request are few. */
	mallopt(M_ARENA_MAX, AGENT_ARENAS);
	int foreground = 0, ch;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'S': path = optarg; break;
		case 'd': digest = optarg; break;
		case 'f': foreground = 1; break;
		case 't': tree = optarg; break;
		case 'i':
			if (cfg_parse_duration(optarg, &idle_ms) < 0) {
				fprintf(stderr, "rwsplit agent: bad --idle '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': fputs(agent_usage, stdout); return 0;
		default: fputs(agent_usage, stderr); return EXIT_USAGE;
		}
	}
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (optind == argc && tree && !path)
		return tree_agent(config, digest, tree, foreground);
	if (optind != argc || !path || strlen(path) >= sizeof a.sun_path) {
		fputs(agent_usage, stderr);
		return EXIT_USAGE;
	}
	int status;
	cfg *c = load_checked(config, digest, &status);
	if (!c)
		return status;
	cli_use_linked_client();
	if (rd_agent_serve_init(c) < 0) {
		fprintf(stderr, "rwsplit agent: out of memory\n");
		cfg_free(c);
		return EXIT_OSERR;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	/* Our callers find us by this path: in a directory another user may write, they could
	 * be made to talk to someone else, or we to replace their socket. */
	char dir[sizeof a.sun_path], bad[PATH_MAX + 128];
	memcpy(dir, path, strlen(path) + 1);
	char *slash = strrchr(dir, '/');
	if (slash)
		slash[slash == dir] = '\0';
	int dfd = fs_open_dir_safe(slash ? dir : ".", 0700, FS_PRIVATE, bad, sizeof bad);
	if (dfd < 0) {
		fprintf(stderr, "rwsplit agent: %s: refusing its directory: %s\n", path, bad);
		cfg_free(c);
		return EXIT_OSERR;
	}
	close(dfd);
	int ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct stat bound;
	mode_t old = umask(077);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 256) < 0 ||
	    stat(path, &bound) < 0) {
		fprintf(stderr, "rwsplit agent: %s: %s\n", path, strerror(errno));
		cfg_free(c);
		return EXIT_OSERR;
	}
	umask(old);
	if (!foreground && detach() < 0) {
		unlink(path);
		return EXIT_OSERR;
	}
	signal(SIGPIPE, SIG_IGN);
	log_debug("agent: serving %s (pid %d)", path, (int)getpid());
	serve(c, ls, path, &bound, idle_ms);
	/* Connections that are still open end with the process. */
	_exit(0);
}
