#!/bin/sh
# t001: publish three versions of a tree with adds, deletes, renames, mode
# changes and binary edits; verify the repo; then corrupt an object, a
# delta and a manifest byte and check that verify names each one.
. "$UG_SRCDIR/tests/integration/lib.sh"

R="$T/repo"
K="$T/key"
tree="$T/tree"
export UPGRID_REPO="$R" UPGRID_KEY="$K"

run_ug 0 keygen
run_ug 0 init
ok "keygen and init"

# version 1: a binary, text files, a nested dir, an empty dir
mkdir -p "$tree/bin" "$tree/etc" "$tree/lib/deep/er" "$tree/empty"
head -c 300000 /dev/urandom > "$T/blob"
cp "$T/blob" "$tree/bin/app"
chmod 755 "$tree/bin/app"
cp /bin/ls "$tree/lib/deep/er/tool"
printf '[main]\nkey = 1\n' > "$tree/etc/app.ini"
seq 1 5000 > "$tree/lib/numbers.txt"
echo gone > "$tree/lib/remove-me"
run_ug 0 publish -m "first" --json "$tree"
[ "$(json_get "$T/out" .version)" = 1 ] || fail "first version is not 1"
[ "$(json_get "$T/out" .files)" = 5 ] || fail "expected 5 files in v1"
ok "publish v1"

# same tree: no new version
run_ug 0 publish "$tree"
expect_in "$T/out" "no new version" "identical tree"
run_ug 0 log --json
[ "$(json_get "$T/out" 'length')" = 1 ] || fail "identical publish made a version"
ok "identical tree makes no version"

# version 2: binary edit (in place, middle), add, delete, rename, mode change
printf 'PATCHED-BYTES' | dd of="$tree/bin/app" bs=1 seek=150000 conv=notrunc status=none
rm "$tree/lib/remove-me"
mv "$tree/lib/numbers.txt" "$tree/lib/renamed-numbers.txt"
chmod 700 "$tree/lib/deep/er/tool"
echo "new file" > "$tree/etc/added.conf"
run_ug 0 publish -m "second" --json "$tree"
cp "$T/out" "$T/v2.json"
[ "$(json_get "$T/v2.json" .version)" = 2 ] || fail "second version is not 2"
[ "$(json_get "$T/v2.json" .added)" = 1 ] || fail "v2: added"
[ "$(json_get "$T/v2.json" .removed)" = 1 ] || fail "v2: removed"
[ "$(json_get "$T/v2.json" .renamed)" = 1 ] || fail "v2: renamed"
[ "$(json_get "$T/v2.json" .modified)" = 1 ] || fail "v2: modified"
[ "$(json_get "$T/v2.json" .mode_changed)" = 1 ] || fail "v2: mode changed"
# the binary edit travels as a delta far smaller than the object
best=$(json_get "$T/v2.json" '.pairs[0].best_bytes')
full=$(json_get "$T/v2.json" .full_bytes)
[ "$best" -lt $((full / 10)) ] || fail "v2 from v1 costs $best of $full bytes"
ok "publish v2 (add, delete, rename, mode, binary edit): $best of $full bytes"

run_ug 0 diff 1 2
expect_in "$T/out" "^renamed +lib/numbers.txt -> lib/renamed-numbers.txt" "diff rename"
expect_in "$T/out" "^removed +lib/remove-me" "diff removed"
expect_in "$T/out" "^added +etc/added.conf" "diff added"
expect_in "$T/out" "^modified +bin/app" "diff modified"
expect_in "$T/out" "^mode +lib/deep/er/tool \(0755 -> 0700\)" "diff mode"
ok "diff names each change"

run_ug 0 show --json 2
jq -e '.files[] | select(.path == "bin/app") | .deltas | length >= 1' "$T/out" >/dev/null ||
	fail "bin/app has no delta in v2"
jq -e '.files[] | select(.path == "bin/app") | .action == "patch"' "$T/out" >/dev/null ||
	fail "bin/app action is not patch"
jq -e '.renamed[0].from == "lib/numbers.txt"' "$T/out" >/dev/null || fail "manifest rename"
jq -e '.files[] | select(.path == "lib/deep/er/tool") | .mode == "0700"' "$T/out" >/dev/null ||
	fail "manifest mode"
ok "manifest records deltas, action, rename and mode"

# version 3: another binary edit and a file truncated to empty
printf 'MORE' | dd of="$tree/bin/app" bs=1 seek=1000 conv=notrunc status=none
: > "$tree/etc/app.ini"
run_ug 0 publish -m "third" --json "$tree"
[ "$(json_get "$T/out" .version)" = 3 ] || fail "third version is not 3"
[ "$(json_get "$T/out" '.pairs | length')" = 2 ] || fail "v3 should have deltas from 2 versions"
ok "publish v3 with deltas from v2 and v1"

run_ug 0 verify
expect_in "$T/out" "is sound" "verify clean repo"
ok "verify passes on a clean repo"

# --- corruption: each is named by verify, and verify changes nothing
snapshot() { (cd "$R" && find . -type f ! -name lock -exec sha256sum {} + | sort); }

obj=$(jq -r '.files[] | select(.path == "lib/deep/er/tool") | .blake2b' "$T/out" 2>/dev/null || true)
run_ug 0 show --json 3
obj=$(jq -r '.files[] | select(.path == "lib/deep/er/tool") | .blake2b' "$T/out")
delta=$(jq -r '.files[] | select(.path == "bin/app") | .deltas[0].id' "$T/out")
[ -n "$obj" ] && [ -n "$delta" ] && [ "$delta" != null ] || fail "no object/delta to corrupt"

flip_byte "$(obj_path "$R" objects "$obj")" 100
before=$(snapshot)
run_ug 3 verify
expect_in "$T/err" "object $obj" "verify names the corrupt object"
[ "$(snapshot)" = "$before" ] || fail "verify modified the repo"
ok "corrupt object named and repo untouched"

flip_byte "$(obj_path "$R" deltas "$delta")"
run_ug 3 verify
expect_in "$T/err" "delta $delta" "verify names the corrupt delta"
ok "corrupt delta named"

flip_byte "$R/manifests/stable/2.json" 40
run_ug 3 verify
expect_in "$T/err" "manifest stable/2: bad signature" "verify names the tampered manifest"
ok "tampered manifest named"

# show refuses the tampered manifest (exit 4: signature)
run_ug 4 show 2
expect_in "$T/err" "signature" "show refuses a tampered manifest"
ok "show refuses a tampered manifest"

done_testing
