# lib.sh - shared helpers for integration tests (sourced).
#
# Tests are tNNN-area-detail.sh, run by 'make check' with UG_BUILDDIR and
# UG_SRCDIR set. Each test works in its own temp dir, removed on exit.
set -eu

: "${UG_BUILDDIR:?run through make check (UG_BUILDDIR unset)}"
: "${UG_SRCDIR:?run through make check (UG_SRCDIR unset)}"

UPGRID="$UG_BUILDDIR/upgrid"
T=$(mktemp -d "${TMPDIR:-/tmp}/upgrid-test.XXXXXX")
ug_cleanup_hooks=""
ug_cleanup() {
	for h in $ug_cleanup_hooks; do "$h" || true; done
	rm -rf "$T"
}
trap ug_cleanup EXIT
trap 'exit 130' INT TERM

ntests=0
nfail=0

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# ok MESSAGE: count a passed check (printed for the log)
ok() {
	ntests=$((ntests + 1))
	echo "ok $ntests - $*"
}

# run_ug EXPECTED_STATUS ARGS...: run upgrid, keep stdout/stderr in $T/out,
# $T/err, and fail unless it exits with EXPECTED_STATUS.
run_ug() {
	want=$1
	shift
	set +e
	"$UPGRID" "$@" >"$T/out" 2>"$T/err"
	got=$?
	set -e
	if [ "$got" -ne "$want" ]; then
		echo "--- stdout"; cat "$T/out"; echo "--- stderr"; cat "$T/err"
		fail "upgrid $* exited $got, expected $want"
	fi
}

# expect_in FILE PATTERN MESSAGE: grep -E PATTERN in FILE or fail
expect_in() {
	if ! grep -Eq -- "$2" "$1"; then
		echo "--- $1:"; cat "$1"
		fail "$3: no match for /$2/"
	fi
}

expect_not_in() {
	if grep -Eq -- "$2" "$1"; then
		echo "--- $1:"; cat "$1"
		fail "$3: unexpected match for /$2/"
	fi
}

# json_get FILE JQ-FILTER
json_get() {
	jq -r "$2" "$1"
}

# An object's path in a repo from its hex name.
obj_path() {
	printf '%s/%s/%.2s/%s\n' "$1" "$2" "$3" "${3#??}"
}

# flip one byte of FILE at OFFSET (default: the middle)
flip_byte() {
	f=$1
	size=$(stat -c %s "$f")
	off=${2:-$((size / 2))}
	chmod u+w "$f"
	b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
	printf "$(printf '\\%03o' $(((b + 1) % 256)))" |
		dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

done_testing() {
	echo "# $ntests checks passed"
}
