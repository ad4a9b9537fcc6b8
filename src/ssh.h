/* ssh.h - the libssh client transport: one session, one exec channel.
 *
 * Host keys are checked strictly against known_hosts: an unknown or changed
 * key is refused, with a message that says how to accept it. Authentication
 * is by public key only (the identity file, or ssh-agent and the default
 * identities when none is given). ~/.ssh/config is not read, so daemons and
 * tests behave the same everywhere. The channel's stderr is drained into
 * the log on every read (an undrained stderr stalls the channel), and a
 * keepalive goes out every keepalive_s seconds while a read waits.
 *
 * The returned conn: reads wait at most their timeout_ms (-ETIMEDOUT); a
 * write waits for window space at most c->timeout_ms without progress (set
 * to -1, no limit, by ug_ssh_connect); a connection that drops is
 * -ECONNRESET, never end of stream; a write after the remote closed the
 * channel is -EPIPE. close returns the remote exit status (waiting up to
 * 5 s for it once the output has ended), 128 + N for a command killed by
 * signal N, or 0 when there is none. */
#ifndef UG_SSH_H
#define UG_SSH_H

#include "conn.h"
#include "util.h"

struct ug_ssh_opts {
	const char *host;          /* name or address */
	unsigned port;             /* 0: 22 */
	const char *user;          /* NULL: the current user */
	const char *identity;      /* private key file; NULL: agent + defaults */
	const char *known_hosts;   /* required */
	int connect_timeout_s;     /* 0: 10 */
	int keepalive_s;           /* 0: 15; also TCP keepalive */
	/* Called with each line the remote command writes to stderr (may be
	 * NULL: such lines are dropped), without its newline; lines longer
	 * than 1 KiB are cut to their first 1 KiB; a CR before the newline
	 * is dropped, other control characters but tab become '?'. */
	void (*stderr_line)(void *ctx, const char *line);
	void *stderr_ctx;
};

/* Connect, verify the host key, authenticate and exec command. Errors
 * (with an actionable message in err):
 *   -EHOSTUNREACH / -ECONNREFUSED / -ETIMEDOUT   cannot connect
 *   -EKEYREJECTED  host key unknown, changed, or of another type
 *   -EACCES        public-key authentication refused
 *   -ENOENT        the identity file cannot be read
 *   -EINVAL        bad options (host name, port), or an identity file that
 *                  is not a private key usable without a passphrase
 *   -EPROTO        any other SSH failure (-ECONNRESET if the connection
 *                  dropped while authenticating or starting the command) */
int ug_ssh_connect(const struct ug_ssh_opts *o, const char *command,
		   struct ug_conn **ret, struct ug_error *err);

/* Quote s for a POSIX shell (single quotes) into out; -E2BIG if too long
 * (out is then unspecified). */
int ug_shell_quote(const char *s, char *out, size_t out_size);

#endif
