/* hook.h - run one of a terminal's hooks (pre-switch, restart,
 * health-check: terminal.conf, upgrid.conf(5)) and say how it went.
 *
 * A hook is an absolute path and its arguments, run without a shell, with
 * stdin from /dev/null and stdout and stderr captured together. It runs in
 * a session (and so a process group) of its own, and nothing it started is
 * left behind when ug_hook_run returns: when the time is up, or as soon as
 * the program itself has exited, its process group gets SIGTERM, then
 * SIGKILL once the group's last holder of the output pipe has gone or
 * UG_HOOK_GRACE_S seconds later, whichever comes first. So a hook must
 * finish its work before it exits; a program that is to outlive it must
 * start a session of its own (setsid(1), or a service manager), which
 * takes it out of the group.
 *
 * The program gets the caller's environment plus env_add, an empty signal
 * mask, every signal at its default action (a caller ignoring SIGPIPE
 * does not pass that on; only the C library's own signals 32 and 33,
 * below SIGRTMIN, are left ignored, as posix_spawn does it: the hook's C
 * library sets them up again) and no file descriptor but 0, 1 and 2.
 *
 * ug_hook_run uses no signal handler and waits for its own child only
 * (by pid), so it does not disturb a caller's SIGCHLD handling or
 * other children.
 *
 * Usage:
 *
 *   char *const argv[] = { "/usr/lib/app/check", "--quick", NULL };
 *   char *const env[] = { "UPGRID_VERSION=42", NULL };
 *   struct ug_hook_result res;
 *   struct ug_error e;
 *   r = ug_hook_run("health-check", argv, env, 30, &res, &e);
 *   if (r < 0) log e.msg; roll back;
 */
#ifndef UG_HOOK_H
#define UG_HOOK_H

#include <stdbool.h>

#include "util.h"

/* After SIGTERM, the seconds a hook's processes have to go before SIGKILL. */
#define UG_HOOK_GRACE_S 5u
/* Longest timeout_s accepted (an hour, as terminal.conf allows). */
#define UG_HOOK_TIMEOUT_MAX 3600u

struct ug_hook_result {
	int status;        /* exit status 0..255; -1: not started or killed by a signal */
	int signal;        /* the signal that killed it, or 0 */
	bool timed_out;    /* it was still running after timeout_s and was stopped */
	double seconds;    /* from start until it exited (or was stopped) */
	/* The last bytes the hook wrote to stdout and stderr, as one log
	 * line: NUL-terminated, newlines shown as " | ", trailing ones
	 * dropped, other control characters and bytes that are not UTF-8 as
	 * '?'. Empty if it wrote nothing. */
	char output[1024];
};

/* Run argv (argv[0] an absolute path, run without a shell) with the
 * environment additions env_add ("KEY=VALUE" strings, NULL-terminated;
 * NULL for none; a key there replaces the caller's), waiting at most
 * timeout_s (1..UG_HOOK_TIMEOUT_MAX) seconds. name ("health-check") is
 * the setting that named the hook, for messages.
 *
 * Returns 0 when the program ran and exited with status 0, else -errno
 * with a message in err naming the hook and its path, and saying what
 * happened and what it last wrote:
 *   -ENOENT, -EACCES (or another errno of exec) it cannot be started
 *                ("health-check '/usr/bin/x' cannot be run: No such file
 *                or directory: fix the 'health-check' line in
 *                terminal.conf")
 *   -EIO         it ran and exited with a non-zero status or was killed
 *                by a signal
 *   -ETIMEDOUT   it was still running after timeout_s seconds and was
 *                stopped
 *   -EINVAL      bad arguments (no argv, a relative argv[0], an env_add
 *                entry without '=', timeout_s out of range)
 *   -ENOMEM, or the -errno of a failed pipe or spawn.
 * res (may be NULL) is filled in every case, so that a caller can log the
 * output of a hook that failed. */
int ug_hook_run(const char *name, char *const argv[], char *const env_add[],
		unsigned timeout_s, struct ug_hook_result *res, struct ug_error *err);

#endif
