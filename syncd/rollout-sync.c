/* rollout-sync.c - copy newer rollout documents from upstream
 * (rollout-sync.h). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollout-sync.h"
#include "rollout.h"
#include "wlog.h"

/* The serial of the document held for version (0: none, or one that no
 * longer verifies: any valid upstream document then replaces it). */
static uint64_t held_serial(struct ug_store *s, const struct ug_pubkey *master,
			    const char *channel, uint64_t version)
{
	struct ug_rollout_doc *d = NULL;
	struct ug_error e = { "" };
	char *doc = NULL, *sig = NULL;
	size_t len = 0, sig_len = 0;
	uint64_t serial = 0;
	int r;

	r = ug_store_rollout_get(s, channel, version, &doc, &len, &sig, &sig_len);
	if (r == 0)
		r = ug_rollout_doc_verify(master, channel, version, doc, len, sig, sig_len, &d, &e);
	if (r == 0)
		serial = d->serial;
	else if (r != -ENOENT)
		ug_wlog(UG_WLOG_WARN, "rollout document of version %" PRIu64 " of '%s' held here is "
			"unusable (%s): taking the upstream's", version, channel,
			e.msg[0] ? e.msg : strerror(-r));
	ug_rollout_doc_free(d);
	free(doc);
	free(sig);
	return serial;
}

/* Fetch version's document from c and store it if it is newer and
 * verifies. 1: stored, 0: nothing to do, < 0: the session broke. */
static int sync_one(struct ug_store *s, const struct ug_pubkey *master, struct ug_client *c,
		    const char *channel, uint64_t version)
{
	struct ug_blob_ref b = { .kind = UG_BLOB_ROLLOUT, .channel = channel, .version = version };
	struct ug_rollout_doc *d = NULL;
	struct ug_error e = { "" };
	char *doc = NULL, *sig = NULL, what[160];
	size_t len = 0, sig_len = 0;
	uint64_t held;
	int r;

	r = ug_client_get_buf(c, &b, UG_ROLLOUT_DOC_MAX, &doc, &len, &e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		goto fail;
	/* the serial first, unverified, to skip the signature's round trip
	 * for a document already held; the one taken is verified below */
	r = ug_rollout_doc_parse(doc, len, channel, version, &d, &e);
	if (r < 0)
		goto fail;
	held = held_serial(s, master, channel, version);
	if (d->serial <= held) {
		if (d->serial < held)
			ug_wlog(UG_WLOG_DEBUG, "%s offers rollout serial %" PRIu64 " of version %"
				PRIu64 " of '%s', older than the %" PRIu64 " held here: not taken",
				c->peer, d->serial, version, channel, held);
		r = 0;
		goto out;
	}
	ug_rollout_doc_free(d);
	d = NULL;
	b.kind = UG_BLOB_ROLLOUT_SIG;
	r = ug_client_get_buf(c, &b, UG_SIG_FILE_MAX, &sig, &sig_len, &e);
	if (r == -ENOENT)
		r = ug_error_set(&e, -EKEYREJECTED, "it has no signature");
	if (r == 0)
		r = ug_rollout_doc_verify(master, channel, version, doc, len, sig, sig_len, &d, &e);
	if (r < 0)
		goto fail;
	r = ug_store_rollout_put(s, channel, version, doc, len, sig, sig_len);
	if (r < 0) {
		ug_error_set(&e, r, "cannot store it: %s", strerror(-r));
		goto fail;
	}
	ug_rollout_format(d->rollout, what, sizeof(what));
	ug_wlog(UG_WLOG_INFO, "rollout of version %" PRIu64 " of '%s' is now %s (serial %" PRIu64
		", from %s)", version, channel, what, d->serial, c->peer);
	r = 1;
	goto out;
fail:
	ug_wlog(r == -EKEYREJECTED ? UG_WLOG_ERR : UG_WLOG_WARN,
		"rollout document of version %" PRIu64 " of '%s' from %s not taken: %s",
		version, channel, c->peer, e.msg[0] ? e.msg : strerror(-r));
	r = c->broken ? r : 0;
out:
	ug_rollout_doc_free(d);
	free(doc);
	free(sig);
	return r;
}

unsigned ug_rollout_sync(struct ug_store *s, const struct ug_pubkey *master,
			 struct ug_client *c, const char *channel)
{
	struct ug_error e = { "" };
	uint64_t *mine = NULL, *theirs = NULL;
	size_t nmine = 0, ntheirs = 0, j;
	unsigned stored = 0, checked = 0;

	if (ug_store_versions(s, channel, &mine, &nmine) < 0 ||
	    ug_client_versions(c, channel, &theirs, &ntheirs, &e) < 0) {
		if (e.msg[0])
			ug_wlog(UG_WLOG_WARN, "cannot list the versions of '%s' at %s for their rollout "
				"documents: %s", channel, c->peer, e.msg);
		goto out;
	}
	/* both lists ascend: walk them down together, newest first */
	j = ntheirs;
	for (size_t i = nmine; i-- > 0 && checked < UG_ROLLOUT_SYNC_VERSIONS && !c->broken;) {
		int r;

		while (j > 0 && theirs[j - 1] > mine[i])
			j--;
		if (j == 0)
			break;
		if (theirs[j - 1] != mine[i])
			continue;
		checked++;
		r = sync_one(s, master, c, channel, mine[i]);
		if (r > 0)
			stored++;
	}
out:
	free(mine);
	free(theirs);
	return stored;
}
