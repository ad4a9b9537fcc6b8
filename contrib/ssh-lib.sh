# ssh-lib.sh - real OpenSSH servers on 127.0.0.1, one per simulated
# machine, for the demo (contrib/demo.sh) and the integration tests
# (tests/integration/ssh-lib.sh wraps it). POSIX sh: both run under
# /bin/sh (dash).
#
# The caller sets UG_SSH_DIR (where keys and servers go) before sourcing
# this file, defines fail MESSAGE (print it, exit non-zero), and calls
# ug_sshd_cleanup when it exits, so that every sshd started is stopped by
# pid whatever happens.
#
# Then: ug_ssh_check (is OpenSSH there, can sshd run), ug_ssh_keys (the
# client key pair, an empty known_hosts), and one ug_sshd_start NAME
# FORCED_COMMAND per simulated server. Each server listens on its own free
# port on 127.0.0.1, with its own host key and config; its host key is
# pinned in the shared known_hosts, and the client key is authorized to
# run only FORCED_COMMAND.
#
# Files (D is $UG_SSH_DIR):
#   D/client_key[.pub]      the client key pair (ed25519, no passphrase)
#   D/known_hosts           host keys of the servers started so far
#   D/NAME/host_key[.pub]   server NAME's host key
#   D/NAME/sshd_config      its config
#   D/NAME/authorized_keys  its authorized keys
#   D/NAME/log              its log (LogLevel VERBOSE: logins,
#                           "Accepted publickey", disconnects)
#   D/NAME/port             its port
#   D/NAME/sshd.pid         the pid of its listening sshd
#
# Variables, for the callers' client command lines:
#   UG_SSH_HOST         127.0.0.1
#   UG_SSH_USER         the user logged in as (the current user)
#   UG_SSH_KEY          the client private key
#   UG_SSH_KNOWN_HOSTS  the known_hosts file
#
# Settings (environment, or set before sourcing):
#   UG_SSHD               the sshd binary (default /usr/sbin/sshd; it must
#                         be an absolute path: sshd re-executes itself)
#   UG_SSHD_CONFIG_EXTRA  lines put first in every sshd_config written
#                         after it is set (sshd takes the first value of a
#                         setting, so these override the defaults below)
#   UG_SSH_LABEL          prefix of the keys' comments (default upgrid)

: "${UG_SSH_DIR:?set UG_SSH_DIR before sourcing ssh-lib.sh}"
: "${UG_SSHD:=/usr/sbin/sshd}"
: "${UG_SSHD_CONFIG_EXTRA:=}"
: "${UG_SSH_LABEL:=upgrid}"
UG_SSH_HOST=127.0.0.1
UG_SSH_KEY="$UG_SSH_DIR/client_key"
UG_SSH_KNOWN_HOSTS="$UG_SSH_DIR/known_hosts"
UG_SSH_USER=$(id -un)

# names of the servers whose sshd may be running
ug_sshd_running=""

# ug_ssh_check: can sshd servers run here? Returns 0 if so; 1 if OpenSSH
# tools are missing (their names in UG_SSH_MISSING); 2 if sshd's privilege
# separation directory /run/sshd does not exist and cannot be created
# (sshd refuses to start without it).
ug_ssh_check() {
	UG_SSH_MISSING=""
	[ -x "$UG_SSHD" ] || UG_SSH_MISSING="$UG_SSHD"
	for ug_ssh_tool in ssh ssh-keygen; do
		command -v "$ug_ssh_tool" >/dev/null 2>&1 ||
			UG_SSH_MISSING="$UG_SSH_MISSING $ug_ssh_tool"
	done
	[ -z "$UG_SSH_MISSING" ] || return 1
	mkdir -p /run/sshd 2>/dev/null || return 2
	return 0
}

# ug_ssh_keys: create UG_SSH_DIR, the client key pair and an empty
# known_hosts
ug_ssh_keys() {
	mkdir -p "$UG_SSH_DIR"
	ssh-keygen -q -t ed25519 -N '' -C "$UG_SSH_LABEL-client" -f "$UG_SSH_KEY" ||
		fail "ssh-keygen cannot make the client key"
	: >"$UG_SSH_KNOWN_HOSTS"
}

# ug_sshd_dir NAME: the directory of server NAME
ug_sshd_dir() {
	echo "$UG_SSH_DIR/$1"
}

# ug_sshd_port NAME: print server NAME's port
ug_sshd_port() {
	cat "$UG_SSH_DIR/$1/port"
}

# ug_sshd_pid NAME: print the pid of server NAME's sshd (the last one
# started, still printed after ug_sshd_stop so a caller can check it is
# gone)
ug_sshd_pid() {
	cat "$UG_SSH_DIR/$1/sshd.pid"
}

# ug_pid_alive PID: PID runs (a zombie does not count: a background child
# of this shell stays one until waited for)
ug_pid_alive() {
	[ -r "/proc/$1/stat" ] &&
		[ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# ug_port_free PORT: nothing listens on 127.0.0.1:PORT (as far as ss can
# tell; a race with another process is caught when sshd cannot bind)
ug_port_free() {
	command -v ss >/dev/null 2>&1 || return 0
	[ -z "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]
}

# ug_random_port: print a port in 20000-60000 that nothing listens on now
ug_random_port() {
	while :; do
		ug_rp=$(od -An -tu2 -N2 /dev/urandom | tr -d ' ')
		ug_rp=$((20000 + ug_rp % 40001))
		if ug_port_free "$ug_rp"; then
			echo "$ug_rp"
			return 0
		fi
	done
}

# ug_sshd_key_line COMMAND PUBKEYFILE: print an authorized_keys line that
# lets the key run only COMMAND ("" for no forced command), with no pty,
# forwarding or agent ("restrict")
ug_sshd_key_line() {
	if [ -n "$1" ]; then
		# inside command="...", sshd unescapes only \"
		ug_kl_cmd=$(printf '%s' "$1" | sed 's/"/\\"/g')
		printf 'command="%s",restrict %s\n' "$ug_kl_cmd" "$(cat "$2")"
	else
		printf 'restrict %s\n' "$(cat "$2")"
	fi
}

# ug_sshd_authorize NAME COMMAND PUBKEYFILE: also let the key in
# PUBKEYFILE log in to server NAME, to run only COMMAND ("": any
# command). Takes effect for the next connection; no restart needed.
ug_sshd_authorize() {
	ug_sshd_key_line "$2" "$3" >>"$UG_SSH_DIR/$1/authorized_keys"
}

# ug_sshd_start NAME FORCED_COMMAND [EXTRA_KEY_LINES]: create server NAME
# (host key, config, authorized_keys with the client key restricted to
# FORCED_COMMAND, "" for none, plus EXTRA_KEY_LINES verbatim), start its
# sshd on a free port, wait until it listens and add its host key to
# known_hosts as "[127.0.0.1]:PORT". The forced command runs with the
# user's shell (sh -c); the original command is in $SSH_ORIGINAL_COMMAND.
# Call it directly, not in $(...) or a pipe: the sshd must be a child of
# the caller's shell.
ug_sshd_start() {
	ug_ss_name=$1
	ug_ss_dir="$UG_SSH_DIR/$1"
	[ ! -e "$ug_ss_dir" ] || fail "ug_sshd_start: server '$1' exists already"
	mkdir -p "$ug_ss_dir"
	ssh-keygen -q -t ed25519 -N '' -C "$UG_SSH_LABEL-host-$1" -f "$ug_ss_dir/host_key" ||
		fail "ssh-keygen cannot make the host key of '$1'"
	ug_sshd_key_line "$2" "$UG_SSH_KEY.pub" >"$ug_ss_dir/authorized_keys"
	if [ -n "${3:-}" ]; then
		printf '%s\n' "$3" >>"$ug_ss_dir/authorized_keys"
	fi
	: >"$ug_ss_dir/log"
	ug_ss_try=0
	while :; do
		ug_ss_try=$((ug_ss_try + 1))
		ug_ss_port=$(ug_random_port)
		ug_sshd_write_config "$ug_ss_name" "$ug_ss_port"
		if ug_sshd_launch "$ug_ss_name"; then
			break
		fi
		[ "$ug_ss_try" -lt 10 ] ||
			ug_sshd_fail "$ug_ss_name" "sshd for '$ug_ss_name' did not start in 10 tries"
	done
	echo "$ug_ss_port" >"$ug_ss_dir/port"
	printf '[%s]:%s %s\n' "$UG_SSH_HOST" "$ug_ss_port" \
		"$(cut -d' ' -f1,2 "$ug_ss_dir/host_key.pub")" >>"$UG_SSH_KNOWN_HOSTS"
}

# ug_sshd_write_config NAME PORT (internal)
ug_sshd_write_config() {
	ug_wc_dir="$UG_SSH_DIR/$1"
	{
		if [ -n "$UG_SSHD_CONFIG_EXTRA" ]; then
			printf '%s\n' "$UG_SSHD_CONFIG_EXTRA"
		fi
		cat <<EOF
ListenAddress $UG_SSH_HOST
Port $2
HostKey $ug_wc_dir/host_key
PidFile $ug_wc_dir/pid
AuthorizedKeysFile $ug_wc_dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
# bash reads ~/.bashrc for commands run over ssh unless SHLVL says it is
# not the first shell: that costs most of a connection here
SetEnv SHLVL=1
LogLevel VERBOSE
MaxStartups 100:30:200
MaxSessions 100
EOF
	} >"$ug_wc_dir/sshd_config"
}

# ug_sshd_launch NAME (internal): start the sshd of NAME with its config
# and wait up to 5 s until it listens. Returns 1 if it exited (say, the
# port was taken); fails if it neither listens nor exits.
ug_sshd_launch() {
	ug_la_dir="$UG_SSH_DIR/$1"
	ug_la_before=$(grep -c 'Server listening' "$ug_la_dir/log" || true)
	"$UG_SSHD" -D -f "$ug_la_dir/sshd_config" -E "$ug_la_dir/log" \
		</dev/null >>"$ug_la_dir/log" 2>&1 &
	ug_la_pid=$!
	echo "$ug_la_pid" >"$ug_la_dir/sshd.pid"
	ug_sshd_running="$ug_sshd_running $1"
	ug_la_i=0
	while [ "$ug_la_i" -lt 100 ]; do
		ug_la_now=$(grep -c 'Server listening' "$ug_la_dir/log" || true)
		[ "$ug_la_now" -le "$ug_la_before" ] || return 0
		if ! ug_pid_alive "$ug_la_pid"; then
			wait "$ug_la_pid" 2>/dev/null || true
			ug_sshd_forget "$1"
			return 1
		fi
		sleep 0.05
		ug_la_i=$((ug_la_i + 1))
	done
	ug_sshd_fail "$1" "sshd for '$1' is not listening after 5 s"
}

# ug_sshd_fail NAME MESSAGE (internal): fail, showing the server's log
ug_sshd_fail() {
	echo "--- sshd log of '$1':"
	cat "$UG_SSH_DIR/$1/log" 2>/dev/null || true
	fail "$2"
}

# ug_sshd_forget NAME (internal): drop NAME from the running list
ug_sshd_forget() {
	ug_fg_list=""
	for ug_fg_n in $ug_sshd_running; do
		[ "$ug_fg_n" = "$1" ] || ug_fg_list="$ug_fg_list $ug_fg_n"
	done
	ug_sshd_running=$ug_fg_list
}

# ug_sshd_kill NAME (internal): TERM, wait for it (KILL after 5 s)
ug_sshd_kill() {
	ug_kl_pid=$(cat "$UG_SSH_DIR/$1/sshd.pid" 2>/dev/null || true)
	ug_sshd_forget "$1"
	[ -n "$ug_kl_pid" ] || return 0
	kill -TERM "$ug_kl_pid" 2>/dev/null || true
	ug_kl_i=0
	while ug_pid_alive "$ug_kl_pid"; do
		ug_kl_i=$((ug_kl_i + 1))
		if [ "$ug_kl_i" -eq 100 ]; then
			kill -KILL "$ug_kl_pid" 2>/dev/null || true
		fi
		sleep 0.05
	done
	# collect it, so that kill -0 on its pid fails from now on
	wait "$ug_kl_pid" 2>/dev/null || true
}

# ug_sshd_stop NAME: stop server NAME's sshd (by pid) and wait until it is
# gone. Sessions already open go on until their client disconnects.
ug_sshd_stop() {
	ug_sshd_kill "$1"
}

# ug_sshd_restart NAME: stop server NAME and start it again with the same
# port, host key, config and authorized_keys (a reboot of the server)
ug_sshd_restart() {
	ug_sshd_kill "$1"
	ug_sshd_launch "$1" ||
		ug_sshd_fail "$1" "sshd for '$1' did not restart on port $(ug_sshd_port "$1")"
}

# ug_sshd_cleanup: stop every sshd still running (the caller's exit hook)
ug_sshd_cleanup() {
	for ug_cl_n in $ug_sshd_running; do
		ug_sshd_kill "$ug_cl_n"
	done
}

# ug_ssh_run NAME [ARGS...]: run OpenSSH's own client against server NAME
# (a self-check of the servers: no upgrid code involved). ARGS are sent as
# the command, which the server passes to the forced command in
# $SSH_ORIGINAL_COMMAND. Exits as ssh does (255: ssh's own failure).
ug_ssh_run() {
	ug_sr_port=$(ug_sshd_port "$1")
	shift
	ssh -F /dev/null -i "$UG_SSH_KEY" -o IdentitiesOnly=yes \
		-o IdentityAgent=none \
		-o UserKnownHostsFile="$UG_SSH_KNOWN_HOSTS" \
		-o GlobalKnownHostsFile=/dev/null \
		-o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR \
		-p "$ug_sr_port" "$UG_SSH_USER@$UG_SSH_HOST" "$@"
}
