#!/bin/sh
# 12 terminals over 2 groups of 3 group servers (each a real sshd) upgrade
# through 3 versions: the first install from the seeds, then each server
# found by rendezvous over the signed chain list; upgrades pull only
# deltas; a locally edited config keeps its edit through a structural
# change, and a conflict is reported (local wins, or upstream if set);
# CSV rows survive a new column; reports reach the master's fleet view.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/ssh-lib.sh"
. "$UG_SRCDIR/tests/integration/term-lib.sh"

ug_ssh_setup
term_master
term_servers "g1:g1a g1b g1c g2:g2a g2b g2c"

mkdir -p "$T/tree/bin" "$T/tree/etc" "$T/tree/data" "$T/tree/share"
head -c 400000 /dev/urandom >"$T/tree/bin/app"
printf '# the app\n[main]\nport = 80\nname = demo\n' >"$T/tree/etc/app.ini"
printf 'id,city\n1,Oslo\n2,Rome\n' >"$T/tree/data/table.csv"
for i in 1 2 3 4 5 6 7 8; do
	head -c 3000 /dev/urandom | od -An -tx1 >"$T/tree/share/f$i.txt"
done
"$UPGRID" -R "$M" publish -k "$T/key" -m v1 "$T/tree" >/dev/null
term_replicate

TERMS="t01 t02 t03 t04 t05 t06 t07 t08 t09 t10 t11 t12"
for id in $TERMS; do
	term_conf "$id" g1a g2a
done
echo "on-conflict = upstream" >>"$T/term/t04.conf"
for id in $TERMS; do
	pull "$id"
	[ "$pst" -eq 0 ] || { cat "$T/term/$id.out"; fail "$id: first pull exited $pst"; }
	[ "$(tstatus "$id" .installed)" = 1 ] || fail "$id is not on version 1"
	cmp "$T/tree/bin/app" "$T/term/$id/current/bin/app" || fail "$id: bin/app differs"
done
expect_in "$T/term/t01.out" "installed version 1 from seed" "the first install names its seed"
ok "12 terminals installed version 1 from their seeds"

# a second pull has nothing to do, and says nothing
pull t01
[ "$pst" -eq 0 ] && [ ! -s "$T/term/t01.out" ] || { cat "$T/term/t01.out"; fail "an idle pull is not quiet"; }
ok "a pull with nothing to do exits 0 and prints nothing"

# --- local edits: a config value and a data row
sed -i 's/^name = demo$/name = kiosk-3/' "$T/term/t03/current/etc/app.ini"
sed -i 's/^name = demo$/name = kiosk-4/' "$T/term/t04/current/etc/app.ini"
echo "9,Lima" >>"$T/term/t05/current/data/table.csv"

# --- version 2: a small binary edit, a structural config change, a new column
head -c 1000 /dev/urandom >>"$T/tree/bin/app"
printf '# the app, v2\n[main]\nport = 80\nname = demo\ntimeout = 30\n[log]\nlevel = info\n' \
	>"$T/tree/etc/app.ini"
printf 'id,city,country\n1,Oslo,NO\n2,Rome,IT\n' >"$T/tree/data/table.csv"
"$UPGRID" -R "$M" publish -k "$T/key" -m v2 "$T/tree" >/dev/null
"$UPGRID" -R "$M" show --json 2 >"$T/v2.json"
[ "$(jq -r '.files[] | select(.path == "etc/app.ini") | .action' "$T/v2.json")" = merge ] ||
	fail "etc/app.ini is not a merge action in version 2"
[ "$(jq -r '.files[] | select(.path == "data/table.csv") | .action' "$T/v2.json")" = migrate ] ||
	fail "data/table.csv is not a migrate action in version 2"
term_replicate
full=$(full_stored 2)
groups=""
for id in $TERMS; do
	pull "$id"
	[ "$pst" -eq 0 ] || { cat "$T/term/$id.out"; fail "$id: pull of version 2 exited $pst"; }
	[ "$(tstatus "$id" .installed)" = 2 ] || fail "$id is not on version 2"
	bytes=$(tstatus "$id" .last.bytes)
	[ "$bytes" -gt 0 ] && [ $((bytes * 5)) -lt "$full" ] ||
		fail "$id pulled $bytes bytes for a small edit: not under 20% of the full $full"
	cmp "$T/tree/bin/app" "$T/term/$id/current/bin/app" || fail "$id: bin/app differs"
	srv=$(tstatus "$id" .last.server)
	case $srv in
	g1?|g2?) groups="$groups ${srv%?}" ;;
	*) fail "$id used '$srv', not a group server of the chain list" ;;
	esac
done
echo "$groups" | grep -q g1 && echo "$groups" | grep -q g2 ||
	fail "the terminals did not spread over both groups:$groups"
ok "12 terminals upgraded to version 2 through both groups, each pulling < 20% of $full bytes"

# the terminals not edited got the new file exactly
cmp "$T/tree/etc/app.ini" "$T/term/t01/current/etc/app.ini" || fail "t01: app.ini is not v2's"
ini=$T/term/t03/current/etc/app.ini
grep -q '^name = kiosk-3$' "$ini" || { cat "$ini"; fail "t03 lost its local edit"; }
grep -q '^timeout = 30$' "$ini" && grep -q '^\[log\]$' "$ini" && grep -q '^# the app, v2$' "$ini" ||
	{ cat "$ini"; fail "t03 did not get the new keys, section and comments"; }
ok "a locally edited config keeps its edit through a structural change"

csv=$T/term/t05/current/data/table.csv
[ "$(head -1 "$csv")" = "id,city,country" ] || { cat "$csv"; fail "t05: the new column is missing"; }
grep -q '^9,Lima,$' "$csv" && grep -q '^1,Oslo,$' "$csv" && [ "$(wc -l <"$csv")" -eq 4 ] ||
	{ cat "$csv"; fail "t05: the local rows were not all kept"; }
ok "CSV data keeps every local row through a column change"

# --- version 3: upstream changes a key two terminals edited
sed -i 's/^name = demo$/name = demo3/; s/^port = 80$/port = 81/' "$T/tree/etc/app.ini"
"$UPGRID" -R "$M" publish -k "$T/key" -m v3 "$T/tree" >/dev/null
term_replicate
for id in $TERMS; do
	pull "$id"
	[ "$pst" -eq 0 ] || { cat "$T/term/$id.out"; fail "$id: pull of version 3 exited $pst"; }
done
grep -q '^name = kiosk-3$' "$ini" && grep -q '^port = 81$' "$ini" ||
	{ cat "$ini"; fail "t03: local should win the conflict and port be updated"; }
expect_in "$T/term/t03.out" "merge conflict.*name" "t03 logs the conflict"
tstatus t03 .last.message | grep -q "merge conflicts: etc/app.ini \[main\] name" ||
	fail "t03's status does not report the conflict: $(tstatus t03 .last.message)"
grep -q '^name = demo3$' "$T/term/t04/current/etc/app.ini" ||
	{ cat "$T/term/t04/current/etc/app.ini"; fail "t04 (on-conflict = upstream) kept its edit"; }
ok "a conflicting key: local wins and is reported; on-conflict = upstream takes the new value"

# --- rollback keeps 2 versions; status lists them
[ "$(tstatus t01 '.kept | join(",")')" = "2,3" ] || fail "t01 keeps $(tstatus t01 '.kept'), expected 2,3"
ok "each terminal keeps the installed and the previous version"

# --- the agent: a long-poll wakes it when a server gets a new version
sed -i 's/^splay = 0$/splay = 0\npoll = 30/' "$T/term/t01.conf"
"$UPGRID" agent -C "$T/term/t01.conf" >"$T/agent.out" 2>&1 &
agent=$!
sleep 1
echo v4 >>"$T/tree/share/f1.txt"
"$UPGRID" -R "$M" publish -k "$T/key" -m v4 "$T/tree" >/dev/null
start=$(date +%s)
term_replicate
i=0
while [ "$(tstatus t01 .installed)" != 4 ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || { kill "$agent"; cat "$T/agent.out"; fail "the agent did not install version 4 in 20 s"; }
	sleep 0.2
done
took=$(( $(date +%s) - start ))
[ "$took" -lt 25 ] || fail "the agent took $took s: it polled instead of waiting on the server"
sleep 1
t0=$(date +%s)
kill -TERM "$agent"
set +e
wait "$agent"
st=$?
set -e
[ "$st" -eq 0 ] || { cat "$T/agent.out"; fail "the agent exited $st on SIGTERM"; }
[ $(( $(date +%s) - t0 )) -le 3 ] || fail "SIGTERM during a long-poll took more than 3 s"
[ "$(grep -c 'installed version' "$T/agent.out")" -eq 1 ] ||
	{ cat "$T/agent.out"; fail "the agent installed more than once"; }
expect_in "$T/agent.out" "installed version 4" "the agent says what it installed"
ok "the agent installs a new version when its server gets it (long-poll) and exits 0 on SIGTERM"

# --- reports travel up each chain (one hop per round) to the master
term_replicate
term_replicate
term_replicate
run_ug 0 -R "$M" fleet --json
[ "$(jq -r .terminals "$T/out")" = 12 ] || { cat "$T/out"; fail "the master does not know all 12 terminals"; }
[ "$(jq -r '.versions[] | select(.version == 3) | .terminals' "$T/out")" = 11 ] &&
	[ "$(jq -r '.versions[] | select(.version == 4) | .terminals' "$T/out")" = 1 ] ||
	{ cat "$T/out"; fail "fleet does not show 11 terminals on 3 and 1 on 4"; }
run_ug 0 -R "$M" fleet
expect_in "$T/out" "^ *3 .*11" "the text view counts version 3"
ok "reports reach the master through the chains: upgrid fleet shows 11 on version 3, 1 on 4"
