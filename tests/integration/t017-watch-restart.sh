#!/bin/sh
# t017-watch-restart: changes made while the watcher was stopped are
# published when it starts, without further edits, and an unchanged tree
# makes no version; --once publishes if the tree changed and exits 0,
# exits 0 without a version if it did not, and exits 6 if the repo is
# locked; a running watcher retries a locked repo after the quiet period.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/watch-lib.sh"

watch_setup
mkdir "$TREE/etc"
echo one >"$TREE/etc/a"
echo two >"$TREE/etc/b"

start_watch -v --quiet-period 0.2 --max-delay 5 "$TREE"
wait_version 1
stop_watch
[ "$wstatus" -eq 0 ] || watch_fail "SIGTERM: exit status $wstatus"

# while it is stopped: modify, add, delete, rename
echo ONE >"$TREE/etc/a"
echo three >"$TREE/etc/c"
rm "$TREE/etc/b"
mv "$TREE/etc/c" "$TREE/etc/c2"
start_watch -v --quiet-period 0.2 --max-delay 5 "$TREE"
wait_version 2
[ "$(file_hash 2 etc/a)" = "$(b2 "$TREE/etc/a")" ] || fail "version 2 lacks the new etc/a"
has_file 2 etc/c2 || fail "version 2 lacks etc/c2"
has_file 2 etc/b && fail "version 2 still has etc/b"
run_ug 0 log --json
[ "$(json_get "$T/out" '.[-1].message')" = "upgrid-watch (start-up)" ] ||
	fail "version 2's message is '$(json_get "$T/out" '.[-1].message')'"
ok "changes made while stopped are published at start-up"
stop_watch

# nothing changed: a start makes no version
n=$(log_count "no new version")
start_watch -v --quiet-period 0.2 --max-delay 5 "$TREE"
wait_until "the start-up check" log_count_above "no new version" "$n"
[ "$(latest_version)" -eq 2 ] || fail "an unchanged tree made version $(latest_version)"
stop_watch
ok "an unchanged tree makes no version at start-up"

# --once
echo four >"$TREE/etc/d"
set +e
"$WATCH" -f "$WCONF" --once "$TREE" >"$T/once.out" 2>"$T/once.err"
st=$?
set -e
[ "$st" -eq 0 ] || { cat "$T/once.err"; fail "--once exited $st"; }
[ "$(latest_version)" -eq 3 ] || fail "--once made no version"
has_file 3 etc/d || fail "--once version lacks etc/d"
expect_in "$T/once.err" "published stable/3" "--once reports the version"
ok "--once publishes a changed tree and exits 0"

set +e
"$WATCH" -f "$WCONF" --once "$TREE" >"$T/once.out" 2>"$T/once.err"
st=$?
set -e
[ "$st" -eq 0 ] || { cat "$T/once.err"; fail "--once on an unchanged tree exited $st"; }
[ "$(latest_version)" -eq 3 ] || fail "--once on an unchanged tree made a version"
[ ! -s "$T/once.err" ] || { cat "$T/once.err"; fail "--once on an unchanged tree printed something"; }
ok "--once on an unchanged tree exits 0 and makes no version"

# a locked repo: --once exits 6; a watcher retries
echo five >"$TREE/etc/e"
flock "$R/lock" sleep 3 &
lockpid=$!
# flock(1) takes the lock after it starts: wait until it holds it
wait_until "the lock to be held" sh -c "! flock -n '$R/lock' true"
set +e
"$WATCH" -f "$WCONF" --once "$TREE" >"$T/once.out" 2>"$T/once.err"
st=$?
set -e
[ "$st" -eq 6 ] || { cat "$T/once.err"; fail "--once on a locked repo exited $st, expected 6"; }
expect_in "$T/once.err" "locked by another publish" "--once says the repo is locked"
ok "--once on a locked repo exits 6"

start_watch -v --quiet-period 0.2 --max-delay 5 "$TREE"
wait_log "is locked by another publish; retrying in 0.2 s"
wait "$lockpid"
wait_version 4
has_file 4 etc/e || fail "version 4 lacks etc/e"
ok "a watcher retries a locked repo, and publishes once it is free"

stop_watch
[ "$wstatus" -eq 0 ] || watch_fail "SIGTERM: exit status $wstatus"
run_ug 0 verify
done_testing
