#!/bin/sh
# Crash safety of upgrid pull, against real sshd group servers: a kill -9
# at each named stage (the UPGRID_TEST_CRASH hook) and then another pull
# ends with a complete, verified version installed and staging cleaned
# up; a download cut by killing the terminal, or by killing the server,
# resumes at its byte offset (from another server) instead of restarting.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/ssh-lib.sh"
. "$UG_SRCDIR/tests/integration/term-lib.sh"

ug_ssh_setup
term_master
term_servers "g1:g1a g1b"

mkdir -p "$T/tree/bin" "$T/tree/etc" "$T/tree/data"
head -c 200000 /dev/urandom >"$T/tree/bin/app"
printf '[main]\nport = 80\nname = demo\n' >"$T/tree/etc/app.ini"
printf 'id,city\n1,Oslo\n' >"$T/tree/data/table.csv"
"$UPGRID" -R "$M" publish -k "$T/key" -m v1 "$T/tree" >/dev/null
term_replicate
cp -a "$T/tree" "$T/tree1"

cat >"$T/ok" <<'EOF'
#!/bin/sh
exit 0
EOF
chmod +x "$T/ok"
POINTS="manifest fetched staged finished journal renamed switched restarted checked"
for p in $POINTS; do
	term_conf "c-$p" g1a g1b -- "restart = $T/ok" "health-check = $T/ok"
	pull "c-$p"
	[ "$pst" -eq 0 ] || { cat "$T/term/c-$p.out"; fail "c-$p: first pull exited $pst"; }
	sed -i 's/^name = demo$/name = edited/' "$T/term/c-$p/current/etc/app.ini"
done

head -c 3000 /dev/urandom >>"$T/tree/bin/app"
printf '[main]\nport = 80\nname = demo\ntimeout = 5\n' >"$T/tree/etc/app.ini"
printf 'id,city,zip\n1,Oslo,0150\n' >"$T/tree/data/table.csv"
"$UPGRID" -R "$M" publish -k "$T/key" -m v2 "$T/tree" >/dev/null
term_replicate

for p in $POINTS; do
	id=c-$p
	set +e
	UPGRID_TEST_CRASH=$p "$UPGRID" pull -C "$T/term/$id.conf" >"$T/term/$id.crash" 2>&1
	st=$?
	set -e
	[ "$st" -eq 137 ] || { cat "$T/term/$id.crash"; fail "$id: the crash hook at '$p' did not kill (exit $st)"; }
	inst=$(readlink "$T/term/$id/current")
	case $inst in
	*/versions/1|*/versions/2) ;;
	*) fail "$id: after a crash at '$p' the root points to '$inst'" ;;
	esac
	[ -f "$T/term/$id/current/bin/app" ] || fail "$id: no complete version installed after a crash at '$p'"
	pull "$id"
	[ "$pst" -eq 0 ] || { cat "$T/term/$id.out"; fail "$id: the pull after a crash at '$p' exited $pst"; }
	[ "$(tstatus "$id" .installed)" = 2 ] || fail "$id: not on version 2 after recovering from '$p'"
	cmp "$T/tree/bin/app" "$T/term/$id/current/bin/app" || fail "$id: bin/app differs after '$p'"
	grep -q '^name = edited$' "$T/term/$id/current/etc/app.ini" &&
		grep -q '^timeout = 5$' "$T/term/$id/current/etc/app.ini" ||
		{ cat "$T/term/$id/current/etc/app.ini"; fail "$id: the config merge is wrong after '$p'"; }
	[ "$(head -1 "$T/term/$id/current/data/table.csv")" = "id,city,zip" ] ||
		fail "$id: the data file is not migrated after '$p'"
	[ -z "$(ls "$T/term/$id/state/staging")" ] || fail "$id: staging not cleaned after '$p'"
	[ ! -e "$T/term/$id/state/journal" ] || fail "$id: the journal is left after '$p'"
done
ok "kill -9 at each of: $POINTS; the next pull installs version 2 whole and cleans up"

# --- a download cut short resumes where it stopped
head -c 2500000 /dev/urandom >"$T/tree/bin/big"
"$UPGRID" -R "$M" publish -k "$T/key" -m v3 "$T/tree" >/dev/null
term_replicate
big=$("$UPGRID" -R "$M" show --json 3 | jq '.files[] | select(.path == "bin/big") | .stored')

# wait_partial ID BYTES: until a download in progress holds BYTES
wait_partial() {
	i=0
	while [ $i -lt 200 ]; do
		n=$(find "$T/term/$1/state/cache/tmp" -name 'dl-*' -size +"$2"c 2>/dev/null | wc -l)
		[ "$n" -eq 0 ] || return 0
		sleep 0.05
		i=$((i + 1))
	done
	fail "$1: no download reached $2 bytes"
}

# the terminal killed mid-download, then run again
id=c-manifest
"$UPGRID" pull -C "$T/term/$id.conf" --bwlimit 400k >"$T/term/$id.bg" 2>&1 &
bg=$!
wait_partial "$id" 500000
kill -9 $bg
wait $bg 2>/dev/null || true
"$UPGRID" -v pull -C "$T/term/$id.conf" >"$T/term/$id.out" 2>&1 || { cat "$T/term/$id.out"; fail "resume pull failed"; }
expect_in "$T/term/$id.out" "resuming object [0-9a-f]* at byte [1-9][0-9]{5}" "the download resumes at its offset"
[ "$(tstatus $id .installed)" = 3 ] || fail "$id: not on version 3"
bytes=$(tstatus $id .last.bytes)
[ "$bytes" -lt $((big * 8 / 10)) ] || fail "$id pulled $bytes bytes after resuming a $big-byte object"
cmp "$T/tree/bin/big" "$T/term/$id/current/bin/big" || fail "$id: bin/big differs"
ok "a terminal killed mid-download resumes at its byte offset ($bytes of $big bytes the second time)"

# the server killed mid-download: the terminal goes on from another server
id=c-fetched
"$UPGRID" -v pull -C "$T/term/$id.conf" --bwlimit 400k >"$T/term/$id.out" 2>&1 &
bg=$!
wait_partial "$id" 500000
srv=$(sed -n "s/.*connected to '\([a-z0-9]*\)'.*/\1/p" "$T/term/$id.out" | tail -1)
[ -n "$srv" ] || { cat "$T/term/$id.out"; fail "no server named"; }
pkill -9 -f "upgrid-syncd --serve --repo $T/$srv " || fail "no serving process of $srv to kill"
set +e
wait $bg
st=$?
set -e
[ "$st" -eq 0 ] || { cat "$T/term/$id.out"; fail "$id: pull exited $st after its server was killed"; }
expect_in "$T/term/$id.out" "trying the next server" "the terminal moves on"
expect_in "$T/term/$id.out" "resuming object [0-9a-f]* at byte [1-9][0-9]{5}" "it resumes at its offset"
[ "$(tstatus $id .installed)" = 3 ] || fail "$id: not on version 3"
[ "$(tstatus $id .last.server)" != "$srv" ] || fail "$id: finished on the killed server"
bytes=$(tstatus $id .last.bytes)
[ "$bytes" -lt $((big * 13 / 10)) ] || fail "$id pulled $bytes bytes for a $big-byte object: restarted from zero"
cmp "$T/tree/bin/big" "$T/term/$id/current/bin/big" || fail "$id: bin/big differs"
# 2.5 MB at --bwlimit 400k cannot take less than about 6 s
[ "$(tstatus $id .last.duration_ms)" -gt 4500 ] || fail "--bwlimit 400k did not slow the download"
ok "a server killed mid-download: another server resumes it ($bytes bytes for a $big-byte object)"

# --- a stalled server (it stops sending): abandoned after stall-timeout
echo v4 >>"$T/tree/bin/big"
head -c 1500000 /dev/urandom >"$T/tree/bin/big2"
"$UPGRID" -R "$M" publish -k "$T/key" -m v4 "$T/tree" >/dev/null
term_replicate
id=c-staged
sed -i 's/^stall-timeout = 10$/stall-timeout = 5/' "$T/term/$id.conf"
"$UPGRID" -v pull -C "$T/term/$id.conf" --bwlimit 300k >"$T/term/$id.out" 2>&1 &
bg=$!
wait_partial "$id" 300000
srv=$(sed -n "s/.*connected to '\([a-z0-9]*\)'.*/\1/p" "$T/term/$id.out" | tail -1)
pkill -STOP -f "upgrid-syncd --serve --repo $T/$srv " || fail "no serving process of $srv to stop"
set +e
wait $bg
st=$?
set -e
pkill -CONT -f "upgrid-syncd --serve --repo $T/$srv " || true
[ "$st" -eq 0 ] || { cat "$T/term/$id.out"; fail "$id: pull exited $st after its server stalled"; }
expect_in "$T/term/$id.out" "trying the next server" "the stalled server is left"
[ "$(tstatus $id .last.server)" != "$srv" ] || fail "$id: finished on the stalled server"
[ "$(tstatus $id .installed)" = 4 ] || fail "$id: not on version 4"
cmp "$T/tree/bin/big2" "$T/term/$id/current/bin/big2" || fail "$id: bin/big2 differs"
ok "a stalled transfer is abandoned after stall-timeout and finished from another server"
