#!/bin/sh
# The demo (contrib/demo.sh, the README's first command) in its short
# form: master tree + upgrid-watch, 2 groups of 3 group servers on real
# sshd following their chains, 6 terminals running upgrid agent, one with
# a local config edit and one with a local data row; the master tree
# changes (binary, config structure, CSV column). Its final table must
# show every terminal on the new version, each having pulled under 20% of
# a full download, the config edit kept beside the upstream change, every
# CSV row kept under the new column; and the demo must leave no process
# behind.
. "$UG_SRCDIR/tests/integration/lib.sh"
. "$UG_SRCDIR/tests/integration/ssh-lib.sh"

# the demo starts its own servers; this only skips (or fails, with
# UG_TEST_NO_SKIP=1) where sshd cannot run
ug_ssh_setup

table=$T/table.jsonl
set +e
TMPDIR=$T UG_DEMO_TABLE=$table sh "$UG_SRCDIR/contrib/demo.sh" --check "$UG_BUILDDIR" \
	>"$T/demo.out" 2>&1
st=$?
set -e
cat "$T/demo.out"
[ "$st" -eq 0 ] || fail "the demo exited $st"
ok "the demo runs to its end and exits 0"

# no process of the demo survives it (they ran from its work directory)
sleep 0.2
if ps -eo pid=,args= | grep -F "$T/upgrid-demo." | grep -v grep >"$T/left"; then
	cat "$T/left"
	fail "processes of the demo are still running"
fi
ls -d "$T"/upgrid-demo.* >/dev/null 2>&1 && fail "the demo left its work directory"
ok "the demo stopped every process it started and removed its work directory"

[ -s "$table" ] || fail "the demo wrote no table to UG_DEMO_TABLE"
[ "$(wc -l <"$table")" -eq 6 ] || { cat "$table"; fail "the table does not have 6 terminals"; }
jq -e . "$table" >/dev/null || { cat "$table"; fail "the table is not JSON lines"; }

# check FILTER MESSAGE: FILTER is true for every terminal of the table
check() {
	bad=$(jq -r "select(($1) | not) | .terminal" "$table")
	[ -z "$bad" ] || { cat "$table"; fail "$2: $(echo "$bad" | tr '\n' ' ')"; }
}
check '.latest >= 2 and .version == .latest' "not on the new version"
ok "all 6 terminals run the new version"
check '.bytes > 0 and .full_bytes > 0 and .bytes * 5 < .full_bytes' \
	"pulled 20% of a full download or more"
ok "each terminal pulled less than 20% of a full download"

[ "$(jq -s '[.[] | select(.config_edit == "kept")] | length' "$table")" -eq 1 ] ||
	{ cat "$table"; fail "the terminal with a local config edit did not keep it"; }
check '.config_edit != "lost"' "lost its local config edit"
check '.config_upstream' "did not get the upstream config change"
ok "the local config edit is kept, beside the new version's config change"

check '.rows_before >= 200 and .rows_kept == .rows_before and .rows_after == .rows_before' \
	"lost CSV rows"
[ "$(jq -s '[.[] | select(.rows_before > 200)] | length' "$table")" -eq 1 ] ||
	{ cat "$table"; fail "the terminal's local CSV row is not in the table"; }
check '.new_column' "has no new CSV column"
ok "every CSV row is kept, the local one too, under the new column"

expect_in "$T/demo.out" "^== each terminal now" "the demo prints its table"
expect_in "$T/demo.out" "^  meter-3 +2 " "the table has a line per terminal"
done_testing
