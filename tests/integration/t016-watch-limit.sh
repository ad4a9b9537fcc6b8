#!/bin/sh
# t016-watch-limit: the inotify watch limit. The watcher runs in a user
# namespace of its own whose user.max_inotify_watches is 10 (the same
# per-user limit as fs.inotify.max_user_watches, but for this namespace
# only, so nothing else on the machine is affected), on a tree of 31
# directories. It must not exit; it must log the limit, naming the sysctl
# fs.inotify.max_user_watches and the 31 watches the tree needs; and a
# change in a directory it could not watch must still be published, by
# the periodic rescan.
#
# Without user namespaces, the test lowers fs.inotify.max_user_watches
# itself for the few seconds the watcher needs to start (root only;
# restored at once, and in a trap). Neither possible: a skip, or a
# failure when UG_TEST_NO_SKIP is set (CI).
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/watch-lib.sh"

LIMIT=10
WATCHES=/proc/sys/fs/inotify/max_user_watches
mode=""
if unshare --user --map-root-user sh -c "echo $LIMIT >/proc/sys/user/max_inotify_watches" 2>/dev/null; then
	mode=userns
elif w0=$(cat "$WATCHES") && (echo "$w0" >"$WATCHES") 2>/dev/null; then
	mode=sysctl
	restore_watches() {
		echo "$w0" >"$WATCHES"
	}
	ug_cleanup_hooks="restore_watches $ug_cleanup_hooks"
else
	[ -z "${UG_TEST_NO_SKIP:-}" ] || fail "no user namespaces and cannot write $WATCHES (run as root)"
	echo "t016: SKIP: no user namespaces and cannot write $WATCHES"
	exit 77
fi

watch_setup
for i in $(seq 1 30); do
	mkdir "$TREE/d$i"
	echo "$i" >"$TREE/d$i/f"
done
run_ug 0 publish "$TREE"

args="-v --quiet-period 0.2 --max-delay 5 --rescan-interval 0.5"
if [ "$mode" = userns ]; then
	# shellcheck disable=SC2086
	start_watch_cmd unshare --user --map-root-user sh -c \
		"echo $LIMIT >/proc/sys/user/max_inotify_watches && exec \"\$0\" \"\$@\"" \
		"$WATCH" -f "$WCONF" $args "$TREE"
else
	# every watch root holds now, plus LIMIT for the watcher
	used=$(cat /proc/[0-9]*/fdinfo/* 2>/dev/null | grep -c '^inotify wd:' || true)
	echo $((used + LIMIT)) >"$WATCHES"
	# shellcheck disable=SC2086
	start_watch $args "$TREE"
fi
wait_log "inotify watch limit reached"
[ "$mode" = sysctl ] && restore_watches
log_has "fs\.inotify\.max_user_watches" || watch_fail "the limit message does not name fs.inotify.max_user_watches"
log_has "needs 31 watches" || watch_fail "the limit message does not say the tree needs 31 watches"
[ "$(kernel_watches)" -le "$LIMIT" ] || watch_fail "$(kernel_watches) watches, above the limit of $LIMIT"
ok "the limit is logged with the sysctl and the count needed ($mode)"

# a directory the watcher could not watch
unwatched=""
for i in $(seq 30 -1 1); do
	if ! is_watched "$TREE/d$i"; then
		unwatched=d$i
		break
	fi
done
[ -n "$unwatched" ] || watch_fail "every directory is watched despite the limit"
echo changed >"$TREE/$unwatched/f"
wait_until "the change in unwatched $unwatched to be published" \
	sh -c "[ \"\$('$UPGRID' show --json | jq -r '.files[] | select(.path == \"$unwatched/f\") | .blake2b')\" = '$(b2 "$TREE/$unwatched/f")' ]"
log_has "periodic rescan" || watch_fail "no periodic rescan was logged"
ok "a change in an unwatched directory ($unwatched) is published by the periodic rescan"

# and in a watched one, at once
for i in $(seq 1 30); do
	if is_watched "$TREE/d$i"; then
		echo changed >"$TREE/d$i/new"
		wait_until "the change in watched d$i to be published" latest_has "d$i/new"
		break
	fi
done
watch_alive || watch_fail "the watcher exited"
ok "the watcher keeps working at the limit"

stop_watch
[ "$wstatus" -eq 0 ] || watch_fail "SIGTERM: exit status $wstatus"
done_testing
