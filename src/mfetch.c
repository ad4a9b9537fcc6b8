/* mfetch.c - fetch and check one signed manifest (see mfetch.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
