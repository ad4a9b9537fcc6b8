#!/bin/sh
# t019-watch-config: settings. --test-config prints the settings in effect
# (command line over file over environment) and exits 0; every bad value
# or setup is refused with a message naming it (the file and line for the
# settings file) and the documented exit status; SIGHUP reloads the quiet
# period (pending changes follow the new timing) and keeps the current
# settings when the file has become bad; --daemon detaches, reports a
# start-up failure in its exit status, and works.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/watch-lib.sh"

watch_setup
echo base >"$TREE/base"
C="$T/watch.conf"

# run_w STATUS ARGS...: run upgrid-watch, output in $T/out and $T/err
run_w() {
	want=$1
	shift
	set +e
	"$WATCH" "$@" >"$T/out" 2>"$T/err"
	got=$?
	set -e
	if [ "$got" -ne "$want" ]; then
		echo "--- stdout"; cat "$T/out"; echo "--- stderr"; cat "$T/err"
		fail "upgrid-watch $* exited $got, expected $want"
	fi
}

run_w 0 --help
expect_in "$T/out" "^usage: upgrid-watch" "--help"
run_w 0 -V
expect_in "$T/out" "^upgrid-watch [0-9]" "-V"
ok "--help and --version"

cat >"$C" <<EOF
# settings for the test
[watch]
tree = $TREE
quiet-period = 0.5
max-delay = 10 ; comment
  channel = testing

[syncd]
something = ignored
EOF
run_w 0 -f "$C" --test-config
expect_in "$T/out" "^tree = $TREE\$" "test-config tree"
expect_in "$T/out" "^repo = $R\$" "repo from the environment"
expect_in "$T/out" "^quiet-period = 0.5\$" "quiet-period from the file"
expect_in "$T/out" "^max-delay = 10\$" "max-delay from the file"
expect_in "$T/out" "^rescan-interval = 60\$" "default rescan-interval"
expect_in "$T/out" "^channel = testing\$" "an indented setting is a setting, not a continuation"
run_w 0 -f "$C" --test-config --quiet-period 3 -c stable
expect_in "$T/out" "^quiet-period = 3\$" "the command line overrides the file"
expect_in "$T/out" "^channel = stable\$" "the command line overrides the file"
run_w 0 -f "$C" --test-config -q
[ ! -s "$T/out" ] || fail "--test-config -q printed something"
ok "--test-config prints the settings in effect"

# bad_conf LINE TEXT PATTERN: a file whose line LINE is bad
bad_conf() {
	printf '%b' "$2" >"$C"
	run_w 2 -f "$C" --test-config
	expect_in "$T/err" "'$C': line $1: .*$3" "bad settings file, line $1"
}
bad_conf 3 '[watch]\ntree = /tmp\nquiet-period = abc\n' "bad value 'abc' for 'quiet-period'"
bad_conf 2 '[watch]\nquiet-period = 0.001\n' "out of range"
bad_conf 2 '[watch]\nmax-delay = -5\n' "bad value '-5' for 'max-delay'"
bad_conf 2 '[watch]\nrescan-interval = 1e3\n' "bad value '1e3'"
bad_conf 2 '[watch]\nfrobnicate = 1\n' "unknown setting 'frobnicate'"
bad_conf 1 'tree = /tmp\n' "outside a section"
bad_conf 2 '[watch]\nchannel = a/b\n' "bad value 'a/b' for 'channel'"
bad_conf 2 '[watch]\nrepo =\n' "empty value for 'repo'"
bad_conf 2 '[watch]\n[broken\n' "syntax error"
long=$(head -c 400 /dev/zero | tr '\0' x)
bad_conf 2 "[watch]\n# $long\n" "longer than"
ok "bad settings files: exit 2, naming the line"

printf '[watch]\nmax-delay = 1\n' >"$C"
run_w 2 -f "$C" --test-config "$TREE"
expect_in "$T/err" "max-delay \(1 s\) is shorter than quiet-period \(2 s\)" "max-delay below quiet-period"
run_w 2 -f "$T/no-such.conf" --test-config "$TREE"
expect_in "$T/err" "no-such.conf" "a missing settings file"
run_w 2 -f "$WCONF" --test-config --quiet-period 0 "$TREE"
expect_in "$T/err" "bad value '0' for 'quiet-period'" "--quiet-period 0"
run_w 2 -f "$WCONF" --test-config
expect_in "$T/err" "no tree to watch" "no tree"
run_w 2 -f "$WCONF" "$TREE" "$T"
expect_in "$T/err" "one TREE only" "two trees"
run_w 2 -f "$WCONF" --once --daemon "$TREE"
run_w 2 -f "$WCONF" --frobnicate "$TREE"
expect_in "$T/err" "Try 'upgrid-watch --help'" "unknown option"
ok "bad command lines: exit 2"

run_w 5 -f "$WCONF" --test-config "$T/no-such-tree"
expect_in "$T/err" "tree '$T/no-such-tree' does not exist" "missing tree"
run_w 5 -f "$WCONF" --test-config -R "$T/no-such-repo" "$TREE"
expect_in "$T/err" "repo '$T/no-such-repo' does not exist; create it with 'upgrid init'" "missing repo"
run_w 5 -f "$WCONF" --test-config -k "$T/no-such-key" "$TREE"
expect_in "$T/err" "upgrid keygen" "missing key"
echo file >"$T/plain"
run_w 2 -f "$WCONF" --test-config "$T/plain"
expect_in "$T/err" "not a directory" "tree is a file"
cp "$K" "$TREE/master.key"
run_w 2 -f "$WCONF" --test-config -k "$TREE/master.key" "$TREE"
expect_in "$T/err" "inside the tree" "key inside the tree"
rm "$TREE/master.key"
run_w 2 -f "$WCONF" --test-config -R "$R" "$T"
expect_in "$T/err" "repo '$R' is inside the tree" "repo inside the tree"
cp "$K" "$T/open.key"
chmod 644 "$T/open.key"
run_w 2 -f "$WCONF" --test-config -k "$T/open.key" "$TREE"
ok "missing, misplaced or unsafe files: exit 5 or 2, naming them"

run_ug 0 publish "$TREE"
"$UPGRID" keygen -f "$T/other.key" >/dev/null
run_w 4 -f "$WCONF" --test-config -k "$T/other.key" "$TREE"
expect_in "$T/err" "is signed by key" "wrong key"
mkdir "$TREE/.upgrid"
printf 'exlude *.o\n' >"$TREE/.upgrid/rules"
run_w 3 -f "$WCONF" "$TREE"
expect_in "$T/err" "\.upgrid/rules' line 1: unknown rule 'exlude'" "bad rules at start-up"
rm -r "$TREE/.upgrid"
ok "a key that is not the repo's: exit 4; bad rules: exit 3"

# SIGHUP: a change pending under a 30 s quiet period is published once
# the reload brings it down to 0.2 s
printf '[watch]\ntree = %s\nquiet-period = 30\nmax-delay = 60\n' "$TREE" >"$C"
start_watch_cmd "$WATCH" -v -f "$C"
v=$(latest_version)
echo changed >"$TREE/base"
sleep 1
[ "$(latest_version)" -eq "$v" ] || watch_fail "published within 1 s with a 30 s quiet period"
printf '[watch]\ntree = %s\nquiet-period = 0.2\nmax-delay = 60\n' "$TREE" >"$C"
kill -HUP "$wpid"
wait_log "reloaded the settings from '$C'.*quiet-period 0.2 s"
wait_version $((v + 1))
ok "SIGHUP reloads the quiet period, and pending changes follow it"

printf '[watch]\ntree = %s\nquiet-period = soon\n' "$TREE" >"$C"
kill -HUP "$wpid"
wait_log "cannot reload the settings: '$C': line 3: bad value 'soon'.*keeping the current ones"
watch_alive || watch_fail "a bad reload stopped the watcher"
v=$(latest_version)
echo again >"$TREE/base"
wait_version $((v + 1))
ok "a bad reload is logged and the current settings stay"
stop_watch
[ "$wstatus" -eq 0 ] || watch_fail "SIGTERM: exit status $wstatus"

# --daemon
printf '[watch]\ntree = %s\nquiet-period = 0.2\n' "$TREE" >"$C"
run_w 5 -f "$C" --daemon -R "$T/no-such-repo"
mkdir "$TREE/.upgrid"
printf 'exlude *.o\n' >"$TREE/.upgrid/rules"
run_w 3 -f "$C" --daemon
expect_in "$T/err" "\.upgrid/rules" "the daemon's start-up error is shown"
rm -r "$TREE/.upgrid"
daemon_pid() {
	pgrep -f -- "-f $C --daemon -q" | head -n 1
}
kill_daemon() {
	p=$(daemon_pid)
	[ -z "$p" ] || kill -KILL "$p" 2>/dev/null || true
}
ug_cleanup_hooks="kill_daemon $ug_cleanup_hooks"
set +e
"$WATCH" -f "$C" --daemon -q >"$T/out" 2>"$T/err"
st=$?
set -e
[ "$st" -eq 0 ] || { cat "$T/err"; fail "--daemon exited $st"; }
dpid=$(daemon_pid)
[ -n "$dpid" ] || fail "no daemon is running"
[ "$(ps -o sid= -p "$dpid" | tr -d ' ')" = "$dpid" ] || fail "the daemon did not start a session"
[ "$(readlink "/proc/$dpid/cwd")" = / ] || fail "the daemon did not change to /"
v=$(latest_version)
echo daemon >"$TREE/base"
wait_version $((v + 1))
kill -TERM "$dpid"
wait_until "the daemon to stop" sh -c "! kill -0 $dpid 2>/dev/null || [ \"\$(cut -d' ' -f3 /proc/$dpid/stat)\" = Z ]"
ok "--daemon: start-up errors in its status; detached, it publishes and stops on SIGTERM"
done_testing
