/* The process side of write routes (up.h): attaching to a tree's agent, starting it when
 * there is none, and the requests. Each request other than ATTACH uses a connection of its
 * own, so no lock is held while the agent works and forked or vfork'ed children share
 * nothing with us. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/spawn.h"
#include "uploader/up.h"
#include "uploader/up_wire.h"

/* How long a starting agent may take to accept connections. */
#define START_WAIT_MS 5000

enum { R_NEW, R_ATTACHING, R_ATTACHED, R_FAILED };

typedef struct up_proute {
	atomic_int state;
	int conn;                /* the ATTACH connection, kept open */
	atomic_int used;         /* attached once in this process: drain at exit */
	int refused;             /* -errno: the tree failed fs_open_dir_safe */
	uint64_t uploaded0, bytes0; /* the agent's totals when we attached */
} up_proute;

static struct {
	const cfg *cfg;
	up_proute *routes;       /* parallel to cfg->routes */
	void (*first_use)(void);
	/* Guards the routes' state changes and the fields set with them; held for no I/O: the
	 * one thread that moves a route to R_ATTACHING attaches without it, and the others wait
	 * on `attached`. */
	pthread_mutex_t lock;
	pthread_cond_t attached;
	char config[PATH_MAX];   /* absolute, for the agent's -c */
} uc = { .lock = PTHREAD_MUTEX_INITIALIZER, .attached = PTHREAD_COND_INITIALIZER };

static void fork_prepare(void)
{
	pthread_mutex_lock(&uc.lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&uc.lock);
}

/* The connections are the parent's; so is an attach in progress on another thread, and so
 * are the files closed so far: the child's exit waits only for what it writes itself (a
 * DataLoader worker forked after the first checkpoint writes nothing and waits for none). */
static void fork_child(void)
{
	for (size_t i = 0; uc.cfg && i < uc.cfg->nroutes; i++) {
		up_proute *p = &uc.routes[i];
		if (p->conn >= 0)
			close(p->conn);
		p->conn = -1;
		atomic_store(&p->used, 0);
		int s = atomic_load(&p->state);
		if (s == R_ATTACHED || s == R_ATTACHING)
			atomic_store(&p->state, R_NEW);
	}
	pthread_cond_init(&uc.attached, NULL);
	pthread_mutex_unlock(&uc.lock);
}

int up_init(const cfg *c, void (*first_use)(void))
{
	static const lc_hooks hooks = { fork_prepare, fork_parent, fork_child };
	lc_register(LC_UPLOAD_ATTACH, &hooks);
	uc.cfg = c;
	uc.first_use = first_use;
	uc.routes = calloc(c->nroutes ? c->nroutes : 1, sizeof *uc.routes);
	if (!uc.routes)
		return -ENOMEM;
	for (size_t i = 0; i < c->nroutes; i++)
		uc.routes[i].conn = -1;
	char cwd[PATH_MAX];
	int n = c->path[0] == '/' ? snprintf(uc.config, sizeof uc.config, "%s", c->path)
		: getcwd(cwd, sizeof cwd) ? snprintf(uc.config, sizeof uc.config, "%s/%s", cwd, c->path)
		: -1;
	if (n < 0 || (size_t)n >= sizeof uc.config)
		uc.config[0] = '\0';
	return 0;
}

static up_proute *proute(const cfg_route *r)
{
	return &uc.routes[r - uc.cfg->routes];
}

const cfg_route *up_route_of_path(const char *abs, const char **rest)
{
	for (size_t i = 0; uc.cfg && i < uc.cfg->nroutes; i++) {
		const cfg_route *r = &uc.cfg->routes[i];
		if (r->mode == CFG_WRITE && strncmp(abs, r->local, r->local_len) == 0 &&
		    (abs[r->local_len] == '/' || abs[r->local_len] == '\0')) {
			*rest = abs + r->local_len + (abs[r->local_len] == '/');
			return r;
		}
	}
	return NULL;
}

static int connect_agent(const cfg_route *r)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un a;
	socklen_t len = up_socket_addr(r, &a);
	if (connect(fd, (struct sockaddr *)&a, len) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (!fs_peer_is_us(fd)) {
		close(fd);
		log_error("write route %s: the agent's socket belongs to another user; refusing it",
			  r->local);
		return -EPERM;
	}
	return fd;
}

/* One request and its reply on fd. Returns 0 (reply filled) or -errno. */
static int exchange(int fd, uint32_t op, uint32_t timeout_ms, const char *rest, up_reply *rep)
{
	char msg[UP_MSG_MAX];
	up_req q = { .op = op, .timeout_ms = timeout_ms };
	size_t n = strlen(rest ? rest : "");
	if (n >= PATH_MAX)
		return -ENAMETOOLONG;
	memcpy(msg, &q, sizeof q);
	memcpy(msg + sizeof q, rest ? rest : "", n + 1);
	ssize_t w;
	while ((w = send(fd, msg, sizeof q + n + 1, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (w < 0)
		return -errno;
	ssize_t got;
	while ((got = recv(fd, rep, sizeof *rep, 0)) < 0 && errno == EINTR)
		;
	if (got != (ssize_t)sizeof *rep)
		return got < 0 ? -errno : -EPIPE;
	rep->why[UP_WHY_MAX - 1] = '\0';
	return 0;
}

/* The rwsplit command: ../bin/rwsplit from the library, or beside it. */
static int find_program(char *out, size_t cap)
{
	char dir[PATH_MAX - 32];
	if (fs_self_dir(dir, sizeof dir) < 0)
		return -1;
	static const char *const where[] = { "%s/../bin/rwsplit", "%s/rwsplit" };
	for (size_t i = 0; i < 2; i++) {
		snprintf(out, cap, where[i], dir);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* Starts `rwsplit agent --tree`, which forks the agent proper and exits once it listens. */
static int start_agent(const cfg_route *r, char *why, size_t whylen)
{
	char program[PATH_MAX];
	if (find_program(program, sizeof program) < 0) {
		snprintf(why, whylen, "no rwsplit command beside the library");
		return -ENOENT;
	}
	if (!uc.config[0]) {
		snprintf(why, whylen, "no absolute path to the config file");
		return -ENAMETOOLONG;
	}
	char *argv[] = { program, "agent", "-c", uc.config, "--digest", (char *)uc.cfg->digest,
			 "--tree", r->local, NULL };
	int status;
	int rc = spawn_and_wait(program, argv, &status);
	if (rc < -1) {
		snprintf(why, whylen, "cannot run %.180s: %s", program, strerror(-rc));
		return rc;
	}
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		snprintf(why, whylen, "`rwsplit agent --tree %s` failed (status %d; "
			 "RWSPLIT_LOG_FILE shows why)", r->local,
			 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		return -ECHILD;
	}
	return 0;
}

/* Connects to r's agent, starting it under the state directory's start lock. */
static int connect_or_start(const cfg_route *r, char *why, size_t whylen)
{
	int fd = connect_agent(r);
	if (fd >= 0 || fd == -EPERM)
		return fd;
	char state[PATH_MAX - 16], lock[PATH_MAX], bad[PATH_MAX + 128];
	int rc = up_state_make(r, state, sizeof state, bad, sizeof bad);
	if (rc < 0) {
		snprintf(why, whylen, "cannot use the spool's state directory: %.200s", bad);
		return rc;
	}
	snprintf(lock, sizeof lock, "%s/start.lock", state);
	int lfd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX) < 0) {
		rc = -errno;
		if (lfd >= 0)
			close(lfd);
		snprintf(why, whylen, "%.180s: %s", lock, strerror(-rc));
		return rc;
	}
	fd = connect_agent(r);
	if (fd < 0 && fd != -EPERM) {
		fd = start_agent(r, why, whylen);
		for (int waited = 0; fd == 0 && waited < START_WAIT_MS; waited += 10) {
			if ((fd = connect_agent(r)) >= 0)
				break;
			fd = 0;
			nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
		}
		if (fd == 0) {
			snprintf(why, whylen, "the agent did not start listening");
			fd = -ETIMEDOUT;
		}
	}
	close(lfd);
	return fd;
}

/* Checks r's tree, then connects to its agent (starting it) and attaches. Runs in the one
 * thread that moved r to R_ATTACHING, without uc.lock. */
static int attach_now(const cfg_route *r, up_proute *p)
{
	char bad[PATH_MAX + 128];
	/* Checked here too, not only by the agent: a refused tree must not be written. */
	int tfd = fs_open_dir_safe(r->local, 0755, 0, bad, sizeof bad);
	if (tfd < 0) {
		log_error("write route %s: refusing it: %s", r->local, bad);
		p->refused = tfd;
		return tfd;
	}
	close(tfd);
	char why[UP_WHY_MAX] = "";
	up_reply rep = { 0 };
	int fd = connect_or_start(r, why, sizeof why);
	int rc = fd < 0 ? fd : exchange(fd, UP_ATTACH, 0, "", &rep);
	if (rc == 0 && rep.rc < 0) {
		rc = rep.rc;
		snprintf(why, sizeof why, "%s", rep.why);
	}
	if (rc == 0) {
		p->conn = fd;
		p->uploaded0 = rep.uploaded;
		p->bytes0 = rep.bytes;
		return 0;
	}
	if (fd >= 0)
		close(fd);
	log_error("write route %s: no agent keeps it in sync with s3://%s/%s (%s%s%s); files "
		  "written there stay local until `rwsplit recover` runs", r->local, r->bucket,
		  r->prefix, strerror(-rc), why[0] ? ": " : "", why);
	return -EIO;
}

int up_attach(const cfg_route *r)
{
	up_proute *p = proute(r);
	int s = atomic_load_explicit(&p->state, memory_order_acquire);
	if (s == R_ATTACHED)
		return 0;
	if (s == R_FAILED)
		return p->refused ? p->refused : -EIO;
	pthread_mutex_lock(&uc.lock);
	while ((s = atomic_load(&p->state)) == R_ATTACHING)
		pthread_cond_wait(&uc.attached, &uc.lock);
	if (s != R_NEW) {
		pthread_mutex_unlock(&uc.lock);
		return s == R_ATTACHED ? 0 : p->refused ? p->refused : -EIO;
	}
	atomic_store(&p->state, R_ATTACHING);
	pthread_mutex_unlock(&uc.lock);
	int rc = attach_now(r, p);
	pthread_mutex_lock(&uc.lock);
	if (rc == 0)
		atomic_store(&p->used, 1);
	atomic_store_explicit(&p->state, rc == 0 ? R_ATTACHED : R_FAILED, memory_order_release);
	pthread_cond_broadcast(&uc.attached);
	pthread_mutex_unlock(&uc.lock);
	if (rc == 0 && uc.first_use)
		uc.first_use();
	return rc;
}

int up_query(const cfg_route *r, uint32_t op, uint32_t timeout_ms, up_reply *rep)
{
	int fd = connect_agent(r);
	if (fd < 0)
		return fd;
	int rc = exchange(fd, op, timeout_ms, "", rep);
	close(fd);
	return rc;
}

/* A request of its own connection. */
static int request(const cfg_route *r, uint32_t op, uint32_t timeout_ms, const char *rest,
		   up_reply *rep)
{
	int rc = up_attach(r);
	if (rc < 0)
		return rc;
	/* The one place a program waits for the store on a write route: tests count these. */
	log_debug("write route %s: waits for its agent to %s %s", r->local,
		  op == UP_FETCH ? "download" : "upload (fsync)", rest);
	int fd = connect_agent(r);
	if (fd < 0)
		return fd;
	rc = exchange(fd, op, timeout_ms, rest, rep);
	close(fd);
	return rc;
}

int up_fetch(const cfg_route *r, const char *rest)
{
	up_reply rep;
	int rc = request(r, UP_FETCH, 0, rest, &rep);
	if (rc == 0 && rep.rc < 0) {
		log_error("write route %s: cannot download %s from s3://%s/%s: %s", r->local, rest,
			  r->bucket, r->prefix, rep.why[0] ? rep.why : strerror(-rep.rc));
		rc = rep.rc;
	}
	return rc;
}

int up_sync(const cfg_route *r, const char *rest)
{
	up_reply rep;
	int rc = request(r, UP_SYNC, 0, rest, &rep);
	if (rc == 0 && rep.rc < 0) {
		log_error("write route %s: fsync of %s: the upload failed: %s", r->local, rest,
			  rep.why[0] ? rep.why : strerror(-rep.rc));
		rc = -EIO;
	}
	return rc < 0 ? -EIO : 0;
}

void up_drain(void)
{
	for (size_t i = 0; uc.cfg && i < uc.cfg->nroutes; i++) {
		const cfg_route *r = &uc.cfg->routes[i];
		up_proute *p = &uc.routes[i];
		if (r->mode != CFG_WRITE || !atomic_load(&p->used))
			continue;
		int fd = connect_agent(r);
		up_reply rep = { 0 };
		int rc = fd < 0 ? fd : exchange(fd, UP_DRAIN, r->drain_timeout_ms, "", &rep);
		if (fd >= 0)
			close(fd);
		if (rc < 0) {
			log_error("write route %s: cannot reach its agent at exit (%s): files not yet "
				  "uploaded stay in the tree for `rwsplit recover`", r->local, strerror(-rc));
			continue;
		}
		if (rep.pending || rep.failed)
			log_warn("write route %s: %llu file%s not yet in s3://%s/%s at exit (%llu failed); "
				 "the agent keeps trying", r->local, (unsigned long long)rep.pending,
				 rep.pending == 1 ? "" : "s", r->bucket, r->prefix,
				 (unsigned long long)rep.failed);
		log_info("write summary: %s: %llu files uploaded (%llu bytes), %llu pending, %llu "
			 "failed", r->local, (unsigned long long)(rep.uploaded - p->uploaded0),
			 (unsigned long long)(rep.bytes - p->bytes0), (unsigned long long)rep.pending,
			 (unsigned long long)rep.failed);
	}
}
