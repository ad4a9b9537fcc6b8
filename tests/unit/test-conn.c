/* test-conn.c - unit tests for src/conn.c: the fd transport over pipes
 * (reads, writes, byte counters, timeouts, end of stream, shutdown, who
 * closes the fds) and the spawn transport (a round trip through cat, exit
 * statuses, a program that does not exist, no pipe leaking into a second
 * child), and the bandwidth limit every read goes through (its average,
 * its 1 s cap on one sleep, no burst after a pause). */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"

TestSuite(conn, .timeout = 30);

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* ---------------------------------------------------------------- fd */

Test(conn, fd_write_then_read_counts_bytes)
{
	int p[2];
	struct ug_conn *c = NULL;
	char buf[16];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(ug_conn_fd_new(p[0], p[1], true, &c), 0);
	cr_assert_not_null(c);
	cr_assert_eq(c->bytes_in, 0);
	cr_assert_eq(c->bytes_out, 0);
	cr_assert_eq(c->timeout_ms, -1, "no read timeout unless asked");
	cr_assert_neq(c->peer[0], '\0', "a peer name for messages");

	cr_assert_eq(ug_conn_write(c, "hello, ", 7), 0);
	cr_assert_eq(ug_conn_write(c, "world", 5), 0);
	cr_assert_eq(c->bytes_out, 12);
	cr_assert_eq(c->bytes_in, 0);

	cr_assert_eq(ug_conn_read_exact(c, buf, 12), 0);
	cr_assert(memcmp(buf, "hello, world", 12) == 0);
	cr_assert_eq(c->bytes_in, 12);
	cr_assert_eq(ug_conn_close(c), 0);
	cr_assert(!fd_is_open(p[0]) && !fd_is_open(p[1]), "own_fds: close closes both");
}

Test(conn, fd_read_returns_what_is_there)
{
	int p[2];
	struct ug_conn *c;
	char buf[64];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(ug_conn_fd_new(p[0], -1, false, &c), 0);
	cr_assert_eq(write(p[1], "abc", 3), 3);
	/* a read asks for more than is there and returns the 3 bytes */
	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 1000), 3);
	cr_assert(memcmp(buf, "abc", 3) == 0);
	cr_assert_eq(c->bytes_in, 3);
	/* and one byte at a time */
	cr_assert_eq(write(p[1], "de", 2), 2);
	cr_assert_eq(ug_conn_read(c, buf, 1, 1000), 1);
	cr_assert_eq(buf[0], 'd');
	cr_assert_eq(ug_conn_read(c, buf, 1, 1000), 1);
	cr_assert_eq(buf[0], 'e');
	cr_assert_eq(c->bytes_in, 5);
	ug_conn_close(c);
	cr_assert(fd_is_open(p[0]) && fd_is_open(p[1]), "not own_fds: close leaves them open");
	close(p[0]);
	close(p[1]);
}

Test(conn, fd_read_timeout)
{
	int p[2];
	struct ug_conn *c;
	char buf[8];
	int64_t t0, dt;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(ug_conn_fd_new(p[0], p[1], true, &c), 0);
	t0 = now_ms();
	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 50), -ETIMEDOUT);
	dt = now_ms() - t0;
	cr_assert_geq(dt, 40, "timed out after %lld ms", (long long)dt);
	cr_assert_lt(dt, 2000, "timed out after %lld ms", (long long)dt);

	/* read_exact takes the conn's default timeout, also mid-way */
	c->timeout_ms = 50;
	cr_assert_eq(ug_conn_read_exact(c, buf, sizeof(buf)), -ETIMEDOUT);
	cr_assert_eq(ug_conn_write(c, "12", 2), 0);
	cr_assert_eq(ug_conn_read_exact(c, buf, 4), -ETIMEDOUT);
	cr_assert_eq(c->bytes_in, 2, "the bytes that did come are counted");
	cr_assert_eq(c->bytes_out, 2);
	ug_conn_close(c);
}

Test(conn, fd_end_of_stream)
{
	int p[2];
	struct ug_conn *c;
	char buf[8];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(ug_conn_fd_new(p[0], -1, true, &c), 0);
	c->timeout_ms = 5000;
	cr_assert_eq(write(p[1], "xyz", 3), 3);
	close(p[1]);
	/* ends early: the rest of a message never comes */
	cr_assert_eq(ug_conn_read_exact(c, buf, 5), -EPROTO);
	cr_assert_eq(c->bytes_in, 3);
	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 1000), 0, "then end of stream");
	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 1000), 0, "and it stays there");
	ug_conn_close(c);
}

Test(conn, fd_shutdown_sends_eof)
{
	int p[2];
	struct ug_conn *c;
	char buf[8];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(ug_conn_fd_new(p[0], p[1], true, &c), 0);
	c->timeout_ms = 2000;
	cr_assert_eq(ug_conn_write(c, "bye", 3), 0);
	cr_assert_eq(ug_conn_shutdown(c), 0);
	cr_assert(!fd_is_open(p[1]), "shutdown closed the sending side");
	cr_assert_eq(ug_conn_write(c, "x", 1), -EPIPE);
	cr_assert_eq(c->bytes_out, 3, "a refused write is not counted");
	cr_assert_eq(ug_conn_read_exact(c, buf, 3), 0);
	cr_assert(memcmp(buf, "bye", 3) == 0);
	/* the peer (here: ourselves) sees end of stream, not a timeout */
	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 2000), 0);
	cr_assert_eq(ug_conn_close(c), 0);
	cr_assert(!fd_is_open(p[0]));
}

Test(conn, close_null_is_noop)
{
	cr_assert_eq(ug_conn_close(NULL), 0);
}

/* ---------------------------------------------------------------- spawn */

static struct ug_conn *spawn_ok(char *const argv[])
{
	struct ug_error err = { { 0 } };
	struct ug_conn *c = NULL;
	int r = ug_conn_spawn(argv, &c, &err);

	cr_assert_eq(r, 0, "spawn '%s': %d (%s)", argv[0], r, err.msg);
	cr_assert_not_null(c);
	c->timeout_ms = 5000; /* a bug fails the test instead of hanging it */
	return c;
}

Test(conn, spawn_cat_round_trip)
{
	char *argv[] = { "cat", NULL };
	struct ug_conn *c = spawn_ok(argv);
	char buf[16];

	cr_assert_neq(c->peer[0], '\0');
	cr_assert_eq(ug_conn_write(c, "ping\n", 5), 0);
	cr_assert_eq(ug_conn_read_exact(c, buf, 5), 0);
	cr_assert(memcmp(buf, "ping\n", 5) == 0);
	cr_assert_eq(ug_conn_write(c, "pong", 4), 0);
	cr_assert_eq(ug_conn_read_exact(c, buf, 4), 0);
	cr_assert(memcmp(buf, "pong", 4) == 0);
	cr_assert_eq(c->bytes_out, 9);
	cr_assert_eq(c->bytes_in, 9);
	/* cat sees end of input, exits, and so closes its output */
	cr_assert_eq(ug_conn_shutdown(c), 0);
	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 5000), 0);
	cr_assert_eq(ug_conn_close(c), 0, "cat exits with 0");
}

Test(conn, spawn_cat_streams_more_than_a_pipe_holds)
{
	char *argv[] = { "cat", NULL };
	struct ug_conn *c = spawn_ok(argv);
	static uint8_t out[4096], in[4096];
	const size_t total = 512 * 1024;

	/* lock-step, one block out and back, so neither pipe fills */
	for (size_t done = 0; done < total; done += sizeof(out)) {
		for (size_t k = 0; k < sizeof(out); k++)
			out[k] = (uint8_t)((done + k) * 7 + (done >> 12));
		cr_assert_eq(ug_conn_write(c, out, sizeof(out)), 0);
		cr_assert_eq(ug_conn_read_exact(c, in, sizeof(in)), 0);
		cr_assert(memcmp(in, out, sizeof(in)) == 0, "block at %zu differs", done);
	}
	cr_assert_eq(c->bytes_out, total);
	cr_assert_eq(c->bytes_in, total);
	cr_assert_eq(ug_conn_close(c), 0);
}

Test(conn, spawn_exit_status)
{
	char *argv[] = { "sh", "-c", "exit 3", NULL };
	struct ug_conn *c = spawn_ok(argv);
	char buf[4];

	/* its stdout closes when it exits */
	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 5000), 0);
	cr_assert_eq(ug_conn_close(c), 3);
}

Test(conn, spawn_child_reads_stdin_writes_stdout)
{
	char *argv[] = { "sh", "-c", "read x; echo \"got $x\"; exit 7", NULL };
	struct ug_conn *c = spawn_ok(argv);
	char buf[32];

	cr_assert_eq(ug_conn_write(c, "42\n", 3), 0);
	cr_assert_eq(ug_conn_read_exact(c, buf, 7), 0);
	cr_assert(memcmp(buf, "got 42\n", 7) == 0);
	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 5000), 0);
	cr_assert_eq(ug_conn_close(c), 7);
}

Test(conn, spawn_killed_child_is_a_failure)
{
	char *argv[] = { "sh", "-c", "kill -KILL $$", NULL };
	struct ug_conn *c = spawn_ok(argv);
	char buf[4];

	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 5000), 0);
	/* conn.h promises an exit status; a signal must not read as 0 */
	cr_assert_gt(ug_conn_close(c), 0);
}

Test(conn, spawn_missing_program)
{
	char *argv[] = { "upgrid-no-such-program-here", "--serve", NULL };
	struct ug_error err = { { 0 } };
	struct ug_conn *c = NULL;

	cr_assert_eq(ug_conn_spawn(argv, &c, &err), -ENOENT);
	cr_assert_null(c, "ret untouched on failure");
	cr_assert(strstr(err.msg, "upgrid-no-such-program-here"), "message names the program: %s",
		  err.msg);

	char *abs[] = { "/nonexistent/upgrid-syncd", NULL };
	cr_assert_eq(ug_conn_spawn(abs, &c, NULL), -ENOENT);
	cr_assert_null(c);
}

Test(conn, spawn_not_executable)
{
	char dir[] = "/tmp/ug-test-conn-XXXXXX";
	char path[64];
	int fd;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/prog", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "#!/bin/sh\nexit 0\n", 17), 17);
	close(fd);

	char *argv[] = { path, NULL };
	struct ug_conn *c = NULL;
	int r = ug_conn_spawn(argv, &c, NULL);

	unlink(path);
	rmdir(dir);
	/* root may still be refused by the missing x bit: EACCES either way */
	cr_assert_eq(r, -EACCES, "spawn of a non-executable file gave %d", r);
	cr_assert_null(c);
}

/* The pipes of one child must not leak into the next: if the second cat
 * held the first one's stdin open, the first would never see end of
 * input. */
Test(conn, spawn_pipes_do_not_leak_into_other_children)
{
	char *argv[] = { "cat", NULL };
	struct ug_conn *a = spawn_ok(argv);
	struct ug_conn *b = spawn_ok(argv);
	char buf[8];

	cr_assert_eq(ug_conn_write(a, "a", 1), 0);
	cr_assert_eq(ug_conn_shutdown(a), 0);
	cr_assert_eq(ug_conn_read_exact(a, buf, 1), 0);
	cr_assert_eq(ug_conn_read(a, buf, sizeof(buf), 3000), 0,
		     "first cat saw end of input while the second runs");
	cr_assert_eq(ug_conn_close(a), 0);

	cr_assert_eq(ug_conn_write(b, "b", 1), 0);
	cr_assert_eq(ug_conn_read_exact(b, buf, 1), 0);
	cr_assert_eq(buf[0], 'b');
	cr_assert_eq(ug_conn_close(b), 0);
}

/* ---------------------------------------------------------------- bwlimit */

#define BW_TOTAL (600u * 1024u)

/* A child pushing BW_TOTAL bytes into a socket as fast as it can, then
 * closing it; returns the parent's end and the child's pid. */
static int bw_writer(pid_t *ret_pid)
{
	int sv[2];
	pid_t pid;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		static uint8_t block[64 * 1024];

		close(sv[0]);
		for (size_t done = 0; done < BW_TOTAL; done += sizeof(block)) {
			size_t n = BW_TOTAL - done < sizeof(block) ? BW_TOTAL - done : sizeof(block);
			for (size_t k = 0; k < n; k++)
				block[k] = (uint8_t)((done + k) % 251);
			if (ug_write_all(sv[1], block, n) < 0)
				_exit(1);
		}
		_exit(0);
	}
	close(sv[1]);
	*ret_pid = pid;
	return sv[0];
}

/* Read c to its end in 64 KiB reads, checking every byte; returns ms. */
static int64_t bw_read_all(struct ug_conn *c, size_t want)
{
	static uint8_t buf[64 * 1024];
	int64_t t0 = now_ms();
	size_t got = 0;
	ssize_t r;

	while ((r = ug_conn_read(c, buf, sizeof(buf), 5000)) > 0) {
		for (ssize_t k = 0; k < r; k++)
			cr_assert_eq(buf[k], (uint8_t)((got + (size_t)k) % 251), "byte %zu",
				     got + (size_t)k);
		got += (size_t)r;
	}
	cr_assert_eq(r, 0, "read: %zd", r);
	cr_assert_eq(got, want);
	return now_ms() - t0;
}

static void bw_reap(pid_t pid)
{
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer failed");
}

Test(conn, bwlimit_holds_the_average)
{
	pid_t pid;
	int fd = bw_writer(&pid);
	struct ug_conn *c;

	cr_assert_eq(ug_conn_fd_new(fd, fd, true, &c), 0);
	ug_conn_set_bwlimit(c, 200 * 1024);
	cr_assert_eq(c->bwlimit, 200 * 1024);
	/* 600 KiB at 200 KiB/s: 3 s */
	int64_t ms = bw_read_all(c, BW_TOTAL);
	cr_assert_geq(ms, 2400, "600 KiB at 200 KiB/s took %lld ms", (long long)ms);
	cr_assert_leq(ms, 4500, "600 KiB at 200 KiB/s took %lld ms", (long long)ms);
	cr_assert_eq(c->bytes_in, BW_TOTAL);
	ug_conn_close(c);
	bw_reap(pid);
}

Test(conn, bwlimit_zero_is_no_limit)
{
	pid_t pid;
	int fd = bw_writer(&pid);
	struct ug_conn *c;

	cr_assert_eq(ug_conn_fd_new(fd, fd, true, &c), 0);
	cr_assert_eq(c->bwlimit, 0, "no limit unless asked");
	int64_t ms = bw_read_all(c, BW_TOTAL);
	cr_assert_lt(ms, 1000, "600 KiB without a limit took %lld ms", (long long)ms);
	ug_conn_close(c);
	bw_reap(pid);
}

/* One read far over the limit sleeps 1 s, not its whole debt, and the
 * rest is carried; a new limit starts from no debt. */
Test(conn, bwlimit_sleeps_at_most_a_second_and_restarts_on_change)
{
	int p[2];
	struct ug_conn *c;
	static uint8_t buf[100 * 1024];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(fcntl(p[1], F_SETPIPE_SZ, 1024 * 1024) >= (int)sizeof(buf), true);
	cr_assert_eq(ug_conn_fd_new(p[0], p[1], true, &c), 0);
	ug_conn_set_bwlimit(c, 25 * 1024);
	/* 100 KiB at 25 KiB/s: a debt of 4 s */
	cr_assert_eq(write(p[1], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	int64_t t0 = now_ms();
	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 1000), (ssize_t)sizeof(buf));
	int64_t ms = now_ms() - t0;
	cr_assert_geq(ms, 950, "the read slept %lld ms", (long long)ms);
	cr_assert_lt(ms, 2000, "one sleep is at most 1 s, this one %lld ms", (long long)ms);
	cr_assert_gt(c->bw_debt, 50 * 1024, "the rest of the debt is carried: %.0f", c->bw_debt);

	/* a plain assignment is a new limit too: the old debt is dropped */
	c->bwlimit = 1024 * 1024;
	cr_assert_eq(write(p[1], buf, 4096), 4096);
	t0 = now_ms();
	cr_assert_eq(ug_conn_read(c, buf, 4096, 1000), 4096);
	ms = now_ms() - t0;
	cr_assert_leq(c->bw_debt, 4096, "debt %.0f after a new limit", c->bw_debt);
	cr_assert_lt(ms, 500, "4 KiB at 1 MiB/s took %lld ms", (long long)ms);

	/* and with no limit, no accounting at all */
	ug_conn_set_bwlimit(c, 0);
	cr_assert_eq(write(p[1], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	t0 = now_ms();
	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 1000), (ssize_t)sizeof(buf));
	cr_assert_lt(now_ms() - t0, 500);
	cr_assert_eq(c->bytes_in, 2 * sizeof(buf) + 4096);
	ug_conn_close(c);
}

/* Time spent waiting for bytes pays for them: a reader slower than the
 * limit never sleeps, and a long pause earns no burst afterwards. */
Test(conn, bwlimit_idle_time_earns_no_burst)
{
	int p[2];
	struct ug_conn *c;
	static uint8_t buf[64 * 1024];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(fcntl(p[1], F_SETPIPE_SZ, 1024 * 1024) >= 128 * 1024, true);
	cr_assert_eq(ug_conn_fd_new(p[0], p[1], true, &c), 0);
	ug_conn_set_bwlimit(c, 256 * 1024);
	cr_assert_eq(write(p[1], buf, 1024), 1024);
	cr_assert_eq(ug_conn_read(c, buf, 1024, 1000), 1024);
	struct timespec idle = { 0, 600 * 1000 * 1000 };
	nanosleep(&idle, NULL);
	/* after 0.6 s idle, 128 KiB at 256 KiB/s still takes ~0.5 s */
	cr_assert_eq(write(p[1], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	cr_assert_eq(write(p[1], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	int64_t t0 = now_ms();
	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 1000), (ssize_t)sizeof(buf));
	cr_assert_eq(ug_conn_read(c, buf, sizeof(buf), 1000), (ssize_t)sizeof(buf));
	int64_t ms = now_ms() - t0;
	cr_assert_geq(ms, 400, "128 KiB after a pause took %lld ms", (long long)ms);
	cr_assert_lt(ms, 1500, "128 KiB after a pause took %lld ms", (long long)ms);
	ug_conn_close(c);
}
