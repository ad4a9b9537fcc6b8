/* client.h - the protocol client: one session with a server (its
 * `upgrid-syncd --serve`), over ssh or a local process.
 *
 * Used by upgrid-syncd to follow its upstream and by terminals to pull.
 * Every reply is checked against what was asked (type, channel, sizes,
 * offsets); a server that answers out of turn is a protocol error and the
 * session is closed. Downloads stream to a file descriptor in bounded
 * chunks, so nothing big is held in memory. */
#ifndef UG_CLIENT_H
#define UG_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "conn.h"
#include "hash.h"
#include "proto.h"
#include "util.h"

/* Told how a download goes (a progress display, progress.h): once when
 * the blob's size is known (done = the offset it resumes at), after each
 * DATA frame with the bytes held so far (the resumed offset included) and
 * the blob's full size, and once more with finished set when the
 * download ends, whether it completed (done == total) or failed (done
 * is then the offset it started at). what names the blob
 * ("object 3f2a1c0b9d8e7f6a"). Called only from the thread using the
 * session; must not use the session. */
typedef void (*ug_client_progress_fn)(void *ctx, const char *what, uint64_t done,
				      uint64_t total, bool finished);

struct ug_client_opts {
	const char *name;          /* our name in HELLO (logged by the server) */
	const char *identity;      /* ssh private key; NULL: agent + defaults */
	const char *known_hosts;   /* required for ssh servers */
	const char *serve_command; /* remote command; NULL: "upgrid-syncd" */
	const char *local_command; /* for a server with host "-" or NULL host:
				    * the upgrid-syncd binary to spawn */
	int connect_timeout_s;     /* 0: 10 */
	int idle_timeout_s;        /* no byte for this long: -ETIMEDOUT (0: 60) */
	int keepalive_s;           /* 0: 15 */
	void (*log)(void *ctx, const char *line);  /* remote stderr; may be NULL */
	bool local_quiet;          /* a spawned local server's stderr to /dev/null */
	void *log_ctx;
	ug_client_progress_fn progress;  /* downloads' progress; may be NULL */
	void *progress_ctx;
};

struct ug_client {
	struct ug_conn *conn;
	struct ug_buf frame;
	uint32_t version;           /* negotiated protocol version */
	uint32_t flags;             /* WELCOME flags */
	char server_name[UG_PROTO_NAME_MAX + 1];
	char peer[128];             /* "NAME (user@host:port)" for messages */
	int idle_timeout_ms;
	bool broken;                /* a protocol error happened: only free */
	/* from the options; the caller may change them between requests */
	ug_client_progress_fn progress;
	void *progress_ctx;
};

/* Connect to srv (host NULL or "-": spawn local_command --serve --repo
 * srv->repo) and negotiate. A server at its session limit answers BUSY:
 * -EBUSY with *ret_retry_after set (ret_retry_after may be NULL). */
int ug_client_open(const struct ug_server *srv, const struct ug_client_opts *o,
		   struct ug_client **ret, uint32_t *ret_retry_after,
		   struct ug_error *err);
/* Sends BYE, closes, frees. NULL is a no-op. */
void ug_client_free(struct ug_client *c);

/* -ENOENT: the server has no such channel (REF 0 is returned as 0). */
int ug_client_ref(struct ug_client *c, const char *channel, uint64_t *ret_version,
		  struct ug_error *err);
/* Long-poll: returns when the channel's version is above `after` or after
 * timeout_s (then *ret_version <= after). */
int ug_client_wait(struct ug_client *c, const char *channel, uint64_t after,
		   unsigned timeout_s, uint64_t *ret_version, struct ug_error *err);
int ug_client_versions(struct ug_client *c, const char *channel,
		       uint64_t **ret, size_t *ret_n, struct ug_error *err);

/* What to GET. */
struct ug_blob_ref {
	enum ug_blob_kind kind;
	const char *channel;       /* MANIFEST, SIG, MDELTA, ROLLOUT, ROLLOUT_SIG */
	uint64_t version;          /* MANIFEST, SIG, MDELTA, ROLLOUT, ROLLOUT_SIG */
	uint64_t from;             /* MDELTA */
	struct ug_hash id;         /* OBJECT, DELTA */
};

/* Download a blob from byte `offset` on, appending to out_fd (written with
 * write(2) from its current position: the caller positions it at offset).
 * A blob larger than max is refused (-E2BIG) before any byte is written.
 * *ret_total: the blob's full size. -ENOENT if the server does not have
 * it; -EBADMSG if the server reports its own copy corrupt. */
int ug_client_get(struct ug_client *c, const struct ug_blob_ref *b, uint64_t offset,
		  uint64_t max, int out_fd, uint64_t *ret_total, struct ug_error *err);
/* The same into memory (manifests, signatures): *ret is NUL-terminated,
 * owned by the caller. */
int ug_client_get_buf(struct ug_client *c, const struct ug_blob_ref *b, size_t max,
		      char **ret, size_t *ret_len, struct ug_error *err);
/* Send the librsync signature in sig_fd (sig_len bytes from its current
 * position) and download the delta that turns the signed copy into the
 * object `id` (form: its content or its stored bytes) into out_fd, from
 * `offset` on. */
int ug_client_sigdelta(struct ug_client *c, const struct ug_hash *id,
		       enum ug_sig_form form, int sig_fd, uint64_t sig_len,
		       uint64_t offset, uint64_t max, int out_fd,
		       uint64_t *ret_total, struct ug_error *err);
int ug_client_report(struct ug_client *c, const char *json, size_t len,
		     struct ug_error *err);
/* The server's counters (JSON text, NUL-terminated, caller frees). */
int ug_client_stats(struct ug_client *c, char **ret_json, struct ug_error *err);

#endif
