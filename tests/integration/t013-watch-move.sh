#!/bin/sh
# t013-watch-move: directories moved out of the tree, into it and within
# it. A directory moved out leaves the next version and loses its watches
# (writes to it no longer start a publish); moved back in, it is
# published and watched again; moved within the tree, it is recorded as
# renames and keeps its watches under the new name (the watcher's map
# follows, without a rebuild). A file renamed within the tree is a rename
# in the manifest. After a churn of random directory operations the
# watches and the latest version match the tree. Moving the tree itself
# stops the watcher (exit 5).
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/watch-lib.sh"

watch_setup
mkdir -p "$TREE/keep" "$TREE/sub/deep/er" "$TREE/sub/side"
echo keep >"$TREE/keep/k"
echo one >"$TREE/sub/deep/er/f"
echo two >"$TREE/sub/side/g"
ndirs0=$(ndirs)

start_watch -vv --quiet-period 0.2 --max-delay 5 "$TREE"
wait_version 1
[ "$(kernel_watches)" -eq "$ndirs0" ] || watch_fail "$(kernel_watches) watches for $ndirs0 directories"
ok "every directory is watched ($ndirs0)"

# out of the tree
mv "$TREE/sub" "$T/outside"
wait_until "sub/ to leave the latest version" latest_lacks sub/deep/er/f
wait_until "the moved-out directories to lose their watches" watches_match_tree
[ "$(kernel_watches)" -eq $((ndirs0 - 4)) ] || watch_fail "$(kernel_watches) watches after moving 4 directories out"
np=$(log_count "publishing '")
echo outside >"$T/outside/deep/er/new"
mkdir "$T/outside/deep/er/newdir"
sleep 1
[ "$(log_count "publishing '")" -eq "$np" ] || watch_fail "a write outside the tree started a publish"
ok "a directory moved out is unpublished and unwatched"

# back in, under another name
mv "$T/outside" "$TREE/back"
wait_until "back/ in a version" latest_has back/deep/er/new
wait_until "the moved-in directories to be watched" watches_match_tree
echo inside >"$TREE/back/deep/er/newdir/x"
wait_until "a write in a moved-in directory to be published" latest_has back/deep/er/newdir/x
ok "a directory moved in is published and watched"

# within the tree
v=$(latest_version)
mark=$(wc -l <"$T/watch.log")
mv "$TREE/back" "$TREE/keep/moved"
wait_version $((v + 1))
v=$((v + 1))
show "$v" | jq -e '.renamed | any(.from == "back/deep/er/f" and .to == "keep/moved/deep/er/f")' >/dev/null ||
	fail "version $v does not record back/deep/er/f -> keep/moved/deep/er/f as a rename"
latest_lacks back/deep/er/f || fail "version $v still has back/deep/er/f"
wait_until "the watches to match the tree" watches_match_tree
# the map follows the move: an event in the moved tree has its new path
echo y >"$TREE/keep/moved/deep/er/newdir/y"
wait_log "event [A-Z_,]+ 'keep/moved/deep/er/newdir/y'"
wait_until "the write in the moved directory to be published" latest_has keep/moved/deep/er/newdir/y
if tail -n +$((mark + 1)) "$T/watch.log" | grep -Eq "event [A-Z_,]+ 'back/"; then
	watch_fail "after the move, an event was reported under the old name"
fi
no_rebuild "moves within the tree"
ok "a directory moved within the tree is renamed and keeps its watches"

# a file renamed within the tree
v=$(latest_version)
mv "$TREE/keep/k" "$TREE/keep/moved/k2"
wait_version $((v + 1))
show $((v + 1)) | jq -e '.renamed | any(.from == "keep/k" and .to == "keep/moved/k2")' >/dev/null ||
	fail "version $((v + 1)) does not record the file rename"
ok "a file renamed within the tree is a rename"

run_ug 0 verify

# churn: 300 pseudo-random mkdir -p, moves within, out of and into the
# tree, deletes and writes, as fast as the shell goes. Afterwards the
# kernel's watches are exactly the tree's directories (by inode), and the
# latest version holds exactly the tree's files.
C="$TREE/churn"
mkdir -p "$C" "$T/away"
seed=20261125
rnd() {
	seed=$(((seed * 1103515245 + 12345) % 2147483648))
	r=$((seed / 65536 % $1))
}
i=0
while [ "$i" -lt 300 ]; do
	i=$((i + 1))
	rnd 6; a=$r; rnd 6; b=$r; rnd 6; c=$r; rnd 7
	case $r in
	0) mkdir -p "$C/d$a/d$b/d$c" && echo "$i" >"$C/d$a/d$b/d$c/f$i" ;;
	1) [ ! -d "$C/d$a/d$b" ] || [ ! -d "$C/d$c" ] || mv "$C/d$a/d$b" "$C/d$c/m$i" 2>/dev/null || true ;;
	2) rm -rf "$C/d$a/d$b" ;;
	3) [ ! -d "$C/d$a" ] || mv "$C/d$a" "$T/away/o$i" ;;
	4) o=$(ls "$T/away" | head -n 1)
	   [ -z "$o" ] || { mkdir -p "$C/d$b" && mv "$T/away/$o" "$C/d$b/in$i"; } ;;
	5) [ ! -d "$C/d$a" ] || [ -e "$C/d$b" ] || mv "$C/d$a" "$C/d$b" ;;
	6) mkdir -p "$C/d$a" && echo "$i" >"$C/d$a/g$i" ;;
	esac
done
tree_inodes() {
	find "$TREE" -type d -exec stat -c %i {} + | while read -r n; do printf '%x\n' "$n"; done | sort
}
watch_set_is_tree() {
	[ "$(watched_inodes | sort)" = "$(tree_inodes)" ]
}
wait_until "the watches to be exactly the tree's directories" watch_set_is_tree
published_is_tree() {
	[ "$(show "$(latest_version)" | jq -r '.files[].path' | sort)" = \
	  "$(cd "$TREE" && find . -type f | sed 's|^\./||' | sort)" ]
}
wait_until "the latest version to be the tree" published_is_tree
ok "300 random directory operations: watches and the latest version match the tree"

# the tree itself moved away: the path no longer names what is watched
mv "$TREE" "$T/tree-moved"
wait_watch_exit
[ "$wstatus" -eq 5 ] || watch_fail "moving the tree away: exit status $wstatus, expected 5"
log_has "tree '$TREE' was deleted or moved away; stopping" || watch_fail "the tree's move was not logged"
ok "the tree moved away: the watcher says so and exits 5"
done_testing
