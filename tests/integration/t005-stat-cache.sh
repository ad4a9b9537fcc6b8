#!/bin/sh
# t005: the stat cache spares rehashing unchanged files, and never hides a
# change: not a same-size edit with its mtime put back (ctime moves), and
# not an edit made right after hashing (racily clean entries are not kept).
. "$UG_SRCDIR/tests/integration/lib.sh"

export UPGRID_REPO="$T/repo" UPGRID_KEY="$T/key"
run_ug 0 keygen
run_ug 0 init
mkdir -p "$T/tree/d"
for i in 1 2 3 4 5 6 7 8; do echo "file $i" > "$T/tree/d/f$i"; done
# entries younger than 2 s are not cached (racily clean); age the tree
sleep 2.2

run_ug 0 -v publish "$T/tree"
expect_in "$T/err" "hashing 8 of 8 files" "first publish hashes everything"
run_ug 0 -v publish "$T/tree"
expect_in "$T/err" "hashing 0 of 8 files" "second publish reads nothing"
expect_in "$T/out" "no new version" "unchanged"
ok "unchanged files are not read again"

# same size, mtime restored: only ctime tells
stamp=$(stat -c %y "$T/tree/d/f3")
echo "FILE 3" > "$T/tree/d/f3"
touch -d "$stamp" "$T/tree/d/f3"
run_ug 0 -v publish --json "$T/tree"
expect_in "$T/err" "hashing 1 of 8 files" "only the touched file is read"
[ "$(json_get "$T/out" .modified)" = 1 ] || fail "same-size edit with old mtime was missed"
ok "same-size edit with its mtime put back is published"

# a file edited right after the previous publish: never trusted from cache
echo "file 5 again" > "$T/tree/d/f5"
run_ug 0 publish --json "$T/tree"
[ "$(json_get "$T/out" .modified)" = 1 ] || fail "fresh edit missed"
echo "file 5 AGAIN" > "$T/tree/d/f5"
run_ug 0 -v publish --json "$T/tree"
[ "$(json_get "$T/out" .modified)" = 1 ] || fail "edit within the racy window missed"
ok "edits inside the timestamp granularity window are published"

# a corrupt cache costs time, not correctness
printf 'garbage' > "$T/repo/cache/stable.index"
run_ug 0 -v publish "$T/tree"
expect_in "$T/err" "stat cache of channel 'stable' is corrupt" "corrupt cache reported"
expect_in "$T/out" "no new version" "corrupt cache: same tree is still the same"
run_ug 0 verify
ok "corrupt cache is rebuilt"

done_testing
