/* ug-conn-probe - drive one ssh transport connection from the shell, for
 * the integration tests (t020-ssh-transport.sh).
 *
 *   ug-conn-probe --host H --port P --identity F --known-hosts F
 *                 [--user U] [--timeout-ms N] [--keepalive-s N]
 *                 [--connect-timeout-s N] COMMAND...
 *
 * Connects with ug_ssh_connect, sends its stdin to the remote command,
 * closes the sending side, and copies the command's output to stdout until
 * it ends. Remote stderr lines go to stderr as "remote: LINE".
 *
 * Exit status: 0 done; 1 other error; 2 usage; 4 host key refused;
 * 5 authentication refused; 6 cannot connect; 7 read timed out;
 * 8 the remote command exited non-zero (its status is printed).
 *
 *   ug-conn-probe --quote STRING [--quote-size N]
 *
 * prints ug_shell_quote(STRING) with an N-byte buffer (default 4096), or
 * fails with exit 3 if it does not fit. */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "ssh.h"
#include "util.h"

#define PROBE_CHUNK 65536
#define PROBE_COMMAND_MAX 4096

static void on_stderr_line(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "remote: %s\n", line);
}

static int connect_exit(int rc)
{
	switch (-rc) {
	case EKEYREJECTED:
		return 4;
	case EACCES:
		return 5;
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ETIMEDOUT:
		return 6;
	default:
		return 1;
	}
}

static int io_fail(struct ug_conn *c, const char *what, int rc, int timeout_ms)
{
	if (rc == -ETIMEDOUT)
		fprintf(stderr, "ug-conn-probe: %s '%s': timed out after %d ms\n",
			what, c->peer, timeout_ms);
	else
		fprintf(stderr, "ug-conn-probe: %s '%s': %s\n", what, c->peer,
			strerror(-rc));
	ug_conn_close(c);
	return rc == -ETIMEDOUT ? 7 : 1;
}

/* Copy whatever output the connection has now (timeout 0) or until it
 * ends (timeout_ms). Returns 1 at end of stream, 0 if more may come. */
static int copy_out(struct ug_conn *c, char *buf, int timeout_ms, int *rc)
{
	for (;;) {
		ssize_t n = ug_conn_read(c, buf, PROBE_CHUNK, timeout_ms);
		if (n == 0)
			return 1;
		if (n == -ETIMEDOUT && timeout_ms == 0)
			return 0;
		if (n < 0) {
			*rc = (int)n;
			return -1;
		}
		int w = ug_write_all(STDOUT_FILENO, buf, (size_t)n);
		if (w < 0) {
			*rc = w;
			return -1;
		}
	}
}

static int num_opt(const char *name, const char *s, uint64_t max, uint64_t *ret)
{
	if (ug_parse_u64(s, max, ret) < 0) {
		fprintf(stderr, "ug-conn-probe: --%s: '%s' is not a number up to %llu\n",
			name, s, (unsigned long long)max);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "user", required_argument, NULL, 'u' },
		{ "identity", required_argument, NULL, 'i' },
		{ "known-hosts", required_argument, NULL, 'k' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "keepalive-s", required_argument, NULL, 'a' },
		{ "connect-timeout-s", required_argument, NULL, 'c' },
		{ "quote", required_argument, NULL, 'q' },
		{ "quote-size", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct ug_ssh_opts o = { .stderr_line = on_stderr_line };
	struct ug_error err = { "" };
	struct ug_conn *c = NULL;
	char command[PROBE_COMMAND_MAX] = "";
	static char buf[PROBE_CHUNK];
	const char *quote = NULL;
	size_t quote_size = PROBE_COMMAND_MAX;
	int timeout_ms = 30000, opt, rc = 0;
	uint64_t v;

	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h': o.host = optarg; break;
		case 'u': o.user = optarg; break;
		case 'i': o.identity = optarg; break;
		case 'k': o.known_hosts = optarg; break;
		case 'p':
			if (num_opt("port", optarg, 65535, &v) < 0)
				return 2;
			o.port = (unsigned)v;
			break;
		case 't':
			if (num_opt("timeout-ms", optarg, 3600000, &v) < 0)
				return 2;
			timeout_ms = (int)v;
			break;
		case 'a':
			if (num_opt("keepalive-s", optarg, 3600, &v) < 0)
				return 2;
			o.keepalive_s = (int)v;
			break;
		case 'c':
			if (num_opt("connect-timeout-s", optarg, 3600, &v) < 0)
				return 2;
			o.connect_timeout_s = (int)v;
			break;
		case 'q': quote = optarg; break;
		case 's':
			if (num_opt("quote-size", optarg, PROBE_COMMAND_MAX, &v) < 0)
				return 2;
			quote_size = (size_t)v;
			break;
		default:
			return 2;
		}
	}
	if (quote) {
		/* exactly quote_size bytes, so ASan sees any overrun */
		char *q = malloc(quote_size ? quote_size : 1);
		if (!q)
			return 1;
		rc = ug_shell_quote(quote, q, quote_size);
		if (rc == 0)
			printf("%s\n", q);
		else
			fprintf(stderr, "ug-conn-probe: cannot quote: %s\n", strerror(-rc));
		free(q);
		return rc == 0 ? 0 : 3;
	}
	if (optind >= argc || !o.host || !o.known_hosts) {
		fprintf(stderr, "usage: ug-conn-probe --host H [--port P] [--user U] "
			"[--identity F] --known-hosts F [--timeout-ms N] "
			"[--keepalive-s N] [--connect-timeout-s N] COMMAND...\n");
		return 2;
	}
	for (size_t len = 0; optind < argc; optind++) {
		int n = snprintf(command + len, sizeof(command) - len, "%s%s",
				 len ? " " : "", argv[optind]);
		if (n < 0 || (size_t)n >= sizeof(command) - len) {
			fprintf(stderr, "ug-conn-probe: command too long\n");
			return 2;
		}
		len += (size_t)n;
	}

	rc = ug_ssh_connect(&o, command, &c, &err);
	if (rc < 0) {
		fprintf(stderr, "ug-conn-probe: %s\n", err.msg);
		return connect_exit(rc);
	}
	c->timeout_ms = timeout_ms;

	/* interleave: a command that echoes could otherwise fill both windows */
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0) {
			perror("ug-conn-probe: stdin");
			ug_conn_close(c);
			return 1;
		}
		if (n == 0)
			break;
		rc = ug_conn_write(c, buf, (size_t)n);
		if (rc < 0)
			return io_fail(c, "write to", rc, timeout_ms);
		int end = copy_out(c, buf, 0, &rc);
		if (end < 0)
			return io_fail(c, "read from", rc, timeout_ms);
		if (end > 0)
			break;
	}
	rc = ug_conn_shutdown(c);
	if (rc < 0)
		return io_fail(c, "shutdown of", rc, timeout_ms);
	if (copy_out(c, buf, timeout_ms, &rc) < 0)
		return io_fail(c, "read from", rc, timeout_ms);

	int status = ug_conn_close(c);
	if (status != 0) {
		fprintf(stderr, "ug-conn-probe: remote command exited with status %d\n",
			status);
		return 8;
	}
	return 0;
}
