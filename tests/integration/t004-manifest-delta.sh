#!/bin/sh
# t004: on a tree of 4,000 files with 90 changed, the manifest delta a
# terminal pulls is under 10% of the compressed full manifest, and it
# reproduces the manifest exactly (verify applies it).
. "$UG_SRCDIR/tests/integration/lib.sh"

R="$T/repo"
export UPGRID_REPO="$R" UPGRID_KEY="$T/key"
run_ug 0 keygen
run_ug 0 init
# level 3 keeps the test quick; the ratio is about layout, not level
sed -i 's/^level = .*/level = 3/' "$R/config"

# 4,000 small files in 40 directories, distinct content
awk -v root="$T/tree" 'BEGIN {
	for (d = 0; d < 40; d++) {
		dir = sprintf("%s/pkg%02d/lib", root, d)
		system("mkdir -p " dir)
		for (f = 0; f < 100; f++) {
			file = sprintf("%s/mod%03d.js", dir, f)
			printf "// module %d/%d\nexport const id = %d;\n", d, f, d * 1000 + f > file
			close(file)
		}
	}
}'
[ "$(find "$T/tree" -type f | wc -l)" -eq 4000 ] || fail "tree does not hold 4000 files"
run_ug 0 publish --json "$T/tree"
ok "published 4000 files"

# change 90 of them
i=0
for f in $(find "$T/tree" -type f | sort | awk 'NR % 44 == 0' | head -90); do
	echo "// changed" >> "$f"
	i=$((i + 1))
done
[ "$i" -eq 90 ] || fail "changed $i files, not 90"
run_ug 0 publish --json "$T/tree"
[ "$(json_get "$T/out" .modified)" = 90 ] || fail "expected 90 modified files"
full=$(json_get "$T/out" .manifest_bytes)
md=$(json_get "$T/out" '.pairs[0].manifest_delta_bytes')
[ "$md" -gt 0 ] || fail "no manifest delta"
[ $((md * 10)) -lt "$full" ] || fail "manifest delta $md is not under 10% of $full"
ok "manifest delta $md bytes < 10% of compressed manifest $full bytes"

[ -f "$R/manifests/stable/2.from-1.zst" ] || fail "manifest delta file missing"
# each version is also kept compressed on its own ("from 0"), what a
# server or terminal without an earlier manifest fetches
for v in 1 2; do
	[ -f "$R/manifests/stable/$v.from-0.zst" ] || fail "compressed manifest $v missing"
done
[ "$(stat -c %s "$R/manifests/stable/2.from-0.zst")" -eq "$full" ] ||
	fail "compressed manifest is not the $full bytes publish reported"
run_ug 0 verify
expect_in "$T/out" " 3 manifest deltas" "verify checked the manifest deltas"
ok "verify reproduced the manifest from the delta and from the compressed copies"
# a corrupt compressed copy is found
flip_byte "$R/manifests/stable/2.from-0.zst"
run_ug 3 verify
expect_in "$T/err" "manifest delta from 0 is corrupt" "verify names the damaged copy"
ok "a damaged compressed manifest is reported"

done_testing
