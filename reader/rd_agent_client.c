/* Reaching the fetch agent (rd_agent.h): finding or starting it, one connection per thread,
 * and the two requests. Anything that goes wrong with the agent itself (not with the store)
 * makes the caller fetch in-process; an agent that cannot be started is not tried again by
 * this process. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/sb.h"
#include "common/spawn.h"
#include "reader/rd_agent.h"
#include "reader/rd_priv.h"

extern char **environ;

/* `rwsplit agent --digest` exits with this when the config file is not the text this
 * process loaded (EX_CONFIG). */
#define EXIT_CONFIG_CHANGED 78

/* How long a starting agent may take to accept connections. */
#define START_WAIT_MS 3000

static struct {
	pthread_once_t once;
	pthread_key_t key;       /* per thread: struct conn * */
	int key_made;
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char lock[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	char config[PATH_MAX];   /* absolute, for the agent's -c */
	char program[PATH_MAX];  /* the rwsplit command */
	atomic_int unusable;     /* no agent for this process: fetch in-process */
	atomic_uint requests;    /* answered by the agent, for the handoff */
	atomic_uint generation;  /* bumped in a forked child: older connections are the parent's */
	pthread_mutex_t lock_conns;
	struct conn *conns;      /* every thread's connection, for the fork child */
} ag = { .once = PTHREAD_ONCE_INIT, .lock_conns = PTHREAD_MUTEX_INITIALIZER };

struct conn {
	int fd;
	unsigned generation;
	struct conn *next;
};

static void give_up(const char *why, const char *detail)
{
	if (!atomic_exchange(&ag.unusable, 1))
		log_info("fetch agent: %s%s%s; this process fetches by itself", why,
			 detail ? ": " : "", detail ? detail : "");
}

static int by_text(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* This user's random key, as hex (65 bytes): cache_dir/u<uid>/agent.key, 32 bytes from
 * getrandom, made 0600 by the first process that needs it and published with link(), so
 * that processes racing to make it all read the winner's. Returns 0 or -errno. */
static int user_key(char hex[65])
{
	char path[PATH_MAX], tmp[PATH_MAX + 16];
	unsigned char k[32];
	snprintf(path, sizeof path, "%s/agent.key", rd.user_path);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
		int w = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		int ok = w >= 0 && getrandom(k, sizeof k, 0) == (ssize_t)sizeof k &&
			 write(w, k, sizeof k) == (ssize_t)sizeof k;
		if (w >= 0)
			close(w);
		if (ok && link(tmp, path) < 0 && errno != EEXIST)
			ok = 0;
		if (w >= 0)
			unlink(tmp);
		if (!ok)
			return -EIO;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	struct stat st;
	int good = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
		   !(st.st_mode & 077) && read(fd, k, sizeof k) == (ssize_t)sizeof k;
	close(fd);
	if (!good)
		return -EPERM;
	for (size_t i = 0; i < sizeof k; i++)
		snprintf(hex + 2 * i, 3, "%02x", k[i]);
	return 0;
}

/* The agent serves one configuration with one set of credentials: its socket is named after
 * the config's text as this process loaded it and every credential-related variable of the
 * environment, so a process with other keys never uses an agent holding someone else's, nor
 * one that read an edited config (route numbers in FETCH requests must mean the same). The
 * name is in the agent's command line, which every user can read: the hash is keyed with
 * the user's random key, so it cannot be used to guess a secret offline. */
static int identity(char *out)
{
	size_t nvars = 0;
	for (char **e = environ; e && *e; e++)
		nvars++;
	const char **vars = calloc(nvars ? nvars : 1, sizeof *vars);
	if (!vars)
		return -ENOMEM;
	nvars = 0;
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, "AWS_", 4) == 0 || strncmp(*e, "OSS_", 4) == 0 ||
		    strncmp(*e, "HOME=", 5) == 0)
			vars[nvars++] = *e;
	/* environ's order can differ between processes with the same variables. */
	qsort(vars, nvars, sizeof *vars, by_text);
	char key[65];
	int rc = user_key(key);
	if (rc < 0) {
		free(vars);
		return rc;
	}
	sb s = SB_INIT;
	sb_puts(&s, key);
	sb_putc(&s, '\n');
	for (size_t i = 0; i < nvars; i++) {
		sb_puts(&s, vars[i]);
		sb_putc(&s, '\n');
	}
	free(vars);
	rd_hash(out, 16, rd.cfg->digest, sb_str(&s), ag.config);
	explicit_bzero(key, sizeof key);
	rc = sb_failed(&s) ? -ENOMEM : 0;
	sb_free(&s);
	return rc;
}

static void conn_free(void *p)
{
	struct conn *c = p;
	pthread_mutex_lock(&ag.lock_conns);
	for (struct conn **pp = &ag.conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_mutex_unlock(&ag.lock_conns);
	if (c->fd >= 0 && c->generation == atomic_load(&ag.generation))
		close(c->fd);
	free(c);
}

/* The rwsplit command: ../bin/rwsplit from the library (the build tree, `make install`), or
 * beside it. */
static int find_program(void)
{
	char dir[PATH_MAX - 32];
	if (fs_self_dir(dir, sizeof dir) < 0)
		return -1;
	static const char *const where[] = { "%s/../bin/rwsplit", "%s/rwsplit" };
	for (size_t i = 0; i < 2; i++) {
		struct stat st;
		snprintf(ag.program, sizeof ag.program, where[i], dir);
		if (stat(ag.program, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(ag.program, X_OK) == 0)
			return 0;
	}
	return -1;
}

static void setup(void)
{
	const cfg *c = rd.cfg;
	if (!c->agent) {
		atomic_store(&ag.unusable, 1);
		return;
	}
	char id[17];
	if (rd_user_dir() < 0) {
		give_up("cache_dir refused", c->cache_dir);
		return;
	}
	if (find_program() < 0) {
		give_up("no rwsplit command beside the library", NULL);
		return;
	}
	if (!ag.config[0] || identity(id) < 0) {
		give_up("no absolute path to the config file, no key in cache_dir, or out of memory",
			NULL);
		return;
	}
	int n = snprintf(ag.sock, sizeof ag.sock, "%s/agent-%d-%s.sock", rd.user_path,
			 RD_AGENT_PROTO, id);
	if (n < 0 || (size_t)n >= sizeof ag.sock) {
		give_up("cache_dir is too long for a socket path", c->cache_dir);
		return;
	}
	memcpy(ag.lock, ag.sock, (size_t)n - 5); /* .sock -> .lock */
	memcpy(ag.lock + n - 5, ".lock", 6);
	if (pthread_key_create(&ag.key, conn_free) != 0)
		give_up("no thread-specific key left", NULL);
	else
		ag.key_made = 1;
}

void rd_agent_init(const cfg *c)
{
	/* The agent needs the config by absolute path: the program may change directory
	 * before its first fetch. */
	char cwd[PATH_MAX];
	int n = c->path[0] == '/' ? snprintf(ag.config, sizeof ag.config, "%s", c->path)
		: getcwd(cwd, sizeof cwd) ? snprintf(ag.config, sizeof ag.config, "%s/%s", cwd, c->path)
		: -1;
	if (n < 0 || (size_t)n >= sizeof ag.config)
		ag.config[0] = '\0'; /* then no agent */
}

static int try_connect(void)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, ag.sock, sizeof a.sun_path);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (!fs_peer_is_us(fd)) {
		close(fd);
		log_error("fetch agent: %s is served by another user; refusing it", ag.sock);
		return -EPERM;
	}
	return fd;
}

/* Starts `rwsplit agent`, which forks the agent proper and exits once it listens. */
static int start_agent(void)
{
	char idle[32];
	snprintf(idle, sizeof idle, "%ums", (unsigned)rd.cfg->agent_idle_ms);
	char *argv[] = { ag.program, "agent", "-c", ag.config, "--digest",
			 (char *)rd.cfg->digest, "--socket", ag.sock, "--idle", idle, NULL };
	int status;
	int rc = spawn_and_wait(ag.program, argv, &status);
	if (rc < -1)
		return rc;
	/* The program may reap children itself (rc -1): then the wait below tells. */
	if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == EXIT_CONFIG_CHANGED)
		return -ESTALE;
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		return -ECHILD;
	return 0;
}

static int connect_or_start(void)
{
	int fd = try_connect();
	if (fd >= 0)
		return fd;
	int lock = rd_lock(ag.lock);
	if (lock < 0)
		return lock;
	fd = try_connect();
	if (fd < 0) {
		unlink(ag.sock); /* a dead agent's; nobody else starts one while we hold the lock */
		fd = start_agent();
		for (int waited = 0; fd == 0 && waited < START_WAIT_MS; waited += 10) {
			if ((fd = try_connect()) >= 0)
				break;
			fd = 0;
			nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
		}
		if (fd == 0)
			fd = -ETIMEDOUT;
		if (fd >= 0)
			log_debug("fetch agent started (%s)", ag.sock);
	}
	rd_unlock(lock);
	return fd;
}

/* Forgets this thread's connection: the agent went away mid-request (the next request
 * starts a new one) or the process has handed off. */
static void conn_drop(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
}

/* This thread's connection, made on first use. Returns the fd, or -1 when there is no agent. */
static int conn_fd(struct conn **out)
{
	pthread_once(&ag.once, setup);
	if (atomic_load(&ag.unusable)) {
		struct conn *old = ag.key_made ? pthread_getspecific(ag.key) : NULL;
		if (old && old->fd >= 0 && old->generation == atomic_load(&ag.generation))
			conn_drop(old); /* handed off: the agent need not keep a thread for it */
		return -1;
	}
	struct conn *c = pthread_getspecific(ag.key);
	unsigned gen = atomic_load(&ag.generation);
	if (c && c->fd >= 0 && c->generation == gen) {
		*out = c;
		return c->fd;
	}
	if (!c) {
		if (!(c = calloc(1, sizeof *c)))
			return -1;
		c->fd = -1;
		pthread_setspecific(ag.key, c);
		pthread_mutex_lock(&ag.lock_conns);
		c->next = ag.conns;
		ag.conns = c;
		pthread_mutex_unlock(&ag.lock_conns);
	}
	int fd = connect_or_start();
	if (fd < 0) {
		give_up("cannot start `rwsplit agent`", fd == -ESTALE ?
			"the config file changed since this process read it" : strerror(-fd));
		return -1;
	}
	c->fd = fd;
	c->generation = gen;
	*out = c;
	return fd;
}

static int send_req(int sock, const char *msg, size_t len, int fd)
{
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		memset(&cm, 0, sizeof cm);
		m.msg_control = cm.buf;
		m.msg_controllen = sizeof cm.buf;
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof fd);
	}
	ssize_t n;
	while ((n = sendmsg(sock, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n == (ssize_t)len ? 0 : -1;
}

static ssize_t recv_reply(int sock, void *buf, size_t cap)
{
	ssize_t n;
	while ((n = recv(sock, buf, cap, 0)) < 0 && errno == EINTR)
		;
	return n;
}

/* The agent saves a short-lived process the client's start-up (loading libcurl, new
 * connections) and keeps its prefetches going after it exits. A process told to (a nonzero
 * agent_handoff) fetches by itself after that many requests: measured, that is no faster
 * than the agent (one process, 32 threads, 5000 cold objects: 3.07 s against 2.97 s), and
 * it costs the process the client's libraries and a connection per fetching thread. */
static void handoff_count(void)
{
	unsigned limit = rd.cfg->agent_handoff;
	if (limit && atomic_fetch_add(&ag.requests, 1) + 1 == limit) {
		atomic_store(&ag.unusable, 1);
		log_debug("fetch agent: %u requests from this process; it fetches by itself from "
			  "now on", limit);
	}
}

/* Packs the request into msg (cap bytes) and finds this thread's connection. Returns 0,
 * RD_AGENT_NONE or -errno with why (whylen bytes) filled. */
static int request(const rd_agent_req *req, const char *const strings[4], char *msg,
		   size_t cap, long *len, struct conn **c, char *why, size_t whylen)
{
	*len = rd_agent_req_pack(msg, cap, req, strings);
	if (*len < 0) {
		snprintf(why, whylen, "%s", strerror((int)-*len));
		return (int)*len;
	}
	return conn_fd(c) < 0 ? RD_AGENT_NONE : 0;
}

/* A request answered by one rd_agent_get_reply (GET, FETCH). Returns RD_AGENT_NONE, or the
 * reply's rc with why (whylen bytes) filled when it is a failure. */
static int call(const rd_agent_req *req, const char *const strings[4], int fd,
		rd_agent_get_reply *r, char *why, size_t whylen)
{
	char msg[sizeof *req + 3 * (RD_AGENT_KEY_MAX + 1) + 128];
	long mlen;
	struct conn *c;
	memset(r, 0, sizeof *r);
	int rc = request(req, strings, msg, sizeof msg, &mlen, &c, why, whylen);
	if (rc != 0)
		return rc;
	if (send_req(c->fd, msg, (size_t)mlen, fd) < 0 ||
	    recv_reply(c->fd, r, sizeof *r) != (ssize_t)sizeof *r) {
		conn_drop(c);
		log_debug("fetch agent: connection lost during a request; doing it here");
		return RD_AGENT_NONE;
	}
	handoff_count();
	if (r->rc < 0)
		snprintf(why, whylen, "%.*s", RD_AGENT_WHY_MAX, r->why);
	return r->rc;
}

int rd_agent_get(const cfg_store *st, const char *bucket, const char *key, const char *etag,
		 uint64_t off, uint64_t len, int fd, off_t fd_off, uint64_t *got,
		 s3_object_info *info, char *why, size_t whylen)
{
	rd_agent_req req = { .op = RD_AGENT_GET, .off = off, .len = len, .fd_off = fd_off };
	const char *strings[4] = { st->name, bucket, key, etag ? etag : "" };
	rd_agent_get_reply r;
	int rc = call(&req, strings, fd, &r, why, whylen);
	if (rc != RD_AGENT_NONE) {
		*got = r.got;
		*info = r.info;
	}
	return rc;
}

int rd_agent_fetch(size_t route, const char *key, const char *etag, const struct stat *st,
		   uint64_t *got, int *fetched, uint64_t *evicted, char *why, size_t whylen)
{
	rd_agent_req req = { .op = RD_AGENT_FETCH, .route = (uint32_t)route,
			     .size = (uint64_t)st->st_size, .mtime_sec = st->st_mtim.tv_sec,
			     .mtime_nsec = st->st_mtim.tv_nsec };
	const char *strings[4] = { "", "", key, etag };
	rd_agent_get_reply r;
	int rc = call(&req, strings, -1, &r, why, whylen);
	if (rc != RD_AGENT_NONE) {
		*got = r.got;
		*fetched = r.fetched != 0;
		*evicted = r.evicted;
	}
	return rc;
}

int rd_agent_list(const cfg_store *st, const char *bucket, const char *prefix,
		  const char *delimiter, unsigned max_keys, s3_list_cb cb, void *arg, char *why,
		  size_t whylen)
{
	rd_agent_req req = { .op = RD_AGENT_LIST, .max_keys = max_keys };
	char *msg = malloc(RD_AGENT_MSG_MAX);
	if (!msg)
		return -ENOMEM;
	long mlen;
	struct conn *c;
	const char *strings[4] = { st->name, bucket, prefix, delimiter };
	int rc = request(&req, strings, msg, RD_AGENT_MSG_MAX, &mlen, &c, why, whylen);
	if (rc != 0 || send_req(c->fd, msg, (size_t)mlen, -1) < 0) {
		if (rc == 0) {
			conn_drop(c);
			rc = RD_AGENT_NONE;
		}
		free(msg);
		return rc;
	}
	/* Entries already given to cb cannot be taken back: once the agent has sent some, a
	 * lost connection is RD_AGENT_LOST, and the caller decides whether to list again. */
	int stopped = 0, sent_any = 0;
	for (;;) {
		ssize_t n = recv_reply(c->fd, msg, RD_AGENT_MSG_MAX);
		rd_agent_list_head h;
		if (n < (ssize_t)sizeof h) {
			conn_drop(c);
			rc = sent_any ? RD_AGENT_LOST : RD_AGENT_NONE;
			log_debug("fetch agent: connection lost during a listing");
			break;
		}
		memcpy(&h, msg, sizeof h);
		if (!h.more) {
			handoff_count();
			rc = stopped ? stopped : h.rc;
			if (h.rc < 0 && !stopped)
				snprintf(why, whylen, "%.*s", (int)((size_t)n - sizeof h),
					 msg + sizeof h);
			break;
		}
		if (!stopped) {
			sent_any = 1;
			stopped = rd_agent_entries_each(msg + sizeof h, (size_t)n - sizeof h, h.n,
							cb, arg);
		}
	}
	free(msg);
	return rc;
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&ag.lock_conns);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&ag.lock_conns);
}

static void fork_child(void)
{
	/* The connections are shared with the parent: close the child's copies. Only the
	 * forking thread lives on; its struct is reused, the others' are leaked (small). */
	for (struct conn *c = ag.conns; c; c = c->next)
		if (c->fd >= 0 && c->generation == atomic_load(&ag.generation))
			close(c->fd);
	atomic_fetch_add(&ag.generation, 1);
	pthread_mutex_unlock(&ag.lock_conns);
}

const lc_hooks rd_agent_fork_hooks = { fork_prepare, fork_parent, fork_child };
