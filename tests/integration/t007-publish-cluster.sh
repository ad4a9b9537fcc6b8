#!/bin/sh
# t007: the cluster file REPO/cluster becomes the "chains" of every
# manifest: in file order, a new version when only the chain list changes,
# none when nothing changes, a bad file fails the publish naming its line
# (exit 2), and without the file the manifest has no "chains" key.
. "$UG_SRCDIR/tests/integration/lib.sh"

R="$T/repo"
K="$T/key"
tree="$T/tree"
export UPGRID_REPO="$R" UPGRID_KEY="$K"

run_ug 0 keygen
run_ug 0 init
mkdir -p "$tree/etc"
printf '[main]\nkey = 1\n' > "$tree/etc/app.ini"
echo "payload" > "$tree/payload.bin"

# version 1: no cluster file, no chain list
run_ug 0 publish --json "$tree"
[ "$(json_get "$T/out" .version)" = 1 ] || fail "first version is not 1"
run_ug 0 show --json 1
[ "$(json_get "$T/out" 'has("chains")')" = false ] || fail "v1 has a chains key without a cluster file"
ok "no cluster file: no chains in the manifest"

# version 2: the same tree with a two-group cluster file
cat > "$R/cluster" <<'EOF'
# two groups; the order within a group is the chain
[group east]
server = e1 upgrid@10.0.1.1:22 /srv/upgrid
server = e2 upgrid@10.0.1.2 /srv/upgrid

[group west]
    server = w1 10.0.2.1:2222 /var/lib/upgrid   ; indented, with a comment
EOF
run_ug 0 -v publish --json "$tree"
[ "$(json_get "$T/out" .version)" = 2 ] || fail "a new chain list did not make version 2"
[ "$(json_get "$T/out" .unchanged)" = false ] || fail "v2 reported unchanged"
expect_in "$T/err" "chain list: 2 groups, 3 servers" "publish logs the chain list"
ok "a cluster file on an unchanged tree makes a new version"

run_ug 0 show --json 2
cp "$T/out" "$T/v2.json"
[ "$(json_get "$T/v2.json" '[.chains[].group] | join(",")')" = "east,west" ] ||
	fail "groups not in file order"
[ "$(json_get "$T/v2.json" '[.chains[0].servers[].name] | join(",")')" = "e1,e2" ] ||
	fail "east's chain not in file order"
[ "$(json_get "$T/v2.json" '.chains[0].servers[1].address')" = "upgrid@10.0.1.2:22" ] ||
	fail "e2's address not written with its port"
[ "$(json_get "$T/v2.json" '.chains[1].servers[0] | "\(.name) \(.address) \(.repo)"')" = \
	"w1 10.0.2.1:2222 /var/lib/upgrid" ] || fail "w1 not as in the file"
# the signed file in the repo is what show printed
cmp -s "$T/v2.json" "$R/manifests/stable/2.json" || fail "show --json differs from the stored manifest"
grep -q '^{"group":"east","servers":\[' "$R/manifests/stable/2.json" ||
	fail "a group is not one line of the manifest"
ok "both chains are in the manifest, in order"

# nothing changed: no new version
run_ug 0 publish --json "$tree"
[ "$(json_get "$T/out" .unchanged)" = true ] || fail "identical tree and cluster made a version"
[ "$(json_get "$T/out" .version)" = 2 ] || fail "unchanged publish reports another version"
ok "same tree and same cluster file: unchanged"

# only the cluster file changes: a new version
echo "server = w2 [2001:db8::2] /var/lib/upgrid" >> "$R/cluster"
run_ug 0 publish --json "$tree"
[ "$(json_get "$T/out" .version)" = 3 ] || fail "an edited cluster file did not make version 3"
[ "$(json_get "$T/out" .modified)" = 0 ] || fail "v3 reports modified files"
run_ug 0 show --json 3
[ "$(json_get "$T/out" '[.chains[1].servers[].address] | join(" ")')" = \
	"10.0.2.1:2222 [2001:db8::2]:22" ] || fail "v3 lacks the new server"
ok "editing only the cluster file makes a new version"

# a bad cluster file fails the publish (exit 2: configuration), naming
# the file and the line, and makes no version
cp "$R/cluster" "$T/cluster.good"
printf '[group south]\nserver = s1 10.0.3.1\n' >> "$R/cluster"
echo "more" >> "$tree/payload.bin"
run_ug 2 publish "$tree"
expect_in "$T/err" "'$R/cluster': line 10: 'server = s1 10.0.3.1' has 2 fields; expected NAME ADDRESS REPO" \
	"the error names the file and the line"
run_ug 0 log --json
[ "$(json_get "$T/out" 'length')" = 3 ] || fail "a bad cluster file made a version"
ok "a bad cluster file fails the publish with its line (exit 2)"

printf '[group a]\n[group b]\nserver = b1 h /r\n' > "$R/cluster"
run_ug 2 publish "$tree"
expect_in "$T/err" "line 1: group 'a' has no servers" "empty group"
{
	echo "[group big]"
	for i in $(seq 1 17); do echo "server = b$i 10.0.0.$i /srv/upgrid"; done
} > "$R/cluster"
run_ug 2 publish "$tree"
expect_in "$T/err" "line 18: group 'big' has more than 16 servers; split it into two groups" \
	"17 servers"
ok "empty group and 17 servers are refused"

# the good file again: the tree changed, so version 4 with v3's chains
cp "$T/cluster.good" "$R/cluster"
run_ug 0 publish --json "$tree"
[ "$(json_get "$T/out" .version)" = 4 ] || fail "fixed cluster file: no version 4"
run_ug 0 show --json 4
[ "$(json_get "$T/out" '.chains | length')" = 2 ] || fail "v4 lacks the chains"

# the cluster file removed: a new version without a chain list
rm "$R/cluster"
run_ug 0 publish --json "$tree"
[ "$(json_get "$T/out" .version)" = 5 ] || fail "removing the cluster file did not make version 5"
run_ug 0 show --json 5
[ "$(json_get "$T/out" 'has("chains")')" = false ] || fail "v5 still has chains"
run_ug 0 publish --json "$tree"
[ "$(json_get "$T/out" .unchanged)" = true ] || fail "no cluster file twice is not unchanged"
ok "removing the cluster file makes a version without chains"

run_ug 0 verify
expect_in "$T/out" "is sound" "verify"
ok "verify passes"

done_testing
