#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static enum log_level log_threshold = LOG_WARN;
static int log_fd = STDERR_FILENO;
static dev_t log_dev;
static ino_t log_ino;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* Keeps a private descriptor of the log destination: programs close stderr before exit
 * (coreutils' close_stdout does), and the exit summary must still get out. */
static void adopt(int fd)
{
	struct stat st;
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	if (copy < 0 || fstat(copy, &st) < 0) {
		if (copy >= 0)
			close(copy);
		return;
	}
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = copy;
	log_dev = st.st_dev;
	log_ino = st.st_ino;
}

void log_init(void)
{
	const char *lvl = getenv("RWSPLIT_LOG");
	log_threshold = LOG_WARN;
	if (lvl) {
		for (int i = LOG_ERROR; i <= LOG_DEBUG; i++)
			if (strcasecmp(lvl, level_names[i]) == 0)
				log_threshold = (enum log_level)i;
	}
	const char *file = getenv("RWSPLIT_LOG_FILE");
	/* O_APPEND keeps lines from several processes whole. */
	int fd = file && *file ? open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
	adopt(fd >= 0 ? fd : STDERR_FILENO);
	if (fd >= 0)
		close(fd);
}

/* The descriptor to write to: ours while it still is what we opened (a program that closed
 * every fd may have reused the number for something else), else plain stderr. */
static int current_fd(void)
{
	struct stat st;
	if (log_fd != STDERR_FILENO && fstat(log_fd, &st) == 0 && st.st_dev == log_dev &&
	    st.st_ino == log_ino)
		return log_fd;
	return STDERR_FILENO;
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

int log_enabled(enum log_level level)
{
	return level <= log_threshold;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	int saved = errno;
	char line[2048];
	int n = snprintf(line, sizeof line, "rwsplit[%d] %s: ", (int)getpid(), level_names[level]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	/* One write() per line so concurrent writers do not interleave inside a line. */
	ssize_t w = write(current_fd(), line, len);
	(void)w;
	errno = saved;
}
