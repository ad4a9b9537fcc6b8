#!/bin/sh
# upgrid-syncd over the local transport (master '-': a repo on this
# machine, spawned over pipes), and its command line: --test-config, bad
# settings, exit codes, an older upstream not taken, the repo lock.
. "$UG_SRCDIR/tests/integration/lib.sh"

SYNCD="$UG_BUILDDIR/upgrid-syncd"
M=$T/master
S=$T/server
"$UPGRID" -R "$M" init >/dev/null
"$UPGRID" -R "$S" init >/dev/null
"$UPGRID" keygen -f "$T/key" >/dev/null
mkdir -p "$T/tree"
head -c 100000 /dev/urandom >"$T/tree/blob"
echo one >"$T/tree/a.txt"
"$UPGRID" -R "$M" publish -k "$T/key" "$T/tree" >/dev/null
cat >"$T/s.conf" <<CONF
[syncd]
repo = $S
master = - $M
master-key = $T/key.pub
serve-command = $SYNCD
CONF

# sync RC [ARGS]: run --once with the config and expect status RC
sync() {
	want=$1
	shift
	set +e
	"$SYNCD" -f "$T/s.conf" --once "$@" >"$T/out" 2>&1
	got=$?
	set -e
	[ "$got" -eq "$want" ] || { cat "$T/out"; fail "upgrid-syncd --once $* exited $got, expected $want"; }
}

"$SYNCD" -f "$T/s.conf" --test-config >"$T/tc"
expect_in "$T/tc" "^master = - $M\$" "--test-config prints the master"
expect_in "$T/tc" "^channels = stable\$" "--test-config prints the default channel"
ok "--test-config prints the settings"

# an interrupted download of the big object: its first 50000 bytes are
# already here, so only the rest crosses the wire
blob=$("$UPGRID" -R "$M" show --json | jq -r '.files[] | select(.path == "blob") | .blake2b')
objf=$(obj_path "$M" objects "$blob")
head -c 50000 "$objf" >"$S/tmp/dl-o-$blob"
stored=$(find "$M/objects" -type f -exec stat -c %s {} + | awk '{ n += $1 } END { print n }')
sync 0
[ "$(cat "$S/refs/stable")" = 1 ] || fail "server is not at version 1"
expect_in "$T/out" "now at version 1" "the round says what it did"
run_ug 0 -R "$S" verify --pubkey "$T/key.pub"
sent=$("$SYNCD" --stats --repo "$M" | jq '.sent.object.bytes')
[ "$sent" -eq $((stored - 50000)) ] || fail "sent $sent object bytes, expected $stored - 50000 (no resume?)"
[ ! -e "$S/tmp/dl-o-$blob" ] || fail "the partial download was left behind"
[ "$("$SYNCD" --stats --repo "$M" | jq '.sent.manifest.count')" -eq 0 ] ||
	fail "the plain manifest was sent instead of its compressed copy"
[ -f "$S/manifests/stable/1.from-0.zst" ] || fail "the server did not keep the compressed manifest"
ok "local transport: version 1 replicated and verified; a partial download resumed at its offset"

echo two >"$T/tree/a.txt"
"$UPGRID" -R "$M" publish -k "$T/key" "$T/tree" >/dev/null
sync 0
[ "$(cat "$S/refs/stable")" = 2 ] || fail "server is not at version 2"
expect_in "$T/out" "1 objects rebuilt from deltas, 0 fetched whole" "the change came as a delta"
sync 0
expect_not_in "$T/out" "now at version" "a second round with nothing new does nothing"
ok "version 2 arrives as a delta; a round with nothing new is quiet"

# code moving between files: the server fetches only the bundle and makes
# the per-file deltas it serves itself (checked against their names)
for i in 1 2 3 4; do head -c 20000 /dev/urandom | od -An -tx1 >"$T/p$i"; done
cat "$T/p1" "$T/p2" >"$T/tree/x.js"
cat "$T/p3" "$T/p4" >"$T/tree/y.js"
"$UPGRID" -R "$M" publish -k "$T/key" "$T/tree" >/dev/null
sync 0
cat "$T/p1" "$T/p3" >"$T/tree/x.js"
cat "$T/p2" "$T/p4" >"$T/tree/y.js"
"$UPGRID" -R "$M" publish -k "$T/key" --json "$T/tree" >"$T/pub.json"
[ "$(jq '.pairs[0].bundle_bytes' "$T/pub.json")" -gt 0 ] || fail "no bundle for moved code"
before=$("$SYNCD" --stats --repo "$M" | jq '.sent.delta.count')
sync 0
after=$("$SYNCD" --stats --repo "$M" | jq '.sent.delta.count')
expect_in "$T/out" "2 objects rebuilt from deltas, 0 fetched whole; 2 deltas made here" "deltas made locally"
nb=$("$UPGRID" -R "$M" show --json | jq '.bundles | length')
[ $((after - before)) -eq "$nb" ] ||
	fail "the server fetched $((after - before)) deltas, expected only the $nb bundles"
run_ug 0 -R "$S" verify --pubkey "$T/key.pub"
ok "moved code: only bundles cross the wire; per-file deltas are made here and verify"
rm "$T/tree/x.js" "$T/tree/y.js"
"$UPGRID" -R "$M" publish -k "$T/key" "$T/tree" >/dev/null
sync 0

# an upstream with an older version (same key): not taken
M2=$T/old-master
"$UPGRID" -R "$M2" init >/dev/null
"$UPGRID" -R "$M2" publish -k "$T/key" "$T/tree" >/dev/null
sed "s|^master = .*|master = - $M2|" "$T/s.conf" >"$T/s2.conf"
"$SYNCD" -f "$T/s2.conf" --once >"$T/out" 2>&1 || fail "round against an older upstream failed"
expect_in "$T/out" "offers version 1 of 'stable', older than the 5 held here: not taken" "older upstream logged"
[ "$(cat "$S/refs/stable")" = 5 ] || fail "server went back to an older version"
ok "an upstream with an older version is not followed back"

# a manifest signed by another key: refused, exit 4, ref unchanged
"$UPGRID" keygen -f "$T/other" >/dev/null
M3=$T/rogue
"$UPGRID" -R "$M3" init >/dev/null
for i in 1 2 3 4 5 6; do echo "$i" >"$T/tree/r.txt"; "$UPGRID" -R "$M3" publish -k "$T/other" "$T/tree" >/dev/null; done
sed "s|^master = .*|master = - $M3|" "$T/s.conf" >"$T/s3.conf"
set +e
"$SYNCD" -f "$T/s3.conf" --once >"$T/out" 2>&1
st=$?
set -e
[ $st -eq 4 ] || { cat "$T/out"; fail "a manifest by another key: exit $st, expected 4"; }
expect_in "$T/out" "refusing manifest 6 of 'stable'.*signed by key [0-9a-f]*, expected key" "refusal says why"
[ "$(cat "$S/refs/stable")" = 5 ] || fail "a manifest by another key moved the ref"
rm "$T/tree/r.txt"
ok "a manifest signed by another key is refused (exit 4), the ref does not move"

# settings errors: exit 2 with file and line; missing file: exit 5
printf '[syncd]\nrepo = %s\nbogus = 1\n' "$S" >"$T/bad.conf"
set +e
"$SYNCD" -f "$T/bad.conf" --once >"$T/out" 2>&1; st=$?
set -e
[ $st -eq 2 ] || fail "unknown setting: exit $st, expected 2"
expect_in "$T/out" "bad.conf': line 3: unknown setting 'bogus'" "names the file and line"
printf '[syncd]\nrepo = relative/path\n' >"$T/bad.conf"
set +e
"$SYNCD" -f "$T/bad.conf" --once >"$T/out" 2>&1; st=$?
set -e
[ $st -eq 2 ] || fail "relative repo: exit $st, expected 2"
expect_in "$T/out" "line 2: repo must be an absolute path" "relative repo refused"
set +e
"$SYNCD" -f "$T/none.conf" --once >"$T/out" 2>&1; st=$?
set -e
[ $st -eq 5 ] || fail "missing settings file: exit $st, expected 5"
set +e
"$SYNCD" --once --serve >"$T/out" 2>&1; st=$?
set -e
[ $st -eq 2 ] || fail "conflicting options: exit $st, expected 2"
set +e
"$SYNCD" --serve --repo "$S" --scrub </dev/null >"$T/out" 2>&1; st=$?
set -e
[ $st -eq 2 ] || fail "--scrub with --serve: exit $st, expected 2"
expect_in "$T/out" "go with following" "says which options go together"
ok "bad settings exit 2 naming file and line; a missing file exits 5; bad options exit 2"

# missing repo: exit 5 with a hint
sed "s|^repo = .*|repo = $T/nowhere|" "$T/s.conf" >"$T/s4.conf"
set +e
"$SYNCD" -f "$T/s4.conf" --once >"$T/out" 2>&1; st=$?
set -e
[ $st -eq 5 ] || { cat "$T/out"; fail "missing repo: exit $st, expected 5"; }
expect_in "$T/out" "upgrid init" "the message says how to create the repo"
ok "a missing repo exits 5 and says how to create it"

# the repo lock: a second syncd on the same repo exits 6
exec 9>"$S/lock"
flock -x 9
sync 6
expect_in "$T/out" "locked" "says the repo is locked"
flock -u 9
exec 9>&-
ok "a locked repo exits 6"

# --- a daemon whose channel has no version anywhere yet long-polls: the
# first publish reaches it at once, not at its next round
M2=$T/master2
S2=$T/server2
"$UPGRID" -R "$M2" init >/dev/null
"$UPGRID" -R "$S2" init >/dev/null
cat >"$T/s2.conf" <<CONF
[syncd]
repo = $S2
master = - $M2
master-key = $T/key.pub
serve-command = $SYNCD
wait = 60
CONF
"$SYNCD" -f "$T/s2.conf" -v >"$T/d2.out" 2>&1 &
d2=$!
# long enough for a polling server to ask twice
sleep 6
"$UPGRID" -R "$M2" publish -k "$T/key" "$T/tree" >/dev/null
i=0
while [ ! -f "$S2/refs/stable" ]; do
	i=$((i + 1))
	[ $i -lt 60 ] || { kill $d2; cat "$T/d2.out"; fail "the fresh server did not get version 1 in 3 s"; }
	sleep 0.05
done
kill -TERM $d2
wait $d2 || { cat "$T/d2.out"; fail "the daemon did not exit 0 on SIGTERM"; }
[ "$(grep -c 'session from' "$T/d2.out" || true)" -le 4 ] ||
	{ cat "$T/d2.out"; fail "the fresh server polled its master instead of waiting"; }
ok "a fresh server long-polls its master: the first version arrives within 3 s of the publish"

done_testing
