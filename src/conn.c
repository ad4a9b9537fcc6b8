/* conn.c - byte-stream transports: fd pairs and local child processes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A debt under this is carried rather than slept: many tiny sleeps cost
 * more in wakeups than they smooth. */
#define BW_SLEEP_MIN_NS (10 * 1000 * 1000)
/* The longest one read sleeps; the rest of the debt waits for the next. */
#define BW_SLEEP_MAX_NS (1000 * 1000 * 1000)

/* Bring the debt up to date: time gone by since bw_since_ns paid for
 * rate bytes a second of it, down to no debt (never to a credit). */
static void bw_pay(struct ug_conn *c, int64_t now)
{
	double paid = (double)(now - c->bw_since_ns) * (double)c->bw_rate / 1e9;

	c->bw_debt = c->bw_debt > paid ? c->bw_debt - paid : 0;
	c->bw_since_ns = now;
}

/* A leaky bucket, as rsync's sleep_for_bwlimit: n bytes just read add to
 * the debt, time pays it off at the limit, and a debt worth more than
 * BW_SLEEP_MIN_NS of time is slept (at most BW_SLEEP_MAX_NS at once). */
static void bw_account(struct ug_conn *c, size_t n)
{
	int64_t now = mono_ns(), sleep_ns;
	double debt_ns;

	if (c->bw_rate != c->bwlimit || c->bw_since_ns == 0) {
		c->bw_rate = c->bwlimit;
		c->bw_debt = 0;
		c->bw_since_ns = now;
	}
	bw_pay(c, now);
	c->bw_debt += (double)n;
	debt_ns = c->bw_debt * 1e9 / (double)c->bw_rate;
	if (debt_ns < BW_SLEEP_MIN_NS)
		return;
	sleep_ns = debt_ns > BW_SLEEP_MAX_NS ? BW_SLEEP_MAX_NS : (int64_t)debt_ns;
	struct timespec ts = { (time_t)(sleep_ns / 1000000000), (long)(sleep_ns % 1000000000) };
	/* an interrupted sleep is fine: the debt it leaves is carried */
	nanosleep(&ts, NULL);
	bw_pay(c, mono_ns());
}

ssize_t ug_conn_read(struct ug_conn *c, void *buf, size_t n, int timeout_ms)
{
	ssize_t r = c->ops->read(c, buf, n, timeout_ms);

	if (r > 0) {
		c->bytes_in += (uint64_t)r;
		if (c->bwlimit)
			bw_account(c, (size_t)r);
	}
	return r;
}

void ug_conn_set_bwlimit(struct ug_conn *c, uint64_t bytes_per_s)
{
	c->bwlimit = bytes_per_s;
	c->bw_rate = bytes_per_s;
	c->bw_debt = 0;
	c->bw_since_ns = 0; /* starts at the next read */
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ug_conn_read_exact(struct ug_conn *c, void *buf, size_t n)
{
	uint8_t *p = buf;
	int64_t deadline = c->timeout_whole && c->timeout_ms >= 0 ? mono_ms() + c->timeout_ms : 0;

	while (n > 0) {
		int t = c->timeout_ms;
		if (deadline) {
			int64_t left = deadline - mono_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			t = (int)left;
		}
		ssize_t r = ug_conn_read(c, p, n, t);
		if (r < 0)
			return (int)r;
		if (r == 0)
			return -EPROTO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int ug_conn_write(struct ug_conn *c, const void *buf, size_t n)
{
	int r = c->ops->write(c, buf, n);

	if (r >= 0)
		c->bytes_out += n;
	return r;
}

int ug_conn_shutdown(struct ug_conn *c)
{
	return c->ops->shutdown(c);
}

int ug_conn_close(struct ug_conn *c)
{
	if (!c)
		return 0;
	return c->ops->close(c);
}

/* ---------------------------------------------------------------- fds */

struct fd_priv {
	int rfd, wfd;
	bool own;
	pid_t child;     /* spawn: the process to reap, else 0 */
};

static ssize_t fd_read(struct ug_conn *c, void *buf, size_t n, int timeout_ms)
{
	struct fd_priv *p = c->priv;

	for (;;) {
		struct pollfd pfd = { .fd = p->rfd, .events = POLLIN };
		int r = poll(&pfd, 1, timeout_ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t got = read(p->rfd, buf, n);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		return got;
	}
}

static int fd_write(struct ug_conn *c, const void *buf, size_t n)
{
	struct fd_priv *p = c->priv;

	if (p->wfd < 0)
		return -EPIPE;
	return ug_write_all(p->wfd, buf, n);
}

static int fd_shutdown(struct ug_conn *c)
{
	struct fd_priv *p = c->priv;

	/* closed even when not owned: the caller asked for end of stream
	 * (one socket for both directions is shut down, not closed) */
	if (p->wfd >= 0 && p->wfd == p->rfd)
		shutdown(p->wfd, SHUT_WR);
	else if (p->wfd >= 0)
		close(p->wfd);
	p->wfd = -1;
	return 0;
}

/* Reap the child; after 5 s ask it to stop, after 10 s kill it. */
static int reap(pid_t pid)
{
	int status;

	for (int i = 0; i < 1000; i++) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			goto done;
		if (w < 0 && errno != EINTR)
			return -errno;
		if (i == 500)
			kill(pid, SIGTERM);
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
done:
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static int fd_close(struct ug_conn *c)
{
	struct fd_priv *p = c->priv;
	int r = 0;

	if (p->own) {
		if (p->wfd >= 0 && p->wfd != p->rfd)
			close(p->wfd);
		if (p->rfd >= 0)
			close(p->rfd);
	}
	if (p->child > 0)
		r = reap(p->child);
	free(p);
	free(c);
	return r;
}

static const struct ug_conn_ops fd_ops = {
	.read = fd_read,
	.write = fd_write,
	.shutdown = fd_shutdown,
	.close = fd_close,
};

int ug_conn_fd_new(int rfd, int wfd, bool own_fds, struct ug_conn **ret)
{
	struct ug_conn *c = calloc(1, sizeof(*c));
	struct fd_priv *p = calloc(1, sizeof(*p));

	if (!c || !p) {
		free(c);
		free(p);
		return -ENOMEM;
	}
	p->rfd = rfd;
	p->wfd = wfd;
	p->own = own_fds;
	c->ops = &fd_ops;
	c->priv = p;
	c->timeout_ms = -1;
	snprintf(c->peer, sizeof(c->peer), "fd %d", rfd);
	*ret = c;
	return 0;
}

/* ---------------------------------------------------------------- spawn */

int ug_conn_spawn(char *const argv[], struct ug_conn **ret, struct ug_error *err)
{
	return ug_conn_spawn_quiet(argv, false, ret, err);
}

int ug_conn_spawn_quiet(char *const argv[], bool quiet, struct ug_conn **ret,
			struct ug_error *err)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, ex[2] = { -1, -1 };
	struct ug_conn *c = NULL;
	pid_t pid;
	int r, e = 0;


	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto fail;
	}
	if (pid == 0) {
		/* child: stdin from in[0], stdout to out[1]; a failed exec
		 * reports its errno through ex (closed by a successful exec) */
		/* through fds >= 3 first: with the parent's stdio closed, a pipe
		 * may itself be fd 0 or 1, and dup2(x, x) keeps close-on-exec */
		int i0 = fcntl(in[0], F_DUPFD, 3), o1 = fcntl(out[1], F_DUPFD, 3);
		if (i0 < 0 || o1 < 0 || dup2(i0, 0) < 0 || dup2(o1, 1) < 0)
			_exit(127);
		close(i0);
		close(o1);
		if (quiet) {
			int dn = open("/dev/null", O_WRONLY);
			if (dn >= 0 && dn != 2) {
				dup2(dn, 2);
				close(dn);
			}
		}
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		e = errno;
		(void)!write(ex[1], &e, sizeof(e));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(ex[1]);
	in[0] = out[1] = ex[1] = -1;
	ssize_t got;
	while ((got = read(ex[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	if (got == (ssize_t)sizeof(e)) {
		waitpid(pid, NULL, 0);
		r = -e;
		goto fail;
	}
	close(ex[0]);
	ex[0] = -1;
	r = ug_conn_fd_new(out[0], in[1], true, &c);
	if (r < 0) {
		close(out[0]);
		close(in[1]);
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return ug_error_set(err, r, "cannot run '%s': %s", argv[0], strerror(-r));
	}
	((struct fd_priv *)c->priv)->child = pid;
	snprintf(c->peer, sizeof(c->peer), "local '%s'", argv[0]);
	*ret = c;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (ex[i] >= 0)
			close(ex[i]);
	}
	return ug_error_set(err, r, "cannot run '%s': %s%s", argv[0], strerror(-r),
			    r == -ENOENT && !strchr(argv[0], '/')
			    ? " (not in PATH: install it, or give its full path in the settings)" : "");
}
