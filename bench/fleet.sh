#!/usr/bin/env bash
# fleet.sh - what a fleet's upgrade costs: N terminals (200), each its own
# `upgrid pull` process with its own settings, state and install root,
# upgrade from the old to the new release of the publishing benchmark
# through 2 groups of 4 group servers, against rsync and zstd.
#
# For each pair it builds the cluster of replicate.sh (a master and group
# servers, each a real OpenSSH sshd on 127.0.0.1 with the forced command
# `upgrid-syncd --serve`), plus a terminals' key whose forced command is
# `upgrid-syncd --serve --read-only` run under a small wrapper that logs
# the session's CPU time. The master publishes the old tree, the servers
# replicate it, and the terminals install it (a full install, from their
# seeds); then the master publishes the new tree, the servers replicate,
# and the terminals pull the upgrade (from the server the installed
# version's chain list gives them). Every terminal must end on the new
# version with a tree equal to it. Beside it: rsync -az and -acz of the
# same upgrade for a sample of terminals (bytes, the sender's CPU, stale
# files) and zstd -19 --long=31 --patch-from of the old tree's tar to the
# new one's. A missed target prints MISS and still exits 0; only
# something broken exits non-zero.
#
# See bench/README.md for the options and environment.

# functions called through trap look unreachable to shellcheck
# shellcheck disable=SC2317
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# id | npm package | old | new | what it is (the pairs of publish.sh)
PAIRS=(
	"A|prettier|3.9.9|3.10.0|a JS tree"
	"B|@biomejs/cli-linux-x64|2.6.7|2.6.8|a native binary"
)
# targets from the issue: bytes per terminal (manifest included) against
# zstd --patch-from of the tars and against rsync -acz; the servers' CPU
# per terminal upgrade against rsync's sender CPU per client
TARGET_PATCH=1.2
TARGET_RSYNC=0.1
TARGET_CPU=0.1

only=""
nterm=200
parallel=16
sample=5
ngroups=2
chain=4
keep=0

usage() {
	cat <<EOF
usage: bench/fleet.sh [--pair A|B] [--terminals N] [--parallel N] [--sample N]
                      [--groups N] [--chain N] [--keep] [-h]

Fleet benchmark: N terminals, each its own 'upgrid pull' process, install
the old release and then pull the upgrade to the new one from group
servers on loopback sshds; rsync -az / -acz and zstd --patch-from of the
same upgrade beside it. Prints a markdown report on stdout and progress
on stderr.

  --pair ID        run only pair ID (A or prettier, B or biome)
  --terminals N    terminals (default 200)
  --parallel N     pulls running at once (default 16)
  --sample N       terminals whose upgrade rsync repeats (default 5)
  --groups N       groups in the cluster file (default 2)
  --chain N        servers per group (default 4; at most 16 servers in all)
  --keep           keep the scratch directory (repos, terminals, logs)
  -h, --help       show this help

Environment: UPGRID and UPGRID_SYNCD (binaries; UPGRID_SYNCD defaults to
upgrid-syncd next to UPGRID), UG_BUILDDIR (a build directory; default:
build into bench/.build), UG_BENCH_CACHE (npm tarball cache; default:
bench/.cache), TMPDIR.
EOF
}

count_arg() { # NAME VALUE MAX: a count from 1 to MAX, or stop
	case $2 in '' | *[!0-9]*) echo "bench: $1 takes a count from 1 to $3" >&2; exit 2 ;; esac
	if [ "$2" -lt 1 ] || [ "$2" -gt "$3" ]; then
		echo "bench: $1 takes a count from 1 to $3" >&2
		exit 2
	fi
}

while [ $# -gt 0 ]; do
	case $1 in
	--pair) only=${2:?--pair needs A or B}; shift 2 ;;
	--pair=*) only=${1#--pair=}; shift ;;
	--terminals) nterm=${2:?--terminals needs a count}; shift 2 ;;
	--terminals=*) nterm=${1#--terminals=}; shift ;;
	--parallel) parallel=${2:?--parallel needs a count}; shift 2 ;;
	--parallel=*) parallel=${1#--parallel=}; shift ;;
	--sample) sample=${2:?--sample needs a count}; shift 2 ;;
	--sample=*) sample=${1#--sample=}; shift ;;
	--groups) ngroups=${2:?--groups needs a count}; shift 2 ;;
	--groups=*) ngroups=${1#--groups=}; shift ;;
	--chain) chain=${2:?--chain needs a count}; shift 2 ;;
	--chain=*) chain=${1#--chain=}; shift ;;
	--keep) keep=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

case $only in
prettier) only=A ;;
biome) only=B ;;
'' | A | B) ;;
*) echo "bench: --pair takes A (prettier) or B (biome)" >&2; exit 2 ;;
esac
count_arg --terminals "$nterm" 9999
count_arg --parallel "$parallel" 256
count_arg --sample "$sample" "$nterm"
count_arg --groups "$ngroups" 16
count_arg --chain "$chain" 16
nservers=$((ngroups * chain))
# a terminal names every server as a seed, and takes at most 16
[ "$nservers" -le 16 ] || { echo "bench: at most 16 servers in all (--groups x --chain)" >&2; exit 2; }

# ---------------------------------------------------------------- tools

# command -> Debian package; installed when missing and we are root
# shellcheck disable=SC2034 # read by ensure_tools in lib.sh
declare -A TOOL_PKG=(
	[rsync]=rsync [sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client
	[npm]=npm [node]=nodejs [jq]=jq [tar]=tar [diff]=diffutils [zstd]=zstd
	[xargs]=findutils [setsid]=util-linux [cmp]=diffutils
)

# ---------------------------------------------------------------- processes

# The sshds (lib.sh) and the process group of a running batch of pulls are
# stopped by pid in the trap.
W=""
PULLS_PID=""

cleanup() {
	if [ -n "$PULLS_PID" ]; then
		# setsid made the batch's xargs the leader of its own group:
		# this reaches every pull it started, and nothing else
		kill -- "-$PULLS_PID" 2>/dev/null || true
		wait "$PULLS_PID" 2>/dev/null || true
	fi
	sshd_stop_all
	if [ -n "$W" ]; then
		if [ "$keep" = 1 ]; then log "kept the scratch directory '$W'"; else rm -rf "$W"; fi
	fi
}

# The session CPU meter: `cpuwrap TAG COMMAND...` runs COMMAND as its
# child and then appends "TAG STATUS START END USER SYS" to
# $W/cpu/PHASE.log, PHASE being what $W/phase says when it starts. USER
# and SYS are bash's `times` for its children (millisecond resolution):
# COMMAND and everything it waited for, not the wrapper itself. Tags:
# gGsI for a terminal's session on that server and up:N for a follower's
# session on N (sshd's forced commands, cluster_up), once:N for N's
# replication round (chain_rounds), term:tNNN for a terminal's pull,
# rsync-MODE for rsync's sender (--rsync-path).
write_cpuwrap() {
	mkdir -p "$W/cpu"
	echo setup >"$W/phase"
	cat >"$W/cpuwrap" <<EOF
#!/bin/bash
tag=\$1
shift
ph=\$(<"$W/phase")
t0=\$EPOCHREALTIME
"\$@"
rc=\$?
t1=\$EPOCHREALTIME
times >"$W/cpu/.times.\$\$"
{ read -r _; read -r cu cs; } <"$W/cpu/.times.\$\$"
printf '%s %s %s %s %s %s\n' "\$tag" "\$rc" "\$t0" "\$t1" "\$cu" "\$cs" >>"$W/cpu/\$ph.log"
rm -f "$W/cpu/.times.\$\$"
exit "\$rc"
EOF
	chmod 0755 "$W/cpuwrap"
	# one terminal's pull, for xargs: TERMINAL_DIR
	cat >"$W/pull1" <<EOF
#!/bin/bash
exec "$W/cpuwrap" "term:\${1##*/}" "$UPGRID" pull -C "\$1/terminal.conf" >>"\$1/pull.log" 2>&1
EOF
	chmod 0755 "$W/pull1"
}

set_phase() { echo "$1" >"$W/phase"; }

# cpu_sum LOG TAG_ERE: "RUNS USER+SYS" over the lines of LOG whose tag
# matches TAG_ERE ("0 0" when none)
cpu_sum() {
	[ -f "$1" ] || { echo "0 0"; return 0; }
	awk -v re="$2" '
		function s(t) { sub(/s$/, "", t); split(t, a, "m"); return a[1] * 60 + a[2] }
		$1 ~ re { n++; c += s($5) + s($6) }
		END { printf "%d %.3f\n", n, c }' "$1"
}
SRV_ERE='^g[0-9]+s[0-9]+$'

# sessions_drain NAME...: wait until the sshds NAME have no session left
# (a listening sshd's children are its sessions), so that every session's
# CPU line is written; 60 s at most.
sessions_drain() {
	local n pid busy
	for _ in $(seq 600); do
		busy=0
		for n in "$@"; do
			pid=${SSHD_PID[$n]:-}
			[ -n "$pid" ] || continue
			if [ -n "$(cat "/proc/$pid/task/$pid/children" 2>/dev/null)" ]; then busy=1; break; fi
		done
		[ "$busy" = 1 ] || return 0
		sleep 0.1
	done
	log "sessions of $* still open after 60 s; their CPU is not counted"
}

# ---------------------------------------------------------------- replication

# replicate_phase id PH: chain_rounds under the CPU meter: the rounds
# (once:N) and the sessions that served them (up:N)
replicate_phase() {
	local id=$1 ph=$2
	set_phase "$id.repl$ph"
	CHAIN_WRAP=$W/cpuwrap chain_rounds "$id" "$W/$id" "$ph" "$ngroups" "$chain" "$W/key.pub"
	sessions_drain "$id-master" "${SERVERS[@]/#/$id-}"
	set_phase "$id.idle"
	read -r _ "R[$id.$ph.repl_once_cpu]" < <(cpu_sum "$W/cpu/$id.repl$ph.log" '^once:')
	read -r _ "R[$id.$ph.repl_up_cpu]" < <(cpu_sum "$W/cpu/$id.repl$ph.log" '^up:')
	R[$id.$ph.repl_cpu]=$(awk -v a="${R[$id.$ph.repl_once_cpu]}" -v b="${R[$id.$ph.repl_up_cpu]}" 'BEGIN { printf "%.3f", a + b }')
}

# ---------------------------------------------------------------- terminals

declare -A R # results, "ID.key"

term_dir() { printf '%s/%s/t/t%03d' "$W" "$1" "$2"; }

# N terminals for pair id: terminal i names every server as a seed,
# starting at server i mod N (the chain list takes over after the first
# install; the rotation only spreads the first install)
make_terminals() {
	local id=$1 d=$W/$1 i k s td
	local -a srv
	mapfile -t srv < <(chain_order "$ngroups" "$chain")
	for i in $(seq "$nterm"); do
		td=$(term_dir "$id" "$i")
		mkdir -p "$td"
		{
			echo "[terminal]"
			printf 'id = term-%03d\n' "$i"
			for k in $(seq 0 $((nservers - 1))); do
				s=${srv[$(((i + k) % nservers))]}
				echo "seed = $USER_NAME@127.0.0.1:${SSHD_PORT[$id-$s]} $d/$s"
			done
			echo "master-key = $W/key.pub"
			echo "identity = $SSH_DIR/term_key"
			echo "known-hosts = $SSH_DIR/known_hosts"
			echo "root = $td/current"
			echo "state = $td/state"
			echo "splay = 0"
		} >"$td/terminal.conf"
	done
}

# pulls id PH DIR...: `upgrid pull` of the terminals, $parallel at once
pulls() {
	local id=$1 ph=$2 rc=0
	shift 2
	set_phase "$id.pull$ph"
	printf '%s\n' "$@" | setsid xargs -P "$parallel" -n 1 "$W/pull1" &
	PULLS_PID=$!
	wait "$PULLS_PID" || rc=$?
	PULLS_PID=""
	sessions_drain "$id-master" "${SERVERS[@]/#/$id-}"
	set_phase "$id.idle"
	# 123: some pull exited non-zero (each is checked by its status)
	[ "$rc" = 0 ] || [ "$rc" = 123 ] || die "$id: xargs of the pulls failed (status $rc)"
}

# collect_status id PH: every terminal's `upgrid status --json` into its dir, and
# one TSV line per terminal into $W/id/term.PH.tsv: dir, installed,
# result, last.bytes, last.full_bytes, last.server, last.duration_ms,
# bytes_total
collect_status() {
	local id=$1 ph=$2 i td srv
	for i in $(seq "$nterm"); do
		td=$(term_dir "$id" "$i")
		"$UPGRID" status -C "$td/terminal.conf" --json >"$td/status.$ph.json" ||
			die "$id: upgrid status of '$td' failed"
		srv=$(jq -r .last.server "$td/status.$ph.json")
		# seeds are named seedK, K the line in the settings: the server
		# is the last part of its repo path
		case $srv in
		seed[0-9]*)
			srv=$(sed -n 's/^seed = .* //p' "$td/terminal.conf" | sed -n "${srv#seed}p")
			srv=${srv##*/}
			;;
		esac
		jq -r --arg d "$td" --arg s "$srv" '[$d, .installed, .last.result, .last.bytes,
			.last.full_bytes, $s, .last.duration_ms, .bytes_total] | @tsv' "$td/status.$ph.json"
	done >"$W/$id/term.$ph.tsv"
}

# Terminals of the last collect_status not on version PH, one dir a line.
behind() { awk -F'\t' -v v="$2" '$2 != v { print $1 }' "$W/$1/term.$2.tsv"; }

# pull_phase id PH: the pulls of every terminal to version PH, then up to
# two more rounds for those that did not get there (a terminal retries at
# its next poll), recorded as retries; their wall time, without the status
# collection in between, in R[id.PH.all_wall]. Stops if any is still
# behind.
pull_phase() {
	local id=$1 ph=$2 t0 round td
	local -a all left
	mapfile -t all < <(for i in $(seq "$nterm"); do term_dir "$id" "$i"; echo; done)
	stats_snap "$W/$id" "before$ph" master "${SERVERS[@]}"
	log "$id: $nterm terminals pull version $ph, $parallel at a time"
	t0=$(now)
	pulls "$id" "$ph" "${all[@]}"
	R[$id.$ph.all_wall]=$(secs "$t0" "$(now)")
	collect_status "$id" "$ph"
	R[$id.$ph.retries]=0
	for round in 1 2; do
		mapfile -t left < <(behind "$id" "$ph")
		[ ${#left[@]} -gt 0 ] || break
		log "$id: ${#left[@]} terminals are not on version $ph; pulling again (round $round)"
		R[$id.$ph.retries]=$((${R[$id.$ph.retries]} + ${#left[@]}))
		t0=$(now)
		pulls "$id" "$ph" "${left[@]}"
		R[$id.$ph.all_wall]=$(awk -v a="${R[$id.$ph.all_wall]}" -v b="$(secs "$t0" "$(now)")" 'BEGIN { printf "%.2f", a + b }')
		collect_status "$id" "$ph"
	done
	stats_snap "$W/$id" "after$ph" master "${SERVERS[@]}"
	mapfile -t left < <(behind "$id" "$ph")
	if [ ${#left[@]} -gt 0 ]; then
		for td in "${left[@]:0:3}"; do
			echo "--- $td/pull.log" >&2
			tail -5 "$td/pull.log" >&2
		done
		die "$id: ${#left[@]} terminals are not on version $ph after 3 pulls"
	fi
	log "$id: all $nterm terminals on version $ph in ${R[$id.$ph.all_wall]} s"
}

# check_trees id PH TREE: every terminal's root is its versions/PH and
# equals TREE
check_trees() {
	local id=$1 ph=$2 tree=$3 i td
	log "$id: comparing the $nterm installed trees with version $ph (diff -r)"
	for i in $(seq "$nterm"); do
		td=$(term_dir "$id" "$i")
		[ "$(readlink "$td/current")" = "$td/state/versions/$ph" ] ||
			die "$id: '$td/current' does not point to version $ph"
		diff -r "$tree" "$td/current/" >/dev/null ||
			die "$id: the tree installed in '$td' differs from version $ph"
	done
}

# ---------------------------------------------------------------- numbers

# dist FILE: "median max min mean" of the numbers in FILE, one a line
dist() {
	sort -n "$1" | awk '{ v[NR] = $1; s += $1 }
		END { if (NR == 0) { print "n/a n/a n/a n/a"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%s %s %s %.1f\n", m, v[NR], v[1], s / NR }'
}

# per-terminal figures of phase PH into R[id.PH.KEY.{med,max,min,mean}]:
# bytes (bytes_total difference over the phase: every attempt counts),
# last (last.bytes), full (last.full_bytes), ms (last.duration_ms)
term_figures() {
	local id=$1 ph=$2 prev=$3 d=$W/$1 k col
	if [ -n "$prev" ]; then
		join -t $'\t' <(cut -f1,8 "$d/term.$prev.tsv" | sort) <(cut -f1,8 "$d/term.$ph.tsv" | sort) |
			awk -F'\t' '{ print $3 - $2 }' >"$d/fig.$ph.bytes"
	else
		cut -f8 "$d/term.$ph.tsv" >"$d/fig.$ph.bytes"
	fi
	cut -f4 "$d/term.$ph.tsv" >"$d/fig.$ph.last"
	cut -f5 "$d/term.$ph.tsv" >"$d/fig.$ph.full"
	cut -f7 "$d/term.$ph.tsv" >"$d/fig.$ph.ms"
	for k in bytes last full ms; do
		read -r "R[$id.$ph.$k.med]" "R[$id.$ph.$k.max]" "R[$id.$ph.$k.min]" "R[$id.$ph.$k.mean]" < <(dist "$d/fig.$ph.$k")
	done
	# terminals per server they installed from
	cut -f6 "$d/term.$ph.tsv" | sort | uniq -c | awk '{ print $2, $1 }' >"$d/fig.$ph.servers"
	# the servers' side: sessions and bytes both ways, per server
	for k in "${SERVERS[@]}" master; do
		stats_diff "$d/stats/before$ph.$k.json" "$d/stats/after$ph.$k.json" >"$d/stats/diff$ph.$k" ||
			die "$id: cannot read the counters of '$k'"
		for col in sessions bytes_in bytes_out; do
			R[$id.$ph.srv.$k.$col]=$(awk -v c="$col" '$1 == c { print $2 }' "$d/stats/diff$ph.$k")
		done
	done
	# CPU of the servers' terminal sessions and of the pulls
	read -r "R[$id.$ph.srv_sessions]" "R[$id.$ph.srv_cpu]" < <(cpu_sum "$W/cpu/$id.pull$ph.log" "$SRV_ERE")
	read -r "R[$id.$ph.term_runs]" "R[$id.$ph.term_cpu]" < <(cpu_sum "$W/cpu/$id.pull$ph.log" '^term:')
	# pulls whose exit status was not 0, whatever the terminal ended on
	R[$id.$ph.term_failed]=$(awk '$1 ~ /^term:/ && $2 != 0 { n++ } END { print n + 0 }' "$W/cpu/$id.pull$ph.log")
	for k in "${SERVERS[@]}"; do
		read -r "R[$id.$ph.cpu.$k.n]" "R[$id.$ph.cpu.$k.s]" < <(cpu_sum "$W/cpu/$id.pull$ph.log" "^$k\$")
	done
	col=0
	for k in "${SERVERS[@]}"; do col=$((col + ${R[$id.$ph.srv.$k.bytes_in]} + ${R[$id.$ph.srv.$k.bytes_out]})); done
	R[$id.$ph.srv_bytes]=$col
}

# ---------------------------------------------------------------- rsync, zstd

# rsync_sample id: for the first $sample terminals' worth of copies of the
# old tree, rsync -az --delete and rsync -acz --delete of the new tree from
# the rsync sshd (the remote side is the sender, under cpuwrap): bytes
# sent + received from --stats, the sender's CPU, and the files left
# different from the new tree.
rsync_sample() {
	local id=$1 d=$W/$1 mode k dst st sent recv stale rs
	rs=$(command -v rsync)
	mkdir -p "$d/rsync"
	for mode in az acz; do
		: >"$d/rsync/$mode.bytes"
		: >"$d/rsync/$mode.cpu"
		: >"$d/rsync/$mode.stale"
		for k in $(seq "$sample"); do
			dst=$d/rsync/$mode.$k
			cp -a "$d/tree1" "$dst"
			st=$d/rsync/$mode.$k.stats
			set_phase "$id.rsync-$mode-$k"
			rsync "-$mode" --delete --stats --debug=NSTR --rsync-path="$W/cpuwrap rsync-$mode $rs" \
				-e "$(ssh_cmd rsync)" "$USER_NAME@127.0.0.1:$d/tree2/" "$dst/" >"$st" 2>"$st.err" ||
				{ cat "$st.err" >&2; die "$id: rsync -$mode failed (copy $k)"; }
			sessions_drain rsync
			set_phase "$id.idle"
			sent=$(awk -F': ' '/^Total bytes sent/ { gsub(/,/, "", $2); print $2 }' "$st")
			recv=$(awk -F': ' '/^Total bytes received/ { gsub(/,/, "", $2); print $2 }' "$st")
			if [ -z "$sent" ] || [ -z "$recv" ]; then die "$id: no byte counts in rsync --stats ('$st')"; fi
			echo $((sent + recv)) >>"$d/rsync/$mode.bytes"
			cpu_sum "$W/cpu/$id.rsync-$mode-$k.log" '^rsync-' | awk '{ print $2 }' >>"$d/rsync/$mode.cpu"
			# files whose content is not the new version's (or that
			# exist on one side only)
			diff -rq "$d/tree2" "$dst" >"$d/rsync/$mode.$k.diff" || true
			stale=$(wc -l <"$d/rsync/$mode.$k.diff")
			echo "$stale" >>"$d/rsync/$mode.stale"
			rm -rf "$dst"
		done
		read -r "R[$id.rs_$mode.med]" "R[$id.rs_$mode.max]" _ _ < <(dist "$d/rsync/$mode.bytes")
		read -r "R[$id.rs_$mode.cpu]" "R[$id.rs_$mode.cpu_max]" _ _ < <(dist "$d/rsync/$mode.cpu")
		read -r "R[$id.rs_$mode.stale]" "R[$id.rs_$mode.stale_max]" _ _ < <(dist "$d/rsync/$mode.stale")
		# which files, as the first copy's diff names them
		R[$id.rs_$mode.stale_names]=$(sed -E -e "s|^Files $d/tree2/(.*) and .* differ\$|\1|" \
			-e "s|^Only in $d/tree2/?(.*): (.*)|\1/\2 (missing)|" -e "s|^Only in $d/rsync/[^:]*: (.*)|\1 (extra)|" \
			"$d/rsync/$mode.1.diff" | head -5 | paste -sd, - | sed 's/,/, /g')
		log "$id: rsync -$mode: ${R[$id.rs_$mode.med]} bytes, sender ${R[$id.rs_$mode.cpu]} s CPU, ${R[$id.rs_$mode.stale]} files stale (median of $sample)"
	done
	R[$id.rsync_compress]=$(sed -n 's/^Client negotiated compress: //p' "$d/rsync/az.1.stats" | head -1)
}

# zstd -19 --long=31 --patch-from of the old tree's tar to the new one's
# (as publish.sh), checked to decode back
zstd_patch() {
	local id=$1 d=$W/$1/tar
	mkdir -p "$d"
	det_tar "$W/$id/tree1" "$d/old.tar"
	det_tar "$W/$id/tree2" "$d/new.tar"
	log "$id: zstd -19 --long=31 --patch-from=old.tar new.tar"
	zstd -q -f -19 --long=31 --patch-from="$d/old.tar" "$d/new.tar" -o "$d/patch.zst" 2>"$d/patch.err" ||
		{ cat "$d/patch.err" >&2; die "$id: zstd --patch-from of the tars failed"; }
	zstd -q -d -f --long=31 --memory=2048MB --patch-from="$d/old.tar" "$d/patch.zst" -o "$d/check.tar" 2>"$d/check.err" ||
		{ cat "$d/check.err" >&2; die "$id: zstd cannot decode its patch"; }
	cmp -s "$d/check.tar" "$d/new.tar" || die "$id: whole-tree patch does not decode to new.tar"
	R[$id.patch]=$(stat -c %s "$d/patch.zst")
	rm -f "$d/check.tar" "$d/old.tar" "$d/new.tar"
}

# ---------------------------------------------------------------- one pair

# Disk the terminals need: each keeps both trees (few files of these
# pairs are unchanged, so hard links save little) and, during a pull, its
# downloads; stop early rather than fill the disk half way.
check_space() {
	local id=$1 need avail
	need=$(((${R[$id.old_bytes]} + ${R[$id.new_bytes]}) * 5 * nterm / 4096 + 1048576))
	avail=$(df -Pk "$W" | awk 'NR == 2 { print $4 }')
	[ "$avail" -ge "$need" ] ||
		die "$id: $nterm terminals need about $((need / 1048576)) GiB in '$W', $((avail / 1048576)) GiB free (TMPDIR or --terminals)"
}

run_pair() {
	local id=$1 d=$W/$1 t0
	check_space "$id"
	R[$id.load_start]=$(cut -d' ' -f1-3 /proc/loadavg)
	mkdir -p "$d/logs" "$d/stats"
	cluster_up "$id" "$d" "$ngroups" "$chain" "$W/key.pub" "$SSH_DIR/term_key.pub" "$W/cpuwrap"
	R[$id.config]=$(grep -E '^(level|window|threads|keep-deltas) *=' "$d/master/config" | tr -s ' ' | paste -sd';' | sed 's/;/; /g')
	make_terminals "$id"

	# version 1: publish, replicate, full install on every terminal
	log "$id: publish version 1"
	publish_tree "$id" "$d/master" "$W/key" 1 "$d/tree1" "$d/pub1.json"
	replicate_phase "$id" 1
	pull_phase "$id" 1
	term_figures "$id" 1 ""

	# version 2: the upgrade, timed from the publish to the last terminal
	log "$id: publish version 2"
	t0=$(now)
	publish_tree "$id" "$d/master" "$W/key" 2 "$d/tree2" "$d/pub2.json"
	R[$id.pub_wall]=$(secs "$t0" "$(now)")
	R[$id.pub_best]=$(jq -r '.pairs[] | select(.from == 1) | .best_bytes' "$d/pub2.json")
	R[$id.pub_full]=$(jq -r .full_bytes "$d/pub2.json")
	replicate_phase "$id" 2
	pull_phase "$id" 2
	R[$id.total_wall]=$(secs "$t0" "$(now)")
	term_figures "$id" 2 1
	check_trees "$id" 2 "$d/tree2"

	R[$id.load_end]=$(cut -d' ' -f1-3 /proc/loadavg)
	rsync_sample "$id"
	zstd_patch "$id"
	cluster_down "$id" "$ngroups" "$chain"
	# the terminals' trees are the bulk of the disk used
	[ "$keep" = 1 ] || rm -rf "$d/t"
}

# ---------------------------------------------------------------- main

ensure_tools
find_sshd
# the source the binaries were built from, before a rebuild could race a commit
rev=$(git -C "$SRC_DIR" describe --always --dirty 2>/dev/null || true)
find_upgrid upgrid upgrid-syncd
find_syncd
W=$(mktemp -d "${TMPDIR:-/tmp}/ug-bench-fleet.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
ssh_setup
# the fleet's key, as contrib/authorized_keys.sample shares one
ssh-keygen -q -t ed25519 -N '' -C bench-terminals -f "$SSH_DIR/term_key"
write_cpuwrap
sshd_start rsync ""
"$UPGRID" keygen -f "$W/key" >/dev/null || die "upgrid keygen failed"
mapfile -t SERVERS < <(cluster_servers "$ngroups" "$chain")

ids=()
declare -A LABEL
t_start=$(date +%s)
for p in "${PAIRS[@]}"; do
	IFS='|' read -r id name old new what <<<"$p"
	[ -z "$only" ] || [ "$only" = "$id" ] || continue
	prepare_pair "$id" "$name" "$old" "$new" "$what" "$W/$id/tree1" "$W/$id/tree2"
	R[$id.old_files]=$(find "$W/$id/tree1" -type f | wc -l)
	run_pair "$id"
	ids+=("$id")
done
[ ${#ids[@]} -gt 0 ] || die "no pair selected (--pair takes A or B)"
elapsed=$(($(date +%s) - t_start))

# ---------------------------------------------------------------- report

get() { local v=${R[$1]:-}; if [ -n "$v" ]; then echo "$v"; else echo "n/a"; fi; }
b() { local v; v=$(get "$1"); if [ "$v" = n/a ]; then echo "n/a"; else commas "$v"; fi; }
rv() { # ratio with its verdict
	local r; r=$(ratio "$1" "$2")
	if [ "$r" = n/a ]; then echo n/a; else echo "$r $(verdict "$r" "$3")"; fi
}
per() { awk -v a="$1" -v n="$2" 'BEGIN { if (a == "n/a" || n <= 0) print "n/a"; else printf "%.4f", a / n }'; }
per_sum() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (a == "n/a" || b == "n/a" || n <= 0) print "n/a"; else printf "%.4f", (a + b) / n }'; }
ms_s() { awk -v a="$1" 'BEGIN { if (a == "n/a") print a; else printf "%.2f", a / 1000 }'; }

echo "## upgrid fleet benchmark"
echo
cmdline="bench/fleet.sh"
[ -z "$only" ] || cmdline+=" --pair $only"
[ "$nterm" = 200 ] || cmdline+=" --terminals $nterm"
[ "$parallel" = 16 ] || cmdline+=" --parallel $parallel"
[ "$sample" = 5 ] || cmdline+=" --sample $sample"
[ "$ngroups" = 2 ] || cmdline+=" --groups $ngroups"
[ "$chain" = 4 ] || cmdline+=" --chain $chain"
echo "Command: \`$cmdline\`"
echo "Run took ${elapsed} s on $(date -u +%Y-%m-%d)."
echo
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')."
echo "Tools: rsync $(rsync --version | head -1 | awk '{ print $3 }') (-z negotiated $(get "${ids[0]}.rsync_compress")), $(ssh -V 2>&1 | cut -d, -f1), $(zstd --version | sed 's/.*v\([0-9.]*\).*/zstd \1/'), $("$UPGRID" --version 2>/dev/null | head -1 || echo 'upgrid ?'), $("$UPGRID_SYNCD" --version 2>/dev/null | head -1 || echo 'upgrid-syncd ?')."
echo "upgrid repo config: ${R[${ids[0]}.config]}."
[ -z "$rev" ] || echo "upgrid source: $rev at the start of the run (binaries '$UPGRID', '$UPGRID_SYNCD')."
echo
echo "Topology: a master and $nservers group servers in $ngroups groups of $chain, each"
echo "server a real OpenSSH sshd on 127.0.0.1; the terminals' key (one for the"
echo "fleet) has the forced command \`upgrid-syncd --serve --read-only\` under a"
echo "wrapper that logs each session's CPU. $nterm terminals, each its own"
echo "\`upgrid pull -C terminal.conf\` process with its own state and install"
echo "root, $parallel at a time (xargs -P). Every server is a seed of every terminal,"
echo "rotated so the first install spreads; the upgrade goes where the"
echo "installed version's chain list sends each terminal (rendezvous hashing)."
echo "After the upgrade every terminal's root was its version 2 and equal to"
echo "the new tree (\`diff -r\`)."
echo
for id in "${ids[@]}"; do
	n=$nterm
	echo "### ${LABEL[$id]}"
	echo
	echo "Trees: $(b "$id.old_bytes") B in ${R[$id.old_files]} files → $(b "$id.new_bytes") B in ${R[$id.new_files]} files. \`publish --json\` for version 2: best_bytes $(b "$id.pub_best"), full download $(b "$id.pub_full")."
	echo
	echo "| per terminal | median | max | min |"
	echo "|---|---:|---:|---:|"
	echo "| v1 full install: bytes pulled | $(b "$id.1.bytes.med") | $(b "$id.1.bytes.max") | $(b "$id.1.bytes.min") |"
	echo "| v2 upgrade: bytes pulled (manifest included) | **$(b "$id.2.bytes.med")** | $(b "$id.2.bytes.max") | $(b "$id.2.bytes.min") |"
	echo "| v2 upgrade: full_bytes (the changed files' objects) | $(b "$id.2.full.med") | $(b "$id.2.full.max") | $(b "$id.2.full.min") |"
	echo "| v2 upgrade: pull duration (s) | $(ms_s "$(get "$id.2.ms.med")") | $(ms_s "$(get "$id.2.ms.max")") | $(ms_s "$(get "$id.2.ms.min")") |"
	echo "| rsync -az --delete of the upgrade (sent + received, $sample terminals) | $(b "$id.rs_az.med") | $(b "$id.rs_az.max") | |"
	echo "| rsync -acz --delete of the upgrade (sent + received, $sample terminals) | $(b "$id.rs_acz.med") | $(b "$id.rs_acz.max") | |"
	echo "| files rsync -az left stale (content ≠ new tree) | $(get "$id.rs_az.stale") of ${R[$id.new_files]} | $(get "$id.rs_az.stale_max") | |"
	[ -z "${R[$id.rs_az.stale_names]:-}" ] || echo "|   which: ${R[$id.rs_az.stale_names]} | | | |"
	echo "| files rsync -acz left stale | $(get "$id.rs_acz.stale") | $(get "$id.rs_acz.stale_max") | |"
	echo "| zstd -19 --long=31 --patch-from old.tar new.tar | $(b "$id.patch") | | |"
	echo
	srv_cpu=$(per "$(get "$id.2.srv_cpu")" "$n")
	echo "| CPU | seconds |"
	echo "|---|---:|"
	echo "| servers, per terminal upgrade (${R[$id.2.srv_sessions]} sessions, $(get "$id.2.srv_cpu") s in all / $n) | $srv_cpu |"
	echo "| servers, per terminal full install (${R[$id.1.srv_sessions]} sessions, $(get "$id.1.srv_cpu") s in all / $n) | $(per "$(get "$id.1.srv_cpu")" "$n") |"
	echo "| rsync -az sender, per client (median of $sample) | $(get "$id.rs_az.cpu") |"
	echo "| rsync -acz sender, per client (median of $sample) | $(get "$id.rs_acz.cpu") |"
	echo "| terminal, per upgrade (\`upgrid pull\`, mean of $n) | $(per "$(get "$id.2.term_cpu")" "${R[$id.2.term_runs]}") |"
	echo "| replication of v2 to the $nservers servers: their rounds + the sessions serving them | $(get "$id.2.repl_once_cpu") + $(get "$id.2.repl_up_cpu") = $(get "$id.2.repl_cpu") |"
	echo "| servers, per terminal upgrade with that replication spread over the $n terminals | $(per_sum "$(get "$id.2.srv_cpu")" "$(get "$id.2.repl_cpu")" "$n") |"
	echo
	echo "Load average (1, 5, 15 min) when the pair started: $(get "$id.load_start"); after the upgrade: $(get "$id.load_end")."
	echo
	echo "Time until all $n terminals were on version 2: $(get "$id.total_wall") s = publish $(get "$id.pub_wall") s + replication to $nservers servers $(get "$id.2.ug_wall") s + the pulls $(get "$id.2.all_wall") s ($parallel at a time). The full install of version 1 took $(get "$id.1.all_wall") s. Pulls repeated because a terminal was not on the version after its pull: $(get "$id.1.retries") (v1), $(get "$id.2.retries") (v2). Pulls that exited with a status other than 0: $(get "$id.1.term_failed") (v1), $(get "$id.2.term_failed") (v2)."
	echo
	total=0
	for s in "${SERVERS[@]}"; do total=$((total + ${R[$id.2.srv.$s.sessions]:-0})); done
	max=0; maxs=""
	for s in "${SERVERS[@]}"; do
		if [ "${R[$id.2.srv.$s.sessions]:-0}" -gt "$max" ]; then max=${R[$id.2.srv.$s.sessions]}; maxs=$s; fi
	done
	R[$id.share]=$(awk -v a="$max" -v t="$total" 'BEGIN { if (t <= 0) print "n/a"; else printf "%.1f %%", 100 * a / t }')
	R[$id.share_mean]=$(awk -v a="$max" -v t="$total" -v n="$nservers" 'BEGIN { if (t <= 0) print "n/a"; else printf "%.2f", a * n / t }')
	echo "Load of the upgrade: the most loaded server, $maxs, served $max of $total sessions, ${R[$id.share]} ($(get "$id.share_mean") × the mean of $nservers servers). The master served $(get "$id.2.srv.master.sessions") terminal sessions."
	echo
	echo "| server | v1: terminals installed from it | v1: sessions | v2: terminals | v2: sessions | v2: bytes in + out | v2: CPU (s) |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for s in "${SERVERS[@]}"; do
		t1=$(awk -v s="$s" '$1 == s { print $2 }' "$W/$id/fig.1.servers" 2>/dev/null || true)
		t2=$(awk -v s="$s" '$1 == s { print $2 }' "$W/$id/fig.2.servers" 2>/dev/null || true)
		echo "| $s | ${t1:-0} | $(get "$id.1.srv.$s.sessions") | ${t2:-0} | $(get "$id.2.srv.$s.sessions") | $(commas $(( ${R[$id.2.srv.$s.bytes_in]:-0} + ${R[$id.2.srv.$s.bytes_out]:-0} ))) | $(get "$id.2.cpu.$s.s") |"
	done
	echo
	echo "The terminals counted $(b "$id.2.last.med") bytes (median of last.bytes) for the upgrade; the servers' counters, which also count each terminal's status report, $(commas "$(( ${R[$id.2.srv_bytes]} / n ))") per terminal ($(commas "${R[$id.2.srv_bytes]}") in all)."
	echo
done

echo "### Targets"
echo
echo "| pair | target | figures | ratio |"
echo "|---|---|---:|---:|"
for id in "${ids[@]}"; do
	n=$nterm
	srv_cpu=$(per "$(get "$id.2.srv_cpu")" "$n")
	echo "| ${LABEL[$id]} | bytes per terminal (median) ≤ $TARGET_PATCH × zstd --patch-from | $(b "$id.2.bytes.med") / $(b "$id.patch") | $(rv "$(get "$id.2.bytes.med")" "$(get "$id.patch")" "$TARGET_PATCH") |"
	echo "| ${LABEL[$id]} | bytes per terminal (median) ≤ $TARGET_RSYNC × rsync -acz | $(b "$id.2.bytes.med") / $(b "$id.rs_acz.med") | $(rv "$(get "$id.2.bytes.med")" "$(get "$id.rs_acz.med")" "$TARGET_RSYNC") |"
	echo "| ${LABEL[$id]} | server CPU per terminal ≤ $TARGET_CPU × rsync -acz sender's | $srv_cpu / $(get "$id.rs_acz.cpu") s | $(rv "$srv_cpu" "$(get "$id.rs_acz.cpu")" "$TARGET_CPU") |"
	echo "| ${LABEL[$id]} | (same against plain rsync -az, which leaves stale files) | $srv_cpu / $(get "$id.rs_az.cpu") s | $(rv "$srv_cpu" "$(get "$id.rs_az.cpu")" "$TARGET_CPU") |"
	echo "| ${LABEL[$id]} | (same with v2's replication CPU spread over the $n terminals) | $(per_sum "$(get "$id.2.srv_cpu")" "$(get "$id.2.repl_cpu")" "$n") / $(get "$id.rs_acz.cpu") s | $(rv "$(per_sum "$(get "$id.2.srv_cpu")" "$(get "$id.2.repl_cpu")" "$n")" "$(get "$id.rs_acz.cpu")" "$TARGET_CPU") |"
	echo "| ${LABEL[$id]} | (bytes against plain rsync -az) | $(b "$id.2.bytes.med") / $(b "$id.rs_az.med") | $(ratio "$(get "$id.2.bytes.med")" "$(get "$id.rs_az.med")") |"
done
echo
for id in "${ids[@]}"; do
	echo "${LABEL[$id]}: $(verdict "$(ratio "$(get "$id.2.bytes.med")" "$(get "$id.patch")")" "$TARGET_PATCH") bytes/patch-from, $(verdict "$(ratio "$(get "$id.2.bytes.med")" "$(get "$id.rs_acz.med")")" "$TARGET_RSYNC") bytes/rsync -acz, $(verdict "$(ratio "$(per "$(get "$id.2.srv_cpu")" "$nterm")" "$(get "$id.rs_acz.cpu")")" "$TARGET_CPU") server CPU/rsync -acz sender"
done
echo
echo "Bytes are what the programs count: the terminal's protocol bytes in both"
echo "directions (\`upgrid status --json\`: the difference of bytes_total over"
echo "the phase, equal to last.bytes when one pull did it), rsync's \"Total bytes"
echo "sent\" + \"Total bytes received\"; SSH's own framing is left out on both"
echo "sides. CPU is user + system time of the serving process (\`upgrid-syncd"
echo "--serve\` for every terminal session, \`rsync --server --sender\` for each"
echo "rsync), from bash's \`times\` in a wrapper around it; sshd's own work is"
echo "left out on both sides."
exit 0
