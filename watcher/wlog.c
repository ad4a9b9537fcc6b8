/* wlog.c - stderr / journal / syslog messages with rate limits. */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include "debounce.h"
#include "wlog.h"
#include "util.h"

/* Five messages of a kind per minute, then one summary. */
#define RL_INTERVAL_NS (60 * UG_NSEC_PER_SEC)
#define RL_BURST 5
#define RL_SLOTS 64

struct rl_slot {
	uint64_t key;
	struct ug_ratelimit rl;
	bool used;
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *log_prog = "upgrid-watch";
static int log_verbosity = 1;
static bool log_to_syslog;
static bool log_to_stderr = true;
static bool log_journal;   /* stderr is journald's stream */
static struct rl_slot slots[RL_SLOTS];

/* journald sets JOURNAL_STREAM=DEV:INO for the stream it gave us as
 * stdout/stderr; a redirected stderr no longer matches it. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	struct stat st;
	char want[64];

	if (!e || !*e || fstat(2, &st) < 0)
		return false;
	snprintf(want, sizeof(want), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
	return strcmp(e, want) == 0;
}

void ug_wlog_setup(const char *prog, int verbosity)
{
	pthread_mutex_lock(&log_lock);
	log_prog = prog;
	log_verbosity = verbosity;
	log_journal = stderr_is_journal();
	pthread_mutex_unlock(&log_lock);
}

void ug_wlog_syslog(bool on)
{
	pthread_mutex_lock(&log_lock);
	if (on && !log_to_syslog)
		openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!on && log_to_syslog)
		closelog();
	log_to_syslog = on;
	pthread_mutex_unlock(&log_lock);
}

void ug_wlog_stderr(bool on)
{
	pthread_mutex_lock(&log_lock);
	log_to_stderr = on;
	pthread_mutex_unlock(&log_lock);
}

static int min_level(void)
{
	switch (log_verbosity) {
	case 0:
		return UG_WLOG_ERR;
	case 1:
		return UG_WLOG_INFO;
	case 2:
		return UG_WLOG_DEBUG;
	default:
		return UG_WLOG_TRACE;
	}
}

bool ug_wlog_enabled(int level)
{
	bool on;

	pthread_mutex_lock(&log_lock);
	on = level <= min_level();
	pthread_mutex_unlock(&log_lock);
	return on;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * UG_NSEC_PER_SEC + ts.tv_nsec;
}

/* Called with log_lock held. False if this message is to be dropped. */
static bool rate_ok(int level, uint64_t key, unsigned *ret_dropped)
{
	struct rl_slot *s;

	*ret_dropped = 0;
	if (level > UG_WLOG_WARN)
		return true;
	s = &slots[key % RL_SLOTS];
	if (!s->used || s->key != key) {
		/* a collision resets the other kind's limit: at worst a few
		 * more lines, never a lost first message */
		s->used = true;
		s->key = key;
		ug_ratelimit_init(&s->rl, RL_INTERVAL_NS, RL_BURST);
	}
	return ug_ratelimit_check(&s->rl, mono_ns(), ret_dropped);
}

static void emit(int level, const char *msg, unsigned dropped)
{
	const char *prefix = level == UG_WLOG_WARN ? "warning: " : "";
	char extra[64] = "";

	if (dropped)
		snprintf(extra, sizeof(extra), " (%u similar messages suppressed)", dropped);
	if (log_to_syslog)
		syslog(level > UG_WLOG_DEBUG ? LOG_DEBUG : level, "%s%s%s", prefix, msg, extra);
	if (!log_to_stderr)
		return;
	if (log_journal)
		fprintf(stderr, "<%d>%s%s%s\n", level > UG_WLOG_DEBUG ? UG_WLOG_DEBUG : level,
			prefix, msg, extra);
	else
		fprintf(stderr, "%s: %s%s%s\n", log_prog, prefix, msg, extra);
	fflush(stderr);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

void ug_wlog(int level, const char *fmt, ...)
{
	char msg[2048];
	unsigned dropped;
	va_list ap;

	pthread_mutex_lock(&log_lock);
	if (level > min_level() || !rate_ok(level, (uint64_t)(uintptr_t)fmt, &dropped)) {
		pthread_mutex_unlock(&log_lock);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(level, msg, dropped);
	pthread_mutex_unlock(&log_lock);
}

void ug_wlog_text(int level, const char *text)
{
	unsigned dropped;

	pthread_mutex_lock(&log_lock);
	if (level <= min_level() && rate_ok(level, fnv1a(text), &dropped))
		emit(level, text, dropped);
	pthread_mutex_unlock(&log_lock);
}
