#!/bin/sh
# t031-help-man: each program's --help, its man page and the bash
# completion agree.
#
# t003-docs already checks that every option of every --help (long and
# short forms; upgrid's global options and each command's) is a .TP item
# in the right section of its man page and nothing more, that every
# command of 'upgrid --help' has its subsection, and that groff -ww
# renders every page in man/ without a warning. This test checks the
# rest:
#  1. every --help (upgrid, each upgrid command, upgrid-watch,
#     upgrid-syncd) exits 0, prints only on stdout, starts with a usage
#     line, and its usage lines and option list name the same options;
#  2. the SYNOPSIS of upgrid(1) names every option of each command's
#     --help in that command's .SY block, and no other;
#  3. man(1) itself ('man -l', preprocessors and all) renders every page
#     without a warning, and each reference to an upgrid page in the man
#     pages and the contrib files names a page that is in man/;
#  4. the bash completion (contrib/bash-completion) is registered for
#     the three programs, offers exactly the commands and the options
#     that --help lists (it reads them from --help when it runs, so this
#     checks its parsing, for every command), and completes file names
#     for FILE and CONFIG arguments, directories for PATH, REPO and TREE
#     (options and operands), nothing for the others; and with the
#     bash-completion package, its lazy loader finds each program's file.
#
# Run by 'make check' with UG_SRCDIR and UG_BUILDDIR set. bash is
# required; man(1) and the bash-completion package are used where
# installed (their parts are skipped with a note otherwise).
. "$UG_SRCDIR/tests/integration/lib.sh"

upgrid=$UG_BUILDDIR/upgrid
watch=$UG_BUILDDIR/upgrid-watch
syncd=$UG_BUILDDIR/upgrid-syncd
man_dir=$UG_SRCDIR/man
comp_dir=$UG_SRCDIR/contrib/bash-completion
nfail=0

problem() {
	printf 't031: %s\n' "$*"
	nfail=$((nfail + 1))
}

command -v bash >/dev/null 2>&1 || fail "bash is not installed (apt-get install bash)"
for prog in "$upgrid" "$watch" "$syncd"; do
	[ -x "$prog" ] || fail "'$prog' is missing; build it first (make $(basename "$prog"))"
done

# ---------------------------------------------------------------- helpers
# help_options: the options of --help text on stdin, one a line, every
# form: an option line starts with blanks and a dash, and its spec ends
# at the first double blank ("  -k, --key FILE   secret key").
help_options() {
	sed -n 's/^ \{1,\}\(-[^ ].*\)$/\1/p' | sed 's/  .*//' |
		grep -oE -- '(^|[ ,])--?[A-Za-z0-9][A-Za-z0-9-]*' | sed 's/^[ ,]*//' | sort -u
}

# help_args: "OPTION METAVAR" for each option form that takes an argument
help_args() {
	sed -n 's/^ \{1,\}\(-[^ ].*\)$/\1/p' | sed 's/  .*//' | awk '{
		n = 0; arg = ""
		for (i = 1; i <= NF; i++) {
			t = $i; sub(/,$/, "", t)
			if (t ~ /^-/) { o[++n] = t; continue }
			if (t ~ /^[A-Z][A-Z0-9_,]*$/) arg = t
			break
		}
		if (arg != "") for (j = 1; j <= n; j++) print o[j], arg
	}'
}

# usage_options: the options named in the usage lines of --help on stdin
# (from "usage:" to the first blank line)
usage_options() {
	awk '/^usage:/ { on = 1 } on && /^[ \t]*$/ { exit } on { print }' |
		grep -oE -- '(^|[][ |])--?[A-Za-z0-9][A-Za-z0-9-]*' | sed 's/^[][ |]*//' | sort -u
}

# same_set WHAT WANT GOT: sorted files WANT and GOT hold the same lines
same_set() {
	comm -23 "$2" "$3" >"$T/missing"
	comm -13 "$2" "$3" >"$T/extra"
	if [ -s "$T/missing" ]; then
		problem "$1: missing $(tr '\n' ' ' <"$T/missing")"
	fi
	if [ -s "$T/extra" ]; then
		problem "$1: unexpected $(tr '\n' ' ' <"$T/extra")"
	fi
}

# ---------------------------------------------------------------- 1. --help
"$upgrid" --help >"$T/help.upgrid" 2>&1 || fail "'upgrid --help' failed"
sed -n '/^Commands:/,/^$/p' "$T/help.upgrid" |
	sed -n 's/^  \([a-z][a-z0-9-]*\) .*/\1/p' >"$T/commands"
[ "$(wc -l <"$T/commands")" -ge 10 ] ||
	fail "'upgrid --help' lists $(wc -l <"$T/commands") commands (could not parse its Commands: section)"

# the programs and commands: "TAG PROGRAM [COMMAND]" (TAG names files)
{
	echo "upgrid $upgrid"
	while IFS= read -r cmd; do echo "upgrid.$cmd $upgrid $cmd"; done <"$T/commands"
	echo "upgrid-watch $watch"
	echo "upgrid-syncd $syncd"
} >"$T/subjects"

while read -r tag prog cmd; do
	what="${prog##*/}${cmd:+ $cmd} --help"
	rc=0
	# shellcheck disable=SC2086 # $cmd is one word or none
	"$prog" $cmd --help >"$T/help.$tag" 2>"$T/err" || rc=$?
	[ "$rc" -eq 0 ] || problem "'$what' exited with status $rc"
	[ ! -s "$T/err" ] || problem "'$what' wrote to stderr: $(head -c 300 "$T/err")"
	head -n 1 "$T/help.$tag" | grep -qE "^usage: ${prog##*/}${cmd:+ $cmd}( |\$)" ||
		problem "'$what' does not start with 'usage: ${prog##*/}${cmd:+ $cmd}'"
	help_options <"$T/help.$tag" >"$T/opts.$tag"
	[ -s "$T/opts.$tag" ] || problem "'$what' lists no options (could not parse it)"
	# the usage names each option once in some form (-h and -V aside: a
	# usage line of their own is not needed)
	usage_options <"$T/help.$tag" >"$T/usage.$tag"
	while IFS= read -r opt; do
		grep -qxF -- "$opt" "$T/opts.$tag" ||
			problem "'$what': the usage names '$opt', which the option list does not"
	done <"$T/usage.$tag"
	sed -n 's/^ \{1,\}\(-[^ ].*\)$/\1/p' "$T/help.$tag" | sed 's/  .*//' >"$T/specs"
	while IFS= read -r spec; do
		found=0
		for opt in $(echo "$spec" | grep -oE -- '(^|[ ,])--?[A-Za-z0-9][A-Za-z0-9-]*'); do
			opt=${opt#,}
			case $opt in -h | --help | -V | --version) found=1 ;; esac
			grep -qxF -- "$opt" "$T/usage.$tag" && found=1
		done
		[ "$found" -eq 1 ] || problem "'$what': option '$spec' is not in the usage lines"
	done <"$T/specs"
done <"$T/subjects"
ok "every --help is well formed; its usage and option list agree"

# ---------------------------------------------------------------- 2. upgrid(1) SYNOPSIS
# escapes removed, so that options read as on the command line
sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\f\[[^]]*\]//g' \
	-e 's/\\&//g' -e 's/\\%//g' "$man_dir/upgrid.1" >"$T/page"
while IFS= read -r cmd; do
	awk -v c="$cmd" '/^\.SH / { insyn = ($0 ~ /^\.SH "?SYNOPSIS"?$/) }
		insyn && /^\.SY / { t = substr($0, 5); gsub(/"/, "", t); on = (t == "upgrid " c); next }
		insyn && /^\.YS/ { on = 0 }
		on { print }' "$T/page" >"$T/syn"
	if [ ! -s "$T/syn" ]; then
		problem "upgrid.1: no '.SY \"upgrid $cmd\"' block in the SYNOPSIS"
		continue
	fi
	grep -oE -- '(^|[][ "|])--?[A-Za-z0-9][A-Za-z0-9-]*' "$T/syn" | sed 's/^[][ "|]*//' |
		sort -u >"$T/syn.opts"
	# each option line of --help: one of its forms in the block
	sed -n 's/^ \{1,\}\(-[^ ].*\)$/\1/p' "$T/help.upgrid.$cmd" | sed 's/  .*//' >"$T/specs"
	while IFS= read -r spec; do
		found=0
		for opt in $(echo "$spec" | grep -oE -- '(^|[ ,])--?[A-Za-z0-9][A-Za-z0-9-]*'); do
			opt=${opt#,}
			case $opt in -h | --help) found=1 ;; esac
			grep -qxF -- "$opt" "$T/syn.opts" && found=1
		done
		[ "$found" -eq 1 ] ||
			problem "upgrid.1: option '$spec' of 'upgrid $cmd --help' is not in the SYNOPSIS (.SY \"upgrid $cmd\")"
	done <"$T/specs"
	while IFS= read -r opt; do
		grep -qxF -- "$opt" "$T/opts.upgrid.$cmd" ||
			problem "upgrid.1: the SYNOPSIS of 'upgrid $cmd' names '$opt', which 'upgrid $cmd --help' does not"
	done <"$T/syn.opts"
done <"$T/commands"
ok "the SYNOPSIS of upgrid(1) names every option of every command"

# ---------------------------------------------------------------- 3. man -l, references
if command -v man >/dev/null 2>&1; then
	# at the width man(1) uses when its output is not a terminal
	for p in "$man_dir"/*.[1-8]; do
		MANWIDTH=80 man --warnings=w -E UTF-8 -l "$p" >/dev/null 2>"$T/err" ||
			problem "'man -l $(basename "$p")' failed"
		[ ! -s "$T/err" ] ||
			problem "'man --warnings -l $(basename "$p")' warns: $(head -c 500 "$T/err")"
	done
	ok "man -l renders every page without a warning"
else
	echo "# note: man(1) is not installed (apt-get install man-db): 'man -l' not checked"
fi
for f in "$man_dir"/*.[1-8] "$UG_SRCDIR"/contrib/*.service "$UG_SRCDIR"/contrib/*.timer \
	"$UG_SRCDIR"/contrib/*.cron "$UG_SRCDIR"/contrib/*.sample "$UG_SRCDIR"/contrib/sample/*.conf; do
	[ -f "$f" ] || continue
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' "$f" |
		grep -oE '(^|[^A-Za-z0-9_.-])upgrid[a-z.-]*"? ?\([1-8]\)' |
		sed -e 's/^[^u]*//' -e 's/[" ]//g' | sort -u >"$T/refs"
	while IFS= read -r ref; do
		name=${ref%(*}
		sec=${ref#*(}
		sec=${sec%)}
		[ -f "$man_dir/$name.$sec" ] ||
			problem "${f#"$UG_SRCDIR"/} refers to $ref, which is not in man/"
	done <"$T/refs"
done
ok "references to upgrid pages name pages that exist"

# ---------------------------------------------------------------- 4. bash completion
for name in upgrid upgrid-watch upgrid-syncd; do
	[ -f "$comp_dir/$name" ] || problem "contrib/bash-completion/$name is missing"
done

# comp.bash FILE [BASH_COMPLETION] -- WORD...: load FILE (after the
# bash-completion package's main script, if given), complete the last
# WORD as bash would on the command line WORD..., print COMPREPLY.
cat >"$T/comp.bash" <<'EOF'
file=$1 bc=$2
shift 3
[ -n "$bc" ] && . "$bc"
. "$file"
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
spec=$(complete -p "${COMP_WORDS[0]##*/}" 2>/dev/null) || {
	echo "no completion registered for '${COMP_WORDS[0]##*/}'" >&2
	exit 3
}
fn=${spec#*-F }
fn=${fn%% *}
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]-}"
((${#COMPREPLY[@]})) && printf '%s\n' "${COMPREPLY[@]}"
exit 0
EOF

# complete_with FILE WORD...: the completions of the last WORD by the
# completion file FILE, sorted, in $T/got; complete_words WORD...: the
# same with contrib/bash-completion/upgrid. bc_script: see comp.bash.
bc_script=
complete_with() {
	cfile=$1
	shift
	bash --norc --noprofile "$T/comp.bash" "$cfile" "$bc_script" -- "$@" 2>"$T/comp.err" |
		sort -u >"$T/got"
	if [ -s "$T/comp.err" ]; then
		problem "completing '$*': $(head -c 300 "$T/comp.err")"
	fi
}
complete_words() {
	complete_with "$comp_dir/upgrid" "$@"
}

# a directory with a file and a subdirectory to complete in
F=$T/f
mkdir -p "$F/adir/sub"
: >"$F/afile"
printf '%s\n' "$F/adir" >"$T/want.dir"
printf '%s\n%s\n' "$F/adir" "$F/afile" >"$T/want.file"
: >"$T/want.none"

# each file registers its own program's completion (and the others')
for name in upgrid upgrid-watch upgrid-syncd; do
	[ -f "$comp_dir/$name" ] || continue
	complete_with "$comp_dir/$name" "$UG_BUILDDIR/$name" "-"
	[ -s "$T/got" ] || problem "contrib/bash-completion/$name: '$name -<TAB>' offers nothing"
done

# commands, and the global options
complete_words "$upgrid" ""
sort -u "$T/commands" >"$T/want"
same_set "'upgrid <TAB>' (commands)" "$T/want" "$T/got"
complete_words "$upgrid" "-q" "p"
grep '^p' "$T/commands" | sort -u >"$T/want"
same_set "'upgrid -q p<TAB>'" "$T/want" "$T/got"
sed -n '/^Global options:/,/^$/p' "$T/help.upgrid" | help_options >"$T/want"
complete_words "$upgrid" "-"
same_set "'upgrid -<TAB>' (global options)" "$T/want" "$T/got"
ok "completion offers upgrid's commands and global options"

# each command's options, after global options (and -R's argument)
while IFS= read -r cmd; do
	complete_words "$upgrid" -R "$F" -q "$cmd" "-"
	same_set "'upgrid -R DIR -q $cmd -<TAB>'" "$T/opts.upgrid.$cmd" "$T/got"
done <"$T/commands"
complete_words "$watch" "-"
same_set "'upgrid-watch -<TAB>'" "$T/opts.upgrid-watch" "$T/got"
complete_words "$syncd" "-"
same_set "'upgrid-syncd -<TAB>'" "$T/opts.upgrid-syncd" "$T/got"
ok "completion offers every option of every --help, and no other"

# option arguments, by the name --help gives them
kind_of() {
	case $1 in
	FILE | CONFIG) echo file ;;
	PATH | REPO | TREE | DIR) echo dir ;;
	*) echo none ;;
	esac
}
nargs=0
while read -r tag prog cmd; do
	help_args <"$T/help.$tag" >"$T/args"
	while read -r opt arg; do
		kind=$(kind_of "$arg")
		# shellcheck disable=SC2086
		complete_words "$prog" $cmd "$opt" "$F/a"
		same_set "'${prog##*/}${cmd:+ $cmd} $opt $arg' ($kind)" "$T/want.$kind" "$T/got"
		nargs=$((nargs + 1))
	done <"$T/args"
done <"$T/subjects"
[ "$nargs" -ge 20 ] || problem "only $nargs options with an argument found in the --help texts"
# the ones that matter most, whatever --help calls their argument:
# "COMMAND OPTION KIND" ('-' for no command)
for line in "- -R dir" "- --repo dir" "publish -k file" "publish --key file" \
	"publish -c none" "log --pubkey file" "pull -C file" "status --config file"; do
	# shellcheck disable=SC2086 # three words
	set -- $line
	cmd=$1
	[ "$cmd" = - ] && cmd=
	# shellcheck disable=SC2086
	complete_words "$upgrid" $cmd "$2" "$F/a"
	same_set "'upgrid${cmd:+ $cmd} $2 <TAB>'" "$T/want.$3" "$T/got"
done
for line in "$watch -k file" "$watch --config file" "$watch -R dir" "$syncd -f file" "$syncd --repo dir"; do
	# shellcheck disable=SC2086
	set -- $line
	complete_words "$1" "$2" "$F/a"
	same_set "'${1##*/} $2 <TAB>'" "$T/want.$3" "$T/got"
done
# --opt=value (with '=' in COMP_WORDBREAKS, as by default: three words)
complete_words "$upgrid" --repo = "$F/a"
same_set "'upgrid --repo=<TAB>'" "$T/want.dir" "$T/got"
complete_words "$syncd" --config = "$F/a"
same_set "'upgrid-syncd --config=<TAB>'" "$T/want.file" "$T/got"
ok "completion of $nargs option arguments: files, directories or nothing"

# operands: a directory for 'publish TREE', 'init REPO' and
# 'upgrid-watch TREE', nothing for a version; a command without
# operands offers its options
complete_words "$upgrid" publish -c stable "$F/a"
same_set "'upgrid publish -c stable <TAB>' (TREE)" "$T/want.dir" "$T/got"
complete_words "$upgrid" init "$F/a"
same_set "'upgrid init <TAB>' (REPO)" "$T/want.dir" "$T/got"
complete_words "$watch" -q "$F/a"
same_set "'upgrid-watch -q <TAB>' (TREE)" "$T/want.dir" "$T/got"
complete_words "$upgrid" rollout ""
same_set "'upgrid rollout <TAB>' (VERSION)" "$T/want.none" "$T/got"
complete_words "$upgrid" status ""
same_set "'upgrid status <TAB>'" "$T/opts.upgrid.status" "$T/got"
ok "completion of operands"

# with the bash-completion package: its _filedir is used, and its lazy
# loader finds each program's file in an installed completions directory
bc=/usr/share/bash-completion/bash_completion
if [ -f "$bc" ]; then
	bc_script=$bc
	complete_words "$upgrid" -R "$F/a"
	same_set "with bash-completion: 'upgrid -R <TAB>'" "$T/want.dir" "$T/got"
	complete_words "$upgrid" publish -k "$F/a"
	same_set "with bash-completion: 'upgrid publish -k <TAB>'" "$T/want.file" "$T/got"
	complete_words "$syncd" "-"
	same_set "with bash-completion: 'upgrid-syncd -<TAB>'" "$T/opts.upgrid-syncd" "$T/got"
	bc_script=
	mkdir -p "$T/share/bash-completion/completions"
	for name in upgrid upgrid-watch upgrid-syncd; do
		[ -f "$comp_dir/$name" ] && cp "$comp_dir/$name" "$T/share/bash-completion/completions/$name"
	done
	for name in upgrid upgrid-watch upgrid-syncd; do
		got=$(XDG_DATA_DIRS=$T/share BASH_COMPLETION_USER_DIR=$T/none \
			bash --norc --noprofile -c '. "$1"; _completion_loader "$2"; complete -p "$2"' \
			sh "$bc" "$name" 2>&1) || true
		case $got in
		*"-F _upgrid"*" $name") ;;
		*) problem "bash-completion's loader does not load the completion of '$name': $got" ;;
		esac
	done
	ok "with bash-completion: _filedir and the lazy loader"
else
	echo "# note: bash-completion is not installed: its lazy loader not checked"
fi

[ "$nfail" -eq 0 ] || fail "$nfail problems (above)"
done_testing
