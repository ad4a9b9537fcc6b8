#!/bin/sh
# What a terminal refuses and how it fails safe, against real sshd group
# servers: a failing health check rolls back, is reported and not retried;
# a tampered delta on one server is rejected and another server used; an
# expired or older manifest is refused; deny, pin, manual policy and
# accept are respected; the lock stops a second pull; rollback works.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/ssh-lib.sh"
. "$UG_SRCDIR/tests/integration/term-lib.sh"

ug_ssh_setup
term_master
term_servers "g1:g1a g1b"

mkdir -p "$T/tree/bin" "$T/tree/etc"
head -c 300000 /dev/urandom >"$T/tree/bin/app"
printf '[main]\nport = 80\n' >"$T/tree/etc/app.ini"
"$UPGRID" -R "$M" publish -k "$T/key" -m v1 "$T/tree" >/dev/null
term_replicate

# hooks: restart logs its calls; the health check fails while $T/sick exists
cat >"$T/restart" <<EOF
#!/bin/sh
echo "restart \$UPGRID_VERSION from \$UPGRID_PREVIOUS" >>"$T/restarts"
EOF
cat >"$T/health" <<EOF
#!/bin/sh
if [ -e "$T/sick" ]; then echo "app does not answer on port 80"; exit 1; fi
exit 0
EOF
chmod +x "$T/restart" "$T/health"
term_conf a g1a g1b -- "restart = $T/restart" "health-check = $T/health" "health-check-timeout = 10"
pull a
[ "$pst" -eq 0 ] || { cat "$T/term/a.out"; fail "first pull exited $pst"; }
grep -q "restart 1 from 0" "$T/restarts" || fail "the restart hook did not run with the versions"

# --- a failing health check: back to 1, reported, marked bad, not retried
head -c 2000 /dev/urandom >>"$T/tree/bin/app"
"$UPGRID" -R "$M" publish -k "$T/key" -m v2 "$T/tree" >/dev/null
term_replicate
touch "$T/sick"
pull a
[ "$pst" -eq 7 ] || { cat "$T/term/a.out"; fail "a failed health check exited $pst, expected 7"; }
expect_in "$T/term/a.out" "version 2 failed.*health-check.*switching back to version 1" \
	"the rollback is logged with the reason"
[ "$(tstatus a .installed)" = 1 ] || fail "not back on version 1"
[ "$(readlink "$T/term/a/current")" = "$T/term/a/state/versions/1" ] || fail "root does not point to 1"
[ "$(tstatus a .last.result)" = rolled-back ] || fail "status does not say rolled-back"
[ "$(tstatus a '.bad | join(",")')" = 2 ] || fail "version 2 is not marked bad"
grep -q "restart 1 from 2" "$T/restarts" || fail "the restart hook did not run after switching back"
[ ! -e "$T/term/a/state/versions/2" ] || fail "the failed version 2 was kept"
grep -q '"result":"rolled-back"' "$T/g1a/reports/reports.jsonl" "$T/g1b/reports/reports.jsonl" ||
	fail "the rollback was not reported to the server"
rm "$T/sick"
pull a
[ "$pst" -eq 0 ] && [ "$(tstatus a .installed)" = 1 ] || fail "a bad version was retried"
run_ug 0 accept -C "$T/term/a.conf" 2
pull a
[ "$pst" -eq 0 ] && [ "$(tstatus a .installed)" = 2 ] || { cat "$T/term/a.out"; fail "accept did not let 2 in"; }
ok "failing health check: rolled back, exit 7, reported, not retried until accepted"

# --- a tampered delta on the first server: rejected, the other one used
head -c 2000 /dev/urandom >>"$T/tree/bin/app"
"$UPGRID" -R "$M" publish -k "$T/key" -m v3 "$T/tree" >/dev/null
term_replicate
"$UPGRID" -v pull -C "$T/term/a.conf" --check >"$T/check.out" 2>&1
first=$(sed -n "s/.*connected to '\([a-z0-9]*\)'.*/\1/p" "$T/check.out" | head -1)
case $first in g1a) other=g1b ;; g1b) other=g1a ;; *) cat "$T/check.out"; fail "no first server" ;; esac
grep -q "would install version 3" "$T/check.out" || { cat "$T/check.out"; fail "--check does not say what it would do"; }
[ "$(tstatus a .installed)" = 2 ] || fail "--check installed something"
for f in $(find "$T/$first/deltas" "$T/$first/objects" -type f); do
	printf 'XXXXXXXX' | dd of="$f" bs=1 seek=40 conv=notrunc 2>/dev/null
done
pull a
[ "$pst" -eq 0 ] || { cat "$T/term/a.out"; fail "pull with a tampered server exited $pst"; }
[ "$(tstatus a .installed)" = 3 ] || fail "not on version 3"
[ "$(tstatus a .last.server)" = "$other" ] || fail "the other server was not used"
expect_in "$T/term/a.out" "rejected (delta|object) .* from '$first'" "the tampered blob is named"
cmp "$T/tree/bin/app" "$T/term/a/current/bin/app" || fail "bin/app differs"
ok "a tampered delta on $first is rejected and $other used"

# --- an expired manifest is refused
echo more >>"$T/tree/bin/app"
"$UPGRID" -R "$M" publish -k "$T/key" -m v4 --expire-days 1 "$T/tree" >/dev/null
term_replicate
later=$(( $(date +%s) + 3 * 86400 ))
set +e
UPGRID_TEST_NOW=$later "$UPGRID" pull -C "$T/term/a.conf" >"$T/exp.out" 2>&1
st=$?
set -e
[ "$st" -eq 0 ] || { cat "$T/exp.out"; fail "pull with an expired manifest exited $st"; }
expect_in "$T/exp.out" "refusing version 4: its manifest expired" "the expiry is named"
[ "$(tstatus a .installed)" = 3 ] || fail "an expired manifest was installed"
ok "an expired manifest is refused with the reason"

# --- deny (setting and command), then pin down and back
cp "$T/term/a.conf" "$T/a.conf.orig"
echo "deny = 4" >>"$T/term/a.conf"
pull a --check
grep -q "version 4 is denied" "$T/term/a.out" || { cat "$T/term/a.out"; fail "deny setting not respected"; }
cp "$T/a.conf.orig" "$T/term/a.conf"
run_ug 0 deny -C "$T/term/a.conf" 4
pull a
[ "$(tstatus a .installed)" = 3 ] || fail "a denied version was installed"
run_ug 0 deny -C "$T/term/a.conf" --undo 4
pull a
[ "$pst" -eq 0 ] && [ "$(tstatus a .installed)" = 4 ] || { cat "$T/term/a.out"; fail "undeny: not on 4"; }
echo "pin = 2" >>"$T/term/a.conf"
pull a
[ "$pst" -eq 0 ] && [ "$(tstatus a .installed)" = 2 ] || { cat "$T/term/a.out"; fail "pin = 2 did not go down to 2"; }
pull a
[ "$(tstatus a .installed)" = 2 ] || fail "a pinned terminal moved"
cp "$T/a.conf.orig" "$T/term/a.conf"
pull a
[ "$(tstatus a .installed)" = 4 ] || fail "unpinned terminal did not go back to 4"
ok "deny (setting, command, --undo) and pin are respected"

# --- an older version on a server is never a downgrade
"$UPGRID" -R "$T/old" init >/dev/null
cat >"$T/old.conf" <<EOF
[syncd]
repo = $T/old
name = old
master = - $M
master-key = $T/master.pub
EOF
ug_sshd_start old "$SYNCD --serve --repo $T/old --name old"
term_conf b old
# only version 1 on 'old': publish nothing new until b is on 4 via g1a
cp "$T/term/a.conf" "$T/term/b.conf.tmp"
sed "s|/term/a/|/term/b/|g; s/^id = a/id = b/" "$T/term/b.conf.tmp" >"$T/term/b.conf"
pull b
[ "$(tstatus b .installed)" = 4 ] || fail "b not on 4"
"$SYNCD" -f "$T/old.conf" --once >/dev/null 2>&1 || true
"$UPGRID" -R "$T/old" log >/dev/null 2>&1 || true
ug_sshd_stop g1a
ug_sshd_stop g1b
echo "seed = $(seed old)" >>"$T/term/b.conf"
echo 1 >"$T/old/refs/stable.tmp"; mv "$T/old/refs/stable.tmp" "$T/old/refs/stable"
pull b
[ "$pst" -eq 0 ] && [ "$(tstatus b .installed)" = 4 ] || { cat "$T/term/b.out"; fail "b went down to an older version"; }
ug_sshd_restart g1a
ug_sshd_restart g1b
ok "a server offering only older versions does not make a terminal downgrade"

# --- the lock: a second pull exits 6 while the first holds it
flock "$T/term/a/state/lock" sleep 3 &
lockpid=$!
sleep 0.5
pull a
wait $lockpid
[ "$pst" -eq 6 ] || { cat "$T/term/a.out"; fail "a concurrent pull exited $pst, expected 6"; }
expect_in "$T/term/a.out" "another upgrid command is working on" "the lock is explained"
ok "the lock stops a concurrent pull (exit 6)"

# --- rollback, then policy manual
[ "$(tstatus a '.kept | join(",")')" = "2,4" ] || fail "kept $(tstatus a .kept), expected 2 and 4"
run_ug 0 rollback -C "$T/term/a.conf"
[ "$(tstatus a .installed)" = 2 ] || fail "rollback did not go to 2"
[ "$(tstatus a '.bad | index(4) != null')" = true ] || fail "the version left is not marked bad"
pull a
# 3 is newer than 2 and was never refused; 4 was
[ "$(tstatus a .installed)" = 3 ] || fail "after rollback: on $(tstatus a .installed), expected 3 (4 is bad)"
run_ug 5 rollback -C "$T/term/a.conf" 1
echo "policy = manual" >>"$T/term/a.conf"
echo v5 >>"$T/tree/bin/app"
"$UPGRID" -R "$M" publish -k "$T/key" -m v5 "$T/tree" >/dev/null
term_replicate
pull a --check
grep -q "waits for 'upgrid accept 5'" "$T/term/a.out" || { cat "$T/term/a.out"; fail "manual policy not explained"; }
run_ug 0 accept -C "$T/term/a.conf" 5
pull a
[ "$pst" -eq 0 ] && [ "$(tstatus a .installed)" = 5 ] || { cat "$T/term/a.out"; fail "accepted 5 not installed"; }
ok "rollback marks the version left bad; policy manual waits for accept"

# --- every server busy: the terminal waits as told and tries again
ug_sshd_start busy "$SYNCD --serve --repo $T/g1a --name busy --max-sessions 1 --retry-after 1"
term_conf c busy
mkdir -p "$T/g1a/cache/slots"
flock "$T/g1a/cache/slots/0" sleep 2.5 &
holder=$!
sleep 0.3
"$UPGRID" -v pull -C "$T/term/c.conf" >"$T/term/c.out" 2>&1 || { cat "$T/term/c.out"; fail "pull against a busy server failed"; }
wait $holder
expect_in "$T/term/c.out" "is busy \(retry after 1 s\)" "the BUSY answer is seen"
expect_in "$T/term/c.out" "every server is busy: trying again in" "the terminal backs off"
[ "$(tstatus c .installed)" = 5 ] || fail "c did not install after the server was free"
ok "a busy server: the terminal waits its retry-after (with jitter) and then installs"

# --- staged rollout: 0% keeps the terminal out, 'upgrid rollout' lets it in
cp "$T/a.conf.orig" "$T/term/a.conf"
echo v6 >>"$T/tree/bin/app"
"$UPGRID" -R "$M" publish -k "$T/key" -m v6 --rollout 0% "$T/tree" >/dev/null
term_replicate
pull a
[ "$pst" -eq 0 ] && [ "$(tstatus a .installed)" = 5 ] || fail "a 0% rollout was installed"
pull a --check
grep -q "version 6 is not rolled out to this terminal" "$T/term/a.out" || { cat "$T/term/a.out"; fail "the rollout is not explained"; }
"$UPGRID" -R "$M" rollout -k "$T/key" 6 100% --terminals 'z*' >/dev/null
term_replicate
pull a
[ "$(tstatus a .installed)" = 5 ] || fail "a terminal outside --terminals 'z*' installed 6"
"$UPGRID" -R "$M" rollout -k "$T/key" 6 100% --terminals 'a*' >/dev/null
term_replicate
pull a
[ "$pst" -eq 0 ] && [ "$(tstatus a .installed)" = 6 ] || { cat "$T/term/a.out"; fail "a terminal inside the widened rollout did not install 6"; }
ok "staged rollout: 0% holds a terminal back; 'upgrid rollout' re-signed to its id pattern lets it in"

# --- a full disk: a clear message, nothing installed half, no crash
mkdir -p "$T/small"
if mount -t tmpfs -o size=256k tmpfs "$T/small" 2>/dev/null; then
	term_conf d g1a g1b
	sed -i "s|^state = .*|state = $T/small/state|" "$T/term/d.conf"
	pull d
	umount "$T/small"
	[ "$pst" -eq 1 ] || { cat "$T/term/d.out"; fail "a full disk exited $pst, expected 1"; }
	expect_in "$T/term/d.out" "no space left for .* free some space there" "the full disk is named"
	[ ! -e "$T/term/d/current" ] || fail "a half version was installed on a full disk"
	ok "a full disk: exit 1, the message says what to do, nothing installed"
else
	echo "# cannot mount a tmpfs here: full-disk case not run"
fi

# --- a rollout limited to a group reaches a terminal with nothing installed
echo v7 >>"$T/tree/bin/app"
"$UPGRID" -R "$M" publish -k "$T/key" -m v7 --groups g1 "$T/tree" >/dev/null
term_replicate
term_conf e g1a g1b
pull e
[ "$pst" -eq 0 ] && [ "$(tstatus e .installed)" = 7 ] ||
	{ cat "$T/term/e.out"; fail "a fresh terminal of group g1 was kept out of a --groups g1 rollout"; }
ok "a --groups rollout counts a fresh terminal in the group the manifest's chain list gives it"
