#!/bin/sh
# t030-prometheus: node_exporter textfile metrics from 'upgrid status
# --prometheus' on a terminal that pulled (local transport: its seed is
# the master's repo, served by a spawned upgrid-syncd) and from 'upgrid
# fleet --prometheus' on the master after the terminal's report and a few
# more. Each file is parsed line by line (HELP and TYPE before each
# family, every other line 'name{labels} value', label values escaped)
# and its values checked against --json; the file is replaced atomically
# (new inode, no temporary file left, readers never see half a file). On
# the way: a pull on a TTY shows its download's progress on one redrawn
# line and clears it; a pull into a file (cron) shows none.
. "$UG_SRCDIR/tests/integration/lib.sh"

SYNCD="$UG_BUILDDIR/upgrid-syncd"
REPORT="$UG_BUILDDIR/tests/tools/ug-report"
export UPGRID_SYNCD="$SYNCD"
M=$T/master
CR=$(printf '\r')
"$UPGRID" -R "$M" init >/dev/null
"$UPGRID" keygen -f "$T/key" >/dev/null
mkdir -p "$T/tree/bin" "$T/metrics"
head -c 1500000 /dev/urandom >"$T/tree/bin/app"
echo 'port = 80' >"$T/tree/app.conf"
"$UPGRID" -R "$M" publish -k "$T/key" "$T/tree" >/dev/null

# an id with a quote and a backslash: both must be escaped in labels
ID='kiosk"7\b'
LBL='terminal="kiosk\"7\\b",channel="stable"'
cat >"$T/t1.conf" <<EOF
[terminal]
id = $ID
seed = - $M
master-key = $T/key.pub
root = $T/t1/current
state = $T/t1/state
splay = 0
stall-timeout = 20
EOF

# prom_check FILE: the text exposition format as node_exporter reads it
prom_check() {
	[ -s "$1" ] || fail "'$1' is empty or missing"
	[ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" = '\n' ] || fail "'$1' does not end in a newline"
	awk '
	function bad(why) { printf "%s: line %d: %s: %s\n", FILENAME, NR, why, $0; err = 1; exit 1 }
	/^# HELP / {
		if (split($0, a, " ") < 4) bad("HELP without text")
		if (a[3] in help) bad("HELP twice")
		help[a[3]] = 1; next
	}
	/^# TYPE / {
		n = split($0, a, " ")
		if (n != 4 || (a[4] != "gauge" && a[4] != "counter")) bad("bad TYPE line")
		if (a[3] in type) bad("TYPE twice")
		if (!(a[3] in help)) bad("TYPE without HELP before it")
		if (a[4] == "counter" && a[3] !~ /_total$/) bad("a counter not named _total")
		type[a[3]] = a[4]; cur = a[3]; nsamples[cur] = 0; next
	}
	/^#/ { bad("a comment that is neither HELP nor TYPE") }
	{
		if ($0 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? -?[0-9]+(\.[0-9]+)?(e[-+][0-9]+)?$/)
			bad("not name{labels} value")
		name = $0; sub(/[{ ].*/, "", name)
		if (name != cur) bad("a sample outside its family")
		key = $0; sub(/ [^ ]*$/, "", key)
		if (key in seen) bad("the same series twice")
		seen[key] = 1; nsamples[cur]++
	}
	END {
		if (err) exit 1
		for (f in type) if (nsamples[f] == 0) { printf "%s: family %s has no sample\n", FILENAME, f; exit 1 }
	}' "$1" || { cat "$1"; fail "'$1' is not in the text exposition format"; }
}

# prom_value FILE 'name{labels}': the value of exactly that series
prom_value() {
	# through the environment: awk -v would undo the escapes in the labels
	PROM_KEY=$2 awk '{ v = $NF; s = $0; sub(/ [^ ]*$/, "", s); if (s == ENVIRON["PROM_KEY"]) { print v; n++ } }
		END { if (n != 1) exit 1 }' "$1" || { cat "$1"; fail "no single series $2 in '$1'"; }
}

# expect_metric FILE SERIES VALUE
expect_metric() {
	got=$(prom_value "$1" "$2")
	[ "$got" = "$3" ] || { cat "$1"; fail "$2 is $got, expected $3"; }
}

# -------------------------------------------------------------- progress
# A pull on a TTY (script(1) gives it one) at 1 MB/s: the download takes
# over a second, so its progress is drawn, redrawn in place, and cleared
# before the result is printed.
if ! command -v script >/dev/null 2>&1; then
	fail "script(1) is missing (util-linux): it gives the pull a TTY"
fi
# (stdin from /dev/null: with a closed stdin, as CI may have, script(1)
# passes on none of the command's output)
script -qec "'$UPGRID' pull -C '$T/t1.conf' --bwlimit 1M" /dev/null </dev/null >"$T/tty.out" 2>&1 ||
	{ cat "$T/tty.out"; fail "pull on a TTY failed"; }
tr '\r' '\n' <"$T/tty.out" >"$T/tty.lines"
expect_in "$T/tty.lines" '^object [0-9a-f]{16}: [0-9.]+ [KM]iB of 1\.4 MiB \([0-9]+%\), [0-9.]+ (KiB|MiB)/s, [0-9]+ s left *$' \
	"the download's progress line"
[ "$(grep -Ec '^object ' "$T/tty.lines")" -ge 2 ] || { cat -A "$T/tty.out"; fail "the progress line was not redrawn"; }
grep -q "$CR  *${CR}installed version 1 " "$T/tty.out" ||
	{ cat -A "$T/tty.out"; fail "the progress line was not cleared before the result"; }
ok "a pull on a TTY shows bytes, rate and time left on one redrawn line, cleared at the end"

# the same kind of download into a file, as from cron: nothing but the result
head -c 1500000 /dev/urandom >"$T/tree/bin/app"
"$UPGRID" -R "$M" publish -k "$T/key" "$T/tree" >/dev/null
"$UPGRID" pull -C "$T/t1.conf" --bwlimit 1M >"$T/pull.out" 2>&1 || { cat "$T/pull.out"; fail "pull failed"; }
expect_in "$T/pull.out" "^installed version 2 " "the pull installed version 2"
if grep -q "$CR" "$T/pull.out" || grep -q "left" "$T/pull.out"; then
	cat -A "$T/pull.out"; fail "a pull without a TTY printed progress"
fi
ok "a pull whose stderr is not a TTY prints no progress"

# -------------------------------------------------------------- status
P=$T/metrics/terminal.prom
run_ug 0 status -C "$T/t1.conf" --prometheus "$P"
expect_in "$T/out" '^installed +2 ' "the normal output comes too"
prom_check "$P"
"$UPGRID" status -C "$T/t1.conf" --json >"$T/status.json"
for f in installed_version last_attempt_timestamp_seconds last_attempt_duration_seconds \
	last_success_timestamp_seconds last_result last_target_version consecutive_failures \
	last_pulled_bytes last_full_bytes pulled_bytes_total last_report_timestamp_seconds \
	report_pending bad_versions; do
	grep -q "^# TYPE upgrid_terminal_$f " "$P" || fail "no family upgrid_terminal_$f"
done
expect_in "$P" '^# TYPE upgrid_terminal_pulled_bytes_total counter$' "the byte total is a counter"
expect_metric "$P" "upgrid_terminal_installed_version{$LBL}" 2
expect_metric "$P" "upgrid_terminal_last_target_version{$LBL}" 2
expect_metric "$P" "upgrid_terminal_last_attempt_timestamp_seconds{$LBL}" "$(jq .last.time "$T/status.json")"
expect_metric "$P" "upgrid_terminal_last_success_timestamp_seconds{$LBL}" "$(jq .last_success "$T/status.json")"
expect_metric "$P" "upgrid_terminal_last_report_timestamp_seconds{$LBL}" "$(jq .last_report "$T/status.json")"
d=$(prom_value "$P" "upgrid_terminal_last_attempt_duration_seconds{$LBL}")
awk -v d="$d" -v ms="$(jq .last.duration_ms "$T/status.json")" 'BEGIN { exit !(d * 1000 - ms < 0.001 && ms - d * 1000 < 0.001 && ms > 0) }' ||
	fail "last_attempt_duration_seconds is $d, state.json says $(jq .last.duration_ms "$T/status.json") ms"
expect_metric "$P" "upgrid_terminal_consecutive_failures{$LBL}" 0
expect_metric "$P" "upgrid_terminal_last_pulled_bytes{$LBL}" "$(jq .last.bytes "$T/status.json")"
expect_metric "$P" "upgrid_terminal_last_full_bytes{$LBL}" "$(jq .last.full_bytes "$T/status.json")"
expect_metric "$P" "upgrid_terminal_pulled_bytes_total{$LBL}" "$(jq .bytes_total "$T/status.json")"
expect_metric "$P" "upgrid_terminal_report_pending{$LBL}" 0
expect_metric "$P" "upgrid_terminal_bad_versions{$LBL}" 0
[ "$(prom_value "$P" "upgrid_terminal_pulled_bytes_total{$LBL}")" -gt 3000000 ] ||
	fail "two pulls of 1.5 MB each moved less than 3 MB in total"
for r in none current failed rolled-back; do
	expect_metric "$P" "upgrid_terminal_last_result{$LBL,result=\"$r\"}" 0
done
expect_metric "$P" "upgrid_terminal_last_result{$LBL,result=\"ok\"}" 1
ok "status --prometheus: every family with HELP and TYPE, values as in --json, the id escaped"

# a pull that fails: the seed's repo is gone; the counters follow
sed "s|^seed = .*|seed = - $T/nowhere|" "$T/t1.conf" >"$T/t1-broken.conf"
"$UPGRID" pull -C "$T/t1-broken.conf" >"$T/pull.out" 2>&1 && fail "a pull from a missing repo succeeded"
"$UPGRID" pull -C "$T/t1-broken.conf" >"$T/pull.out" 2>&1 && fail "a pull from a missing repo succeeded"
ino1=$(stat -c %i "$P")
run_ug 0 -q status -C "$T/t1-broken.conf" --prometheus "$P"
[ ! -s "$T/out" ] || { cat "$T/out"; fail "-q status --prometheus printed the status"; }
prom_check "$P"
expect_metric "$P" "upgrid_terminal_consecutive_failures{$LBL}" 2
expect_metric "$P" "upgrid_terminal_last_result{$LBL,result=\"failed\"}" 1
expect_metric "$P" "upgrid_terminal_last_result{$LBL,result=\"ok\"}" 0
expect_metric "$P" "upgrid_terminal_installed_version{$LBL}" 2
expect_metric "$P" "upgrid_terminal_report_pending{$LBL}" 1
ok "after two failed pulls: 2 consecutive failures, result failed, the report pending; -q prints nothing"

# -------------------------------------------------------------- atomic
ino2=$(stat -c %i "$P")
[ "$ino1" != "$ino2" ] || fail "the metrics file was rewritten in place (same inode)"
[ "$(stat -c %a "$P")" = 644 ] || fail "the metrics file is mode $(stat -c %a "$P"), not 644"
[ "$(ls -A "$T/metrics")" = terminal.prom ] || { ls -la "$T/metrics"; fail "files left beside the metrics"; }
# a reader racing the writer sees the old file or the new one, whole
(
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
		"$UPGRID" -q status -C "$T/t1.conf" --prometheus "$P" || exit 1
	done
) &
writer=$!
reads=0
while kill -0 "$writer" 2>/dev/null; do
	cp "$P" "$T/snap.prom"
	tail -n 1 "$T/snap.prom" | grep -q '^upgrid_terminal_bad_versions{.*} 0$' ||
		{ cat "$T/snap.prom"; fail "a reader saw a partial metrics file"; }
	reads=$((reads + 1))
done
wait "$writer" || fail "a status --prometheus in the loop failed"
prom_check "$P"
[ "$(ls -A "$T/metrics")" = terminal.prom ] || { ls -la "$T/metrics"; fail "files left beside the metrics"; }
ok "the file is replaced by rename (new inode, mode 644, no temp file left; $reads racing reads whole)"

# a file that cannot be written: exit 1 naming it; the old one stays
cp "$P" "$T/before.prom"
run_ug 1 status -C "$T/t1.conf" --prometheus "$T/missing/dir/t.prom"
expect_in "$T/err" "cannot write metrics file '$T/missing/dir/t.prom': its directory does not exist" \
	"the error names the file and says why"
mkdir "$T/metrics/in-the-way.prom"
run_ug 1 status -C "$T/t1.conf" --prometheus "$T/metrics/in-the-way.prom"
expect_in "$T/err" "in-the-way.prom" "the error names the file"
rmdir "$T/metrics/in-the-way.prom"
[ "$(ls -A "$T/metrics")" = terminal.prom ] || { ls -la "$T/metrics"; fail "a failed write left a file"; }
cmp -s "$P" "$T/before.prom" || fail "a failed write changed the old metrics"
run_ug 2 status -C "$T/t1.conf" --prometheus ''
ok "an unwritable metrics file exits 1 naming it, leaving nothing behind; an empty name is a usage error"

# -------------------------------------------------------------- fleet
# the terminal reported to the master it pulled from; more terminals
# report (one relayed long ago: stale), and a garbled line is skipped
printf '#!/bin/sh\nexec "%s" "$@" --name master\n' "$SYNCD" >"$T/serve-master"
chmod +x "$T/serve-master"
now=$(date +%s)
report() {
	"$REPORT" --command "$T/serve-master" --repo "$M" "$1" 2>"$T/report.err" ||
		{ cat "$T/report.err"; fail "report refused: $1"; }
}
for i in 1 2 3; do
	report "{\"terminal\":\"t-$i\",\"channel\":\"stable\",\"installed\":2,\"target\":2,\"result\":\"ok\",\"time\":$now}"
done
report "{\"terminal\":\"t-4\",\"channel\":\"stable\",\"installed\":1,\"target\":2,\"result\":\"rolled-back\",\"time\":$now,\"message\":\"health check failed\"}"
report "{\"terminal\":\"t-5\",\"channel\":\"beta\",\"installed\":1,\"target\":1,\"result\":\"current\",\"time\":$now}"
old=$((now - 3 * 86400))
report "{\"relay\":[{\"terminal\":\"t-6\",\"channel\":\"stable\",\"installed\":1,\"result\":\"current\",\"time\":$old,\"received\":$old,\"via\":[\"g2-s1\"]}]}"
newest=$(jq -s 'map(.received) | max' "$M/reports/reports.jsonl")
printf 'garbage{{{\n' >>"$M/reports/reports.jsonl"

F=$T/metrics/fleet.prom
run_ug 0 -R "$M" fleet --prometheus "$F"
expect_in "$T/out" "^7 terminals: " "the normal output comes too"
prom_check "$F"
run_ug 0 -R "$M" fleet --json
cp "$T/out" "$T/fleet.json"
expect_metric "$F" "upgrid_fleet_terminals" "$(jq .terminals "$T/fleet.json")"
expect_metric "$F" "upgrid_fleet_terminals" 7
expect_metric "$F" 'upgrid_fleet_terminals_by_version{version="2"}' 4
expect_metric "$F" 'upgrid_fleet_terminals_by_version{version="1"}' 3
[ "$(grep -c '^upgrid_fleet_terminals_by_version{' "$F")" -eq "$(jq '.versions | length' "$T/fleet.json")" ] ||
	fail "not one series per installed version"
for r in ok current failed rolled-back; do
	expect_metric "$F" "upgrid_fleet_terminals_by_result{result=\"$r\"}" \
		"$(jq --arg r "$r" '.results[$r]' "$T/fleet.json")"
done
expect_metric "$F" 'upgrid_fleet_terminals_by_result{result="ok"}' 4
expect_metric "$F" 'upgrid_fleet_terminals_by_result{result="rolled-back"}' 1
expect_metric "$F" "upgrid_fleet_stale_terminals" 1
expect_metric "$F" "upgrid_fleet_malformed_report_lines" 1
expect_metric "$F" "upgrid_fleet_last_report_timestamp_seconds" "$newest"
ok "fleet --prometheus: terminals, per version, per result, stale, newest report, as in --json"

ino1=$(stat -c %i "$F")
run_ug 0 -q -R "$M" fleet -c stable --prometheus "$F"
[ ! -s "$T/out" ] || { cat "$T/out"; fail "-q fleet --prometheus printed the summary"; }
prom_check "$F"
[ "$(stat -c %i "$F")" != "$ino1" ] || fail "the fleet metrics were rewritten in place"
expect_metric "$F" 'upgrid_fleet_terminals{channel="stable"}' 6
expect_metric "$F" 'upgrid_fleet_terminals_by_version{channel="stable",version="1"}' 2
expect_metric "$F" 'upgrid_fleet_terminals_by_result{channel="stable",result="current"}' 1
if grep -v '^#' "$F" | grep -qv 'channel="stable"'; then
	cat "$F"; fail "with -c, a sample lacks the channel label"
fi
[ "$(ls -A "$T/metrics" | sort | tr '\n' ' ')" = "fleet.prom terminal.prom " ] ||
	{ ls -la "$T/metrics"; fail "files left beside the metrics"; }
ok "fleet -c labels every sample with the channel; replaced by rename; -q prints nothing"

run_ug 1 -R "$M" fleet --prometheus "$T/missing/f.prom"
expect_in "$T/err" "cannot write metrics file '$T/missing/f.prom'" "the error names the file"
run_ug 2 -R "$M" fleet --prometheus ''
ok "fleet: an unwritable metrics file exits 1 naming it; an empty name is a usage error"

done_testing
