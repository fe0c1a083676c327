/* The fetch agent's metrics ([global] metrics): the counters `rwsplit stats --prometheus`
 * prints, served over HTTP (GET /metrics on IPV4:PORT) or written to a file that
 * node_exporter's textfile collector reads, while the agent runs. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/log.h"

#define TEXTFILE_EVERY_MS 10000

static const cfg *served;

int cli_metrics_listen(const cfg *c)
{
	struct sockaddr_in a;
	served = c;
	if (!c->metrics || c->metrics[0] == '/' || cfg_parse_listen(c->metrics, &a) < 0)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0) {
		log_warn("agent: metrics = %s: %s; not serving metrics", c->metrics, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	log_debug("agent: metrics on http://%s/metrics", c->metrics);
	return fd;
}

void cli_metrics_serve(void *arg)
{
	int sock = (int)(intptr_t)arg;
	struct timeval t = { .tv_sec = 2 };
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
	char req[2048];
	size_t n = 0;
	ssize_t got;
	/* The request line and headers, up to the blank line (bodies are not expected). */
	while (n < sizeof req - 1 && (got = recv(sock, req + n, sizeof req - 1 - n, 0)) > 0) {
		n += (size_t)got;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[n] = '\0';
	sb body = SB_INIT, out = SB_INIT;
	int ok = strncmp(req, "GET /metrics ", 13) == 0 || strncmp(req, "GET /metrics?", 13) == 0;
	if (ok)
		cli_stats_render(served, CLI_STATS_PROMETHEUS, &body);
	else
		sb_puts(&body, "only GET /metrics is served here\n");
	sb_printf(&out, "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		  "Connection: close\r\n\r\n", ok ? "200 OK" : "404 Not Found",
		  ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain", body.len);
	sb_append(&out, body.buf ? body.buf : "", body.len);
	if (!sb_failed(&out))
		for (size_t off = 0; off < out.len;) {
			ssize_t w = send(sock, out.buf + off, out.len - off, MSG_NOSIGNAL);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	sb_free(&body);
	sb_free(&out);
	close(sock);
}

void cli_metrics_tick(const cfg *c)
{
	static uint64_t last;
	if (!c->metrics || c->metrics[0] != '/' || (last && clock_ms() - last < TEXTFILE_EVERY_MS))
		return;
	last = clock_ms();
	sb body = SB_INIT;
	cli_stats_render(c, CLI_STATS_PROMETHEUS, &body);
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", c->metrics, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	int ok = fd >= 0 && !sb_failed(&body) && write(fd, body.buf ? body.buf : "", body.len) ==
						   (ssize_t)body.len;
	if (fd >= 0 && close(fd) < 0)
		ok = 0;
	if (!ok || rename(tmp, c->metrics) < 0) {
		log_warn("agent: metrics = %s: %s", c->metrics, strerror(errno));
		unlink(tmp);
	}
	sb_free(&body);
}
