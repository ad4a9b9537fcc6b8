#!/bin/sh
# t014-watch-delete: deleting watched directories. A deleted directory
# tree leaves the next version and its watches are gone; made again under
# the same name (at once, and later), it is published and watched again;
# a directory deleted and replaced by a file of the same name is
# published as the file; deleting the tree itself stops the watcher
# with exit status 5.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/watch-lib.sh"

watch_setup
mkdir -p "$TREE/gone/a/b" "$TREE/stay" "$TREE/flip/in"
echo f >"$TREE/gone/a/b/f"
echo g >"$TREE/gone/g"
echo s >"$TREE/stay/s"
echo i >"$TREE/flip/in/i"

start_watch -vv --quiet-period 0.2 --max-delay 5 "$TREE"
wait_version 1
n0=$(kernel_watches)
[ "$n0" -eq "$(ndirs)" ] || watch_fail "$n0 watches for $(ndirs) directories"

rm -rf "$TREE/gone"
wait_until "gone/ to leave the latest version" latest_lacks gone/a/b/f
latest_lacks gone/g || fail "gone/g is still published"
wait_until "the deleted directories' watches to go" watches_match_tree
[ "$(kernel_watches)" -eq $((n0 - 3)) ] || watch_fail "$(kernel_watches) watches after deleting 3 of $n0 directories"
ok "a deleted directory tree is unpublished and its watches are gone"

mkdir -p "$TREE/gone/a/b" && echo again >"$TREE/gone/a/b/again"
wait_until "the new gone/a/b/again in a version" latest_has gone/a/b/again
wait_until "the new directories to be watched" watches_match_tree
echo later >"$TREE/gone/a/b/later"
wait_until "a write in the new directory to be published" latest_has gone/a/b/later
ok "a directory made again under the same name is published and watched"

# delete and recreate at once, many times over
for i in 1 2 3 4 5; do
	rm -rf "$TREE/stay" && mkdir "$TREE/stay" && echo "$i" >"$TREE/stay/n$i"
done
wait_until "stay/n5 in a version" latest_has stay/n5
latest_lacks stay/s || fail "stay/s is still published"
wait_until "the watches to match the tree" watches_match_tree
echo m >"$TREE/stay/m"
wait_until "a write in the recreated directory to be published" latest_has stay/m
ok "delete and recreate at once: the last one is published and watched"

# a directory replaced by a file
rm -rf "$TREE/flip" && echo file >"$TREE/flip"
wait_until "flip as a file in a version" latest_has flip
latest_lacks flip/in/i || fail "flip/in/i is still published"
wait_until "the watches to match the tree" watches_match_tree
ok "a directory replaced by a file"

no_rebuild "deletes"
run_ug 0 verify

# the tree itself: nothing left to watch, exit 5
rm -rf "$TREE"
wait_watch_exit
[ "$wstatus" -eq 5 ] || watch_fail "deleting the tree: exit status $wstatus, expected 5"
log_has "tree '$TREE' was deleted or moved away; stopping" || watch_fail "the tree's deletion was not logged"
ok "the tree deleted: the watcher says so and exits 5"
done_testing
