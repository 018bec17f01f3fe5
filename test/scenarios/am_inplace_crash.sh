#!/usr/bin/env bash
# In-place updates survive kill -9 (issue 21, acceptance 3). A rustydb
# table t and its heap twin th get the same committed updates (non-indexed
# columns only, rows growing, so on rustydb they go in place and leave undo
# chains), then one transaction updates 10,000 rows of both and is killed
# before it commits:
#   variant 1: kill -9 of that backend (the postmaster resets the cluster),
#     with rustydb.inplace_previous_on_page off in that transaction (its
#     previous versions go to undo at once);
#   variant 2: kill -9 of the postmaster and every process of the cluster,
#     with the default (a plain table's previous versions stay on the page:
#     readers and repairs find them there; an encrypted table's go to undo).
# After the restart every row of t reads its committed value (t equals th
# through sequential, index and bitmap scans); the aborted in-place
# versions are repaired before their undo is recycled (undo_discard, then
# VACUUM, or the other way round); verify_table is clean; the rows update
# again. With RDB_TDE=1 (test/lib/cluster.sh) t is encrypted.
# RDB_EXPECT_INPLACE (default 1): also check that the in-place path was
# taken (rustydb.undo_stats: in-place updates and repairs counted, the undo
# store not empty); 0 while the in-place path has not landed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT
EXPECT=${RDB_EXPECT_INPLACE:-1}
# with RDB_TDE=1 (encrypted tables) RDB_EXPECT_INPLACE_TDE=0 turns the
# in-place checks off (default: as RDB_EXPECT_INPLACE)
[ "${RDB_TDE:-0}" = 1 ] && EXPECT=${RDB_EXPECT_INPLACE_TDE:-$EXPECT}

N=ipcrash
rdb_node_init $N
rdb_node_conf $N "autovacuum = off"
rdb_node_start $N
q() { rdb_psql $N "$1"; }
q "CREATE EXTENSION rustydb"
for tbl in t th; do
	am=$([ $tbl = t ] && echo rustydb || echo heap)
	# room on each page for a new version of every row: one transaction
	# updates 10,000 rows in place (no compaction while it runs)
	q "CREATE TABLE $tbl (id int PRIMARY KEY, v int, note text) USING $am WITH (fillfactor = 30);
		INSERT INTO $tbl SELECT g, 0, 'row ' || g FROM generate_series(1, 12000) g"
	# committed in-place updates: every row once, every third again (longer)
	q "UPDATE $tbl SET v = v + 1"
	q "UPDATE $tbl SET v = v + 1, note = note || ' c' WHERE id % 3 = 0"
done
rdb_is "t is encrypted exactly when RDB_TDE=1" \
	"$(q "SELECT count(*) FROM rustydb.encryption_status WHERE encrypted AND \"table\" = 't'::regclass")" \
	"$([ "${RDB_TDE:-0}" = 1 ] && echo 1 || echo 0)"

CONTENT="count(*) || ' ' || sum(v) || ' ' || md5(string_agg(id || ':' || v || ':' || note, ',' ORDER BY id))"
SEQ="SET enable_seqscan = on; SET enable_indexscan = off; SET enable_bitmapscan = off;"
IDX="SET enable_seqscan = off; SET enable_indexscan = on; SET enable_bitmapscan = off;"
BMP="SET enable_seqscan = off; SET enable_indexscan = off; SET enable_bitmapscan = on;"
# same DESC: t reads what th holds, through each kind of scan
same() {
	local want
	want=$(q "$SEQ SELECT $CONTENT FROM th")
	rdb_is "$1: t reads what its heap twin holds (sequential scan)" "$(q "$SEQ SELECT $CONTENT FROM t")" "$want"
	rdb_is "$1: ... (index scan)" "$(q "$IDX SELECT $CONTENT FROM t WHERE id > 0")" "$want"
	rdb_is "$1: ... (bitmap scan)" "$(q "$BMP SELECT $CONTENT FROM t WHERE id > 0")" "$want"
}
verify_clean() {
	rdb_is "$1: verify_table('t') finds nothing" "$(q "SELECT count(*) FROM rustydb.verify_table('t')")" "0"
}
# inplace COLUMN: t's counter in rustydb.undo_stats (since the server started)
inplace() { q "SELECT coalesce(sum($1), 0) FROM rustydb.undo_stats WHERE relid = 't'::regclass"; }
undo_bytes() { q "SELECT coalesce(pg_relation_size(rustydb.undo_relation('t')), 0)"; }
expect_inplace() { # DESC COLUMN: the counter is positive
	[ "$EXPECT" = 1 ] || return 0
	local n
	n=$(inplace "$2")
	rdb_ok "$1: rustydb.undo_stats counts $2 of t ($n)" test "$n" -gt 0
}

same "committed updates"
verify_clean "committed updates"
expect_inplace "committed updates" inplace_updates
if [ "$EXPECT" = 1 ]; then
	rdb_ok "committed updates: t's undo store is not empty ($(undo_bytes) bytes)" test "$(undo_bytes)" -gt 0
fi

# crash_round VARIANT SETTING: 10,000 rows of t and th updated in place by a
# transaction that dies with the backend (VARIANT backend) or the whole
# cluster (postmaster), rustydb.inplace_previous_on_page set to SETTING
crash_round() {
	local variant=$1 setting=$2 before pid resets
	before=$([ "$EXPECT" = 1 ] && inplace inplace_updates || echo 0)
	(q "SET rustydb.inplace_previous_on_page = $setting; BEGIN;
		UPDATE t SET v = v + 1000, note = note || ' uncommitted $variant' WHERE id <= 10000;
		UPDATE th SET v = v + 1000, note = note || ' uncommitted $variant' WHERE id <= 10000;
		SELECT pg_sleep(600); COMMIT" >/dev/null 2>&1 || true) &
	rdb_wait_for "$variant: the open transaction to have updated its rows (in pg_sleep)" 120 \
		rdb_psql_true $N "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
	if [ "$EXPECT" = 1 ]; then
		rdb_ok "$variant: the uncommitted transaction updated in place (undo_stats: $before, then $(inplace inplace_updates))" \
			test "$(inplace inplace_updates)" -ge $((before + 10000))
	fi
	# its WAL on disk before the kill (a later commit flushes all WAL before
	# it), so that recovery replays its in-place versions and they must be
	# repaired; otherwise the WAL writer may not have written them yet
	q "SELECT pg_current_xact_id()" >/dev/null
	if [ "$variant" = backend ]; then
		pid=$(q "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
		resets=$(grep -c 'all server processes terminated; reinitializing' "$(rdb_dir $N)/server.log" || true)
		kill -9 "$pid"
		rdb_wait_for "$variant: the postmaster to reset the cluster" 60 \
			bash -c "test \$(grep -c 'all server processes terminated; reinitializing' '$(rdb_dir $N)/server.log') -gt $resets"
		rdb_wait_for "$variant: crash recovery" 120 rdb_psql_true $N "SELECT NOT pg_is_in_recovery()"
	else
		rdb_node_crash $N
		rdb_node_start $N
	fi
	wait
	rdb_is "$variant: no row keeps the uncommitted update" \
		"$(q "$SEQ SELECT count(*) FROM t WHERE note LIKE '%uncommitted%' OR v >= 1000")" "0"
	same "$variant, after the restart"
}

discard_pos() { q "SELECT coalesce(discard, 0) FROM rustydb.undo_store('t')"; }
# recycled DESC POSITION: with the in-place path, undo was recycled since
# the store's discard position was POSITION (every writer has ended; the
# aborted ones' rows must have been repaired first)
recycled() {
	[ "$EXPECT" = 1 ] || return 0
	# previous versions on the page (plain table, variant 2): no undo was written
	[ "$3" = off ] || [ "${RDB_TDE:-0}" = 1 ] || return 0
	local now
	now=$(discard_pos)
	rdb_ok "$1: undo was recycled (discard position $2, then $now)" test "$now" -gt "$2"
}

crash_round backend off
# recycling first (it must repair before it recycles), then VACUUM
pos=$(discard_pos)
q "SELECT rustydb.undo_discard('t')" >/dev/null
recycled "backend, undo_discard" "$pos" off
same "backend, after undo_discard"
q "VACUUM t"
same "backend, after VACUUM"
verify_clean "backend, after VACUUM"
expect_inplace "backend, after VACUUM" repairs
for tbl in t th; do q "UPDATE $tbl SET v = v + 7, note = note || ' a' WHERE id <= 10000"; done
same "backend, updated again"
verify_clean "backend, updated again"
expect_inplace "backend, updated again" inplace_updates

crash_round postmaster on
# VACUUM first, then recycling
pos=$(discard_pos)
q "VACUUM t"
same "postmaster, after VACUUM"
verify_clean "postmaster, after VACUUM"
expect_inplace "postmaster, after VACUUM" repairs
q "SELECT rustydb.undo_discard('t')" >/dev/null
recycled "postmaster, VACUUM and undo_discard" "$pos" on
same "postmaster, after undo_discard"
for tbl in t th; do q "UPDATE $tbl SET v = v + 7, note = note || ' b' WHERE id % 2 = 0"; done
q "VACUUM t"
same "postmaster, updated again and vacuumed"
verify_clean "postmaster, updated again and vacuumed"
expect_inplace "postmaster, updated again" inplace_updates
if [ "$EXPECT" = 1 ]; then
	rdb_ok "at the end, t's undo store is not empty ($(undo_bytes) bytes)" test "$(undo_bytes)" -gt 0
fi
if [ "${RDB_TDE:-0}" = 1 ]; then
	rdb_is "every stored payload of t opens" \
		"$(q "SELECT ok FROM rustydb.verify_encryption('t') WHERE \"check\" = 'stored payloads open'")" "t"
fi

rdb_summary
