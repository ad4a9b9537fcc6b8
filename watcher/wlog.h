/* wlog.h - upgrid-watch's messages.
 *
 * In the foreground they go to standard error, prefixed with the program
 * name, or, when standard error is the systemd journal ($JOURNAL_STREAM
 * names it), with a "<N>" priority prefix that journald understands. With
 * --daemon they go to syslog (facility daemon). Warnings and errors are
 * rate-limited per kind of message (its format string, or its text for
 * messages that come preformatted from the library), so a problem that
 * repeats at every event cannot flood the log; the next message of that
 * kind that gets through says how many were dropped. Thread-safe: publish
 * calls back from its worker threads. */
#ifndef UG_WLOG_H
#define UG_WLOG_H

#include <stdbool.h>

/* syslog priorities, plus TRACE (one line per inotify event) */
#define UG_WLOG_ERR   3
#define UG_WLOG_WARN  4
#define UG_WLOG_INFO  6
#define UG_WLOG_DEBUG 7
#define UG_WLOG_TRACE 8

/* verbosity: 0 errors only (-q), 1 adds warnings and info (default),
 * 2 adds debug (-v), 3 adds trace (-vv). */
void ug_wlog_setup(const char *prog, int verbosity);
/* Also (or only) log to syslog: daemon mode. */
void ug_wlog_syslog(bool on);
/* Stop writing to standard error (a daemon after start-up). */
void ug_wlog_stderr(bool on);
bool ug_wlog_enabled(int level);

void ug_wlog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A preformatted message; rate-limited by its text. */
void ug_wlog_text(int level, const char *text);

#endif
