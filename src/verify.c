/* verify.c - check everything in a repo, read-only. */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delta.h"
#include "manifest.h"
#include "rollout.h"
#include "verify.h"

struct vctx {
	struct ug_store *s;
	const struct ug_pubkey *pk;
	ug_verify_report_fn report;
	void *ctx;
	struct ug_verify_stats st;
	/* deltas already checked (a delta is listed by several files) */
	struct ug_hash *done;
	size_t ndone, done_alloc;
};

static void problem(struct vctx *v, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void problem(struct vctx *v, const char *what, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v->st.problems++;
	if (v->report)
		v->report(v->ctx, what, msg);
}

static bool seen(struct vctx *v, const struct ug_hash *id)
{
	for (size_t i = 0; i < v->ndone; i++)
		if (ug_hash_eq(&v->done[i], id))
			return true;
	if (v->ndone == v->done_alloc) {
		size_t na = v->done_alloc ? v->done_alloc * 2 : 64;
		struct ug_hash *nd = reallocarray(v->done, na, sizeof(*nd));
		if (!nd)
			return false;
		v->done = nd;
		v->done_alloc = na;
	}
	v->done[v->ndone++] = *id;
	return false;
}

/* Apply a file delta to its base and compare the result with the target. */
static void check_file_delta(struct vctx *v, const char *what, const struct ug_mfile *f,
			     const struct ug_mdelta *d)
{
	struct ug_hash got;
	uint64_t size = 0;
	int bfd = -1, dfd = -1, ofd = -1, r;

	if (seen(v, &d->id))
		return;
	v->st.deltas++;
	r = ug_store_object_tmp(v->s, &d->from, &bfd);
	if (r < 0) {
		problem(v, what, "base object of delta for '%s' is unusable: %s", f->path, strerror(-r));
		return;
	}
	r = ug_store_delta_open(v->s, &d->id, &dfd);
	if (r == 0) {
		ofd = ug_store_tmp_anon(v->s);
		r = ofd < 0 ? ofd : 0;
	}
	if (r == 0) {
		r = ug_delta_apply(d->codec, bfd, dfd, ofd, f->size, UG_DELTA_WINDOW_MAX * 2);
	}
	if (r == 0 && lseek(ofd, 0, SEEK_SET) == 0)
		r = ug_hash_fd(ofd, &got, NULL, &size);
	if (r < 0) {
		char hex[UG_HASH_HEX_LEN + 1];
		ug_hash_hex(&d->id, hex);
		problem(v, what, "delta %s for '%s' is %s", hex, f->path,
			r == -ENOENT ? "missing" : r == -EBADMSG ? "corrupt" : strerror(-r));
	} else if (size != f->size || !ug_hash_eq(&got, &f->hash)) {
		char hex[UG_HASH_HEX_LEN + 1];
		ug_hash_hex(&d->id, hex);
		problem(v, what, "delta %s for '%s' does not reproduce its target", hex, f->path);
	}
	if (bfd >= 0)
		close(bfd);
	if (dfd >= 0)
		close(dfd);
	if (ofd >= 0)
		close(ofd);
}

static void check_bundle(struct vctx *v, const char *what, const struct ug_mbundle *b)
{
	int bfd = -1, dfd = -1, r = 0;
	int *ofds = NULL;
	char hex[UG_HASH_HEX_LEN + 1];

	ug_hash_hex(&b->id, hex);
	if (seen(v, &b->id))
		return;
	v->st.bundles++;
	bfd = ug_store_tmp_anon(v->s);
	if (bfd < 0)
		r = bfd;
	for (size_t i = 0; r == 0 && i < b->nbases; i++)
		r = ug_store_object_extract(v->s, &b->bases[i], bfd);
	if (r < 0) {
		problem(v, what, "bundle %s: a base object is unusable: %s", hex, strerror(-r));
		goto out;
	}
	ofds = calloc(b->ntargets, sizeof(*ofds));
	if (!ofds) {
		problem(v, what, "bundle %s: out of memory", hex);
		goto out;
	}
	for (size_t i = 0; i < b->ntargets; i++)
		ofds[i] = -1;
	/* all targets go to one file: the codec splits by size, we check each */
	{
		int one = ug_store_tmp_anon(v->s);
		uint64_t off = 0;

		if (one < 0) {
			problem(v, what, "bundle %s: %s", hex, strerror(-one));
			goto out;
		}
		for (size_t i = 0; i < b->ntargets; i++)
			ofds[i] = one;
		r = ug_store_delta_open(v->s, &b->id, &dfd);
		if (r == 0)
			r = ug_delta_bundle_apply(&bfd, 1, dfd, ofds, b->target_sizes, b->ntargets,
						  UG_DELTA_WINDOW_MAX * 2);
		if (r < 0) {
			problem(v, what, "bundle %s is %s", hex,
				r == -ENOENT ? "missing" : r == -EBADMSG ? "corrupt" : strerror(-r));
		} else {
			for (size_t i = 0; i < b->ntargets; i++) {
				struct ug_hash got;
				uint8_t *buf = malloc(b->target_sizes[i] ? b->target_sizes[i] : 1);
				if (!buf || pread(one, buf, b->target_sizes[i], (off_t)off) !=
					(ssize_t)b->target_sizes[i]) {
					free(buf);
					problem(v, what, "bundle %s: cannot read its output", hex);
					break;
				}
				ug_hash_buf(buf, b->target_sizes[i], &got, NULL);
				free(buf);
				off += b->target_sizes[i];
				if (!ug_hash_eq(&got, &b->targets[i])) {
					problem(v, what, "bundle %s does not reproduce target %zu", hex, i);
					break;
				}
			}
		}
		close(one);
	}
out:
	free(ofds);
	if (bfd >= 0)
		close(bfd);
	if (dfd >= 0)
		close(dfd);
}

/* The signed rollout document of a version, if it has one: a bad one
 * makes terminals and servers fall back to the manifest's rollout. */
static void check_rollout(struct vctx *v, const char *what, const char *channel, uint64_t ver)
{
	struct ug_rollout_doc *doc = NULL;
	struct ug_error e = { "" };
	char *text = NULL, *sig = NULL;
	size_t tl = 0, sl = 0;
	int r;

	r = ug_store_rollout_get(v->s, channel, ver, &text, &tl, &sig, &sl);
	if (r == -ENOENT)
		return;
	if (r < 0)
		problem(v, what, "rollout document: %s", r == -EKEYREJECTED
			? "its signature file is missing" : strerror(-r));
	else if (ug_rollout_doc_verify(v->pk, channel, ver, text, tl, sig, sl, &doc, &e) < 0)
		problem(v, what, "rollout document: %s", e.msg);
	ug_rollout_doc_free(doc);
	free(text);
	free(sig);
}

static void check_manifest(struct vctx *v, const char *channel, uint64_t ver,
			   const uint64_t *versions, size_t nversions)
{
	char what[UG_CHANNEL_MAX + 48];
	char *json = NULL, *sig = NULL;
	size_t jl, sl;
	struct ug_manifest *m = NULL;
	struct ug_error e = { "" };
	int r;

	snprintf(what, sizeof(what), "manifest %s/%" PRIu64, channel, ver);
	v->st.manifests++;
	if (!v->pk) {
		problem(v, what, "cannot be verified: no trusted public key");
		return;
	}
	r = ug_store_manifest_get(v->s, channel, ver, &json, &jl, &sig, &sl);
	if (r < 0) {
		problem(v, what, "%s", r == -EKEYREJECTED ? "signature file is missing" : strerror(-r));
		return;
	}
	r = ug_sign_verify(v->pk, UG_SIGN_CONTEXT_MANIFEST, json, jl, sig, sl, &e);
	if (r < 0) {
		problem(v, what, "bad signature: %s", e.msg);
		goto out;
	}
	r = ug_manifest_parse(json, jl, &m, &e);
	if (r < 0) {
		problem(v, what, "%s", e.msg);
		goto out;
	}
	if (m->version != ver || strcmp(m->channel, channel) != 0)
		problem(v, what, "document says it is %s/%" PRIu64, m->channel, m->version);
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct ug_mfile *f = &m->files[i];
		if (!ug_store_object_exists(v->s, &f->hash)) {
			problem(v, what, "object for '%s' is missing", f->path);
			continue;
		}
		for (size_t d = 0; d < f->ndeltas; d++)
			check_file_delta(v, what, f, &f->deltas[d]);
	}
	for (size_t b = 0; b < m->nbundles; b++)
		check_bundle(v, what, &m->bundles[b]);
	check_rollout(v, what, channel, ver);
	/* manifest deltas stored for this version */
	/* i == nversions: "from 0", the manifest compressed on its own */
	for (size_t i = 0; i <= nversions; i++) {
		uint64_t from = i < nversions ? versions[i] : 0;
		uint8_t *d = NULL, *out = NULL;
		size_t dl, ol;
		char *old = NULL;
		size_t oldl = 0;

		if (from >= ver)
			continue;
		r = ug_store_mdelta_get(v->s, channel, from, ver, &d, &dl);
		if (r == -ENOENT)
			continue;
		v->st.mdeltas++;
		if (r == 0 && from > 0)
			r = ug_store_manifest_get(v->s, channel, from, &old, &oldl, NULL, NULL);
		if (r == 0)
			r = ug_zstd_decompress_buf(d, dl, old, oldl, UG_MANIFEST_MAX, &out, &ol);
		if (r < 0)
			problem(v, what, "manifest delta from %" PRIu64 " is %s", from,
				r == -EBADMSG ? "corrupt" : strerror(-r));
		else if (ol != jl || memcmp(out, json, jl) != 0)
			problem(v, what, "manifest delta from %" PRIu64 " does not reproduce the manifest",
				from);
		free(d);
		free(out);
		free(old);
	}
out:
	ug_manifest_free(m);
	free(json);
	free(sig);
}

int ug_verify_repo(struct ug_store *s, const struct ug_pubkey *pk,
		   ug_verify_report_fn report, void *ctx, struct ug_verify_stats *ret_stats)
{
	struct vctx v = { .s = s, .pk = pk, .report = report, .ctx = ctx };
	struct ug_hash *list = NULL;
	size_t n = 0;
	char **channels = NULL;
	size_t nch = 0;
	int r;

	r = ug_store_list(s, UG_STORE_OBJECTS, &list, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		char what[UG_HASH_HEX_LEN + 16], hex[UG_HASH_HEX_LEN + 1];
		struct ug_error e = { "" };

		ug_hash_hex(&list[i], hex);
		snprintf(what, sizeof(what), "object %s", hex);
		v.st.objects++;
		if (ug_store_object_verify(s, &list[i], &e) < 0)
			problem(&v, what, "%s", e.msg);
	}
	free(list);
	list = NULL;
	r = ug_store_list(s, UG_STORE_DELTAS, &list, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		char what[UG_HASH_HEX_LEN + 16], hex[UG_HASH_HEX_LEN + 1];
		struct ug_error e = { "" };

		ug_hash_hex(&list[i], hex);
		snprintf(what, sizeof(what), "delta %s", hex);
		if (ug_store_delta_verify(s, &list[i], &e) < 0)
			problem(&v, what, "%s", e.msg);
	}
	free(list);

	r = ug_store_channels(s, &channels, &nch);
	if (r < 0)
		goto out;
	for (size_t c = 0; c < nch; c++) {
		uint64_t ref, *versions = NULL;
		size_t nv = 0;
		char what[UG_CHANNEL_MAX + 16];

		snprintf(what, sizeof(what), "ref %s", channels[c]);
		v.st.refs++;
		r = ug_store_ref_read(s, channels[c], &ref);
		if (r < 0) {
			problem(&v, what, "unreadable: %s", strerror(-r));
			continue;
		}
		r = ug_store_versions(s, channels[c], &versions, &nv);
		if (r < 0) {
			problem(&v, what, "cannot list versions: %s", strerror(-r));
			continue;
		}
		if (nv == 0 || versions[nv - 1] != ref) {
			bool found = false;
			for (size_t i = 0; i < nv; i++)
				found |= versions[i] == ref;
			if (!found)
				problem(&v, what, "points at version %" PRIu64 ", which has no manifest", ref);
		}
		for (size_t i = 0; i < nv; i++)
			check_manifest(&v, channels[c], versions[i], versions, nv);
		free(versions);
	}
	r = 0;
out:
	ug_strv_free(channels, nch);
	free(v.done);
	if (ret_stats)
		*ret_stats = v.st;
	if (r < 0)
		return r;
	return v.st.problems ? -EBADMSG : 0;
}
