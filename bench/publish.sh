#!/usr/bin/env bash
# publish.sh - what a terminal pulls for one upgrade: upgrid against the
# usual tools, on two real npm releases (a JS tree and a native binary).
#
# For each pair it publishes the old then the new tree into a fresh upgrid
# repo and reads best_bytes for the pair from `publish --json`, then moves
# the same old -> new change with rsync over a real sshd on 127.0.0.1,
# rdiff, plain zstd, per-file zstd --patch-from and whole-tree zstd
# --patch-from. It is a benchmark, not a test: a missed target prints MISS
# and still exits 0; only something broken exits non-zero.
#
# See bench/README.md for the options and environment.

# functions called through cells/trap look unreachable to shellcheck
# shellcheck disable=SC2317
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# id | npm package | old | new | what it is
PAIRS=(
	"A|prettier|3.9.9|3.10.0|a JS tree"
	"B|@biomejs/cli-linux-x64|2.6.7|2.6.8|a native binary"
)
# targets from the design: upgrid/whole-tree patch-from, upgrid/rsync,
# publish time / whole-tree patch-from time
TARGET_PATCH=1.15
TARGET_RSYNC=0.1
TARGET_TIME=1.5

only=""
skip_upgrid=0
runs=1
window=""

usage() {
	cat <<EOF
usage: bench/publish.sh [--pair A|B] [--runs N] [--window SIZE] [--skip-upgrid] [-h]

Publish benchmark: bytes a terminal on the old version pulls to reach the
new one, upgrid against rsync, rdiff and zstd. Prints a markdown report on
stdout and progress on stderr.

  --pair ID       run only pair ID (A: prettier, B: @biomejs/cli-linux-x64)
  --runs N        time upgrid's second publish and item 6 N times each and
                  keep the fastest (default 1)
  --window SIZE   set the repo's delta window (e.g. 256M) instead of the
                  default from 'upgrid init'
  --skip-upgrid   measure only the other tools (for working on the script)
  -h, --help      show this help

Environment: UPGRID (an upgrid binary), UG_BUILDDIR (a configured build
directory; default: build into bench/.build), UG_BENCH_CACHE (npm tarball
cache; default: bench/.cache), TMPDIR.
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--pair) only=${2:?--pair needs A or B}; shift 2 ;;
	--pair=*) only=${1#--pair=}; shift ;;
	--runs) runs=${2:?--runs needs a count}; shift 2 ;;
	--runs=*) runs=${1#--runs=}; shift ;;
	--window) window=${2:?--window needs a size}; shift 2 ;;
	--window=*) window=${1#--window=}; shift ;;
	--skip-upgrid) skip_upgrid=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

case $runs in '' | *[!0-9]* | 0) echo "bench: --runs takes a positive count" >&2; exit 2 ;; esac

# ---------------------------------------------------------------- tools

# command -> Debian package; installed when missing and we are root
# shellcheck disable=SC2034 # read by ensure_tools in lib.sh
declare -A TOOL_PKG=(
	[/usr/bin/time]=time [rsync]=rsync [rdiff]=rdiff [zstd]=zstd
	[sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client
	[npm]=npm [node]=nodejs [jq]=jq [tar]=tar [cmp]=diffutils
)

# ---------------------------------------------------------------- helpers

size() { stat -c %s "$1"; }

# "1:02.34" or "0:01:02" from time -v -> seconds
wall_of() {
	awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0;
		for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }' "$1"
}
rss_mib_of() {
	awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1"
}

# ---------------------------------------------------------------- sshd

# One sshd (lib.sh: ssh_setup, sshd_start) for rsync, stopped by pid in
# the trap.
SSH_CMD=""
W=""

cleanup() {
	sshd_stop_all
	if [ -n "$W" ]; then rm -rf "$W"; fi
}

start_sshd() {
	ssh_setup
	sshd_start rsync ""
	SSH_CMD=$(ssh_cmd rsync)
	log "sshd up on 127.0.0.1:${SSHD_PORT[rsync]} (pid ${SSHD_PID[rsync]})"
}

# ---------------------------------------------------------------- measures

declare -A R # results, "ID.key"

measure_upgrid() {
	local id=$1 old=$2 new=$3 d=$W/$1/upgrid j n wall rss
	mkdir -p "$d"
	"$UPGRID" -R "$d/repo" init >/dev/null || die "$id: upgrid init failed"
	"$UPGRID" keygen -f "$d/key" >/dev/null || die "$id: upgrid keygen failed"
	if [ -n "$window" ]; then
		sed -i "s/^window *=.*/window = $window/" "$d/repo/config"
		grep -q "^window = $window\$" "$d/repo/config" || die "cannot set window in '$d/repo/config'"
	fi
	R[$id.config]=$(grep -E '^(level|window|threads|keep-deltas) *=' "$d/repo/config" | tr -s ' ' | paste -sd';' | sed 's/;/; /g')
	log "$id: upgrid publish (old)"
	"$UPGRID" -R "$d/repo" publish -k "$d/key" --json "$old" >"$d/pub1.json" ||
		die "$id: upgrid publish of the old tree failed"
	# each timed run publishes the new tree into a copy of the one-version repo
	cp -a "$d/repo" "$d/repo.v1"
	for n in $(seq "$runs"); do
		log "$id: upgrid publish (new), timed, run $n/$runs"
		rm -rf "$d/repo"
		cp -a "$d/repo.v1" "$d/repo"
		/usr/bin/time -v -o "$d/pub2.time" \
			"$UPGRID" -R "$d/repo" publish -k "$d/key" --json "$new" >"$d/pub2.json" ||
			die "$id: upgrid publish of the new tree failed"
		wall=$(wall_of "$d/pub2.time")
		rss=$(rss_mib_of "$d/pub2.time")
		log "$id: upgrid publish took $wall s, peak RSS $rss MiB"
		if [ -z "${R[$id.ug_wall]:-}" ] || awk -v a="$wall" -v b="${R[$id.ug_wall]}" 'BEGIN { exit !(a < b) }'; then
			R[$id.ug_wall]=$wall
		fi
		if [ -z "${R[$id.ug_rss]:-}" ] || awk -v a="$rss" -v b="${R[$id.ug_rss]}" 'BEGIN { exit !(a > b) }'; then
			R[$id.ug_rss]=$rss
		fi
	done
	j=$d/pub2.json
	[ "$(jq -r .unchanged "$j")" = false ] || die "$id: upgrid says the new tree is unchanged"
	[ "$(jq -r '.pairs | length' "$j")" -ge 1 ] || die "$id: upgrid computed no pair"
	R[$id.ug_best]=$(jq -r '.pairs[] | select(.from == 1) | .best_bytes' "$j")
	R[$id.ug_bundle]=$(jq -r '.pairs[] | select(.from == 1) | .bundle_bytes' "$j")
	R[$id.ug_perfile]=$(jq -r '.pairs[] | select(.from == 1) | .per_file_bytes' "$j")
	R[$id.ug_mdelta]=$(jq -r '.pairs[] | select(.from == 1) | .manifest_delta_bytes' "$j")
	R[$id.ug_full]=$(jq -r .full_bytes "$j")
	R[$id.ug_manifest]=$(jq -r .manifest_bytes "$j")
	[ -n "${R[$id.ug_best]}" ] || die "$id: no pair from version 1 in upgrid's output"
	R[$id.ug_objects]=$(du -sb "$d/repo/objects" 2>/dev/null | cut -f1 || echo "?")
	R[$id.ug_deltas]=$(du -sb "$d/repo/deltas" 2>/dev/null | cut -f1 || echo "?")
}

measure_rsync() {
	local id=$1 old=$2 new=$3 d=$W/$1/rsync out sent recv
	mkdir -p "$d"
	# the terminal holds the old tree and pulls the new one from the server
	cp -a "$old" "$d/term"
	log "$id: rsync -acz over ssh"
	rsync -acz --delete --stats --debug=NSTR --rsync-path="$(command -v rsync)" -e "$SSH_CMD" \
		"$(id -un)@127.0.0.1:$new/" "$d/term/" >"$d/stats" 2>"$d/err" ||
		{ cat "$d/err" >&2; die "$id: rsync failed"; }
	diff -r "$new" "$d/term" >/dev/null || die "$id: rsync left a tree that differs from the new one"
	sent=$(awk -F': ' '/^Total bytes sent/ { gsub(/,/, "", $2); print $2 }' "$d/stats")
	recv=$(awk -F': ' '/^Total bytes received/ { gsub(/,/, "", $2); print $2 }' "$d/stats")
	if [ -z "$sent" ] || [ -z "$recv" ]; then die "$id: no byte counts in rsync --stats"; fi
	R[$id.rsync_sent]=$sent
	R[$id.rsync_recv]=$recv
	R[$id.rsync]=$((sent + recv))
	R[$id.rsync_compress]=$(sed -n 's/^Client negotiated compress: //p' "$d/stats" | head -1)
}

# Per-file measures over the changed and new paths (by path, as rsync and
# rdiff see a tree): rdiff signature + delta, and zstd --patch-from.
measure_per_file() {
	local id=$1 old=$2 new=$3 d=$W/$1/files f rd=0 rdz=0 zp=0 nchg=0 nnew=0 nsame=0 nrm=0 z
	mkdir -p "$d"
	log "$id: rdiff and zstd --patch-from per file"
	while IFS= read -r -d '' f; do
		if [ -f "$old/$f" ] && [ ! -L "$old/$f" ]; then
			if cmp -s "$old/$f" "$new/$f"; then
				nsame=$((nsame + 1))
				continue
			fi
			nchg=$((nchg + 1))
			rdiff --force signature "$old/$f" "$d/sig"
			rdiff --force delta "$d/sig" "$new/$f" "$d/delta"
			rd=$((rd + $(size "$d/sig") + $(size "$d/delta")))
			# rdiff deltas carry literals raw; this is what compressing them buys
			zstd -q -f -19 "$d/delta" -o "$d/delta.zst"
			rdz=$((rdz + $(size "$d/sig") + $(size "$d/delta.zst")))
			# zstd prints tuning notes for --patch-from even with -q
			zstd -q -f -19 --patch-from="$old/$f" "$new/$f" -o "$d/zp" 2>"$d/zp.err" ||
				{ cat "$d/zp.err" >&2; die "$id: zstd --patch-from failed on '$f'"; }
			zp=$((zp + $(size "$d/zp")))
		else
			nnew=$((nnew + 1))
			zstd -q -f -19 "$new/$f" -o "$d/z"
			z=$(size "$d/z")
			rd=$((rd + z))
			rdz=$((rdz + z))
			zp=$((zp + z))
		fi
	done < <(cd "$new" && find . -type f -printf '%P\0' | LC_ALL=C sort -z)
	while IFS= read -r -d '' f; do
		[ -e "$new/$f" ] || nrm=$((nrm + 1))
	done < <(cd "$old" && find . -type f -printf '%P\0')
	R[$id.rdiff]=$rd
	R[$id.rdiff_z]=$rdz
	R[$id.zstd_files]=$zp
	R[$id.nchanged]=$nchg
	R[$id.nnew]=$nnew
	R[$id.nsame]=$nsame
	R[$id.nremoved]=$nrm
}

measure_tar() {
	local id=$1 old=$2 new=$3 d=$W/$1/tar n wall rss
	mkdir -p "$d"
	det_tar "$old" "$d/old.tar"
	det_tar "$new" "$d/new.tar"
	log "$id: tar | zstd -19"
	zstd -q -19 -c "$d/new.tar" >"$d/new.tar.zst"
	R[$id.full]=$(size "$d/new.tar.zst")
	for n in $(seq "$runs"); do
		log "$id: zstd -19 --long=31 --patch-from=old.tar new.tar, timed, run $n/$runs"
		/usr/bin/time -v -o "$d/patch.time" \
			zstd -q -f -19 --long=31 --patch-from="$d/old.tar" "$d/new.tar" -o "$d/patch.zst" \
			2>"$d/patch.err" || { cat "$d/patch.err" >&2; die "$id: zstd --patch-from of the tars failed"; }
		wall=$(wall_of "$d/patch.time")
		rss=$(rss_mib_of "$d/patch.time")
		log "$id: zstd --patch-from took $wall s, peak RSS $rss MiB"
		if [ -z "${R[$id.patch_wall]:-}" ] || awk -v a="$wall" -v b="${R[$id.patch_wall]}" 'BEGIN { exit !(a < b) }'; then
			R[$id.patch_wall]=$wall
		fi
		if [ -z "${R[$id.patch_rss]:-}" ] || awk -v a="$rss" -v b="${R[$id.patch_rss]}" 'BEGIN { exit !(a > b) }'; then
			R[$id.patch_rss]=$rss
		fi
	done
	R[$id.patch]=$(size "$d/patch.zst")
	# the figure is only worth quoting if it decodes back to the new tree
	zstd -q -d -f --long=31 --memory=2048MB --patch-from="$d/old.tar" "$d/patch.zst" -o "$d/check.tar"
	cmp -s "$d/check.tar" "$d/new.tar" || die "$id: whole-tree patch does not decode to new.tar"
	rm -f "$d/check.tar" "$d/old.tar" "$d/new.tar"
}

# ---------------------------------------------------------------- main

ensure_tools
find_sshd
[ "$skip_upgrid" = 1 ] || find_upgrid upgrid
W=$(mktemp -d "${TMPDIR:-/tmp}/ug-bench.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
start_sshd

ids=()
declare -A LABEL
t0=$(date +%s)
for p in "${PAIRS[@]}"; do
	IFS='|' read -r id name old new what <<<"$p"
	[ -z "$only" ] || [ "$only" = "$id" ] || continue
	prepare_pair "$id" "$name" "$old" "$new" "$what" "$W/$id/old" "$W/$id/new"
	[ "$skip_upgrid" = 1 ] || measure_upgrid "$id" "$W/$id/old" "$W/$id/new"
	measure_rsync "$id" "$W/$id/old" "$W/$id/new"
	measure_per_file "$id" "$W/$id/old" "$W/$id/new"
	measure_tar "$id" "$W/$id/old" "$W/$id/new"
	ids+=("$id")
done
[ ${#ids[@]} -gt 0 ] || die "no pair selected (--pair takes A or B)"
elapsed=$(($(date +%s) - t0))

# ---------------------------------------------------------------- report

get() { local v=${R[$1]:-}; if [ -n "$v" ]; then echo "$v"; else echo "n/a"; fi; }
b() { local v; v=$(get "$1"); if [ "$v" = n/a ]; then echo "n/a"; else commas "$v"; fi; }

row() { # label, then one cell per pair
	local label=$1 line; shift
	line="| $label |"
	for c in "$@"; do line+=" $c |"; done
	echo "$line"
}

cells() { # printf-style template over pairs: cells FUNC
	local id out=()
	for id in "${ids[@]}"; do out+=("$("$@" "$id")"); done
	printf '%s\n' "${out[@]}"
}

c_tree() { echo "$(b "$1.old_bytes") → $(b "$1.new_bytes") B, $(get "$1.new_files") files"; }
c_files() { echo "$(get "$1.nchanged") changed, $(get "$1.nnew") new, $(get "$1.nremoved") removed, $(get "$1.nsame") same"; }
c_bytes() { b "$1.$KEY"; }
c_rsync() { echo "$(b "$1.rsync") ($(b "$1.rsync_sent") sent + $(b "$1.rsync_recv") received)"; }
c_best() {
	local u; u=$(get "$1.ug_best")
	[ "$u" = n/a ] && { echo n/a; return; }
	echo "**$(commas "$u")**"
}
c_bundle() {
	local v; v=$(get "$1.ug_bundle")
	case $v in n/a) echo n/a ;; 0) echo "none kept" ;; *) commas "$v" ;; esac
}
c_ratio() {
	local r; r=$(ratio "$(get "$1.$NUM")" "$(get "$1.$DEN")")
	if [ "$r" = n/a ]; then echo n/a; else echo "$r $(verdict "$r" "$TARGET")"; fi
}

headers=()
for id in "${ids[@]}"; do headers+=("${LABEL[$id]}"); done

echo "## upgrid publish benchmark"
echo
cmdline="bench/publish.sh"
[ -z "$only" ] || cmdline+=" --pair $only"
[ "$runs" = 1 ] || cmdline+=" --runs $runs"
[ -z "$window" ] || cmdline+=" --window $window"
[ "$skip_upgrid" = 0 ] || cmdline+=" --skip-upgrid"
echo "Command: \`$cmdline\`"
echo "Run took ${elapsed} s on $(date -u +%Y-%m-%d)."
echo
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')."
echo "Tools: zstd $(zstd --version | grep -o 'v[0-9.]*' | head -1), rsync $(rsync --version | head -1 | awk '{ print $3 }'), $(rdiff --version | head -1), $(ssh -V 2>&1 | cut -d, -f1)$([ "$skip_upgrid" = 1 ] || echo ", $("$UPGRID" --version 2>/dev/null | head -1 || echo 'upgrid ?')")."
if [ "$skip_upgrid" = 0 ]; then
	echo "upgrid repo config: ${R[${ids[0]}.config]}."
	rev=$(git -C "$SRC_DIR" describe --always --dirty 2>/dev/null || true)
	[ -z "$rev" ] || echo "upgrid source: $rev (binary '$UPGRID')."
fi
echo
row "" "${headers[@]}"
sep="|---|"; for id in "${ids[@]}"; do sep+="---:|"; done; echo "$sep"
mapfile -t c < <(cells c_tree); row "tree, old → new" "${c[@]}"
mapfile -t c < <(cells c_files); row "files" "${c[@]}"
mapfile -t c < <(cells c_best); row "1. upgrid best_bytes (what a terminal pulls)" "${c[@]}"
mapfile -t c < <(cells c_bundle); row "  upgrid bundle delta" "${c[@]}"
KEY=ug_perfile; mapfile -t c < <(cells c_bytes); row "  upgrid per-file deltas" "${c[@]}"
KEY=ug_mdelta; mapfile -t c < <(cells c_bytes); row "  upgrid manifest delta" "${c[@]}"
KEY=ug_full; mapfile -t c < <(cells c_bytes); row "  upgrid full download (objects + manifest)" "${c[@]}"
mapfile -t c < <(cells c_rsync); row "2. rsync -acz over ssh (sent + received)" "${c[@]}"
KEY=rdiff; mapfile -t c < <(cells c_bytes); row "3. rdiff signature + delta per changed file" "${c[@]}"
KEY=rdiff_z; mapfile -t c < <(cells c_bytes); row "  same, deltas compressed with zstd -19" "${c[@]}"
KEY=full; mapfile -t c < <(cells c_bytes); row "4. tar \\| zstd -19 (full download)" "${c[@]}"
KEY=zstd_files; mapfile -t c < <(cells c_bytes); row "5. zstd -19 --patch-from per changed file" "${c[@]}"
KEY="patch"; mapfile -t c < <(cells c_bytes); row "6. zstd -19 --long=31 --patch-from old.tar new.tar" "${c[@]}"
best=""; [ "$runs" = 1 ] || best=", best of $runs"
KEY=ug_wall; mapfile -t c < <(cells c_bytes); row "upgrid publish of new, wall (s$best)" "${c[@]}"
KEY=patch_wall; mapfile -t c < <(cells c_bytes); row "item 6, wall (s$best)" "${c[@]}"
KEY=ug_rss; mapfile -t c < <(cells c_bytes); row "upgrid publish of new, peak RSS (MiB)" "${c[@]}"
KEY=patch_rss; mapfile -t c < <(cells c_bytes); row "item 6, peak RSS (MiB)" "${c[@]}"
echo
echo "Sizes in bytes. rsync counts both directions as reported by --stats"
echo "(compression negotiated: $(get "${ids[0]}.rsync_compress"));"
echo "rdiff signatures and deltas are counted uncompressed; new files count"
echo "at their zstd -19 size in items 3 and 5."
echo
row "ratio" "target" "${headers[@]}"
sep="|---|---:|"; for id in "${ids[@]}"; do sep+="---:|"; done; echo "$sep"
NUM=ug_best DEN=patch TARGET=$TARGET_PATCH; mapfile -t c < <(cells c_ratio)
row "upgrid / whole-tree patch-from (1 / 6)" "≤ $TARGET_PATCH" "${c[@]}"
NUM=ug_best DEN=rsync TARGET=$TARGET_RSYNC; mapfile -t c < <(cells c_ratio)
row "upgrid / rsync (1 / 2)" "≤ $TARGET_RSYNC" "${c[@]}"
NUM=ug_wall DEN=patch_wall TARGET=$TARGET_TIME; mapfile -t c < <(cells c_ratio)
row "publish time / item 6 time" "≤ $TARGET_TIME" "${c[@]}"
exit 0
