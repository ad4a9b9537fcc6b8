#!/bin/sh
# t010-watch-burst: the watcher's debounce. A burst of 10,000 file writes
# (200 files in 10 new directories, each written 50 times) becomes one
# version, or one per max-delay if it lasts longer; a tree that keeps
# changing still gets a version every max-delay; an idle watcher
# publishes nothing.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/watch-lib.sh"

watch_setup
echo base >"$TREE/base"

# quiet period 1 s, not less: the burst is one process writing as fast as
# it can, but a loaded CI machine may pause it for a few hundred ms
start_watch -v --quiet-period 1 --max-delay 30 "$TREE"
wait_version 1
ok "start-up publishes the tree"

t0=$(now_ms)
awk -v t="$TREE" 'BEGIN {
	for (d = 1; d <= 10; d++)
		system("mkdir \"" t "/burst" d "\"");
	for (r = 1; r <= 50; r++)
		for (d = 1; d <= 10; d++)
			for (f = 1; f <= 20; f++) {
				p = t "/burst" d "/f" f;
				print "round " r > p;
				close(p);
			}
}'
t1=$(now_ms)
burst_ms=$((t1 - t0))
wait_version 2
# one quiet period and a margin: nothing more may come
sleep 2.5
n=$(($(latest_version) - 1))
allowed=$((1 + burst_ms / 30000))
[ "$n" -ge 1 ] && [ "$n" -le "$allowed" ] ||
	watch_fail "a ${burst_ms} ms burst made $n versions (expected 1 to $allowed)"
v=$(latest_version)
[ "$(nfiles "$v")" -eq 201 ] || fail "version $v has $(nfiles "$v") files, expected 201"
[ "$(file_hash "$v" burst7/f13)" = "$(b2 "$TREE/burst7/f13")" ] ||
	fail "version $v does not hold the last write of burst7/f13"
ok "10000 writes in ${burst_ms} ms became $n version(s), with the final content"

# idle: no publish attempt at all
np=$(log_count "publishing '")
sleep 1.5
[ "$(log_count "publishing '")" -eq "$np" ] || watch_fail "an idle watcher tried to publish"
ok "an idle watcher does not publish"
stop_watch
[ "$wstatus" -eq 0 ] || watch_fail "SIGTERM: exit status $wstatus"

# a tree that never stops changing: a version at least every max-delay.
# (A new file each time: a file rewritten while publish reads it makes
# publish start again, and a slow publish, under sanitizers, might never
# get through.)
start_watch -v --quiet-period 0.5 --max-delay 1 "$TREE"
mkdir "$TREE/ticks"
v0=$(latest_version)
t0=$(now_ms)
i=0
while [ $(($(now_ms) - t0)) -lt 3500 ]; do
	i=$((i + 1))
	echo "$i" >"$TREE/ticks/t$i"
	sleep 0.1
done
during=$(($(latest_version) - v0))
[ "$during" -ge 2 ] ||
	watch_fail "3.5 s of changes with max-delay 1 s made $during versions while they went on (expected >= 2)"
wait_until "the last write to be published" latest_has "ticks/t$i"
total=$(($(latest_version) - v0))
[ "$total" -le 6 ] || watch_fail "3.5 s of changes made $total versions (expected at most 6)"
ok "continuous changes: $during versions during 3.5 s with max-delay 1 s, $total in all"
stop_watch
[ "$wstatus" -eq 0 ] || watch_fail "SIGTERM: exit status $wstatus"

run_ug 0 verify
ok "the repo verifies"
done_testing
