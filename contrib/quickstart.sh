#!/bin/sh
# quickstart.sh - install what is missing, build, then run the demo or the
# test suite. This is what the README's Quick start and CI run.
#
#   contrib/quickstart.sh demo    build and run the end-to-end demo
#   contrib/quickstart.sh check   build with ASan+UBSan and run 'make check'
#
# Run as root on Debian 12 to have missing packages installed; as another
# user it lists them and stops. The build goes to build/ (demo) or
# build-asan/ (check) in the source tree; UG_BUILD_DIR overrides.
set -eu

mode=${1:-}
case "$mode" in
demo|check) ;;
*) echo "usage: $0 demo|check" >&2; exit 2 ;;
esac

srcdir=$(cd "$(dirname "$0")/.." && pwd)
cd "$srcdir"

# Build dependencies, the test suite's real parts (sshd, rsync, groff),
# and what the benchmarks compare against.
PACKAGES="build-essential autoconf automake pkg-config
libzstd-dev libsodium-dev libjansson-dev libxxhash-dev libinih-dev
librsync-dev libinotifytools0-dev libssh-dev libcriterion-dev
openssh-server openssh-client rsync rdiff zstd groff-base jq
man-db bash-completion"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "quickstart: missing Debian packages:$missing" >&2
		echo "quickstart: run as root, or: sudo apt-get install$missing" >&2
		exit 1
	fi
	echo "quickstart: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi

jobs=$(nproc 2>/dev/null || echo 2)
if [ "$mode" = check ]; then
	build=${UG_BUILD_DIR:-$srcdir/build-asan}
	confargs="--enable-sanitizers CFLAGS=-O1 -g"
else
	build=${UG_BUILD_DIR:-$srcdir/build}
	confargs=""
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
	autoreconf -fi
fi
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || [ "$srcdir/configure" -nt Makefile ]; then
	if [ "$mode" = check ]; then
		"$srcdir/configure" -q --enable-sanitizers CFLAGS="-O1 -g"
	else
		"$srcdir/configure" -q
	fi
fi
make -j"$jobs"

if [ "$mode" = demo ]; then
	exec make demo
fi

status=0
make -j"$jobs" check || status=$?
# one closing line CI can read, whatever the harness printed above
if [ -f test-suite.log ]; then
	pass=$(sed -n 's/^# PASS: *//p' test-suite.log | head -1)
	fail=$(sed -n 's/^# FAIL: *//p' test-suite.log | head -1)
	err=$(sed -n 's/^# ERROR: *//p' test-suite.log | head -1)
	skip=$(sed -n 's/^# SKIP: *//p' test-suite.log | head -1)
	if [ "$status" -ne 0 ]; then
		# show the failing tests' logs so CI output says why
		for log in $(find . -name '*.log' ! -name test-suite.log ! -name config.log); do
			trs=${log%.log}.trs
			if [ -f "$trs" ] && grep -q ':test-result: \(FAIL\|ERROR\)' "$trs"; then
				echo "===== $log"
				tail -n 60 "$log"
			fi
		done
	fi
	echo "${pass:-0} passed, $(( ${fail:-0} + ${err:-0} )) failed, ${skip:-0} skipped"
fi
exit "$status"
