#!/bin/sh
# demo.sh - the main job until the terminal side exists: init a repo,
# publish two versions of contrib/sample, show what changed, verify the
# repo, and print how many bytes the deltas save over a full download.
#
#   contrib/demo.sh BUILDDIR     (run by 'make demo')
set -eu

builddir=${1:?usage: demo.sh BUILDDIR}
srcdir=$(cd "$(dirname "$0")/.." && pwd)
upgrid="$builddir/upgrid"
[ -x "$upgrid" ] || { echo "demo: '$upgrid' not built; run make first" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/upgrid-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }

export UPGRID_REPO="$work/repo" UPGRID_KEY="$work/master.key"

say "a signing key and an empty repo"
run "$upgrid" keygen -C "demo master"
run "$upgrid" init

say "publish version 1 of the sample tree"
cp -a "$srcdir/contrib/sample/v1" "$work/tree"
run "$upgrid" publish -m "meter agent 1.4.0" "$work/tree"

say "publishing the same tree again makes no new version"
run "$upgrid" publish "$work/tree"

say "the operator edits the tree: new binary, structural config change, new CSV column"
rm -rf "$work/tree"
cp -a "$srcdir/contrib/sample/v2" "$work/tree"
run "$upgrid" publish -m "meter agent 1.5.0" --json "$work/tree" > "$work/v2.json"
cat "$work/v2.json"

say "what changed"
run "$upgrid" log
run "$upgrid" diff 1 2
run "$upgrid" show 2

say "verify every object, delta and signature"
run "$upgrid" verify

say "bytes a terminal on version 1 pulls"
if command -v jq >/dev/null 2>&1; then
	full=$(jq '.full_bytes' "$work/v2.json")
	best=$(jq '.pairs[0].best_bytes' "$work/v2.json")
	bundle=$(jq '.pairs[0].bundle_bytes' "$work/v2.json")
	perfile=$(jq '.pairs[0].per_file_bytes' "$work/v2.json")
	mdelta=$(jq '.pairs[0].manifest_delta_bytes' "$work/v2.json")
	printf '  full download of version 2: %8d bytes\n' "$full"
	if [ "$bundle" -gt 0 ]; then
		printf '  bundle delta:               %8d bytes\n' "$bundle"
	else
		printf '  bundle delta:               none kept (not smaller than the per-file deltas)\n'
	fi
	printf '  per-file deltas:            %8d bytes\n' "$perfile"
	printf '  manifest delta:             %8d bytes\n' "$mdelta"
	printf '  a terminal on 1 pulls:      %8d bytes (%d%% of full, %.1fx less)\n' \
		"$best" $((100 * best / full)) "$(echo "$full $best" | awk '{printf "%.1f", $1/$2}')"
fi
echo
echo "demo finished: repo was in $work/repo (removed on exit)"
