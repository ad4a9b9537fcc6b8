#!/bin/sh
# demo.sh - the whole pipeline on loopback, with real parts: a master tree
# watched by upgrid-watch; 2 groups of 3 group servers, each a real OpenSSH
# sshd on its own 127.0.0.1 port with its own host key, serving its repo
# through the forced command upgrid-syncd --serve and following its chain
# with upgrid-syncd; 6 terminals, each with its own install root and
# state, that install the first version with upgrid pull and then run
# upgrid agent, one with a locally edited config value and one with a
# local data row. The operator edits the master tree (a new binary,
# a structural config change, a new CSV column); the demo shows the
# version being published, replicated down each chain and pulled by each
# terminal as it happens, then a table per terminal and the master's
# 'upgrid fleet'.
#
#   contrib/demo.sh [--check] BUILDDIR     (run by 'make demo')
#
# --check (or UG_DEMO_CHECK=1) is the short form the test suite runs
# (tests/integration/t029-demo.sh): the same pipeline, without the
# explanatory listings and without waiting for the reports to reach the
# master. UG_DEMO_TABLE=FILE also writes the final table to FILE, one JSON
# object per terminal:
#   {"terminal":"meter-3","version":2,"latest":2,"server":"e2",
#    "bytes":3181,"full_bytes":30462,"config_edit":"kept",
#    "config_upstream":true,"rows_before":200,"rows_kept":200,
#    "rows_after":200,"new_column":true}
# config_edit is "kept", "lost" or "none" (the terminal made no edit);
# config_upstream says the structural change of the new version arrived.
# UG_DEMO_KEEP=1 keeps the work directory (its path is printed).
#
# Every process the demo starts is stopped by its pid when it ends,
# however it ends; it needs OpenSSH (sshd at /usr/sbin/sshd, or UG_SSHD),
# jq, and the right to create /run/sshd (root) if it does not exist.
set -eu

check=${UG_DEMO_CHECK:-0}
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
builddir=${1:?usage: demo.sh [--check] BUILDDIR}
builddir=$(cd "$builddir" && pwd)
srcdir=$(cd "$(dirname "$0")/.." && pwd)
UPGRID="$builddir/upgrid"
SYNCD="$builddir/upgrid-syncd"
WATCH="$builddir/upgrid-watch"
sample="$srcdir/contrib/sample"

fail() {
	echo "demo: $*" >&2
	exit 1
}

for p in "$UPGRID" "$SYNCD" "$WATCH"; do
	[ -x "$p" ] || fail "'$p' is not built; run make first"
done
command -v jq >/dev/null 2>&1 ||
	fail "jq is missing; install it (apt-get install jq), or run contrib/quickstart.sh demo"

# ------------------------------------------------------------- output
if [ -t 1 ]; then
	bold=$(printf '\033[1m')
	plain=$(printf '\033[0m')
else
	bold=""
	plain=""
fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
# show a command as typed: programs by name, paths relative to the work
# dir, arguments with blanks quoted; an argument "# ..." is a comment
show() {
	sh_line="$"
	for sh_a in "$@"; do
		case $sh_a in
		"#"*) sh_line="$sh_line    $sh_a" ;;
		*" "*) sh_line="$sh_line '$sh_a'" ;;
		*) sh_line="$sh_line $sh_a" ;;
		esac
	done
	printf '%s\n' "$sh_line" | sed -e "s|$builddir/||g" -e "s|$work/||g"
}
# indent what a command printed
indent() { sed -e 's/^/  /' -e "s|$work/||g"; }
human() {
	awk -v b="$1" 'BEGIN {
		if (b < 1024) printf "%d B", b
		else if (b < 1048576) printf "%.1f KiB", b / 1024
		else printf "%.1f MiB", b / 1048576 }'
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
demo_t0=$(now_ms)

# ------------------------------------------------------------- processes
work=$(mktemp -d "${TMPDIR:-/tmp}/upgrid-demo.XXXXXX")
# pid:label of each background process started here (sshds are tracked by
# ssh-lib.sh)
procs=""
# set once the checks passed: a failure after it keeps the work directory
started=0

# start LABEL LOG COMMAND...: run COMMAND in the background, output to LOG
start() {
	st_label=$1
	st_log=$2
	shift 2
	"$@" </dev/null >"$st_log" 2>&1 &
	procs="$procs $!:$st_label"
}

# stop_procs: TERM every process started, wait for them (KILL after 15 s),
# and say which one did not exit 0
stop_procs() {
	for sp in $procs; do
		kill -TERM "${sp%%:*}" 2>/dev/null || true
	done
	sp_i=0
	for sp in $procs; do
		while ug_pid_alive "${sp%%:*}"; do
			sp_i=$((sp_i + 1))
			if [ "$sp_i" -ge 150 ]; then
				echo "demo: ${sp#*:} (pid ${sp%%:*}) ignores SIGTERM; killing it" >&2
				kill -KILL "${sp%%:*}" 2>/dev/null || true
			fi
			sleep 0.1
		done
	done
	stop_bad=""
	for sp in $procs; do
		sp_st=0
		wait "${sp%%:*}" 2>/dev/null || sp_st=$?
		[ "$sp_st" -eq 0 ] || stop_bad="$stop_bad ${sp#*:}(exit $sp_st)"
	done
	procs=""
}

cleanup() {
	cl_st=$?
	trap - EXIT INT TERM
	case $cl_st in
	130 | 143) echo "demo: interrupted; stopping what it started" >&2 ;;
	esac
	stop_procs
	ug_sshd_cleanup
	if [ "${UG_DEMO_KEEP:-0}" = 1 ] || { [ "$cl_st" -eq 1 ] && [ "$started" = 1 ]; }; then
		# after a failure, for a look at the logs
		echo "demo: the work directory is kept: $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$cl_st"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

UG_SSH_DIR="$work/ssh"
UG_SSH_LABEL=upgrid-demo
. "$srcdir/contrib/ssh-lib.sh"

ug_ssh_st=0
ug_ssh_check || ug_ssh_st=$?
case $ug_ssh_st in
1) fail "OpenSSH is missing ($UG_SSH_MISSING); install openssh-server and openssh-client, or run contrib/quickstart.sh demo" ;;
2) fail "cannot create /run/sshd, which sshd needs; run the demo as root" ;;
esac
started=1

# ------------------------------------------------------------- the cluster
GROUPS_SPEC="east:e1,e2,e3 west:w1,w2,w3"
SERVERS="e1 w1 e2 w2 e3 w3" # chain order, group by group
TERMS="meter-1 meter-2 meter-3 meter-4 meter-5 meter-6"
EDIT_TERM=meter-3 # edits a config value
ROWS_TERM=meter-5 # adds a data row
M="$work/master"
addr() { echo "$UG_SSH_USER@$UG_SSH_HOST:$(ug_sshd_port "$1")"; }

if [ "$check" = 1 ]; then
	echo "upgrid demo (short form): master -> 2 groups of 3 servers -> 6 terminals"
else
	printf '%supgrid demo%s: one master, 2 groups of 3 group servers, 6 terminals,\n' "$bold" "$plain"
	echo "each server a real OpenSSH sshd on 127.0.0.1; every step is a real command."
fi
echo "work directory: $work (paths below are relative to it)"

say "SSH: one sshd per machine, each with its own host key and port"
ug_ssh_keys
mkdir -p "$M" "$work/servers" "$work/terminals"
# the terminals' key: on the group servers, it may only read (one report
# per session, no counters, no relaying)
ssh-keygen -q -t ed25519 -N '' -C upgrid-demo-terminals -f "$UG_SSH_DIR/terminal_key" ||
	fail "ssh-keygen cannot make the terminals' key"
ug_sshd_start master "$SYNCD --serve --repo $M/repo --name master"
for s in $SERVERS; do
	mkdir -p "$work/servers/$s"
	"$UPGRID" -q -R "$work/servers/$s/repo" init
	ug_sshd_start "$s" "$SYNCD --serve --repo $work/servers/$s/repo --name $s" \
		"$(ug_sshd_key_line "$SYNCD --serve --read-only --repo $work/servers/$s/repo --name $s" \
			"$UG_SSH_DIR/terminal_key.pub")"
done
for n in master $SERVERS; do
	printf '  %-7s 127.0.0.1:%-5s  host key %s\n' "$n" "$(ug_sshd_port "$n")" \
		"$(ssh-keygen -l -f "$UG_SSH_DIR/$n/host_key.pub" | cut -d' ' -f2)"
done
if [ "$check" != 1 ]; then
	echo "  e1's authorized_keys: each key may only run its forced command"
	sed -e 's/^command="\([^"]*\)",restrict .* upgrid-demo-client$/    servers'"'"' key:    \1/' \
		-e 's/^command="\([^"]*\)",restrict .* upgrid-demo-terminals$/    terminals'"'"' key:  \1/' \
		-e "s|$builddir/||g" -e "s|$work/||g" "$UG_SSH_DIR/e1/authorized_keys"
fi

say "the master: a signing key, a repo, and the cluster file"
show "$UPGRID" keygen -f "$M/master.key" -C "demo master"
"$UPGRID" keygen -f "$M/master.key" -C "demo master" | indent
cp "$M/master.key.pub" "$M/master.pub"
show "$UPGRID" -R "$M/repo" init
"$UPGRID" -R "$M/repo" init | indent
{
	for g in $GROUPS_SPEC; do
		echo "[group ${g%%:*}]"
		for s in $(echo "${g#*:}" | tr , ' '); do
			echo "server = $s $(addr "$s") $work/servers/$s/repo"
		done
	done
} >"$M/repo/cluster"
show cat "$M/repo/cluster"
indent <"$M/repo/cluster"

# each server follows its chain: e2 follows e1, e1 the master
for s in $SERVERS; do
	cat >"$work/servers/$s/syncd.conf" <<EOF
[syncd]
repo = $work/servers/$s/repo
name = $s
master = $(addr master) $M/repo
master-key = $M/master.pub
identity = $UG_SSH_KEY
known-hosts = $UG_SSH_KNOWN_HOSTS
connect-timeout = 5
idle-timeout = 20
# short long-polls, so that reports travel up quickly (they go up at the
# end of each round)
wait = 5
retry = 1
EOF
done

say "the master tree, version 1: a binary, an INI config, a CSV data file, rules"
cp -a "$sample/v1" "$M/tree"
if [ "$check" != 1 ]; then
	show cat "$M/tree/.upgrid/rules"
	indent <"$M/tree/.upgrid/rules"
fi

say "upgrid-watch watches the tree (inotify) and publishes it"
show "$WATCH" -R "$M/repo" -k "$M/master.key" --quiet-period 0.5 "$M/tree" "&"
start upgrid-watch "$M/watch.log" "$WATCH" -R "$M/repo" -k "$M/master.key" \
	--quiet-period 0.5 "$M/tree"

# ref_at REPO VERSION: the stable channel of REPO is at VERSION or later
ref_at() {
	[ -r "$1/refs/stable" ] && read -r ra_v <"$1/refs/stable" && [ "$ra_v" -ge "$2" ] 2>/dev/null
}
# wait_for SECONDS WHAT COMMAND...: poll COMMAND every 0.1 s
wait_for() {
	wf_end=$(($(now_ms) + $1 * 1000))
	wf_what=$2
	shift 2
	until "$@"; do
		[ "$(now_ms)" -lt "$wf_end" ] || fail "timed out waiting for $wf_what"
		sleep 0.1
	done
}
# log_match FILE SED-SCRIPT: the last line of FILE the script prints
# (with -n), waiting up to 1 s for it: a program logs a step just after
# it is made
log_match() {
	lm_i=0
	while :; do
		lm=$(sed -n "$2" "$1" 2>/dev/null | tail -1)
		if [ -n "$lm" ] || [ "$lm_i" -ge 20 ]; then
			printf '%s\n' "$lm"
			return 0
		fi
		lm_i=$((lm_i + 1))
		sleep 0.05
	done
}
# what upgrid-watch logged for VERSION, without its prefix and timing
watch_line() {
	log_match "$M/watch.log" "s/^upgrid-watch: published stable\/$1: \(.*\) ([0-9.]* s)\$/\1/p"
}
wait_for 30 "upgrid-watch to publish version 1 (see $M/watch.log)" ref_at "$M/repo" 1
echo "  master   published version 1: $(watch_line 1)"
if [ "$check" != 1 ]; then
	# the files with their class and action, as the signed manifest says
	show "$UPGRID" -R "$M/repo" show 1
	"$UPGRID" -R "$M/repo" show 1 | sed '1,/^$/d' | indent
fi

# server_line SERVER VERSION: "version 2 from e1: 2.5 KiB", from its log
server_line() {
	sl=$(log_match "$work/servers/$1/syncd.log" \
		"s/^upgrid-syncd: 'stable' is now at version $2 (from '\([^']*\)' ([^)]*): \([0-9]*\) bytes;.*/\1 \2/p")
	if [ -n "$sl" ]; then
		echo "version $2 from ${sl% *}: $(human "${sl#* }")"
	else
		echo "version $2"
	fi
}

say "version 1 goes down each chain: one upgrid-syncd --once round per server"
show "$SYNCD" -f "$work/servers/e1/syncd.conf" --once "# and so on, in chain order"
for s in $SERVERS; do
	"$SYNCD" -f "$work/servers/$s/syncd.conf" --once >"$work/servers/$s/syncd.log" 2>&1 ||
		{ indent <"$work/servers/$s/syncd.log"; fail "upgrid-syncd --once on $s failed"; }
	printf '  %-8s %s\n' "$s" "$(server_line "$s" 1)"
done

# ------------------------------------------------------------- terminals
tdir() { echo "$work/terminals/$1"; }
i=0
for id in $TERMS; do
	i=$((i + 1))
	# half the fleet asks east first, half west
	if [ $((i % 2)) -eq 1 ]; then seeds="e1 w1"; else seeds="w1 e1"; fi
	mkdir -p "$(tdir "$id")"
	{
		echo "[terminal]"
		echo "id = $id"
		for s in $seeds; do echo "seed = $(addr "$s") $work/servers/$s/repo"; done
		echo "master-key = $M/master.pub"
		echo "identity = $UG_SSH_DIR/terminal_key"
		echo "known-hosts = $UG_SSH_KNOWN_HOSTS"
		echo "root = $(tdir "$id")/current"
		echo "state = $(tdir "$id")/state"
		echo "poll = 60"
		echo "splay = 1"
		echo "stall-timeout = 10"
	} >"$(tdir "$id")/terminal.conf"
done

say "6 terminals install version 1 from their seed servers"
show "$UPGRID" pull -C "$(tdir meter-1)/terminal.conf" "# and so on, for each terminal"
for id in $TERMS; do
	"$UPGRID" pull -C "$(tdir "$id")/terminal.conf" >"$(tdir "$id")/pull.log" 2>&1 ||
		{ indent <"$(tdir "$id")/pull.log"; fail "upgrid pull on $id failed"; }
	printf '  %-8s %s\n' "$id" "$(tail -1 "$(tdir "$id")/pull.log")"
done

csv_codes() { tail -n +2 "$1" | cut -d, -f1 | sort; }
say "local changes on two terminals"
edit_ini="$(tdir "$EDIT_TERM")/current/etc/meter.ini"
show sed -i 's/^log_level = info$/log_level = debug/' "$edit_ini" "# $EDIT_TERM: a config value"
sed -i 's/^log_level = info$/log_level = debug/' "$edit_ini"
grep -q '^log_level = debug$' "$edit_ini" || fail "the sample's etc/meter.ini has no 'log_level = info'"
rows_csv="$(tdir "$ROWS_TERM")/current/data/tariffs.csv"
show echo "T900,0.11,local" ">>" "$rows_csv" "# $ROWS_TERM: a data row"
echo "T900,0.11,local" >>"$rows_csv"
for id in $TERMS; do
	csv_codes "$(tdir "$id")/current/data/tariffs.csv" >"$(tdir "$id")/rows.before"
done

say "follow mode: upgrid-syncd on each server, upgrid agent on each terminal"
for s in $SERVERS; do
	start "upgrid-syncd@$s" "$work/servers/$s/syncd.log" "$SYNCD" -f "$work/servers/$s/syncd.conf"
done
for id in $TERMS; do
	start "upgrid-agent@$id" "$(tdir "$id")/agent.log" "$UPGRID" agent -C "$(tdir "$id")/terminal.conf"
done
show "$SYNCD" -f "$work/servers/e1/syncd.conf" "&" "# one per server: long-polls its upstream"
show "$UPGRID" agent -C "$(tdir meter-1)/terminal.conf" "&" "# one per terminal: long-polls its server"
# let the agents settle on their long-poll
sleep 1

# ------------------------------------------------------------- version 2
say "the operator edits the master tree: new binary, config structure, CSV column"
t0=$(now_ms)
# the tree becomes contrib/sample/v2: files v2 lacks go, the rest is copied
(cd "$M/tree" && find . ! -type d | while read -r f; do
	[ -e "$sample/v2/$f" ] || rm -f "$f"
done)
cp -a "$sample/v2/." "$M/tree/"
echo "  bin/meter-agent   a new build ($(stat -c %s "$sample/v1/bin/meter-agent") -> $(stat -c %s "$sample/v2/bin/meter-agent") bytes)"
echo "  etc/meter.ini     poll_interval 60 -> 30, a new section [power]"
echo "  data/tariffs.csv  a new column: currency"
echo "  share/doc         README renamed, OLD-NOTES removed, CHANGES added"

say "the flow, as it happens (seconds since the edit)"
# event NAME TEXT
event() {
	ev_ms=$(($(now_ms) - t0))
	printf '  %7s  %-8s %s\n' "$(printf '+%d.%02ds' $((ev_ms / 1000)) $((ev_ms % 1000 / 10)))" "$1" "$2"
}
# term_done ID VERSION: the terminal installed VERSION and recorded it
term_done() {
	[ -d "$(tdir "$1")/state/versions/$2" ] || return 1
	"$UPGRID" status -C "$(tdir "$1")/terminal.conf" --json >"$(tdir "$1")/status.json" 2>/dev/null ||
		return 1
	[ "$(jq -r '"\(.installed) \(.last.installed) \(.last.result)"' "$(tdir "$1")/status.json")" = "$2 $2 ok" ]
}
term_line() {
	jq -r '"\(.last.server) \(.last.bytes) \(.last.full_bytes)"' "$(tdir "$1")/status.json" | {
		read -r tl_srv tl_b tl_f
		echo "installed version $2 from $tl_srv: $(human "$tl_b") pulled (full $(human "$tl_f"))"
	}
}
# reports_on VERSION: how many terminals the master's reports show on it
reports_on() {
	"$UPGRID" -R "$M/repo" fleet --json >"$M/fleet.json" 2>/dev/null || {
		echo 0
		return 0
	}
	jq --argjson v "$1" '[.versions[] | select(.version == $v) | .terminals] | add // 0' "$M/fleet.json"
}
# flow VERSION SECONDS: print each step until every terminal has VERSION
# (fail after SECONDS), then, unless in the short form, until the master
# has the reports of all of them (they travel up a hop per round of each
# server; give up on that after 30 s more)
flow() {
	fl_end=$(($(now_ms) + $2 * 1000))
	fl_master=0
	fl_servers=$SERVERS
	fl_terms=$TERMS
	fl_reports=0
	fl_tick=0
	while :; do
		if [ "$fl_master" = 0 ] && ref_at "$M/repo" "$1"; then
			event master "published version $1: $(watch_line "$1")"
			fl_master=1
		fi
		fl_left=""
		for s in $fl_servers; do
			if ref_at "$work/servers/$s/repo" "$1"; then
				event "$s" "$(server_line "$s" "$1")"
			else
				fl_left="$fl_left $s"
			fi
		done
		fl_servers=$fl_left
		fl_left=""
		for id in $fl_terms; do
			if term_done "$id" "$1"; then
				event "$id" "$(term_line "$id" "$1")"
				# from now on, its report travels up
				[ -n "$fl_left$fl_terms" ] || fl_end=$(($(now_ms) + 30000))
			else
				fl_left="$fl_left $id"
			fi
		done
		fl_terms=$fl_left
		fl_tick=$((fl_tick + 1))
		if [ "$check" != 1 ] && [ $((fl_tick % 5)) -eq 0 ]; then
			fl_n=$(reports_on "$1")
			if [ "$fl_n" -ne "$fl_reports" ]; then
				fl_reports=$fl_n
				event master "has the reports of $fl_n of 6 terminals on version $1"
			fi
		fi
		if [ "$fl_master" = 1 ] && [ -z "$fl_servers$fl_terms" ]; then
			[ "$check" != 1 ] && [ "$fl_reports" -lt 6 ] || return 0
		fi
		if [ "$(now_ms)" -ge "$fl_end" ]; then
			if [ "$fl_master" = 1 ] && [ -z "$fl_servers$fl_terms" ]; then
				event master "some reports have not arrived yet"
				return 0
			fi
			echo "demo: after $2 s, still waiting for:$fl_servers$fl_terms" >&2
			for s in $fl_servers; do
				echo "--- $s: servers/$s/syncd.log" >&2
				tail -5 "$work/servers/$s/syncd.log" >&2
			done
			for id in $fl_terms; do
				echo "--- $id: terminals/$id/agent.log" >&2
				tail -5 "$(tdir "$id")/agent.log" >&2
			done
			fail "version $1 did not reach every terminal in $2 s"
		fi
		sleep 0.1
	done
}
flow 2 60

if [ "$check" != 1 ]; then
	say "what version 2 changed"
	show "$UPGRID" -R "$M/repo" diff 1 2
	"$UPGRID" -R "$M/repo" diff 1 2 | indent
fi

# ------------------------------------------------------------- the table
say "each terminal now"
latest=$(cat "$M/repo/refs/stable")
table=$work/table.jsonl
: >"$table"
printf '  %-8s %-7s %-6s %10s %10s %6s  %-28s %s\n' terminal version server pulled \
	"full" share "local config edit" "data rows kept"
for id in $TERMS; do
	"$UPGRID" status -C "$(tdir "$id")/terminal.conf" --json >"$(tdir "$id")/status.json"
	ini="$(tdir "$id")/current/etc/meter.ini"
	csv="$(tdir "$id")/current/data/tariffs.csv"
	# the structural change arrived: the new section and the new value
	if grep -q '^\[power\]$' "$ini" && grep -q '^poll_interval = 30$' "$ini"; then
		upstream=true
	else
		upstream=false
	fi
	if [ "$id" = "$EDIT_TERM" ]; then
		if grep -q '^log_level = debug$' "$ini"; then edit=kept; else edit=lost; fi
		edit_text="$edit: log_level = debug"
	else
		edit=none
		edit_text="-"
	fi
	[ "$upstream" = true ] || edit_text="$edit_text; new [power] missing"
	csv_codes "$csv" >"$(tdir "$id")/rows.after"
	rows_before=$(wc -l <"$(tdir "$id")/rows.before")
	rows_after=$(wc -l <"$(tdir "$id")/rows.after")
	rows_kept=$(comm -12 "$(tdir "$id")/rows.before" "$(tdir "$id")/rows.after" | wc -l)
	rows_note=""
	[ "$id" != "$ROWS_TERM" ] || rows_note=" (1 local)"
	if [ "$(head -1 "$csv")" = "code,price,period,currency" ]; then
		new_column=true
		col_text="+ currency"
	else
		new_column=false
		col_text="no currency column"
	fi
	jq -c --arg edit "$edit" --argjson upstream "$upstream" --argjson latest "$latest" \
		--argjson rb "$rows_before" --argjson rk "$rows_kept" --argjson ra "$rows_after" \
		--argjson nc "$new_column" \
		'{terminal, version: .installed, latest: $latest, server: .last.server,
		  bytes: .last.bytes, full_bytes: .last.full_bytes, config_edit: $edit,
		  config_upstream: $upstream, rows_before: $rb, rows_kept: $rk,
		  rows_after: $ra, new_column: $nc}' "$(tdir "$id")/status.json" >>"$table"
	tail -1 "$table" | jq -r '"\(.terminal) \(.version) \(.server) \(.bytes) \(.full_bytes)"' | {
		read -r t_id t_v t_srv t_b t_f
		printf '  %-8s %-7s %-6s %10s %10s %5s%%  %-28s %s\n' "$t_id" "$t_v" "$t_srv" \
			"$(human "$t_b")" "$(human "$t_f")" \
			"$(awk -v b="$t_b" -v f="$t_f" 'BEGIN { printf "%.1f", f ? 100 * b / f : 0 }')" \
			"$edit_text" "$rows_kept of $rows_before$rows_note, $col_text"
	}
done
jq -rs '"\(map(.bytes) | add) \(map(.full_bytes) | add)"' "$table" | {
	read -r sum_b sum_f
	echo "  in all, $(human "$sum_b") pulled where full downloads would have been $(human "$sum_f")"
}
if [ -n "${UG_DEMO_TABLE:-}" ]; then
	cp "$table" "$UG_DEMO_TABLE"
fi

if [ "$check" != 1 ]; then
	say "what the master knows: the terminals' reports"
	show "$UPGRID" -R "$M/repo" fleet
	"$UPGRID" -R "$M/repo" fleet >"$M/fleet.txt" 2>&1 || true
	indent <"$M/fleet.txt"
fi

say "stopping what the demo started"
stop_procs
[ -z "$stop_bad" ] || fail "not every process exited cleanly on SIGTERM:$stop_bad (see $work)"
n_sshd=$(echo "$ug_sshd_running" | wc -w)
ug_sshd_cleanup
echo "  stopped upgrid-watch, 6 upgrid-syncd, 6 upgrid agent and $n_sshd sshd, by pid"
echo
echo "demo finished in $(( ($(now_ms) - demo_t0) / 1000 )) s"
