#!/bin/sh
# installcheck.sh - run by 'make installcheck' (and so by 'make distcheck')
# after 'make install': everything is where the configured directories say,
# and the installed systemd units, examples and completion name the
# installed programs and settings.
#
# The Makefile passes the directories in the environment: DESTDIR (may be
# empty), bindir, man1dir, man5dir, man8dir, sysconfdir, localstatedir,
# examplesdir, systemdsystemunitdir and bashcompletiondir (empty: not
# installed), VERSION.
set -eu

fail=0
problem() {
	printf 'installcheck: %s\n' "$*"
	fail=1
}
m="is not set (run this from 'make installcheck')"
: "${bindir:?$m}" "${man1dir:?$m}" "${man5dir:?$m}" "${man8dir:?$m}" "${sysconfdir:?$m}"
: "${localstatedir:?$m}" "${examplesdir:?$m}" "${VERSION:?$m}"
: "${systemdsystemunitdir=}" "${bashcompletiondir=}"
d=${DESTDIR:-}
tmp=$(mktemp "${TMPDIR:-/tmp}/upgrid-installcheck.XXXXXX")
trap 'rm -f "$tmp"' EXIT

for prog in upgrid upgrid-watch upgrid-syncd; do
	p=$d$bindir/$prog
	if [ ! -x "$p" ]; then
		problem "'$p' is missing or not executable"
		continue
	fi
	out=$("$p" --version 2>&1) || problem "'$p --version' failed: $out"
	[ "$out" = "$prog $VERSION" ] || problem "'$p --version' says '$out', expected '$prog $VERSION'"
done

for page in "$man1dir/upgrid.1" "$man5dir/upgrid.conf.5" "$man5dir/upgrid-manifest.5" \
	"$man8dir/upgrid-watch.8" "$man8dir/upgrid-syncd.8"; do
	[ -s "$d$page" ] || problem "man page '$d$page' is missing"
done

# examples: the contrib files with the paths of this build
for f in syncd.conf terminal.conf authorized_keys.sample upgrid-pull.cron \
	upgrid-syncd.cron upgrid-watch.cron; do
	[ -s "$d$examplesdir/$f" ] || problem "example '$d$examplesdir/$f' is missing"
done
if [ -s "$d$examplesdir/syncd.conf" ]; then
	grep -q "^known-hosts = $sysconfdir/upgrid/known_hosts\$" "$d$examplesdir/syncd.conf" ||
		problem "'$d$examplesdir/syncd.conf' does not name '$sysconfdir/upgrid/known_hosts'"
fi
if [ -s "$d$examplesdir/upgrid-syncd.cron" ]; then
	grep -q -- "-f $sysconfdir/upgrid/syncd.conf" "$d$examplesdir/upgrid-syncd.cron" ||
		problem "'$d$examplesdir/upgrid-syncd.cron' does not name '$sysconfdir/upgrid/syncd.conf'"
fi

# systemd units: every upgrid program they start is the installed one
if [ -n "$systemdsystemunitdir" ]; then
	for u in upgrid-agent.service upgrid-pull.service upgrid-pull.timer \
		upgrid-syncd.service upgrid-watch.service; do
		f=$d$systemdsystemunitdir/$u
		if [ ! -s "$f" ]; then
			problem "unit '$f' is missing"
			continue
		fi
		sed -n 's/^Exec[A-Za-z]*=[-@+!:]*\([^ ]*\).*/\1/p' "$f" | grep 'upgrid' >"$tmp" || true
		while IFS= read -r exe; do
			case $exe in
			"$bindir"/upgrid*) [ -x "$d$exe" ] || problem "$u: runs '$exe', which is not installed" ;;
			*) problem "$u: runs '$exe', not a program in '$bindir'" ;;
			esac
		done <"$tmp"
		case $u in
		*.service)
			grep -qE "^ExecStart=[^ ]*$bindir/upgrid" "$f" ||
				problem "$u: no ExecStart= of a program in '$bindir'"
			;;
		esac
		for path in /usr/bin/upgrid /etc/upgrid /var/lib/upgrid; do
			case $path in
			/usr/bin/*) [ "$bindir" = /usr/bin ] && continue ;;
			/etc/*) [ "$sysconfdir" = /etc ] && continue ;;
			/var/*) [ "$localstatedir" = /var ] && continue ;;
			esac
			# not as the tail of a longer path (/usr/local/etc/upgrid)
			! grep -qE "(^|[^[:alnum:]_./-])$path" "$f" || problem "$u: still names '$path'"
		done
	done
	grep -q "^RequiresMountsFor=$localstatedir/lib/upgrid" "$d$systemdsystemunitdir/upgrid-pull.service" ||
		problem "upgrid-pull.service: RequiresMountsFor= does not name '$localstatedir/lib/upgrid'"
fi

# bash completion: one file per program, each registers its program
if [ -n "$bashcompletiondir" ]; then
	for prog in upgrid upgrid-watch upgrid-syncd; do
		f=$d$bashcompletiondir/$prog
		if [ ! -s "$f" ]; then
			problem "bash completion '$f' is missing"
			continue
		fi
		if command -v bash >/dev/null 2>&1; then
			bash --norc --noprofile -c '. "$1" && complete -p "$2"' sh "$f" "$prog" >/dev/null 2>&1 ||
				problem "'$f' does not register a completion for '$prog'"
		fi
	done
fi

if [ "$fail" -ne 0 ]; then
	echo "installcheck: FAIL"
	exit 1
fi
echo "installcheck: ok"
