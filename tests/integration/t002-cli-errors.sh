#!/bin/sh
# t002: bad input and operator mistakes get a clear message naming the
# thing involved and the documented exit status, never a crash.
. "$UG_SRCDIR/tests/integration/lib.sh"

R="$T/repo"
K="$T/key"
export UPGRID_REPO="$R" UPGRID_KEY="$K"
mkdir -p "$T/tree/sub"
echo hello > "$T/tree/sub/file"

run_ug 2 frobnicate
expect_in "$T/err" "'frobnicate' is not an upgrid command" "unknown command"
run_ug 2 publish --no-such-option "$T/tree"
expect_in "$T/err" "Try 'upgrid publish --help'" "unknown option"
[ "$(grep -c 'no-such-option' "$T/err")" -eq 1 ] || fail "unknown option reported more than once"
ok "unknown command and option: exit 2"

run_ug 5 log
expect_in "$T/err" "upgrid init" "missing repo tells to run init"
ok "missing repo: exit 5 and a hint"

run_ug 0 init
run_ug 0 verify
expect_in "$T/out" "is sound" "verify of an empty repo"
run_ug 2 init
expect_in "$T/err" "not empty" "init refuses a non-empty dir"
ok "init refuses a used directory"

run_ug 5 publish "$T/tree"
expect_in "$T/err" "upgrid keygen" "missing key tells to run keygen"
ok "missing key: hint to keygen"

run_ug 0 keygen
run_ug 2 keygen
expect_in "$T/err" "$K" "keygen refuses to overwrite and names the file"
ok "keygen does not overwrite"

chmod 644 "$K"
run_ug 2 publish "$T/tree"
expect_in "$T/err" "too open" "group-readable secret key refused"
chmod 600 "$K"
ok "secret key with mode 0644 refused (exit 2: configuration)"

run_ug 2 publish -c "../evil" "$T/tree"
expect_in "$T/err" "channel" "bad channel name"
ok "bad channel name: exit 2"

run_ug 5 publish "$T/no-such-tree"
expect_in "$T/err" "no-such-tree" "missing tree named"
[ ! -e "$R/master.pub" ] || fail "a failed publish pinned the repo to its key"
ok "missing tree named"

# a symlink pointing out of the tree is not followed or published
ln -s /etc/passwd "$T/tree/sub/passwd-link"
ln -s /etc "$T/tree/etc-link"
run_ug 0 publish --json "$T/tree"
expect_in "$T/err" "symlink" "symlinks are reported"
[ "$(json_get "$T/out" .files)" = 1 ] || fail "symlinks must not be published"
ok "symlinks out of the tree skipped with a warning"

# a name that is not UTF-8 cannot travel in a JSON manifest: skipped, said
touch "$T/tree/sub/$(printf 'caf\351')"
run_ug 0 publish --json "$T/tree"
expect_in "$T/err" "not valid UTF-8" "non-UTF-8 name reported"
rm -f "$T/tree/sub/$(printf 'caf\351')"
ok "non-UTF-8 file name skipped with a warning"

run_ug 5 show 42
expect_in "$T/err" "version 42 does not exist" "missing version named"
run_ug 2 show notaversion
expect_in "$T/err" "'notaversion' is not a version" "bad version spec"
ok "missing and malformed versions"

# another key cannot publish into this repo
run_ug 0 keygen -f "$T/other.key"
run_ug 4 publish -k "$T/other.key" "$T/tree"
expect_in "$T/err" "master.pub" "wrong key names master.pub"
ok "wrong signing key refused"

# a corrupt secret key file
printf 'upgrid-ed25519-secret-v1\nnot-base64!!\n' > "$T/bad.key"
chmod 600 "$T/bad.key"
run_ug 3 publish -k "$T/bad.key" "$T/tree"
expect_in "$T/err" "bad.key" "corrupt key named"
ok "corrupt key file refused"

# garbage and truncated manifests are refused, never crash
cp "$R/manifests/stable/1.json" "$T/m1"
head -c 100 "$T/m1" > "$R/manifests/stable/1.json"
run_ug 4 show 1
head -c 3000 /dev/urandom > "$R/manifests/stable/1.json"
run_ug 4 show 1
cp "$T/m1" "$R/manifests/stable/1.json"
run_ug 0 show 1
ok "truncated and garbage manifests refused"

# a garbled repo config is reported with its line
printf '[repo]\nformat = 1\nlevel = many\n' > "$R/config"
run_ug 2 log
expect_in "$T/err" "line 3: bad value 'many' for 'level'" "config error names the line"
printf '[repo]\nformat = 1\nwindow = 128M\n' > "$R/config"
ok "bad repo config line named"

# a publish while another holds the lock: exit 6
if command -v flock >/dev/null 2>&1; then
	echo more > "$T/tree/sub/file2"
	flock "$R/lock" sleep 3 &
	sleep 0.5
	run_ug 6 publish "$T/tree"
	expect_in "$T/err" "locked" "lock contention"
	wait
	ok "concurrent publish refused with exit 6"
fi

done_testing
