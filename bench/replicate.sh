#!/usr/bin/env bash
# replicate.sh - what replicating a release to the group servers costs the
# master and the network: upgrid-syncd down group chains against rsync
# from the master to every server, on two real npm releases.
#
# For each pair it builds a master repo and 8 server repos (2 groups of 4,
# each server a real OpenSSH sshd on its own 127.0.0.1 port whose forced
# command is `upgrid-syncd --serve`), publishes the old tree and runs one
# `upgrid-syncd --once` round per server in chain order, then publishes the
# new tree and does the same again. The serve counters (`--stats`) of the
# master and of every server give the bytes per link and per blob kind.
# rsync -acz --delete pushes the same trees from the master to 8 target
# directories over an sshd. Every phase is checked: each server verifies
# against the master's key at the master's version, each rsync target
# equals the tree. A missed target prints MISS and still exits 0; only
# something broken exits non-zero.
#
# See bench/README.md for the options and environment.

# functions called through cells/trap look unreachable to shellcheck
# shellcheck disable=SC2317
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# id | npm package | old | new | what it is (the pairs of publish.sh)
PAIRS=(
	"A|prettier|3.9.9|3.10.0|a JS tree"
	"B|@biomejs/cli-linux-x64|2.6.7|2.6.8|a native binary"
)
# targets from the issue, for 8 servers: the master's egress and the bytes
# on all links against rsync from the master to every server
TARGET_MASTER=0.25
TARGET_LINKS=0.2

only=""
ngroups=2
chain=4
keep=0

usage() {
	cat <<EOF
usage: bench/replicate.sh [--pair A|B] [--groups N] [--chain N] [--keep] [-h]

Replication benchmark: a master and group servers replicate two releases
with upgrid-syncd down the group chains; rsync -acz pushes the same trees
from the master to as many targets. Prints a markdown report on stdout and
progress on stderr.

  --pair ID       run only pair ID (A: prettier, B: @biomejs/cli-linux-x64)
  --groups N      groups in the cluster file (default 2)
  --chain N       servers per group (default 4; at most 16)
  --keep          keep the scratch directory (repos, logs, counters)
  -h, --help      show this help

Environment: UPGRID and UPGRID_SYNCD (binaries; UPGRID_SYNCD defaults to
upgrid-syncd next to UPGRID), UG_BUILDDIR (a build directory; default:
build into bench/.build), UG_BENCH_CACHE (npm tarball cache; default:
bench/.cache), TMPDIR.
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--pair) only=${2:?--pair needs A or B}; shift 2 ;;
	--pair=*) only=${1#--pair=}; shift ;;
	--groups) ngroups=${2:?--groups needs a count}; shift 2 ;;
	--groups=*) ngroups=${1#--groups=}; shift ;;
	--chain) chain=${2:?--chain needs a count}; shift 2 ;;
	--chain=*) chain=${1#--chain=}; shift ;;
	--keep) keep=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

case $ngroups in '' | *[!0-9]* | 0) echo "bench: --groups takes a positive count" >&2; exit 2 ;; esac
case $chain in '' | *[!0-9]* | 0) echo "bench: --chain takes a count from 1 to 16" >&2; exit 2 ;; esac
[ "$chain" -le 16 ] || { echo "bench: --chain takes a count from 1 to 16" >&2; exit 2; }
nservers=$((ngroups * chain))
if [ -n "$only" ] && ! printf '%s\n' "${PAIRS[@]}" | grep -q "^$only|"; then
	echo "bench: --pair takes A or B" >&2
	exit 2
fi

# ---------------------------------------------------------------- tools

# command -> Debian package; installed when missing and we are root
# shellcheck disable=SC2034 # read by ensure_tools in lib.sh
declare -A TOOL_PKG=(
	[rsync]=rsync [sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client
	[npm]=npm [node]=nodejs [jq]=jq [tar]=tar [diff]=diffutils
)

# ---------------------------------------------------------------- sshd

# The sshds (lib.sh: ssh_setup, sshd_start) are stopped by pid in the trap.
W=""

cleanup() {
	sshd_stop_all
	if [ -n "$W" ]; then
		if [ "$keep" = 1 ]; then log "kept the scratch directory '$W'"; else rm -rf "$W"; fi
	fi
}

# ---------------------------------------------------------------- cluster

declare -A R # results, "ID.key"

# A fresh master, servers, sshds and rsync targets for pair id, under $W/id.
setup_cluster() {
	local id=$1 d=$W/$1
	mkdir -p "$d/logs" "$d/stats" "$d/rsync"
	cluster_up "$id" "$d" "$ngroups" "$chain" "$W/key.pub"
	R[$id.config]=$(grep -E '^(level|window|threads|keep-deltas) *=' "$d/master/config" | tr -s ' ' | paste -sd';' | sed 's/;/; /g')
}

# snap id TAG: every node's serve counters into $W/id/stats/TAG.NODE.json
snap() { stats_snap "$W/$1" "$2" master "${SERVERS[@]}"; }

# add the differences of node n between tags into R[id.ph.WHO.key]
collect() {
	local id=$1 ph=$2 d=$W/$1 n who k v
	for n in master "${SERVERS[@]}"; do
		if [ "$n" = master ]; then who=master; else who=servers; fi
		stats_diff "$d/stats/before$ph.$n.json" "$d/stats/after$ph.$n.json" >"$d/stats/diff$ph.$n" ||
			die "$id: cannot read the counters of '$n'"
		while read -r k v; do
			R[$id.$ph.$who.$k]=$((${R[$id.$ph.$who.$k]:-0} + v))
			R[$id.$ph.node.$n.$k]=$v
			KINDS[${k%.*}]=1
		done <"$d/stats/diff$ph.$n"
	done
}
declare -A KINDS=()

publish() {
	local id=$1 ph=$2 tree=$3 d=$W/$1 t0
	log "$id: publish version $ph"
	t0=$(now)
	publish_tree "$id" "$d/master" "$W/key" "$ph" "$tree" "$d/pub$ph.json"
	R[$id.$ph.pub_wall]=$(secs "$t0" "$(now)")
	R[$id.$ph.pub_full]=$(jq -r .full_bytes "$d/pub$ph.json")
	R[$id.$ph.pub_manifest]=$(jq -r .manifest_bytes "$d/pub$ph.json")
	if [ "$ph" -gt 1 ]; then
		R[$id.pub_best]=$(jq -r '.pairs[] | select(.from == 1) | .best_bytes' "$d/pub$ph.json")
		R[$id.pub_bundle]=$(jq -r '.pairs[] | select(.from == 1) | .bundle_bytes' "$d/pub$ph.json")
		R[$id.pub_perfile]=$(jq -r '.pairs[] | select(.from == 1) | .per_file_bytes' "$d/pub$ph.json")
		R[$id.pub_mdelta]=$(jq -r '.pairs[] | select(.from == 1) | .manifest_delta_bytes' "$d/pub$ph.json")
	fi
}

# One --once round per server in chain order; check every server.
replicate() {
	local id=$1 ph=$2
	snap "$id" "before$ph"
	chain_rounds "$id" "$W/$id" "$ph" "$ngroups" "$chain" "$W/key.pub"
	snap "$id" "after$ph"
	collect "$id" "$ph"
}

# rsync -acz --delete from the master's tree to every target, one after
# the other (as the chain rounds run).
rsync_phase() {
	local id=$1 ph=$2 tree=$3 d=$W/$1 i t0 sent recv tsent=0 trecv=0 st
	log "$id: rsync of version $ph to $nservers targets"
	t0=$(now)
	for i in $(seq "$nservers"); do
		st=$d/logs/rsync.t$i.$ph
		rsync -acz --delete --stats --debug=NSTR --rsync-path="$(command -v rsync)" \
			-e "$(ssh_cmd rsync)" "$tree/" "$USER_NAME@127.0.0.1:$d/rsync/t$i/" >"$st" 2>"$st.err" ||
			{ cat "$st.err" >&2; die "$id: rsync to target $i failed (version $ph)"; }
		sent=$(awk -F': ' '/^Total bytes sent/ { gsub(/,/, "", $2); print $2 }' "$st")
		recv=$(awk -F': ' '/^Total bytes received/ { gsub(/,/, "", $2); print $2 }' "$st")
		if [ -z "$sent" ] || [ -z "$recv" ]; then die "$id: no byte counts in rsync --stats ('$st')"; fi
		tsent=$((tsent + sent))
		trecv=$((trecv + recv))
	done
	R[$id.$ph.rs_wall]=$(secs "$t0" "$(now)")
	for i in $(seq "$nservers"); do
		diff -r "$tree" "$d/rsync/t$i" >/dev/null || die "$id: rsync target $i differs from version $ph"
	done
	R[$id.$ph.rs_sent]=$tsent
	R[$id.$ph.rs_recv]=$trecv
	R[$id.$ph.rs]=$((tsent + trecv))
	R[$id.rsync_compress]=$(sed -n 's/^Client negotiated compress: //p' "$d/logs/rsync.t1.$ph" | head -1)
	log "$id: rsync of version $ph took ${R[$id.$ph.rs_wall]} s; all targets equal the tree"
}

# phase "both" = 1 + 2, for every numeric key of phase 1
sum_phases() {
	local id=$1 k key
	for k in "${!R[@]}"; do
		case $k in "$id.1."*) ;; *) continue ;; esac
		key=${k#"$id.1."}
		case $key in
		log.* | wall.*) continue ;;
		*_wall) R[$id.both.$key]=$(awk -v a="${R[$k]}" -v b="${R[$id.2.$key]:-0}" 'BEGIN { printf "%.2f", a + b }') ;;
		*) R[$id.both.$key]=$((${R[$k]} + ${R[$id.2.$key]:-0})) ;;
		esac
	done
}

# ---------------------------------------------------------------- main

ensure_tools
find_sshd
# the source the binaries were built from, before a rebuild could race a commit
rev=$(git -C "$SRC_DIR" describe --always --dirty 2>/dev/null || true)
find_upgrid upgrid upgrid-syncd
find_syncd
W=$(mktemp -d "${TMPDIR:-/tmp}/ug-bench-repl.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
ssh_setup
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
	setup_cluster "$id"
	for ph in 1 2; do
		publish "$id" "$ph" "$W/$id/tree$ph"
		replicate "$id" "$ph"
		rsync_phase "$id" "$ph" "$W/$id/tree$ph"
	done
	sum_phases "$id"
	cluster_down "$id" "$ngroups" "$chain"
	ids+=("$id")
done
[ ${#ids[@]} -gt 0 ] || die "no pair selected (--pair takes A or B)"
elapsed=$(($(date +%s) - t_start))

# ---------------------------------------------------------------- report

get() { local v=${R[$1]:-}; if [ -n "$v" ]; then echo "$v"; else echo "n/a"; fi; }
b() { local v; v=$(get "$1"); if [ "$v" = n/a ]; then echo "n/a"; else commas "$v"; fi; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "n/a"; else printf "%.1f %%", 100 * a / b }'; }
rv() { # ratio with its verdict
	local r; r=$(ratio "$1" "$2")
	if [ "$r" = n/a ]; then echo n/a; else echo "$r $(verdict "$r" "$3")"; fi
}
PHASES=(1 2 both)
declare -A PH_NAME=([1]="v1 full" [2]="v2 upgrade" [both]="both")

echo "## upgrid replication benchmark"
echo
cmdline="bench/replicate.sh"
[ -z "$only" ] || cmdline+=" --pair $only"
[ "$ngroups" = 2 ] || cmdline+=" --groups $ngroups"
[ "$chain" = 4 ] || cmdline+=" --chain $chain"
echo "Command: \`$cmdline\`"
echo "Run took ${elapsed} s on $(date -u +%Y-%m-%d)."
echo
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')."
echo "Tools: rsync $(rsync --version | head -1 | awk '{ print $3 }') (-z negotiated $(get "${ids[0]}.rsync_compress")), $(ssh -V 2>&1 | cut -d, -f1), $("$UPGRID" --version 2>/dev/null | head -1 || echo 'upgrid ?'), $("$UPGRID_SYNCD" --version 2>/dev/null | head -1 || echo 'upgrid-syncd ?')."
echo "upgrid repo config: ${R[${ids[0]}.config]}."
[ -z "$rev" ] || echo "upgrid source: $rev at the start of the run (binaries '$UPGRID', '$UPGRID_SYNCD')."
echo
echo "Topology: a master and $nservers servers in $ngroups groups of $chain, each server"
echo "a real OpenSSH sshd on 127.0.0.1 with its own host key and the forced"
echo "command \`upgrid-syncd --serve\`. One \`upgrid-syncd --once\` round per"
echo "server, in chain order (every group's first, then every second...), one"
echo "after the other. rsync pushes the master's tree to $nservers target directories"
echo "over an sshd, one after the other. Each phase was checked: every server's"
echo "ref equals the master's and \`upgrid verify --pubkey\` passes; every rsync"
echo "target equals the tree (\`diff -r\`)."
echo
echo "| pair | phase | upgrid master egress | upgrid all links | upgrid wall (s) | rsync total = master egress | rsync wall (s) | master / rsync (≤ $TARGET_MASTER) | links / rsync (≤ $TARGET_LINKS) | wall upgrid / rsync |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for id in "${ids[@]}"; do
	for ph in "${PHASES[@]}"; do
		mo=$(get "$id.$ph.master.bytes_out")
		lo=$(( ${R[$id.$ph.master.bytes_out]:-0} + ${R[$id.$ph.servers.bytes_out]:-0} ))
		R[$id.$ph.links]=$lo
		rs=$(get "$id.$ph.rs")
		echo "| ${LABEL[$id]} | ${PH_NAME[$ph]} | $(commas "$mo") | $(commas "$lo") | $(get "$id.$ph.ug_wall") | $(commas "$rs") | $(get "$id.$ph.rs_wall") | $(ratio "$mo" "$rs") | $(ratio "$lo" "$rs") | $(ratio "$(get "$id.$ph.ug_wall")" "$(get "$id.$ph.rs_wall")") |"
	done
done
echo
echo "Bytes as the programs count them (upgrid: \`upgrid-syncd --stats\` bytes_out"
echo "of the master and of every server, the difference over the phase; rsync:"
echo "\"Total bytes sent\" + \"Total bytes received\" of its $nservers runs), without"
echo "SSH's own framing. Wall times are the whole sequence of $nservers rounds or runs."
echo
echo "### Targets"
echo
if [ "$ngroups" != 2 ] || [ "$chain" != 4 ]; then
	echo "The targets are stated for 2 groups of 4 servers; this run has $ngroups of $chain."
	echo
fi
echo "| pair | target | v2 upgrade | both phases |"
echo "|---|---|---:|---:|"
for id in "${ids[@]}"; do
	echo "| ${LABEL[$id]} | master egress ≤ $TARGET_MASTER × rsync | $(rv "$(get "$id.2.master.bytes_out")" "$(get "$id.2.rs")" "$TARGET_MASTER") | $(rv "$(get "$id.both.master.bytes_out")" "$(get "$id.both.rs")" "$TARGET_MASTER") |"
	echo "| ${LABEL[$id]} | all links ≤ $TARGET_LINKS × rsync | $(rv "$(get "$id.2.links")" "$(get "$id.2.rs")" "$TARGET_LINKS") | $(rv "$(get "$id.both.links")" "$(get "$id.both.rs")" "$TARGET_LINKS") |"
done
echo
echo "Stricter reading, same direction on both sides (not the targets' definition):"
echo
echo "| pair | phase | upgrid master bytes_out / rsync bytes sent by the master | upgrid all links, both directions / rsync sent + received |"
echo "|---|---|---:|---:|"
for id in "${ids[@]}"; do
	for ph in 2 both; do
		both_dirs=$(( ${R[$id.$ph.links]} + ${R[$id.$ph.master.bytes_in]:-0} + ${R[$id.$ph.servers.bytes_in]:-0} ))
		echo "| ${LABEL[$id]} | ${PH_NAME[$ph]} | $(ratio "$(get "$id.$ph.master.bytes_out")" "$(get "$id.$ph.rs_sent")") ($(commas "$(get "$id.$ph.master.bytes_out")") / $(commas "$(get "$id.$ph.rs_sent")")) | $(ratio "$both_dirs" "$(get "$id.$ph.rs")") ($(commas "$both_dirs") / $(commas "$(get "$id.$ph.rs")")) |"
	done
done
echo
echo "### Where upgrid's bytes go"
echo
echo "Blobs sent, by kind, from the serve counters: bytes (count), by the"
echo "master, and by the servers to the next one in their chain."
echo
mapfile -t kinds < <(printf '%s\n' "${!KINDS[@]}" | grep -vxE 'bytes_out|bytes_in|sessions' | sort)
for id in "${ids[@]}"; do
	echo "${LABEL[$id]}:"
	echo
	echo "| kind | v1: master | v1: servers | v2: master | v2: servers | v2 share of all links |"
	echo "|---|---:|---:|---:|---:|---:|"
	for k in "${kinds[@]}"; do
		line="| $k |"
		for ph in 1 2; do
			for who in master servers; do
				line+=" $(b "$id.$ph.$who.$k.bytes") ($(get "$id.$ph.$who.$k.count")) |"
			done
		done
		line+=" $(pct $(( ${R[$id.2.master.$k.bytes]:-0} + ${R[$id.2.servers.$k.bytes]:-0} )) "${R[$id.2.links]}") |"
		echo "$line"
	done
	echo "| bytes_out (all kinds + framing) | $(b "$id.1.master.bytes_out") | $(b "$id.1.servers.bytes_out") | $(b "$id.2.master.bytes_out") | $(b "$id.2.servers.bytes_out") | 100 % |"
	echo "| bytes_in (requests) | $(b "$id.1.master.bytes_in") | $(b "$id.1.servers.bytes_in") | $(b "$id.2.master.bytes_in") | $(b "$id.2.servers.bytes_in") | |"
	echo "| sessions served | $(get "$id.1.master.sessions") | $(get "$id.1.servers.sessions") | $(get "$id.2.master.sessions") | $(get "$id.2.servers.sessions") | |"
	echo
	echo "What publish reported for version 2 (\`upgrid publish --json\`): a terminal on"
	echo "version 1 pulls best_bytes $(b "$id.pub_best") (bundle $(b "$id.pub_bundle"),"
	echo "per-file deltas $(b "$id.pub_perfile"), manifest delta $(b "$id.pub_mdelta")); full download"
	echo "$(b "$id.2.pub_full"), manifest $(b "$id.2.pub_manifest"). Version 1: full download"
	echo "$(b "$id.1.pub_full"), manifest $(b "$id.1.pub_manifest"). Publish wall: $(get "$id.1.pub_wall") s and $(get "$id.2.pub_wall") s."
	echo "Per link in v2, upgrid moved $(commas "$(( ${R[$id.2.links]} / nservers ))") on average, $(ratio "$(( ${R[$id.2.links]} / nservers ))" "$(get "$id.pub_best")") × best_bytes; rsync $(commas "$(( ${R[$id.2.rs]} / nservers ))") per target."
	echo
	echo "Each server's round as its log reports it (bytes it took in, objects"
	echo "rebuilt from deltas / fetched whole / per-file deltas made locally), its"
	echo "wall time, and what it served:"
	echo
	echo "| server | v1: from | v1: bytes in | v1: rebuilt / whole / made | v1: wall (s) | v2: from | v2: bytes in | v2: rebuilt / whole / made | v2: wall (s) | v2: bytes_out served |"
	echo "|---|---|---:|---:|---:|---|---:|---:|---:|---:|"
	for s in $(chain_order "$ngroups" "$chain"); do
		line="| $s |"
		for ph in 1 2; do
			IFS='|' read -r from bin reb whole made <<<"${R[$id.$ph.log.$s]}"
			from=$(sed -E "s/ \(.*//; s/'//g" <<<"$from")
			line+=" $from | $(commas "$bin") | $reb / $whole / $made | $(get "$id.$ph.wall.$s") |"
		done
		line+=" $(b "$id.2.node.$s.bytes_out") |"
		echo "$line"
	done
	echo
done
exit 0
