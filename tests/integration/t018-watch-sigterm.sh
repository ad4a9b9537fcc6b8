#!/bin/sh
# t018-watch-sigterm: SIGTERM (and SIGINT) during a long publish. The
# watcher finishes the publish, then exits 0: the ref names a complete
# version holding every file, and 'upgrid verify' passes. Idle, it stops
# at once.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/watch-lib.sh"

watch_setup
# 8 MB of incompressible content: a publish of a second or more
mkdir "$TREE/bin"
for i in 1 2 3 4; do
	head -c 2000000 /dev/urandom >"$TREE/bin/blob$i"
done
echo small >"$TREE/small"

# signal_mid_publish SIGNAL VERSION: stop the watcher in the middle of the
# publish of VERSION (it logged "publishing", not yet "published"), queue
# SIGNAL, let it go on
signal_mid_publish() {
	kill -STOP "$wpid"
	if log_has "published stable/$2"; then
		kill -CONT "$wpid"
		watch_fail "version $2 was published before the test could signal: make the publish longer"
	fi
	kill -"$1" "$wpid"
	kill -CONT "$wpid"
}

# the start-up publish is the long one
start_watch -v --quiet-period 0.2 --max-delay 5 "$TREE"
wait_log "publishing '"
signal_mid_publish TERM 1
stop_watch
[ "$wstatus" -eq 0 ] || watch_fail "SIGTERM during a publish: exit status $wstatus"
log_has "published stable/1" || watch_fail "the watcher stopped without finishing the publish"
[ "$(latest_version)" -eq 1 ] || fail "the ref names version $(latest_version), expected 1"
[ "$(nfiles 1)" -eq 5 ] || fail "version 1 has $(nfiles 1) files, expected 5"
[ "$(file_hash 1 bin/blob4)" = "$(b2 "$TREE/bin/blob4")" ] || fail "version 1 has the wrong bin/blob4"
run_ug 0 verify
ok "SIGTERM during a publish: the version completes, the repo verifies, exit 0"

# SIGINT during a publish made by a change
start_watch -v --quiet-period 0.2 --max-delay 5 "$TREE"
n=$(log_count "publishing '")
for i in 1 2 3 4; do
	head -c 2000000 /dev/urandom >"$TREE/bin/new$i"
done
wait_until "the publish to start" log_count_above "publishing '" "$n"
signal_mid_publish INT 2
stop_watch INT
[ "$wstatus" -eq 0 ] || watch_fail "SIGINT during a publish: exit status $wstatus"
v=$(latest_version)
[ "$v" -eq 2 ] || fail "the ref names version $v, expected 2"
has_file 2 bin/new1 || fail "version 2 lacks bin/new1"
run_ug 0 verify
ok "SIGINT during a publish: the version completes, the repo verifies, exit 0"

# idle: stops at once
start_watch -v --quiet-period 0.2 --max-delay 5 "$TREE"
wait_until "the start-up check" sh -c "grep -Eq 'published stable/3|no new version' '$T/watch.log'"
t0=$(now_ms)
stop_watch
[ "$wstatus" -eq 0 ] || watch_fail "SIGTERM when idle: exit status $wstatus"
[ $(($(now_ms) - t0)) -lt 2000 ] || fail "an idle watcher took $(($(now_ms) - t0)) ms to stop"
log_has "SIGTERM received; stopping" || watch_fail "the stop was not logged"
run_ug 0 verify
ok "SIGTERM when idle: exit 0 at once"
done_testing
