/* test-conn.c - unit tests for src/conn.c: the fd transport over pipes
 * (reads, writes, byte counters, timeouts, end of stream, shutdown, who
 * closes the fds) and the spawn transport (a round trip through cat, exit
 * statuses, a program that does not exist, no pipe leaking into a second
 * child). */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
