#!/usr/bin/env bash
# A pg_basebackup standby replays rustydb WAL: after each change on the
# primary the standby's hot-standby queries return the same results. The
# primary runs with wal_consistency_checking = 'rustydb', so the standby
# also checks every replayed page against the primary's full-page image.
# Then the undo store (issue 21): ring pages replayed, in-place updates,
# rollbacks, locks and repairs replayed, and hot-standby REPEATABLE READ
# queries that must answer their snapshot while the primary updates their
# rows in place (or be cancelled by a recovery conflict). RDB_EXPECT_INPLACE
# (default 1): also check that the primary updated in place and the
# standby's undo store is not empty; 0 while the in-place path has not landed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

rdb_node_init amprimary
rdb_node_conf amprimary "wal_consistency_checking = 'rustydb'"
rdb_node_start amprimary
rdb_psql amprimary "CREATE EXTENSION rustydb;
	CREATE TABLE acc (id int PRIMARY KEY, owner text, balance bigint) USING rustydb;
	INSERT INTO acc SELECT g, 'owner ' || g, 100 FROM generate_series(1, 5000) g;"

rdb_is "acc is encrypted exactly when RDB_TDE=1 (test/lib/cluster.sh)" \
	"$(rdb_psql amprimary "SELECT count(*) FROM rustydb.encryption_status WHERE encrypted AND \"table\" = 'acc'::regclass")" \
	"$([ "${RDB_TDE:-0}" = 1 ] && echo 1 || echo 0)"
rdb_standby_create amprimary amstandby
rdb_wait_replay amprimary amstandby

Q_ALL="SELECT count(*), sum(balance), md5(string_agg(id || ':' || owner || ':' || balance, ',' ORDER BY id)) FROM acc"
Q_IDX="SET enable_seqscan = off; SELECT id, balance FROM acc WHERE id BETWEEN 100 AND 120 ORDER BY id"
step() {
	rdb_psql amprimary "$2" >/dev/null
	rdb_wait_replay amprimary amstandby
	rdb_compare amprimary amstandby "$Q_ALL"
	rdb_compare amprimary amstandby "$Q_IDX"
	rdb_is "$1: verify_table on the standby" "$(rdb_psql amstandby "SELECT count(*) FROM rustydb.verify_table('acc')")" "0"
}

step "initial" "SELECT 1"
step "update" "UPDATE acc SET balance = balance + id % 13 WHERE id % 3 = 0"
step "delete" "DELETE FROM acc WHERE id % 11 = 0"
step "copy" "COPY acc FROM PROGRAM 'seq 10001 12000 | sed \"s/\$/\towner\t7/\"'"
step "row locks and upsert" "SELECT * FROM acc WHERE id < 50 FOR UPDATE;
	INSERT INTO acc VALUES (1, 'x', 1) ON CONFLICT (id) DO UPDATE SET balance = acc.balance + 1;
	INSERT INTO acc VALUES (1, 'x', 1) ON CONFLICT DO NOTHING"
step "large values" "UPDATE acc SET owner = repeat(md5(id::text), 300) WHERE id % 500 = 1"
step "vacuum" "VACUUM (FREEZE) acc"
step "aborted work" "BEGIN; DELETE FROM acc; ROLLBACK"
step "index build" "CREATE INDEX acc_owner ON acc (owner)"
step "cluster" "CLUSTER acc USING acc_pkey"
step "vacuum full" "VACUUM FULL acc"
step "truncate and refill" "BEGIN; TRUNCATE acc; INSERT INTO acc SELECT g, 'again', g FROM generate_series(1, 3000) g; COMMIT"
step "prune on access" "UPDATE acc SET balance = balance + 1; UPDATE acc SET balance = balance + 1; SELECT count(*) FROM acc"

# the undo store (issue 21): metapage, ring pages and recycling replayed
# (pages without records; a ring of 128 pages wrapped), on a table of its
# own: acc's store may already hold the in-place versions of the steps above
rdb_psql amprimary "CREATE TABLE ring (id int) USING rustydb"
rdb_psql amprimary "SET rustydb.undo_max_size = '1MB'; SELECT rustydb.selftest_undo_pages('ring', 200);
	SELECT rustydb.undo_discard('ring'); SELECT rustydb.selftest_undo_pages('ring', 50);
	SELECT txid_current()" >/dev/null # an xid: the commit flushes the UNDO records too
rdb_wait_replay amprimary amstandby
rdb_compare amprimary amstandby "SELECT * FROM rustydb.undo_store('ring')"
rdb_is "undo store: the ring's 128 pages wrapped on the standby too" \
	"$(rdb_psql amstandby "SELECT capacity, pages_in_use, file_blocks FROM rustydb.undo_store('ring')")" "128|51|129"
# VACUUM recycles, restarts the empty ring and truncates the file (UNDO
# DISCARD, UNDO META, the storage manager's truncation); set_undo_size
# restarts it with another capacity (UNDO META)
rdb_psql amprimary "VACUUM ring" >/dev/null
rdb_psql amprimary "SELECT rustydb.set_undo_size('ring', 2);
	SELECT rustydb.selftest_undo_pages('ring', 10); SELECT txid_current()" >/dev/null
rdb_wait_replay amprimary amstandby
rdb_compare amprimary amstandby "SELECT * FROM rustydb.undo_store('ring')"
rdb_is "undo store: truncated by VACUUM, resized and refilled on the standby too" \
	"$(rdb_psql amstandby "SELECT capacity, pages_in_use, file_blocks FROM rustydb.undo_store('ring')")" "256|10|11"

# ---- in-place updates (issue 21): only non-indexed columns change, rows
# keep or grow their length. After each step the standby answers like the
# primary, through sequential and index scans, and verify_table is clean.
EXPECT=${RDB_EXPECT_INPLACE:-1} # 0: the in-place path has not landed
# with RDB_TDE=1 (encrypted tables) RDB_EXPECT_INPLACE_TDE=0 turns the
# in-place checks off (default: as RDB_EXPECT_INPLACE)
[ "${RDB_TDE:-0}" = 1 ] && EXPECT=${RDB_EXPECT_INPLACE_TDE:-$EXPECT}
rdb_psql amprimary "CREATE TABLE hot (id int PRIMARY KEY, grp int, v int, note text) USING rustydb;
	CREATE INDEX hot_grp ON hot (grp);
	INSERT INTO hot SELECT g, g % 10, 0, 'hot ' || g FROM generate_series(1, 2000) g"
H_ALL="SET enable_seqscan = on; SET enable_indexscan = off; SET enable_bitmapscan = off;
	SELECT count(*), sum(v), md5(string_agg(id || ':' || grp || ':' || v || ':' || note, ',' ORDER BY id)) FROM hot"
H_IDX="SET enable_seqscan = off; SET enable_indexscan = on; SET enable_bitmapscan = off;
	SELECT id, v, note FROM hot WHERE id BETWEEN 95 AND 105 ORDER BY id"
hot_step() {
	rdb_psql amprimary "$2" >/dev/null
	# (an xid, so that the commit flushes WAL of steps that wrote none)
	rdb_psql amprimary "SELECT txid_current()" >/dev/null
	rdb_wait_replay amprimary amstandby
	rdb_compare amprimary amstandby "$H_ALL"
	rdb_compare amprimary amstandby "$H_IDX"
	rdb_is "$1: verify_table('hot') on the standby" "$(rdb_psql amstandby "SELECT count(*) FROM rustydb.verify_table('hot')")" "0"
}
hot_step "in place: every row" "UPDATE hot SET v = v + 1"
hot_step "in place: growing rows" "UPDATE hot SET v = v + 1, note = note || ' grown' WHERE id % 4 = 0"
hot_step "in place: one row 100 times" \
	"DO \$\$ BEGIN FOR i IN 1..100 LOOP UPDATE hot SET v = v + 1 WHERE id = 100; COMMIT; END LOOP; END \$\$"
hot_step "in place: rolled back" "BEGIN; UPDATE hot SET v = v + 1000, note = note || ' aborted'; ROLLBACK"
hot_step "in place: savepoint rolled back" "BEGIN; UPDATE hot SET v = v + 1 WHERE id <= 500; SAVEPOINT s;
	UPDATE hot SET v = v + 1000 WHERE id <= 1000; ROLLBACK TO s; UPDATE hot SET v = v + 1 WHERE id <= 10; COMMIT"
hot_step "in place: row locks, upsert" "SELECT * FROM hot WHERE id < 50 FOR UPDATE;
	SELECT * FROM hot WHERE id BETWEEN 50 AND 60 FOR KEY SHARE;
	INSERT INTO hot VALUES (1, 1, 0, 'x') ON CONFLICT (id) DO UPDATE SET v = hot.v + 1"
hot_step "in place, then an indexed column (out of place)" "UPDATE hot SET grp = grp + 1 WHERE id % 50 = 0"
hot_step "repair: VACUUM" "VACUUM hot"
hot_step "recycling: undo_discard" "SELECT rustydb.undo_discard('hot')"
if [ "$EXPECT" = 1 ]; then
	rdb_ok "the primary updated hot in place" \
		rdb_psql_true amprimary "SELECT inplace_updates > 0 FROM rustydb.undo_stats WHERE relid = 'hot'::regclass"
	rdb_ok "hot's undo store is not empty on the standby" \
		rdb_psql_true amstandby "SELECT pg_relation_size(rustydb.undo_relation('hot')) > 0"
fi
rdb_compare amprimary amstandby "SELECT * FROM rustydb.undo_store('hot')"

# Pruning removes the undo pointers of in-place versions that every
# snapshot sees when a page filled up to the insert reserve needs the room
# (PRUNE with UNDO_STRIPPED): replayed, and checked against the primary's
# page images by wal_consistency_checking.
rdb_psql amprimary "CREATE TABLE room (aid int PRIMARY KEY, bid int, abalance int, filler char(84)) USING rustydb;
	INSERT INTO room SELECT g, 1, 0, '' FROM generate_series(1, 300) g" >/dev/null
rdb_psql amprimary "DO \$\$ BEGIN FOR i IN 0..359 LOOP
	UPDATE room SET abalance = abalance + 1 WHERE aid = 1 + i % 120; COMMIT; END LOOP; END \$\$" >/dev/null
rdb_psql amprimary "SELECT txid_current()" >/dev/null
rdb_wait_replay amprimary amstandby
rdb_compare amprimary amstandby \
	"SELECT count(*), sum(abalance), md5(string_agg(aid || ':' || abalance || ':' || ctid, ',' ORDER BY aid)) FROM room"
rdb_is "undo pointers removed: verify_table('room') on the standby" \
	"$(rdb_psql amstandby "SELECT count(*) FROM rustydb.verify_table('room')")" "0"
if [ "$EXPECT" = 1 ] && [ "${RDB_TDE:-0}" != 1 ]; then
	rdb_is "room: no in-place update found its page full" \
		"$(rdb_psql amprimary "SELECT inplace_updates || ' ' || fallback_no_space FROM rustydb.undo_stats WHERE relid = 'room'::regclass")" "360 0"
fi

# A hot-standby query holds a REPEATABLE READ snapshot while the primary
# updates the same rows many times (in place), once with the standby's
# xmin reported to the primary (hot_standby_feedback: the primary keeps
# the undo that snapshot needs, so the standby follows the chains), once
# without, and with VACUUM and undo_discard on the primary (the standby
# may cancel the query with a recovery conflict instead). Either the query
# answers its snapshot's values or it is cancelled: never another answer.
rdb_node_conf amstandby "wal_receiver_status_interval = 1s"
rdb_node_conf amstandby "max_standby_streaming_delay = 2s"
H_SNAP="SELECT 'snap ' || count(*) || ' ' || sum(v) || ' ' || md5(string_agg(id || ':' || v || ':' || note, ',' ORDER BY id)) FROM hot WHERE id <= 300"
standby_snapshot() { # standby_snapshot CASE FEEDBACK(on|off)
	local case=$1 fifo out pid first second
	rdb_node_conf amstandby "hot_standby_feedback = $2"
	rdb_reload amstandby
	fifo=$RDB_WORK/snapshot-feedback-$2.fifo
	out=$RDB_WORK/snapshot-feedback-$2.out
	rm -f "$fifo"
	mkfifo "$fifo"
	"$RDB_BINDIR/psql" -X -A -t -h "$(rdb_sock amstandby)" -p "$(rdb_port amstandby)" -U postgres -d postgres \
		-f "$fifo" >"$out" 2>&1 &
	pid=$!
	# (read-write: opening it never blocks, even if psql is gone)
	exec 7<>"$fifo"
	echo "BEGIN ISOLATION LEVEL REPEATABLE READ; $H_SNAP;" >&7
	rdb_wait_for "$case: the standby's snapshot" 60 bash -c "grep -qs '^snap ' '$out'"
	if [ "$2" = on ]; then
		rdb_wait_for "$case: the primary to know the standby's xmin" 60 \
			rdb_psql_true amprimary "SELECT xmin IS NOT NULL FROM pg_replication_slots WHERE slot_name = 'amstandby'"
	fi
	rdb_psql amprimary "DO \$\$ BEGIN FOR i IN 1..40 LOOP
		UPDATE hot SET v = v + 1, note = CASE WHEN i % 10 = 0 THEN note || '+' ELSE note END WHERE id <= 300;
		COMMIT; END LOOP; END \$\$"
	if [ "$2" = off ]; then
		rdb_psql amprimary "VACUUM hot"
		rdb_psql amprimary "SELECT rustydb.undo_discard('hot')" >/dev/null
	fi
	rdb_psql amprimary "SELECT txid_current()" >/dev/null
	rdb_wait_replay amprimary amstandby
	echo "$H_SNAP; COMMIT;" >&7
	exec 7>&-
	wait "$pid" || true
	rm -f "$fifo"
	first=$(grep '^snap ' "$out" | head -n 1)
	second=$(grep '^snap ' "$out" | sed -n 2p)
	rdb_ok "$case: the rows changed on the primary since the standby's snapshot" \
		test "$(rdb_psql amprimary "$H_SNAP")" != "$first"
	if grep -q 'conflict with recovery' "$out"; then
		rdb_log "$case: the standby query was cancelled by a recovery conflict"
		rdb_ok "$case: cancelled, not answered otherwise" test -z "$second"
	else
		rdb_is "$case: the standby query answers its snapshot's values" "$second" "$first"
	fi
	rdb_compare amprimary amstandby "$H_ALL"
	rdb_is "$case: verify_table('hot') on the standby" "$(rdb_psql amstandby "SELECT count(*) FROM rustydb.verify_table('hot')")" "0"
}
standby_snapshot "feedback" on
standby_snapshot "no feedback, VACUUM" off

rdb_ok "the standby reported no inconsistency" \
	bash -c "! grep -q 'inconsistent page found' '$(rdb_dir amstandby)/server.log'"
rdb_ok "neither server logged a PANIC" \
	bash -c "! grep -q 'PANIC' '$(rdb_dir amstandby)/server.log' '$(rdb_dir amprimary)/server.log'"

rdb_summary
