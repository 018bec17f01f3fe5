#!/usr/bin/env bash
# In-place updates of encrypted tables keep no plaintext (issue 21,
# acceptance 4). Rows of an encrypted rustydb table are updated in place
# (non-indexed columns only, rows growing) with a unique marker in the
# updated column: committed updates, an update of every other row, a
# rolled-back update, one row 50 times; so undo holds previous versions
# with the marker. After CHECKPOINT and a WAL switch the marker scan of the
# TDE tests (grep over the files) finds the marker in none of the table's
# files, none of its undo store's files (rustydb.undo_relation) and no
# other file under the data directory. Controls (so the scan can fail): an
# unencrypted rustydb table updated the same way with its own marker has it
# in its table files and, once the in-place path is there, in its undo
# store's files. A heap table with the same statements is the reference
# for what the encrypted table reads.
# RDB_EXPECT_INPLACE (default 1): also check that the in-place path was
# taken (rustydb.undo_stats counts in-place updates, the undo stores are
# not empty, the encrypted table's is marked encrypted); 0 while the
# in-place path has not landed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT
EXPECT=${RDB_EXPECT_INPLACE:-1}
# RDB_EXPECT_INPLACE_TDE (default 1): the encrypted table too (sealed undo
# images); 0 checks that it was updated out of place instead
EXPECT_TDE=${RDB_EXPECT_INPLACE_TDE:-1}

RING=$(rdb_keyring_create "$RDB_WORK/inplace_tde_keys")
N=iptde
rdb_node_init $N
rdb_node_conf $N "rustydb.keyring_file = '$RING'"
rdb_node_conf $N "autovacuum = off"
rdb_node_conf $N "rustydb.plaintext_index_action = log"
rdb_node_start $N
q() { rdb_psql $N "$1"; }
q "CREATE EXTENSION rustydb"
ENC=RDBMARK-IPE-$RANDOM$RANDOM
PLAIN=RDBMARK-IPP-$RANDOM$RANDOM
DATA=$(rdb_dir $N)/data

q "CREATE TABLE enc (id int PRIMARY KEY, v int, note text) USING rustydb WITH (encrypted = true)"
q "CREATE TABLE plain_t (id int PRIMARY KEY, v int, note text) USING rustydb WITH (encrypted = false)"
q "CREATE TABLE ref (id int PRIMARY KEY, v int, note text) USING heap"
# the same statements on each table, with its own marker (the heap
# reference's is M: its rows are plaintext in WAL)
# (plain_t: previous versions to undo at once, as enc's always go, so that
# the control below finds plain_t's marker in its undo store)
for t in enc plain_t ref; do
	case $t in enc) m=$ENC ;; plain_t) m=$PLAIN ;; ref) m=M ;; esac
	[ $t = plain_t ] && export PGOPTIONS="-c rustydb.inplace_previous_on_page=off" || unset PGOPTIONS
	q "INSERT INTO $t SELECT g, 0, 'row ' || g FROM generate_series(1, 2000) g"
	q "UPDATE $t SET v = v + 1, note = '$m-a ' || id"
	q "UPDATE $t SET v = v + 1, note = note || ' $m-b' WHERE id % 2 = 0"
	q "BEGIN; UPDATE $t SET v = v + 100, note = note || ' $m-c'; ROLLBACK"
	q "DO \$\$ BEGIN FOR i IN 1..50 LOOP UPDATE $t SET v = v + 1 WHERE id = 7; COMMIT; END LOOP; END \$\$"
	q "UPDATE $t SET v = v + 1 WHERE id % 3 = 0"
done
unset PGOPTIONS
CONTENT="SELECT count(*) || ' ' || sum(v) || ' ' || md5(string_agg(id || ':' || v || ':' || replace(note, '%M', 'M'), ',' ORDER BY id))"
rdb_is "the encrypted table reads what the heap reference holds" \
	"$(q "${CONTENT//%M/$ENC} FROM enc")" "$(q "${CONTENT//%M/M} FROM ref")"
rdb_is "... through an index scan" \
	"$(q "SET enable_seqscan = off; SET enable_bitmapscan = off; ${CONTENT//%M/$ENC} FROM enc WHERE id > 0")" \
	"$(q "${CONTENT//%M/M} FROM ref")"
rdb_is "the unencrypted table too" "$(q "${CONTENT//%M/$PLAIN} FROM plain_t")" "$(q "${CONTENT//%M/M} FROM ref")"
inplace_tables=""
[ "$EXPECT" = 1 ] && inplace_tables="plain_t"
[ "$EXPECT" = 1 ] && [ "$EXPECT_TDE" = 1 ] && inplace_tables="enc plain_t"
for t in $inplace_tables; do
	rdb_ok "$t was updated in place (rustydb.undo_stats)" \
		rdb_psql_true $N "SELECT inplace_updates > 0 FROM rustydb.undo_stats WHERE relid = '$t'::regclass"
	rdb_ok "$t's undo store is not empty" \
		rdb_psql_true $N "SELECT pg_relation_size(rustydb.undo_relation('$t')) > 0"
done
if [ "$EXPECT" = 1 ] && [ "$EXPECT_TDE" = 1 ]; then
	rdb_is "the encrypted table's undo store is marked encrypted" \
		"$(q "SELECT encrypted FROM rustydb.undo_store('enc')")" "t"
elif [ "$EXPECT" = 1 ]; then
	rdb_is "the encrypted table was updated out of place (no undo written)" \
		"$(q "SELECT coalesce(sum(inplace_updates), 0) FROM rustydb.undo_stats WHERE relid = 'enc'::regclass")" "0"
fi
# VACUUM FULL copies the older versions an old snapshot still needs: from
# undo as sealed images, opened, sealed again for the new file. A
# REPEATABLE READ session takes its snapshot (reading pg_class only, so
# VACUUM FULL need not wait for it) before two in-place updates of encr,
# then reads encr after the rewrite: the values before the updates.
q "CREATE TABLE encr (id int PRIMARY KEY, v int, note text) USING rustydb WITH (encrypted = true, fillfactor = 50)"
q "INSERT INTO encr SELECT g, 0, 'row ' || g FROM generate_series(1, 500) g"
q "UPDATE encr SET v = v + 1, note = '$ENC-r ' || id"
R_SNAP="SELECT 'snap ' || count(*) || ' ' || sum(v) || ' ' || md5(string_agg(id || ':' || v || ':' || note, ',' ORDER BY id)) FROM encr"
before=$(q "$R_SNAP")
fifo=$RDB_WORK/rewrite.fifo
out=$RDB_WORK/rewrite.out
rm -f "$fifo"
mkfifo "$fifo"
"$RDB_BINDIR/psql" -X -A -t -h "$(rdb_sock $N)" -p "$(rdb_port $N)" -U postgres -d postgres \
	-f "$fifo" >"$out" 2>&1 &
snap_pid=$!
exec 7<>"$fifo"
echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 'started ' || count(*) FROM pg_class;" >&7
rdb_wait_for "the old snapshot" 60 bash -c "grep -qs '^started ' '$out'"
q "UPDATE encr SET v = v + 1, note = note || ' $ENC-s'"
q "UPDATE encr SET v = v + 1 WHERE id % 2 = 0"
after=$(q "$R_SNAP")
rdb_ok "encr was updated in place" \
	rdb_psql_true $N "SELECT inplace_updates >= 1000 FROM rustydb.undo_stats WHERE relid = 'encr'::regclass"
q "VACUUM FULL encr"
echo "$R_SNAP; COMMIT;" >&7
exec 7>&-
wait "$snap_pid" || true
rm -f "$fifo"
rdb_is "after VACUUM FULL the old snapshot reads the versions before the in-place updates" \
	"$(grep '^snap ' "$out" | head -n 1)" "$before"
rdb_is "... and a new snapshot the newest" "$(q "$R_SNAP")" "$after"
rdb_is "verify_table('encr') finds nothing" "$(q "SELECT count(*) FROM rustydb.verify_table('encr')")" "0"
rdb_is "verify_encryption('encr') opens every stored payload" \
	"$(q "SELECT ok FROM rustydb.verify_encryption('encr') WHERE \"check\" = 'stored payloads open'")" "t"

q "DROP TABLE ref"
q "CHECKPOINT" >/dev/null
q "SELECT pg_switch_wal()" >/dev/null
q "CHECKPOINT" >/dev/null

# files REL: the files of a relation (every segment and fork) under DATA
files() {
	local path
	path=$(q "SELECT pg_relation_filepath($1)")
	[ -n "$path" ] || return 0
	# shellcheck disable=SC2086
	ls -d "$DATA/$path" "$DATA/$path".* "$DATA/$path"_* 2>/dev/null || true
}
# holding MARKER FILE...: the files that contain MARKER
holding() {
	local m=$1
	shift
	[ $# -gt 0 ] || return 0
	grep -laF "$m" "$@" | sed "s|^$DATA/||" | tr '\n' ' ' || true
}
mapfile -t enc_files < <(files "'enc'::regclass")
mapfile -t enc_undo < <(files "rustydb.undo_relation('enc')")
mapfile -t plain_files < <(files "'plain_t'::regclass")
mapfile -t plain_undo < <(files "rustydb.undo_relation('plain_t')")
rdb_log "files scanned: encrypted table ${#enc_files[@]}, its undo store ${#enc_undo[@]}; unencrypted table ${#plain_files[@]}, its undo store ${#plain_undo[@]}"
rdb_ok "the encrypted table has files to scan" test "${#enc_files[@]}" -gt 0
rdb_is "no file of the encrypted table holds its marker" "$(holding "$ENC" "${enc_files[@]}")" ""
rdb_is "no file of its undo store holds the marker" "$(holding "$ENC" "${enc_undo[@]}")" ""
rdb_is "no file under the data directory holds the marker" "$(grep -rlaF "$ENC" "$DATA" | sed "s|^$DATA/||" | tr '\n' ' ')" ""
rdb_ok "control: the unencrypted table's marker is in its table files" test -n "$(holding "$PLAIN" "${plain_files[@]}")"
if [ "$EXPECT" = 1 ]; then
	rdb_ok "control: ... and in its undo store's files (previous versions)" test -n "$(holding "$PLAIN" "${plain_undo[@]}")"
	if [ "$EXPECT_TDE" = 1 ]; then
		rdb_ok "the encrypted table's undo store has files to scan" test "${#enc_undo[@]}" -gt 0
	fi
fi
rdb_is "verify_encryption opens every stored payload" \
	"$(q "SELECT ok FROM rustydb.verify_encryption('enc') WHERE \"check\" = 'stored payloads open'")" "t"
rdb_is "verify_table finds nothing" \
	"$(q "SELECT count(*) FROM (SELECT * FROM rustydb.verify_table('enc') UNION ALL SELECT * FROM rustydb.verify_table('plain_t')) p")" "0"

rdb_summary
