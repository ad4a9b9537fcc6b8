/* terminal.c - find, fetch, stage, switch and check a version (terminal.h). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "client.h"
#include "delta.h"
#include "hash.h"
#include "hook.h"
#include "manifest.h"
#include "merge.h"
#include "mfetch.h"
#include "rendezvous.h"
#include "rollout.h"
#include "sign.h"
#include "store.h"
#include "terminal.h"
#include "tlocal.h"

const char *const ug_term_crash_points[] = {
	"manifest",   /* the target's manifest is fetched and checked */
	"fetched",    /* a download was committed to the cache */
	"staged",     /* the new tree is complete in staging/ */
	"finished",   /* config merged, data migrated, all synced */
	"journal",    /* the journal names the switch to come */
	"renamed",    /* staging/N became versions/N */
	"switched",   /* the root link points to the new version */
	"restarted",  /* the restart hook ran */
	"checked",    /* the health check passed, not yet recorded */
	NULL
};

void ug_term_crash_point(const char *name)
{
	const char *want = getenv("UPGRID_TEST_CRASH");

	if (want && strcmp(want, name) == 0) {
		/* a test hook: what kill -9 at this point does */
		fprintf(stderr, "upgrid: test hook: crashing at '%s'\n", name);
		raise(SIGKILL);
	}
}

int64_t ug_term_now(void)
{
	const char *s = getenv("UPGRID_TEST_NOW");
	uint64_t v;

	if (s && ug_parse_u64(s, INT64_MAX, &v) == 0)
		return (int64_t)v;
	return ug_now();
}

void ug_term_log(struct ug_term *t, int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (level == LOG_DEBUG && t->verbosity < 2)
		return;
	if (level == LOG_INFO && t->verbosity < 1)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (t->use_syslog)
		syslog(level, "%s", line);
	else
		fprintf(stderr, "upgrid: %s%s\n", level <= LOG_ERR ? "error: " :
			level == LOG_WARNING ? "warning: " : "", line);
}

/* ------------------------------------------------------------ the root link */

static void version_dir(uint64_t v, char *out, size_t n)
{
	snprintf(out, n, "versions/%" PRIu64, v);
}

/* Where the root link points: 0 when there is none; -EINVAL (err says why)
 * for a root that is not ours. */
static int read_installed(struct ug_term *t, uint64_t *ret, struct ug_error *err)
{
	char buf[UG_PATH_MAX + 1], prefix[UG_PATH_MAX];
	struct stat st;
	ssize_t n;
	size_t plen;
	uint64_t v;

	*ret = 0;
	n = readlinkat(t->rootdirfd, t->root_name, buf, sizeof(buf) - 1);
	if (n < 0 && errno == ENOENT)
		return 0;
	if (n < 0 && errno == EINVAL)
		return ug_error_set(err, -EINVAL, "install root '%s' exists and is not a symbolic "
				    "link: upgrid switches versions by replacing a link there; move "
				    "it away (its content is not used)", t->c->root);
	if (n < 0)
		return ug_error_set(err, -errno, "cannot read install root '%s': %s", t->c->root,
				    strerror(errno));
	buf[n] = '\0';
	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s/versions/", t->c->state);
	if (strncmp(buf, prefix, plen) != 0 || ug_parse_u64(buf + plen, UG_TCONF_VERSION_MAX, &v) < 0
	    || v == 0 || fstatat(t->statefd, buf + plen - strlen("versions/"), &st,
				 AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return ug_error_set(err, -EINVAL, "install root '%s' points to '%s', not to a "
				    "version upgrid installed under '%s': remove the link to let "
				    "upgrid install", t->c->root, buf, prefix);
	*ret = v;
	return 0;
}

/* Point the root link at version v (0: remove it), atomically. */
static int switch_root(struct ug_term *t, uint64_t v, struct ug_error *err)
{
	char target[UG_PATH_MAX], tmp[UG_NAME_MAX + 32];
	int r;

	snprintf(tmp, sizeof(tmp), ".%s.upgrid-new", t->root_name);
	if (v == 0) {
		if (unlinkat(t->rootdirfd, t->root_name, 0) < 0 && errno != ENOENT)
			return ug_error_set(err, -errno, "cannot remove install root '%s': %s",
					    t->c->root, strerror(errno));
	} else {
		snprintf(target, sizeof(target), "%s/versions/%" PRIu64, t->c->state, v);
		unlinkat(t->rootdirfd, tmp, 0);
		if (symlinkat(target, t->rootdirfd, tmp) < 0 ||
		    renameat(t->rootdirfd, tmp, t->rootdirfd, t->root_name) < 0) {
			r = -errno;
			unlinkat(t->rootdirfd, tmp, 0);
			return ug_error_set(err, r, "cannot switch install root '%s' to version %"
					    PRIu64 ": %s", t->c->root, v, strerror(-r));
		}
	}
	ug_fsync_dir(t->rootdirfd);
	t->installed = v;
	return 0;
}

/* ------------------------------------------------------------ the journal */

#define JOURNAL "journal"

static int journal_write(struct ug_term *t, uint64_t from, uint64_t to, bool fresh)
{
	char line[96];
	int n = snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 " %s\n", from, to,
			 fresh ? "new" : "old");
	return ug_file_write_atomic(t->statefd, JOURNAL, line, (size_t)n, 0644);
}

static int journal_read(struct ug_term *t, uint64_t *from, uint64_t *to, bool *fresh)
{
	char *data, kind[8];
	size_t len;
	int r;

	r = ug_file_read(t->statefd, JOURNAL, 256, &data, &len);
	if (r < 0)
		return r;
	r = sscanf(data, "%" SCNu64 " %" SCNu64 " %7s", from, to, kind) == 3 ? 0 : -EBADMSG;
	*fresh = strcmp(kind, "new") == 0;
	free(data);
	return r;
}

static void journal_remove(struct ug_term *t)
{
	unlinkat(t->statefd, JOURNAL, 0);
	ug_fsync_dir(t->statefd);
}

/* ------------------------------------------------------------ hooks */

/* Run one hook (absent: success). */
static int run_hook(struct ug_term *t, enum ug_tconf_hook_id id, uint64_t from, uint64_t to,
		    struct ug_error *err)
{
	const struct ug_tconf_hook *h = &t->c->hooks[id];
	char e_ver[48], e_prev[48], e_root[UG_PATH_MAX + 16], e_phase[48];
	char *env[] = { e_ver, e_prev, e_root, e_phase, NULL };
	struct ug_hook_result res;
	int r;

	if (!h->argv)
		return 0;
	snprintf(e_ver, sizeof(e_ver), "UPGRID_VERSION=%" PRIu64, to);
	snprintf(e_prev, sizeof(e_prev), "UPGRID_PREVIOUS=%" PRIu64, from);
	snprintf(e_root, sizeof(e_root), "UPGRID_ROOT=%s", t->c->root);
	snprintf(e_phase, sizeof(e_phase), "UPGRID_HOOK=%s", ug_tconf_hook_name(id));
	ug_term_log(t, LOG_DEBUG, "running the %s hook", ug_tconf_hook_name(id));
	r = ug_hook_run(ug_tconf_hook_name(id), h->argv, env, h->timeout, &res, err);
	return r;
}

static int recover(struct ug_term *t);

/* ------------------------------------------------------------ opening */

static int open_root_dir(struct ug_term *t, struct ug_error *err)
{
	char *dir = strdup(t->c->root), *slash;
	int rootfd, r;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	t->root_name = strdup(slash + 1);
	*slash = '\0';
	rootfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = rootfd < 0 ? -errno : 0;
	if (r == 0 && dir[0])
		r = ug_mkdir_p(rootfd, dir + 1, 0755);
	if (r == 0) {
		t->rootdirfd = dir[0] ? openat(rootfd, dir + 1, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
				      : dup(rootfd);
		if (t->rootdirfd < 0)
			r = -errno;
	}
	if (rootfd >= 0)
		close(rootfd);
	if (r < 0)
		ug_error_set(err, r, "cannot open the directory of install root '%s': %s",
			     t->c->root, strerror(-r));
	free(dir);
	return t->root_name ? r : -ENOMEM;
}

static int open_state(struct ug_term *t, bool lock, struct ug_error *err)
{
	const char *state = t->c->state;
	int rootfd, r;
	char path[UG_PATH_MAX];

	rootfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -errno;
	r = lock ? ug_mkdir_p(rootfd, state + 1, 0755) : 0;
	close(rootfd);
	if (r < 0)
		return ug_error_set(err, r, "cannot create state directory '%s': %s", state,
				    strerror(-r));
	t->statefd = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (t->statefd < 0)
		return ug_error_set(err, -errno, "cannot open state directory '%s': %s%s", state,
				    strerror(errno), errno == ENOENT ? " (nothing was pulled yet)" : "");
	if (lock) {
		t->lockfd = openat(t->statefd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (t->lockfd < 0)
			return ug_error_set(err, -errno, "cannot open '%s/lock': %s", state,
					    strerror(errno));
		if (flock(t->lockfd, LOCK_EX | LOCK_NB) < 0)
			return ug_error_set(err, errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno,
					    "another upgrid command is working on '%s' (it holds "
					    "'%s/lock'): try again when it has finished", state, state);
		for (const char *d = "versions"; d; d = strcmp(d, "versions") == 0 ? "staging" : NULL) {
			r = ug_mkdir_p(t->statefd, d, 0755);
			if (r < 0)
				return ug_error_set(err, r, "cannot create '%s/%s': %s", state, d,
						    strerror(-r));
		}
		if (faccessat(t->statefd, "cache/config", F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
			snprintf(path, sizeof(path), "%s/cache", state);
			ug_tlocal_rm_tree(t->statefd, "cache");
			r = ug_store_create(path, err);
			if (r < 0)
				return r;
		}
	}
	snprintf(path, sizeof(path), "%s/cache", state);
	if (faccessat(t->statefd, "cache/config", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		r = ug_store_open(path, &t->cache, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int ug_term_open(const struct ug_tconf *c, unsigned flags, struct ug_term **ret,
		 struct ug_error *err)
{
	bool lock = flags & UG_TERM_LOCK;
	struct ug_term *t = calloc(1, sizeof(*t));
	struct ug_error e = { "" };
	bool warn;
	int r;

	if (!t)
		return -ENOMEM;
	t->c = c;
	t->statefd = t->lockfd = t->rootdirfd = -1;
	t->verbosity = 1;
	t->rng = (uint64_t)ug_now() ^ ((uint64_t)getpid() << 32);
	r = open_state(t, lock, err);
	if (r == 0)
		r = open_root_dir(t, err);
	if (r == 0) {
		r = ug_pubkey_load(c->master_key, &t->key, &e);
		if (r < 0)
			ug_error_set(err, r, "master key: %s", e.msg);
	}
	if (r == 0)
		r = read_installed(t, &t->installed, err);
	if (r == 0) {
		r = ug_tstate_load(t->statefd, &t->st, &warn, &e);
		if (r < 0)
			ug_error_set(err, r, "%s/%s", c->state, e.msg);
		else if (warn)
			ug_term_log(t, LOG_WARNING, "%s/%s", c->state, e.msg);
	}
	if (r == 0 && lock && (flags & UG_TERM_RECOVER))
		recover(t);
	if (r < 0) {
		ug_term_free(t);
		return r;
	}
	*ret = t;
	return 0;
}

void ug_term_set_log(struct ug_term *t, int verbosity, bool use_syslog)
{
	t->verbosity = verbosity;
	t->use_syslog = use_syslog;
}

void ug_term_free(struct ug_term *t)
{
	if (!t)
		return;
	ug_client_free(t->cl);
	ug_store_free(t->cache);
	if (t->rootdirfd >= 0)
		close(t->rootdirfd);
	if (t->lockfd >= 0)
		close(t->lockfd);
	if (t->statefd >= 0)
		close(t->statefd);
	free(t->root_name);
	free(t);
}

uint64_t ug_term_installed(const struct ug_term *t)
{
	return t->installed;
}

struct ug_tstate *ug_term_state(struct ug_term *t)
{
	return &t->st;
}

int ug_term_save_state(struct ug_term *t, struct ug_error *err)
{
	return ug_tstate_save(t->statefd, &t->st, err);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int ug_term_kept(const struct ug_term *t, uint64_t **ret, size_t *ret_n)
{
	int fd = openat(t->statefd, "versions", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	uint64_t *v = NULL, x;
	size_t n = 0, alloc = 0;
	struct dirent *de;
	DIR *d;

	*ret = NULL;
	*ret_n = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (ug_parse_u64(de->d_name, UG_TCONF_VERSION_MAX, &x) < 0 || x == 0)
			continue;
		if (n == alloc) {
			uint64_t *nv = realloc(v, (alloc = alloc ? alloc * 2 : 8) * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = x;
	}
	closedir(d);
	qsort(v, n, sizeof(*v), u64_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
}

uint64_t ug_term_random(struct ug_term *t)
{
	/* splitmix64: spreading a fleet needs no more */
	uint64_t z = (t->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int ug_tlocal_rm_tree(int parent, const char *name)
{
	struct dirent *de;
	int fd, r = 0;
	DIR *d;

	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			int r2 = ug_tlocal_rm_tree(dirfd(d), de->d_name);
			if (r2 < 0 && r == 0)
				r = r2;
		}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && r == 0)
		r = -errno;
	return r;
}

int ug_tlocal_mkdir_parent(int dirfd, const char *path)
{
	char *dir = strdup(path), *slash;
	int r = 0;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		r = ug_mkdir_p(dirfd, dir, 0755);
	}
	free(dir);
	return r;
}

void ug_target_release(struct ug_target *tg)
{
	ug_manifest_free(tg->m);
	ug_manifest_free(tg->cur);
	free(tg->json);
	free(tg->sig);
	free(tg->cur_json);
	ug_tfetch_plan_free(tg->plan);
	memset(tg, 0, sizeof(*tg));
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------ switching */

static void remove_version(struct ug_term *t, uint64_t v)
{
	char dir[64];

	version_dir(v, dir, sizeof(dir));
	ug_tlocal_rm_tree(t->statefd, dir);
}

static void record_ok(struct ug_term *t, uint64_t v)
{
	struct ug_error e = { "" };

	t->st.last.result = UG_TRESULT_OK;
	t->st.last.installed = v;
	t->st.last_success = ug_now();
	t->st.failures = 0;
	ug_tstate_del(t->st.accepted, &t->st.naccepted, v);
	if (ug_term_save_state(t, &e) < 0)
		ug_term_log(t, LOG_WARNING, "%s/%s", t->c->state, e.msg);
	ug_tstage_prune(t);
}

/* After the root link points to `to`: restart, check, and either keep it
 * or switch back to `from` (0: nothing installed before). fresh: `to` was
 * just installed (a failure marks it bad and removes it); otherwise it is
 * a kept version being rolled back to. */
static int after_switch(struct ug_term *t, uint64_t from, uint64_t to, bool fresh,
			struct ug_error *err)
{
	struct ug_error e = { "" }, e2 = { "" };
	int r;

	r = run_hook(t, UG_TCONF_HOOK_RESTART, from, to, &e);
	ug_term_crash_point("restarted");
	if (r == 0)
		r = run_hook(t, UG_TCONF_HOOK_HEALTH_CHECK, from, to, &e);
	if (r == 0) {
		ug_term_crash_point("checked");
		journal_remove(t);
		return 0;
	}
	ug_term_log(t, LOG_ERR, "version %" PRIu64 " failed: %s: switching back to %s%" PRIu64,
		    to, e.msg, from ? "version " : "nothing installed, ", from);
	if (switch_root(t, from, &e2) < 0)
		ug_term_log(t, LOG_ERR, "%s", e2.msg);
	else if (from && run_hook(t, UG_TCONF_HOOK_RESTART, to, from, &e2) < 0)
		ug_term_log(t, LOG_ERR, "after switching back: %s", e2.msg);
	ug_tstate_add(t->st.bad, &t->st.nbad, to);
	if (fresh)
		remove_version(t, to);
	journal_remove(t);
	return ug_error_set(err, -ECANCELED, "version %" PRIu64 " failed its checks (%s): "
			    "switched back to %s%" PRIu64 "; it is not tried again until a newer "
			    "one is published", to, e.msg, from ? "version " : "nothing, ", from);
}

/* What a crash left: staging/ goes, a switch in progress is finished or
 * undone. */
static int recover(struct ug_term *t)
{
	struct ug_error e = { "" };
	uint64_t from, to;
	bool fresh;
	int fd, r;

	fd = openat(t->statefd, "staging", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		DIR *d = fdopendir(fd);
		struct dirent *de;
		while (d && (de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				ug_tlocal_rm_tree(dirfd(d), de->d_name);
		if (d)
			closedir(d);
		else
			close(fd);
	}
	r = journal_read(t, &from, &to, &fresh);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		ug_term_log(t, LOG_WARNING, "'%s/" JOURNAL "' is unreadable: removed", t->c->state);
		journal_remove(t);
		return 0;
	}
	if (t->installed != to) {
		/* the crash came before the switch */
		ug_term_log(t, LOG_INFO, "an interrupted switch to version %" PRIu64 " was undone: "
			    "version %" PRIu64 " stays", to, t->installed);
		if (fresh && to != t->installed)
			remove_version(t, to);
		journal_remove(t);
		return 0;
	}
	ug_term_log(t, LOG_WARNING, "finishing the interrupted switch to version %" PRIu64, to);
	memset(&t->st.last, 0, sizeof(t->st.last));
	t->st.last.time = ug_now();
	t->st.last.target = to;
	r = after_switch(t, from, to, fresh, &e);
	if (r == 0) {
		record_ok(t, to);
		return 0;
	}
	t->st.last.result = UG_TRESULT_ROLLED_BACK;
	t->st.last.installed = t->installed;
	t->st.report_pending = true;
	snprintf(t->st.last.message, sizeof(t->st.last.message), "%s", e.msg);
	ug_term_save_state(t, NULL);
	return 0;
}


/* Everything after the download: hooks, finish, switch, checks. */
static int install(struct ug_term *t, struct ug_target *tg, int stgfd, struct ug_error *err)
{
	uint64_t from = t->installed, to = tg->m->version;
	char sdir[64], vdir[64];
	struct ug_error e = { "" };
	int r;

	r = run_hook(t, UG_TCONF_HOOK_PRE_SWITCH, from, to, &e);
	if (r < 0) {
		/* a hook that cannot run is a failed attempt, not a missing
		 * version; what it stopped before failing must run again */
		ug_error_set(err, r == -ENOENT ? -EIO : r, "%s: version %" PRIu64
			     " is not installed", e.msg, to);
		if (from && t->c->hooks[UG_TCONF_HOOK_PRE_SWITCH].argv &&
		    run_hook(t, UG_TCONF_HOOK_RESTART, to, from, &e) < 0)
			ug_term_log(t, LOG_ERR, "restarting version %" PRIu64 ": %s", from, e.msg);
		return r == -ENOENT ? -EIO : r;
	}
	r = ug_tstage_finish(t, tg, stgfd, err);
	ug_term_crash_point("finished");
	/* recovery and the next manifest delta need it */
	if (r == 0) {
		r = ug_store_manifest_put(t->cache, t->c->channel, to, tg->json, tg->json_len,
					  tg->sig, tg->sig_len);
		if (r < 0)
			ug_error_set(err, r, "cannot keep manifest %" PRIu64 " in '%s/cache': %s",
				     to, t->c->state, strerror(-r));
	}
	if (r == 0) {
		r = journal_write(t, from, to, true);
		if (r < 0)
			ug_error_set(err, r, "cannot write '%s/" JOURNAL "': %s", t->c->state,
				     strerror(-r));
	}
	if (r < 0) {
		/* the pre-switch hook may have stopped the service: the
		 * installed version must run again */
		if (from && run_hook(t, UG_TCONF_HOOK_RESTART, to, from, &e) < 0)
			ug_term_log(t, LOG_ERR, "restarting version %" PRIu64 ": %s", from, e.msg);
		return r;
	}
	ug_term_crash_point("journal");
	snprintf(sdir, sizeof(sdir), "staging/%" PRIu64, to);
	version_dir(to, vdir, sizeof(vdir));
	ug_tlocal_rm_tree(t->statefd, vdir);
	if (renameat(t->statefd, sdir, t->statefd, vdir) < 0) {
		r = -errno;
		journal_remove(t);
		if (from)
			run_hook(t, UG_TCONF_HOOK_RESTART, to, from, &e);
		return ug_error_set(err, r, "cannot move '%s/%s' to '%s/%s': %s", t->c->state,
				    sdir, t->c->state, vdir, strerror(-r));
	}
	ug_fsync_dir(t->statefd);
	ug_term_crash_point("renamed");
	r = switch_root(t, to, err);
	if (r < 0) {
		remove_version(t, to);
		journal_remove(t);
		return r;
	}
	ug_term_crash_point("switched");
	return after_switch(t, from, to, true, err);
}

/* ------------------------------------------------------------ reports */

static void send_report(struct ug_term *t, const struct ug_server *const *order, size_t n)
{
	struct ug_error e = { "" };
	char *text = ug_tstate_report(&t->st.last, t->c->id, t->c->channel);
	int r = -EHOSTUNREACH;

	if (!text)
		return;
	/* to the server used; else the first that answers */
	for (size_t i = 0; !t->cl && i < n; i++)
		ug_tfetch_connect(t, order[i], &e);
	if (t->cl)
		r = ug_client_report(t->cl, text, strlen(text), &e);
	free(text);
	if (r < 0) {
		ug_term_log(t, LOG_DEBUG, "report not delivered: %s", e.msg);
		t->st.report_pending = true;
		return;
	}
	t->st.report_pending = false;
	t->st.last_report = ug_now();
}

/* ------------------------------------------------------------ pull */

/* Rounds over every server when all of them answer BUSY. */
#define BUSY_ROUNDS 4

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000u, (long)(ms % 1000u) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int open_staging(struct ug_term *t, uint64_t v, int *ret_fd, struct ug_error *err)
{
	char dir[64];
	int r;

	snprintf(dir, sizeof(dir), "staging/%" PRIu64, v);
	ug_tlocal_rm_tree(t->statefd, dir);
	r = ug_mkdir_p(t->statefd, dir, 0755);
	if (r == 0) {
		*ret_fd = ug_open_beneath(t->statefd, dir, O_RDONLY | O_DIRECTORY, 0);
		r = *ret_fd < 0 ? *ret_fd : 0;
	}
	if (r < 0)
		return ug_error_set(err, r, "cannot create '%s/%s': %s", t->c->state, dir,
				    strerror(-r));
	return 0;
}

int ug_term_pull(struct ug_term *t, const struct ug_pull_opts *o, enum ug_tresult *ret_result,
		 struct ug_error *err)
{
	struct ug_tattempt *a = &t->st.last;
	struct ug_target tg = { 0 };
	const struct ug_server **order = NULL;
	const char *group = NULL;
	struct ug_error e = { "" };
	char why[UG_TSTATE_TEXT_MAX] = "";
	uint64_t start = mono_ms();
	size_t n = 0, si;
	bool chosen = false, fetched = false;
	struct ug_backoff bo;
	unsigned rounds = 0;
	int stgfd = -1, r;

	memset(a, 0, sizeof(*a));
	a->time = ug_now();
	a->installed = t->installed;
	t->bytes_closed = 0;
	ug_tfetch_current(t, &tg, err);
	r = ug_tfetch_servers(t, tg.cur, &order, &n, &group);
	if (r < 0) {
		ug_target_release(&tg);
		return ug_error_set(err, r, "out of memory");
	}
	r = -EHOSTUNREACH;
	snprintf(e.msg, sizeof(e.msg), "no server is configured");
	ug_backoff_init(&bo, 2000, 60000, ug_term_random(t));
again:
	t->busy_retry = 0;
	for (si = 0; si < n && !fetched; si++) {
		struct ug_error e1 = { "" };

		/* the last server's failure is in the final message: said once */
		bool last = si + 1 == n;

		r = ug_tfetch_connect(t, order[si], &e1);
		if (r < 0) {
			if (!last)
				ug_term_log(t, LOG_INFO, "cannot use server %s: %s", order[si]->name,
					    e1.msg);
			e = e1;
			continue;
		}
		if (!chosen) {
			r = ug_tfetch_choose(t, &tg, group, why, sizeof(why), &e1);
			if (r < 0) {
				if (!last)
					ug_term_log(t, LOG_WARNING, "%s: trying the next server", e1.msg);
				e = e1;
				ug_tfetch_disconnect(t);
				continue;
			}
			chosen = true;
			if (!tg.m || o->check)
				break;
			a->target = tg.m->version;
			ug_term_log(t, LOG_DEBUG, "installing version %" PRIu64 " from %s",
				    a->target, t->cl->peer);
			r = open_staging(t, a->target, &stgfd, &e1);
			if (r < 0) {
				e = e1;
				break;
			}
		}
		r = ug_tfetch_content(t, &tg, stgfd, &e1);
		if (r < 0) {
			e = e1;
			if (r == -ENOSPC || r == -EDQUOT)
				break;  /* not the server's fault */
			if (!last)
				ug_term_log(t, LOG_WARNING, "fetching version %" PRIu64 " from %s "
					    "failed: %s: trying the next server (downloads resume)",
					    a->target, t->cl ? t->cl->peer : order[si]->name, e1.msg);
			ug_tfetch_disconnect(t);
			continue;
		}
		fetched = true;
		ug_term_crash_point("staged");
	}
	/* every server turned us away as busy: the fleet is upgrading at
	 * once; wait as they ask, with jitter, a few times before giving up */
	if (!chosen && t->busy_retry && rounds++ < BUSY_ROUNDS) {
		unsigned ms = ug_backoff_next(&bo, t->busy_retry);
		ug_term_log(t, LOG_INFO, "every server is busy: trying again in %.1f s",
			    (double)ms / 1000.0);
		sleep_ms(ms);
		goto again;
	}
	if (chosen && (!tg.m || o->check)) {
		a->result = UG_TRESULT_CURRENT;
		if (tg.m)
			snprintf(why, sizeof(why), "would install version %" PRIu64 " (from %" PRIu64 ")",
				 tg.m->version, t->installed);
		snprintf(a->message, sizeof(a->message), "%s", why);
		r = 0;
	} else if (!fetched) {
		a->result = UG_TRESULT_FAILED;
		if (!chosen)
			ug_error_set(err, r, "no server could be used (tried %zu): %s", n, e.msg);
		else
			ug_error_set(err, r, "version %" PRIu64 " could not be fetched: %s",
				     a->target, e.msg);
	} else {
		a->full_bytes = tg.full_bytes;
		r = install(t, &tg, stgfd, err);
		if (r == 0) {
			a->result = UG_TRESULT_OK;
			a->installed = t->installed;
			if (tg.nconflicts)
				snprintf(a->message, sizeof(a->message), "%s", tg.conflicts);
		} else {
			a->result = r == -ECANCELED ? UG_TRESULT_ROLLED_BACK : UG_TRESULT_FAILED;
		}
	}
	if (stgfd >= 0) {
		char dir[64];
		close(stgfd);
		snprintf(dir, sizeof(dir), "staging/%" PRIu64, a->target);
		ug_tlocal_rm_tree(t->statefd, dir);
	}
	if (a->result == UG_TRESULT_FAILED || a->result == UG_TRESULT_ROLLED_BACK) {
		snprintf(a->message, sizeof(a->message), "%s", err->msg);
		t->st.failures++;
	}
	a->installed = t->installed;
	a->duration_ms = mono_ms() - start;
	a->bytes = ug_tfetch_bytes(t);
	t->st.bytes_total += a->bytes;
	snprintf(a->server, sizeof(a->server), "%s", t->srv ? t->srv->name : "");
	if (!o->check) {
		if (a->result == UG_TRESULT_OK)
			record_ok(t, t->installed);
		else if (a->result == UG_TRESULT_CURRENT) {
			t->st.last_success = ug_now();
			t->st.failures = 0;
		}
		if (a->result != UG_TRESULT_CURRENT || t->st.report_pending ||
		    ug_now() - t->st.last_report >= 86400)
			send_report(t, order, n);
		ug_term_save_state(t, NULL);
	}
	ug_tfetch_disconnect(t);
	ug_target_release(&tg);
	free(order);
	*ret_result = a->result;
	return a->result == UG_TRESULT_OK || a->result == UG_TRESULT_CURRENT ? 0 : r;
}

/* ------------------------------------------------------------ agent, rollback */

int ug_term_wait(struct ug_term *t, uint64_t after, unsigned timeout_s, struct ug_error *err)
{
	struct ug_target tg = { 0 };
	const struct ug_server **order = NULL;
	const char *group;
	size_t n = 0;
	uint64_t v = 0;
	int r = -EHOSTUNREACH;

	if (after < t->installed)
		after = t->installed;

	ug_tfetch_current(t, &tg, NULL);
	if (ug_tfetch_servers(t, tg.cur, &order, &n, &group) < 0)
		n = 0;
	ug_error_set(err, r, "no server is configured");
	for (size_t i = 0; i < n; i++) {
		r = ug_tfetch_connect(t, order[i], err);
		if (r == 0)
			r = ug_client_wait(t->cl, t->c->channel, after, timeout_s, &v, err);
		ug_tfetch_disconnect(t);
		if (r == 0)
			break;
	}
	free(order);
	ug_target_release(&tg);
	if (r < 0)
		return r;
	return v > after ? 1 : 0;
}

int ug_term_rollback(struct ug_term *t, uint64_t version, struct ug_error *err)
{
	uint64_t *kept = NULL, from = t->installed;
	size_t n = 0;
	bool found = false;
	int r;

	r = ug_term_kept(t, &kept, &n);
	if (r < 0)
		return ug_error_set(err, r, "cannot list '%s/versions': %s", t->c->state,
				    strerror(-r));
	for (size_t i = n; i-- > 0;)
		if (version ? kept[i] == version : kept[i] < from) {
			version = kept[i];
			found = true;
			break;
		}
	free(kept);
	if (!found || version == from) {
		if (version == from && from)
			return ug_error_set(err, -EINVAL, "version %" PRIu64 " is the one installed",
					    from);
		return ug_error_set(err, -ENOENT, "no version to roll back to%s: the terminal "
				    "keeps %u (setting 'keep' in terminal.conf); see "
				    "'upgrid status'", version ? " (not kept)" : "", t->c->keep);
	}
	memset(&t->st.last, 0, sizeof(t->st.last));
	t->st.last.time = ug_now();
	t->st.last.target = version;
	r = run_hook(t, UG_TCONF_HOOK_PRE_SWITCH, from, version, err);
	if (r == 0)
		r = journal_write(t, from, version, false);
	if (r == 0)
		r = switch_root(t, version, err);
	if (r == 0)
		r = after_switch(t, from, version, false, err);
	t->st.last.installed = t->installed;
	if (r == 0) {
		/* what the operator left is not taken again by itself */
		if (from)
			ug_tstate_add(t->st.bad, &t->st.nbad, from);
		t->st.last.result = UG_TRESULT_OK;
		snprintf(t->st.last.message, sizeof(t->st.last.message),
			 "rolled back from version %" PRIu64, from);
		t->st.last_success = ug_now();
	} else {
		journal_remove(t);
		t->st.last.result = UG_TRESULT_FAILED;
		snprintf(t->st.last.message, sizeof(t->st.last.message), "%s", err->msg);
	}
	t->st.report_pending = true;
	ug_term_save_state(t, NULL);
	return r;
}
