#!/bin/sh
# t024: staged rollout. publish --rollout/--groups/--terminals puts a
# "rollout" in the manifest (show, show --json, show --rollout); the same
# tree with another rollout is a new version, without one it is not;
# `upgrid rollout` writes signed rollout documents (serial 1, 2, ...)
# beside an unchanged manifest; its errors and exit codes; and a group
# server (upgrid-syncd --once, local transport) copies a newer document,
# refusing an older or foreign one without failing its round.
. "$UG_SRCDIR/tests/integration/lib.sh"

SYNCD="$UG_BUILDDIR/upgrid-syncd"
M=$T/master
S=$T/server
K=$T/key
export UPGRID_KEY="$K"

run_ug 0 keygen -f "$K"
run_ug 0 keygen -f "$T/other"
run_ug 0 -R "$M" init
run_ug 0 -R "$S" init
cat >"$M/cluster" <<'EOF'
[group g1]
server = a1 10.0.1.1 /srv/upgrid
[group g2]
server = b1 10.0.2.1 /srv/upgrid
[group g3]
server = c1 10.0.3.1 /srv/upgrid
EOF
mkdir -p "$T/tree"
echo one >"$T/tree/a.txt"

# ---- publish with a rollout
run_ug 0 -R "$M" publish --rollout 10% --groups g3,g1 --terminals 'meter-00*' --terminals 'kiosk-?,x' "$T/tree"
expect_in "$T/out" "published stable/1" "version 1 published"
expect_in "$T/out" "rollout 10% of groups g1,g3 and terminals 'meter-00\*','kiosk-\?,x'" \
	"publish says the rollout"
run_ug 0 -R "$M" show --json 1
[ "$(jq -c .rollout "$T/out")" = '{"groups":["g1","g3"],"permille":100,"terminals":["meter-00*","kiosk-?,x"]}' ] ||
	fail "manifest rollout is $(jq -c .rollout "$T/out")"
grep -q '^"rollout":{"groups":\["g1","g3"\],"permille":100,"terminals":\["meter-00\*","kiosk-?,x"\]},$' \
	"$M/manifests/stable/1.json" || fail "the rollout is not one sorted line of 1.json"
run_ug 0 -R "$M" show 1
expect_in "$T/out" "^rollout  10% of groups g1,g3 and terminals 'meter-00\*','kiosk-\?,x' \(stated by the manifest\)\$" \
	"show prints the rollout"
ok "publish --rollout --groups --terminals: the manifest states it, show prints it"

# the same tree: the same rollout, or none asked for, is no new version
run_ug 0 -R "$M" publish --rollout 10% --groups g1,g3 --terminals 'meter-00*' --terminals 'kiosk-?,x' "$T/tree"
expect_in "$T/out" "identical to stable/1; no new version" "same rollout: unchanged"
run_ug 0 -R "$M" publish "$T/tree"
expect_in "$T/out" "identical to stable/1; no new version" "no rollout asked for: unchanged"
# ... but another rollout is
run_ug 0 -R "$M" publish --json --rollout 20% "$T/tree"
[ "$(json_get "$T/out" .version)" = 2 ] || fail "another rollout did not make version 2"
[ "$(jq -c .rollout "$T/out")" = '{"permille":200}' ] || fail "publish --json rollout: $(jq -c .rollout "$T/out")"
# and 100% of everyone is written as no rollout at all
run_ug 0 -R "$M" publish --json --rollout 100% "$T/tree"
[ "$(json_get "$T/out" .version)" = 3 ] || fail "--rollout 100% after 20% did not make version 3"
[ "$(jq .rollout "$T/out")" = null ] || fail "100% is not written as null"
run_ug 0 -R "$M" show --json 3
[ "$(jq 'has("rollout")' "$T/out")" = false ] || fail "version 3 has a rollout key"
run_ug 0 -R "$M" show 3
expect_in "$T/out" "^rollout  everyone\$" "show: no rollout is everyone"
ok "a new rollout makes a new version of the same tree; none asked for does not; 100% is no rollout"

# ---- upgrid rollout: signed documents beside an untouched manifest
cp "$M/manifests/stable/2.json" "$T/2.json.before"
run_ug 0 -R "$M" show --rollout --json 2
[ "$(jq -r '.source + " " + (.serial|tostring) + " " + (.rollout.permille|tostring)' "$T/out")" = "manifest null 200" ] ||
	fail "before any document: $(cat "$T/out")"
run_ug 0 -R "$M" rollout 2 50% --groups g1
expect_in "$T/out" "rollout of stable/2 is now 50% of groups g1 \(serial 1; was 20%\)" "rollout reports serial 1"
[ "$(jq .serial "$M/manifests/stable/2.rollout")" = 1 ] || fail "first document is not serial 1"
run_ug 0 -R "$M" rollout -c stable --json 2 75% --terminals 'meter-*'
cmp -s "$T/out" "$M/manifests/stable/2.rollout" || fail "rollout --json does not print the document"
[ "$(jq -c '[.channel, .version, .serial, .rollout]' "$T/out")" = '["stable",2,2,{"permille":750,"terminals":["meter-*"]}]' ] ||
	fail "second document: $(cat "$T/out")"
head -c 18 "$M/manifests/stable/2.rollout.sig" | grep -q '^upgrid-sig-v1 ed25' || fail "no signature line"
cmp -s "$T/2.json.before" "$M/manifests/stable/2.json" || fail "upgrid rollout changed 2.json"
run_ug 0 -R "$M" show --rollout --json 2
[ "$(jq -c '[.source, .serial, .rollout, .manifest_rollout, .document_error]' "$T/out")" = \
	'["document",2,{"permille":750,"terminals":["meter-*"]},{"permille":200},null]' ] ||
	fail "show --rollout --json: $(cat "$T/out")"
run_ug 0 -R "$M" show 2
expect_in "$T/out" "^rollout  75% of terminals 'meter-\*' \(rollout document serial 2 of .*; the manifest states 20%\)\$" \
	"show prints the document's rollout and serial"
run_ug 0 -R "$M" verify
ok "upgrid rollout writes serial 1 then 2, signed, 2.json untouched; show reports the document"

# ---- errors
run_ug 5 -R "$M" rollout 9 50%
expect_in "$T/err" "version 9 does not exist in channel 'stable'" "unknown version: exit 5"
run_ug 5 -R "$M" rollout -c beta 1 50%
run_ug 2 -R "$M" rollout 2 150%
expect_in "$T/err" "rollout '150%' is above 100%" "bad percent: exit 2"
run_ug 2 -R "$M" rollout 2 ten
run_ug 2 -R "$M" rollout 2
run_ug 2 -R "$M" rollout 2 5% --groups g9
expect_in "$T/err" "rollout group 'g9' is not in the chain list \(groups: g1, g2, g3\)" "unknown group: exit 2"
run_ug 2 -R "$M" rollout 2 5% --groups 'g1,,g2'
run_ug 2 -R "$M" publish --groups nope "$T/tree"
expect_in "$T/err" "rollout group 'nope' is not in the chain list" "publish: unknown group: exit 2"
run_ug 2 -R "$M" publish --rollout 101% "$T/tree"
run_ug 4 -R "$M" rollout -k "$T/other" 2 5%
expect_in "$T/err" "sign with the key whose public half is in" "another key: exit 4"
flock "$M/lock" sleep 3 &
lockpid=$!
sleep 0.5
run_ug 6 -R "$M" rollout 2 5%
expect_in "$T/err" "is locked" "repo lock: exit 6"
wait "$lockpid"
[ "$(jq .serial "$M/manifests/stable/2.rollout")" = 2 ] || fail "a failed rollout changed the document"
# a damaged document is not used: the manifest's rollout is in force
cp "$M/manifests/stable/2.rollout" "$T/2.rollout.good"
sed 's/750/999/' "$T/2.rollout.good" >"$M/manifests/stable/2.rollout"
run_ug 4 -R "$M" show --rollout 2
expect_in "$T/out" "^stable/2: 20% \(stated by the manifest\)\$" "tampered document: the manifest's rollout"
expect_in "$T/err" "bad signature" "tampered document: reported"
run_ug 0 -R "$M" show 2
expect_in "$T/err" "it is not used" "show warns about it"
cp "$T/2.rollout.good" "$M/manifests/stable/2.rollout"
ok "errors: unknown version 5, bad percent or group 2, other key 4, lock 6; a tampered document is not used"

# ---- replication to a group server
cat >"$T/s.conf" <<CONF
[syncd]
repo = $S
master = - $M
master-key = $K.pub
serve-command = $SYNCD
CONF
sync() {
	set +e
	"$SYNCD" -f "$T/s.conf" --once >"$T/sync" 2>&1
	got=$?
	set -e
	[ "$got" -eq 0 ] || { cat "$T/sync"; fail "upgrid-syncd --once exited $got"; }
}
sync
[ "$(cat "$S/refs/stable")" = 3 ] || fail "server is not at version 3"
[ ! -e "$S/manifests/stable/3.rollout" ] || fail "a version without a document got one"
# the server holds the newest version and a rollout changes it later
run_ug 0 -R "$M" rollout 3 40% --groups g2
cp "$M/manifests/stable/3.rollout" "$T/serial1"
cp "$M/manifests/stable/3.rollout.sig" "$T/serial1.sig"
sync
cmp -s "$M/manifests/stable/3.rollout" "$S/manifests/stable/3.rollout" || fail "document not copied"
cmp -s "$M/manifests/stable/3.rollout.sig" "$S/manifests/stable/3.rollout.sig" || fail "signature not copied"
expect_in "$T/sync" "rollout of version 3 of 'stable' is now 40% of groups g2 \(serial 1, from " \
	"the round says what it copied"
run_ug 0 -R "$S" show --pubkey "$K.pub" --rollout --json 3
[ "$(jq -c '[.source, .serial, .rollout]' "$T/out")" = '["document",1,{"groups":["g2"],"permille":400}]' ] ||
	fail "server's rollout: $(cat "$T/out")"
ok "upgrid rollout on a version a group server holds: the next round copies the document"

run_ug 0 -R "$M" rollout 3 90%
sync
[ "$(jq .serial "$S/manifests/stable/3.rollout")" = 2 ] || fail "serial 2 did not reach the server"
cmp -s "$M/manifests/stable/3.rollout" "$S/manifests/stable/3.rollout" || fail "server's serial 2 differs"
[ "$(jq .rollout.permille "$S/manifests/stable/3.rollout")" = 900 ] || fail "server's rollout is not 90%"
sync
expect_not_in "$T/sync" "rollout of version" "a round with nothing new copies nothing"
ok "upgrid rollout again, then a round: the server holds serial 2"

# an upstream offering an older serial, or one signed by another key, is
# not followed; the round still succeeds
cp "$T/serial1" "$M/manifests/stable/3.rollout"
cp "$T/serial1.sig" "$M/manifests/stable/3.rollout.sig"
sync
expect_not_in "$T/sync" "rollout of version" "an older serial is not taken"
[ "$(jq .serial "$S/manifests/stable/3.rollout")" = 2 ] || fail "an older serial replaced serial 2"
X=$T/foreign
run_ug 0 -R "$X" init
for v in 1 2 3; do
	echo "$v" >"$T/tree/a.txt"
	run_ug 0 -R "$X" publish -k "$T/other" "$T/tree"
done
for i in 1 2 3 4 5; do run_ug 0 -R "$X" rollout -k "$T/other" 3 1%; done
cp "$X/manifests/stable/3.rollout" "$X/manifests/stable/3.rollout.sig" "$M/manifests/stable/"
sync
expect_in "$T/sync" "rollout document of version 3 of 'stable' from .* not taken: .*expected key" \
	"a foreign document is reported"
[ "$(jq .serial "$S/manifests/stable/3.rollout")" = 2 ] || fail "a foreign serial 5 replaced serial 2"
[ "$(jq .rollout.permille "$S/manifests/stable/3.rollout")" = 900 ] || fail "server's rollout changed"
[ "$("$SYNCD" --stats --repo "$M" | jq '.sent.rollout.count')" -ge 4 ] ||
	fail "the master's counters do not show rollout documents sent"
ok "an older serial or a foreign signature is not taken; the round succeeds"

# the master now holds a foreign document for version 3: verify names it
run_ug 3 -R "$M" verify
expect_in "$T/err" "manifest stable/3: rollout document: .*signed by key .*expected key" "verify checks rollout documents"
ok "upgrid verify checks rollout documents (exit 3 for a foreign one)"

done_testing
