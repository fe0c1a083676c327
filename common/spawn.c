#include "common/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

int spawn_and_wait(const char *program, char *const argv[], int *status)
{
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **env = calloc(n + 1, sizeof *env);
	if (!env)
		return -ENOMEM;
	for (size_t i = 0, k = 0; i < n; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
			env[k++] = environ[i];
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	for (int fd = 0; fd < 3; fd++)
		posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	pid_t pid;
	int rc = posix_spawn(&pid, program, &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	if (rc != 0)
		return -rc;
	pid_t w;
	while ((w = waitpid(pid, status, 0)) < 0 && errno == EINTR)
		;
	return w == pid ? 0 : -1;
}
