/* Logging for every module: one line per event on stderr (or RWSPLIT_LOG_FILE), filtered by
 * RWSPLIT_LOG=error|warn|info|debug (default warn). Secrets must never be passed in. */
#ifndef RWSPLIT_LOG_H
#define RWSPLIT_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Reads RWSPLIT_LOG and RWSPLIT_LOG_FILE. Safe to call more than once; the last call wins.
 * Not thread-safe against concurrent logging: call it before starting threads. */
void log_init(void);

/* Overrides the level (the CLI's -v, tests). */
void log_set_level(enum log_level level);

/* True when messages of this level are printed; lets callers skip building them. */
int log_enabled(enum log_level level);

/* printf-style; adds "rwsplit[pid] level: " and a newline. Preserves errno. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
