#!/usr/bin/env bash
# Acceptance tests of TDE on disk (issue 4, acceptance 1, 3 and 4):
#  - rows carrying a unique marker, and a large value carrying it, in an
#    encrypted rustydb table: after CHECKPOINT and a WAL switch no file under
#    the data directory contains the marker; the same test on an unencrypted
#    rustydb table finds its marker (so the test can fail);
#  - a byte flipped inside an encrypted payload on disk, or inside a sealed
#    large value's TOAST chunk, gives a clear error naming the relation and
#    the block, verify_encryption reports it (block, offset), and other
#    tables keep working;
#  - crash recovery and a streaming standby on encrypted tables.
# Needs the rustydb table access method; without it the script says so and
# checks nothing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

KEYS=$RDB_WORK/tde_disk_keys
mkdir -p "$KEYS"
chown "$RDB_SERVER_USER" "$KEYS"
RING=$KEYS/ring
rdb_as_server bash "$ROOT/scripts/rustydb-keyring" create "$RING" >/dev/null

rdb_node_init tdisk_p
rdb_node_conf tdisk_p "rustydb.keyring_file = '$RING'"
rdb_node_start tdisk_p
rdb_psql tdisk_p "CREATE EXTENSION rustydb"
handler=$(rdb_psql tdisk_p "SELECT amhandler::text FROM pg_am WHERE amname = 'rustydb'")
if [ -z "$handler" ]; then
	rdb_log "skipped: the rustydb table access method is not part of this build"
	rdb_summary
	exit 0
fi

q() { rdb_psql tdisk_p "$1" 2>&1 || true; }
ENC=RDBMARK-ENC-$RANDOM$RANDOM
PLAIN=RDBMARK-PLAIN-$RANDOM$RANDOM

# large values stored uncompressed, so the plain table's marker is literally on disk
for t in enc plain_t; do
	opt=$([ $t = enc ] && echo "encrypted = true" || echo "encrypted = false")
	rdb_psql tdisk_p "CREATE TABLE $t (id int, v text, big text) USING rustydb WITH ($opt);
		ALTER TABLE $t ALTER COLUMN big SET STORAGE EXTERNAL"
done
# the same statements on the encrypted table and on a heap reference table
rdb_psql tdisk_p "CREATE TABLE heap_ref (id int, v text, big text) USING heap"
# (the heap table gets its own marker: its rows are plaintext in WAL)
REF=RDBMARK-REF-$RANDOM$RANDOM
for t in enc heap_ref; do
	m=$([ $t = enc ] && echo "$ENC" || echo "$REF")
	rdb_psql tdisk_p "INSERT INTO $t SELECT i, '$m row ' || i, NULL FROM generate_series(1, 200) i;
		INSERT INTO $t VALUES (100001, 'large', repeat('$m ' || md5('x'), 3000));
		UPDATE $t SET v = v || ' updated' WHERE id % 10 = 0;
		DELETE FROM $t WHERE id % 17 = 0"
done
rdb_psql tdisk_p "INSERT INTO plain_t SELECT i, '$PLAIN row ' || i, NULL FROM generate_series(1, 200) i;
	INSERT INTO plain_t VALUES (100001, 'large', repeat('$PLAIN ' || md5('x'), 3000))"
CONTENT="SELECT md5(string_agg(id || ':' || replace(v, '%M', 'M') || ':' || coalesce(md5(replace(big, '%M', 'M')), '-'), ',' ORDER BY id))"
rdb_is "the encrypted table reads back what was written" \
	"$(q "${CONTENT//%M/$ENC} FROM enc")" "$(q "${CONTENT//%M/$REF} FROM heap_ref")"
rdb_psql tdisk_p "DROP TABLE heap_ref"
rdb_psql tdisk_p "CHECKPOINT" >/dev/null
rdb_psql tdisk_p "SELECT pg_switch_wal()" >/dev/null
rdb_psql tdisk_p "CHECKPOINT" >/dev/null
DATA=$(rdb_dir tdisk_p)/data
rdb_is "no file under the data directory holds the encrypted table's marker" \
	"$(grep -rlaF "$ENC" "$DATA" | sed "s|^$DATA/||" | tr '\n' ' ')" ""
rdb_ok "the unencrypted table's marker is found on disk (the test can fail)" \
	test "$(grep -rlaF "$PLAIN" "$DATA" | wc -l)" -gt 0
rdb_ok "... in its table file and in WAL" \
	bash -c "grep -rlaF '$PLAIN' '$DATA/base' >/dev/null && grep -rlaF '$PLAIN' '$DATA/pg_wal' >/dev/null"
rdb_is "verify_encryption passes" "$(q "SELECT bool_and(ok) FROM rustydb.verify_encryption('enc') WHERE ok IS NOT NULL")" "t"

# ---- standby and crash recovery on the encrypted table
rdb_standby_create tdisk_p tdisk_s
rdb_psql tdisk_p "INSERT INTO enc SELECT i, '$ENC more ' || i, NULL FROM generate_series(1000, 1500) i"
rdb_wait_replay tdisk_p tdisk_s
rdb_compare tdisk_p tdisk_s "SELECT id, v, md5(big) FROM enc ORDER BY id"
# an open transaction that has written 100k encrypted rows when the server dies
(rdb_psql tdisk_p "BEGIN; INSERT INTO enc SELECT i, 'x', NULL FROM generate_series(2000, 101999) i;
	SELECT pg_sleep(120); COMMIT" >/dev/null 2>&1 || true) &
rdb_wait_for "the open transaction to have inserted its rows (in pg_sleep)" 120 \
	rdb_psql_true tdisk_p "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
rdb_node_crash tdisk_p
wait || true
rdb_node_start tdisk_p
rdb_is "after kill -9, the committed rows of the encrypted table read" \
	"$(q "SELECT count(*) FROM enc WHERE id < 2000 OR id = 100001")" "$((200 - 11 + 1 + 501))"
rdb_is "after kill -9, the interrupted insert left nothing" \
	"$(q "SELECT count(*) FROM enc WHERE id BETWEEN 2000 AND 101999 AND id <> 100001")" "0"

# ---- tamper with one byte inside a payload on disk (table, then TOAST chunk)
FILE=$DATA/$(q "SELECT pg_relation_filepath('enc')")
TOAST=$DATA/$(q "SELECT pg_relation_filepath(reltoastrelid) FROM pg_class WHERE relname = 'enc'")
VERIFY="SELECT ok || ' ' || detail FROM rustydb.verify_encryption('enc') WHERE \"check\" = 'stored payloads open'"
rdb_is "before tampering, verify_encryption opens every payload and large value" \
	"$(q "$VERIFY" | sed -E 's/^(true|t) [0-9]+ payloads and [1-9][0-9]* large values checked, 0 failed.*/clean/')" "clean"
flip() { # flip FILE EXTRA BLOCK: one byte of line pointer 1's tuple on file block BLOCK, EXTRA bytes after t_hoff
	python3 - "$1" "$2" "$3" <<'PY'
import struct, sys
path, extra, block = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, 'r+b') as f:
    f.seek(block * 8192)
    page = bytearray(f.read(8192))
    lp = struct.unpack_from('<I', page, 24)[0]       # line pointer 1
    off, length = lp & 0x7FFF, (lp >> 17) & 0x7FFF
    hoff = page[off + 22]                             # t_hoff
    pos = off + hoff + extra                          # inside the ciphertext
    assert pos < off + length
    page[pos] ^= 0x01
    f.seek(block * 8192)
    f.write(page)
PY
}
# matches DESC SQL ERE: the output of SQL (an error or rows) matches ERE
matches() { rdb_ok "$1" bash -c 'echo "$1" | grep -qE "$2"' _ "$(q "$2")" "$3"; }
tampered() { # tampered FILE EXTRA BLOCK: flip a byte with the server stopped
	rdb_node_stop tdisk_p
	flip "$1" "$2" "$3"
	rdb_node_start tdisk_p
}
tampered "$FILE" 20 1 # data block 0 of the rustydb table (block 0 is the metapage)
matches "a flipped byte gives a clear error naming relation and block" \
	"SELECT sum(length(v)) FROM enc" 'could not decrypt data in block 0 of relation "enc"'
matches "verify_encryption reports the flipped payload (a row, not an ERROR) with block and offset" \
	"$VERIFY" '^(f|false) .* 1 failed; first failure: relation "enc", block 0, offset 1: payload does not authenticate'
# a byte inside the sealed large value's first TOAST chunk (chunk_id, chunk_seq, varlena header, then data)
tampered "$TOAST" 60 0 # the TOAST table is heap
matches "verify_encryption also reports the flipped byte in the TOAST table" \
	"$VERIFY" '^(f|false) .* 2 failed; first failure: relation "enc", block 0, offset 1'
matches "reading the tampered large value gives the clear error" \
	"SELECT md5(big) FROM enc WHERE id = 100001" 'could not decrypt data in block [0-9]+ of relation "enc"'
rdb_is "other tables keep working" "$(q "SELECT count(*) FROM plain_t")" "201"
rdb_ok "the server is still up" test "$(q "SELECT 1")" = "1"

rdb_summary
