#!/usr/bin/env bash
# n_dead_tup counts what VACUUM has to do (docs/storage.md, "What VACUUM
# does"), beside a heap twin that runs the same statements:
# - an in-place update, committed or rolled back, adds no dead tuple (heap's
#   update adds one); an out-of-place update and a delete add one, as heap's;
# - on-access pruning subtracts the dead tuples it removes: a page updated
#   out of place hundreds of times keeps n_dead_tup as small as heap's;
# - autovacuum, which reads n_dead_tup, analyzes a table updated only in
#   place but does not vacuum it; the heap twin it vacuums.
# Statistics are flushed when a session ends or goes idle; every check waits
# for the state it reads (n_tup_upd or autoanalyze_count reaching a value).
# Also with RDB_TDE=1 (every rustydb table encrypted: a few updates go out
# of place there, and the checks count them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

rdb_node_init dead
rdb_node_conf dead "autovacuum = off"
rdb_node_conf dead "autovacuum_naptime = 1"
rdb_node_start dead
rdb_psql dead "CREATE EXTENSION rustydb" >/dev/null
for am in rustydb heap; do
	# fillfactor 50: every row's updates fit its page, no pruning at first
	rdb_psql dead "CREATE TABLE t_$am (id int PRIMARY KEY, n int, pad text) USING $am WITH (fillfactor = 50);
		INSERT INTO t_$am SELECT g, 0, repeat('x', 100) FROM generate_series(1, 100) g;" >/dev/null
done

stats() { rdb_psql dead "SELECT n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables WHERE relname = '$1'"; }
# wait until the table's n_tup_upd is $2 (the sessions' statistics flushed)
upd_is() {
	rdb_wait_for "n_tup_upd of $1 to reach $2" 60 \
		rdb_psql_true dead "SELECT n_tup_upd = $2 FROM pg_stat_user_tables WHERE relname = '$1'"
}
inplace() { rdb_psql dead "SELECT inplace_updates FROM rustydb.undo_stats WHERE relid = '$1'::regclass"; }
# what n_dead_tup must be: the updates that went out of place (an
# encrypted table, RDB_TDE=1, keeps no insert reserve, so a few do), plus
# $2 (deletes); nothing pruned them yet
dead_want() {
	rdb_psql dead "SELECT s.n_tup_upd - u.inplace_updates + $2 FROM pg_stat_user_tables s, rustydb.undo_stats u
		WHERE s.relid = '$1'::regclass AND u.relid = s.relid"
}
dead() { stats "$1" | cut -d'|' -f3; }

# 1. one update of every row: in place on rustydb, heap-only on heap
for am in rustydb heap; do rdb_psql dead "UPDATE t_$am SET n = n + 1"; done
upd_is t_rustydb 100
upd_is t_heap 100
rdb_is "rustydb: 100 updates in place" "$(inplace t_rustydb)" "100"
rdb_is "rustydb: in-place updates leave no dead tuple" "$(stats t_rustydb)" "100|100|0"
rdb_is "heap: its 100 heap-only updates are 100 dead tuples (calibration)" "$(stats t_heap)" "100|100|100"

# 2. more rounds, in place, pages compacted on the way: still none
for _ in 1 2 3; do rdb_psql dead "UPDATE t_rustydb SET n = n + 1"; done
upd_is t_rustydb 400
if [ "${RDB_TDE:-0}" != 1 ]; then
	rdb_is "rustydb: 400 in place" "$(inplace t_rustydb)" "400"
fi
rdb_is "rustydb: after 400, a dead tuple for each update out of place only" \
	"$(dead t_rustydb)" "$(dead_want t_rustydb 0)"

# heap's twins below are new tables each time: heap's own pruning of a
# page its updates filled would make its count depend on the order of
# the statements
heap_twin() {
	rdb_psql dead "CREATE TABLE $1 (id int PRIMARY KEY, n int, pad text) WITH (fillfactor = 50);
		INSERT INTO $1 SELECT g, 0, repeat('x', 100) FROM generate_series(1, 100) g;" >/dev/null
}

# 3. rolled back: the in-place versions are repaired, nothing for VACUUM
heap_twin h3
for t in t_rustydb h3; do
	rdb_psql dead "BEGIN; UPDATE $t SET n = n + 1 WHERE id <= 10; ROLLBACK"
done
upd_is t_rustydb 410
upd_is h3 10
rdb_is "rustydb: a rolled-back in-place update leaves no dead tuple" "$(dead t_rustydb)" "$(dead_want t_rustydb 0)"
rdb_is "heap: its rolled-back update left 10 (calibration)" "$(stats h3 | cut -d'|' -f3)" "10"
rdb_is "rustydb: the rolled-back rows read their committed value" \
	"$(rdb_psql dead "SELECT sum(n) FROM t_rustydb")" "400"

# 4. out of place (an indexed column) and a delete: one dead tuple each, as heap
heap_twin h4
for t in t_rustydb h4; do
	rdb_psql dead "UPDATE $t SET id = id + 1000 WHERE id = 50; DELETE FROM $t WHERE id = 60"
done
upd_is t_rustydb 411
upd_is h4 1
rdb_wait_for "the deletes to be counted" 60 rdb_psql_true dead \
	"SELECT bool_and(n_tup_del = 1) FROM pg_stat_user_tables WHERE relname IN ('t_rustydb', 'h4')"
rdb_is "rustydb: the out-of-place update and the delete are 2 dead tuples more" \
	"$(dead t_rustydb)" "$(dead_want t_rustydb 1)"
if [ "${RDB_TDE:-0}" != 1 ]; then
	rdb_is "rustydb: so 2 in all" "$(dead t_rustydb)" "2"
fi
rdb_is "heap: the same 2 (calibration)" "$(stats h4 | cut -d'|' -f3)" "2"

# 5. on-access pruning subtracts what it removes: 10 rows on one page, 600
# heap-only (out-of-place) updates, one a transaction; the page is pruned
# whenever it fills, so few dead versions are ever on it
for am in rustydb heap; do
	rdb_psql dead "CREATE TABLE p_$am (id int PRIMARY KEY, n int, pad text) USING $am;
		INSERT INTO p_$am SELECT g, 0, repeat('y', 200) FROM generate_series(1, 10) g;" >/dev/null
	for i in $(seq 1 600); do echo "UPDATE p_$am SET n = n + 1 WHERE id = $((i % 10 + 1));"; done |
		"$RDB_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$(rdb_sock dead)" -p "$(rdb_port dead)" \
			-U postgres -d postgres -c "SET rustydb.update_in_place = off" -f - >/dev/null
	upd_is "p_$am" 600
done
rdb_is "rustydb: the updates went out of place" "$(inplace p_rustydb)" "0"
rdb_is "rustydb: the pruned page is still one page (pruning ran)" \
	"$(rdb_psql dead "SELECT pg_relation_size('p_rustydb') <= 2 * current_setting('block_size')::int")" "t"
heap_dead=$(stats p_heap | cut -d'|' -f3)
rdb_is "heap: pruning kept its n_dead_tup below one page of versions (calibration)" \
	"$([ "$heap_dead" -lt 60 ] && echo yes || echo "no: $heap_dead")" "yes"
rdb_dead=$(stats p_rustydb | cut -d'|' -f3)
rdb_is "rustydb: pruning kept n_dead_tup below one page of versions" \
	"$([ "$rdb_dead" -lt 60 ] && echo yes || echo "no: $rdb_dead")" "yes"
rdb_is "rustydb: VACUUM after the pruning reports no dead tuple left (its count replaces the estimate)" \
	"$(rdb_psql dead "VACUUM p_rustydb" >/dev/null
		rdb_wait_for "VACUUM's report" 60 rdb_psql_true dead \
			"SELECT vacuum_count = 1 FROM pg_stat_user_tables WHERE relname = 'p_rustydb'"
		stats p_rustydb | cut -d'|' -f3)" "0"

# 6. autovacuum: in-place updates past the table's vacuum threshold are
# analyzed, not vacuumed; heap's twin is vacuumed
for am in rustydb heap; do
	rdb_psql dead "CREATE TABLE a_$am (id int PRIMARY KEY, n int, pad text) USING $am WITH (fillfactor = 50,
			autovacuum_vacuum_threshold = 20, autovacuum_vacuum_scale_factor = 0,
			autovacuum_analyze_threshold = 20, autovacuum_analyze_scale_factor = 0,
			autovacuum_vacuum_insert_threshold = -1);
		INSERT INTO a_$am SELECT g, 0, repeat('z', 100) FROM generate_series(1, 100) g;" >/dev/null
	# not in the transaction that created the table: its new file is updated out of place
	rdb_psql dead "UPDATE a_$am SET n = n + 1"
	upd_is "a_$am" 100
done
rdb_is "rustydb: its 100 updates were in place" "$(inplace a_rustydb)" "100"
rdb_psql dead "ALTER SYSTEM SET autovacuum = on" >/dev/null
rdb_reload dead
for am in rustydb heap; do
	rdb_wait_for "autovacuum to analyze a_$am" 120 rdb_psql_true dead \
		"SELECT autoanalyze_count >= 1 FROM pg_stat_user_tables WHERE relname = 'a_$am'"
done
rdb_is "heap: autovacuum vacuumed the twin (calibration)" \
	"$(rdb_psql dead "SELECT autovacuum_count >= 1 FROM pg_stat_user_tables WHERE relname = 'a_heap'")" "t"
rdb_is "rustydb: autovacuum analyzed the table updated in place but did not vacuum it" \
	"$(rdb_psql dead "SELECT autovacuum_count, n_dead_tup FROM pg_stat_user_tables WHERE relname = 'a_rustydb'")" "0|0"

for t in t_rustydb p_rustydb a_rustydb; do
	rdb_is "verify_table $t finds nothing" "$(rdb_psql dead "SELECT count(*) FROM rustydb.verify_table('$t')")" "0"
done
rdb_check_server_logs
rdb_summary
