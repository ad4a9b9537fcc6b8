/* ssh.c - the libssh client transport: one session, one exec channel.
 *
 * After the exec request the session is switched to non-blocking mode and
 * every wait is a poll() on the session's socket that this file controls,
 * so that each wait can also drain the channel's stderr (the SSH window is
 * shared by stdout and stderr: stderr left unread stops stdout too), send
 * keepalives while idle, and give up at the caller's deadline. libssh's
 * own blocking calls can do none of that. */
#include "config.h"

#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include "ssh.h"
#include "util.h"

#define SSH_DEFAULT_PORT          22u
#define SSH_CONNECT_TIMEOUT_S     10
#define SSH_KEEPALIVE_S           15
#define SSH_HOST_MAX              253u     /* a DNS name */
#define SSH_STDERR_LINE_MAX       1024u    /* longer lines are cut */
/* one read or write call moves at most this much (libssh counts in int) */
#define SSH_IO_MAX                (1u << 20)
/* close waits this long for the exit status of a command whose output
 * has ended (it normally follows the end of output at once) */
#define SSH_EXIT_WAIT_MS          5000
/* TCP keepalive probes before the kernel declares the peer dead */
#define SSH_TCP_KEEPCNT           4

struct ssh_priv {
	ssh_session s;
	ssh_channel ch;
	int keepalive_ms;
	int64_t quiet_since;            /* last data in or keepalive out */
	bool eof_sent;
	int exit_signal;                /* 128 + signal number, 0: none */
	void (*stderr_line)(void *ctx, const char *line);
	void *stderr_ctx;
	size_t line_len;
	bool line_cut;                  /* dropping the rest of a long line */
	char line[SSH_STDERR_LINE_MAX + 1];
	struct ssh_channel_callbacks_struct cb;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ug_shell_quote(const char *s, char *out, size_t out_size)
{
	size_t o = 0;

	/* every byte but ' stands for itself inside '...'; a ' becomes '\''.
	 * Each step leaves room for the closing quote and the NUL. */
	if (out_size < 3)
		return -E2BIG;
	out[o++] = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			if (out_size - o < 6)
				return -E2BIG;
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			if (out_size - o < 3)
				return -E2BIG;
			out[o++] = *s;
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
	return 0;
}

/* ---------------------------------------------------------------- stderr */

static void line_emit(struct ssh_priv *p)
{
	/* CRLF line ends are fine; a CR anywhere else could overwrite what
	 * a terminal shows of the line */
	if (p->line_len > 0 && p->line[p->line_len - 1] == '\r')
		p->line_len--;
	p->line[p->line_len] = '\0';
	for (size_t i = 0; i < p->line_len; i++)
		if (p->line[i] == '\r')
			p->line[i] = '?';
	if (p->stderr_line)
		p->stderr_line(p->stderr_ctx, p->line);
	p->line_len = 0;
	p->line_cut = false;
}

/* Remote bytes go into local logs: control characters (terminal escapes,
 * stray NULs) are replaced so a server cannot forge or garble log lines. */
static void line_feed(struct ssh_priv *p, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (ch == '\n') {
			line_emit(p);
			continue;
		}
		if (p->line_len == SSH_STDERR_LINE_MAX) {
			p->line_cut = true;
			continue;
		}
		if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f)
			ch = '?';
		p->line[p->line_len++] = (char)ch;
	}
}

/* A last line without a newline is still a line. */
static void line_flush(struct ssh_priv *p)
{
	if (p->line_len > 0 || p->line_cut)
		line_emit(p);
}

/* The connection is gone or the session is in error. */
static int session_error(struct ssh_priv *p)
{
	if (!ssh_is_connected(p->s))
		return -ECONNRESET;
	return -EPROTO;
}

/* Read all the stderr that has arrived; reading it also reopens the
 * window, so the remote can go on writing stdout. */
static int drain_stderr(struct ssh_priv *p)
{
	char buf[4096];

	for (;;) {
		int n = ssh_channel_read_nonblocking(p->ch, buf, sizeof(buf), 1);

		if (n == 0 || n == SSH_EOF)
			return 0;
		if (n < 0)
			return session_error(p);
		line_feed(p, buf, (size_t)n);
	}
}

/* ---------------------------------------------------------------- waiting */

static int send_keepalive(struct ssh_priv *p)
{
	/* SSH_MSG_IGNORE needs no reply, so it cannot get out of step with
	 * libssh's single pending global request; dead peers are found by
	 * TCP (keepalive probes and the user timeout set at connect). */
	if (ssh_send_ignore(p->s, "") != SSH_OK)
		return session_error(p);
	p->quiet_since = now_ms();
	return 0;
}

/* Wait until the socket is readable (or writable, while libssh holds
 * unsent bytes), sending keepalives while nothing comes. Returns 0 to go
 * on, -ETIMEDOUT once timeout_ms (negative: never) have passed since
 * start. */
static int wait_io(struct ssh_priv *p, int64_t start, int timeout_ms)
{
	for (;;) {
		int64_t now = now_ms();
		int64_t slice = p->quiet_since + p->keepalive_ms - now;

		if (timeout_ms >= 0) {
			int64_t left = start + timeout_ms - now;
			if (left <= 0)
				return -ETIMEDOUT;
			if (left < slice)
				slice = left;
		}
		if (slice <= 0) {
			int r = send_keepalive(p);
			if (r < 0)
				return r;
			continue;
		}
		struct pollfd pfd = { .fd = ssh_get_fd(p->s), .events = POLLIN };
		if (pfd.fd < 0)
			return -ECONNRESET;
		if (ssh_get_poll_flags(p->s) & SSH_WRITE_PENDING)
			pfd.events |= POLLOUT;
		int r = poll(&pfd, 1, (int)slice);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0) {
			p->quiet_since = now_ms();
			return 0;
		}
	}
}

/* ---------------------------------------------------------------- ops */

static ssize_t chan_read(struct ug_conn *c, void *buf, size_t n, int timeout_ms)
{
	struct ssh_priv *p = c->priv;
	int64_t start = now_ms();
	uint32_t want = n > SSH_IO_MAX ? SSH_IO_MAX : (uint32_t)n;

	if (n == 0)
		return 0;
	for (;;) {
		int r = drain_stderr(p);
		if (r < 0)
			return r;
		int got = ssh_channel_read_nonblocking(p->ch, buf, want, 0);
		if (got > 0)
			return got;
		/* a dropped connection also makes the channel "closed": it must
		 * not pass for the end of the stream */
		if (got >= 0 && !ssh_is_connected(p->s))
			return -ECONNRESET;
		if (got == SSH_EOF || (got == 0 && ssh_channel_is_closed(p->ch))) {
			r = drain_stderr(p);
			line_flush(p);
			return r < 0 ? r : 0;
		}
		if (got < 0)
			return session_error(p);
		r = wait_io(p, start, timeout_ms);
		if (r < 0)
			return r;
	}
}

/* Writes wait for window space at most c->timeout_ms without progress. */
static int chan_write(struct ug_conn *c, const void *buf, size_t n)
{
	struct ssh_priv *p = c->priv;
	const char *q = buf;
	int64_t progress = now_ms();

	if (p->eof_sent)
		return -EPIPE;
	while (n > 0) {
		uint32_t chunk = n > SSH_IO_MAX ? SSH_IO_MAX : (uint32_t)n;
		int w = ssh_channel_write(p->ch, q, chunk);

		if (w < 0) {
			/* the remote closed the channel, or the session died */
			if (ssh_channel_is_closed(p->ch) || ssh_channel_is_eof(p->ch))
				return ssh_is_connected(p->s) ? -EPIPE : -ECONNRESET;
			return session_error(p);
		}
		if (w > 0) {
			q += w;
			n -= (size_t)w;
			progress = now_ms();
			continue;
		}
		/* no window: the remote may be blocked on its stderr */
		int r = drain_stderr(p);
		if (r < 0)
			return r;
		r = wait_io(p, progress, c->timeout_ms);
		if (r < 0)
			return r;
	}
	return 0;
}

static int chan_shutdown(struct ug_conn *c)
{
	struct ssh_priv *p = c->priv;

	if (p->eof_sent)
		return 0;
	p->eof_sent = true;
	if (ssh_channel_is_closed(p->ch))
		return 0;
	if (ssh_channel_send_eof(p->ch) != SSH_OK)
		return session_error(p);
	return 0;
}

/* The exit status, if the command has ended: it follows the end of its
 * output, so wait a little for it then, and not at all otherwise. */
static int exit_status(struct ssh_priv *p)
{
	int64_t start = now_ms();

	if (!ssh_channel_is_eof(p->ch))
		return 0;
	for (;;) {
		int st = ssh_channel_get_exit_status(p->ch);
		if (st >= 0)
			return st;
		if (p->exit_signal)
			return p->exit_signal;
		if (ssh_channel_is_closed(p->ch) || !ssh_is_connected(p->s))
			return 0;
		if (drain_stderr(p) < 0 || wait_io(p, start, SSH_EXIT_WAIT_MS) < 0)
			return 0;
	}
}

static void ssh_priv_free(struct ssh_priv *p)
{
	if (p->ch) {
		if (!ssh_channel_is_closed(p->ch))
			ssh_channel_close(p->ch);
		ssh_channel_free(p->ch);
	}
	if (p->s) {
		if (ssh_is_connected(p->s))
			ssh_disconnect(p->s);
		ssh_free(p->s);
	}
	free(p);
}

static int chan_close(struct ug_conn *c)
{
	struct ssh_priv *p = c->priv;
	int status = exit_status(p);

	(void)drain_stderr(p);
	line_flush(p);
	ssh_priv_free(p);
	free(c);
	return status;
}

static const struct ug_conn_ops chan_ops = {
	.read = chan_read,
	.write = chan_write,
	.shutdown = chan_shutdown,
	.close = chan_close,
};

static void on_exit_signal(ssh_session s, ssh_channel ch, const char *sig,
			   int core, const char *errmsg, const char *lang,
			   void *userdata)
{
	static const struct { const char *name; int num; } sigs[] = {
		{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
		{ "ILL", SIGILL }, { "ABRT", SIGABRT }, { "FPE", SIGFPE },
		{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },
		{ "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM },
		{ "TERM", SIGTERM },
	};
	struct ssh_priv *p = userdata;

	(void)s, (void)ch, (void)core, (void)errmsg, (void)lang;
	/* as a local shell reports it; 255 (ssh's "no status") if unknown */
	p->exit_signal = 255;
	for (size_t i = 0; sig && i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcmp(sig, sigs[i].name) == 0)
			p->exit_signal = 128 + sigs[i].num;
}

/* ---------------------------------------------------------------- connect */

/* Host names and addresses only: no "user@", no option-like "-x", nothing
 * that needs quoting in the commands our messages suggest. */
static bool host_valid(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > SSH_HOST_MAX || h[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = h[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		      ch == '_' || ch == ':' || ch == '%'))
			return false;
	}
	return true;
}

/* libssh reports connect failures as text only. */
static int connect_errno(const char *msg)
{
	if (strstr(msg, "refused"))
		return -ECONNREFUSED;
	if (strstr(msg, "imeout") || strstr(msg, "timed out"))
		return -ETIMEDOUT;
	if (strstr(msg, "unreachable") || strstr(msg, "No route") ||
	    strstr(msg, "resolve") || strstr(msg, "Name or service"))
		return -EHOSTUNREACH;
	return -EPROTO;
}

static void tcp_keepalive(int fd, int keepalive_s)
{
	int on = 1, idle = keepalive_s, cnt = SSH_TCP_KEEPCNT;
	unsigned user_ms = (unsigned)keepalive_s * (SSH_TCP_KEEPCNT + 1) * 1000u;

	/* best effort: a socket without them still works */
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	/* our keepalives are data: unacknowledged data would otherwise be
	 * retried for about 15 minutes before the peer counts as dead */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
}

/* "SHA256:..." of the server's host key, or "unknown". */
static void host_fingerprint(ssh_session s, char *out, size_t out_size)
{
	ssh_key key = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp = NULL;

	snprintf(out, out_size, "unknown");
	if (ssh_get_server_publickey(s, &key) != SSH_OK)
		return;
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) == 0)
		fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	if (fp)
		snprintf(out, out_size, "%s", fp);
	ssh_string_free_char(fp);
	ssh_clean_pubkey_hash(&hash);
	ssh_key_free(key);
}

static void quote_or_raw(const char *s, char *out, size_t out_size)
{
	/* an absurdly long path only makes a truncated message */
	if (ug_shell_quote(s, out, out_size) < 0)
		snprintf(out, out_size, "'%s'", s);
}

static int check_host_key(ssh_session s, const struct ug_ssh_opts *o,
			  unsigned port, struct ug_error *err)
{
	char name[SSH_HOST_MAX + 16], fp[128], qfile[600], qname[300];
	enum ssh_known_hosts_e st = ssh_session_is_known_server(s);

	if (st == SSH_KNOWN_HOSTS_OK)
		return 0;
	/* the name known_hosts files use for this host and port */
	if (port == SSH_DEFAULT_PORT)
		snprintf(name, sizeof(name), "%s", o->host);
	else
		snprintf(name, sizeof(name), "[%s]:%u", o->host, port);
	quote_or_raw(o->known_hosts, qfile, sizeof(qfile));
	quote_or_raw(name, qname, sizeof(qname));
	host_fingerprint(s, fp, sizeof(fp));
	switch (st) {
	case SSH_KNOWN_HOSTS_UNKNOWN:
	case SSH_KNOWN_HOSTS_NOT_FOUND:
		return ug_error_set(err, -EKEYREJECTED,
				    "host key of '%s' is not in '%s' (fingerprint %s); "
				    "if it is right, add it with: ssh-keyscan -p %u %s >> %s",
				    name, o->known_hosts, fp, port, o->host, qfile);
	case SSH_KNOWN_HOSTS_CHANGED:
	case SSH_KNOWN_HOSTS_OTHER:
		return ug_error_set(err, -EKEYREJECTED,
				    "HOST KEY CHANGED for '%s' (now %s): possible "
				    "man-in-the-middle attack; if the server was "
				    "reinstalled, remove the old key with: "
				    "ssh-keygen -R %s -f %s",
				    name, fp, qname, qfile);
	default:
		return ug_error_set(err, -EPROTO,
				    "cannot check the host key of '%s' against '%s': %s",
				    name, o->known_hosts, ssh_get_error(s));
	}
}

static int authenticate(ssh_session s, const struct ug_ssh_opts *o,
			const char *hostport, struct ug_error *err)
{
	char *user = NULL;
	int rc;

	if (o->identity) {
		ssh_key key = NULL;

		rc = ssh_pki_import_privkey_file(o->identity, NULL, NULL, NULL, &key);
		if (rc == SSH_EOF)
			return ug_error_set(err, -ENOENT,
					    "cannot read identity file '%s'", o->identity);
		if (rc != SSH_OK)
			return ug_error_set(err, -EINVAL,
					    "identity file '%s' is not a private key usable "
					    "without a passphrase (for a protected key, "
					    "give no identity and use ssh-agent)", o->identity);
		rc = ssh_userauth_publickey(s, NULL, key);
		ssh_key_free(key);
	} else {
		rc = ssh_userauth_publickey_auto(s, NULL, NULL);
	}
	if (rc == SSH_AUTH_SUCCESS)
		return 0;
	if (rc == SSH_AUTH_ERROR)
		return ug_error_set(err, ssh_is_connected(s) ? -EPROTO : -ECONNRESET,
				    "authentication with '%s' failed: %s",
				    hostport, ssh_get_error(s));
	if (ssh_options_get(s, SSH_OPTIONS_USER, &user) != SSH_OK)
		user = NULL;
	rc = ug_error_set(err, -EACCES,
			  "public-key authentication as '%s' refused by '%s' "
			  "(is the key in the server's authorized_keys?)",
			  user ? user : "?", hostport);
	ssh_string_free_char(user);
	return rc;
}

static int set_options(ssh_session s, const struct ug_ssh_opts *o,
		       unsigned port, struct ug_error *err)
{
	bool no = false;
	int verbosity = SSH_LOG_NONE;
	long timeout = o->connect_timeout_s > 0 ? o->connect_timeout_s
						: SSH_CONNECT_TIMEOUT_S;

	if (ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_HOST, o->host) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_PORT, &port) < 0 ||
	    (o->user && ssh_options_set(s, SSH_OPTIONS_USER, o->user) < 0) ||
	    ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, o->known_hosts) < 0 ||
	    /* only the given file counts, not /etc/ssh/ssh_known_hosts */
	    ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout) < 0)
		return ug_error_set(err, -EINVAL, "ssh options for '%s': %s",
				    o->host, ssh_get_error(s));
	return 0;
}

int ug_ssh_connect(const struct ug_ssh_opts *o, const char *command,
		   struct ug_conn **ret, struct ug_error *err)
{
	unsigned port = o->port ? o->port : SSH_DEFAULT_PORT;
	int keepalive_s = o->keepalive_s > 0 ? o->keepalive_s : SSH_KEEPALIVE_S;
	char hostport[SSH_HOST_MAX + 16];
	struct ug_conn *c = NULL;
	struct ssh_priv *p = NULL;
	int r;

	if (!o->host || !host_valid(o->host))
		return ug_error_set(err, -EINVAL, "invalid ssh host name '%s'",
				    o->host ? o->host : "");
	if (port > 65535)
		return ug_error_set(err, -EINVAL, "invalid ssh port %u", port);
	if (!o->known_hosts || !*o->known_hosts)
		return ug_error_set(err, -EINVAL, "no known_hosts file for '%s'", o->host);
	if (!command || !*command)
		return ug_error_set(err, -EINVAL, "no command to run on '%s'", o->host);
	if (keepalive_s > INT_MAX / 1000 / (SSH_TCP_KEEPCNT + 1))
		return ug_error_set(err, -EINVAL, "keepalive of %d s is too long", keepalive_s);
	if (strchr(o->host, ':'))
		snprintf(hostport, sizeof(hostport), "[%s]:%u", o->host, port);
	else
		snprintf(hostport, sizeof(hostport), "%s:%u", o->host, port);

	c = calloc(1, sizeof(*c));
	p = calloc(1, sizeof(*p));
	if (!c || !p) {
		r = ug_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	/* libssh logs to stderr by default; the library prints nothing */
	ssh_set_log_level(SSH_LOG_NONE);
	p->s = ssh_new();
	if (!p->s) {
		r = ug_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	r = set_options(p->s, o, port, err);
	if (r < 0)
		goto fail;
	if (ssh_connect(p->s) != SSH_OK) {
		const char *e = ssh_get_error(p->s);
		r = ug_error_set(err, connect_errno(e), "cannot connect to '%s': %s (is its "
				 "sshd running, and are the host and port right in the settings?)",
				 hostport, e);
		goto fail;
	}
	tcp_keepalive(ssh_get_fd(p->s), keepalive_s);
	r = check_host_key(p->s, o, port, err);
	if (r < 0)
		goto fail;
	r = authenticate(p->s, o, hostport, err);
	if (r < 0)
		goto fail;

	p->ch = ssh_channel_new(p->s);
	if (!p->ch) {
		r = ug_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	p->cb.userdata = p;
	p->cb.channel_exit_signal_function = on_exit_signal;
	ssh_callbacks_init(&p->cb);
	if (ssh_set_channel_callbacks(p->ch, &p->cb) != SSH_OK ||
	    ssh_channel_open_session(p->ch) != SSH_OK ||
	    ssh_channel_request_exec(p->ch, command) != SSH_OK) {
		r = ug_error_set(err, session_error(p), "cannot run '%s' on '%s': %s",
				 command, hostport, ssh_get_error(p->s));
		goto fail;
	}
	ssh_set_blocking(p->s, 0);
	p->keepalive_ms = keepalive_s * 1000;
	p->quiet_since = now_ms();
	p->stderr_line = o->stderr_line;
	p->stderr_ctx = o->stderr_ctx;

	c->ops = &chan_ops;
	c->priv = p;
	c->timeout_ms = -1;
	/* a long name is cut: peer only labels messages */
	size_t plen = strnlen(hostport, sizeof(c->peer) - 1);
	memcpy(c->peer, hostport, plen);
	c->peer[plen] = '\0';
	*ret = c;
	return 0;
fail:
	if (p)
		ssh_priv_free(p);
	free(c);
	return r;
}
