#!/bin/sh
# t025-fleet: terminals report to a group server, which relays the reports
# to the master after its follow round (local transport: master '-');
# 'upgrid fleet' on the master counts terminals per version and lists the
# failed ones; serve refuses hostile reports; the relay survives a rotated
# reports file and relays each report once; fleet skips garbled lines.
. "$UG_SRCDIR/tests/integration/lib.sh"

SYNCD="$UG_BUILDDIR/upgrid-syncd"
REPORT="$UG_BUILDDIR/tests/tools/ug-report"
M=$T/master
S=$T/g1
"$UPGRID" -R "$M" init >/dev/null
"$UPGRID" -R "$S" init >/dev/null
"$UPGRID" keygen -f "$T/key" >/dev/null
mkdir -p "$T/tree"
echo one >"$T/tree/a.txt"
"$UPGRID" -R "$M" publish -k "$T/key" "$T/tree" >/dev/null

# forced commands as authorized_keys would set them: the master as seen by
# group servers, the group server as seen by its terminals (read-only) and
# by servers below it
printf '#!/bin/sh\nexec "%s" "$@" --name master\n' "$SYNCD" >"$T/serve-master"
printf '#!/bin/sh\nexec "%s" "$@" --name master --read-only\n' "$SYNCD" >"$T/serve-master-ro"
printf '#!/bin/sh\nexec "%s" "$@" --name g1-s1 --read-only\n' "$SYNCD" >"$T/serve-g1-ro"
printf '#!/bin/sh\nexec "%s" "$@" --name g1-s1\n' "$SYNCD" >"$T/serve-g1"
chmod +x "$T"/serve-*
cat >"$T/s.conf" <<CONF
[syncd]
repo = $S
master = - $M
master-key = $T/key.pub
serve-command = $T/serve-master
CONF

# sync: one follow round of the group server, log in $T/sync.out
sync() {
	"$SYNCD" -f "${1:-$T/s.conf}" --once >"$T/sync.out" 2>&1 ||
		{ cat "$T/sync.out"; fail "upgrid-syncd --once failed"; }
}

# report JSON: one terminal's report to g1 over its read-only key
report() {
	"$REPORT" --command "$T/serve-g1-ro" --repo "$S" "$1" 2>"$T/report.err" ||
		{ cat "$T/report.err"; fail "report refused: $1"; }
}

# report_refused STATUS PATTERN ARGS...: ug-report exits STATUS, says PATTERN
report_refused() {
	want=$1
	pat=$2
	shift 2
	set +e
	"$REPORT" "$@" >/dev/null 2>"$T/report.err"
	got=$?
	set -e
	[ "$got" -eq "$want" ] || { cat "$T/report.err"; fail "ug-report exited $got, expected $want"; }
	expect_in "$T/report.err" "$pat" "the refusal says why"
}

lines() {
	if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi
}

sync
[ "$(cat "$S/refs/stable")" = 1 ] || fail "g1 is not at version 1"
echo two >"$T/tree/a.txt"
"$UPGRID" -R "$M" publish -k "$T/key" "$T/tree" >/dev/null

run_ug 5 -R "$M" fleet
expect_in "$T/err" "no terminal has reported yet" "a master without reports says so"
ok "fleet without reports exits 5 and says no terminal has reported yet"

now=$(date +%s)
t=$((now - 600))
for i in 1 2 3 4 5 6; do
	report "{\"terminal\":\"t-000$i\",\"channel\":\"stable\",\"installed\":2,\"target\":2,\"result\":\"ok\",\"bytes\":120,\"full_bytes\":4000,\"duration_ms\":80,\"time\":$t,\"server\":\"g1-s1\"}"
done
for i in 7 8 9; do
	report "{\"terminal\":\"t-000$i\",\"channel\":\"stable\",\"installed\":1,\"target\":1,\"result\":\"current\",\"time\":$t,\"server\":\"g1-s1\"}"
done
report "{\"terminal\":\"t-0010\",\"channel\":\"stable\",\"installed\":1,\"target\":2,\"result\":\"failed\",\"time\":$t,\"server\":\"g1-s1\",\"message\":\"hash mismatch on 'bin/app'\"}"
report "{\"terminal\":\"t-0011\",\"channel\":\"stable\",\"installed\":1,\"target\":2,\"result\":\"rolled-back\",\"time\":$t,\"server\":\"g1-s1\",\"message\":\"health check failed\\u001b[2J\"}"
[ "$(lines "$S/reports/reports.jsonl")" -eq 11 ] || fail "g1 did not store 11 reports"
jq -s -e 'all(.[]; .via == ["g1-s1"] and (.received | type) == "number")' "$S/reports/reports.jsonl" >/dev/null ||
	fail "g1 did not stamp received and via"
ok "terminals report over a read-only key; the server stamps received and via"

# -------------------------------------------------------------- hostile
report_refused 3 "not printable ASCII" --command "$T/serve-g1-ro" --repo "$S" \
	'{"terminal":"t 1","result":"ok","installed":1}'
report_refused 3 "'installed' must be an integer" --command "$T/serve-g1-ro" --repo "$S" \
	'{"terminal":"t-1","result":"ok","installed":"2"}'
report_refused 3 "'result' must be one of" --command "$T/serve-g1-ro" --repo "$S" \
	'{"terminal":"t-1","result":"pwned","installed":2}'
report_refused 3 "report is not JSON" --command "$T/serve-g1-ro" --repo "$S" \
	'{"terminal":"t-1","result":"ok","installed":2'
head -c 30000 /dev/zero | tr '\0' 'x' >"$T/pad"
printf '{"terminal":"t-1","result":"ok","installed":2,"message":"%s"}' "$(cat "$T/pad")" >"$T/huge.json"
report_refused 3 "'message' is longer than 4096" --command "$T/serve-g1-ro" --repo "$S" "@$T/huge.json"
printf '{"terminal":"t-1","result":"ok","installed":2,"pad":"%s"}' "$(cat "$T/pad")" >"$T/huge.json"
report_refused 3 "more than the 16384" --command "$T/serve-g1-ro" --repo "$S" "@$T/huge.json"
report_refused 4 "cannot relay" --command "$T/serve-g1-ro" --repo "$S" \
	'{"relay":[{"terminal":"t-1","result":"ok","installed":2}]}'
report_refused 4 "only one REPORT per session" --command "$T/serve-g1-ro" --repo "$S" \
	'{"terminal":"t-0012","result":"ok","installed":2}' '{"terminal":"t-0013","result":"ok","installed":2}'
[ "$(lines "$S/reports/reports.jsonl")" -eq 12 ] ||
	fail "a refused report was stored (or the first of the session was not)"
ok "bad id, wrong types, garbled and huge reports are refused; a read-only key cannot relay or report twice"

# -------------------------------------------------------------- relay
# a master whose key for g1 is read-only refuses the relay: the round
# still succeeds, nothing is lost
sed "s|^serve-command = .*|serve-command = $T/serve-master-ro|" "$T/s.conf" >"$T/s-ro.conf"
sync "$T/s-ro.conf"
expect_in "$T/sync.out" "cannot relay reports .*must not be --read-only" "a denied relay is logged"
[ ! -f "$M/reports/reports.jsonl" ] || fail "a denied relay stored something"
[ ! -f "$S/reports/relay.offset" ] || fail "a denied relay moved the offset"
ok "a relay refused by a read-only key upstream is logged and kept for later"

sync
[ "$(cat "$S/refs/stable")" = 2 ] || fail "g1 is not at version 2"
expect_in "$T/sync.out" "relayed 12 reports to .* in 1 batches" "the round says what it relayed"
[ "$(lines "$M/reports/reports.jsonl")" -eq 12 ] || fail "the master did not get 12 reports"
jq -s -e 'all(.[]; .via == ["g1-s1", "master"])' "$M/reports/reports.jsonl" >/dev/null ||
	fail "the relayed reports' via is not [g1-s1, master]"
[ "$(jq -c '.received' "$M/reports/reports.jsonl" | sort -u)" = "$(jq -c '.received' "$S/reports/reports.jsonl" | sort -u)" ] ||
	fail "the master changed the received times"
size=$(stat -c %s "$S/reports/reports.jsonl")
ino=$(stat -c %i "$S/reports/reports.jsonl")
[ "$(jq -c . "$S/reports/relay.offset")" = "{\"inode\":$ino,\"offset\":$size}" ] ||
	fail "relay.offset is $(cat "$S/reports/relay.offset"), expected inode $ino offset $size"
sync
expect_not_in "$T/sync.out" "relayed" "a second round relays nothing"
[ "$(lines "$M/reports/reports.jsonl")" -eq 12 ] || fail "a report was relayed twice"
ok "the round relays the reports with their path; relay.offset remembers inode and offset; once per hop"

# -------------------------------------------------------------- fleet
run_ug 0 -R "$M" fleet
expect_in "$T/out" "^12 terminals: 7 ok, 3 current, 1 failed, 1 rolled back" "the summary line"
expect_in "$T/out" "^2 +7 +58\\.3%" "terminals on version 2"
expect_in "$T/out" "^1 +5 +41\\.7%" "terminals on version 1"
expect_in "$T/out" "^t-0010 +failed +1 +2 .* g1-s1 +hash mismatch on 'bin/app'" "the failed terminal"
expect_in "$T/out" "^t-0011 +rolled-back +1 +2 .*health check failed\\?\\[2J" "the rolled-back one"
if grep -q "$(printf '\033')" "$T/out"; then fail "a terminal's message put an escape on the screen"; fi
expect_not_in "$T/out" "not reported for" "nobody is stale"
ok "fleet counts terminals per version and lists the failed ones, escapes cleaned"

run_ug 0 -R "$M" fleet --json
jq -e '.terminals == 12 and .channel == null and .stale == 0 and .skipped == 0 and
	.versions == [{"version":2,"terminals":7,"share":0.5833},{"version":1,"terminals":5,"share":0.4167}] and
	.results == {"ok":7,"failed":1,"rolled-back":1,"current":3} and
	(.failed | length) == 2 and .stale_after == 172800' "$T/out" >/dev/null ||
	{ cat "$T/out"; fail "fleet --json summary is wrong"; }
jq -e --argjson t "$t" 'first(.failed[] | select(.terminal == "t-0010")) |
	.result == "failed" and .installed == 1 and .target == 2 and .time == $t and
	.server == "g1-s1" and .channel == "stable" and .message == "hash mismatch on '"'bin/app'"'"' \
	"$T/out" >/dev/null || { cat "$T/out"; fail "fleet --json: the failed terminal is wrong"; }
run_ug 0 -R "$M" fleet --failed --json
[ "$(jq -r '[.[].terminal] | sort | join(",")' "$T/out")" = "t-0010,t-0011" ] ||
	fail "fleet --failed --json lists $(cat "$T/out")"
run_ug 0 -R "$M" fleet --failed
[ "$(lines "$T/out")" -eq 3 ] || { cat "$T/out"; fail "fleet --failed: a header and two lines expected"; }
ok "fleet --json and --failed give the documented objects"

# newest per terminal by its time: t-0010 is fixed now; a late-arriving
# older failure of t-0001 does not count
report "{\"terminal\":\"t-0010\",\"channel\":\"stable\",\"installed\":2,\"target\":2,\"result\":\"ok\",\"time\":$((t + 60))}"
report "{\"terminal\":\"t-0001\",\"channel\":\"stable\",\"installed\":1,\"target\":2,\"result\":\"failed\",\"time\":$((t - 3600)),\"message\":\"old news\"}"
# rotation on g1: two more reports, serve renames the file, one more
report "{\"terminal\":\"t-0020\",\"channel\":\"stable\",\"installed\":2,\"result\":\"ok\",\"time\":$t}"
report "{\"terminal\":\"t-0021\",\"channel\":\"stable\",\"installed\":2,\"result\":\"ok\",\"time\":$t}"
mv "$S/reports/reports.jsonl" "$S/reports/reports.jsonl.1"
report "{\"terminal\":\"t-0022\",\"channel\":\"stable\",\"installed\":2,\"result\":\"ok\",\"time\":$t}"
sync
expect_in "$T/sync.out" "relayed 5 reports" "the rest of the rotated file and the new one"
[ "$(lines "$M/reports/reports.jsonl")" -eq 17 ] || fail "the master has $(lines "$M/reports/reports.jsonl") lines, expected 17"
[ "$(jq -r .terminal "$M/reports/reports.jsonl" | sort | uniq -d | sort -u)" = "t-0001
t-0010" ] || fail "a report was relayed twice or lost across the rotation"
ino=$(stat -c %i "$S/reports/reports.jsonl")
[ "$(jq .inode "$S/reports/relay.offset")" = "$ino" ] || fail "relay.offset does not name the new file"
sync
[ "$(lines "$M/reports/reports.jsonl")" -eq 17 ] || fail "after rotation, a report was relayed again"
run_ug 0 -R "$M" fleet --json
jq -e '.terminals == 15 and .results.failed == 0 and (.failed | map(.terminal)) == ["t-0011"]' "$T/out" >/dev/null ||
	{ cat "$T/out"; fail "newest-per-terminal is wrong"; }
ok "a rotated reports file is relayed to its end, then the new one; newest report per terminal wins"

# -------------------------------------------------------------- stale, channel
old=$((now - 3 * 86400))
"$REPORT" --command "$T/serve-master" --repo "$M" \
	"{\"relay\":[{\"terminal\":\"t-0099\",\"channel\":\"beta\",\"installed\":1,\"result\":\"current\",\"time\":$old,\"received\":$old,\"via\":[\"g2-s1\"]}]}" ||
	fail "a relay batch to the master was refused"
run_ug 0 -R "$M" fleet --json
jq -e '.terminals == 16 and .stale == 1' "$T/out" >/dev/null || { cat "$T/out"; fail "the stale terminal is not counted"; }
run_ug 0 -R "$M" fleet
expect_in "$T/out" "^1 terminal has not reported for more than 2 days" "stale in the text output"
run_ug 0 -R "$M" fleet -c beta --json
jq -e '.terminals == 1 and .channel == "beta" and .versions == [{"version":1,"terminals":1,"share":1}]' "$T/out" >/dev/null ||
	{ cat "$T/out"; fail "fleet -c beta is wrong"; }
ok "terminals silent for more than 2 days are stale; -c selects a channel"

# -------------------------------------------------------------- garbled
printf 'garbage{{{\n{"terminal":"t-0050","result":"ok",\n\001\002\n' >>"$M/reports/reports.jsonl"
printf '{"terminal":"t-0051","result":"ok","installed":"2","received":1}\n' >>"$M/reports/reports.jsonl"
run_ug 0 -R "$M" fleet --json
jq -e '.terminals == 16 and .skipped == 4' "$T/out" >/dev/null || { cat "$T/out"; fail "garbled lines not skipped"; }
run_ug 0 -R "$M" -v fleet
expect_in "$T/err" "skipped 4 malformed lines" "-v counts the skipped lines"
expect_in "$T/err" "reports.jsonl': line 22: report: 'installed' must be an integer" "-v says where and why"
run_ug 0 -R "$M" fleet
[ ! -s "$T/err" ] || { cat "$T/err"; fail "skipped lines are reported without -v"; }
ok "garbled lines are skipped (counted with -v and in --json)"

# -------------------------------------------------------------- usage
run_ug 2 -R "$M" fleet -c ../x
expect_in "$T/err" "bad channel name" "a bad channel is a usage error"
run_ug 2 -R "$M" fleet extra
run_ug 5 -R "$T/nowhere" fleet
ok "bad usage exits 2; a missing repo exits 5"

done_testing
