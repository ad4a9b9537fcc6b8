#!/bin/sh
# t012-watch-mkdir: directories that appear faster than their watches can
# be added. A deep mkdir -p followed at once by a file, a cp -r into a
# directory made a moment before, and a tar x of a whole tree are each
# published in full, and every new directory ends up watched: a later
# write in the deepest one, alone, makes a version.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/watch-lib.sh"

watch_setup
echo base >"$TREE/base"
start_watch -v --quiet-period 0.2 --max-delay 5 "$TREE"
wait_version 1

mkdir -p "$TREE/a/b/c/d/e/f/g" && echo deep >"$TREE/a/b/c/d/e/f/g/file"
wait_until "a/b/c/d/e/f/g/file in a version" latest_has a/b/c/d/e/f/g/file
wait_until "every directory to be watched" watches_match_tree
echo more >"$TREE/a/b/c/d/e/f/g/more"
wait_until "a/b/c/d/e/f/g/more in a version" latest_has a/b/c/d/e/f/g/more
ok "mkdir -p then a file at once: published, and the deep directory is watched"

# a tree to copy in: 4 levels, 3 directories each, a file in each
src="$T/src"
for a in 1 2 3; do
	for b in 1 2 3; do
		for c in 1 2 3; do
			mkdir -p "$src/l$a/l$b/l$c/l4"
			echo "$a$b$c" >"$src/l$a/l$b/l$c/l4/f"
			echo "$a$b" >"$src/l$a/l$b/f"
		done
	done
done
nsrc=$(find "$src" -type f | wc -l)

# files under PREFIX in the latest version
count_under() {
	show "$(latest_version)" | jq --arg p "$1" '[.files[] | select(.path | startswith($p))] | length'
}
count_under_is() {
	[ "$(count_under "$1")" -eq "$2" ]
}

mkdir -p "$TREE/x/y/z" && cp -r "$src" "$TREE/x/y/z/"
wait_until "all $nsrc copied files in a version" count_under_is x/y/z/src/ "$nsrc"
wait_until "every directory to be watched" watches_match_tree
echo later >"$TREE/x/y/z/src/l2/l1/l3/l4/later"
wait_until "x/y/z/src/l2/l1/l3/l4/later in a version" latest_has x/y/z/src/l2/l1/l3/l4/later
ok "mkdir -p then cp -r: all $nsrc files published, every copied directory watched"

tar -C "$src" -cf "$T/src.tar" .
mkdir "$TREE/untar" && tar -C "$TREE/untar" -xf "$T/src.tar"
wait_until "all $nsrc unpacked files in a version" count_under_is untar/ "$nsrc"
wait_until "every directory to be watched" watches_match_tree
echo later >"$TREE/untar/l3/l2/l1/l4/later"
wait_until "untar/l3/l2/l1/l4/later in a version" latest_has untar/l3/l2/l1/l4/later
ok "tar x: all $nsrc files published, every unpacked directory watched"

no_rebuild "new directories"
stop_watch
[ "$wstatus" -eq 0 ] || watch_fail "SIGTERM: exit status $wstatus"
run_ug 0 verify
done_testing
