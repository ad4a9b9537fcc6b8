/* mfetch.c - fetch and check one signed manifest (see mfetch.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delta.h"
#include "mfetch.h"

void ug_mfetch_release(struct ug_mfetch *q)
{
	free(q->json);
	free(q->sig);
	free(q->mdelta);
	ug_manifest_free(q->m);
	q->json = q->sig = NULL;
	q->mdelta = NULL;
	q->m = NULL;
	q->json_len = q->sig_len = q->mdelta_len = 0;
}

/* A manifest delta from `from` (0: compressed alone), applied. 0 with
 * q->json set; -EAGAIN when it does not apply (try the next form). */
static int via_mdelta(struct ug_client *c, struct ug_mfetch *q, uint64_t from,
		      struct ug_error *err)
{
	struct ug_blob_ref b = { .kind = UG_BLOB_MDELTA, .channel = q->channel,
				 .version = q->version, .from = from };
	char *md = NULL;
	size_t md_len = 0, len;
	uint8_t *out;
	int r;

	r = ug_client_get_buf(c, &b, UG_MANIFEST_MAX, &md, &md_len, err);
	if (r < 0)
		return c->broken ? r : -EAGAIN;
	r = ug_zstd_decompress_buf(md, md_len, from ? q->have_json : NULL,
				   from ? q->have_len : 0, UG_MANIFEST_MAX, &out, &len);
	if (r < 0) {
		free(md);
		return -EAGAIN;
	}
	q->json = (char *)out;
	q->json_len = len;
	q->mdelta = (uint8_t *)md;
	q->mdelta_len = md_len;
	q->mdelta_from = from;
	return 0;
}

int ug_mfetch(struct ug_client *c, struct ug_mfetch *q, struct ug_error *err)
{
	struct ug_blob_ref b = { .kind = UG_BLOB_SIG, .channel = q->channel, .version = q->version };
	struct ug_error e = { "" };
	int r;

	q->json = q->sig = NULL;
	q->mdelta = NULL;
	q->m = NULL;
	r = ug_client_get_buf(c, &b, UG_SIG_FILE_MAX, &q->sig, &q->sig_len, err);
	if (r < 0)
		return r;
	r = -EAGAIN;
	if (q->have_json && q->have_version && q->have_version < q->version)
		r = via_mdelta(c, q, q->have_version, err);
	if (r == -EAGAIN)
		r = via_mdelta(c, q, 0, err);
	if (r == -EAGAIN) {
		b.kind = UG_BLOB_MANIFEST;
		r = ug_client_get_buf(c, &b, UG_MANIFEST_MAX, &q->json, &q->json_len, err);
	}
	if (r < 0)
		goto fail;
	r = ug_sign_verify(q->key, UG_SIGN_CONTEXT_MANIFEST, q->json, q->json_len, q->sig,
			   q->sig_len, &e);
	if (r < 0) {
		r = ug_error_set(err, r == -EBADMSG ? -EKEYREJECTED : r,
				 "refusing manifest %" PRIu64 " of '%s' from %s: %s (tampered with, "
				 "or not signed by the key of the 'master-key' setting)", q->version,
				 q->channel, c->peer, e.msg);
		goto fail;
	}
	r = ug_manifest_parse(q->json, q->json_len, &q->m, &e);
	if (r < 0) {
		r = ug_error_set(err, r, "refusing manifest %" PRIu64 " of '%s' from %s: %s",
				 q->version, q->channel, c->peer, e.msg);
		goto fail;
	}
	if (q->m->version != q->version || strcmp(q->m->channel, q->channel) != 0) {
		r = ug_error_set(err, -EKEYREJECTED, "refusing manifest from %s: it is version %"
				 PRIu64 " of '%s', asked for %" PRIu64 " of '%s'", c->peer,
				 q->m->version, q->m->channel, q->version, q->channel);
		goto fail;
	}
	return 0;
fail:
	ug_mfetch_release(q);
	return r;
}

int ug_fetch_blob(struct ug_client *c, struct ug_store *s, enum ug_store_kind kind,
		  const struct ug_hash *id, uint64_t max, uint64_t *ret_resumed,
		  struct ug_error *err)
{
	struct ug_blob_ref b = { .kind = kind == UG_STORE_OBJECTS ? UG_BLOB_OBJECT : UG_BLOB_DELTA,
				 .id = *id };
	const char *what = kind == UG_STORE_OBJECTS ? "object" : "delta";
	char hex[UG_HASH_HEX_LEN + 1], name[UG_HASH_HEX_LEN + 4], msg[sizeof(err->msg)];
	uint64_t have;
	int fd, r;

	if (ret_resumed)
		*ret_resumed = 0;
	ug_hash_hex(id, hex);
	snprintf(name, sizeof(name), "%c-%s", what[0], hex);
	r = ug_store_partial_open(s, name, &fd, &have);
	if (r < 0)
		return ug_error_set(err, r, "cannot open a download file in '%s/tmp': %s",
				    s->path, strerror(-r));
	r = 0;
	if (have > max) {
		r = ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0 ? -errno : 0;
		have = 0;
	}
	if (r == 0)
		r = ug_client_get(c, &b, have, max, fd, NULL, err);
	if (r == -EINVAL && have) {
		/* the partial file is longer than this blob: start over */
		have = 0;
		r = ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0 ? -errno
			: ug_client_get(c, &b, 0, max, fd, NULL, err);
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	r = ug_store_partial_commit(s, name, fd, kind, id, err);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "%s", err ? err->msg : "");
		return ug_error_set(err, r, "%s %.16s from %s: %s", what, hex, c->peer,
				    msg[0] ? msg : strerror(-r));
	}
	if (ret_resumed)
		*ret_resumed = have;
	return 0;
}
