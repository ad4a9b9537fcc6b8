# term-lib.sh - a master, group servers on real sshd, and terminals, for
# the terminal tests (sourced after lib.sh and ssh-lib.sh).
#
#   term_master                  master repo $M, key $T/key, pub $T/master.pub
#   term_servers "g1:a b g2:c"   one repo + sshd per server, the cluster file
#   term_replicate               one syncd --once round on every server, in
#                                chain order (fails the test on an error)
#   term_conf ID SEED... [-- LINES]  $T/term/ID.conf with its own root/state
#   pull ID [ARGS]               upgrid pull; status in $pst, output in
#                                $T/term/ID.out (stdout+stderr)
#   tstatus ID JQ                a field of 'upgrid status --json'
#   seed NAME                    the seed line value of server NAME
SYNCD="$UG_BUILDDIR/upgrid-syncd"
export UPGRID_SYNCD="$SYNCD"
M=$T/master
TERM_SERVERS=""

term_master() {
	"$UPGRID" -R "$M" init >/dev/null
	"$UPGRID" keygen -f "$T/key" >/dev/null
	cp "$T/key.pub" "$T/master.pub"
	ug_sshd_start master "$SYNCD --serve --repo $M --name master"
}

term_servers() {
	: >"$M/cluster"
	for spec in $1; do
		case $spec in
		*:*)
			echo "[group ${spec%%:*}]" >>"$M/cluster"
			spec=${spec#*:}
			;;
		esac
		[ -n "$spec" ] || continue
		"$UPGRID" -R "$T/$spec" init >/dev/null
		ug_sshd_start "$spec" "$SYNCD --serve --repo $T/$spec --name $spec"
		echo "server = $spec root@127.0.0.1:$(ug_sshd_port "$spec") $T/$spec" >>"$M/cluster"
		cat >"$T/$spec.conf" <<EOF
[syncd]
repo = $T/$spec
name = $spec
master = root@127.0.0.1:$(ug_sshd_port master) $M
master-key = $T/master.pub
identity = $T/ssh/client_key
known-hosts = $T/ssh/known_hosts
serve-command = $SYNCD
connect-timeout = 5
idle-timeout = 20
EOF
		TERM_SERVERS="$TERM_SERVERS $spec"
	done
}

term_replicate() {
	for s in $TERM_SERVERS; do
		"$SYNCD" -f "$T/$s.conf" --once >"$T/$s.log" 2>&1 ||
			{ cat "$T/$s.log"; fail "$s: syncd --once failed"; }
	done
}

seed() {
	echo "root@127.0.0.1:$(ug_sshd_port "$1") $T/$1"
}

# term_conf ID SERVER... [-- EXTRA-LINE...]
term_conf() {
	id=$1
	shift
	mkdir -p "$T/term"
	{
		echo "[terminal]"
		echo "id = $id"
		while [ $# -gt 0 ] && [ "$1" != -- ]; do
			echo "seed = $(seed "$1")"
			shift
		done
		[ $# -eq 0 ] || shift
		echo "master-key = $T/master.pub"
		echo "identity = $T/ssh/client_key"
		echo "known-hosts = $T/ssh/known_hosts"
		echo "root = $T/term/$id/current"
		echo "state = $T/term/$id/state"
		echo "splay = 0"
		echo "stall-timeout = 10"
		for line in "$@"; do echo "$line"; done
	} >"$T/term/$id.conf"
}

pull() {
	id=$1
	shift
	set +e
	"$UPGRID" pull -C "$T/term/$id.conf" "$@" >"$T/term/$id.out" 2>&1
	pst=$?
	set -e
}

tstatus() {
	"$UPGRID" status -C "$T/term/$1.conf" --json | jq -r "$2"
}

# full_stored VERSION: bytes of every object of a version (a full download)
full_stored() {
	"$UPGRID" -R "$M" show --json "$1" | jq '[.files[].stored] | add'
}
