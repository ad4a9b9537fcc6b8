/* follow.c - replicate versions from upstream along the chain list. */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delta.h"
#include "follow.h"
#include "mfetch.h"
#include "manifest.h"
#include "publish.h"
#include "relay.h"
#include "rollout-sync.h"
#include "wlog.h"

/* Below this, a damaged object is simply fetched again: a signature and a
 * delta would not save enough to be worth a round trip. */
#define REPAIR_SIGDELTA_MIN (64u << 10)
#define UPSTREAMS_MAX (UG_GROUP_SERVERS_MAX + 1)
/* A daemon's long-poll is sliced so SIGTERM is honoured within this. */
#define WAIT_SLICE_S 5
/* Longest wait for a busy upstream before trying the next one up. */
#define BUSY_WAIT_MAX 30u

struct local {
	uint64_t version;        /* 0: none */
	bool valid;              /* its manifest verifies */
	char *json;
	size_t json_len;
	struct ug_manifest *m;
};

static void local_release(struct local *l)
{
	free(l->json);
	ug_manifest_free(l->m);
	memset(l, 0, sizeof(*l));
}

static bool stopping(const struct ug_follow *f)
{
	return f->stop && *f->stop;
}

static int load_local(struct ug_follow *f, const char *channel, struct local *l)
{
	struct ug_error e = { "" };
	char *sig = NULL;
	size_t sig_len;
	int r;

	memset(l, 0, sizeof(*l));
	r = ug_store_ref_read(f->s, channel, &l->version);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = ug_store_manifest_get(f->s, channel, l->version, &l->json, &l->json_len, &sig, &sig_len);
	if (r == 0)
		r = ug_sign_verify(&f->master_key, UG_SIGN_CONTEXT_MANIFEST, l->json, l->json_len,
				   sig, sig_len, &e);
	if (r == 0)
		r = ug_manifest_parse(l->json, l->json_len, &l->m, &e);
	free(sig);
	if (r < 0) {
		ug_wlog(UG_WLOG_WARN, "manifest %" PRIu64 " of '%s' held here is unusable (%s): "
			"fetching it again", l->version, channel, e.msg[0] ? e.msg : strerror(-r));
		free(l->json);
		l->json = NULL;
		return 0;
	}
	l->valid = true;
	return 0;
}

/* The servers before us in our chain, nearest first, then the master. */
static size_t upstreams(struct ug_follow *f, const struct ug_manifest *m,
			const struct ug_server **out)
{
	const struct ug_sconf *conf = f->conf;
	size_t n = 0, g, pos;

	if (m && m->chains && conf->name) {
		if (ug_cluster_find(m->chains, conf->name, &g, &pos) == 0) {
			for (size_t i = pos; i-- > 0;)
				out[n++] = &m->chains->groups[g].servers[i];
		} else {
			ug_wlog(UG_WLOG_WARN, "the chain list of version %" PRIu64 " does not name "
				"this server '%s': following the master", m->version, conf->name);
		}
	}
	out[n++] = &conf->master;
	return n;
}

static void partial_name(char prefix, const struct ug_hash *h, char *out, size_t n)
{
	char hex[UG_HASH_HEX_LEN + 1];

	ug_hash_hex(h, hex);
	snprintf(out, n, "%c-%s", prefix, hex);
}

/* Download an object (stored form) or a delta into the store, resuming a
 * partial download left by an earlier run. */
static int fetch_blob(struct ug_follow *f, struct ug_client *c, enum ug_store_kind kind,
		      const struct ug_hash *id, uint64_t max, struct ug_error *err)
{
	uint64_t resumed;
	int r = ug_fetch_blob(c, f->s, kind, id, max, &resumed, err);

	if (r == 0 && resumed)
		ug_wlog(UG_WLOG_DEBUG, "resumed a download at byte %" PRIu64, resumed);
	return r;
}

/* Put out_fd's content (written from 0) as an object and check its name. */
static int put_rebuilt(struct ug_follow *f, int out_fd, const struct ug_hash *want,
		       struct ug_error *err)
{
	struct ug_hash got;
	int r;

	if (lseek(out_fd, 0, SEEK_SET) < 0)
		return -errno;
	r = ug_store_object_put_fd(f->s, out_fd, &got, NULL, NULL);
	if (r < 0)
		return ug_error_set(err, r, "cannot store a rebuilt object: %s", strerror(-r));
	if (!ug_hash_eq(&got, want)) {
		/* a stray object of other content is harmless; do not keep it */
		ug_store_object_remove(f->s, &got);
		return ug_error_set(err, -EBADMSG, "a delta rebuilt content that does not match "
				    "the manifest's hash");
	}
	return 0;
}

static int apply_file_delta(struct ug_follow *f, const struct ug_mfile *mf,
			    const struct ug_mdelta *d, struct ug_error *err)
{
	int bfd = -1, dfd = -1, ofd = -1, r;

	r = ug_store_object_tmp(f->s, &d->from, &bfd);
	if (r == 0)
		r = ug_store_delta_open(f->s, &d->id, &dfd);
	if (r == 0) {
		ofd = ug_store_tmp_anon(f->s);
		r = ofd < 0 ? ofd : 0;
	}
	if (r == 0) {
		r = ug_delta_apply(d->codec, bfd, dfd, ofd, mf->size, d->memory);
		if (r < 0)
			ug_error_set(err, r, "delta for '%s' does not apply: %s", mf->path, strerror(-r));
	}
	if (r == 0)
		r = put_rebuilt(f, ofd, &mf->hash, err);
	if (bfd >= 0)
		close(bfd);
	if (dfd >= 0)
		close(dfd);
	if (ofd >= 0)
		close(ofd);
	return r;
}

/* Rebuild a bundle's missing targets from its bases. */
static int apply_bundle(struct ug_follow *f, const struct ug_mbundle *b, unsigned *rebuilt,
			struct ug_error *err)
{
	int bfd = -1, dfd = -1, one = -1, r = 0;
	int *ofds = NULL;
	uint64_t off = 0;

	bfd = ug_store_tmp_anon(f->s);
	if (bfd < 0)
		return bfd;
	for (size_t i = 0; r == 0 && i < b->nbases; i++)
		r = ug_store_object_extract(f->s, &b->bases[i], bfd);
	if (r == 0)
		r = ug_store_delta_open(f->s, &b->id, &dfd);
	if (r == 0) {
		one = ug_store_tmp_anon(f->s);
		r = one < 0 ? one : 0;
	}
	if (r == 0) {
		ofds = calloc(b->ntargets, sizeof(*ofds));
		r = ofds ? 0 : -ENOMEM;
	}
	if (r == 0) {
		for (size_t i = 0; i < b->ntargets; i++)
			ofds[i] = one;
		r = ug_delta_bundle_apply(&bfd, 1, dfd, ofds, b->target_sizes, b->ntargets,
					  b->memory);
		if (r < 0)
			ug_error_set(err, r, "bundle from version %" PRIu64 " does not apply: %s",
				     b->from, strerror(-r));
	}
	for (size_t i = 0; r == 0 && i < b->ntargets; off += b->target_sizes[i], i++) {
		int tfd;
		loff_t in = (loff_t)off;
		uint64_t left = b->target_sizes[i];

		if (ug_store_object_exists(f->s, &b->targets[i]))
			continue;
		tfd = ug_store_tmp_anon(f->s);
		if (tfd < 0) {
			r = tfd;
			break;
		}
		while (left > 0) {
			ssize_t n = copy_file_range(one, &in, tfd, NULL, left, 0);
			if (n <= 0) {
				r = n < 0 ? -errno : -EIO;
				break;
			}
			left -= (uint64_t)n;
		}
		if (r == 0)
			r = put_rebuilt(f, tfd, &b->targets[i], err);
		close(tfd);
		if (r == 0)
			(*rebuilt)++;
	}
	free(ofds);
	close(bfd);
	if (dfd >= 0)
		close(dfd);
	if (one >= 0)
		close(one);
	return r;
}

static bool bases_held(struct ug_follow *f, const struct ug_mbundle *b)
{
	for (size_t i = 0; i < b->nbases; i++)
		if (!ug_store_object_exists(f->s, &b->bases[i]))
			return false;
	return true;
}

static bool targets_missing(struct ug_follow *f, const struct ug_mbundle *b)
{
	for (size_t i = 0; i < b->ntargets; i++)
		if (!ug_store_object_exists(f->s, &b->targets[i]))
			return true;
	return false;
}

/* With scrub, a delta that fails its hash is removed (so it is fetched
 * or made again). */
static void scrub_delta(struct ug_follow *f, const struct ug_hash *id, const char *what)
{
	if (ug_store_delta_exists(f->s, id) && ug_store_delta_verify(f->s, id, NULL) < 0) {
		ug_wlog(UG_WLOG_WARN, "%s is damaged: fetching it again", what);
		ug_store_delta_remove(f->s, id);
		f->repaired++;
	}
}

/* The bundles the manifest names: the cheapest way to rebuild objects. */
static int fetch_bundles(struct ug_follow *f, struct ug_client *c, const struct ug_manifest *m,
			 bool scrub, struct ug_error *err)
{
	int r;

	for (size_t i = 0; i < m->nbundles && !stopping(f); i++) {
		const struct ug_mbundle *b = &m->bundles[i];
		if (scrub)
			scrub_delta(f, &b->id, "a bundle");
		if (ug_store_delta_exists(f->s, &b->id))
			continue;
		r = fetch_blob(f, c, UG_STORE_DELTAS, &b->id, b->size, err);
		if (r < 0)
			return r;
	}
	return stopping(f) ? -EINTR : 0;
}

static bool bundle_target(const struct ug_manifest *m, const struct ug_hash *h)
{
	for (size_t i = 0; i < m->nbundles; i++)
		for (size_t j = 0; j < m->bundles[i].ntargets; j++)
			if (ug_hash_eq(&m->bundles[i].targets[j], h))
				return true;
	return false;
}

/* Make a per-file delta here instead of fetching it: publish made a file
 * a bundle covers at the fallback level, single-threaded, with a window
 * derived from the sizes, and zstd is deterministic for the same inputs
 * and parameters. Whether the bytes came out the same is decided by their
 * BLAKE2b, which the signed manifest names: a mismatch (another zstd, or
 * another fallback-level on the master) only means fetching it after
 * all. Returns 0 when the delta is now stored. */
static int regenerate_delta(struct ug_follow *f, const struct ug_manifest *m,
			    const struct ug_mfile *mf, const struct ug_mdelta *d)
{
	struct ug_delta_params p;
	struct ug_hash got;
	uint64_t size = 0, bsize = 0;
	int bfd = -1, tfd = -1, ofd = -1, r;

	if (d->codec != UG_CODEC_ZSTD_PREFIX || !bundle_target(m, &mf->hash) ||
	    !ug_store_object_exists(f->s, &d->from) || !ug_store_object_exists(f->s, &mf->hash) ||
	    ug_store_object_stat(f->s, &d->from, NULL, &bsize) < 0 ||
	    bsize + mf->size > f->s->cfg.window)
		return -ENOENT;
	ug_delta_params_default(&p);
	p.level = f->s->cfg.fallback_level;
	p.window = f->s->cfg.window;
	p.threads = 0;
	r = ug_store_object_tmp(f->s, &d->from, &bfd);
	if (r == 0)
		r = ug_store_object_tmp(f->s, &mf->hash, &tfd);
	if (r == 0) {
		ofd = ug_store_tmp_anon(f->s);
		r = ofd < 0 ? ofd : 0;
	}
	if (r == 0)
		r = ug_delta_zstd_create(bfd, tfd, ofd, &p, &size, NULL);
	if (r == 0 && size != d->size)
		r = -EBADMSG;
	if (r == 0 && lseek(ofd, 0, SEEK_SET) < 0)
		r = -errno;
	if (r == 0)
		r = ug_store_delta_put_fd(f->s, ofd, &got, NULL);
	if (r == 0 && !ug_hash_eq(&got, &d->id)) {
		ug_store_delta_remove(f->s, &got);
		r = -EBADMSG;
	}
	if (bfd >= 0)
		close(bfd);
	if (tfd >= 0)
		close(tfd);
	if (ofd >= 0)
		close(ofd);
	return r;
}

/* Every per-file delta the manifest names, so this server can serve the
 * terminals of every older version: made here when that reproduces the
 * master's bytes, fetched otherwise. */
static int complete_deltas(struct ug_follow *f, struct ug_client *c, const struct ug_manifest *m,
			   bool scrub, unsigned *ret_made, struct ug_error *err)
{
	unsigned made = 0;
	int r;

	for (size_t i = 0; i < m->nfiles && !stopping(f); i++) {
		const struct ug_mfile *mf = &m->files[i];
		for (size_t j = 0; j < mf->ndeltas && !stopping(f); j++) {
			const struct ug_mdelta *d = &mf->deltas[j];
			char what[UG_PATH_MAX + 32];

			snprintf(what, sizeof(what), "a delta for '%s'", mf->path);
			if (scrub)
				scrub_delta(f, &d->id, what);
			if (ug_store_delta_exists(f->s, &d->id))
				continue;
			if (regenerate_delta(f, m, mf, d) == 0) {
				made++;
				continue;
			}
			r = fetch_blob(f, c, UG_STORE_DELTAS, &d->id, d->size, err);
			if (r < 0)
				return r;
		}
	}
	if (stopping(f))
		return -EINTR;
	*ret_made = made;
	return 0;
}

/* Re-fetch a damaged object: a signature of what can still be decoded
 * goes up, a delta comes back, so a flipped bit in a big file costs a
 * little, not the whole file. */
static int repair_object(struct ug_follow *f, struct ug_client *c, const struct ug_mfile *mf,
			 struct ug_error *err)
{
	int sfd = -1, sigfd = -1, dfd = -1, ofd = -1, r;
	uint64_t salvaged, sig_len = 0, before = c->conn->bytes_in;
	char name[80];

	sfd = ug_store_tmp_anon(f->s);
	if (sfd < 0)
		return sfd;
	(void)ug_store_object_extract(f->s, &mf->hash, sfd);   /* what decodes */
	salvaged = (uint64_t)lseek(sfd, 0, SEEK_CUR);
	ug_store_object_remove(f->s, &mf->hash);
	f->repaired++;
	if (salvaged < REPAIR_SIGDELTA_MIN) {
		close(sfd);
		r = fetch_blob(f, c, UG_STORE_OBJECTS, &mf->hash, ug_store_stored_max(mf->size), err);
		goto done;
	}
	sigfd = ug_store_tmp_anon(f->s);
	r = sigfd < 0 ? sigfd : ug_delta_rsync_signature(sfd, sigfd, &sig_len);
	if (r == 0 && lseek(sigfd, 0, SEEK_SET) < 0)
		r = -errno;
	partial_name('r', &mf->hash, name, sizeof(name));
	ug_store_partial_remove(f->s, name);
	if (r == 0) {
		dfd = ug_store_tmp_anon(f->s);
		r = dfd < 0 ? dfd : 0;
	}
	if (r == 0)
		r = ug_client_sigdelta(c, &mf->hash, UG_SIG_CONTENT, sigfd, sig_len, 0,
				       ug_store_stored_max(mf->size), dfd, NULL, err);
	if (r == 0 && lseek(dfd, 0, SEEK_SET) < 0)
		r = -errno;
	if (r == 0) {
		ofd = ug_store_tmp_anon(f->s);
		r = ofd < 0 ? ofd : ug_delta_rsync_apply(sfd, dfd, ofd, mf->size);
	}
	if (r == 0)
		r = put_rebuilt(f, ofd, &mf->hash, err);
	close(sfd);
	if (sigfd >= 0)
		close(sigfd);
	if (dfd >= 0)
		close(dfd);
	if (ofd >= 0)
		close(ofd);
	if (r < 0 && !c->broken) {
		ug_wlog(UG_WLOG_WARN, "repair of '%s' by signature delta failed (%s): fetching it whole",
			mf->path, err && err->msg[0] ? err->msg : strerror(-r));
		r = fetch_blob(f, c, UG_STORE_OBJECTS, &mf->hash, ug_store_stored_max(mf->size), err);
	}
done:
	if (r == 0)
		ug_wlog(UG_WLOG_INFO, "repaired object of '%s' from %s: %" PRIu64 " bytes for %" PRIu64
			" bytes of content", mf->path, c->peer, c->conn->bytes_in - before, mf->size);
	return r;
}

/* Make every object of m present (and, with scrub, sound): rebuild from
 * bundles and deltas whose bases are held, fetch the rest. */
static int fetch_objects(struct ug_follow *f, struct ug_client *c, const struct ug_manifest *m,
			 bool scrub, unsigned *ret_rebuilt, unsigned *ret_fetched,
			 struct ug_error *err)
{
	unsigned rebuilt = 0, fetched = 0;
	int r;

	if (scrub) {
		for (size_t i = 0; i < m->nfiles && !stopping(f); i++) {
			const struct ug_mfile *mf = &m->files[i];
			struct ug_error e = { "" };
			if (!ug_store_object_exists(f->s, &mf->hash) ||
			    ug_store_object_verify(f->s, &mf->hash, &e) == 0)
				continue;
			ug_wlog(UG_WLOG_WARN, "object of '%s' is damaged (%s): repairing", mf->path, e.msg);
			r = repair_object(f, c, mf, err);
			if (r < 0)
				return r;
		}
	}
	for (size_t i = 0; i < m->nbundles && !stopping(f); i++) {
		const struct ug_mbundle *b = &m->bundles[i];
		if (!targets_missing(f, b) || !bases_held(f, b) || b->memory > UG_DELTA_WINDOW_MAX * 2)
			continue;
		r = apply_bundle(f, b, &rebuilt, err);
		if (r < 0)
			ug_wlog(UG_WLOG_WARN, "%s: using per-file deltas instead", err->msg);
	}
	for (size_t i = 0; i < m->nfiles && !stopping(f); i++) {
		const struct ug_mfile *mf = &m->files[i];
		bool done = false;

		if (ug_store_object_exists(f->s, &mf->hash))
			continue;
		for (size_t j = 0; j < mf->ndeltas && !done; j++) {
			const struct ug_mdelta *d = &mf->deltas[j];
			if (!ug_store_object_exists(f->s, &d->from) || d->memory > UG_DELTA_WINDOW_MAX * 2)
				continue;
			if (!ug_store_delta_exists(f->s, &d->id)) {
				r = fetch_blob(f, c, UG_STORE_DELTAS, &d->id, d->size, err);
				if (r < 0)
					return r;
			}
			r = apply_file_delta(f, mf, d, err);
			if (r == 0) {
				done = true;
				rebuilt++;
			} else {
				ug_wlog(UG_WLOG_WARN, "%s", err->msg);
			}
		}
		if (done)
			continue;
		r = fetch_blob(f, c, UG_STORE_OBJECTS, &mf->hash, ug_store_stored_max(mf->size), err);
		if (r < 0)
			return r;
		fetched++;
	}
	if (stopping(f))
		return -EINTR;
	*ret_rebuilt = rebuilt;
	*ret_fetched = fetched;
	return 0;
}

/* Fetch N's signature and manifest (as a delta from ours when possible),
 * check them. */
static int fetch_manifest(struct ug_follow *f, struct ug_client *c, const char *channel,
			  uint64_t version, const struct local *l, char **ret_json,
			  size_t *ret_len, char **ret_sig, size_t *ret_sig_len,
			  struct ug_manifest **ret_m, struct ug_error *err)
{
	struct ug_mfetch q = { .channel = channel, .version = version, .key = &f->master_key };
	int r;

	if (l->valid && l->version < version) {
		q.have_json = l->json;
		q.have_len = l->json_len;
		q.have_version = l->version;
	}
	r = ug_mfetch(c, &q, err);
	if (r < 0)
		return r;
	/* the manifest delta just used is one to serve: keep it (it is
	 * checked now: it rebuilt the signed document) */
	if (q.mdelta)
		ug_store_mdelta_put(f->s, channel, q.mdelta_from, version, q.mdelta, q.mdelta_len);
	*ret_json = q.json;
	*ret_len = q.json_len;
	*ret_sig = q.sig;
	*ret_sig_len = q.sig_len;
	*ret_m = q.m;
	free(q.mdelta);
	return 0;
}

static int make_mdelta(struct ug_follow *f, const char *channel, uint64_t from,
		       uint64_t version, const char *json, size_t json_len)
{
	char *old = NULL, *sig = NULL;
	size_t old_len = 0, sig_len, full = 0;
	uint8_t *z;
	size_t zl;
	int r;

	if (from == 0)
		return ug_publish_mdelta(f->s, channel, 0, version, json, json_len, NULL, 0, 0, NULL);
	r = ug_store_manifest_get(f->s, channel, from, &old, &old_len, &sig, &sig_len);
	free(sig);
	if (r < 0)
		return r;
	/* stored only when smaller than the compressed document, as publish
	 * does; a larger one is "made" too: there is nothing to fetch */
	if (ug_store_mdelta_get(f->s, channel, 0, version, &z, &zl) == 0) {
		full = zl;
		free(z);
	}
	r = ug_publish_mdelta(f->s, channel, from, version, json, json_len, old, old_len, full, NULL);
	free(old);
	return r;
}

/* Manifest deltas to this version from the ones terminals may hold. */
static void fetch_mdeltas(struct ug_follow *f, struct ug_client *c, const char *channel,
			  uint64_t version, const char *json, size_t json_len)
{
	struct ug_error e = { "" };
	uint64_t *v = NULL;
	size_t n = 0;
	unsigned k = f->s->cfg.keep_deltas;

	if (ug_client_versions(c, channel, &v, &n, &e) < 0)
		return;
	/* from the newest K versions before this one, and "from 0" */
	for (size_t i = n + 1; i-- > 0 && k > 0;) {
		uint64_t from = i < n ? v[i] : 0;
		struct ug_blob_ref b = { .kind = UG_BLOB_MDELTA, .channel = channel,
					 .version = version, .from = from };
		char *md;
		size_t md_len;

		uint8_t *have;
		size_t have_len;

		if (from >= version)
			continue;
		if (from > 0)
			k--;
		if (ug_store_mdelta_get(f->s, channel, from, version, &have, &have_len) == 0) {
			free(have);
			continue;
		}
		/* made here when the older document is held: not signed, and
		 * checked by whoever uses it against the signature of N */
		if (make_mdelta(f, channel, from, version, json, json_len) == 0)
			continue;
		if (ug_client_get_buf(c, &b, UG_MANIFEST_MAX, &md, &md_len, &e) < 0) {
			if (c->broken)
				break;
			continue;
		}
		ug_store_mdelta_put(f->s, channel, from, version, md, md_len);
		free(md);
	}
	free(v);
}

static int replicate(struct ug_follow *f, struct ug_client *c, const char *channel,
		     uint64_t version, const struct local *l, struct ug_error *err)
{
	char *json = NULL, *sig = NULL;
	size_t json_len = 0, sig_len = 0;
	struct ug_manifest *m = NULL;
	unsigned rebuilt = 0, fetched = 0, made = 0;
	uint64_t before = c->conn->bytes_in;
	int r;

	r = fetch_manifest(f, c, channel, version, l, &json, &json_len, &sig, &sig_len, &m, err);
	if (r < 0)
		return r;
	r = fetch_bundles(f, c, m, false, err);
	if (r == 0)
		r = fetch_objects(f, c, m, false, &rebuilt, &fetched, err);
	if (r == 0)
		r = complete_deltas(f, c, m, false, &made, err);
	if (r == 0)
		fetch_mdeltas(f, c, channel, version, json, json_len);
	if (r == 0)
		r = ug_store_manifest_put(f->s, channel, version, json, json_len, sig, sig_len);
	/* the ref moves last: only now is the version served downstream */
	if (r == 0)
		r = ug_store_ref_write(f->s, channel, version);
	if (r == 0) {
		f->updated++;
		ug_wlog(UG_WLOG_INFO, "'%s' is now at version %" PRIu64 " (from %s: %" PRIu64
			" bytes; %u objects rebuilt from deltas, %u fetched whole; %u deltas made "
			"here)", channel, version, c->peer, c->conn->bytes_in - before, rebuilt,
			fetched, made);
	} else if (r == -EINTR) {
		ug_error_set(err, r, "interrupted while fetching version %" PRIu64 " of '%s'",
			     version, channel);
	} else if (err && !err->msg[0]) {
		ug_error_set(err, r, "cannot store version %" PRIu64 " of '%s': %s", version, channel,
			     strerror(-r));
	}
	ug_manifest_free(m);
	free(json);
	free(sig);
	return r;
}

/* Check the held version is whole (and sound, with scrub); repair. */
static int check_held(struct ug_follow *f, struct ug_client *c, const struct local *l,
		      bool scrub, struct ug_error *err)
{
	unsigned rebuilt = 0, fetched = 0, made = 0, repaired = f->repaired;
	int r;

	r = fetch_bundles(f, c, l->m, scrub, err);
	if (r == 0)
		r = fetch_objects(f, c, l->m, scrub, &rebuilt, &fetched, err);
	if (r == 0)
		r = complete_deltas(f, c, l->m, scrub, &made, err);
	if (r == 0 && (rebuilt || fetched))
		ug_wlog(UG_WLOG_WARN, "version %" PRIu64 " of '%s' was missing %u objects: %u rebuilt, "
			"%u fetched from %s", l->version, l->m->channel, rebuilt + fetched, rebuilt,
			fetched, c->peer);
	f->repaired += rebuilt + fetched;
	if (r == 0 && scrub && f->repaired == repaired)
		ug_wlog(UG_WLOG_DEBUG, "scrub of version %" PRIu64 " found nothing wrong", l->version);
	return r;
}

/* The master's newest manifest of channel (verified), for its chain list;
 * NULL when the master cannot be asked (then the master is followed). */
static struct ug_manifest *bootstrap(struct ug_follow *f, const char *channel,
				     const struct local *l)
{
	struct ug_client *c = NULL;
	struct ug_error e = { "" };
	struct ug_manifest *m = NULL;
	char *json = NULL, *sig = NULL;
	size_t json_len, sig_len;
	uint64_t v = 0;

	if (!f->conf->name || ug_client_open(&f->conf->master, &f->copts, &c, NULL, &e) < 0)
		return NULL;
	if (ug_client_ref(c, channel, &v, &e) == 0 && v > 0 &&
	    fetch_manifest(f, c, channel, v, l, &json, &json_len, &sig, &sig_len, &m, &e) == 0)
		ug_wlog(UG_WLOG_DEBUG, "chain list from the master's version %" PRIu64, v);
	else if (e.msg[0])
		ug_wlog(UG_WLOG_WARN, "cannot learn the chain list from the master: %s", e.msg);
	ug_client_free(c);
	free(json);
	free(sig);
	return m;
}

static int sync_channel(struct ug_follow *f, const char *channel, int wait_s, bool scrub,
			struct ug_error *err)
{
	const struct ug_server *ups[UPSTREAMS_MAX];
	struct ug_manifest *boot = NULL;
	struct local l;
	size_t n;
	int r, last = -EHOSTUNREACH;

	r = load_local(f, channel, &l);
	if (r < 0)
		return ug_error_set(err, r, "cannot read version of '%s': %s", channel, strerror(-r));
	if (!l.valid) {
		/* a fresh server learns its place in the chain from the master's
		 * newest manifest, so that even its first copy comes from its
		 * predecessor and the master sends one copy per group */
		boot = bootstrap(f, channel, &l);
	}
	n = upstreams(f, l.valid ? l.m : boot, ups);
	for (size_t i = 0; i < n && !stopping(f); i++) {
		struct ug_client *c = NULL;
		struct ug_error e = { "" };
		uint64_t theirs = 0;
		uint32_t retry = 0;
		char addr[300] = "-";

		if (ups[i]->host)
			ug_server_format_address(ups[i], addr, sizeof(addr));
		r = ug_client_open(ups[i], &f->copts, &c, &retry, &e);
		if (r == -EBUSY && retry > 0) {
			/* busy is not down: wait as told, once, before loading the
			 * servers further up with our traffic */
			unsigned s = retry > BUSY_WAIT_MAX ? BUSY_WAIT_MAX : retry;
			ug_wlog(UG_WLOG_INFO, "%s; waiting %u s", e.msg, s);
			for (unsigned t = 0; t < s * 10 && !stopping(f); t++)
				usleep(100 * 1000);
			e.msg[0] = '\0';
			r = ug_client_open(ups[i], &f->copts, &c, &retry, &e);
		}
		if (r < 0) {
			if (i + 1 < n)
				ug_wlog(UG_WLOG_WARN, "cannot use upstream '%s' (%s): %s; trying the "
					"next one up", ups[i]->name, addr, e.msg);
			last = ug_error_set(err, r, "cannot use upstream '%s' (%s): %s", ups[i]->name,
					    addr, e.msg);
			continue;
		}
		r = ug_client_ref(c, channel, &theirs, &e);
		if (r == -ENOENT && !l.valid) {
			/* nothing anywhere yet: wait for the first version below */
			r = 0;
			theirs = 0;
		}
		/* a fresh server long-polls too (l.version is 0), instead of
		 * asking again every few seconds until the first publish */
		if (r == 0 && wait_s > 0 && (l.valid || theirs == 0) && theirs <= l.version) {
			/* long-poll in slices so that SIGTERM is seen promptly */
			for (int waited = 0; r == 0 && waited < wait_s && theirs <= l.version &&
			     !stopping(f); waited += WAIT_SLICE_S)
				r = ug_client_wait(c, channel, l.version,
						   wait_s - waited < WAIT_SLICE_S ? (unsigned)(wait_s - waited)
									 : WAIT_SLICE_S, &theirs, &e);
		}
		if (r == 0) {
			if (theirs > l.version || (!l.valid && theirs == l.version && theirs > 0)) {
				r = replicate(f, c, channel, theirs, &l, &e);
				/* a scrub still checks what was held before */
				if (r == 0 && scrub) {
					local_release(&l);
					r = load_local(f, channel, &l);
				}
			} else if (theirs < l.version) {
				ug_wlog(UG_WLOG_INFO, "%s offers version %" PRIu64 " of '%s', older than "
					"the %" PRIu64 " held here: not taken", c->peer, theirs, channel,
					l.version);
			}
		}
		if (r == 0 && l.valid && (theirs <= l.version || scrub))
			r = check_held(f, c, &l, scrub, &e);
		/* every round, long-poll or not: a rollout changes without a
		 * new version (rollout-sync.h) */
		if (r == 0 && !stopping(f))
			ug_rollout_sync(f->s, &f->master_key, c, channel);
		/* in sync with this upstream: pass our reports up to it */
		if (r == 0 && !stopping(f))
			ug_relay_to(f->s, c, f->stop);
		ug_client_free(c);
		if (r == 0) {
			local_release(&l);
			ug_manifest_free(boot);
			return 0;
		}
		/* the last failure is the caller's to report; when stopping
		 * nothing more is tried */
		if (stopping(f))
			break;
		if (i + 1 < n)
			ug_wlog(r == -EKEYREJECTED ? UG_WLOG_ERR : UG_WLOG_WARN,
				"%s; trying the next one up", e.msg);
		last = ug_error_set(err, r, "%s", e.msg);
	}
	local_release(&l);
	ug_manifest_free(boot);
	if (stopping(f))
		return ug_error_set(err, -EINTR, "stopped");
	return last;
}

int ug_follow_round(struct ug_follow *f, int wait_s, bool scrub, struct ug_error *err)
{
	static const char *const dflt[] = { "stable" };
	const char *const *ch = f->conf->nchannels ? (const char *const *)f->conf->channels : dflt;
	unsigned nch = f->conf->nchannels ? f->conf->nchannels : 1;
	int rc = 0;

	f->updated = f->repaired = 0;
	/* a long-poll is for one channel: with several, poll them in turn */
	if (nch > 1)
		wait_s = 0;
	for (unsigned i = 0; i < nch && !stopping(f); i++) {
		struct ug_error e = { "" };
		int r = sync_channel(f, ch[i], wait_s, scrub, &e);
		if (r < 0 && rc == 0)
			rc = ug_error_set(err, r, "'%s': %s", ch[i], e.msg);
	}
	return rc;
}
