#!/bin/sh
# t015-watch-overflow: a real IN_Q_OVERFLOW. The kernel's per-instance
# queue size is fs.inotify.max_queued_events when the instance is made:
# the test lowers it to 32 just while the watcher starts (and restores it
# at once, and in a trap), stops the watcher with SIGSTOP, makes far more
# than 32 events, and lets it go on. The watcher must log the overflow
# with the sysctl's name, rebuild its watches (including a directory made
# while it was stopped) and publish everything.
#
# Needs root (writes /proc/sys/fs/inotify/max_queued_events): a skip
# otherwise, or a failure when UG_TEST_NO_SKIP is set (CI).
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/watch-lib.sh"

QUEUE=/proc/sys/fs/inotify/max_queued_events
q0=$(cat "$QUEUE")
if ! (echo "$q0" >"$QUEUE") 2>/dev/null; then
	if [ -n "${UG_TEST_NO_SKIP:-}" ]; then
		fail "cannot write $QUEUE (run as root)"
	fi
	echo "t015: SKIP: cannot write $QUEUE (needs root)"
	exit 77
fi
restore_queue() {
	echo "$q0" >"$QUEUE"
}
ug_cleanup_hooks="restore_queue $ug_cleanup_hooks"

watch_setup
mkdir -p "$TREE/d" "$TREE/e"
echo base >"$TREE/d/base"

echo 32 >"$QUEUE"
start_watch -v --quiet-period 0.2 --max-delay 5 "$TREE"
restore_queue
wait_version 1

kill -STOP "$wpid"
for i in $(seq 1 100); do
	echo "$i" >"$TREE/d/f$i"
done
mkdir -p "$TREE/e/new/deeper"
echo n >"$TREE/e/new/deeper/n"
kill -CONT "$wpid"

wait_log "inotify event queue overflowed"
log_has "fs\.inotify\.max_queued_events" || watch_fail "the overflow message does not name fs.inotify.max_queued_events"
wait_log "rescanned '"
ok "the overflow is logged, naming the sysctl, and the tree rescanned"

wait_until "every file in a version" latest_has e/new/deeper/n
v=$(latest_version)
n=$(show "$v" | jq '[.files[] | select(.path | startswith("d/f"))] | length')
[ "$n" -eq 100 ] || fail "version $v has $n of the 100 files written during the overflow"
wait_until "every directory to be watched" watches_match_tree
echo later >"$TREE/e/new/deeper/later"
wait_until "a write in a directory made during the overflow to be published" latest_has e/new/deeper/later
ok "after the overflow everything is published and watched"

stop_watch
[ "$wstatus" -eq 0 ] || watch_fail "SIGTERM: exit status $wstatus"
run_ug 0 verify
done_testing
