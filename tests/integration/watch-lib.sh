# watch-lib.sh - helpers for the upgrid-watch tests (t01N-watch-*.sh),
# sourced after lib.sh.
#
# Every wait polls for the state it expects, up to $UG_WATCH_TIMEOUT
# seconds (20 by default: a loaded CI machine, sanitizers), and returns as
# soon as it is reached; only checks that something does NOT happen sleep
# for a fixed time. The watcher runs in the background with its log in
# $T/watch.log; a cleanup hook kills it by pid, whatever happens.

WATCH="$UG_BUILDDIR/upgrid-watch"
[ -x "$WATCH" ] || fail "'$WATCH' is missing; build it first (make upgrid-watch)"
: "${UG_WATCH_TIMEOUT:=20}"

R="$T/repo"
K="$T/key"
TREE="$T/tree"
export UPGRID_REPO="$R" UPGRID_KEY="$K"
# the tests never read a settings file they did not write
WCONF="$T/none.conf"
: >"$WCONF"

wpid=""
wstatus=""

watch_kill() {
	if [ -n "$wpid" ]; then
		kill -KILL "$wpid" 2>/dev/null || true
		wait "$wpid" 2>/dev/null || true
	fi
	wpid=""
}
ug_cleanup_hooks="watch_kill $ug_cleanup_hooks"

watch_fail() {
	echo "--- watcher log ($T/watch.log):"
	cat "$T/watch.log" 2>/dev/null || true
	fail "$*"
}

# watch_setup: key, repo, empty tree
watch_setup() {
	run_ug 0 keygen
	run_ug 0 init
	mkdir -p "$TREE"
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# wait_until DESCRIPTION COMMAND...: poll COMMAND until it succeeds
wait_until() {
	what=$1
	shift
	deadline=$(($(now_ms) + UG_WATCH_TIMEOUT * 1000))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(now_ms)" -lt "$deadline" ] || watch_fail "timed out after ${UG_WATCH_TIMEOUT}s waiting for $what"
		if [ -n "$wpid" ] && ! watch_alive; then
			# one last look: the state may have come just before exit
			"$@" >/dev/null 2>&1 && return 0
			watch_fail "the watcher died while waiting for $what"
		fi
		sleep 0.05
	done
}

log_has() {
	grep -Eq -- "$1" "$T/watch.log"
}

log_count() {
	grep -Ec -- "$1" "$T/watch.log" || true
}

wait_log() {
	wait_until "log line /$1/" log_has "$1"
}

# start_watch ARGS...: start the watcher (with the empty settings file
# unless -f is given) and wait until it watches
start_watch() {
	: >>"$T/watch.log"
	nready=$(log_count "watching '")
	"$WATCH" -f "$WCONF" "$@" >"$T/watch.out" 2>>"$T/watch.log" &
	wpid=$!
	wait_until "the watcher to start" log_count_above "watching '" "$nready"
}

# start_watch_cmd COMMAND...: same, for a command line built by the test
start_watch_cmd() {
	: >>"$T/watch.log"
	nready=$(log_count "watching '")
	"$@" >"$T/watch.out" 2>>"$T/watch.log" &
	wpid=$!
	wait_until "the watcher to start" log_count_above "watching '" "$nready"
}

log_count_above() {
	[ "$(log_count "$1")" -gt "$2" ]
}

# alive, and not a zombie waiting for us to collect its status
watch_alive() {
	[ -n "$wpid" ] && [ -r "/proc/$wpid/stat" ] &&
		[ "$(cut -d' ' -f3 "/proc/$wpid/stat" 2>/dev/null)" != Z ]
}

watch_exited() {
	! watch_alive
}

# stop_watch [SIGNAL]: stop it, wait for it, keep its status in $wstatus
stop_watch() {
	[ -n "$wpid" ] || return 0
	kill -"${1:-TERM}" "$wpid" 2>/dev/null || true
	wait_watch_exit
}

# wait_watch_exit: wait for it to exit by itself; status in $wstatus
wait_watch_exit() {
	wait_until "the watcher to exit" watch_exited
	set +e
	wait "$wpid"
	wstatus=$?
	set -e
	wpid=""
}

latest_version() {
	v=$("$UPGRID" log --json 2>/dev/null | jq 'map(.version) | max // 0' 2>/dev/null) || v=0
	echo "${v:-0}"
}

version_ge() {
	[ "$(latest_version)" -ge "$1" ]
}

wait_version() {
	wait_until "version $1" version_ge "$1"
}

# show VERSION: the manifest's JSON on stdout
show() {
	"$UPGRID" show --json "$1"
}

# has_file VERSION PATH
has_file() {
	show "$1" | jq -e --arg p "$2" 'any(.files[]; .path == $p)' >/dev/null
}

latest_has() {
	has_file "$(latest_version)" "$1"
}

latest_lacks() {
	v=$(latest_version)
	[ "$v" -gt 0 ] && ! has_file "$v" "$1"
}

# file_hash VERSION PATH: its BLAKE2b in the manifest
file_hash() {
	show "$1" | jq -r --arg p "$2" '.files[] | select(.path == $p) | .blake2b'
}

b2() {
	b2sum -l 256 "$1" | cut -d' ' -f1
}

nfiles() {
	show "$1" | jq '.files | length'
}

# kernel_watches: the watches the kernel holds for the watcher, from
# /proc (not from what the watcher says)
kernel_watches() {
	cat /proc/"$wpid"/fdinfo/* 2>/dev/null | grep -c '^inotify wd:' || true
}

# watched_inodes: their inode numbers, in hex as /proc shows them
watched_inodes() {
	cat /proc/"$wpid"/fdinfo/* 2>/dev/null | sed -n 's/^inotify wd:[0-9a-f]* ino:\([0-9a-f]*\) .*/\1/p'
}

is_watched() {
	watched_inodes | grep -qx "$(printf '%x' "$(stat -c %i "$1")")"
}

ndirs() {
	find "$TREE" -type d | wc -l
}

# every directory of the tree, and no other, has a kernel watch
watches_match_tree() {
	[ "$(kernel_watches)" -eq "$(ndirs)" ]
}

no_rebuild() {
	if log_has "lost track|rescanning"; then
		watch_fail "$1: the watcher rebuilt its watches"
	fi
}
