/* client.c - one protocol session with a server. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client.h"
#include "ssh.h"

#define CLIENT_FRAME_MAX (UG_PROTO_FRAME_MAX + 16)

static const char *kind_name(enum ug_blob_kind k)
{
	switch (k) {
	case UG_BLOB_OBJECT: return "object";
	case UG_BLOB_DELTA: return "delta";
	case UG_BLOB_MANIFEST: return "manifest";
	case UG_BLOB_SIG: return "signature";
	case UG_BLOB_MDELTA: return "manifest delta";
	case UG_BLOB_ROLLOUT: return "rollout document";
	case UG_BLOB_ROLLOUT_SIG: return "rollout signature";
	}
	return "blob";
}

static int perr_errno(uint32_t code)
{
	switch (code) {
	case UG_PERR_NOTFOUND: return -ENOENT;
	case UG_PERR_BADREQ: return -EINVAL;
	case UG_PERR_DENIED: return -EACCES;
	case UG_PERR_CORRUPT: return -EBADMSG;
	case UG_PERR_TOOBIG: return -E2BIG;
	case UG_PERR_VERSION: return -EPROTONOSUPPORT;
	case UG_PERR_INTERNAL: return -EIO;
	default: return -EPROTO;
	}
}

/* Receive the reply to a request: the expected type, or an ERROR turned
 * into -errno with the server's text. Anything else breaks the session. */
static int expect(struct ug_client *c, enum ug_msg_type type, struct ug_msg *m,
		  struct ug_error *err)
{
	struct ug_error e = { "" };
	int r;

	if (c->broken)
		return ug_error_set(err, -EPROTO, "session with %s is unusable after an earlier error",
				    c->peer);
	r = ug_proto_recv(c->conn, &c->frame, m, &e);
	if (r < 0) {
		c->broken = true;
		if (r == -EPIPE)
			return ug_error_set(err, -EPROTO, "%s closed the connection", c->peer);
		if (r == -ETIMEDOUT)
			return ug_error_set(err, r, "%s sent nothing for %d s", c->peer,
					    c->conn->timeout_ms / 1000);
		if (r == -EPROTO)
			return ug_error_set(err, r, "protocol error from %s: %s", c->peer, e.msg);
		return ug_error_set(err, r, "connection to %s failed: %s", c->peer,
				    e.msg[0] ? e.msg : strerror(-r));
	}
	if (m->type == type)
		return 0;
	if (m->type == UG_MSG_ERROR) {
		r = perr_errno(m->code);
		if (r == -EPROTO)
			c->broken = true;
		return ug_error_set(err, r, "%s: %.*s", c->peer, (int)(m->text_len > 400 ? 400 : m->text_len),
				    m->text);
	}
	c->broken = true;
	return ug_error_set(err, -EPROTO, "protocol error from %s: got %s, expected %s", c->peer,
			    ug_msg_type_name(m->type), ug_msg_type_name(type));
}

static int send_msg(struct ug_client *c, const struct ug_msg *m, struct ug_error *err)
{
	int r;

	if (c->broken)
		return ug_error_set(err, -EPROTO, "session with %s is unusable after an earlier error",
				    c->peer);
	r = ug_proto_send(c->conn, m);
	if (r < 0) {
		c->broken = true;
		return ug_error_set(err, r, "cannot send to %s: %s", c->peer, strerror(-r));
	}
	return 0;
}

static int open_conn(const struct ug_server *srv, const struct ug_client_opts *o,
		     struct ug_conn **ret, struct ug_error *err)
{
	if (!srv->host || !strcmp(srv->host, "-")) {
		char *argv[] = { (char *)(o->local_command ? o->local_command : "upgrid-syncd"),
				 (char *)"--serve", (char *)"--repo", srv->repo, NULL };
		return ug_conn_spawn_quiet(argv, o->local_quiet, ret, err);
	} else {
		struct ug_ssh_opts so = {
			.host = srv->host,
			.port = srv->port,
			.user = srv->user,
			.identity = o->identity,
			.known_hosts = o->known_hosts,
			.connect_timeout_s = o->connect_timeout_s,
			.keepalive_s = o->keepalive_s,
			.stderr_line = o->log,
			.stderr_ctx = o->log_ctx,
		};
		char cmd[UG_PATH_MAX * 2 + 64], q[UG_PATH_MAX * 2 + 8];
		int r;

		if (!o->known_hosts)
			return ug_error_set(err, -EINVAL, "no known_hosts file given for '%s'", srv->host);
		r = ug_shell_quote(srv->repo, q, sizeof(q));
		if (r < 0)
			return ug_error_set(err, r, "repo path of '%s' is too long", srv->host);
		snprintf(cmd, sizeof(cmd), "%s --serve --repo %s",
			 o->serve_command ? o->serve_command : "upgrid-syncd", q);
		return ug_ssh_connect(&so, cmd, ret, err);
	}
}

int ug_client_open(const struct ug_server *srv, const struct ug_client_opts *o,
		   struct ug_client **ret, uint32_t *ret_retry_after, struct ug_error *err)
{
	struct ug_client *c;
	struct ug_msg m = { .type = UG_MSG_HELLO };
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ug_buf_init(&c->frame, CLIENT_FRAME_MAX);
	if (srv->host && strcmp(srv->host, "-"))
		snprintf(c->peer, sizeof(c->peer), "'%s' (%s%s%s:%u)", srv->name ? srv->name : srv->host,
			 srv->user ? srv->user : "", srv->user ? "@" : "", srv->host,
			 srv->port ? srv->port : 22);
	else
		snprintf(c->peer, sizeof(c->peer), "'%s' (local '%s')", srv->name ? srv->name : "local",
			 srv->repo);
	r = open_conn(srv, o, &c->conn, err);
	if (r < 0) {
		ug_buf_release(&c->frame);
		free(c);
		return r;
	}
	c->idle_timeout_ms = (o->idle_timeout_s ? o->idle_timeout_s : 60) * 1000;
	c->conn->timeout_ms = c->idle_timeout_ms;
	c->progress = o->progress;
	c->progress_ctx = o->progress_ctx;
	m.min_version = 1;
	m.max_version = UG_PROTO_VERSION;
	snprintf(m.name, sizeof(m.name), "%s", o->name ? o->name : "upgrid");
	r = send_msg(c, &m, err);
	if (r == 0) {
		struct ug_error e = { "" };
		r = ug_proto_recv(c->conn, &c->frame, &m, &e);
		if (r == -EPIPE)
			r = ug_error_set(err, -EPROTO, "%s closed the connection before greeting "
					 "(is upgrid-syncd installed there and the repo readable?)",
					 c->peer);
		else if (r < 0)
			r = ug_error_set(err, r, "no greeting from %s: %s", c->peer,
					 e.msg[0] ? e.msg : strerror(-r));
		else if (m.type == UG_MSG_BUSY) {
			if (ret_retry_after)
				*ret_retry_after = m.retry_after;
			r = ug_error_set(err, -EBUSY, "%s is busy, retry after %u s", c->peer,
					 m.retry_after);
		} else if (m.type == UG_MSG_ERROR) {
			r = ug_error_set(err, perr_errno(m.code), "%s refused the session: %.*s", c->peer,
					 (int)(m.text_len > 400 ? 400 : m.text_len), m.text);
		} else if (m.type != UG_MSG_WELCOME) {
			r = ug_error_set(err, -EPROTO, "protocol error from %s: got %s before WELCOME",
					 c->peer, ug_msg_type_name(m.type));
		} else if (m.version < 1 || m.version > UG_PROTO_VERSION) {
			r = ug_error_set(err, -EPROTO, "%s chose protocol version %u, not offered",
					 c->peer, m.version);
		} else {
			c->version = m.version;
			c->flags = m.flags;
			snprintf(c->server_name, sizeof(c->server_name), "%s", m.name);
		}
	}
	if (r < 0) {
		ug_conn_close(c->conn);
		ug_buf_release(&c->frame);
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void ug_client_free(struct ug_client *c)
{
	if (!c)
		return;
	if (!c->broken) {
		struct ug_msg m = { .type = UG_MSG_BYE };
		if (ug_proto_send(c->conn, &m) == 0)
			ug_conn_shutdown(c->conn);
	}
	ug_conn_close(c->conn);
	ug_buf_release(&c->frame);
	free(c);
}

int ug_client_ref(struct ug_client *c, const char *channel, uint64_t *ret_version,
		  struct ug_error *err)
{
	struct ug_msg m = { .type = UG_MSG_GET_REF };
	int r;

	snprintf(m.channel, sizeof(m.channel), "%s", channel);
	r = send_msg(c, &m, err);
	if (r == 0)
		r = expect(c, UG_MSG_REF, &m, err);
	if (r < 0)
		return r;
	if (strcmp(m.channel, channel) != 0) {
		c->broken = true;
		return ug_error_set(err, -EPROTO, "protocol error from %s: REF for channel '%s', "
				    "asked for '%s'", c->peer, m.channel, channel);
	}
	*ret_version = m.ver;
	return 0;
}

int ug_client_wait(struct ug_client *c, const char *channel, uint64_t after,
		   unsigned timeout_s, uint64_t *ret_version, struct ug_error *err)
{
	struct ug_msg m = { .type = UG_MSG_WAIT };
	int r;

	if (timeout_s > UG_PROTO_WAIT_MAX)
		timeout_s = UG_PROTO_WAIT_MAX;
	snprintf(m.channel, sizeof(m.channel), "%s", channel);
	m.after = after;
	m.timeout = timeout_s;
	r = send_msg(c, &m, err);
	if (r < 0)
		return r;
	/* the answer legitimately takes up to timeout_s */
	c->conn->timeout_ms = c->idle_timeout_ms + (int)timeout_s * 1000;
	r = expect(c, UG_MSG_REF, &m, err);
	c->conn->timeout_ms = c->idle_timeout_ms;
	if (r < 0)
		return r;
	if (strcmp(m.channel, channel) != 0) {
		c->broken = true;
		return ug_error_set(err, -EPROTO, "protocol error from %s: REF for channel '%s'",
				    c->peer, m.channel);
	}
	*ret_version = m.ver;
	return 0;
}

int ug_client_versions(struct ug_client *c, const char *channel, uint64_t **ret,
		       size_t *ret_n, struct ug_error *err)
{
	struct ug_msg m = { .type = UG_MSG_LIST };
	uint64_t *v;
	int r;

	snprintf(m.channel, sizeof(m.channel), "%s", channel);
	r = send_msg(c, &m, err);
	if (r == 0)
		r = expect(c, UG_MSG_VERSIONS, &m, err);
	if (r < 0)
		return r;
	v = calloc(m.nversions ? m.nversions : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < m.nversions; i++)
		v[i] = ug_msg_version_at(&m, i);
	*ret = v;
	*ret_n = m.nversions;
	return 0;
}

/* After BLOB: DATA frames from at up to total, each written to out_fd
 * and told to the progress callback. */
static int receive_data(struct ug_client *c, const char *what, uint64_t at, uint64_t total,
			int out_fd, struct ug_error *err)
{
	struct ug_msg m;
	int r;

	while (at < total) {
		r = expect(c, UG_MSG_DATA, &m, err);
		if (r < 0)
			return r;
		if (m.data_len > total - at) {
			c->broken = true;
			return ug_error_set(err, -EPROTO, "protocol error from %s: %s runs past its "
					    "stated %" PRIu64 " bytes", c->peer, what, total);
		}
		r = ug_write_all(out_fd, m.data, m.data_len);
		if (r < 0) {
			c->broken = true;
			return ug_error_set(err, r, "cannot write %s: %s", what, strerror(-r));
		}
		at += m.data_len;
		if (c->progress)
			c->progress(c->progress_ctx, what, at, total, false);
	}
	return 0;
}

/* BLOB, checked against what was asked, then its DATA. */
static int receive_blob(struct ug_client *c, const char *what, uint64_t offset,
			uint64_t max, int out_fd, uint64_t *ret_total, struct ug_error *err)
{
	struct ug_msg m;
	uint64_t total;
	int r;

	r = expect(c, UG_MSG_BLOB, &m, err);
	if (r < 0)
		return r;
	total = m.total;
	if (m.offset != offset || total < offset) {
		c->broken = true;
		return ug_error_set(err, -EPROTO, "protocol error from %s: %s starts at byte %" PRIu64
				    ", asked for %" PRIu64, c->peer, what, m.offset, offset);
	}
	if (total > max) {
		/* the data is already on its way: the session cannot go on */
		c->broken = true;
		return ug_error_set(err, -E2BIG, "%s from %s is %" PRIu64 " bytes, more than the %"
				    PRIu64 " expected", what, c->peer, total, max);
	}
	if (c->progress)
		c->progress(c->progress_ctx, what, offset, total, false);
	r = receive_data(c, what, offset, total, out_fd, err);
	/* success or not: a display must be taken down before any message */
	if (c->progress)
		c->progress(c->progress_ctx, what, r == 0 ? total : offset, total, true);
	if (r < 0)
		return r;
	if (ret_total)
		*ret_total = total;
	return 0;
}

static void blob_what(const struct ug_blob_ref *b, char *out, size_t n)
{
	char hex[UG_HASH_HEX_LEN + 1];

	switch (b->kind) {
	case UG_BLOB_OBJECT:
	case UG_BLOB_DELTA:
		ug_hash_hex(&b->id, hex);
		snprintf(out, n, "%s %.16s", kind_name(b->kind), hex);
		break;
	case UG_BLOB_MDELTA:
		snprintf(out, n, "manifest delta %s %" PRIu64 " from %" PRIu64, b->channel,
			 b->version, b->from);
		break;
	default:
		snprintf(out, n, "%s %s %" PRIu64, kind_name(b->kind), b->channel, b->version);
	}
}

int ug_client_get(struct ug_client *c, const struct ug_blob_ref *b, uint64_t offset,
		  uint64_t max, int out_fd, uint64_t *ret_total, struct ug_error *err)
{
	struct ug_msg m = { .type = UG_MSG_GET };
	char what[128];
	int r;

	blob_what(b, what, sizeof(what));
	m.kind = (uint8_t)b->kind;
	if (b->channel)
		snprintf(m.channel, sizeof(m.channel), "%s", b->channel);
	m.ver = b->version;
	m.from = b->from;
	m.id = b->id;
	m.offset = offset;
	r = send_msg(c, &m, err);
	if (r < 0)
		return r;
	return receive_blob(c, what, offset, max, out_fd, ret_total, err);
}

int ug_client_get_buf(struct ug_client *c, const struct ug_blob_ref *b, size_t max,
		      char **ret, size_t *ret_len, struct ug_error *err)
{
	char *p = NULL;
	size_t len = 0;
	int fd, r;

	/* small documents, but a manifest can be large: spool to memory-backed
	 * file instead of growing a buffer frame by frame */
	fd = memfd_create("upgrid-get", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = ug_client_get(c, b, 0, max, fd, NULL, err);
	if (r == 0) {
		off_t end = lseek(fd, 0, SEEK_CUR);
		p = malloc((size_t)end + 1);
		if (!p)
			r = -ENOMEM;
		else if (pread(fd, p, (size_t)end, 0) != end)
			r = -EIO;
		else {
			p[end] = '\0';
			len = (size_t)end;
		}
	}
	close(fd);
	if (r < 0) {
		free(p);
		return r;
	}
	*ret = p;
	*ret_len = len;
	return 0;
}

int ug_client_sigdelta(struct ug_client *c, const struct ug_hash *id, enum ug_sig_form form,
		       int sig_fd, uint64_t sig_len, uint64_t offset, uint64_t max,
		       int out_fd, uint64_t *ret_total, struct ug_error *err)
{
	struct ug_msg m = { .type = UG_MSG_SIGDELTA };
	char hex[UG_HASH_HEX_LEN + 1], what[96];
	uint8_t *buf;
	uint64_t left = sig_len;
	int r;

	ug_hash_hex(id, hex);
	snprintf(what, sizeof(what), "signature delta for %.16s", hex);
	m.id = *id;
	m.form = (uint8_t)form;
	m.sig_len = sig_len;
	m.offset = offset;
	r = send_msg(c, &m, err);
	if (r < 0)
		return r;
	buf = malloc(UG_PROTO_CHUNK);
	if (!buf) {
		c->broken = true;
		return -ENOMEM;
	}
	while (left > 0) {
		size_t n = left > UG_PROTO_CHUNK ? UG_PROTO_CHUNK : (size_t)left;
		r = ug_read_exact(sig_fd, buf, n);
		if (r == 0)
			r = ug_proto_send_data(c->conn, buf, n);
		if (r < 0) {
			c->broken = true;
			free(buf);
			return ug_error_set(err, r, "cannot send the signature to %s: %s", c->peer,
					    strerror(-r));
		}
		left -= n;
	}
	free(buf);
	return receive_blob(c, what, offset, max, out_fd, ret_total, err);
}

int ug_client_report(struct ug_client *c, const char *json, size_t len, struct ug_error *err)
{
	struct ug_msg m = { .type = UG_MSG_REPORT };
	int r;

	m.text = json;
	m.text_len = len;
	r = send_msg(c, &m, err);
	if (r == 0)
		r = expect(c, UG_MSG_OK, &m, err);
	return r;
}

int ug_client_stats(struct ug_client *c, char **ret_json, struct ug_error *err)
{
	struct ug_msg m = { .type = UG_MSG_STATS };
	char *s;
	int r;

	r = send_msg(c, &m, err);
	if (r == 0)
		r = expect(c, UG_MSG_STATS_REPLY, &m, err);
	if (r < 0)
		return r;
	s = strndup(m.text, m.text_len);
	if (!s)
		return -ENOMEM;
	*ret_json = s;
	return 0;
}
