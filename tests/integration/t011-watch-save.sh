#!/bin/sh
# t011-watch-save: how editors save. A rename-over save (write a temp
# file, rename it over the original) and a vim-style save (swap file,
# backup rename, new file) each publish exactly one version with the new
# content; changes to paths the rules exclude (swap files, *.tmp,
# backups) start no publish at all; a mode change is published; editing
# .upgrid/rules is a change too.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/watch-lib.sh"

watch_setup
printf 'a = 1\n' >"$TREE/app.conf"
mkdir "$TREE/etc"
printf '[main]\nx = 1\n' >"$TREE/etc/site.ini"

start_watch -v --quiet-period 0.2 --max-delay 5 "$TREE"
wait_version 1

# rename-over save
printf 'a = 2\nb = 3\n' >"$TREE/app.conf.tmp"
mv "$TREE/app.conf.tmp" "$TREE/app.conf"
wait_version 2
[ "$(file_hash 2 app.conf)" = "$(b2 "$TREE/app.conf")" ] || fail "version 2 lacks the saved app.conf"
has_file 2 app.conf.tmp && fail "the temp file was published"
ok "rename-over save publishes the new content"

# vim: swap file, rename the original to a backup, write, drop both
printf 'swap' >"$TREE/etc/.site.ini.swp"
mv "$TREE/etc/site.ini" "$TREE/etc/site.ini~"
printf '[main]\nx = 2\ny = 3\n' >"$TREE/etc/site.ini"
rm "$TREE/etc/site.ini~" "$TREE/etc/.site.ini.swp"
wait_version 3
[ "$(file_hash 3 etc/site.ini)" = "$(b2 "$TREE/etc/site.ini")" ] || fail "version 3 lacks the saved site.ini"
ok "vim-style save publishes the new content"

# each save was one version: nothing else comes
sleep 1
[ "$(latest_version)" -eq 3 ] || watch_fail "the saves made $(latest_version) versions, expected 3"
ok "one version per save"

# changes to excluded paths do not even start a publish
np=$(log_count "publishing '")
echo scratch >"$TREE/notes.tmp"
echo swap >"$TREE/.app.conf.swp"
echo backup >"$TREE/app.conf~"
echo lock >"$TREE/.#app.conf"
mv "$TREE/notes.tmp" "$TREE/notes2.tmp"
rm "$TREE/.app.conf.swp"
sleep 1
[ "$(log_count "publishing '")" -eq "$np" ] || watch_fail "changes to excluded files started a publish"
[ "$(latest_version)" -eq 3 ] || watch_fail "changes to excluded files made a version"
ok "changes to excluded files are ignored"

# an attribute change is a change
chmod 700 "$TREE/app.conf"
wait_version 4
show 4 | jq -e '.files[] | select(.path == "app.conf") | .mode == "0700"' >/dev/null ||
	fail "version 4 does not record mode 0700"
ok "a mode change is published"

# the rules are watched: excluding a file is a change, and from then on
# writes to it are ignored
mkdir -p "$TREE/.upgrid"
wait_until ".upgrid to be watched" is_watched "$TREE/.upgrid"
printf 'exclude app.conf\n' >"$TREE/.upgrid/rules"
wait_version 5
has_file 5 app.conf && fail "version 5 still has app.conf, which the rules now exclude"
np=$(log_count "publishing '")
echo 'a = 9' >"$TREE/app.conf"
sleep 1
[ "$(log_count "publishing '")" -eq "$np" ] || watch_fail "a write to a newly excluded file started a publish"
ok "editing .upgrid/rules is a change, and the new rules apply at once"

no_rebuild "editor saves"
stop_watch
[ "$wstatus" -eq 0 ] || watch_fail "SIGTERM: exit status $wstatus"
done_testing
