#!/usr/bin/env bash
# Sealed groups of encrypted tables (docs/tde.md): COPY seals up to
# rustydb.seal_group_rows rows of a page with one AEAD.
#  - no plaintext on disk: rows with a marker COPY'd into an encrypted table
#    are found nowhere under the data directory (the same rows COPY'd into
#    an unencrypted table are, so the test can fail);
#  - a standby checking every replayed page (wal_consistency_checking)
#    returns the primary's results after COPY, updates, deletes, on-access
#    pruning and VACUUM (which re-seal or free groups);
#  - kill -9 during a COPY and after a VACUUM that re-sealed groups: every
#    committed row reads, the interrupted COPY left nothing;
#  - a flipped byte in a member's ciphertext, or in the group's tag in the
#    page's group table, gives the clear error naming relation and block,
#    and verify_encryption reports the group's members.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

RING=$(rdb_keyring_create "$RDB_WORK/tde_groups_keys")
rdb_node_init tgrp_p
rdb_node_conf tgrp_p "rustydb.keyring_file = '$RING'"
rdb_node_conf tgrp_p "wal_consistency_checking = 'rustydb'"
rdb_node_conf tgrp_p "autovacuum = off"
rdb_node_start tgrp_p
rdb_psql tgrp_p "CREATE EXTENSION rustydb"
q() { rdb_psql tgrp_p "$1" 2>&1 || true; }
ENC=RDBMARK-GRP-$RANDOM$RANDOM
PLAIN=RDBMARK-GPL-$RANDOM$RANDOM
DATA=$(rdb_dir tgrp_p)/data

rdb_psql tgrp_p "CREATE TABLE g (id int PRIMARY KEY, v text, n numeric) USING rustydb WITH (encrypted = true)"
rdb_psql tgrp_p "CREATE TABLE gp (id int, v text) USING rustydb"
rdb_psql tgrp_p "CREATE TABLE gh (id int PRIMARY KEY, v text, n numeric) USING heap"
# gh, a heap twin of g, gets every change too, without the marker (WAL would show it)
for t in g gh; do
	m=$([ $t = g ] && echo "$ENC" || echo M)
	rdb_psql tgrp_p "COPY $t FROM PROGRAM \$\$seq 1 20000 | awk '{print \$1 \"\t$m row \" \$1 \"\t\" \$1 * 1.25}'\$\$"
done
rdb_psql tgrp_p "COPY gp FROM PROGRAM \$\$seq 1 500 | awk '{print \$1 \"\t$PLAIN \" \$1}'\$\$"
FILE=$DATA/$(q "SELECT pg_relation_filepath('g')")
# groups FILE: after a checkpoint, from the table file: data pages, pages
# with a group table, grouped rows (the nmembers of their group entries),
# and the first file block whose slot 0 has 2+ members and slot 1 is in use
groups() {
	rdb_psql tgrp_p "CHECKPOINT" >/dev/null
	python3 - "$FILE" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
pages = grouped = members = 0
first = -1
for b in range(1, len(data) // 8192):
    page = data[b * 8192:(b + 1) * 8192]
    pages += 1
    special = struct.unpack_from('<H', page, 16)[0]   # pd_special
    if special == 8192 - 8:
        continue
    grouped += 1
    n = [page[special + 8 + 44 * s + 40] for s in range((8192 - special - 8) // 44)]
    members += sum(n)
    if first < 0 and n[0] > 1 and n[1] > 0:
        first = b
print(pages, grouped, members, first)
PY
}
read -r pages grouped members _ <<<"$(groups)"
# (a page has group slots for rows like its first; rows beyond them are sealed on their own)
rdb_ok "COPY sealed the rows of the encrypted table in groups ($members of 20000)" \
	test "$members" -ge 19900
rdb_is "every data page has a group table" "$grouped" "$pages"
CONTENT="SELECT md5(string_agg(id || ':' || replace(v, '$ENC', 'M') || ':' || n, ',' ORDER BY id))"
rdb_is "the encrypted table reads back what COPY wrote (heap as reference)" \
	"$(q "$CONTENT FROM g")" "$(q "$CONTENT FROM gh")"
rdb_is "index lookups read group members" \
	"$(q "SET enable_seqscan = off; SET enable_bitmapscan = off;
	      SELECT string_agg(v, ',' ORDER BY id) FROM g WHERE id IN (1, 16, 17, 9999, 20000)")" \
	"$ENC row 1,$ENC row 16,$ENC row 17,$ENC row 9999,$ENC row 20000"

# ---- no plaintext on disk
rdb_psql tgrp_p "CHECKPOINT" >/dev/null
rdb_psql tgrp_p "SELECT pg_switch_wal()" >/dev/null
rdb_psql tgrp_p "CHECKPOINT" >/dev/null
rdb_is "no file under the data directory holds the marker COPY'd into the encrypted table" \
	"$(grep -rlaF "$ENC" "$DATA" | sed "s|^$DATA/||" | tr '\n' ' ')" ""
rdb_ok "the unencrypted table's marker is on disk (the test can fail)" \
	test "$(grep -rlaF "$PLAIN" "$DATA" | wc -l)" -gt 0

# ---- standby: results after each change
rdb_standby_create tgrp_p tgrp_s
step() { # step DESC SQL...: run each SQL on the primary on g and on its heap twin gh, compare
	local desc=$1 sql
	shift
	for sql in "$@"; do
		rdb_psql tgrp_p "$sql" >/dev/null
		rdb_psql tgrp_p "$(echo "$sql" | sed 's/\bg\b/gh/g')" >/dev/null
	done
	rdb_wait_replay tgrp_p tgrp_s
	rdb_is "$desc: the primary reads what heap holds" "$(q "$CONTENT FROM g")" "$(q "$CONTENT FROM gh")"
	rdb_compare tgrp_p tgrp_s "$CONTENT FROM g"
}
step "HOT updates of group members" "UPDATE g SET n = n + 1 WHERE id % 7 = 0"
step "non-HOT updates (indexed column)" "UPDATE g SET id = id + 100000 WHERE id % 13 = 0"
step "deletes" "DELETE FROM g WHERE id % 5 = 0"
# on-access pruning: full pages whose dead members are removed when read
step "updates that fill pages, then reads that prune them" \
	"UPDATE g SET v = v || ' and some more text' WHERE id % 3 = 0; SELECT count(*) FROM g; SELECT count(*) FROM g"
step "VACUUM (re-seals the survivors of groups that lost members)" "VACUUM g"
read -r _ _ members _ <<<"$(groups)"
rdb_ok "VACUUM left fewer grouped rows ($members)" test "$members" -lt 20000
rdb_is "verify_encryption opens every payload after the re-seals" \
	"$(q "SELECT ok FROM rustydb.verify_encryption('g') WHERE \"check\" = 'stored payloads open'")" "t"
step "an aborted COPY leaves groups VACUUM frees" \
	"BEGIN; COPY g FROM PROGRAM \$\$seq 200001 203000 | awk '{print \$1 \"\tx\t1\"}'\$\$; ROLLBACK" "VACUUM g"
step "COPY with rustydb.seal_group_rows = 3 (smaller groups) and = 1 (no groups)" \
	"SET rustydb.seal_group_rows = 3; COPY g FROM PROGRAM \$\$seq 300001 301000 | awk '{print \$1 \"\ty\t2\"}'\$\$;
	 SET rustydb.seal_group_rows = 1; COPY g FROM PROGRAM \$\$seq 302001 303000 | awk '{print \$1 \"\tz\t3\"}'\$\$"

# ---- kill -9: during a COPY, and right after a VACUUM that re-sealed groups
(rdb_psql tgrp_p "BEGIN; COPY g FROM PROGRAM \$\$seq 400001 500000 | awk '{print \$1 \"\tw\t4\"}'\$\$;
	SELECT pg_sleep(120); COMMIT" >/dev/null 2>&1 || true) &
rdb_wait_for "the open transaction to have copied its rows (in pg_sleep)" 120 \
	rdb_psql_true tgrp_p "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
rdb_psql tgrp_p "DELETE FROM g WHERE id % 11 = 0; DELETE FROM gh WHERE id % 11 = 0"
before=$(q "$CONTENT FROM gh")
rdb_psql tgrp_p "VACUUM g"
rdb_node_crash tgrp_p
wait || true
rdb_node_start tgrp_p
rdb_is "after kill -9, the committed rows read as before" "$(q "$CONTENT FROM g WHERE id < 400001")" "$before"
rdb_is "after kill -9, the interrupted COPY left nothing" \
	"$(q "SELECT count(*) FROM g WHERE id > 400000")" "0"
rdb_is "after kill -9, verify_encryption opens every payload" \
	"$(q "SELECT ok FROM rustydb.verify_encryption('g') WHERE \"check\" = 'stored payloads open'")" "t"
rdb_psql tgrp_p "VACUUM g"
rdb_wait_replay tgrp_p tgrp_s
rdb_compare tgrp_p tgrp_s "$CONTENT FROM g"

# ---- tampering: a member's ciphertext, then the group's tag
VERIFY="SELECT ok || ' ' || detail FROM rustydb.verify_encryption('g') WHERE \"check\" = 'stored payloads open'"
read -r _ _ _ BLK <<<"$(groups)"
rdb_ok "a page with two groups to tamper with" test "$BLK" -gt 0
flip_member() { # one byte of the ciphertext of slot 0's member with the lowest offset
	python3 - "$FILE" "$BLK" <<'PY'
import struct, sys
path, block = sys.argv[1], int(sys.argv[2])
with open(path, 'r+b') as f:
    f.seek(block * 8192)
    page = bytearray(f.read(8192))
    special = struct.unpack_from('<H', page, 16)[0]
    first = struct.unpack_from('<H', page, special + 8 + 36)[0]
    lp = struct.unpack_from('<I', page, 24 + 4 * (first - 1))[0]
    off, length = lp & 0x7FFF, (lp >> 17) & 0x7FFF
    hoff = page[off + 22]
    assert page[off + hoff] == 0x20 and page[off + hoff + 1] >> 6 == 0, "slot 0's first member"
    page[off + hoff + 2 + 3] ^= 0x01
    f.seek(block * 8192)
    f.write(page)
PY
}
flip_tag() { # one byte of slot 1's tag in the group table
	python3 - "$FILE" "$BLK" <<'PY'
import struct, sys
path, block = sys.argv[1], int(sys.argv[2])
with open(path, 'r+b') as f:
    f.seek(block * 8192 + 16)
    special = struct.unpack('<H', f.read(2))[0]
    f.seek(block * 8192 + special + 8 + 44 + 30)
    b = f.read(1)
    f.seek(block * 8192 + special + 8 + 44 + 30)
    f.write(bytes([b[0] ^ 0x80]))
PY
}
rdb_node_stop tgrp_s
rdb_node_stop tgrp_p
flip_member
rdb_node_start tgrp_p
matches() { rdb_ok "$1" bash -c 'echo "$1" | grep -qE "$2"' _ "$(q "$2")" "$3"; }
matches "a flipped byte in a member gives a clear error naming relation and block" \
	"SELECT sum(length(v)) FROM g" "could not decrypt data in block $((BLK - 1)) of relation \"g\""
matches "verify_encryption reports every member of the group, with block and offset" \
	"$VERIFY" "^(f|false) .* [1-9][0-9]* failed; first failure: relation \"g\", block $((BLK - 1)), offset [0-9]+: payload does not authenticate \(sealed group"
rdb_node_stop tgrp_p
flip_member # back as it was
flip_tag
rdb_node_start tgrp_p
matches "a flipped byte in a group's tag gives the clear error" \
	"SELECT sum(length(v)) FROM g" "could not decrypt data in block $((BLK - 1)) of relation \"g\""
rdb_is "other tables keep working" "$(q "SELECT count(*) FROM gp")" "500"
rdb_ok "the server is still up" test "$(q "SELECT 1")" = "1"

# ---- page format versions: version 2 pages (no group tables) are read, others refused
rdb_psql tgrp_p "CREATE TABLE v2 (id int, v text) USING rustydb"
rdb_psql tgrp_p "INSERT INTO v2 SELECT i, 'row ' || i FROM generate_series(1, 2000) i"
V2SUM="SELECT count(*), sum(id), md5(string_agg(v, ',' ORDER BY id)) FROM v2"
want=$(q "$V2SUM")
V2FILE=$DATA/$(q "SELECT pg_relation_filepath('v2')")
set_version() { # set_version FILE VERSION [GROUPS_TOO]: every page's format version (metapage too)
	python3 - "$1" "$2" "${3:-}" <<'PY'
import struct, sys
path, version, groups_too = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "yes"
with open(path, 'r+b') as f:
    data = bytearray(f.read())
    for b in range(len(data) // 8192):
        base = b * 8192
        special = struct.unpack_from('<H', data, base + 16)[0]
        if special != 8192 - 8 and not groups_too:
            continue
        data[base + special + 2] = version
        if b == 0:
            struct.pack_into('<H', data, base + 24 + 8, version)   # MetaPageData.page_version
    f.seek(0)
    f.write(data)
PY
}
rdb_node_stop tgrp_p
set_version "$V2FILE" 2
rdb_node_start tgrp_p
rdb_is "a table whose pages are format version 2 reads as before" "$(q "$V2SUM")" "$want"
rdb_is "... and verify_table finds nothing" "$(q "SELECT count(*) FROM rustydb.verify_table('v2')")" "0"
rdb_node_stop tgrp_p
set_version "$V2FILE" 9
set_version "$FILE" 2 yes
rdb_node_start tgrp_p
matches "format version 9 is refused with the clear error" "$V2SUM" 'invalid rustydb (page|metapage)'
matches "a page with a group table claiming version 2 is refused" \
	"SELECT count(*) FROM g" 'invalid rustydb (page|metapage)'

# ---- VACUUM without the key provider: only a page whose groups need a re-seal needs the key
rdb_psql tgrp_p "CREATE TABLE kd (id int, v text) USING rustydb WITH (encrypted = true);
	CREATE TABLE kc (id int, v text) USING rustydb WITH (encrypted = true)"
for t in kd kc; do
	rdb_psql tgrp_p "COPY $t FROM PROGRAM \$\$seq 1 100 | awk '{print \$1 \"\tk\"}'\$\$"
done
rdb_psql tgrp_p "DELETE FROM kd WHERE id = 5"
rdb_node_conf tgrp_p "rustydb.keyring_file = ''"
rdb_node_restart tgrp_p
rdb_ok "without the key provider, VACUUM of a table whose groups lose no member works" \
	rdb_psql tgrp_p "VACUUM kc"
matches "... and VACUUM of a page whose group must be re-sealed gives the key error" \
	"VACUUM kd" 'cannot access encrypted relation "kd"'
# ---- ANALYZE without the key provider: value_free (the default) cannot
# open the sample, so it warns, counts the rows and stores no column
# statistics (docs/tde.md "Statistics")
rdb_psql tgrp_p "UPDATE pg_class SET reltuples = -1 WHERE relname = 'kc'"
matches "without the key provider, ANALYZE warns that it stores no column statistics" \
	"ANALYZE kc" 'WARNING: +no column statistics stored for encrypted table "kc"'
rdb_is "... counts the rows and stores no column statistics" \
	"$(q "SELECT reltuples || ' ' || (SELECT count(*) FROM pg_stats WHERE tablename = 'kc') FROM pg_class WHERE relname = 'kc'")" "100 0"
rdb_ok "the server is still up" test "$(q "SELECT count(*) FROM gp")" = "500"

rdb_summary
