#!/bin/sh
# t020-ssh-transport: the libssh transport (src/ssh.c) against a real
# OpenSSH sshd, driven by tests/tools/ug-conn-probe, and the sshd harness
# itself (ssh-lib.sh). Data goes through intact both ways; remote stderr
# becomes lines even when there is a lot of it before any stdout; unknown
# and changed host keys are refused with a command that fixes them; a
# refused key, a closed port and a silent server each give their own
# error; keepalives do not disturb a slow command; exit statuses and
# signals come back; the harness stops and restarts sshd by pid.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/ssh-lib.sh"

PROBE="$UG_BUILDDIR/tests/tools/ug-conn-probe"
[ -x "$PROBE" ] || fail "'$PROBE' is missing; build it first (make check builds it)"

ug_ssh_setup

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# probe WANT SERVER [OPTIONS...] -- ARGS: run the probe against SERVER
# with the client key and known_hosts unless OPTIONS give others; stdin
# from $T/in (empty unless a test wrote it); stdout and stderr in
# $T/pout, $T/perr; fail unless it exits WANT.
probe() {
	want=$1
	port=$(ug_sshd_port "$2")
	shift 2
	set +e
	"$PROBE" --host "$UG_SSH_HOST" --port "$port" --identity "$UG_SSH_KEY" \
		--known-hosts "$UG_SSH_KNOWN_HOSTS" "$@" <"$T/in" >"$T/pout" 2>"$T/perr"
	got=$?
	set -e
	if [ "$got" -ne "$want" ]; then
		echo "--- probe stderr (last lines):"; tail -n 40 "$T/perr"
		fail "ug-conn-probe $* exited $got, expected $want"
	fi
}
: >"$T/in"

# expect_fixed FILE STRING MESSAGE: FILE contains STRING (not a regex:
# fingerprints are base64, with '+')
expect_fixed() {
	if ! grep -qF -- "$2" "$1"; then
		echo "--- $1:"; cat "$1"
		fail "$3: no '$2'"
	fi
}

# ---------------------------------------------------------------- servers
cat >"$T/echo.sh" <<'EOF'
echo "echo.sh: start, asked for '$SSH_ORIGINAL_COMMAND'" >&2
cat
echo "echo.sh: done" >&2
EOF
# 2 MB of stderr before any stdout. libssh 0.10 buffers up to about
# 1.3 MB that nobody reads (it reopens the window while its buffer holds
# less than 640 KB), so this stalls unless the transport reads stderr
# while it waits for stdout.
cat >"$T/noisy.sh" <<'EOF'
awk 'BEGIN { for (i = 1; i <= 20000; i++)
	printf "noise %05d %s\n", i, sprintf("%087d", 0) }' >&2
awk 'BEGIN { s = ""; for (i = 0; i < 3000; i++) s = s "L"; print s }' >&2
printf 'bell\007 esc\033[31m cr\rover\ttab crlf\r\n' >&2
cat
printf 'noisy: last line, no newline' >&2
exit 3
EOF
ug_sshd_start echo "sh $T/echo.sh"
ug_sshd_start noisy "sh $T/noisy.sh"
ug_sshd_start sleeper "echo \$\$ >>$T/sleeper.pids; exec sleep 30"
# no forced command: runs what the client asks (through the user's shell)
ug_sshd_start shell ""
ug_sshd_start killed 'kill -TERM $$'
# the slow server logs what it receives (DEBUG3), to count keepalives
UG_SSHD_CONFIG_EXTRA="LogLevel DEBUG3"
ug_sshd_start slow "sleep 3; echo late"
UG_SSHD_CONFIG_EXTRA=""

# each sleep outlives the connection the probe drops; do not leave them
kill_sleeper() {
	if [ -s "$T/sleeper.pids" ]; then
		for p in $(cat "$T/sleeper.pids"); do
			kill "$p" 2>/dev/null || true
		done
	fi
}
ug_cleanup_hooks="kill_sleeper $ug_cleanup_hooks"

# ---------------------------------------------------------------- harness
[ "$(ug_sshd_port echo)" != "$(ug_sshd_port noisy)" ] || fail "two servers share a port"
[ "$(ug_sshd_pid echo)" = "$(cat "$T/ssh/echo/pid")" ] ||
	fail "recorded pid $(ug_sshd_pid echo) is not sshd's own ($(cat "$T/ssh/echo/pid"))"
kill -0 "$(ug_sshd_pid echo)" || fail "sshd of 'echo' is not running"
[ "$(grep -c "^\[127.0.0.1\]:$(ug_sshd_port echo) ssh-ed25519 " "$UG_SSH_KNOWN_HOSTS")" -eq 1 ] ||
	fail "known_hosts has no single entry for 'echo'"
ok "harness: six servers on their own ports, pids recorded, host keys pinned"

echo "hello from ssh" | ug_ssh_run echo some args >"$T/out" 2>"$T/err"
[ "$(cat "$T/out")" = "hello from ssh" ] || fail "ug_ssh_run: got '$(cat "$T/out")'"
expect_in "$T/err" "asked for 'some args'" "ug_ssh_run passes the command"
expect_in "$T/ssh/echo/log" "Accepted publickey for $UG_SSH_USER" "sshd log"
ok "harness: OpenSSH's ssh logs in with the client key and runs the forced command"

# ---------------------------------------------------------------- data
head -c 1048576 /dev/urandom >"$T/in"
probe 0 echo -- upgrid-syncd --serve
[ "$(cksum <"$T/pout")" = "$(cksum <"$T/in")" ] ||
	fail "1 MiB round trip: $(wc -c <"$T/pout") bytes came back, checksums differ"
expect_in "$T/perr" "^remote: echo.sh: start, asked for 'upgrid-syncd --serve'$" "remote stderr line"
expect_in "$T/perr" "^remote: echo.sh: done$" "remote stderr after end of input"
ok "1 MiB of random data goes there and back intact; remote stderr lines reach the probe"

head -c 300000 /dev/urandom >"$T/in"
t0=$(now_ms)
probe 8 noisy --timeout-ms 20000 -- x
t1=$(now_ms)
cmp -s "$T/in" "$T/pout" || fail "noisy: stdout differs from stdin"
[ "$(grep -c '^remote: noise [0-9]\{5\} 0\{87\}$' "$T/perr")" -eq 20000 ] ||
	fail "noisy: $(grep -c '^remote: noise' "$T/perr") of 20000 stderr lines arrived whole"
[ $((t1 - t0)) -lt 10000 ] ||
	fail "noisy: took $((t1 - t0)) ms: stderr is not drained while waiting"
ok "2 MB of stderr before any stdout neither stalls nor loses lines ($((t1 - t0)) ms)"

long=$(grep '^remote: LL' "$T/perr" || true)
[ "${#long}" -eq $((8 + 1024)) ] || fail "long stderr line: ${#long} bytes, expected 'remote: ' + 1024"
expect_in "$T/perr" "^remote: bell\\? esc\\?\\[31m cr\\?over	tab crlf\$" "control characters replaced"
expect_in "$T/perr" '^remote: noisy: last line, no newline$' "a last stderr line without newline"
ok "stderr lines are cut at 1 KiB, control characters replaced, the last partial line kept"

expect_in "$T/perr" "remote command exited with status 3" "exit status"
: >"$T/in"
probe 8 killed -- x
expect_in "$T/perr" "remote command exited with status 143" "exit signal"
ok "the remote exit status comes back (3), a signal as 128+N (TERM: 143)"

# ---------------------------------------------------------------- quoting
nl='
'
for s in "plain" "it's" "a b  c" '$HOME' '`id`' '"double"' 'back\slash' \
	"new${nl}line" "'''" "-n" "*" "a;b|c&d" ""; do
	q=$("$PROBE" --quote "$s")
	got=$(sh -c "printf '%s' $q")
	[ "$got" = "$s" ] || fail "ug_shell_quote: '$s' quoted as $q reads back as '$got'"
done
# exact fits, and one byte less: under ASan an overrun would abort
for case in "abc 6" "' 7" " 3" "a'b 9"; do
	s=${case% *}
	size=${case##* }
	"$PROBE" --quote "$s" --quote-size "$size" >/dev/null ||
		fail "ug_shell_quote: '$s' does not fit in $size bytes"
	set +e
	"$PROBE" --quote "$s" --quote-size $((size - 1)) >/dev/null 2>"$T/qerr"
	got=$?
	set -e
	[ "$got" -eq 3 ] || fail "ug_shell_quote: '$s' in $((size - 1)) bytes: exit $got, expected E2BIG"
done
ok "ug_shell_quote: hostile strings read back intact through sh; too small a buffer is E2BIG"

qa=$("$PROBE" --quote "it's \$(id) \`id\` a;b")
qb=$("$PROBE" --quote "two  spaces")
: >"$T/in"
probe 0 shell -- "printf '[%s]' $qa $qb"
[ "$(cat "$T/pout")" = "[it's \$(id) \`id\` a;b][two  spaces]" ] ||
	fail "remote command: got '$(cat "$T/pout")'"
ok "quoted arguments reach a remote command intact (server without forced command)"

# ---------------------------------------------------------------- host keys
port=$(ug_sshd_port echo)
: >"$T/kh-empty"
probe 4 echo --known-hosts "$T/kh-empty" -- x
fp=$(ssh-keygen -l -E sha256 -f "$T/ssh/echo/host_key.pub" | cut -d' ' -f2)
expect_in "$T/perr" "host key of '\[127.0.0.1\]:$port' is not in '$T/kh-empty'" "unknown host key"
expect_fixed "$T/perr" "(fingerprint $fp)" "fingerprint of the server's key"
expect_in "$T/perr" "add it with: ssh-keyscan -p $port 127.0.0.1 >> '$T/kh-empty'" "keyscan hint"
probe 4 echo --known-hosts "$T/no-such-file" -- x
expect_in "$T/perr" "is not in '$T/no-such-file'.*ssh-keyscan" "missing known_hosts"
ok "an unknown host key is refused, naming its fingerprint and the ssh-keyscan command"

if command -v ssh-keyscan >/dev/null 2>&1; then
	probe 4 echo --known-hosts "$T/kh-empty" -- x
	fix=$(sed -n 's/.*add it with: //p' "$T/perr")
	sh -c "$fix" 2>/dev/null
	probe 0 echo --known-hosts "$T/kh-empty" -- x
	ok "the suggested ssh-keyscan command makes the host known"
fi

ssh-keygen -q -t ed25519 -N '' -f "$T/impostor"
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$T/impostor.pub")" >"$T/kh-changed"
probe 4 echo --known-hosts "$T/kh-changed" -- x
expect_fixed "$T/perr" "HOST KEY CHANGED for '[127.0.0.1]:$port' (now $fp): possible man-in-the-middle attack" "changed host key"
expect_in "$T/perr" "ssh-keygen -R '\[127.0.0.1\]:$port' -f '$T/kh-changed'" "ssh-keygen -R hint"
fix=$(sed -n 's/.*remove the old key with: //p' "$T/perr")
sh -c "$fix" >/dev/null 2>&1
expect_not_in "$T/kh-changed" "127.0.0.1" "ssh-keygen -R as suggested"
probe 4 echo --known-hosts "$T/kh-changed" -- x
expect_in "$T/perr" "is not in" "after ssh-keygen -R"
ok "a changed host key is refused as a possible attack; the suggested ssh-keygen -R removes it"

ssh-keygen -q -t ecdsa -N '' -f "$T/impostor-ecdsa"
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$T/impostor-ecdsa.pub")" >"$T/kh-other"
probe 4 echo --known-hosts "$T/kh-other" -- x
expect_in "$T/perr" "HOST KEY CHANGED" "host key of another type"
ok "a known host key of another type is refused the same way"

# ---------------------------------------------------------------- auth
ssh-keygen -q -t ed25519 -N '' -f "$T/stranger"
probe 5 echo --identity "$T/stranger" -- x
expect_in "$T/perr" "public-key authentication as '$UG_SSH_USER' refused by '127.0.0.1:$port' \(is the key in the server's authorized_keys\?\)" "refused key"
ok "a key the server does not know is refused (exit 5)"

probe 1 echo --identity "$T/no-such-key" -- x
expect_in "$T/perr" "cannot read identity file '$T/no-such-key'" "missing identity"
ok "a missing identity file is named"

if command -v ssh-agent >/dev/null 2>&1 && command -v ssh-add >/dev/null 2>&1; then
	eval "$(ssh-agent -s)" >/dev/null
	agent_pid=$SSH_AGENT_PID
	kill_agent() { kill "$agent_pid" 2>/dev/null || true; }
	ug_cleanup_hooks="kill_agent $ug_cleanup_hooks"
	ssh-add -q "$UG_SSH_KEY" 2>/dev/null
	set +e
	"$PROBE" --host "$UG_SSH_HOST" --port "$port" --known-hosts "$UG_SSH_KNOWN_HOSTS" \
		x </dev/null >"$T/pout" 2>"$T/perr"
	got=$?
	set -e
	[ "$got" -eq 0 ] || { cat "$T/perr"; fail "agent authentication: exit $got"; }
	kill_agent
	unset SSH_AUTH_SOCK SSH_AGENT_PID
	ok "with no identity, the key in ssh-agent is used"
fi

# ---------------------------------------------------------------- failures
: >"$T/in"
closed=$(ug_random_port)
set +e
"$PROBE" --host 127.0.0.1 --port "$closed" --identity "$UG_SSH_KEY" \
	--known-hosts "$UG_SSH_KNOWN_HOSTS" x </dev/null >"$T/pout" 2>"$T/perr"
got=$?
set -e
[ "$got" -eq 6 ] || { cat "$T/perr"; fail "closed port: exit $got, expected 6"; }
expect_in "$T/perr" "^ug-conn-probe: cannot connect to '127.0.0.1:$closed': .*refused" "closed port"
ok "a port nothing listens on is a connect failure (exit 6)"

t0=$(now_ms)
probe 7 sleeper --timeout-ms 1500 --keepalive-s 1 -- x
t1=$(now_ms)
[ $((t1 - t0)) -lt 5000 ] || fail "timeout of 1.5 s took $((t1 - t0)) ms"
[ $((t1 - t0)) -ge 1400 ] || fail "timeout of 1.5 s came after $((t1 - t0)) ms"
expect_in "$T/perr" "timed out after 1500 ms" "timeout message"
ok "a silent server times out after --timeout-ms, keepalives or not ($((t1 - t0)) ms)"

# a command that never reads: 8 MB cannot fit in sshd's window and pipe
head -c 8388608 /dev/zero >"$T/in"
t0=$(now_ms)
probe 7 sleeper --timeout-ms 1500 --keepalive-s 1 -- x
t1=$(now_ms)
: >"$T/in"
[ $((t1 - t0)) -lt 8000 ] || fail "write timeout of 1.5 s took $((t1 - t0)) ms"
expect_in "$T/perr" "write to '127.0.0.1:[0-9]+': timed out after 1500 ms" "write timeout"
ok "a write the server never takes times out too ($((t1 - t0)) ms)"

# the connection drops while the probe waits: an error, not end of stream
kill_sleeper
: >"$T/sleeper.pids"
"$PROBE" --host "$UG_SSH_HOST" --port "$(ug_sshd_port sleeper)" --identity "$UG_SSH_KEY" \
	--known-hosts "$UG_SSH_KNOWN_HOSTS" --timeout-ms 20000 x </dev/null >"$T/pout" 2>"$T/perr" &
probe_pid=$!
i=0
while [ ! -s "$T/sleeper.pids" ]; do
	i=$((i + 1))
	[ "$i" -lt 200 ] || fail "the sleeper command did not start"
	sleep 0.05
done
sleep_pid=$(cat "$T/sleeper.pids")
session_pid=$(cut -d' ' -f4 "/proc/$sleep_pid/stat")
kill -KILL "$session_pid"
set +e
wait "$probe_pid"
got=$?
set -e
[ "$got" -eq 1 ] || { cat "$T/perr"; fail "dropped connection: exit $got, expected 1"; }
expect_in "$T/perr" "read from '127.0.0.1:[0-9]+': Connection reset" "dropped connection"
ok "a connection that drops mid-wait is an error (ECONNRESET), not the end of the stream"

probe 0 slow --timeout-ms 10000 --keepalive-s 1 -- x
[ "$(cat "$T/pout")" = late ] || fail "slow: got '$(cat "$T/pout")'"
n=$(grep -c 'Received SSH2_MSG_IGNORE' "$T/ssh/slow/log" || true)
[ "$n" -ge 2 ] || fail "slow: sshd saw $n keepalives in 3 s at one a second"
ok "keepalives every second ($n seen by sshd) do not disturb a command that answers after 3 s"

# ---------------------------------------------------------------- stop
pid=$(ug_sshd_pid echo)
ug_sshd_stop echo
if kill -0 "$pid" 2>/dev/null; then
	fail "sshd $pid still exists after ug_sshd_stop"
fi
probe 6 echo -- x
expect_in "$T/perr" "refused" "stopped server"
ok "ug_sshd_stop stops sshd by pid; connecting then fails (exit 6)"

ug_sshd_restart echo
[ "$(ug_sshd_port echo)" = "$port" ] || fail "restart changed the port"
[ "$(ug_sshd_pid echo)" != "$pid" ] || fail "restart kept the old pid"
kill -0 "$(ug_sshd_pid echo)" || fail "restarted sshd is not running"
echo again >"$T/in"
probe 0 echo -- x
[ "$(cat "$T/pout")" = again ] || fail "after restart: got '$(cat "$T/pout")'"
ok "ug_sshd_restart brings the server back on the same port with the same host key"

done_testing
