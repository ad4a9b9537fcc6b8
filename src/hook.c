/* hook.c - run a terminal hook: posix_spawn into a session of its own,
 * capture its output, bound its time, leave nothing of it behind. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hook.h"

extern char **environ;

/* Bytes of the hook's last output line quoted in a message. */
#define LINE_QUOTE_MAX 160u
/* Longest wait between two looks at whether the hook has exited while
 * something else still holds its output open. */
#define SLICE_MAX_MS 50

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- output */

/* The last sizeof(bytes) bytes the hook wrote, raw. */
struct tail {
	char bytes[1024];
	size_t len;
	bool cut;      /* earlier bytes were dropped */
};

static void tail_add(struct tail *t, const char *p, size_t n)
{
	const size_t cap = sizeof(t->bytes);

	if (n >= cap) {
		memcpy(t->bytes, p + n - cap, cap);
		t->cut = t->cut || t->len > 0 || n > cap;
		t->len = cap;
		return;
	}
	if (t->len + n > cap) {
		size_t drop = t->len + n - cap;
		memmove(t->bytes, t->bytes + drop, t->len - drop);
		t->len -= drop;
		t->cut = true;
	}
	memcpy(t->bytes + t->len, p, n);
	t->len += n;
}

/* Length of the valid UTF-8 sequence at p (at most left bytes), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
	size_t len;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > left || !ug_utf8_valid((const char *)p, len))
		return 0;
	return len;
}

/* Make src[0..n) one printable log line in out (size out_size >= 4):
 * trailing line ends dropped, newlines as " | ", tabs as blanks, other
 * control characters and bytes that are not UTF-8 as '?'. When it does
 * not fit, the end is kept (the last thing a failing program says is
 * usually why). */
static void sanitize(const char *src, size_t n, bool cut, char *out, size_t out_size)
{
	const unsigned char *s = (const unsigned char *)src;
	char tmp[3 * sizeof(((struct tail *)0)->bytes) + 1];
	size_t o = 0, i = 0;

	/* a cut in the middle of a UTF-8 sequence is not the hook's fault */
	while (cut && i < n && i < 3 && (s[i] & 0xc0) == 0x80)
		i++;
	while (n > i && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	while (i < n && o + 3 < sizeof(tmp)) {
		size_t len;

		if (s[i] == '\n') {
			memcpy(tmp + o, " | ", 3);
			o += 3;
		} else if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
			/* CRLF is one line end */
		} else if (s[i] == '\t') {
			tmp[o++] = ' ';
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			tmp[o++] = '?';
		} else if (s[i] < 0x80) {
			tmp[o++] = (char)s[i];
		} else if ((len = utf8_seq(s + i, n - i)) > 0) {
			memcpy(tmp + o, s + i, len);
			o += len;
			i += len;
			continue;
		} else {
			tmp[o++] = '?';
		}
		i++;
	}
	size_t start = o > out_size - 1 ? o - (out_size - 1) : 0;
	while (start < o && ((unsigned char)tmp[start] & 0xc0) == 0x80)
		start++;
	memcpy(out, tmp + start, o - start);
	out[o - start] = '\0';
}

/* The last non-empty line of the output, sanitized and shortened, for a
 * message. Empty if there is none. */
static void last_line(const struct tail *t, char *out, size_t out_size)
{
	size_t end = t->len, begin;
	char line[LINE_QUOTE_MAX + 4];

	while (end > 0 && (t->bytes[end - 1] == '\n' || t->bytes[end - 1] == '\r' ||
			   t->bytes[end - 1] == ' ' || t->bytes[end - 1] == '\t'))
		end--;
	begin = end;
	while (begin > 0 && t->bytes[begin - 1] != '\n')
		begin--;
	bool cut = begin == 0 && t->cut;
	/* the start of a line says most; keep it */
	bool longer = end - begin > LINE_QUOTE_MAX;
	sanitize(t->bytes + begin, longer ? LINE_QUOTE_MAX : end - begin, cut, line,
		 sizeof(line) - 3);
	snprintf(out, out_size, "%s%s", line, longer ? "..." : "");
}

/* "; its last output: '...'" or "; it wrote nothing", for messages. */
static void output_note(const struct tail *t, char *out, size_t out_size)
{
	char line[LINE_QUOTE_MAX + 8];

	last_line(t, line, sizeof(line));
	if (line[0])
		snprintf(out, out_size, "; its last output: '%s'", line);
	else
		snprintf(out, out_size, "; it wrote nothing");
}

/* Read what the pipe holds (it is non-blocking), but at most 1 MiB, so
 * that a hook writing without end cannot keep the caller from looking at
 * the clock. Returns 1 at end of stream, else 0. */
static int drain(int fd, struct tail *t)
{
	char buf[16384];

	for (int i = 0; i < 64; i++) {
		ssize_t got = read(fd, buf, sizeof(buf));
		if (got > 0) {
			tail_add(t, buf, (size_t)got);
			continue;
		}
		if (got == 0)
			return 1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		return 1; /* nothing more will come through a broken pipe */
	}
	return 0;
}

/* ---------------------------------------------------------------- spawn */

/* The caller's environment with env_add laid over it: a new array of
 * borrowed strings, owned (the array only) by the caller. */
static int build_env(char *const env_add[], char ***ret)
{
	size_t n_env = 0, n_add = 0, k = 0, total;
	char **env;

	for (char **e = environ; e && *e; e++)
		n_env++;
	for (char *const *a = env_add; a && *a; a++)
		n_add++;
	if (ug_size_add(n_env, n_add, &total) < 0 || ug_size_add(total, 1, &total) < 0 ||
	    ug_size_mul(total, sizeof(*env), &total) < 0)
		return -E2BIG;
	env = malloc(total);
	if (!env)
		return -ENOMEM;
	for (char **e = environ; e && *e; e++) {
		size_t keylen = strcspn(*e, "=");
		bool replaced = false;

		for (size_t j = 0; j < n_add && !replaced; j++)
			replaced = strncmp(env_add[j], *e, keylen + 1) == 0 &&
				   (*e)[keylen] == '=';
		if (!replaced)
			env[k++] = *e;
	}
	for (size_t j = 0; j < n_add; j++)
		env[k++] = env_add[j];
	env[k] = NULL;
	*ret = env;
	return 0;
}

/* Start argv in a session of its own, stdin /dev/null, stdout and stderr
 * the write end of the output pipe, nothing else open, an empty signal
 * mask and default signal actions. Returns the positive errno of
 * posix_spawn (which reports exec failing), or 0. */
static int spawn(char *const argv[], char *const envp[], int out_fd, pid_t *ret_pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int e;

	e = posix_spawn_file_actions_init(&fa);
	if (e)
		return e;
	e = posix_spawnattr_init(&at);
	if (e) {
		posix_spawn_file_actions_destroy(&fa);
		return e;
	}
	sigemptyset(&none);
	sigfillset(&all);
	/* out_fd is 3 or above, so neither the dups nor the open of
	 * /dev/null can clobber it before it is used */
	e = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	if (!e)
		e = posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
	if (!e)
		e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	/* every upgrid fd is O_CLOEXEC, but a library's or the caller's may
	 * not be: a hook must not hold a lock file or a socket open */
	if (!e)
		e = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	if (!e)
		e = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
						     POSIX_SPAWN_SETSIGDEF);
	if (!e)
		e = posix_spawnattr_setsigmask(&at, &none);
	if (!e)
		e = posix_spawnattr_setsigdefault(&at, &all);
	if (!e)
		e = posix_spawn(ret_pid, argv[0], &fa, &at, argv, envp);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return e;
}

/* ---------------------------------------------------------------- run */

static const char *nonnull(const char *name)
{
	return name && *name ? name : "hook";
}

int ug_hook_run(const char *name, char *const argv[], char *const env_add[],
		unsigned timeout_s, struct ug_hook_result *res, struct ug_error *err)
{
	struct ug_hook_result local;
	struct tail *t = NULL;
	char **envp = NULL;
	int p[2] = { -1, -1 }, rfd = -1, wfd = -1;
	int64_t t0, deadline, stop_at = 0, t_end = 0;
	bool eof = false, exited = false, stopping = false, timed_out = false;
	bool have_status = false;
	int slice = 1, status = 0;
	char note[LINE_QUOTE_MAX + 40];
	pid_t pid;
	int r, e;

	name = nonnull(name);
	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	res->status = -1;

	if (!argv || !argv[0] || argv[0][0] != '/')
		return ug_error_set(err, -EINVAL, "%s '%s' is not an absolute path: fix the "
				    "'%s' line in terminal.conf", name,
				    argv && argv[0] ? argv[0] : "", name);
	if (timeout_s < 1 || timeout_s > UG_HOOK_TIMEOUT_MAX)
		return ug_error_set(err, -EINVAL, "%s '%s': timeout of %u s is not in 1..%u",
				    name, argv[0], timeout_s, UG_HOOK_TIMEOUT_MAX);
	for (char *const *a = env_add; a && *a; a++)
		if ((*a)[0] == '=' || !strchr(*a, '='))
			return ug_error_set(err, -EINVAL, "%s '%s': environment entry '%s' is "
					    "not KEY=VALUE", name, argv[0], *a);

	t = calloc(1, sizeof(*t));
	if (!t)
		return ug_error_set(err, -ENOMEM, "%s '%s': out of memory", name, argv[0]);
	r = build_env(env_add, &envp);
	if (r < 0) {
		ug_error_set(err, r, "%s '%s': cannot build its environment: %s", name, argv[0],
			     strerror(-r));
		goto out;
	}
	/* above 2 (the child's stdio are dup2'ed from it, and a caller with
	 * stdio closed could get 0..2 from pipe2), close-on-exec (no other
	 * child may inherit it: it would hold the hook's output open) */
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    (rfd = fcntl(p[0], F_DUPFD_CLOEXEC, 3)) < 0 ||
	    (wfd = fcntl(p[1], F_DUPFD_CLOEXEC, 3)) < 0) {
		r = -errno;
		ug_error_set(err, r, "%s '%s': cannot make a pipe: %s", name, argv[0],
			     strerror(-r));
		goto out;
	}
	close(p[0]);
	close(p[1]);
	p[0] = p[1] = -1;
	/* pipe2 made both ends non-blocking; the hook's stdout must block
	 * as any pipe does (each end is an open file of its own) */
	if (fcntl(wfd, F_SETFL, 0) < 0) {
		r = -errno;
		ug_error_set(err, r, "%s '%s': cannot set up its output pipe: %s", name,
			     argv[0], strerror(-r));
		goto out;
	}

	t0 = mono_ms();
	e = spawn(argv, envp, wfd, &pid);
	close(wfd);
	wfd = -1;
	if (e) {
		r = ug_error_set(err, -e, "%s '%s' cannot be run: %s: fix the '%s' line in "
				 "terminal.conf", name, argv[0], strerror(e), name);
		goto out;
	}

	/* Wait for the hook to exit, reading its output all along so that it
	 * never blocks on a full pipe. It is not reaped until the end
	 * (WNOWAIT): while its zombie stays, its pid stays its process
	 * group's id, so kill(-pid) cannot reach anybody else's processes. */
	deadline = t0 + (int64_t)timeout_s * 1000;

	for (;;) {
		int64_t now = mono_ms();

		if (!exited) {
			siginfo_t si;

			memset(&si, 0, sizeof(si));
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
				exited = si.si_pid == pid;
			} else if (errno == ECHILD) {
				/* SIGCHLD set to SIG_IGN: the kernel reaped it */
				exited = true;
			}
			if (exited)
				t_end = now;
		}
		if (!stopping && (exited || now >= deadline)) {
			/* the hook is done or out of time: whatever it left of
			 * its process group is stopped too */
			timed_out = !exited;
			stopping = true;
			stop_at = now + UG_HOOK_GRACE_S * 1000;
			kill(-pid, SIGTERM);
			slice = 1;
		}
		if (stopping && ((exited && eof) || now >= stop_at))
			break;

		int64_t next = stopping ? stop_at : deadline;
		int wait_ms = (int)(next - now < slice ? next - now : slice);
		if (wait_ms < 0)
			wait_ms = 0;
		if (!eof) {
			struct pollfd pfd = { .fd = rfd, .events = POLLIN };
			int n = poll(&pfd, 1, wait_ms);
			if (n > 0) {
				eof = drain(rfd, t) == 1;
				if (eof)
					slice = 1; /* its exit follows at once */
				continue;
			}
		} else {
			struct timespec ts = { 0, (long)wait_ms * 1000000L };
			nanosleep(&ts, NULL);
		}
		if (slice < SLICE_MAX_MS)
			slice *= 2;
	}

	/* SIGKILL for what did not go in the grace period, then reap */
	kill(-pid, SIGKILL);
	for (;;) {
		pid_t w = waitpid(pid, &status, 0);
		if (w == pid) {
			have_status = true;
			break;
		}
		if (w < 0 && errno != EINTR)
			break;
	}
	if (!exited)
		t_end = mono_ms();
	if (!eof)
		drain(rfd, t); /* what is there; a process that left the group
				* may hold the pipe forever, so no waiting */

	res->timed_out = timed_out;
	res->seconds = (double)(t_end - t0) / 1000.0;
	if (have_status && WIFEXITED(status))
		res->status = WEXITSTATUS(status);
	else if (have_status && WIFSIGNALED(status))
		res->signal = WTERMSIG(status);
	sanitize(t->bytes, t->len, t->cut, res->output, sizeof(res->output));

	output_note(t, note, sizeof(note));
	if (timed_out)
		r = ug_error_set(err, -ETIMEDOUT, "%s '%s' was still running after %u s and "
				 "was stopped (raise '%s-timeout' in terminal.conf if it needs "
				 "longer)%s", name, argv[0], timeout_s, name, note);
	else if (!have_status)
		r = ug_error_set(err, -ECHILD, "%s '%s': cannot learn its exit status (is "
				 "SIGCHLD ignored?)%s", name, argv[0], note);
	else if (res->signal)
		r = ug_error_set(err, -EIO, "%s '%s' was killed by signal %d (%s) after %.1f s%s",
				 name, argv[0], res->signal, strsignal(res->signal),
				 res->seconds, note);
	else if (res->status != 0)
		r = ug_error_set(err, -EIO, "%s '%s' failed with exit status %d after %.1f s%s",
				 name, argv[0], res->status, res->seconds, note);
	else
		r = 0;
out:
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	if (rfd >= 0)
		close(rfd);
	if (wfd >= 0)
		close(wfd);
	free(envp);
	free(t);
	return r;
}
