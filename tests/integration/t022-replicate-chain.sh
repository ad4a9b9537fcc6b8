#!/bin/sh
# Replication down group chains over real sshd: 2 groups of 3 servers follow
# a master; the master serves one copy per group; a stopped middle server is
# skipped and catches up; a damaged object is repaired; a tampered manifest
# is refused by the next server; an unknown host key is refused; daemons
# long-poll and converge, and stop cleanly on SIGTERM.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/ssh-lib.sh"

SYNCD="$UG_BUILDDIR/upgrid-syncd"
ug_ssh_setup

# --- master repo and tree
M=$T/master
"$UPGRID" -R "$M" init >/dev/null
"$UPGRID" keygen -f "$T/key" >/dev/null
cp "$T/key.pub" "$T/master.pub"
mkdir -p "$T/tree/bin" "$T/tree/etc" "$T/tree/share"
head -c 400000 /dev/urandom >"$T/tree/bin/app"
printf '[main]\nport = 80\nname = demo\n' >"$T/tree/etc/app.ini"
i=0
while [ $i -lt 30 ]; do
	printf 'file %d\n%s\n' $i "$(head -c 2000 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
		>"$T/tree/share/f$i.txt"
	i=$((i + 1))
done

# --- servers: one sshd per repo, forced command = upgrid-syncd --serve
ug_sshd_start master "$SYNCD --serve --repo $M --name master"
SERVERS="g1a g1b g1c g2a g2b g2c"
for s in $SERVERS; do
	"$UPGRID" -R "$T/$s" init >/dev/null
	ug_sshd_start "$s" "$SYNCD --serve --repo $T/$s --name $s"
done
{
	echo "[group g1]"
	for s in g1a g1b g1c; do echo "server = $s root@127.0.0.1:$(ug_sshd_port $s) $T/$s"; done
	echo "[group g2]"
	for s in g2a g2b g2c; do echo "server = $s root@127.0.0.1:$(ug_sshd_port $s) $T/$s"; done
} >"$M/cluster"

# syncd.conf for each server
for s in $SERVERS; do
	cat >"$T/$s.conf" <<EOF
[syncd]
repo = $T/$s
name = $s
master = root@127.0.0.1:$(ug_sshd_port master) $M
master-key = $T/master.pub
identity = $T/ssh/client_key
known-hosts = $T/ssh/known_hosts
serve-command = $SYNCD
connect-timeout = 5
idle-timeout = 20
wait = 20
retry = 1
EOF
done

# once NAME [ARGS]: one round on server NAME; output in $T/NAME.log
once() {
	n=$1
	shift
	set +e
	"$SYNCD" -f "$T/$n.conf" --once "$@" >"$T/$n.log" 2>&1
	st=$?
	set -e
	return $st
}
ref() { cat "$1/refs/stable"; }
stat_get() { "$SYNCD" --stats --repo "$M" | jq -r "$1"; }

# --- version 1 reaches all six, one copy per group from the master
"$UPGRID" -R "$M" publish -k "$T/key" -m v1 "$T/tree" >/dev/null
for s in g1a g2a g1b g2b g1c g2c; do
	once $s || { cat "$T/$s.log"; fail "$s: --once failed"; }
done
for s in $SERVERS; do
	[ "$(ref "$T/$s")" = 1 ] || fail "$s is not at version 1"
	run_ug 0 -R "$T/$s" verify --pubkey "$T/master.pub"
done
ok "publish: all 6 servers converge to version 1 and verify"

nobj=$(find "$M/objects" -type f | wc -l)
[ "$(stat_get .sent.object.count)" -eq $((2 * nobj)) ] ||
	fail "master sent $(stat_get .sent.object.count) objects, expected 2 x $nobj"
expect_in "$T/g1b.log" "version 1 \(from 'g1a'" "g1b took version 1 from g1a"
expect_in "$T/g2c.log" "version 1 \(from 'g2b'" "g2c took version 1 from g2b"
ok "the master served exactly 2 copies of each of its $nobj objects; each server copied its predecessor"
sessions1=$(stat_get .sessions)

# --- version 2 with a middle server down
head -c 1000 /dev/urandom >>"$T/tree/bin/app"
printf '[main]\nport = 8080\nname = demo\n' >"$T/tree/etc/app.ini"
echo new >"$T/tree/share/new.txt"
"$UPGRID" -R "$M" publish -k "$T/key" -m v2 "$T/tree" >/dev/null
ug_sshd_stop g1b
once g1a || { cat "$T/g1a.log"; fail "g1a: --once failed"; }
once g1c || { cat "$T/g1c.log"; fail "g1c: --once failed with g1b down"; }
expect_in "$T/g1c.log" "cannot use upstream 'g1b'.*trying the next one up" "g1c says it skips g1b"
[ "$(ref "$T/g1c")" = 2 ] || fail "g1c did not reach version 2 past a stopped g1b"
expect_in "$T/g1a.log" "rebuilt from deltas" "g1a reports its transfer"
expect_not_in "$T/g1a.log" "[1-9][0-9]* fetched whole" "g1a rebuilt every new object from deltas"
ok "a stopped middle server is skipped: its successor follows the one before"

ug_sshd_restart g1b
once g1b || { cat "$T/g1b.log"; fail "g1b: --once failed after restart"; }
[ "$(ref "$T/g1b")" = 2 ] || fail "g1b did not catch up"
for s in g2a g2b g2c; do once $s || { cat "$T/$s.log"; fail "$s failed"; }; done
[ "$(stat_get .sessions)" -eq $((sessions1 + 2)) ] ||
	fail "master served $(($(stat_get .sessions) - sessions1)) sessions for version 2, expected 2"
for s in $SERVERS; do
	[ "$(ref "$T/$s")" = 2 ] || fail "$s is not at version 2"
	run_ug 0 -R "$T/$s" verify --pubkey "$T/master.pub"
done
ok "the restarted server catches up; all 6 at version 2; the master saw one session per group"

# --- a damaged object is repaired (by signature delta: it is big)
app=$("$UPGRID" -R "$M" show --json | jq -r '.files[] | select(.path == "bin/app") | .blake2b')
objf=$(obj_path "$T/g2b" objects "$app")
flip_byte "$objf"
run_ug 3 -R "$T/g2b" verify --pubkey "$T/master.pub"
once g2b --scrub || { cat "$T/g2b.log"; fail "g2b: --scrub failed"; }
expect_in "$T/g2b.log" "bin/app.*damaged" "scrub names the damaged file"
expect_in "$T/g2b.log" "repaired object of 'bin/app'" "scrub repaired it"
rep=$(sed -n "s/.*repaired object of 'bin\/app' from .*: \([0-9]*\) bytes for.*/\1/p" "$T/g2b.log")
[ -n "$rep" ] && [ "$rep" -lt 100000 ] ||
	fail "repairing a 400 kB file with one bad byte cost ${rep:-?} bytes (signature delta not used?)"
run_ug 0 -R "$T/g2b" verify --pubkey "$T/master.pub"
rm -f "$objf"
once g2b || { cat "$T/g2b.log"; fail "g2b: repair of a missing object failed"; }
[ -f "$objf" ] || fail "a missing object was not fetched again"
run_ug 0 -R "$T/g2b" verify --pubkey "$T/master.pub"
ok "a damaged object is repaired with --scrub; a missing one at the next round"

# --- a tampered manifest is refused by the next server in the chain
echo v3 >"$T/tree/share/v3.txt"
"$UPGRID" -R "$M" publish -k "$T/key" -m v3 "$T/tree" >/dev/null
once g2a && once g2b || fail "g2a/g2b failed on version 3"
mf="$T/g2b/manifests/stable/3.json"
chmod u+w "$mf"
sed -i 's/"v3"/"v4"/' "$mf"
rm -f "$T/g2b/manifests/stable/3.from-"*
set +e
once g2c
st=$?
set -e
expect_in "$T/g2c.log" "refusing manifest 3 of 'stable' from 'g2b'.*signature" "g2c refuses and says why"
[ $st -eq 0 ] || { cat "$T/g2c.log"; fail "g2c did not fall back past g2b (exit $st)"; }
[ "$(ref "$T/g2c")" = 3 ] || fail "g2c is not at version 3"
run_ug 0 -R "$T/g2c" verify --pubkey "$T/master.pub"
ok "a tampered manifest is refused with the reason; the next server up is used"

# --- unknown host key
sed "s|^known-hosts = .*|known-hosts = $T/empty_known_hosts|" "$T/g1a.conf" >"$T/bad.conf"
: >"$T/empty_known_hosts"
set +e
"$SYNCD" -f "$T/bad.conf" --once >"$T/bad.log" 2>&1
st=$?
set -e
[ $st -eq 4 ] || { cat "$T/bad.log"; fail "unknown host key: exit $st, expected 4"; }
expect_in "$T/bad.log" "host key.*not in.*ssh-keyscan" "unknown host key message says how to accept it"
ok "an unknown host key is refused (exit 4) with the command to accept it"

# --- daemons long-poll and converge; SIGTERM stops them cleanly
pids=""
for s in $SERVERS; do
	"$SYNCD" -f "$T/$s.conf" >"$T/$s.daemon.log" 2>&1 &
	pids="$pids $!"
done
daemons_stop() { for p in $pids; do kill "$p" 2>/dev/null || true; done; }
ug_cleanup_hooks="daemons_stop $ug_cleanup_hooks"
sleep 1
echo v4 >"$T/tree/share/v4.txt"
"$UPGRID" -R "$M" publish -k "$T/key" -m v4 "$T/tree" >/dev/null
i=0
while [ $i -lt 300 ]; do
	n=0
	for s in $SERVERS; do [ "$(ref "$T/$s")" = 4 ] && n=$((n + 1)); done
	[ $n -eq 6 ] && break
	sleep 0.1
	i=$((i + 1))
done
[ $n -eq 6 ] || { tail -n 5 "$T"/*.daemon.log; fail "only $n of 6 daemons reached version 4 in 30 s"; }
ok "daemons converge on a new version by long-poll ($((i / 10)) s)"
for p in $pids; do kill -TERM "$p"; done
for p in $pids; do
	wait "$p" || fail "a daemon exited with status $? on SIGTERM"
done
pids=""
for s in $SERVERS; do
	expect_in "$T/$s.daemon.log" "stopping on SIGTERM" "$s stops on SIGTERM"
	run_ug 0 -R "$T/$s" verify --pubkey "$T/master.pub"
done
ok "SIGTERM stops every daemon with status 0 and a consistent repo"

done_testing
