# shellcheck shell=bash
# lib.sh - helpers shared by the bench scripts (sourced by bash; not run).
#
# Sets BENCH_DIR (this directory), SRC_DIR (the source tree) and CACHE
# (the npm tarball cache, UG_BENCH_CACHE or bench/.cache). A script that
# sources it declares TOOL_PKG (command -> Debian package) before it calls
# ensure_tools.

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

# ---------------------------------------------------------------- numbers

commas() { echo "$1" | sed -e :a -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/;ta'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b <= 0) print "n/a"; else printf "%.3f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "n/a"; else if (r <= t) print "PASS"; else print "MISS" }'; }

# a TCP port free on 127.0.0.1 right now
free_port() {
	node -e 'const s = require("net").createServer();
		s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
