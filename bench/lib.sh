# shellcheck shell=bash
# lib.sh - helpers shared by the bench scripts (sourced by bash; not run).
#
# Sets BENCH_DIR (this directory), SRC_DIR (the source tree) and CACHE
# (the npm tarball cache, UG_BENCH_CACHE or bench/.cache). A script that
# sources it declares TOOL_PKG (command -> Debian package) before it calls
# ensure_tools, and the associative array R (results) before it calls
# prepare_pair or chain_rounds.
#
# Sections: tools; upgrid (the build, find_syncd); npm (the release
# pairs); sshd and ssh (loopback sshds stopped by pid, in the caller's
# trap, with sshd_stop_all); cluster (a master and group servers behind
# sshds, publish, replication rounds, serve counters); trees; numbers.

# functions called through cells/trap look unreachable to shellcheck
# shellcheck disable=SC2317
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(dirname "$BENCH_DIR")
CACHE=${UG_BENCH_CACHE:-$BENCH_DIR/.cache}

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools

have() {
	case $1 in
	sshd) [ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1 ;;
	/*) [ -x "$1" ] ;;
	*) command -v "$1" >/dev/null 2>&1 ;;
	esac
}

# Install the packages of the commands in TOOL_PKG that are missing (as
# root on Debian), or name them and stop.
ensure_tools() {
	local t missing=()
	for t in "${!TOOL_PKG[@]}"; do
		have "$t" || missing+=("${TOOL_PKG[$t]}")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		die "missing packages: ${missing[*]} (install them, or run as root on Debian)"
	fi
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >&2
	for t in "${!TOOL_PKG[@]}"; do
		have "$t" || die "'$t' still missing after installing ${TOOL_PKG[$t]}"
	done
}

SSHD_BIN=""
# shellcheck disable=SC2034 # used by the scripts that source this
find_sshd() {
	if [ -x /usr/sbin/sshd ]; then SSHD_BIN=/usr/sbin/sshd; else SSHD_BIN=$(command -v sshd); fi
}

# ---------------------------------------------------------------- upgrid

# find_upgrid TARGET...: set UPGRID to the binary named by $UPGRID, or
# build the make TARGETs (upgrid and the others the script runs, say
# upgrid-syncd) in UG_BUILDDIR (default bench/.build), configuring it first
# if needed, and set UPGRID to the upgrid built there.
find_upgrid() {
	if [ -n "${UPGRID:-}" ]; then
		[ -x "$UPGRID" ] || die "UPGRID='$UPGRID' is not executable"
		return 0
	fi
	local b=${UG_BUILDDIR:-$BENCH_DIR/.build}
	mkdir -p "$b"
	if [ ! -f "$b/Makefile" ]; then
		if [ ! -x "$SRC_DIR/configure" ]; then
			log "generating configure (autoreconf -fi in $SRC_DIR)"
			(cd "$SRC_DIR" && autoreconf -fi >&2) || die "autoreconf failed"
		fi
		log "configuring upgrid in $b"
		(cd "$b" && "$SRC_DIR/configure" -q >&2) || die "configure failed in '$b'"
	fi
	log "building $* in $b"
	make -C "$b" -j"$(nproc)" "$@" >"$b/bench-make.log" 2>&1 ||
		{ tail -20 "$b/bench-make.log" >&2; die "cannot build $* (log: '$b/bench-make.log')"; }
	UPGRID=$b/upgrid
}

# find_syncd: set UPGRID_SYNCD to the binary it names, or to upgrid-syncd
# next to UPGRID
find_syncd() {
	if [ -z "${UPGRID_SYNCD:-}" ]; then UPGRID_SYNCD=$(dirname "$UPGRID")/upgrid-syncd; fi
	[ -x "$UPGRID_SYNCD" ] || die "UPGRID_SYNCD='$UPGRID_SYNCD' is not executable (build it with 'make upgrid-syncd')"
}

# ---------------------------------------------------------------- npm

# scoped "@a/b" packs as a-b-VERSION.tgz
tgz_name() { local n=${1#@}; printf '%s-%s.tgz' "${n//\//-}" "$2"; }

# Echo "OLD NEW": the requested pair when both exist, else the consecutive
# stable pair closest to the requested new version.
resolve_pair() {
	local name=$1 old=$2 new=$3
	if [ -f "$CACHE/$(tgz_name "$name" "$old")" ] && [ -f "$CACHE/$(tgz_name "$name" "$new")" ]; then
		echo "$old $new"
		return 0
	fi
	npm view "$name" versions --json 2>/dev/null | node -e '
		const [old, want] = process.argv.slice(1);
		let v = JSON.parse(require("fs").readFileSync(0, "utf8"));
		if (!Array.isArray(v)) v = [v];
		const key = s => s.split(".").map(Number);
		const cmp = (a, b) => { a = key(a); b = key(b);
			for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i]; return 0; };
		const st = v.filter(s => /^\d+\.\d+\.\d+$/.test(s)).sort(cmp);
		if (v.includes(old) && v.includes(want)) { console.log(old, want); process.exit(0); }
		if (st.length < 2) process.exit(1);
		let i = st.findIndex(s => cmp(s, want) >= 0);
		if (i < 0) i = st.length - 1;
		if (i < 1) i = 1;
		console.log(st[i - 1], st[i]);
	' "$old" "$new"
}

# fetch NAME VERSION: print the path of the cached tarball, packing it first
fetch() {
	local name=$1 ver=$2 f
	f=$CACHE/$(tgz_name "$name" "$ver")
	if [ ! -s "$f" ]; then
		log "npm pack $name@$ver"
		mkdir -p "$CACHE"
		(cd "$CACHE" && npm pack --silent "$name@$ver" >/dev/null) ||
			die "npm pack '$name@$ver' failed"
		[ -s "$f" ] || die "npm pack '$name@$ver' did not write '$f'"
	fi
	printf '%s' "$f"
}

# unpack TARBALL DIR
unpack() {
	mkdir -p "$2"
	tar -xzf "$1" -C "$2" --strip-components=1 --no-same-owner --no-same-permissions
	# npm tarballs may lack the owner write bit; cp/rsync need to replace files
	chmod -R u+rwX "$2"
}

# prepare_pair ID NAME OLD NEW WHAT OLD_DIR NEW_DIR: resolve the release
# pair in the registry (the next available versions if these are gone),
# download and unpack both trees, and record their sizes in R and the
# pair's label in LABEL (associative arrays of the calling script).
# shellcheck disable=SC2034,SC2004 # R and LABEL are the caller's -A arrays
prepare_pair() {
	local id=$1 name=$2 old=$3 new=$4 what=$5 odir=$6 ndir=$7 uold unew ot nt
	read -r uold unew < <(resolve_pair "$name" "$old" "$new") ||
		die "$id: cannot list the versions of '$name'"
	[ -n "${unew:-}" ] || die "$id: no consecutive versions of '$name' found"
	if [ "$uold $unew" != "$old $new" ]; then
		log "$id: $name $old -> $new is not in the registry; using $uold -> $unew"
	fi
	log "$id: $name $uold -> $unew ($what)"
	ot=$(fetch "$name" "$uold")
	nt=$(fetch "$name" "$unew")
	unpack "$ot" "$odir"
	unpack "$nt" "$ndir"
	R[$id.old_bytes]=$(find "$odir" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
	R[$id.new_bytes]=$(find "$ndir" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
	R[$id.new_files]=$(find "$ndir" -type f | wc -l)
	LABEL[$id]="$id: $name $uold → $unew"
}

# ---------------------------------------------------------------- sshd

# sshd's privilege-separation directory must exist before it starts
sshd_prepare() {
	if [ ! -d /run/sshd ]; then
		mkdir -p /run/sshd 2>/dev/null || die "/run/sshd is missing and cannot be created (run as root)"
		chmod 0755 /run/sshd
	fi
}

# sshd_config DIR PORT LOGLEVEL [EXTRA]: write DIR/sshd_config for a
# loopback sshd with DIR's host key and authorized_keys, key logins only;
# EXTRA (lines) is appended
sshd_config() {
	cat >"$1/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $2
HostKey $1/host_key
PidFile $1/sshd.pid
AuthorizedKeysFile $1/authorized_keys
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
# bash reads ~/.bashrc for commands run over ssh unless SHLVL says it is
# not the first shell
SetEnv SHLVL=1
LogLevel $3
${4:-}
EOF
}

# ---------------------------------------------------------------- ssh

# The bench's loopback SSH: one client key (SSH_DIR/client_key) for its own
# connections, one sshd per NAME on a free 127.0.0.1 port with its own host
# key, all host keys in SSH_DIR/known_hosts. Started by sshd_start, stopped
# by pid with sshd_stop or sshd_stop_all (from the calling script's trap).
# ssh_setup needs W, the scratch directory.
SSH_DIR=""
declare -A SSHD_PID=() SSHD_PORT=()
USER_NAME=$(id -un)

ssh_setup() {
	SSH_DIR=$W/ssh
	mkdir -p "$SSH_DIR"
	sshd_prepare
	ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$SSH_DIR/client_key"
	: >"$SSH_DIR/known_hosts"
}

# authorized_line PUBKEY_FILE CMD: an authorized_keys line for the key,
# with CMD as its forced command ("" for none), always 'restrict'
authorized_line() {
	if [ -n "$2" ]; then
		printf 'command="%s",restrict %s\n' "${2//\"/\\\"}" "$(cat "$1")"
	else
		printf 'restrict %s\n' "$(cat "$1")"
	fi
}

# sshd_start NAME CMD [PUBKEY_FILE CMD2]...: start NAME's sshd on a free
# port, letting in the client key with the forced command CMD ("" for
# none) and each further key with its own, and wait until it listens
sshd_start() {
	local name=$1 cmd=$2 d=$SSH_DIR/$1 port try before
	shift 2
	mkdir -p "$d"
	ssh-keygen -q -t ed25519 -N '' -C "bench-host-$name" -f "$d/host_key"
	{
		authorized_line "$SSH_DIR/client_key.pub" "$cmd"
		while [ $# -ge 2 ]; do
			authorized_line "$1" "$2"
			shift 2
		done
	} >"$d/authorized_keys"
	: >"$d/log"
	for try in $(seq 10); do
		port=$(free_port)
		sshd_config "$d" "$port" INFO "MaxStartups 100:30:200"
		"$SSHD_BIN" -t -f "$d/sshd_config" || die "sshd rejects the config of '$name'"
		before=$(grep -c 'Server listening' "$d/log" || true)
		"$SSHD_BIN" -D -f "$d/sshd_config" -E "$d/log" </dev/null >>"$d/out" 2>&1 &
		SSHD_PID[$name]=$!
		for _ in $(seq 100); do
			[ "$(grep -c 'Server listening' "$d/log" || true)" -le "$before" ] || break
			kill -0 "${SSHD_PID[$name]}" 2>/dev/null || break
			sleep 0.05
		done
		if [ "$(grep -c 'Server listening' "$d/log" || true)" -gt "$before" ]; then
			SSHD_PORT[$name]=$port
			echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/host_key.pub")" >>"$SSH_DIR/known_hosts"
			return 0
		fi
		sshd_stop "$name"
		log "sshd for '$name' did not listen on port $port (try $try)"
	done
	cat "$d/log" >&2
	die "sshd for '$name' does not start"
}

sshd_stop() {
	local pid=${SSHD_PID[$1]:-}
	unset "SSHD_PID[$1]"
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

sshd_stop_all() {
	local n
	for n in "${!SSHD_PID[@]}"; do sshd_stop "$n"; done
}

# ssh command line for rsync -e, to NAME's sshd with the client key
ssh_cmd() {
	printf 'ssh -F /dev/null -p %s -i %s -o IdentitiesOnly=yes -o BatchMode=yes' \
		"${SSHD_PORT[$1]}" "$SSH_DIR/client_key"
	printf ' -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes' "$SSH_DIR/known_hosts"
	printf ' -o Compression=no -o LogLevel=ERROR'
}

# ---------------------------------------------------------------- cluster

# Group servers are named gGsI, server I of group G. chain_order NGROUPS
# CHAIN lists them in chain order, every group's first, then every
# second... (the order --once rounds run in, so each server's upstream is
# ahead); group_servers G CHAIN the servers of group G; cluster_servers
# NGROUPS CHAIN all of them, group by group.
chain_order() {
	local i g
	for i in $(seq "$2"); do
		for g in $(seq "$1"); do echo "g${g}s$i"; done
	done
}

group_servers() {
	local i
	for i in $(seq "$2"); do echo "g${1}s$i"; done
}

cluster_servers() {
	local g
	for g in $(seq "$1"); do group_servers "$g" "$2"; done
}

# cluster_up ID DIR NGROUPS CHAIN KEY_PUB [TERM_PUB [WRAP]]: a master
# repo DIR/master and the servers' repos DIR/gGsI, each behind its own
# sshd (named ID-master, ID-gGsI) whose forced command for the client key
# is `upgrid-syncd --serve --repo R --name N`; the master's cluster file
# naming the groups; and DIR/gGsI.conf, each server's syncd.conf, pointing
# at the master and trusting KEY_PUB. With TERM_PUB, the servers also let
# that key in (the terminals') with the forced command `upgrid-syncd
# --serve --read-only --repo R --name N`. With WRAP, every forced command
# runs as `WRAP TAG COMMAND...`, TAG being N for a terminal's session and
# up:N for a follower's.
cluster_up() {
	local id=$1 d=$2 ng=$3 ch=$4 key=$5 tpub=${6:-} wrap=${7:-} s g cmd tcmd
	local -a extra
	"$UPGRID" -R "$d/master" init >/dev/null || die "$id: upgrid init of the master failed"
	cmd="$UPGRID_SYNCD --serve --repo $d/master --name master"
	[ -z "$wrap" ] || cmd="$wrap up:master $cmd"
	sshd_start "$id-master" "$cmd"
	for s in $(cluster_servers "$ng" "$ch"); do
		"$UPGRID" -R "$d/$s" init >/dev/null || die "$id: upgrid init of '$s' failed"
		cmd="$UPGRID_SYNCD --serve --repo $d/$s --name $s"
		[ -z "$wrap" ] || cmd="$wrap up:$s $cmd"
		extra=()
		if [ -n "$tpub" ]; then
			tcmd="$UPGRID_SYNCD --serve --read-only --repo $d/$s --name $s"
			[ -z "$wrap" ] || tcmd="$wrap $s $tcmd"
			extra=("$tpub" "$tcmd")
		fi
		sshd_start "$id-$s" "$cmd" "${extra[@]}"
	done
	{
		echo "# bench: $ng groups of $ch servers"
		for g in $(seq "$ng"); do
			echo "[group g$g]"
			for s in $(group_servers "$g" "$ch"); do
				echo "server = $s $USER_NAME@127.0.0.1:${SSHD_PORT[$id-$s]} $d/$s"
			done
		done
	} >"$d/master/cluster"
	for s in $(cluster_servers "$ng" "$ch"); do
		cat >"$d/$s.conf" <<EOF
[syncd]
repo = $d/$s
name = $s
master = $USER_NAME@127.0.0.1:${SSHD_PORT[$id-master]} $d/master
master-key = $key
identity = $SSH_DIR/client_key
known-hosts = $SSH_DIR/known_hosts
serve-command = $UPGRID_SYNCD
connect-timeout = 10
idle-timeout = 120
retry = 1
EOF
	done
	log "$id: master and $((ng * ch)) servers up (sshd ports ${SSHD_PORT[$id-master]}, $(for s in $(cluster_servers "$ng" "$ch"); do printf '%s ' "${SSHD_PORT[$id-$s]}"; done | sed 's/ $//'))"
}

# cluster_down ID NGROUPS CHAIN: stop the sshds cluster_up started
cluster_down() {
	local s
	sshd_stop "$1-master"
	for s in $(cluster_servers "$2" "$3"); do sshd_stop "$1-$s"; done
}

# publish_tree ID REPO KEY VERSION TREE OUT: `upgrid publish --json` of
# TREE into REPO, signed with KEY, the JSON into OUT; it must make VERSION
publish_tree() {
	local id=$1 repo=$2 key=$3 v=$4 tree=$5 out=$6 got
	"$UPGRID" -R "$repo" publish -k "$key" -m "v$v" --json "$tree" >"$out" ||
		die "$id: upgrid publish of version $v failed"
	got=$(jq -r .version "$out")
	[ "$got" = "$v" ] || die "$id: publish made version $got, expected $v"
}

# chain_rounds ID DIR PH NGROUPS CHAIN KEY_PUB: one `upgrid-syncd --once`
# round per server of cluster_up's DIR, in chain order, one after the
# other (logs in DIR/logs). Then every server must be at the master's
# version, pass `upgrid verify --pubkey KEY_PUB` and have said it took
# version PH. Records in R (the caller's -A array) the wall time of all
# rounds (ID.PH.ug_wall) and of each (ID.PH.wall.S), and what each server's
# "is now at version" line says, as FROM|BYTES|REBUILT|WHOLE|MADE
# (ID.PH.log.S). With CHAIN_WRAP set, each round runs as `$CHAIN_WRAP
# once:S upgrid-syncd ...` (a wrapper taking a tag, as cluster_up's).
# shellcheck disable=SC2034 # R is the caller's
chain_rounds() {
	local id=$1 d=$2 ph=$3 ng=$4 ch=$5 key=$6 s t0 t1 want got line
	local -a wrap
	mkdir -p "$d/logs"
	log "$id: replicating version $ph to $((ng * ch)) servers"
	t0=$(now)
	for s in $(chain_order "$ng" "$ch"); do
		t1=$(now)
		wrap=()
		[ -z "${CHAIN_WRAP:-}" ] || wrap=("$CHAIN_WRAP" "once:$s")
		"${wrap[@]}" "$UPGRID_SYNCD" -f "$d/$s.conf" --once >"$d/logs/$s.$ph.log" 2>&1 ||
			{ cat "$d/logs/$s.$ph.log" >&2; die "$id: upgrid-syncd --once on '$s' failed (version $ph)"; }
		R[$id.$ph.wall.$s]=$(secs "$t1" "$(now)")
	done
	R[$id.$ph.ug_wall]=$(secs "$t0" "$(now)")
	want=$(cat "$d/master/refs/stable")
	for s in $(cluster_servers "$ng" "$ch"); do
		got=$(cat "$d/$s/refs/stable" 2>/dev/null || echo none)
		[ "$got" = "$want" ] || die "$id: '$s' is at version $got, the master at $want"
		"$UPGRID" -R "$d/$s" verify --pubkey "$key" >"$d/logs/$s.$ph.verify" 2>&1 ||
			{ cat "$d/logs/$s.$ph.verify" >&2; die "$id: '$s' does not verify at version $ph"; }
		line=$(grep -E "is now at version $ph " "$d/logs/$s.$ph.log" | tail -1 || true)
		[ -n "$line" ] || { cat "$d/logs/$s.$ph.log" >&2; die "$id: '$s' did not say it took version $ph"; }
		# "... (from 'g1s1' (...): N bytes; R objects rebuilt from deltas,
		# F fetched whole; M deltas made here)"
		R[$id.$ph.log.$s]=$(sed -E 's/.*is now at version [0-9]+ \(from (.*): ([0-9]+) bytes; ([0-9]+) objects rebuilt from deltas, ([0-9]+) fetched whole; ([0-9]+) deltas made here\).*/\1|\2|\3|\4|\5/' <<<"$line")
	done
	log "$id: version $ph on all $((ng * ch)) servers in ${R[$id.$ph.ug_wall]} s; all verify"
}

# stats_snap DIR TAG NODE...: each node's serve counters (`upgrid-syncd
# --stats` of the repo DIR/NODE) into DIR/stats/TAG.NODE.json
stats_snap() {
	local d=$1 tag=$2 n
	shift 2
	mkdir -p "$d/stats"
	for n in "$@"; do
		"$UPGRID_SYNCD" --stats --repo "$d/$n" >"$d/stats/$tag.$n.json" ||
			die "upgrid-syncd --stats of '$d/$n' failed"
	done
}

# stats_diff BEFORE AFTER: counter differences after - before as "key
# value" lines: bytes_out, bytes_in, sessions, KIND.count, KIND.bytes for
# each blob kind.
stats_diff() {
	jq -rn --slurpfile a "$1" --slurpfile b "$2" '
		def d($p): (($b[0] | getpath($p)) // 0) - (($a[0] | getpath($p)) // 0);
		(["bytes_out", "bytes_in", "sessions"] | .[] | "\(.) \(d([.]))"),
		(($b[0].sent // {}) | keys[] as $k |
			"\($k).count \(d(["sent", $k, "count"]))",
			"\($k).bytes \(d(["sent", $k, "bytes"]))")'
}

# ---------------------------------------------------------------- trees

# Deterministic tar: sorted names, fixed mtime and owner, so two trees
# differ only where their files do.
det_tar() {
	LC_ALL=C tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
		--format=gnu -C "$1" -cf "$2" .
}

# ---------------------------------------------------------------- numbers

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

commas() { echo "$1" | sed -e :a -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/;ta'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b <= 0) print "n/a"; else printf "%.3f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "n/a"; else if (r <= t) print "PASS"; else print "MISS" }'; }

# a TCP port free on 127.0.0.1 right now
free_port() {
	node -e 'const s = require("net").createServer();
		s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
