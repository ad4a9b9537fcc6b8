#!/bin/sh
# t021: the real `upgrid-syncd --serve` on hand-made stdin. A well-formed
# session (HELLO, GET_REF, BYE) exits 0; hostile input (a huge length
# prefix, a truncated frame, an unknown type, DATA before HELLO, garbage
# after a good HELLO, random bytes) makes it answer ERROR PROTO, say
# "protocol error: REASON" and exit 3, never die of a signal; the repo
# still verifies and the counters count each failed session. A second
# session beyond --max-sessions 1 gets BUSY.
. "$UG_SRCDIR/tests/integration/lib.sh"

SYNCD="$UG_BUILDDIR/upgrid-syncd"
R="$T/repo"
K="$T/key"
export UPGRID_REPO="$R" UPGRID_KEY="$K"

run_ug 0 keygen
run_ug 0 init
mkdir -p "$T/tree/bin"
head -c 100000 /dev/urandom >"$T/tree/bin/app"
echo one >"$T/tree/notes.txt"
run_ug 0 publish "$T/tree"
echo two >"$T/tree/notes.txt"
run_ug 0 publish "$T/tree"
ok "a repo with two versions"

# Frames, written with printf octal escapes: u32 length (of type +
# payload), u8 type, payload; str = u32 length + bytes.
HELLO='\000\000\000\025\001UGRD\000\000\000\001\000\000\000\001\000\000\000\004t021'
GET_REF='\000\000\000\013\020\000\000\000\006stable'
BYE='\000\000\000\001\006'

# serve NAME ARGS...: run the server on $T/NAME.in; status in $st, output
# in $T/NAME.out and $T/NAME.err
serve() {
	name=$1
	shift
	set +e
	"$SYNCD" --serve --repo "$R" "$@" <"$T/$name.in" >"$T/$name.out" 2>"$T/$name.err"
	st=$?
	set -e
}

# the bytes of FILE from OFFSET, N of them, as decimal numbers
bytes_at() {
	od -An -tu1 -j "$2" -N "$3" "$1" | tr -s ' \n' '  ' | sed 's/^ //; s/ $//'
}

# expect_proto_error NAME REASON [ERROR-FRAME-OFFSET]
expect_proto_error() {
	[ "$st" -lt 128 ] || fail "$1: killed by signal $((st - 128))"
	if [ "$st" -ne 3 ]; then
		echo "--- stderr"; cat "$T/$1.err"
		fail "$1: exit status $st, expected 3 (protocol error)"
	fi
	expect_in "$T/$1.err" "^upgrid-syncd: protocol error: .*$2" "$1: stderr"
	# the client was told why: ERROR (type 4) with code 3 (PROTO)
	got=$(bytes_at "$T/$1.out" $((${3:-0} + 4)) 5)
	[ "$got" = "4 0 0 0 3" ] || fail "$1: expected an ERROR PROTO frame, got bytes '$got'"
	ok "$1: exit 3, ERROR PROTO sent${2:+ ($2)}"
}

# --- a well-formed session
printf "$HELLO$GET_REF$BYE" >"$T/good.in"
serve good --name t021-server
if [ "$st" -ne 0 ]; then
	echo "--- stderr"; cat "$T/good.err"
	fail "a good session exited $st"
fi
# WELCOME (type 2), version 1, then a REF (type 0x11 = 17) for stable/2
[ "$(bytes_at "$T/good.out" 4 5)" = "2 0 0 0 1" ] || fail "no WELCOME version 1"
expect_in "$T/good.out" "t021-server" "WELCOME names the server"
ref_at=$((4 + $(bytes_at "$T/good.out" 3 1)))
[ "$(bytes_at "$T/good.out" $((ref_at + 4)) 1)" = 17 ] || fail "no REF after WELCOME"
[ "$(bytes_at "$T/good.out" $((ref_at + 15)) 8)" = "0 0 0 0 0 0 0 2" ] || fail "REF is not version 2"
ok "HELLO, GET_REF, BYE: WELCOME and REF stable/2, exit 0"

: >"$T/empty.in"
serve empty
[ "$st" -eq 0 ] || fail "end of input before HELLO exited $st"
[ ! -s "$T/empty.out" ] || fail "end of input before HELLO: output sent"
ok "end of input before HELLO: exit 0"

# --- hostile input
printf '\377\377\377\377' >"$T/huge.in"
serve huge
expect_proto_error huge "frame of 4294967295 bytes exceeds the 1048576-byte limit"

printf '\000\020\000\001\001UGRD' >"$T/over.in"
serve over
expect_proto_error over "exceeds the 1048576-byte limit"

printf '\000\000\000\040\001UGRD\000\000' >"$T/truncated.in"
serve truncated
expect_proto_error truncated "truncated frame"

printf '\000\000\000\001\177' >"$T/unknown.in"
serve unknown
expect_proto_error unknown "frame type 0x7f is unknown"

printf '\000\000\000\004\042abc' >"$T/data.in"
serve data
expect_proto_error data "expected HELLO, got DATA"

printf '\000\000\000\025\001XGRD\000\000\000\001\000\000\000\001\000\000\000\004t021' >"$T/magic.in"
serve magic
expect_proto_error magic "magic"

# after a good HELLO: WELCOME first, then the ERROR
printf "$HELLO"'\000\000\000\015\002\000\000\000\001\000\000\000\000\000\000\000\000' >"$T/late.in"
serve late
welcome_len=$((4 + $(bytes_at "$T/late.out" 3 1)))
expect_proto_error late "unexpected WELCOME" $welcome_len

printf "$HELLO$HELLO" >"$T/hello2.in"
serve hello2
expect_proto_error hello2 "a second HELLO" $welcome_len

n=0
while [ $n -lt 5 ]; do
	head -c 3000 /dev/urandom >"$T/random$n.in"
	serve random$n
	expect_proto_error random$n ""
	n=$((n + 1))
done
hostile=$((8 + 5))

# --- admission control: one slot, held by a session waiting for input
mkfifo "$T/hold"
"$SYNCD" --serve --repo "$R" --max-sessions 1 <"$T/hold" >"$T/held.out" 2>"$T/held.err" &
held=$!
exec 9>"$T/hold"
printf "$HELLO" >&9
i=0
while [ ! -s "$T/held.out" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$T/held.out" ] || fail "the first session got no WELCOME"
printf "$HELLO$BYE" >"$T/busy.in"
serve busy --max-sessions 1 --retry-after 9
[ "$st" -eq 0 ] || fail "a BUSY session exited $st"
# BUSY (type 3), retry-after 9, and why
[ "$(bytes_at "$T/busy.out" 4 5)" = "3 0 0 0 9" ] || fail "no BUSY with retry-after 9"
expect_in "$T/busy.out" "is at its limit of 1 sessions" "BUSY text"
printf "$BYE" >&9
exec 9>&-
wait $held || fail "the held session exited $?"
ok "a second session over --max-sessions 1 gets BUSY, retry-after 9"

# --- nothing was harmed, everything was counted
run_ug 0 verify
ok "upgrid verify passes after the hostile sessions"

"$SYNCD" --stats --repo "$R" >"$T/stats.json"
[ "$(json_get "$T/stats.json" .errors)" = "$hostile" ] ||
	fail "stats count $(json_get "$T/stats.json" .errors) protocol errors, expected $hostile"
[ "$(json_get "$T/stats.json" .busy)" = 1 ] || fail "stats: busy is not 1"
# good, the held session, and the hostile ones that got past HELLO
[ "$(json_get "$T/stats.json" .sessions)" = 4 ] ||
	fail "stats count $(json_get "$T/stats.json" .sessions) sessions, expected 4"
ok "upgrid-syncd --stats: $hostile protocol errors, 1 busy, 4 sessions"

done_testing
