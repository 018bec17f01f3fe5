#!/usr/bin/env bash
# Bad bytes in a rustydb data file give a clear ERROR naming the relation
# and the block, never a crash or wrong rows; verify_table lists them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

rdb_node_init amcorrupt
rdb_node_start amcorrupt
rdb_psql amcorrupt "CREATE EXTENSION rustydb;
	CREATE TABLE t (a int, b text) USING rustydb;
	INSERT INTO t SELECT g, 'value ' || g FROM generate_series(1, 2000) g;
	CREATE TABLE u (a int) USING rustydb;
	INSERT INTO u VALUES (1);
	UPDATE u SET a = 2;
	CREATE TABLE d (id int PRIMARY KEY, n int, pad text) USING rustydb;
	INSERT INTO d VALUES (1, 0, repeat('p', 100));"
# (not in the transaction that created d: its rows would update out of place;
# previous versions to undo at once, for the delta records checked below)
rdb_psql amcorrupt "SET rustydb.inplace_previous_on_page = off; UPDATE d SET n = 1"
rdb_psql amcorrupt "SET rustydb.inplace_previous_on_page = off; UPDATE d SET n = 2"
# e: its row's previous version stays on the page (the default)
rdb_psql amcorrupt "CREATE TABLE e (id int PRIMARY KEY, n int, pad text) USING rustydb;
	INSERT INTO e VALUES (1, 0, repeat('e', 100));"
rdb_psql amcorrupt "UPDATE e SET n = 1"
rdb_psql amcorrupt "CHECKPOINT"
file=$(rdb_dir amcorrupt)/data/$(rdb_psql amcorrupt "SELECT pg_relation_filepath('t')")
ufile=$(rdb_dir amcorrupt)/data/$(rdb_psql amcorrupt "SELECT pg_relation_filepath('u')")
rdb_is "u: an updated row, verify_table finds nothing" "$(rdb_psql amcorrupt "SELECT count(*) FROM rustydb.verify_table('u')")" "0"
rdb_is "clean table: verify_table finds nothing" "$(rdb_psql amcorrupt "SELECT count(*) FROM rustydb.verify_table('t')")" "0"
rdb_is "d: two in-place updates, verify_table finds nothing" "$(rdb_psql amcorrupt "SELECT count(*) FROM rustydb.verify_table('d')")" "0"
rdb_is "e: an in-place update, verify_table finds nothing" "$(rdb_psql amcorrupt "SELECT count(*) FROM rustydb.verify_table('e')")" "0"
dundo=$(rdb_dir amcorrupt)/data/$(rdb_psql amcorrupt "SELECT pg_relation_filepath(rustydb.undo_relation('d'))")
efile=$(rdb_dir amcorrupt)/data/$(rdb_psql amcorrupt "SELECT pg_relation_filepath('e')")
rdb_node_stop amcorrupt

# e's data block 0 (file block 1): the row's version (line pointer 1) ends
# its header with the in-page pointer to its previous version (offset in
# the low 16 bits); that version's t_ctid offset (bytes 16-17) made 9, as
# if it were another row's
lp=$(od -An -tu4 -j $((8192 + 24)) -N4 "$efile" | tr -d ' ')
vat=$((8192 + (lp & 0x7fff)))
hoff=$(od -An -tu1 -j $((vat + 22)) -N1 "$efile" | tr -d ' ')
prevoff=$(od -An -tu2 -j $((vat + hoff - 8)) -N2 "$efile" | tr -d ' ')
rdb_is "e: the pointer names a version on the page (bit 63 set)" \
	"$(od -An -tu1 -j $((vat + hoff - 1)) -N1 "$efile" | tr -d ' ')" "128"
printf '\x09\x00' | dd of="$efile" bs=1 seek=$((8192 + prevoff + 16)) conv=notrunc status=none

# d's undo store: block 1 is the first ring page; its first record (at 32:
# page header 24, logical page number 8) holds the first version as a delta
# version (kind 2, byte 33) against the second: a 24-byte record header,
# the version's 24-byte tuple header, then the prefix length. A prefix
# longer than the second version's payload cannot be rebuilt.
rdb_is "d: the oldest version is stored as a delta version" "$(od -An -tu1 -j $((8192 + 33)) -N1 "$dundo" | tr -d ' ')" "2"
printf '\xff\xff' | dd of="$dundo" bs=1 seek=$((8192 + 32 + 24 + 24)) conv=notrunc status=none

# poke BYTES (hex) at OFFSET of the file
poke() { printf "$(echo "$2" | sed 's/../\\x&/g')" | dd of="$file" bs=1 seek="$1" conv=notrunc status=none; }

# Data block N (the N of ctid (N,x)) is block N + 1 of the file: block 0 is the metapage.
rdb_is "the metapage comes first: 4 bytes of magic at offset 24" "$(od -An -tx4 -j 24 -N4 "$file" | tr -d ' ')" "5244424d"
at() { echo $((($1 + 1) * 8192 + $2)); } # at DATA_BLOCK OFFSET: byte offset in the file
# data block 0: the rustydb special space (magic) destroyed
poke "$(at 0 $((8192 - 8)))" "deadbeef"
# data block 2: first line pointer points past the end of the page
poke "$(at 2 24)" "409fe803"
# data block 4: the first tuple's header length (t_hoff) made absurd
lp=$(od -An -tu4 -j "$(at 4 24)" -N4 "$file" | tr -d ' ')
tupoff=$((lp & 0x7fff))
poke "$(at 4 $((tupoff + 22)))" "05"
# the metapage: its magic number
poke 24 "00000000"
# u: the committed update's old version (data block 0, first tuple) links to block 9999
lp=$(od -An -tu4 -j 8216 -N4 "$ufile" | tr -d ' ')
printf '\x0f\x27' | dd of="$ufile" bs=1 seek=$((8192 + (lp & 0x7fff) + 14)) conv=notrunc status=none
rdb_node_start amcorrupt

rdb_is "a committed update's broken version link is reported (an aborted one's is not: am_meta)" \
	"$(rdb_psql amcorrupt "SELECT blkno || ':' || offnum || ' ' || msg FROM rustydb.verify_table('u')")" \
	"0:1 version link (9999,2) points outside the relation"

out=$(rdb_psql amcorrupt "SELECT count(*) FROM t" 2>&1 || true)
rdb_ok "seq scan: ERROR naming relation and block 0" \
	bash -c "echo '$out' | grep -q 'invalid rustydb page in block 0 of relation \"t\"'"
out=$(rdb_psql amcorrupt "SELECT * FROM t WHERE ctid = '(2,1)'" 2>&1 || true)
rdb_ok "TID fetch: ERROR naming relation and tuple (2,1)" \
	bash -c "echo '$out' | grep -q 'invalid rustydb tuple (2,1) in relation \"t\": line pointer out of range'"
out=$(rdb_psql amcorrupt "SELECT * FROM t WHERE ctid = '(4,1)'" 2>&1 || true)
rdb_ok "TID fetch: ERROR naming relation and tuple (4,1)" \
	bash -c "echo '$out' | grep -q 'invalid rustydb tuple (4,1) in relation \"t\": bad header length'"
out=$(rdb_psql amcorrupt "UPDATE t SET b = 'x' WHERE ctid = '(4,1)'" 2>&1 || true)
rdb_ok "UPDATE of a damaged tuple: ERROR, not a crash" \
	bash -c "echo '$out' | grep -q 'invalid rustydb tuple (4,1)'"
rdb_is "the server is still up" "$(rdb_psql amcorrupt "SELECT 1")" "1"
rdb_is "verify_table lists the four problems (the metapage's with a null block)" \
	"$(rdb_psql amcorrupt "SELECT DISTINCT coalesce(blkno::text, 'meta') || ':' || coalesce(offnum::text, '-') || ' ' || (blkno IS NULL AND msg = 'metapage: bad metapage magic number')::text FROM rustydb.verify_table('t') ORDER BY 1")" \
	"0:- false
2:1 false
4:1 false
meta:- true"
out=$(rdb_psql amcorrupt "VACUUM t" 2>&1 || true)
rdb_ok "VACUUM checks the metapage: ERROR naming the relation" \
	bash -c "echo '$out' | grep -q 'invalid rustydb metapage in relation \"t\"'"
rdb_is "undamaged blocks still read" "$(rdb_psql amcorrupt "SELECT count(*) FROM t WHERE ctid >= '(5,0)' AND ctid < '(6,0)'")" \
	"$(rdb_psql amcorrupt "SELECT count(*) FROM t WHERE ctid >= '(6,0)' AND ctid < '(7,0)'")"
rdb_is "d: a delta record that does not fit its newer version is reported" \
	"$(rdb_psql amcorrupt "SELECT blkno || ':' || offnum || ' ' || msg FROM rustydb.verify_table('d')")" \
	"0:1 undo chain: the delta record does not fit the version pointing at it"
rdb_is "d: the current version still reads" "$(rdb_psql amcorrupt "SELECT n FROM d WHERE id = 1")" "2"
rdb_is "e: a previous version on the page that is another row's is reported" \
	"$(rdb_psql amcorrupt "SELECT blkno || ':' || offnum || ' ' || msg FROM rustydb.verify_table('e')")" \
	"0:1 undo chain: the previous version on the page belongs to another row"
rdb_is "e: the current version still reads" "$(rdb_psql amcorrupt "SELECT n FROM e WHERE id = 1")" "1"
rdb_ok "no backend crashed" bash -c "! grep -q 'terminated by signal' '$(rdb_dir amcorrupt)/server.log'"

rdb_summary
