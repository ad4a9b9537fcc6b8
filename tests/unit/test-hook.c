/* test-hook.c - unit tests for src/hook.c: exit statuses and signals,
 * timeouts that stop the hook's whole process group (grandchildren, and
 * ones that ignore SIGTERM), programs that cannot be run, megabytes of
 * output, the captured output as one log line, the environment, and what
 * the hook does not inherit (file descriptors, the signal mask, ignored
 * signals, other children of the caller). */
#include "config.h"

#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "tmpdir.h"

#include "hook.h"

static void setup(void)
{
	ug_test_tmp_make("hook");
}

TestSuite(hook, .init = setup, .fini = ug_test_tmp_remove, .timeout = 60);

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write an executable script into the test's temp dir; its path goes to
 * path (size >= 128). */
static void script(const char *name, const char *body, char *path)
{
	int fd;

	snprintf(path, 128, "%s/%s", tmpdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	cr_assert_geq(fd, 0, "create '%s': %s", path, strerror(errno));
	cr_assert_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
}

/* The pid a script wrote to tmpdir/name. */
static pid_t read_pid(const char *name)
{
	char path[128], buf[32] = { 0 };
	int fd;
	ssize_t n;
	unsigned long v = 0;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "the hook wrote no '%s'", name);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	for (char *p = buf; *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (unsigned long)(*p - '0');
	cr_assert_gt(v, 1, "pid in '%s': %s", name, buf);
	return (pid_t)v;
}

/* Whether pid is a live process (an unreaped zombie is not alive: the
 * orphan may wait for a busy or absent init to reap it). */
static bool alive(pid_t pid)
{
	char path[64], buf[256];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* Give the kernel a moment to finish off SIGKILLed processes. */
static bool gone(pid_t pid)
{
	for (int i = 0; i < 100 && alive(pid); i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return !alive(pid);
}

/* ---------------------------------------------------------------- status */

Test(hook, exit_zero)
{
	char *argv[] = { "/bin/sh", "-c", "echo all good", NULL };
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };

	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 10, &res, &err), 0, "%s", err.msg);
	cr_assert_eq(res.status, 0);
	cr_assert_eq(res.signal, 0);
	cr_assert(!res.timed_out);
	cr_assert_str_eq(res.output, "all good");
	cr_assert(res.seconds >= 0 && res.seconds < 5, "%.3f s", res.seconds);
	/* res is optional */
	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 10, NULL, NULL), 0);
}

Test(hook, exit_three_is_a_failure_with_its_output)
{
	char *argv[] = { "/bin/sh", "-c", "echo checking; echo 'disk full' >&2; exit 3", NULL };
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };

	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 10, &res, &err), -EIO);
	cr_assert_eq(res.status, 3);
	cr_assert_eq(res.signal, 0);
	cr_assert(!res.timed_out);
	cr_assert_str_eq(res.output, "checking | disk full", "stdout and stderr, in order");
	cr_assert(strstr(err.msg, "health-check '/bin/sh'"), "%s", err.msg);
	cr_assert(strstr(err.msg, "exit status 3"), "%s", err.msg);
	cr_assert(strstr(err.msg, "'disk full'"), "the last line: %s", err.msg);
	cr_assert(!strstr(err.msg, "checking"), "only the last line: %s", err.msg);
}

Test(hook, killed_by_a_signal)
{
	char *argv[] = { "/bin/sh", "-c", "echo bye; kill -KILL $$", NULL };
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };

	cr_assert_eq(ug_hook_run("restart", argv, NULL, 10, &res, &err), -EIO);
	cr_assert_eq(res.status, -1);
	cr_assert_eq(res.signal, SIGKILL);
	cr_assert(!res.timed_out);
	cr_assert(strstr(err.msg, "restart '/bin/sh'"), "%s", err.msg);
	cr_assert(strstr(err.msg, "signal 9"), "%s", err.msg);
	cr_assert(strstr(err.msg, "'bye'"), "%s", err.msg);
}

/* ---------------------------------------------------------------- time */

Test(hook, timeout_stops_the_whole_group)
{
	char path[128], body[512];
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };

	snprintf(body, sizeof(body),
		 "#!/bin/sh\n"
		 "sleep 1000 &\n"
		 "echo $! > '%s/bg.pid'\n"
		 "sleep 30 &\n"
		 "echo $! > '%s/fg.pid'\n"
		 "echo started\n"
		 "wait\n", tmpdir, tmpdir);
	script("slow", body, path);
	char *argv[] = { path, NULL };
	int64_t t0 = now_ms();
	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 1, &res, &err), -ETIMEDOUT);
	int64_t ms = now_ms() - t0;
	cr_assert_geq(ms, 950, "returned after %lld ms", (long long)ms);
	cr_assert_lt(ms, 7000, "returned after %lld ms", (long long)ms);
	cr_assert(res.timed_out);
	cr_assert_eq(res.signal, SIGTERM);
	cr_assert_eq(res.status, -1);
	cr_assert_str_eq(res.output, "started");
	cr_assert(strstr(err.msg, "health-check '"), "%s", err.msg);
	cr_assert(strstr(err.msg, "after 1 s"), "%s", err.msg);
	cr_assert(strstr(err.msg, "'health-check-timeout'"), "%s", err.msg);
	cr_assert(strstr(err.msg, "'started'"), "%s", err.msg);
	pid_t bg = read_pid("bg.pid"), fg = read_pid("fg.pid");
	cr_assert(gone(fg), "the sleep 30 (pid %d) is still there", (int)fg);
	cr_assert(gone(bg), "the background sleep 1000 (pid %d) is still there", (int)bg);
}

Test(hook, timeout_kills_what_ignores_sigterm)
{
	char path[128], body[512];
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };

	snprintf(body, sizeof(body),
		 "#!/bin/sh\n"
		 "trap '' TERM\n"
		 "sleep 1000 &\n"
		 "echo $! > '%s/bg.pid'\n"
		 "while :; do sleep 1; done\n", tmpdir);
	script("stubborn", body, path);
	char *argv[] = { path, NULL };
	int64_t t0 = now_ms();
	cr_assert_eq(ug_hook_run("pre-switch", argv, NULL, 1, &res, &err), -ETIMEDOUT);
	int64_t ms = now_ms() - t0;
	/* 1 s, then 5 s of grace, then SIGKILL */
	cr_assert_geq(ms, 5500, "returned after %lld ms", (long long)ms);
	cr_assert_lt(ms, 8000, "returned after %lld ms", (long long)ms);
	cr_assert(res.timed_out);
	cr_assert_eq(res.signal, SIGKILL);
	pid_t bg = read_pid("bg.pid");
	cr_assert(gone(bg), "the background sleep 1000 (pid %d) is still there", (int)bg);
}

/* A hook that writes without end is still stopped on time. */
Test(hook, endless_output_still_times_out)
{
	char *argv[] = { "/bin/sh", "-c", "exec yes", NULL };
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };

	int64_t t0 = now_ms();
	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 1, &res, &err), -ETIMEDOUT);
	int64_t ms = now_ms() - t0;
	cr_assert_lt(ms, 3000, "returned after %lld ms", (long long)ms);
	cr_assert(res.timed_out);
	cr_assert(strstr(res.output, "y | y | y"), "%.20s", res.output);
}

/* A hook is done when it exits: what it left running in its group is
 * stopped, and does not keep ug_hook_run waiting on its output. */
Test(hook, leftovers_of_a_finished_hook_are_stopped)
{
	char path[128], body[512];
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };

	snprintf(body, sizeof(body),
		 "#!/bin/sh\n"
		 "sleep 1000 &\n"
		 "echo $! > '%s/bg.pid'\n"
		 "echo done\n", tmpdir);
	script("leaves", body, path);
	char *argv[] = { path, NULL };
	int64_t t0 = now_ms();
	cr_assert_eq(ug_hook_run("restart", argv, NULL, 30, &res, &err), 0, "%s", err.msg);
	int64_t ms = now_ms() - t0;
	cr_assert_lt(ms, 3000, "returned after %lld ms", (long long)ms);
	cr_assert_str_eq(res.output, "done");
	pid_t bg = read_pid("bg.pid");
	cr_assert(gone(bg), "the background sleep 1000 (pid %d) is still there", (int)bg);
}

/* ---------------------------------------------------------------- cannot run */

Test(hook, missing_program)
{
	char *argv[] = { "/nonexistent/upgrid-check", "--quick", NULL };
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };

	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 10, &res, &err), -ENOENT);
	cr_assert_str_eq(err.msg, "health-check '/nonexistent/upgrid-check' cannot be run: "
				  "No such file or directory: fix the 'health-check' line in "
				  "terminal.conf");
	cr_assert_eq(res.status, -1);
	cr_assert_eq(res.signal, 0);
	cr_assert(!res.timed_out);
	cr_assert_str_eq(res.output, "");
}

Test(hook, not_executable)
{
	char path[128];
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };

	script("noexec", "#!/bin/sh\nexit 0\n", path);
	cr_assert_eq(chmod(path, 0644), 0);
	char *argv[] = { path, NULL };
	/* root is refused too when no x bit is set */
	cr_assert_eq(ug_hook_run("pre-switch", argv, NULL, 10, &res, &err), -EACCES);
	cr_assert(strstr(err.msg, "pre-switch '"), "%s", err.msg);
	cr_assert(strstr(err.msg, "cannot be run: Permission denied: fix the 'pre-switch' line"),
		  "%s", err.msg);
	cr_assert_eq(res.status, -1);
}

Test(hook, bad_arguments)
{
	char *rel[] = { "bin/check", NULL };
	char *abs[] = { "/bin/true", NULL };
	char *noeq[] = { "UPGRID_VERSION", NULL };
	char *nokey[] = { "=x", NULL };
	struct ug_error err = { { 0 } };

	cr_assert_eq(ug_hook_run("health-check", rel, NULL, 10, NULL, &err), -EINVAL);
	cr_assert(strstr(err.msg, "absolute"), "%s", err.msg);
	cr_assert_eq(ug_hook_run("health-check", NULL, NULL, 10, NULL, &err), -EINVAL);
	cr_assert_eq(ug_hook_run("health-check", abs, NULL, 0, NULL, &err), -EINVAL);
	cr_assert_eq(ug_hook_run("health-check", abs, NULL, UG_HOOK_TIMEOUT_MAX + 1, NULL, &err),
		     -EINVAL);
	cr_assert_eq(ug_hook_run("health-check", abs, noeq, 10, NULL, &err), -EINVAL);
	cr_assert(strstr(err.msg, "'UPGRID_VERSION'"), "%s", err.msg);
	cr_assert_eq(ug_hook_run("health-check", abs, nokey, 10, NULL, &err), -EINVAL);
}

/* ---------------------------------------------------------------- output */

Test(hook, megabytes_of_output_do_not_block)
{
	char *argv[] = { "/bin/sh", "-c",
			 "head -c 5242880 /dev/zero | tr '\\0' x; printf 'the end\\n'", NULL };
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };

	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 30, &res, &err), 0, "%s", err.msg);
	size_t len = strlen(res.output);
	cr_assert_eq(len, sizeof(res.output) - 1, "the last 1 KiB, %zu bytes", len);
	cr_assert_str_eq(res.output + len - 10, "xxxthe end");
	cr_assert_eq(res.output[0], 'x');
	cr_assert(res.seconds < 20, "%.1f s", res.seconds);
}

Test(hook, output_is_one_printable_line)
{
	char *argv[] = { "/bin/sh", "-c",
			 "printf 'a\\001b\\tc\\r\\n\\ncaf\\303\\251 \\377end\\n\\n'", NULL };
	struct ug_hook_result res;

	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 10, &res, NULL), 0);
	cr_assert_str_eq(res.output, "a?b c |  | caf\xc3\xa9 ?end");
}

Test(hook, message_quotes_only_the_start_of_a_long_line)
{
	char *argv[] = { "/bin/sh", "-c", "head -c 3000 /dev/zero | tr '\\0' y; exit 1", NULL };
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };

	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 10, &res, &err), -EIO);
	cr_assert(strstr(err.msg, "yyy...'"), "%s", err.msg);
	cr_assert_lt(strlen(err.msg), 300, "%s", err.msg);
}

/* ---------------------------------------------------------------- what it gets */

Test(hook, environment_is_the_callers_plus_env_add)
{
	char *argv[] = { "/bin/sh", "-c",
			 "echo \"$UG_HOOK_PARENT/$UG_HOOK_NEW/$UG_HOOK_OVR\"; "
			 "env | grep -c '^UG_HOOK_OVR='", NULL };
	char *env[] = { "UG_HOOK_NEW=hello world", "UG_HOOK_OVR=new", NULL };
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };

	cr_assert_eq(setenv("UG_HOOK_PARENT", "from-parent", 1), 0);
	cr_assert_eq(setenv("UG_HOOK_OVR", "old", 1), 0);
	cr_assert_eq(ug_hook_run("health-check", argv, env, 10, &res, &err), 0, "%s", err.msg);
	cr_assert_str_eq(res.output, "from-parent/hello world/new | 1");
	cr_assert_str_eq(getenv("UG_HOOK_OVR"), "old", "the caller's environment is unchanged");
}

Test(hook, no_file_descriptor_but_stdio_is_inherited)
{
	char path[128];
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };
	int p[2];

	/* descriptors opened without close-on-exec, as a careless library
	 * would */
	int fd = open("/dev/null", O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(dup2(fd, 100), 100);
	cr_assert_eq(pipe(p), 0);
	/* ls opens the directory it lists: that one is 3 */
	script("fds", "#!/bin/sh\nexec /bin/ls /proc/self/fd\n", path);
	char *argv[] = { path, NULL };
	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 10, &res, &err), 0, "%s", err.msg);
	cr_assert_str_eq(res.output, "0 | 1 | 2 | 3");
	close(fd);
	close(100);
	close(p[0]);
	close(p[1]);
}

Test(hook, stdin_is_dev_null)
{
	char *argv[] = { "/bin/sh", "-c", "readlink /proc/self/fd/0; cat", NULL };
	struct ug_hook_result res;

	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 10, &res, NULL), 0);
	cr_assert_str_eq(res.output, "/dev/null");
}

/* A caller that ignores SIGPIPE (every upgrid program) or blocks signals
 * does not pass that on. */
Test(hook, signal_mask_and_dispositions_are_reset)
{
	char *argv[] = { "/bin/sh", "-c", "exec grep -E '^Sig(Blk|Ign)' /proc/self/status", NULL };
	char *term[] = { "/bin/sh", "-c", "kill -TERM $$; sleep 5", NULL };
	struct ug_hook_result res;
	struct ug_error err = { { 0 } };
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	cr_assert_eq(sigprocmask(SIG_BLOCK, &set, NULL), 0);
	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 10, &res, &err), 0, "%s", err.msg);
	unsigned long long blk, ign, libc = 0;
	cr_assert_eq(sscanf(res.output, "SigBlk: %llx | SigIgn: %llx", &blk, &ign), 2, "%s",
		     res.output);
	cr_assert_eq(blk, 0, "blocked in the hook: %s", res.output);
	/* posix_spawn leaves the C library's own signals (32 up to
	 * SIGRTMIN) ignored; the hook's C library sets them up again */
	for (int sig = 32; sig < SIGRTMIN; sig++)
		libc |= 1ull << (sig - 1);
	cr_assert_eq(ign & ~libc, 0, "ignored in the hook: %s", res.output);
	cr_assert_eq(ug_hook_run("health-check", term, NULL, 10, &res, &err), -EIO);
	cr_assert_eq(res.signal, SIGTERM, "SIGTERM was not blocked in the hook");
}

/* ug_hook_run waits for its own child only: another child of the caller
 * is neither reaped nor signalled. */
Test(hook, other_children_are_left_alone)
{
	char *argv[] = { "/bin/sh", "-c", "exit 0", NULL };
	pid_t other = fork();
	int status;

	cr_assert_geq(other, 0);
	if (other == 0) {
		struct timespec ts = { 10, 0 };
		nanosleep(&ts, NULL);
		_exit(7);
	}
	cr_assert_eq(ug_hook_run("health-check", argv, NULL, 10, NULL, NULL), 0);
	cr_assert_eq(waitpid(other, &status, WNOHANG), 0, "the other child is still there");
	kill(other, SIGKILL);
	cr_assert_eq(waitpid(other, &status, 0), other);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}
