#!/bin/sh
# t006: structural changes of config and data files decide the action
# (patch, merge, migrate), a column rename comes from the rules, and a
# malformed INI or CSV is published as binary with a warning, never a crash.
. "$UG_SRCDIR/tests/integration/lib.sh"

export UPGRID_REPO="$T/repo" UPGRID_KEY="$T/key"
run_ug 0 keygen
run_ug 0 init
tree="$T/tree"
mkdir -p "$tree/.upgrid" "$tree/etc" "$tree/data"
cat > "$tree/.upgrid/rules" <<'R'
config etc/*
data data/*.csv
rename-column data/tariffs.csv tariff price
R
printf '[agent]\nid = m1\npoll = 60\n' > "$tree/etc/agent.ini"
printf 'HOST=gw\nPORT=8883\n' > "$tree/etc/uplink.env"
printf 'code,tariff,period\nT1,0.10,peak\nT2,0.20,night\n' > "$tree/data/tariffs.csv"
printf 'a,b\n1,2\n' > "$tree/data/plain.csv"
run_ug 0 publish "$tree"
ok "v1 published"

action() { jq -r --arg p "$2" '.files[] | select(.path == $p) | .action' "$1"; }
cls() { jq -r --arg p "$2" '.files[] | select(.path == $p) | .class' "$1"; }

# v2: value change only (patch), new key (merge), renamed + added column
# (migrate), rows only (patch)
printf '[agent]\nid = m1\npoll = 30\n' > "$tree/etc/agent.ini"
printf 'HOST=gw\nPORT=8883\nTLS=yes\n' > "$tree/etc/uplink.env"
printf 'code,price,period,currency\nT1,0.10,peak,EUR\nT2,0.20,night,EUR\n' > "$tree/data/tariffs.csv"
printf 'a,b\n1,3\n' > "$tree/data/plain.csv"
run_ug 0 publish "$tree"
run_ug 0 show --json 2
cp "$T/out" "$T/m2"
[ "$(action "$T/m2" etc/agent.ini)" = patch ] || fail "content-only config change must be patch"
jq -e '.files[] | select(.path == "etc/agent.ini") | .structure.structural == false and .structure.keys_changed == [["agent","poll"]]' "$T/m2" >/dev/null ||
	fail "agent.ini structure"
[ "$(action "$T/m2" etc/uplink.env)" = merge ] || fail "config with a new key must be merge"
jq -e '.files[] | select(.path == "etc/uplink.env") | .structure.format == "kv" and .structure.keys_added == [["","TLS"]]' "$T/m2" >/dev/null ||
	fail "uplink.env structure"
[ "$(action "$T/m2" data/tariffs.csv)" = migrate ] || fail "data with new columns must be migrate"
jq -e '.files[] | select(.path == "data/tariffs.csv") | .structure.columns_renamed == [["tariff","price"]] and .structure.columns_added == ["currency"]' "$T/m2" >/dev/null ||
	fail "tariffs.csv rename from the rules"
[ "$(action "$T/m2" data/plain.csv)" = patch ] || fail "rows-only data change must be patch"
ok "decision table: patch, merge, migrate, patch"

run_ug 0 diff 1 2
expect_in "$T/out" "\+ key TLS" "diff shows the new key"
expect_in "$T/out" "> column tariff -> price" "diff shows the rename"
expect_in "$T/out" "csv structural change: migrate" "diff shows the action"
ok "upgrid diff shows structural changes"

# malformed: duplicate key, unterminated quote, NUL byte, a 10 MB line
printf '[agent]\nid = m1\nid = m2\n' > "$tree/etc/agent.ini"
printf 'code,price\n"T1,0.10\n' > "$tree/data/plain.csv"
printf 'HOST=gw\0\nPORT=1\n' > "$tree/etc/uplink.env"
{ printf 'k = '; head -c 10485760 /dev/zero | tr '\0' x; printf '\n'; } > "$tree/etc/long.conf"
run_ug 0 publish "$tree"
expect_in "$T/err" "etc/agent.ini': not a valid config file.*duplicate key" "duplicate key warned"
expect_in "$T/err" "data/plain.csv': not a valid data file.*unterminated" "unterminated quote warned"
expect_in "$T/err" "etc/uplink.env': not a valid config file.*NUL" "NUL byte warned"
expect_in "$T/err" "etc/long.conf': not a valid config file" "10 MB line warned"
run_ug 0 show --json 3
for f in etc/agent.ini data/plain.csv etc/uplink.env etc/long.conf; do
	[ "$(cls "$T/out" "$f")" = binary ] || fail "$f should be published as binary"
done
ok "malformed INI/CSV/env published as binary with a warning"

# the same malformed tree again: same verdict, no new version
run_ug 0 publish "$tree"
expect_in "$T/out" "no new version" "malformed but unchanged tree"
expect_not_in "$T/err" "not a valid" "an unchanged malformed file is not warned about again"
run_ug 0 verify
ok "unchanged malformed files make no new version; repo verifies"

done_testing
