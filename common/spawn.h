/* Starting rwsplit's own helper programs (the agents) from inside a preloaded process. */
#ifndef RWSPLIT_SPAWN_H
#define RWSPLIT_SPAWN_H

/* Runs program with argv and this environment less LD_PRELOAD (the agents link the store
 * client themselves), with stdin, stdout and stderr on /dev/null and no other fd of ours:
 * the program's stdout, or a pipe someone waits to see closed, must not stay open for an
 * agent's lifetime. Waits for it (the agents fork and exit once listening). Returns 0 with
 * *status its wait status, or -1 when the status is unknown (the program reaps children
 * itself), or -errno when it could not be started. */
int spawn_and_wait(const char *program, char *const argv[], int *status);

#endif
