#!/bin/sh
# t003-docs: the man pages render without a single groff warning, and
# upgrid(1) documents every command and every option that --help lists
# (and nothing that --help does not), each in its own place: global
# options under GLOBAL OPTIONS, a command's options as .TP items in its
# ".SS COMMAND" subsection of COMMANDS. Likewise upgrid-watch(8): every
# option of 'upgrid-watch --help' as a .TP item under OPTIONS and in the
# SYNOPSIS (and nothing else), the sections a daemon's page needs, and
# every exit status. upgrid-syncd(8) the same, and every setting of its
# settings file (syncd/sconf.c) as a .TP item under CONFIGURATION (and
# nothing else); the contrib files for it (sample settings, cron lines,
# systemd unit, authorized_keys forced commands) use only options and
# settings that upgrid-syncd accepts.
#
# Run by 'make check' with UG_SRCDIR and UG_BUILDDIR set. groff missing is
# a skip (77), or a failure when UG_TEST_NO_SKIP is set (CI).
set -eu

: "${UG_SRCDIR:?UG_SRCDIR must name the source directory}"
: "${UG_BUILDDIR:?UG_BUILDDIR must name the build directory}"

man_dir=$UG_SRCDIR/man
page=$man_dir/upgrid.1
upgrid=$UG_BUILDDIR/upgrid
watch=$UG_BUILDDIR/upgrid-watch
wpage=$man_dir/upgrid-watch.8
syncd=$UG_BUILDDIR/upgrid-syncd
spage=$man_dir/upgrid-syncd.8
contrib=$UG_SRCDIR/contrib
fail=0

problem() {
	printf 't003-docs: %s\n' "$*"
	fail=1
}

if ! command -v groff >/dev/null 2>&1; then
	if [ -n "${UG_TEST_NO_SKIP:-}" ]; then
		echo "t003-docs: groff is not installed (install groff-base)"
		exit 1
	fi
	echo "t003-docs: SKIP: groff is not installed"
	exit 77
fi
for prog in "$upgrid" "$watch" "$syncd"; do
	if [ ! -x "$prog" ]; then
		echo "t003-docs: '$prog' is missing; build it first (make $(basename "$prog"))"
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/t003-docs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------- 1. render
# The terminal device is what man(1) uses; the PostScript one (if the full
# groff is installed) also checks fonts, which -Tutf8 does not.
devices=utf8
if groff -Tps -z </dev/null >/dev/null 2>&1; then
	devices="ps utf8"
fi
npages=0
for p in "$man_dir"/*.[1-8]; do
	[ -f "$p" ] || continue
	npages=$((npages + 1))
	name=$(basename "$p")
	: >"$tmp/groff.out"
	for dev in $devices; do
		rc=0
		groff -ww -z -man -T"$dev" "$p" >>"$tmp/groff.out" 2>&1 || rc=$?
		[ "$rc" -eq 0 ] || problem "$name: groff -T$dev exited with status $rc"
	done
	sort -u "$tmp/groff.out" >"$tmp/groff.sorted"
	mv "$tmp/groff.sorted" "$tmp/groff.out"
	if [ -s "$tmp/groff.out" ]; then
		problem "$name: groff warnings:"
		sed 's/^/    /' "$tmp/groff.out"
	fi
	# .TH names the page as its file does (catches a leftover placeholder)
	want=$(printf '%s %s' "${name%.*}" "${name##*.}" | tr '[:lower:]' '[:upper:]')
	got=$(sed -e 's/\\-/-/g' "$p" | awk '$1 == ".TH" { t = $2; s = $3; gsub(/"/, "", t);
		gsub(/"/, "", s); print toupper(t) " " s; exit }')
	[ "$got" = "$want" ] || problem "$name: '.TH' says '$got', expected '$want'"
	for sh in NAME DESCRIPTION "SEE ALSO"; do
		grep -qE "^\\.SH \"?$sh\"?\$" "$p" || problem "$name: no '.SH $sh' section"
	done
done
[ "$npages" -ge 5 ] || problem "expected at least 5 man pages in '$man_dir', found $npages"
[ -f "$page" ] || { problem "'$page' is missing"; exit 1; }

# ---------------------------------------------------------------- helpers
# load_page FILE: the man source with escapes removed into $tmp/page:
# '\-' is '-', font changes and zero-width escapes vanish, so options read
# as on the command line. page_name is the page the messages name.
load_page() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\f\[[^]]*\]//g' \
		-e 's/\\&//g' -e 's/\\%//g' "$1" >"$tmp/page"
	page_name=$(basename "$1")
}
load_page "$page"

# section_of TITLE [SUBSECTION]: the lines of ".SH TITLE" (up to the next
# .SH), or of its ".SS SUBSECTION" (up to the next .SS or .SH).
section_of() {
	awk -v sh="$1" -v ss="${2:-}" '
		/^\.SH / { t = substr($0, 5); gsub(/"/, "", t); insh = (t == sh); inss = 0; next }
		insh && /^\.SS / { t = substr($0, 5); gsub(/"/, "", t); split(t, w, " "); inss = (w[1] == ss); next }
		insh && (ss == "" || inss) { print }
	' "$tmp/page"
}

# The tag lines of .TP items: the line right after each .TP.
tags_of() {
	awk 'prev ~ /^\.TP/ { print } { prev = $0 }'
}

# Options named in option-spec lines of --help output ("  -c, --channel X
# description"): the spec is what comes before the first double space.
help_options() {
	sed -n 's/^ \{1,\}\(-[^ ].*\)$/\1/p' | sed 's/  .*//' |
		grep -oE -- '--?[A-Za-z0-9][A-Za-z0-9-]*' || true
}

# Options named by option tags (.B/.BR/.BI lines starting with '-').
tag_options() {
	grep -E '^\.(B|BR|BI|IR|RB) +-' | sed 's/^\.[A-Z]* *//' |
		grep -oE -- '(^|[ ",])--?[A-Za-z0-9][A-Za-z0-9-]*' |
		sed 's/^[ ",]*//' || true
}

has_word() { # has_word FILE WORD: WORD appears not glued to [A-Za-z0-9-]
	grep -qE -- "(^|[^A-Za-z0-9-])$2([^A-Za-z0-9-]|\$)" "$1"
}

# check_options WHERE HELPFILE TEXTFILE: both directions.
check_options() {
	help_options <"$2" | sort -u >"$tmp/want"
	tags_of <"$3" >"$tmp/tags"
	if [ ! -s "$tmp/want" ]; then
		problem "$1: '--help' lists no options (could not parse it)"
	fi
	while IFS= read -r opt; do
		has_word "$tmp/tags" "$opt" ||
			problem "$1: option '$opt' is in --help but not documented (.TP item) in $page_name"
	done <"$tmp/want"
	tag_options <"$tmp/tags" | sort -u >"$tmp/have"
	while IFS= read -r opt; do
		grep -qxF -- "$opt" "$tmp/want" ||
			problem "$1: $page_name documents option '$opt', which --help does not list"
	done <"$tmp/have"
}

# ---------------------------------------------------------------- 2. global options
"$upgrid" --help >"$tmp/help" 2>&1 || problem "'upgrid --help' failed"
sed -n '/^Global options:/,/^Commands:/p' "$tmp/help" >"$tmp/help.global"
section_of "GLOBAL OPTIONS" >"$tmp/sec.global"
if [ ! -s "$tmp/sec.global" ]; then
	problem "upgrid.1 has no '.SH GLOBAL OPTIONS' section"
else
	check_options "global options" "$tmp/help.global" "$tmp/sec.global"
fi

# ---------------------------------------------------------------- 3. commands
sed -n '/^Commands:/,$p' "$tmp/help" | sed -n 's/^  \([a-z][a-z0-9-]*\) .*/\1/p' >"$tmp/commands"
[ -s "$tmp/commands" ] || problem "'upgrid --help' lists no commands (could not parse it)"
section_of "SYNOPSIS" >"$tmp/sec.synopsis"
while IFS= read -r cmd; do
	grep -qE "upgrid $cmd([^a-z-]|\$)" "$tmp/sec.synopsis" ||
		problem "command '$cmd' is missing from the SYNOPSIS of upgrid.1"
	section_of "COMMANDS" "$cmd" >"$tmp/sec.cmd"
	if [ ! -s "$tmp/sec.cmd" ]; then
		problem "command '$cmd' has no '.SS $cmd' subsection under COMMANDS in upgrid.1"
		continue
	fi
	rc=0
	"$upgrid" "$cmd" --help >"$tmp/help.cmd" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		problem "'upgrid $cmd --help' exited with status $rc"
		continue
	fi
	check_options "upgrid $cmd" "$tmp/help.cmd" "$tmp/sec.cmd"
done <"$tmp/commands"

# and no subsection for a command that does not exist
awk '/^\.SH / { t = substr($0, 5); gsub(/"/, "", t); insh = (t == "COMMANDS"); next }
	insh && /^\.SS / { t = substr($0, 5); gsub(/"/, "", t); split(t, w, " "); print w[1] }' \
	"$tmp/page" >"$tmp/documented"
while IFS= read -r cmd; do
	grep -qxF -- "$cmd" "$tmp/commands" ||
		problem "upgrid.1 documents command '$cmd', which 'upgrid --help' does not list"
done <"$tmp/documented"

# ---------------------------------------------------------------- 4. exit codes
# every UG_EXIT_* value in cli.h has an entry in EXIT STATUS
section_of "EXIT STATUS" >"$tmp/sec.exit"
sed -n 's/^#define UG_EXIT_[A-Z]* *\([0-9][0-9]*\).*/\1/p' "$UG_SRCDIR/src/util.h" | sort -u >"$tmp/codes"
[ -s "$tmp/codes" ] || problem "no UG_EXIT_* codes found in src/util.h"
tags_of <"$tmp/sec.exit" | sed -n 's/^\.B *\([0-9][0-9]*\)$/\1/p' >"$tmp/codes.doc"
while IFS= read -r code; do
	grep -qxF -- "$code" "$tmp/codes.doc" ||
		problem "exit status $code (src/util.h) is not documented under EXIT STATUS in upgrid.1"
done <"$tmp/codes"

# ---------------------------------------------------------------- 5. upgrid-watch
if [ ! -f "$wpage" ]; then
	problem "'$wpage' is missing"
else
	load_page "$wpage"
	rc=0
	"$watch" --help >"$tmp/help.watch" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || problem "'upgrid-watch --help' exited with status $rc"
	section_of "OPTIONS" >"$tmp/sec.watch"
	if [ ! -s "$tmp/sec.watch" ]; then
		problem "upgrid-watch.8 has no '.SH OPTIONS' section"
	else
		check_options "upgrid-watch" "$tmp/help.watch" "$tmp/sec.watch"
	fi
	# each option line of --help ("-R, --repo PATH"): one of its forms in
	# the SYNOPSIS
	section_of "SYNOPSIS" >"$tmp/sec.wsyn"
	sed -n 's/^ \{1,\}\(-[^ ].*\)$/\1/p' "$tmp/help.watch" | sed 's/  .*//' >"$tmp/wspecs"
	while IFS= read -r spec; do
		found=0
		for opt in $(echo "$spec" | grep -oE -- '--?[A-Za-z0-9][A-Za-z0-9-]*'); do
			has_word "$tmp/sec.wsyn" "$opt" && found=1
		done
		[ "$found" -eq 1 ] ||
			problem "upgrid-watch: option '$spec' is in --help but not in the SYNOPSIS of upgrid-watch.8"
	done <"$tmp/wspecs"
	# a daemon's page (STYLE.md)
	for sh in SYNOPSIS OPTIONS FILES ENVIRONMENT "EXIT STATUS" SIGNALS SECURITY EXAMPLES; do
		grep -qE "^\.SH \"?$sh\"?\$" "$wpage" || problem "upgrid-watch.8: no '.SH $sh' section"
	done
	section_of "EXIT STATUS" >"$tmp/sec.wexit"
	tags_of <"$tmp/sec.wexit" | sed -n 's/^\.B *\([0-9][0-9]*\)$/\1/p' >"$tmp/codes.wdoc"
	while IFS= read -r code; do
		grep -qxF -- "$code" "$tmp/codes.wdoc" ||
			problem "exit status $code (src/util.h) is not documented under EXIT STATUS in upgrid-watch.8"
	done <"$tmp/codes"
fi

# ---------------------------------------------------------------- 6. upgrid-syncd
if [ ! -f "$spage" ]; then
	problem "'$spage' is missing"
else
	load_page "$spage"
	rc=0
	"$syncd" --help >"$tmp/help.syncd" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || problem "'upgrid-syncd --help' exited with status $rc"
	section_of "OPTIONS" >"$tmp/sec.syncd"
	if [ ! -s "$tmp/sec.syncd" ]; then
		problem "upgrid-syncd.8 has no '.SH OPTIONS' section"
	else
		check_options "upgrid-syncd" "$tmp/help.syncd" "$tmp/sec.syncd"
	fi
	section_of "SYNOPSIS" >"$tmp/sec.ssyn"
	sed -n 's/^ \{1,\}\(-[^ ].*\)$/\1/p' "$tmp/help.syncd" | sed 's/  .*//' >"$tmp/sspecs"
	while IFS= read -r spec; do
		found=0
		for opt in $(echo "$spec" | grep -oE -- '--?[A-Za-z0-9][A-Za-z0-9-]*'); do
			has_word "$tmp/sec.ssyn" "$opt" && found=1
		done
		[ "$found" -eq 1 ] ||
			problem "upgrid-syncd: option '$spec' is in --help but not in the SYNOPSIS of upgrid-syncd.8"
	done <"$tmp/sspecs"
	for sh in SYNOPSIS OPTIONS CONFIGURATION FILES ENVIRONMENT "EXIT STATUS" SIGNALS SECURITY EXAMPLES; do
		grep -qE "^\.SH \"?$sh\"?\$" "$spage" || problem "upgrid-syncd.8: no '.SH $sh' section"
	done
	section_of "EXIT STATUS" >"$tmp/sec.sexit"
	tags_of <"$tmp/sec.sexit" | sed -n 's/^\.B *\([0-9][0-9]*\)$/\1/p' >"$tmp/codes.sdoc"
	while IFS= read -r code; do
		grep -qxF -- "$code" "$tmp/codes.sdoc" ||
			problem "exit status $code (src/util.h) is not documented under EXIT STATUS in upgrid-syncd.8"
	done <"$tmp/codes"

	# every setting the parser knows is a .TP item under CONFIGURATION, and
	# every such item is a setting
	grep -oE 'strcmp\(name, "[a-z-]+"\)' "$UG_SRCDIR/syncd/sconf.c" |
		sed 's/.*"\(.*\)".*/\1/' | sort -u >"$tmp/settings"
	[ -s "$tmp/settings" ] || problem "no settings found in syncd/sconf.c (could not parse it)"
	section_of "CONFIGURATION" >"$tmp/sec.sconf"
	tags_of <"$tmp/sec.sconf" | sed -n 's/^\.B  *\([a-z][a-z-]*\)$/\1/p' | sort -u >"$tmp/settings.doc"
	while IFS= read -r key; do
		grep -qxF -- "$key" "$tmp/settings.doc" ||
			problem "setting '$key' (syncd/sconf.c) is not a .TP item under CONFIGURATION in upgrid-syncd.8"
		grep -qE "^#?$key = " "$contrib/sample/syncd.conf" ||
			problem "setting '$key' (syncd/sconf.c) is missing from contrib/sample/syncd.conf"
	done <"$tmp/settings"
	while IFS= read -r key; do
		grep -qxF -- "$key" "$tmp/settings" ||
			problem "upgrid-syncd.8 documents setting '$key', which syncd/sconf.c does not know"
	done <"$tmp/settings.doc"
fi

# ---------------------------------------------------------------- 7. syncd contrib files
# The sample settings load (with a real key in place of the master's);
# every upgrid-syncd command line of the cron file and the systemd unit is
# accepted with those settings; every forced command of the
# authorized_keys sample serves a session.
if [ -f "$contrib/sample/syncd.conf" ] && "$upgrid" keygen -f "$tmp/master.key" >/dev/null 2>&1; then
	sed -e "s#^master-key = .*#master-key = $tmp/master.key.pub#" \
		"$contrib/sample/syncd.conf" >"$tmp/syncd.conf"
	rc=0
	"$syncd" -f "$tmp/syncd.conf" --test-config >"$tmp/syncd.test" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		problem "contrib/sample/syncd.conf: 'upgrid-syncd --test-config' exited with status $rc:"
		sed 's/^/    /' "$tmp/syncd.test"
	fi
	# the commented-out settings are valid too
	sed -e 's/^#\([a-z][a-z-]* = \)/\1/' "$tmp/syncd.conf" >"$tmp/syncd.all.conf"
	rc=0
	"$syncd" -f "$tmp/syncd.all.conf" --test-config >"$tmp/syncd.test" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		problem "contrib/sample/syncd.conf with every setting uncommented: status $rc:"
		sed 's/^/    /' "$tmp/syncd.test"
	fi
	{
		grep -vE '^[[:space:]]*(#|$|[A-Z]+=)' "$contrib/upgrid-syncd.cron" || true
		grep -E '^Exec[A-Za-z]*=' "$contrib/upgrid-syncd.service" || true
	} | grep -oE 'upgrid-syncd( +[^ ;|&]+)*' | sed 's/^upgrid-syncd//' >"$tmp/syncd.lines"
	[ -s "$tmp/syncd.lines" ] || problem "no upgrid-syncd command lines found in contrib/upgrid-syncd.{cron,service}"
	while IFS= read -r args; do
		# shellcheck disable=SC2086 # word splitting is the point
		set -- $(echo "$args" | sed "s#/etc/upgrid/syncd.conf#$tmp/syncd.conf#g")
		rc=0
		"$syncd" "$@" --test-config >/dev/null 2>"$tmp/syncd.err" || rc=$?
		[ "$rc" -eq 0 ] ||
			problem "contrib: 'upgrid-syncd$args' is refused (status $rc): $(tr "\n" " " <"$tmp/syncd.err")"
	done <"$tmp/syncd.lines"
	# forced commands: a session that ends at once (no HELLO) is a normal end
	"$upgrid" -R "$tmp/repo" init >/dev/null 2>&1 || problem "cannot create a repo in '$tmp/repo'"
	grep -oE 'command="[^"]*upgrid-syncd [^"]*"' "$contrib/authorized_keys.sample" |
		grep -vF '...' | sed -e 's/^command="[^"]*upgrid-syncd //' -e 's/"$//' >"$tmp/forced"
	[ -s "$tmp/forced" ] || problem "no forced commands found in contrib/authorized_keys.sample"
	while IFS= read -r args; do
		# shellcheck disable=SC2086
		set -- $(echo "$args" | sed "s#/srv/upgrid#$tmp/repo#g")
		rc=0
		"$syncd" "$@" </dev/null >/dev/null 2>"$tmp/syncd.err" || rc=$?
		[ "$rc" -eq 0 ] ||
			problem "contrib/authorized_keys.sample: 'upgrid-syncd $args' exited with status $rc: $(tr "\n" " " <"$tmp/syncd.err")"
	done <"$tmp/forced"
else
	problem "contrib/sample/syncd.conf is missing, or 'upgrid keygen' failed"
fi

if [ "$fail" -ne 0 ]; then
	echo "t003-docs: FAIL"
	exit 1
fi
echo "t003-docs: ok ($npages pages)"
exit 0
