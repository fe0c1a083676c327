/* Shared pieces of the rwsplit command: config loading and errno -> exit status. */
#ifndef RWSPLIT_CLI_H
#define RWSPLIT_CLI_H

#include "common/sb.h"
#include "config/cfg.h"
#include "s3/s3.h"

/* sysexits.h values, spelled out so the meaning is visible where they are used. */
enum {
	EXIT_USAGE = 64,
	EXIT_DATAERR = 65,
	EXIT_NOINPUT = 66,
	EXIT_UNAVAILABLE = 69,
	EXIT_SOFTWARE = 70,
	EXIT_OSERR = 71,
	EXIT_TEMPFAIL = 75,
	EXIT_NOPERM = 77,
	EXIT_CONFIG = 78,
};

/* Loads the config named by path, or $RWSPLIT_CONFIG when path is NULL. On failure prints
 * one line to stderr and returns NULL; *status receives the exit status to use. */
cfg *cli_load_config(const char *cmd, const char *path, int *status);

/* Makes s3_dl() (what the reader and uploader call) the client linked into this program
 * instead of loading librwsplit-s3.so. Call before either module is used. */
void cli_use_linked_client(void);

/* n bytes as "123.4 MiB" (powers of 1024) into out (cap bytes); returns out. */
const char *cli_human_bytes(uint64_t n, char *out, size_t cap);

/* Exit status for a negative errno from the s3 client. */
int cli_status_for(int neg_errno);

/* Prints "rwsplit CMD: WHAT: strerror (s3 details)" to stderr. */
void cli_report(const char *cmd, const char *what, int neg_errno, const s3_error *err);

enum cli_stats_format { CLI_STATS_TABLE, CLI_STATS_JSON, CLI_STATS_PROMETHEUS };
/* What `rwsplit stats` prints about c's routes, appended to o (cmd_stats.c; the fetch agent
 * serves the Prometheus form). c's reader must be initialised (rd_init). */
void cli_stats_render(const cfg *c, enum cli_stats_format fmt, sb *o);

/* The fetch agent's metrics ([global] metrics): returns a listening TCP socket for
 * "IPV4:PORT" (or -1: none configured, a textfile, or it cannot bind, logged). */
int cli_metrics_listen(const cfg *c);
/* Answers one HTTP request on sock (GET /metrics) with the Prometheus text, then closes it.
 * sock is passed as (void *)(intptr_t): a pool job. The config is the one given to
 * cli_metrics_listen. */
void cli_metrics_serve(void *sock);
/* For a textfile: rewrites it (tmp + rename) when 10 s have passed since the last time. */
void cli_metrics_tick(const cfg *c);

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_prefill(int argc, char **argv);
int cmd_stats(int argc, char **argv);

#endif
