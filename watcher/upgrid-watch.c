/* upgrid-watch - watch the master tree and publish a new signed version
 * when it has changed and then been quiet for a while.
 *
 * One thread: poll() on a signalfd and on the inotify descriptor, with
 * the timeout of the next deadline (debounce, move pairing, periodic
 * rescan). Publishing runs in the same thread (ug_publish starts and joins
 * its own workers): signals wait in the signalfd meanwhile, so SIGTERM
 * during a publish takes effect when the version is complete. The version
 * is safe either way (the ref moves last); finishing avoids redoing the
 * work at the next start.
 *
 * The repo is opened for each publish and closed after: the writer lock
 * lives as long as the open store, and others (a manual 'upgrid publish')
 * must be able to take it between two versions. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "cli.h"
#include "debounce.h"
#include "publish.h"
#include "sign.h"
#include "store.h"
#include "watch.h"
#include "wlog.h"
#include "util.h"

#define PROG "upgrid-watch"
#define DEFAULT_CONFIG SYSCONFDIR "/upgrid/upgrid.conf"
#define CONFIG_FILE_MAX (64u << 10)

#define SEC UG_NSEC_PER_SEC
#define QUIET_DEFAULT (2 * SEC)
#define MAX_DELAY_DEFAULT (30 * SEC)
#define RESCAN_DEFAULT (60 * SEC)
#define QUIET_MIN (SEC / 100)
#define QUIET_MAX (3600 * SEC)
#define MAX_DELAY_MIN (SEC / 100)
#define MAX_DELAY_MAX (86400 * SEC)
#define RESCAN_MIN (SEC / 10)
#define RESCAN_MAX (86400 * SEC)
/* A failing publish is retried after the quiet period, then less and
 * less often, at least every RETRY_CAP. */
#define RETRY_CAP (300 * SEC)
/* Events handled between two looks at the clock. */
#define BATCH_EVENTS 4096u

static const char usage_text[] =
	"usage: upgrid-watch [-R REPO] [-k KEY] [-c CHANNEL] [-f CONFIG]\n"
	"                    [--quiet-period SECONDS] [--max-delay SECONDS]\n"
	"                    [--rescan-interval SECONDS] [--once] [--daemon]\n"
	"                    [--test-config] [-q | -v] [TREE]\n"
	"\n"
	"Watch TREE (default: 'tree' in the [watch] section of CONFIG) with inotify\n"
	"and publish it as the next signed version of CHANNEL, as 'upgrid publish'\n"
	"does, once it has been quiet for the quiet period, or at the latest the\n"
	"maximum delay after the first change. Changes made while it was stopped\n"
	"are published when it starts. SIGTERM stops it after the running publish;\n"
	"SIGHUP reloads CONFIG. Command-line options override CONFIG, which\n"
	"overrides the environment. Seconds may have decimals (0.5).\n"
	"\n"
	"  -R, --repo PATH                repo (default: $UPGRID_REPO or " UG_DEFAULT_REPO ")\n"
	"  -k, --key FILE                 secret key (default: $UPGRID_KEY or " UG_DEFAULT_KEY ")\n"
	"  -c, --channel CHANNEL          channel to publish to (default: " UG_DEFAULT_CHANNEL ")\n"
	"  -f, --config FILE              settings file (default: " DEFAULT_CONFIG ")\n"
	"      --quiet-period SECONDS     publish after this long without changes (default: 2)\n"
	"      --max-delay SECONDS        ...or this long after the first change (default: 30)\n"
	"      --rescan-interval SECONDS  rescan directories that cannot be watched this\n"
	"                                 often (default: 60)\n"
	"      --once                     publish if the tree changed, then exit (for cron)\n"
	"      --daemon                   run in the background and log to syslog\n"
	"      --test-config              check the settings, print them and exit\n"
	"  -q, --quiet                    print only errors\n"
	"  -v, --verbose                  print more; twice: every inotify event\n"
	"  -h, --help                     show this help\n"
	"  -V, --version                  show the version\n";

/* ---------------------------------------------------------------- settings */

struct settings {
	char *tree;
	char *repo;
	char *key;
	char *channel;
	char *config;           /* the file read (absolute), or NULL */
	int64_t quiet_ns;
	int64_t max_delay_ns;
	int64_t rescan_ns;
};

struct cmdline {
	const char *repo, *key, *channel, *config, *tree;
	const char *quiet, *max_delay, *rescan;
	bool once, daemon, test_config;
	int verbosity;
	char *owned[4];         /* absolute copies of relative paths above */
};

static void settings_release(struct settings *s)
{
	free(s->tree);
	free(s->repo);
	free(s->key);
	free(s->channel);
	free(s->config);
	memset(s, 0, sizeof(*s));
}

struct seconds_opt {
	const char *name;
	int64_t min, max;
};

static const struct seconds_opt opt_quiet = { "quiet-period", QUIET_MIN, QUIET_MAX };
static const struct seconds_opt opt_max_delay = { "max-delay", MAX_DELAY_MIN, MAX_DELAY_MAX };
static const struct seconds_opt opt_rescan = { "rescan-interval", RESCAN_MIN, RESCAN_MAX };

static int parse_seconds(const struct seconds_opt *o, const char *v, int64_t *ret,
			 struct ug_error *err)
{
	char lo[32], hi[32];
	int r = ug_seconds_parse(v, o->min, o->max, ret);

	if (r < 0) {
		ug_seconds_format(o->min, lo, sizeof(lo));
		ug_seconds_format(o->max, hi, sizeof(hi));
		return ug_error_set(err, -EINVAL,
				    "bad value '%s' for '%s' (%s; seconds from %s to %s, e.g. 2 or 0.5)",
				    v, o->name, r == -ERANGE ? "out of range" : "not a number", lo, hi);
	}
	return 0;
}

/* The settings file goes through inih via ug_ini_read_line (util.h), as
 * REPO/config does, for line numbers and overlong lines. */
/* A line of the settings file (ug_ini_parse_file). */
static int conf_handler(void *ctx, int line, const char *section, const char *name,
			const char *value, struct ug_error *err)
{
	struct settings *s = ctx;
	struct ug_error e = { "" };
	int r = 0;

	(void)line;
	if (!name)              /* a section header: any is fine */
		return 0;
	if (!section[0])
		return ug_error_set(err, -EINVAL,
				    "'%s' is outside a section (upgrid-watch reads [watch])", name);
	/* the file is shared by the upgrid programs: other sections are
	 * theirs */
	if (strcmp(section, "watch") != 0)
		return 0;
	if (strcmp(name, "repo") == 0 || strcmp(name, "key") == 0 || strcmp(name, "tree") == 0) {
		if (!*value)
			return ug_error_set(err, -EINVAL, "empty value for '%s'", name);
		r = ug_str_set(name[0] == 'r' ? &s->repo : name[0] == 'k' ? &s->key : &s->tree, value);
	} else if (strcmp(name, "channel") == 0) {
		if (ug_channel_check(value, &e) < 0)
			return ug_error_set(err, -EINVAL, "bad value '%s' for 'channel': %s", value, e.msg);
		r = ug_str_set(&s->channel, value);
	} else if (strcmp(name, opt_quiet.name) == 0) {
		r = parse_seconds(&opt_quiet, value, &s->quiet_ns, err);
	} else if (strcmp(name, opt_max_delay.name) == 0) {
		r = parse_seconds(&opt_max_delay, value, &s->max_delay_ns, err);
	} else if (strcmp(name, opt_rescan.name) == 0) {
		r = parse_seconds(&opt_rescan, value, &s->rescan_ns, err);
	} else {
		return ug_error_set(err, -EINVAL, "unknown setting '%s' in [watch]", name);
	}
	if (r == -ENOMEM)
		return ug_error_set(err, r, "out of memory");
	return r < 0 ? r : 0;
}

static int conf_load(const char *path, bool must_exist, struct settings *s, struct ug_error *err)
{
	char *abs;
	int r;

	r = ug_ini_parse_file(path, CONFIG_FILE_MAX, conf_handler, s, err);
	if (r == -ENOENT && !must_exist)
		return 0;
	if (r < 0)
		return r == -ENOMEM ? r : -EINVAL;
	abs = realpath(path, NULL);
	if (!abs)
		return ug_error_set(err, -errno, "cannot resolve '%s': %s", path, strerror(errno));
	free(s->config);
	s->config = abs;
	return 0;
}

/* path is dir or below it (both canonical) */
static bool is_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int canonical(char **p, const char *what, const char *hint, struct ug_error *err)
{
	char *abs = realpath(*p, NULL);

	if (!abs) {
		int e = errno;
		return ug_error_set(err, e == ENOENT ? -ENOENT : -e, "%s '%s' %s%s", what, *p,
				    e == ENOENT ? "does not exist" : strerror(e),
				    e == ENOENT ? hint : "");
	}
	free(*p);
	*p = abs;
	return 0;
}

/* Defaults, then $UPGRID_REPO/$UPGRID_KEY, then the settings file, then
 * the command line. */
static int settings_load(const struct cmdline *cl, struct settings *s, struct ug_error *err)
{
	const char *env_repo = getenv("UPGRID_REPO"), *env_key = getenv("UPGRID_KEY");
	char q[32], m[32];
	struct stat st;
	int r;

	memset(s, 0, sizeof(*s));
	s->quiet_ns = QUIET_DEFAULT;
	s->max_delay_ns = MAX_DELAY_DEFAULT;
	s->rescan_ns = RESCAN_DEFAULT;
	if (ug_str_set(&s->repo, env_repo && *env_repo ? env_repo : UG_DEFAULT_REPO) < 0 ||
	    ug_str_set(&s->key, env_key && *env_key ? env_key : UG_DEFAULT_KEY) < 0 ||
	    ug_str_set(&s->channel, UG_DEFAULT_CHANNEL) < 0)
		return ug_error_set(err, -ENOMEM, "out of memory");
	r = conf_load(cl->config ? cl->config : DEFAULT_CONFIG, cl->config != NULL, s, err);
	if (r < 0)
		return r;
	if ((cl->repo && ug_str_set(&s->repo, cl->repo) < 0) ||
	    (cl->key && ug_str_set(&s->key, cl->key) < 0) ||
	    (cl->channel && ug_str_set(&s->channel, cl->channel) < 0) ||
	    (cl->tree && ug_str_set(&s->tree, cl->tree) < 0))
		return ug_error_set(err, -ENOMEM, "out of memory");
	if ((cl->quiet && parse_seconds(&opt_quiet, cl->quiet, &s->quiet_ns, err) < 0) ||
	    (cl->max_delay && parse_seconds(&opt_max_delay, cl->max_delay, &s->max_delay_ns, err) < 0) ||
	    (cl->rescan && parse_seconds(&opt_rescan, cl->rescan, &s->rescan_ns, err) < 0))
		return -EINVAL;
	if (cl->channel && ug_channel_check(cl->channel, NULL) < 0)
		return ug_error_set(err, -EINVAL, "bad channel name '%s'", cl->channel);
	if (!s->tree)
		return ug_error_set(err, -EINVAL, "no tree to watch: give TREE, or 'tree' in the [watch] section of '%s'",
				    s->config ? s->config : DEFAULT_CONFIG);
	if (s->max_delay_ns < s->quiet_ns) {
		ug_seconds_format(s->max_delay_ns, m, sizeof(m));
		ug_seconds_format(s->quiet_ns, q, sizeof(q));
		return ug_error_set(err, -EINVAL, "max-delay (%s s) is shorter than quiet-period (%s s)%s%s%s",
				    m, q, s->config ? " (settings from '" : "",
				    s->config ? s->config : "", s->config ? "' and the command line)" : "");
	}
	r = canonical(&s->tree, "tree", "; give the directory to watch as TREE or as 'tree' in [watch]", err);
	if (r < 0)
		return r;
	if (stat(s->tree, &st) < 0 || !S_ISDIR(st.st_mode))
		return ug_error_set(err, -EINVAL, "tree '%s' is not a directory", s->tree);
	r = canonical(&s->repo, "repo", "; create it with 'upgrid init'", err);
	if (r < 0)
		return r;
	r = canonical(&s->key, "secret key", "; make one with 'upgrid keygen -f FILE'", err);
	if (r < 0)
		return r;
	if (is_within(s->repo, s->tree))
		return ug_error_set(err, -EINVAL, "repo '%s' is inside the tree '%s': the watcher would publish its own writes; move it out",
				    s->repo, s->tree);
	if (is_within(s->key, s->tree))
		return ug_error_set(err, -EINVAL, "secret key '%s' is inside the tree '%s': it would be published to every terminal; move it out",
				    s->key, s->tree);
	return 0;
}

/* The key loads, the repo opens and trusts this key. */
static int setup_check(const struct settings *s, struct ug_seckey *ret_key, struct ug_error *err)
{
	struct ug_store *st = NULL;
	struct ug_pubkey have;
	struct ug_seckey key;
	char *text = NULL;
	size_t len;
	int r;

	r = ug_seckey_load(s->key, &key, err);
	if (r < 0)
		return r == -EACCES ? -EINVAL : r;  /* a key others may read: fix the mode */
	r = ug_store_open(s->repo, &st, err);
	if (r < 0)
		goto fail;
	r = ug_file_read(st->dirfd, "master.pub", 4096, &text, &len);
	if (r == 0) {
		r = ug_pubkey_parse(text, len, &have, NULL);
		free(text);
		if (r < 0) {
			r = ug_error_set(err, -EBADMSG, "'%s/master.pub' is not a valid upgrid public key",
					 s->repo);
			goto fail;
		}
		if (memcmp(have.pk, key.pub.pk, sizeof(have.pk)) != 0) {
			char a[UG_KEYID_HEX_LEN + 1], b[UG_KEYID_HEX_LEN + 1];
			ug_key_id(&have, a);
			ug_key_id(&key.pub, b);
			r = ug_error_set(err, -EKEYREJECTED,
					 "repo '%s' is signed by key %s but '%s' is key %s; use the key whose public half is in '%s/master.pub'",
					 s->repo, a, s->key, b, s->repo);
			goto fail;
		}
	} else if (r != -ENOENT) {
		r = ug_error_set(err, r, "cannot read '%s/master.pub': %s", s->repo, strerror(-r));
		goto fail;
	}
	ug_store_free(st);
	*ret_key = key;
	ug_seckey_wipe(&key);
	return 0;
fail:
	ug_store_free(st);
	ug_seckey_wipe(&key);
	return r;
}


static void print_settings(const struct settings *s, const struct ug_seckey *key)
{
	char q[32], m[32], x[32], id[UG_KEYID_HEX_LEN + 1];

	ug_seconds_format(s->quiet_ns, q, sizeof(q));
	ug_seconds_format(s->max_delay_ns, m, sizeof(m));
	ug_seconds_format(s->rescan_ns, x, sizeof(x));
	ug_key_id(&key->pub, id);
	printf("# settings file: %s\n", s->config ? s->config : "none");
	printf("# key id: %s\n", id);
	printf("[watch]\n");
	printf("tree = %s\n", s->tree);
	printf("repo = %s\n", s->repo);
	printf("key = %s\n", s->key);
	printf("channel = %s\n", s->channel);
	printf("quiet-period = %s\n", q);
	printf("max-delay = %s\n", m);
	printf("rescan-interval = %s\n", x);
}

/* ---------------------------------------------------------------- state */

struct state {
	struct cmdline cl;
	struct settings set;
	struct ug_seckey key;
	struct ug_watch *w;
	struct ug_debounce deb;
	int sfd;
	int ready_fd;           /* --daemon: tells the parent we started */
	bool stop;
	int stop_code;          /* exit status when stop is set */
	bool reload;
	bool degraded;          /* some directories are not watched */
	bool degraded_limit;
	int64_t next_rescan;
};

static int64_t mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static const char *secs(int64_t ns, char out[32])
{
	ug_seconds_format(ns, out, 32);
	return out;
}

/* a measured duration: milliseconds are plenty */
static const char *took(int64_t ns, char out[32])
{
	snprintf(out, 32, "%.3f", (double)ns / (double)SEC);
	return out;
}

static void publish_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	ug_wlog_text(level == UG_LOG_WARN ? UG_WLOG_WARN : UG_WLOG_DEBUG, msg);
}

/* Outcome of one publish attempt. */
enum attempt { PUB_OK, PUB_LOCKED, PUB_CHANGED, PUB_FAILED };

/* The writer lock is taken here, before ug_publish (which then finds it
 * held), so "locked" and "a file changed while it was read"
 * (-UG_ECHANGED) are told apart. */
static enum attempt publish_now(struct state *st, const char *message,
				struct ug_publish_result *res, struct ug_error *err, int *ret_rc)
{
	struct ug_publish_opts o = {
		.tree = st->set.tree,
		.channel = st->set.channel,
		.message = message,
		.key = &st->key,
		.log = publish_log,
	};
	struct ug_store *s = NULL;
	enum attempt a;
	int r;

	r = ug_store_open(st->set.repo, &s, err);
	if (r < 0) {
		*ret_rc = r;
		return PUB_FAILED;
	}
	r = ug_store_lock(s, false);
	if (r < 0) {
		ug_store_free(s);
		*ret_rc = r;
		if (r == -EWOULDBLOCK) {
			ug_error_set(err, r, "repo '%s' is locked by another publish", st->set.repo);
			return PUB_LOCKED;
		}
		ug_error_set(err, r, "cannot lock repo '%s': %s", st->set.repo, strerror(-r));
		return PUB_FAILED;
	}
	memset(res, 0, sizeof(*res));
	r = ug_publish(s, &o, res, err);
	ug_store_free(s);
	/* a publish of a big tree frees hundreds of MiB that glibc would
	 * otherwise keep for the life of the daemon */
	malloc_trim(0);
	*ret_rc = r;
	if (r == 0)
		a = PUB_OK;
	else if (r == -UG_ECHANGED)
		a = PUB_CHANGED;
	else
		a = PUB_FAILED;
	return a;
}

static void log_result(const struct state *st, const struct ug_publish_result *res, int64_t ns)
{
	char t[32];

	if (res->unchanged) {
		ug_wlog(UG_WLOG_DEBUG, "'%s' is identical to %s/%" PRIu64 "; no new version (%s s)",
			st->set.tree, st->set.channel, res->version, took(ns, t));
		return;
	}
	ug_wlog(UG_WLOG_INFO, "published %s/%" PRIu64 ": %zu files, %zu added, %zu removed, "
		"%zu modified, %zu renamed, %zu mode changes (%s s)",
		st->set.channel, res->version, res->nfiles, res->added, res->removed,
		res->modified, res->renamed, res->mode_changed, took(ns, t));
}

static void publish_due(struct state *st, const char *message)
{
	struct ug_publish_result res;
	struct ug_error e = { "" };
	char t[32];
	int64_t t0 = mono(), delay, now;
	enum attempt a;
	int r;

	ug_wlog(UG_WLOG_DEBUG, "publishing '%s' to %s in '%s' (%" PRIu64 " changes)", st->set.tree,
		st->set.channel, st->set.repo, st->deb.changes);
	a = publish_now(st, message, &res, &e, &r);
	now = mono();
	switch (a) {
	case PUB_OK:
		ug_debounce_published(&st->deb, t0);
		log_result(st, &res, now - t0);
		return;
	case PUB_LOCKED:
		ug_debounce_defer(&st->deb, now, st->set.quiet_ns);
		ug_wlog(UG_WLOG_WARN, "repo '%s' is locked by another publish; retrying in %s s",
			st->set.repo, secs(st->set.quiet_ns, t));
		return;
	case PUB_CHANGED:
		/* still being written: its own events will follow, or have */
		ug_debounce_defer(&st->deb, now, st->set.quiet_ns);
		ug_wlog(UG_WLOG_DEBUG, "%s; publishing again in %s s", e.msg, secs(st->set.quiet_ns, t));
		return;
	case PUB_FAILED:
		break;
	}
	delay = ug_debounce_backoff(st->deb.failures + 1, st->set.quiet_ns, RETRY_CAP);
	ug_debounce_retry(&st->deb, now, delay);
	ug_wlog(UG_WLOG_ERR, "publish failed: %s; retrying in %s s", e.msg, secs(delay, t));
}

static void log_limit(const struct state *st, const struct ug_watch_stats *ws)
{
	long max = ug_watch_read_sysctl("/proc/sys/fs/inotify/max_user_watches");
	long ns_max = ug_watch_read_sysctl("/proc/sys/user/max_inotify_watches");
	char t[32];

	/* the limit counts every watch of the user, ours and others': the
	 * one that binds must grow by what is missing */
	if (ns_max >= 0 && (max < 0 || ns_max < max)) {
		ug_wlog(UG_WLOG_WARN, "inotify watch limit reached: %zu of the %zu directories under '%s' are watched; "
			"this tree needs %zu watches, and this user namespace allows %ld: raise its "
			"user.max_inotify_watches to at least %ld (fs.inotify.max_user_watches is %ld); "
			"until then the unwatched directories are rescanned every %s s",
			ws->watched, ws->dirs, st->set.tree, ws->dirs, ns_max, ns_max + (long)ws->unwatched,
			max, secs(st->set.rescan_ns, t));
		return;
	}
	if (max < 0)
		max = 0;
	ug_wlog(UG_WLOG_WARN, "inotify watch limit reached: %zu of the %zu directories under '%s' are watched; "
		"this tree needs %zu watches: raise the sysctl fs.inotify.max_user_watches (now %ld) "
		"to at least %ld ('sysctl -w fs.inotify.max_user_watches=%ld', and a file in /etc/sysctl.d/ "
		"to keep it); until then the unwatched directories are rescanned every %s s",
		ws->watched, ws->dirs, st->set.tree, ws->dirs, max, max + (long)ws->unwatched,
		max + (long)ws->unwatched, secs(st->set.rescan_ns, t));
}

static void check_watch_state(struct state *st, int64_t now)
{
	struct ug_watch_stats ws;
	char t[32];

	ug_watch_get_stats(st->w, &ws);
	if (ws.unwatched) {
		if (!st->degraded || (ws.limit && !st->degraded_limit)) {
			if (ws.limit)
				log_limit(st, &ws);
			else
				ug_wlog(UG_WLOG_WARN, "%zu of the %zu directories under '%s' cannot be watched; "
					"they are rescanned every %s s", ws.unwatched, ws.dirs,
					st->set.tree, secs(st->set.rescan_ns, t));
		}
		if (!st->degraded)
			st->next_rescan = now + st->set.rescan_ns;
		st->degraded = true;
		st->degraded_limit = ws.limit;
	} else if (st->degraded) {
		ug_wlog(UG_WLOG_INFO, "all %zu directories under '%s' are watched again; periodic rescans stop",
			ws.watched, st->set.tree);
		st->degraded = false;
		st->degraded_limit = false;
	}
}

static void log_rescan_reason(const struct state *st)
{
	struct ug_watch_stats ws;

	ug_watch_get_stats(st->w, &ws);
	switch (ws.reason) {
	case UG_WATCH_R_OVERFLOW:
		ug_wlog(UG_WLOG_WARN, "inotify event queue overflowed (fs.inotify.max_queued_events is %ld): "
			"events were lost; rescanning '%s'",
			ug_watch_read_sysctl("/proc/sys/fs/inotify/max_queued_events"), st->set.tree);
		break;
	case UG_WATCH_R_MAP:
		ug_wlog(UG_WLOG_WARN, "lost track of the directories under '%s' (a move or delete was missed); rescanning it",
			st->set.tree);
		break;
	case UG_WATCH_R_UNMOUNT:
		ug_wlog(UG_WLOG_WARN, "a file system under '%s' was unmounted; rescanning it", st->set.tree);
		break;
	case UG_WATCH_R_READ:
		ug_wlog(UG_WLOG_WARN, "rescanning '%s'", st->set.tree);
		break;
	case UG_WATCH_R_COMPACT:
	case UG_WATCH_R_NONE:
		ug_wlog(UG_WLOG_DEBUG, "rebuilding the watches of '%s' to drop libinotifytools' dead entries",
			st->set.tree);
		break;
	}
}

/* Act on ug_watch_* flags. Returns an exit code to stop with, or -1. */
static int apply_flags(struct state *st, int flags, int64_t now)
{
	struct ug_error e = { "" };
	char t[32];

	if (flags & UG_WATCH_GONE) {
		ug_wlog(UG_WLOG_ERR, "tree '%s' was deleted or moved away; stopping", st->set.tree);
		return UG_EXIT_NOTFOUND;
	}
	/* a rebuild or walk may ask for another; a few rounds are plenty */
	for (int round = 0; round < 3 && (flags & (UG_WATCH_RESCAN | UG_WATCH_SYNC)); round++) {
		if (flags & UG_WATCH_RESCAN) {
			int64_t t0 = mono();
			struct ug_watch_stats ws;
			int r;

			log_rescan_reason(st);
			flags &= ~(UG_WATCH_RESCAN | UG_WATCH_SYNC);
			r = ug_watch_rebuild(st->w, &e);
			if (r < 0) {
				ug_wlog(UG_WLOG_ERR, "%s; stopping", e.msg);
				return ug_exit_code(r);
			}
			flags |= r;
			ug_watch_get_stats(st->w, &ws);
			ug_wlog(ws.reason == UG_WATCH_R_COMPACT ? UG_WLOG_DEBUG : UG_WLOG_INFO,
				"rescanned '%s': %zu directories, %zu watched (%s s)",
				st->set.tree, ws.dirs, ws.watched, took(mono() - t0, t));
		} else {
			flags &= ~UG_WATCH_SYNC;
			flags |= ug_watch_sync(st->w);
			if (flags & UG_WATCH_GONE)
				return apply_flags(st, UG_WATCH_GONE, now);
		}
		check_watch_state(st, now);
	}
	if (flags & UG_WATCH_CHANGED)
		ug_debounce_change(&st->deb, now);
	return -1;
}

/* ---------------------------------------------------------------- signals, daemon */

static int signals_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	/* before any thread exists: publish's workers inherit the mask */
	return sigprocmask(SIG_BLOCK, set, NULL) < 0 ? -errno : 0;
}

static void signals_read(struct state *st)
{
	struct signalfd_siginfo si;

	while (read(st->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			st->reload = true;
		} else {
			if (!st->stop)
				ug_wlog(UG_WLOG_INFO, "%s received; stopping",
					si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
			st->stop = true;
		}
	}
}

/* Fork; the parent waits for the child to report that it started (or
 * failed) and exits with that status, so 'upgrid-watch --daemon' in a
 * script fails when the daemon cannot start. */
static int daemonize(int *ret_fd)
{
	int p[2], fd;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid > 0) {
		unsigned char code = UG_EXIT_FAILURE;
		ssize_t n;

		close(p[1]);
		do
			n = read(p[0], &code, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? code : UG_EXIT_FAILURE);
	}
	close(p[0]);
	if (setsid() < 0 || chdir("/") < 0)
		return -errno;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dup2(fd, 0);
	dup2(fd, 1);
	if (fd > 2)
		close(fd);
	*ret_fd = p[1];
	return 0;
}

/* Tell the parent how the start went; after a good start, stderr goes. */
static void daemon_ready(struct state *st, int code)
{
	unsigned char c = (unsigned char)code;
	int fd;

	if (st->ready_fd < 0)
		return;
	if (write(st->ready_fd, &c, 1) < 0) {
		/* the parent is gone: nobody to tell */
	}
	close(st->ready_fd);
	st->ready_fd = -1;
	if (code == 0) {
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		ug_wlog_stderr(false);
	}
}

/* ---------------------------------------------------------------- reload */

static void reload(struct state *st)
{
	struct settings ns;
	struct ug_seckey nk;
	struct ug_error e = { "" };
	char q[32], m[32], x[32];
	bool new_tree, new_target;
	int r;

	r = settings_load(&st->cl, &ns, &e);
	if (r == 0)
		r = setup_check(&ns, &nk, &e);
	if (r < 0) {
		ug_wlog(UG_WLOG_ERR, "cannot reload the settings: %s; keeping the current ones", e.msg);
		settings_release(&ns);
		return;
	}
	new_tree = strcmp(ns.tree, st->set.tree) != 0;
	new_target = new_tree || strcmp(ns.repo, st->set.repo) != 0 ||
		     strcmp(ns.channel, st->set.channel) != 0 ||
		     memcmp(nk.pub.pk, st->key.pub.pk, sizeof(nk.pub.pk)) != 0;
	if (new_tree) {
		struct ug_watch *nw = NULL;

		/* libinotifytools holds one instance per process */
		ug_watch_close(st->w);
		st->w = NULL;
		r = ug_watch_open(ns.tree, &nw, &e);
		if (r < 0) {
			ug_wlog(UG_WLOG_ERR, "cannot watch the new tree: %s; keeping the current settings", e.msg);
			settings_release(&ns);
			ug_seckey_wipe(&nk);
			r = ug_watch_open(st->set.tree, &nw, &e);
			if (r < 0) {
				ug_wlog(UG_WLOG_ERR, "%s; stopping", e.msg);
				st->stop = true;
				st->stop_code = ug_exit_code(r);
				return;
			}
			st->w = nw;
			st->degraded = false;
			check_watch_state(st, mono());
			ug_debounce_change(&st->deb, mono());
			return;
		}
		st->w = nw;
		st->degraded = false;
		st->degraded_limit = false;
	}
	settings_release(&st->set);
	st->set = ns;
	ug_seckey_wipe(&st->key);
	st->key = nk;
	ug_seckey_wipe(&nk);
	ug_debounce_configure(&st->deb, st->set.quiet_ns, st->set.max_delay_ns);
	r = apply_flags(st, new_tree ? 0 : ug_watch_reload_rules(st->w), mono());
	if (r >= 0) {
		st->stop = true;
		st->stop_code = r;
		return;
	}
	check_watch_state(st, mono());
	if (new_target)
		ug_debounce_change(&st->deb, mono());
	ug_wlog(UG_WLOG_INFO, "reloaded the settings%s%s%s: watching '%s', publishing to %s in '%s', "
		"quiet-period %s s, max-delay %s s, rescan-interval %s s",
		st->set.config ? " from '" : "", st->set.config ? st->set.config : "",
		st->set.config ? "'" : "",
		st->set.tree, st->set.channel, st->set.repo, secs(st->set.quiet_ns, q),
		secs(st->set.max_delay_ns, m), secs(st->set.rescan_ns, x));
}

/* ---------------------------------------------------------------- main loop */

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int run(struct state *st)
{
	for (;;) {
		struct pollfd pfd[2];
		int64_t now = mono(), deadline;
		int timeout, n, rc;

		if (st->stop)
			break;
		deadline = min64(ug_debounce_deadline(&st->deb), ug_watch_deadline(st->w));
		if (st->degraded)
			deadline = min64(deadline, st->next_rescan);
		timeout = ug_watch_buffered(st->w) ? 0 : ug_timeout_ms(deadline, now);
		pfd[0].fd = st->sfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = ug_watch_fd(st->w);
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		n = poll(pfd, 2, timeout);
		if (n < 0 && errno != EINTR) {
			ug_wlog(UG_WLOG_ERR, "poll: %s", strerror(errno));
			return UG_EXIT_FAILURE;
		}
		if (n > 0 && pfd[0].revents)
			signals_read(st);
		if (st->stop)
			break;
		if (st->reload) {
			st->reload = false;
			reload(st);
			continue;
		}
		now = mono();
		if (ug_watch_buffered(st->w) || (n > 0 && pfd[1].revents)) {
			rc = apply_flags(st, ug_watch_read(st->w, now, BATCH_EVENTS), now);
			if (rc >= 0)
				return rc;
		}
		rc = apply_flags(st, ug_watch_tick(st->w, now), now);
		if (rc >= 0)
			return rc;
		if (st->degraded && now >= st->next_rescan) {
			struct ug_watch_stats ws;

			ug_watch_get_stats(st->w, &ws);
			ug_wlog(UG_WLOG_DEBUG, "periodic rescan of '%s' (%zu directories not watched)",
				st->set.tree, ws.unwatched);
			st->next_rescan = now + st->set.rescan_ns;
			rc = apply_flags(st, UG_WATCH_SYNC | UG_WATCH_CHANGED, now);
			if (rc >= 0)
				return rc;
		}
		if (ug_debounce_due(&st->deb, mono()))
			publish_due(st, "upgrid-watch");
	}
	if (st->deb.pending && st->stop_code == UG_EXIT_OK)
		ug_wlog(UG_WLOG_INFO, "changes not published yet will be published at the next start");
	return st->stop_code;
}

static int watch_main(struct state *st)
{
	struct ug_error e = { "" };
	struct ug_watch_stats ws;
	sigset_t set;
	char q[32], m[32];
	int r;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	st->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (st->sfd < 0) {
		ug_wlog(UG_WLOG_ERR, "signalfd: %s", strerror(errno));
		return UG_EXIT_FAILURE;
	}
	r = ug_watch_open(st->set.tree, &st->w, &e);
	if (r < 0) {
		ug_wlog(UG_WLOG_ERR, "%s", e.msg);
		return ug_exit_code(r);
	}
	ug_debounce_init(&st->deb, st->set.quiet_ns, st->set.max_delay_ns);
	ug_watch_get_stats(st->w, &ws);
	ug_wlog(UG_WLOG_INFO, "watching '%s' (%zu directories); publishing to %s in '%s' after %s s of quiet, at most %s s after a change",
		st->set.tree, ws.dirs, st->set.channel, st->set.repo,
		secs(st->set.quiet_ns, q), secs(st->set.max_delay_ns, m));
	check_watch_state(st, mono());
	daemon_ready(st, UG_EXIT_OK);
	/* what changed while we were not running */
	publish_due(st, "upgrid-watch (start-up)");
	r = run(st);
	ug_watch_close(st->w);
	st->w = NULL;
	close(st->sfd);
	return r;
}

/* A tree being written while --once runs: tries after a quiet period,
 * then gives up. */
#define ONCE_TRIES 5

static int once_main(struct state *st)
{
	struct ug_publish_result res;
	struct ug_error e = { "" };
	int64_t t0;
	char t[32];
	enum attempt a;
	sigset_t stop;
	int r;

	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	for (unsigned i = 1;; i++) {
		struct timespec ts = {
			.tv_sec = (time_t)(st->set.quiet_ns / SEC),
			.tv_nsec = (long)(st->set.quiet_ns % SEC),
		};

		t0 = mono();
		a = publish_now(st, "upgrid-watch --once", &res, &e, &r);
		if (a != PUB_CHANGED || i == ONCE_TRIES)
			break;
		ug_wlog(UG_WLOG_DEBUG, "%s; trying again in %s s", e.msg, secs(st->set.quiet_ns, t));
		/* SIGTERM and SIGINT are blocked: wait for them, or the time */
		if (sigtimedwait(&stop, NULL, &ts) > 0) {
			ug_wlog(UG_WLOG_ERR, "stopped by a signal before '%s' could be published", st->set.tree);
			return UG_EXIT_FAILURE;
		}
	}
	switch (a) {
	case PUB_OK:
		log_result(st, &res, mono() - t0);
		return UG_EXIT_OK;
	case PUB_LOCKED:
		ug_wlog(UG_WLOG_ERR, "%s; try again later", e.msg);
		return UG_EXIT_LOCKED;
	case PUB_CHANGED:
		ug_wlog(UG_WLOG_ERR, "publish failed: %s (the tree kept changing, %u tries)", e.msg, ONCE_TRIES);
		return UG_EXIT_FAILURE;
	case PUB_FAILED:
		break;
	}
	ug_wlog(UG_WLOG_ERR, "publish failed: %s", e.msg);
	return ug_exit_code(r);
}

/* Relative paths resolved against the starting directory, once: the
 * daemon moves to '/', and SIGHUP reloads must find the same files.
 * *p is replaced by an absolute copy kept in *owned (freed by the
 * caller); left as it is if absolute or if the directory is unknown. */
static void absolutize(const char **p, char **owned)
{
	char cwd[PATH_MAX];
	size_t a, b;
	char *s;

	if (!*p || !**p || **p == '/' || !getcwd(cwd, sizeof(cwd)))
		return;
	a = strlen(cwd);
	b = strlen(*p);
	s = malloc(a + b + 2);
	if (!s)
		return;
	memcpy(s, cwd, a);
	s[a] = '/';
	memcpy(s + a + 1, *p, b + 1);
	*p = s;
	*owned = s;
}

static void absolutize_env(const char *name)
{
	const char *v = getenv(name);
	char *abs = NULL;

	absolutize(&v, &abs);
	if (abs)
		setenv(name, abs, 1);
	free(abs);
}

/* msg NULL: getopt already said what is wrong */
static int usage_error(const char *msg)
{
	if (msg)
		fprintf(stderr, PROG ": %s\n", msg);
	fprintf(stderr, "Try '" PROG " --help'.\n");
	return UG_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	enum { OPT_QUIET_PERIOD = 256, OPT_MAX_DELAY, OPT_RESCAN, OPT_ONCE, OPT_DAEMON, OPT_TEST };
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'R' },
		{ "key", required_argument, NULL, 'k' },
		{ "channel", required_argument, NULL, 'c' },
		{ "config", required_argument, NULL, 'f' },
		{ "quiet-period", required_argument, NULL, OPT_QUIET_PERIOD },
		{ "max-delay", required_argument, NULL, OPT_MAX_DELAY },
		{ "rescan-interval", required_argument, NULL, OPT_RESCAN },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "daemon", no_argument, NULL, OPT_DAEMON },
		{ "test-config", no_argument, NULL, OPT_TEST },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct state st = { .sfd = -1, .ready_fd = -1 };
	struct ug_error e = { "" };
	sigset_t set;
	int c, r;

	st.cl.verbosity = 1;
	while ((c = getopt_long(argc, argv, "R:k:c:f:qvhV", opts, NULL)) != -1) {
		switch (c) {
		case 'R':
			st.cl.repo = optarg;
			break;
		case 'k':
			st.cl.key = optarg;
			break;
		case 'c':
			st.cl.channel = optarg;
			break;
		case 'f':
			st.cl.config = optarg;
			break;
		case OPT_QUIET_PERIOD:
			st.cl.quiet = optarg;
			break;
		case OPT_MAX_DELAY:
			st.cl.max_delay = optarg;
			break;
		case OPT_RESCAN:
			st.cl.rescan = optarg;
			break;
		case OPT_ONCE:
			st.cl.once = true;
			break;
		case OPT_DAEMON:
			st.cl.daemon = true;
			break;
		case OPT_TEST:
			st.cl.test_config = true;
			break;
		case 'q':
			st.cl.verbosity = 0;
			break;
		case 'v':
			st.cl.verbosity = st.cl.verbosity < 2 ? 2 : 3;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return UG_EXIT_OK;
		case 'V':
			printf(PROG " %s\n", PACKAGE_VERSION);
			return UG_EXIT_OK;
		default:
			return usage_error(NULL);
		}
	}
	if (argc - optind > 1) {
		char msg[512];
		snprintf(msg, sizeof(msg), "unexpected argument '%s': one TREE only", argv[optind + 1]);
		return usage_error(msg);
	}
	if (optind < argc)
		st.cl.tree = argv[optind];
	if (st.cl.once && st.cl.daemon)
		return usage_error("--once and --daemon exclude each other");
	ug_wlog_setup(PROG, st.cl.verbosity);
	absolutize(&st.cl.repo, &st.cl.owned[0]);
	absolutize(&st.cl.key, &st.cl.owned[1]);
	absolutize(&st.cl.config, &st.cl.owned[2]);
	absolutize(&st.cl.tree, &st.cl.owned[3]);
	absolutize_env("UPGRID_REPO");
	absolutize_env("UPGRID_KEY");

	r = signals_block(&set);
	if (r < 0) {
		ug_wlog(UG_WLOG_ERR, "cannot block signals: %s", strerror(-r));
		r = UG_EXIT_FAILURE;
		goto out;
	}
	r = settings_load(&st.cl, &st.set, &e);
	if (r == 0)
		r = setup_check(&st.set, &st.key, &e);
	if (r < 0) {
		ug_wlog(UG_WLOG_ERR, "%s", e.msg);
		r = ug_exit_code(r);
		goto out;
	}
	if (st.cl.test_config) {
		if (st.cl.verbosity > 0)
			print_settings(&st.set, &st.key);
		r = UG_EXIT_OK;
	} else if (st.cl.once) {
		r = once_main(&st);
	} else {
		if (st.cl.daemon) {
			ug_wlog_syslog(true);
			r = daemonize(&st.ready_fd);
			if (r < 0) {
				ug_wlog(UG_WLOG_ERR, "cannot start the daemon: %s", strerror(-r));
				r = UG_EXIT_FAILURE;
				goto out;
			}
		}
		r = watch_main(&st);
		daemon_ready(&st, r);
	}
out:
	ug_seckey_wipe(&st.key);
	settings_release(&st.set);
	for (size_t i = 0; i < sizeof(st.cl.owned) / sizeof(st.cl.owned[0]); i++)
		free(st.cl.owned[i]);
	ug_wlog_syslog(false);
	return r;
}
