/* tfetch.c - a terminal's sessions, its choice of a version, and the
 * download of that version's content into staging/ (see tlocal.h).
 *
 * For each file of the new version the cheapest source wins:
 *   1. content the terminal already has, matched by hash (an unchanged,
 *      renamed or copied file, a pristine config copy): no bytes;
 *   2. the version pair's bundle delta, when every base it names is held
 *      and the memory it states is available;
 *   3. a precomputed delta whose base is the local file's content;
 *   4. a delta the server computes from the local file's librsync
 *      signature (a file that drifted from what was installed);
 *   5. the full object.
 * Blobs go through the cache repo's partial files, so a download cut
 * short resumes at its byte offset on the next run or from another
 * server (blobs are named by their content, so any server's copy is the
 * same bytes). Every staged file is checked against the manifest's
 * BLAKE2b before it counts as done. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "delta.h"
#include "mfetch.h"
#include "progress.h"
#include "rendezvous.h"
#include "rollout.h"
#include "tlocal.h"

/* Files whose full object is smaller than this are fetched whole rather
 * than by signature delta: the signature would cost about as much. */
#define SIGDELTA_MIN (64u << 10)
/* Candidates whose manifest is fetched in one choice (denied, expired or
 * outside the rollout, newest first). */
#define CHOOSE_MAX 8

/* ------------------------------------------------------------ sessions */

int ug_tfetch_servers(struct ug_term *t, const struct ug_manifest *cur,
		      const struct ug_server ***ret, size_t *ret_n, const char **ret_group)
{
	const struct ug_cluster *cl = cur ? cur->chains : NULL;
	struct ug_rdv_pick *picks = NULL;
	const struct ug_server **v;
	size_t np = 0, n = 0;

	*ret_group = NULL;
	if (cl && cl->ngroups > 0 && ug_rendezvous_order(cl, t->c->id, &picks, &np) < 0)
		np = 0;
	v = calloc(np + t->c->nseeds + 1, sizeof(*v));
	if (!v) {
		free(picks);
		return -ENOMEM;
	}
	for (size_t i = 0; i < np; i++)
		v[n++] = &cl->groups[picks[i].group].servers[picks[i].pos];
	if (np > 0)
		*ret_group = cl->groups[picks[0].group].name;
	/* the seeds last: they are where a terminal starts, and where it
	 * goes when its whole chain list is gone */
	for (size_t i = 0; i < t->c->nseeds; i++)
		v[n++] = &t->c->seeds[i];
	free(picks);
	*ret = v;
	*ret_n = n;
	return 0;
}

uint64_t ug_tfetch_bytes(const struct ug_term *t)
{
	uint64_t b = t->bytes_closed;

	if (t->cl && t->cl->conn)
		b += t->cl->conn->bytes_in + t->cl->conn->bytes_out;
	return b;
}

void ug_tfetch_disconnect(struct ug_term *t)
{
	if (!t->cl)
		return;
	if (t->cl->conn)
		t->bytes_closed += t->cl->conn->bytes_in + t->cl->conn->bytes_out;
	ug_client_free(t->cl);
	t->cl = NULL;
	t->srv = NULL;
}

/* The server's stderr (a spawned local server, or ssh's): details only. */
static void remote_log(void *ctx, const char *line)
{
	ug_term_log(ctx, LOG_DEBUG, "server: %s", line);
}

int ug_tfetch_connect(struct ug_term *t, const struct ug_server *srv, struct ug_error *err)
{
	struct ug_client_opts o = { 0 };
	uint32_t retry = 0;
	const char *local = getenv("UPGRID_SYNCD");
	int r;

	ug_tfetch_disconnect(t);
	o.name = t->c->id;
	o.identity = t->c->identity;
	o.known_hosts = t->c->known_hosts;
	o.local_command = local && *local ? local : "upgrid-syncd";
	o.idle_timeout_s = (int)t->c->stall_timeout;
	o.log = remote_log;
	o.log_ctx = t;
	o.local_quiet = t->verbosity < 2;
	/* long downloads on a person's terminal; never in cron or syslog */
	if (!t->use_syslog && ug_progress_wanted(STDERR_FILENO, t->verbosity)) {
		o.progress = ug_progress_update;
		o.progress_ctx = ug_progress_stderr();
	}
	r = ug_client_open(srv, &o, &t->cl, &retry, err);
	if (r == -EBUSY) {
		ug_term_log(t, LOG_DEBUG, "server %s is busy (retry after %u s): trying the next",
			    srv->name, retry);
		if (retry > t->busy_retry)
			t->busy_retry = retry;
	}
	if (r < 0)
		return r;
	t->srv = srv;
	ug_conn_set_bwlimit(t->cl->conn, t->c->bwlimit);
	ug_term_log(t, LOG_DEBUG, "connected to %s", t->cl->peer);
	return 0;
}

/* ------------------------------------------------------------ manifests */

int ug_tfetch_current(struct ug_term *t, struct ug_target *tg, struct ug_error *err)
{
	struct ug_error e = { "" };
	char *sig = NULL;
	size_t sig_len;
	int r;

	(void)err;
	if (!t->installed)
		return 0;
	r = ug_store_manifest_get(t->cache, t->c->channel, t->installed, &tg->cur_json,
				  &tg->cur_len, &sig, &sig_len);
	if (r == 0)
		r = ug_sign_verify(&t->key, UG_SIGN_CONTEXT_MANIFEST, tg->cur_json, tg->cur_len,
				   sig, sig_len, &e);
	if (r == 0)
		r = ug_manifest_parse(tg->cur_json, tg->cur_len, &tg->cur, &e);
	free(sig);
	if (r < 0) {
		/* still installed and running: only the deltas from it are lost */
		ug_term_log(t, LOG_WARNING, "the manifest of installed version %" PRIu64
			    " in '%s/cache' cannot be used (%s): the next version is fetched "
			    "without deltas from it", t->installed, t->c->state,
			    e.msg[0] ? e.msg : strerror(-r));
		free(tg->cur_json);
		tg->cur_json = NULL;
		tg->cur_len = 0;
	}
	return 0;
}

/* The rollout in force for m as the connected server has it; NULL:
 * everyone. A rollout document that fails its checks is logged and the
 * manifest's own rollout used. */
/* The terminal's group in m's own chain list (the list a rollout's
 * groups name), else the one it uses now: a terminal with nothing
 * installed has a group too. */
static const char *group_in(const struct ug_term *t, const struct ug_manifest *m,
			    const char *current)
{
	struct ug_rdv_pick *picks = NULL;
	const char *g = current;
	size_t n = 0;

	if (m->chains && m->chains->ngroups > 0 &&
	    ug_rendezvous_order(m->chains, t->c->id, &picks, &n) == 0 && n > 0)
		g = m->chains->groups[picks[0].group].name;
	free(picks);
	return g;
}

static bool in_rollout(struct ug_term *t, const struct ug_manifest *m, const char *group)
{
	struct ug_blob_ref b = { .kind = UG_BLOB_ROLLOUT, .channel = m->channel,
				 .version = m->version };
	struct ug_rollout_doc *doc = NULL;
	const struct ug_rollout *ro = NULL;
	struct ug_error e = { "" };
	char *text = NULL, *sig = NULL;
	size_t text_len = 0, sig_len = 0;
	bool in;

	if (ug_client_get_buf(t->cl, &b, UG_ROLLOUT_DOC_MAX, &text, &text_len, &e) == 0) {
		b.kind = UG_BLOB_ROLLOUT_SIG;
		if (ug_client_get_buf(t->cl, &b, UG_SIG_FILE_MAX, &sig, &sig_len, &e) < 0) {
			free(text);
			text = NULL;
		}
	}
	if (ug_rollout_in_force(m, &t->key, text, text_len, sig, sig_len, &doc, &ro, &e) < 0) {
		ug_term_log(t, LOG_WARNING, "ignoring the rollout document of version %" PRIu64
			    " from %s: %s", m->version, t->cl->peer, e.msg);
		ro = m->rollout;
	}
	if (doc) {
		uint64_t seen = ug_tstate_serial(&t->st, m->version);
		if (doc->serial < seen) {
			/* an older signed document replayed, or a server behind
			 * its upstream: not believed; the next poll asks again */
			ug_term_log(t, LOG_WARNING, "%s offers rollout document %" PRIu64 " of version %"
				    PRIu64 ", older than %" PRIu64 " seen before: not using the "
				    "version from it", t->cl->peer, doc->serial, m->version, seen);
			ug_rollout_doc_free(doc);
			free(text);
			free(sig);
			return false;
		}
		ug_tstate_serial_note(&t->st, m->version, doc->serial);
	}
	in = !ro || ug_rollout_includes(ro, t->c->id, m->version, group_in(t, m, group));
	ug_rollout_doc_free(doc);
	free(text);
	free(sig);
	return in;
}

static bool denied(struct ug_term *t, uint64_t v)
{
	return ug_tconf_denied(t->c, v) || ug_tstate_has(t->st.denied, t->st.ndenied, v);
}

#define WHY(...) do { if (!why_set) snprintf(why, why_n, __VA_ARGS__); why_set = true; } while (0)

int ug_tfetch_choose(struct ug_term *t, struct ug_target *tg, const char *group,
		     char *why, size_t why_n, struct ug_error *err)
{
	const struct ug_tconf *c = t->c;
	uint64_t *v = NULL, pin = c->pin;
	size_t n = 0, tried = 0;
	int64_t now = ug_term_now();
	bool why_set;
	int r;

	/* the reason given is the newest version's: the one the operator
	 * expects to see installed */
	snprintf(why, why_n, "version %" PRIu64 " is the newest", t->installed);
	why_set = false;
	r = ug_client_versions(t->cl, c->channel, &v, &n, err);
	if (r == -ENOENT)
		return ug_error_set(err, r, "%s has no channel '%s'", t->cl->peer, c->channel);
	if (r < 0)
		return r;
	if (n > 0)
		t->st.last.newest = v[n - 1];
	if (pin && pin == t->installed) {
		snprintf(why, why_n, "pinned to version %" PRIu64, pin);
		free(v);
		return 0;
	}
	for (size_t i = n; i-- > 0;) {
		uint64_t x = v[i];
		struct ug_mfetch q = { .channel = c->channel, .version = x, .key = &t->key,
				       .have_json = tg->cur_json, .have_len = tg->cur_len,
				       .have_version = t->installed };
		char when[32];

		if (pin ? x != pin : x <= t->installed)
			continue;
		if (denied(t, x)) {
			WHY( "version %" PRIu64 " is denied", x);
			continue;
		}
		if (!pin && ug_tstate_has(t->st.bad, t->st.nbad, x)) {
			WHY( "version %" PRIu64 " failed its health check here "
				 "and is not tried again", x);
			continue;
		}
		if (!pin && c->policy == UG_TCONF_POLICY_MANUAL &&
		    !ug_tstate_has(t->st.accepted, t->st.naccepted, x)) {
			WHY( "version %" PRIu64 " waits for 'upgrid accept %" PRIu64
				 "' (policy manual)", x, x);
			continue;
		}
		if (++tried > CHOOSE_MAX)
			break;
		r = ug_mfetch(t->cl, &q, err);
		if (r == -EKEYREJECTED) {
			size_t used = strlen(err->msg);
			snprintf(err->msg + used, sizeof(err->msg) - used, "; if the master's key "
				 "changed, install its public key as '%s' (setting master-key)",
				 t->c->master_key);
		}
		if (r < 0) {
			free(v);
			return r;
		}
		ug_term_crash_point("manifest");
		if (q.m->expires <= now) {
			ug_time_format(q.m->expires, when);
			WHY( "refusing version %" PRIu64 ": its manifest expired at "
				 "%s (the master must publish a new one)", x, when);
			ug_term_log(t, LOG_WARNING, "refusing version %" PRIu64 ": its manifest "
				    "expired at %s (the master must publish a new one)", x, when);
			ug_mfetch_release(&q);
			continue;
		}
		if (!in_rollout(t, q.m, group)) {
			WHY( "version %" PRIu64 " is not rolled out to this "
				 "terminal yet", x);
			ug_mfetch_release(&q);
			continue;
		}
		tg->m = q.m;
		tg->json = q.json;
		tg->json_len = q.json_len;
		tg->sig = q.sig;
		tg->sig_len = q.sig_len;
		free(q.mdelta);
		free(v);
		return 0;
	}
	if (pin && (n == 0 || !tried))
		snprintf(why, why_n, "pinned version %" PRIu64 " is not on %s", pin, t->cl->peer);
	free(v);
	return 0;
}

/* ------------------------------------------------------------ local content */

struct src {
	struct ug_hash h;
	const char *path;   /* in the installed tree */
	int state;          /* 0 unchecked, 1 content matches, -1 it does not */
};

struct ug_tplan {
	struct src *cur;    /* the installed version's files, by hash */
	size_t ncur;
	size_t *byhash;     /* indexes of the target's files, by hash */
	bool *done;         /* target file i is staged and checked */
	int curfd;          /* the installed tree, or -1 */
};

static int src_cmp(const void *a, const void *b)
{
	return ug_hash_cmp(&((const struct src *)a)->h, &((const struct src *)b)->h);
}

static const struct ug_manifest *sort_m;

static int byhash_cmp(const void *a, const void *b)
{
	return ug_hash_cmp(&sort_m->files[*(const size_t *)a].hash,
			   &sort_m->files[*(const size_t *)b].hash);
}

void ug_tfetch_plan_free(struct ug_tplan *p)
{
	if (!p)
		return;
	if (p->curfd >= 0)
		close(p->curfd);
	free(p->cur);
	free(p->byhash);
	free(p->done);
	free(p);
}

static int plan_new(struct ug_term *t, struct ug_target *tg, struct ug_tplan **ret)
{
	struct ug_tplan *p = calloc(1, sizeof(*p));
	const struct ug_manifest *m = tg->m;
	char dir[64];

	if (!p)
		return -ENOMEM;
	p->curfd = -1;
	p->byhash = calloc(m->nfiles + 1, sizeof(*p->byhash));
	p->done = calloc(m->nfiles + 1, sizeof(*p->done));
	if (tg->cur)
		p->cur = calloc(tg->cur->nfiles + 1, sizeof(*p->cur));
	if (!p->byhash || !p->done || (tg->cur && !p->cur)) {
		ug_tfetch_plan_free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->nfiles; i++)
		p->byhash[i] = i;
	sort_m = m;
	qsort(p->byhash, m->nfiles, sizeof(*p->byhash), byhash_cmp);
	if (tg->cur && t->installed) {
		snprintf(dir, sizeof(dir), "versions/%" PRIu64, t->installed);
		p->curfd = ug_open_beneath(t->statefd, dir, O_RDONLY | O_DIRECTORY, 0);
		for (size_t i = 0; p->curfd >= 0 && i < tg->cur->nfiles; i++) {
			p->cur[p->ncur].h = tg->cur->files[i].hash;
			p->cur[p->ncur++].path = tg->cur->files[i].path;
		}
		qsort(p->cur, p->ncur, sizeof(*p->cur), src_cmp);
	}
	*ret = p;
	return 0;
}

static int hash_matches(int fd, const struct ug_hash *h)
{
	struct ug_hash got;

	if (lseek(fd, 0, SEEK_SET) < 0 || ug_hash_fd(fd, &got, NULL, NULL) < 0)
		return 0;
	lseek(fd, 0, SEEK_SET);
	return ug_hash_eq(&got, h);
}

/* An fd (at offset 0) of content h the terminal holds, checked, or
 * -ENOENT. *ret_path: the installed file it came from, if any. */
static int open_local(struct ug_term *t, struct ug_target *tg, const struct ug_hash *h,
		      int stgfd, const char **ret_path)
{
	struct ug_tplan *p = tg->plan;
	struct src key = { .h = *h };
	struct src *s = p->ncur ? bsearch(&key, p->cur, p->ncur, sizeof(*p->cur), src_cmp) : NULL;
	int fd;

	if (ret_path)
		*ret_path = NULL;
	while (s && s > p->cur && ug_hash_eq(&s[-1].h, h))
		s--;
	for (; s && s < p->cur + p->ncur && ug_hash_eq(&s->h, h); s++) {
		if (s->state < 0)
			continue;
		fd = ug_open_beneath(p->curfd, s->path, O_RDONLY, 0);
		if (fd < 0) {
			s->state = -1;
			continue;
		}
		if (s->state == 0)
			s->state = hash_matches(fd, h) ? 1 : -1;
		if (s->state > 0) {
			if (ret_path)
				*ret_path = s->path;
			return fd;
		}
		/* drifted on this terminal: it may still serve a signature delta */
		close(fd);
	}
	/* a file of the new version already staged */
	for (size_t lo = 0, hi = tg->m->nfiles; lo < hi;) {
		size_t mid = (lo + hi) / 2, i = p->byhash[mid];
		int c = ug_hash_cmp(&tg->m->files[i].hash, h);
		if (c < 0) {
			lo = mid + 1;
		} else if (c > 0) {
			hi = mid;
		} else {
			for (size_t j = mid; j > 0 && ug_hash_eq(&tg->m->files[p->byhash[j - 1]].hash, h); j--)
				mid = j - 1;
			for (size_t j = mid; j < tg->m->nfiles &&
			     ug_hash_eq(&tg->m->files[p->byhash[j]].hash, h); j++)
				if (p->done[p->byhash[j]]) {
					fd = ug_open_beneath(stgfd, tg->m->files[p->byhash[j]].path,
							     O_RDONLY, 0);
					if (fd >= 0)
						return fd;
				}
			break;
		}
	}
	/* a pristine copy of a config file (checked as it is extracted) */
	if (ug_store_object_exists(t->cache, h) && ug_store_object_tmp(t->cache, h, &fd) == 0)
		return fd;
	return -ENOENT;
}

/* ------------------------------------------------------------ staging */

static int open_staged(int stgfd, const char *path)
{
	int r = ug_tlocal_mkdir_parent(stgfd, path);

	if (r < 0)
		return r;
	unlinkat(stgfd, path, 0);
	return ug_open_beneath(stgfd, path, O_RDWR | O_CREAT | O_TRUNC, 0600);
}

static int copy_fd(int in, int out)
{
	char buf[64 << 10];
	ssize_t n;
	int r;

	if (lseek(in, 0, SEEK_SET) < 0)
		return -errno;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if ((r = ug_write_all(out, buf, (size_t)n)) < 0)
			return r;
	return n < 0 ? -errno : 0;
}

/* out_fd holds file i's content: check it, set its mode, keep a pristine
 * copy of a config file, mark it done. Closes out_fd. */
static int staged(struct ug_term *t, struct ug_target *tg, size_t i, int out_fd,
		  const char *how, struct ug_error *err)
{
	const struct ug_mfile *f = &tg->m->files[i];
	char hex[UG_HASH_HEX_LEN + 1];
	struct ug_hash got;
	struct ug_xxh xxh;
	uint64_t size;
	int r = 0;

	if (!hash_matches(out_fd, &f->hash)) {
		ug_hash_hex(&f->hash, hex);
		r = ug_error_set(err, -EBADMSG, "'%s' from %s does not match the manifest's "
				 "BLAKE2b %.16s", f->path, how, hex);
	} else if (fchmod(out_fd, f->mode & 07777) < 0) {
		r = ug_error_set(err, -errno, "cannot set the mode of staged '%s': %s", f->path,
				 strerror(errno));
	} else if (f->cls == UG_CLASS_CONFIG && !ug_store_object_exists(t->cache, &f->hash)) {
		/* the base of the next 3-way merge */
		lseek(out_fd, 0, SEEK_SET);
		r = ug_store_object_put_fd(t->cache, out_fd, &got, &xxh, &size);
		if (r < 0)
			ug_error_set(err, r, "cannot keep the pristine copy of '%s' in '%s/cache': %s",
				     f->path, t->c->state, strerror(-r));
	}
	close(out_fd);
	if (r == 0) {
		((struct ug_tplan *)tg->plan)->done[i] = true;
		ug_term_log(t, LOG_DEBUG, "%s: %s", f->path, how);
	}
	return r;
}

/* Hard link an unchanged installed file when its mode is the same (the
 * trees are never written once complete), else copy. */
static int place_local(struct ug_term *t, struct ug_target *tg, size_t i, int stgfd,
		       int in_fd, const char *curpath, struct ug_error *err)
{
	const struct ug_mfile *f = &tg->m->files[i];
	struct ug_tplan *p = tg->plan;
	struct stat st;
	int out, r;

	out = open_staged(stgfd, f->path);
	if (out < 0) {
		close(in_fd);
		return ug_error_set(err, out, "cannot create staged '%s': %s", f->path,
				    strerror(-out));
	}
	if (curpath && f->cls != UG_CLASS_CONFIG && fstat(in_fd, &st) == 0 &&
	    (st.st_mode & 07777) == f->mode) {
		close(out);
		unlinkat(stgfd, f->path, 0);
		if (linkat(p->curfd, curpath, stgfd, f->path, 0) == 0) {
			close(in_fd);
			p->done[i] = true;
			return 0;
		}
		out = open_staged(stgfd, f->path);
		if (out < 0) {
			close(in_fd);
			return ug_error_set(err, out, "cannot create staged '%s': %s", f->path,
					    strerror(-out));
		}
	}
	r = copy_fd(in_fd, out);
	close(in_fd);
	if (r < 0) {
		close(out);
		return ug_error_set(err, r, "cannot copy '%s' into staging: %s", f->path,
				    strerror(-r));
	}
	return staged(t, tg, i, out, "local copy", err);
}

/* ------------------------------------------------------------ downloads */

static bool server_problem(const struct ug_term *t, int r)
{
	return (t->cl && t->cl->broken) || (r != -ENOENT && r != -E2BIG && r != -ENOMEM &&
					    r != -ENOSPC);
}

/* A local failure while staging: the disk, not the server. */
static int staging_error(struct ug_term *t, const char *path, int r, struct ug_error *err)
{
	if (r == -ENOSPC || r == -EDQUOT)
		return ug_error_set(err, r, "no space left for '%s' in '%s': free some space "
				    "there (a new version needs room for its changed files and "
				    "their downloads); the installed version runs on", path,
				    t->c->state);
	return ug_error_set(err, r, "cannot stage '%s' in '%s': %s", path, t->c->state,
			    strerror(-r));
}

/* Make the cache hold blob id (an object in stored form, or a delta),
 * resuming a partial download. */
static int fetch_blob(struct ug_term *t, enum ug_store_kind kind, const struct ug_hash *id,
		      uint64_t max, struct ug_error *err)
{
	const char *what = kind == UG_STORE_OBJECTS ? "object" : "delta";
	char hex[UG_HASH_HEX_LEN + 1];
	uint64_t resumed;
	int r;

	if (kind == UG_STORE_OBJECTS ? ug_store_object_exists(t->cache, id)
				     : ug_store_delta_exists(t->cache, id))
		return 0;
	r = ug_fetch_blob(t->cl, t->cache, kind, id, max, &resumed, err);
	if (r == -ENOSPC || r == -EDQUOT)
		return staging_error(t, "a download", r, err);
	if (r == -EBADMSG)
		/* the bytes were removed: the next server starts afresh */
		ug_term_log(t, LOG_WARNING, "rejected %s", err ? err->msg : what);
	if (r < 0)
		return r;
	if (resumed) {
		ug_hash_hex(id, hex);
		ug_term_log(t, LOG_INFO, "resuming %s %.16s at byte %" PRIu64 " from %s: complete", what,
			    hex, resumed, t->cl->peer);
	}
	ug_term_crash_point("fetched");
	return 0;
}

static uint64_t mem_available(void)
{
	char *data;
	size_t len;
	const char *p;
	uint64_t kb = 0;

	if (ug_file_read(AT_FDCWD, "/proc/meminfo", 1 << 16, &data, &len) < 0)
		return UINT64_MAX;
	p = strstr(data, "MemAvailable:");
	if (!p || sscanf(p, "MemAvailable: %" SCNu64, &kb) != 1)
		kb = UINT64_MAX / 1024;
	free(data);
	return kb * 1024;
}

/* The bundle from the installed version, when it is worth it and
 * possible: every base held, its memory available. */
static int try_bundle(struct ug_term *t, struct ug_target *tg, const struct ug_mbundle *b,
		      int stgfd, struct ug_error *err)
{
	struct ug_tplan *p = tg->plan;
	int *bases = NULL, *outs = NULL, dfd = -1, r = 0;
	size_t *which = NULL, needed = 0, nb = 0, no = 0;

	for (size_t k = 0; k < b->ntargets; k++)
		for (size_t i = 0; i < tg->m->nfiles; i++)
			if (!p->done[i] && ug_hash_eq(&tg->m->files[i].hash, &b->targets[k])) {
				needed++;
				break;
			}
	if (needed == 0)
		return 0;
	if (b->memory > mem_available()) {
		ug_term_log(t, LOG_DEBUG, "bundle from %" PRIu64 " needs %" PRIu64 " bytes of "
			    "memory: using per-file deltas", b->from, b->memory);
		return 0;
	}
	bases = calloc(b->nbases + 1, sizeof(int));
	outs = calloc(b->ntargets + 1, sizeof(int));
	which = calloc(b->ntargets + 1, sizeof(size_t));
	if (!bases || !outs || !which) {
		r = -ENOMEM;
		goto out;
	}
	for (nb = 0; nb < b->nbases; nb++) {
		bases[nb] = open_local(t, tg, &b->bases[nb], stgfd, NULL);
		if (bases[nb] < 0) {
			ug_term_log(t, LOG_DEBUG, "bundle from %" PRIu64 ": a base is not held "
				    "(drifted): using per-file deltas", b->from);
			goto out;
		}
	}
	r = fetch_blob(t, UG_STORE_DELTAS, &b->id, b->size, err);
	if (r < 0) {
		if (!server_problem(t, r))
			r = 0;
		goto out;
	}
	r = ug_store_delta_open(t->cache, &b->id, &dfd);
	if (r < 0)
		goto out;
	/* each target into the first file still needing it; the rest of the
	 * output into anonymous files that vanish */
	for (no = 0; no < b->ntargets; no++) {
		which[no] = SIZE_MAX;
		for (size_t i = 0; i < tg->m->nfiles; i++)
			if (!p->done[i] && ug_hash_eq(&tg->m->files[i].hash, &b->targets[no])) {
				bool dup = false;
				for (size_t k = 0; k < no; k++)
					dup |= which[k] == i;
				if (!dup) {
					which[no] = i;
					break;
				}
			}
		outs[no] = which[no] != SIZE_MAX ? open_staged(stgfd, tg->m->files[which[no]].path)
						  : ug_store_tmp_anon(t->cache);
		if (outs[no] < 0) {
			r = outs[no];
			goto out;
		}
	}
	r = ug_delta_bundle_apply(bases, nb, dfd, outs, b->target_sizes, no, b->memory);
	if (r < 0) {
		ug_term_log(t, LOG_WARNING, "bundle from %" PRIu64 " does not apply (%s): "
			    "using per-file deltas", b->from, strerror(-r));
		r = 0;
		goto out;
	}
	for (size_t k = 0; k < no; k++) {
		if (which[k] == SIZE_MAX)
			continue;
		r = staged(t, tg, which[k], outs[k], "bundle", err);
		outs[k] = -1;
		if (r < 0)
			goto out;
	}
out:
	for (size_t k = 0; k < nb; k++)
		close(bases[k]);
	for (size_t k = 0; outs && k < no; k++)
		if (outs[k] >= 0)
			close(outs[k]);
	if (dfd >= 0)
		close(dfd);
	free(bases);
	free(outs);
	free(which);
	return r;
}

/* A precomputed delta from content held locally. 1 when staged, 0 when
 * no delta applies, -errno. */
static int try_delta(struct ug_term *t, struct ug_target *tg, size_t i, int stgfd,
		     struct ug_error *err)
{
	const struct ug_mfile *f = &tg->m->files[i];

	for (size_t k = 0; k < f->ndeltas; k++) {
		const struct ug_mdelta *d = &f->deltas[k];
		int base, dfd, out, r;

		if (d->memory > mem_available())
			continue;
		base = open_local(t, tg, &d->from, stgfd, NULL);
		if (base < 0)
			continue;
		r = fetch_blob(t, UG_STORE_DELTAS, &d->id, d->size, err);
		if (r == 0)
			r = ug_store_delta_open(t->cache, &d->id, &dfd);
		if (r < 0) {
			close(base);
			if (server_problem(t, r))
				return r;
			continue;
		}
		out = open_staged(stgfd, f->path);
		r = out < 0 ? out : ug_delta_apply(d->codec, base, dfd, out, f->size, d->memory);
		close(base);
		close(dfd);
		ug_store_delta_remove(t->cache, &d->id);
		if (r < 0) {
			if (out >= 0)
				close(out);
			ug_term_log(t, LOG_WARNING, "delta for '%s' does not apply (%s): trying "
				    "another way", f->path, strerror(-r));
			continue;
		}
		return staged(t, tg, i, out, "delta", err) < 0 ? -EBADMSG : 1;
	}
	return 0;
}

/* The installed file at the same path drifted: a delta against what it
 * holds now, computed by the server from its signature. */
static int try_sigdelta(struct ug_term *t, struct ug_target *tg, size_t i, int stgfd,
			struct ug_error *err)
{
	const struct ug_mfile *f = &tg->m->files[i];
	struct ug_tplan *p = tg->plan;
	int base, sig = -1, dfd = -1, out = -1, r;
	uint64_t sig_len = 0, total;

	if (p->curfd < 0 || f->stored < SIGDELTA_MIN)
		return 0;
	base = ug_open_beneath(p->curfd, f->path, O_RDONLY, 0);
	if (base < 0)
		return 0;
	sig = ug_store_tmp_anon(t->cache);
	dfd = ug_store_tmp_anon(t->cache);
	r = sig < 0 ? sig : dfd < 0 ? dfd : ug_delta_rsync_signature(base, sig, &sig_len);
	if (r == 0 && lseek(sig, 0, SEEK_SET) < 0)
		r = -errno;
	if (r == 0) {
		r = ug_client_sigdelta(t->cl, &f->hash, UG_SIG_CONTENT, sig, sig_len, 0,
				       ug_store_stored_max(f->size), dfd, &total, err);
		if (r < 0 && !server_problem(t, r))
			r = 1;  /* the server cannot: take the object */
	}
	if (r == 0 && lseek(dfd, 0, SEEK_SET) < 0)
		r = -errno;
	if (r == 0) {
		out = open_staged(stgfd, f->path);
		r = out < 0 ? out : ug_delta_rsync_apply(base, dfd, out, f->size);
		if (r < 0 && out >= 0)
			close(out);
		if (r < 0 && r != out) {
			ug_term_log(t, LOG_WARNING, "signature delta for '%s' does not apply (%s)",
				    f->path, strerror(-r));
			r = 1;
		}
	}
	close(base);
	if (sig >= 0)
		close(sig);
	if (dfd >= 0)
		close(dfd);
	if (r == 1)
		return 0;
	if (r < 0)
		return r;
	return staged(t, tg, i, out, "signature delta", err) < 0 ? 0 : 1;
}

static int fetch_object(struct ug_term *t, struct ug_target *tg, size_t i, int stgfd,
			struct ug_error *err)
{
	const struct ug_mfile *f = &tg->m->files[i];
	int out, r;

	r = fetch_blob(t, UG_STORE_OBJECTS, &f->hash, ug_store_stored_max(f->size), err);
	if (r < 0)
		return r;
	out = open_staged(stgfd, f->path);
	if (out < 0)
		return ug_error_set(err, out, "cannot create staged '%s': %s", f->path,
				    strerror(-out));
	r = ug_store_object_extract(t->cache, &f->hash, out);
	if (r < 0) {
		close(out);
		if (r != -EBADMSG)
			return staging_error(t, f->path, r, err);
		ug_store_object_remove(t->cache, &f->hash);
		return ug_error_set(err, r, "object of '%s' in '%s/cache' is damaged: removed, "
				    "fetching again", f->path, t->c->state);
	}
	/* the cache keeps pristine config copies only: staged() stores that */
	if (f->cls != UG_CLASS_CONFIG)
		ug_store_object_remove(t->cache, &f->hash);
	return staged(t, tg, i, out, "full object", err);
}

/* Preserve files the terminal already has are carried over by
 * ug_tstage_finish, not fetched. */
static bool carried_over(const struct ug_tplan *p, const struct ug_mfile *f)
{
	struct stat st;

	return f->action == UG_ACTION_PRESERVE && p->curfd >= 0 &&
	       fstatat(p->curfd, f->path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

int ug_tfetch_content(struct ug_term *t, struct ug_target *tg, int stgfd, struct ug_error *err)
{
	struct ug_tplan *p;
	int r;

	if (!tg->plan) {
		r = plan_new(t, tg, &p);
		if (r < 0)
			return ug_error_set(err, r, "out of memory");
		tg->plan = p;
		for (size_t i = 0; i < tg->m->nfiles; i++)
			if (!carried_over(p, &tg->m->files[i]))
				tg->full_bytes += tg->m->files[i].stored;
	}
	p = tg->plan;
	/* 1: what is here already */
	for (size_t i = 0; i < tg->m->nfiles; i++) {
		const char *curpath;
		int fd;

		if (p->done[i] || carried_over(p, &tg->m->files[i]))
			continue;
		fd = open_local(t, tg, &tg->m->files[i].hash, stgfd, &curpath);
		if (fd < 0)
			continue;
		r = place_local(t, tg, i, stgfd, fd, curpath, err);
		if (r < 0)
			return r;
	}
	/* 2: the bundle */
	for (size_t k = 0; t->installed && k < tg->m->nbundles; k++)
		if (tg->m->bundles[k].from == t->installed) {
			r = try_bundle(t, tg, &tg->m->bundles[k], stgfd, err);
			if (r < 0)
				return r;
		}
	/* 3-5: file by file */
	for (size_t i = 0; i < tg->m->nfiles; i++) {
		if (p->done[i] || carried_over(p, &tg->m->files[i]))
			continue;
		r = try_delta(t, tg, i, stgfd, err);
		if (r == 0)
			r = try_sigdelta(t, tg, i, stgfd, err);
		if (r == 0)
			r = fetch_object(t, tg, i, stgfd, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int ug_tfetch_curfd(const struct ug_target *tg)
{
	return tg->plan ? tg->plan->curfd : -1;
}
