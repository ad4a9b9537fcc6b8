# ssh-lib.sh - real OpenSSH servers for the integration tests (sourced
# after lib.sh). POSIX sh: the tests run under /bin/sh (dash).
#
# The servers themselves come from contrib/ssh-lib.sh, shared with the
# demo (contrib/demo.sh); see its header for every function and file.
# Here they live in $T/ssh, are stopped by pid at exit by a cleanup hook
# of lib.sh, and a missing OpenSSH skips the test.
#
# A test calls ug_ssh_setup once, then starts one sshd per simulated
# server with ug_sshd_start NAME FORCED_COMMAND [EXTRA_KEY_LINES]; then
# ug_sshd_port, ug_sshd_pid, ug_sshd_dir, ug_sshd_authorize,
# ug_sshd_stop, ug_sshd_restart, ug_ssh_run, ug_random_port and
# ug_pid_alive as described there.
#
# Files (T is the test's temp dir):
#   $T/ssh/client_key[.pub]      the client key pair (ed25519, no passphrase)
#   $T/ssh/known_hosts           host keys of the servers started so far
#   $T/ssh/NAME/...              server NAME: host_key, sshd_config,
#                                authorized_keys, log, port, sshd.pid
#
# Variables set here, for the tests' client command lines:
#   UG_SSH_HOST         127.0.0.1
#   UG_SSH_USER         the user the tests log in as (the current user)
#   UG_SSH_KEY          the client private key
#   UG_SSH_KNOWN_HOSTS  the known_hosts file
#
# Settings (environment):
#   UG_TEST_NO_SKIP=1     a missing sshd fails the test instead of skipping
#   UG_SSHD               the sshd binary (default /usr/sbin/sshd; it must
#                         be an absolute path: sshd re-executes itself)
#   UG_SSHD_CONFIG_EXTRA  lines put first in every sshd_config written
#                         after it is set (sshd takes the first value of a
#                         setting, so these override the defaults)

UG_SSH_DIR="$T/ssh"
UG_SSH_LABEL=upgrid-test
. "$UG_SRCDIR/contrib/ssh-lib.sh"
ug_cleanup_hooks="ug_sshd_cleanup $ug_cleanup_hooks"

# ug_ssh_setup: check that OpenSSH is installed (skip the test with exit 77
# if not, or fail if UG_TEST_NO_SKIP=1), create sshd's privilege
# separation directory, the client key pair and an empty known_hosts.
ug_ssh_setup() {
	ug_ssh_st=0
	ug_ssh_check || ug_ssh_st=$?
	case $ug_ssh_st in
	1)
		[ "${UG_TEST_NO_SKIP:-0}" != 1 ] ||
			fail "OpenSSH is missing ($UG_SSH_MISSING) and UG_TEST_NO_SKIP=1; install openssh-server"
		echo "SKIP: sshd not installed"
		exit 77
		;;
	2)
		[ "${UG_TEST_NO_SKIP:-0}" != 1 ] ||
			fail "cannot create /run/sshd (needed by sshd) and UG_TEST_NO_SKIP=1"
		echo "SKIP: cannot create /run/sshd"
		exit 77
		;;
	esac
	ug_ssh_keys
}
