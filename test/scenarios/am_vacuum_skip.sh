#!/usr/bin/env bash
# VACUUM reads only the pages that need it (docs/storage.md, "What VACUUM
# does"): a run that is not aggressive skips runs of at least 32 pages the
# visibility map marks all-visible, an aggressive one those it marks
# all-frozen, as heap's do, and each reports what it did (VACUUM VERBOSE;
# autovacuum under log_autovacuum_min_duration). Each check beside a heap
# twin that runs the same statements, and on the neighbours of the skip:
# deletes, in-place updates and a rolled-back one on pages the map had
# marked, row locks on all-frozen pages (the bit cleared, also after a
# crash and on a standby that checks every replayed page), truncation of
# an emptied tail, the row count of the pages not read, relfrozenxid
# (advanced only when every page left out was all-frozen), index entries.
# Also with RDB_TDE=1 (every rustydb table encrypted).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

rdb_node_init vac
rdb_node_conf vac "wal_consistency_checking = 'rustydb'"
rdb_node_conf vac "autovacuum = off"
rdb_node_conf vac "autovacuum_naptime = 1"
rdb_node_conf vac "log_autovacuum_min_duration = 0"
rdb_node_start vac
rdb_psql vac "CREATE EXTENSION rustydb; CREATE EXTENSION pg_visibility" >/dev/null
q() { rdb_psql vac "$@"; }
ROWS=200000
for am in rustydb heap; do
	q "CREATE TABLE t_$am (id int PRIMARY KEY, n int, pad text) USING $am WITH (autovacuum_enabled = off);
		INSERT INTO t_$am SELECT g, 0, repeat('x', 100) FROM generate_series(1, $ROWS) g;" >/dev/null
	q "VACUUM t_$am"
done

# verbose AM: the report of VACUUM (VERBOSE) of t_AM (INFO lines)
verbose() { q "VACUUM (VERBOSE${2:+, $2}) t_$1" 2>&1; }
# the table's own report (VERBOSE also reports its TOAST table): the lines
# after its "finished vacuuming" line, up to the next report
own() { awk '/finished vacuuming "postgres\.public\.t_/ { on = 1; next } /vacuuming "/ { on = 0 } on'; }
# pages scanned and tuples removed, from the report's "pages:" and "tuples:" lines
scanned() { own | sed -n 's/^pages: [0-9]* removed, [0-9]* remain, \([0-9]*\) scanned.*/\1/p'; }
removed_tuples() { own | sed -n 's/^tuples: \([0-9]*\) removed.*/\1/p'; }
relpages() { q "SELECT relpages FROM pg_class WHERE relname = 't_$1'"; }
all_visible() { q "SELECT relallvisible = relpages FROM pg_class WHERE relname = 't_$1'"; }

# 1. a table VACUUM left all-visible: the next run reads the last page only
for am in rustydb heap; do
	rdb_is "$am: after VACUUM every page is all-visible" "$(all_visible "$am")" "t"
	r=$(verbose "$am")
	rdb_is "$am: a second VACUUM reads 1 page (the last) of $(relpages "$am")" "$(scanned <<<"$r")" "1"
done
r=$(verbose rustydb)
rdb_ok "rustydb: the report names the table and has heap's lines" \
	grep -q 'finished vacuuming "postgres.public.t_rustydb": index scans: 0' <<<"$r"
rdb_ok "rustydb: the report counts the rows of the pages not read (estimated)" \
	grep -q "tuples: 0 removed, $ROWS remain" <<<"$r"
rdb_is "rustydb: reltuples stays exact when the run reads almost nothing" \
	"$(q "SELECT reltuples FROM pg_class WHERE relname = 't_rustydb'")" "$ROWS"

# 2. deletes on three pages far apart: those pages are read, their rows
#    and index entries removed, every other page skipped
for am in rustydb heap; do
	q "DELETE FROM t_$am WHERE id IN (20000, 20001, 90000, 150000)" >/dev/null
	# INDEX_CLEANUP ON: heap's VACUUM would otherwise leave so few dead
	# items to a later run, with their index entries (PostgreSQL 15's
	# index-vacuum bypass); rustydb removes them at once either way
	r=$(verbose "$am" "INDEX_CLEANUP ON")
	rdb_is "$am: VACUUM after deletes on 3 pages reads those and the last" "$(scanned <<<"$r")" "4"
	rdb_is "$am: it removes the 4 deleted rows" "$(removed_tuples <<<"$r")" "4"
	rdb_is "$am: their index entries are gone" \
		"$(q "SET enable_seqscan = off; SET enable_bitmapscan = off;
			SELECT count(*) FROM t_$am WHERE id IN (20000, 20001, 90000, 150000)")" "0"
	rdb_is "$am: every page all-visible again" "$(all_visible "$am")" "t"
done

# 3. an in-place update and a rolled-back one on pages the map had marked
q "UPDATE t_rustydb SET n = 1 WHERE id = 50000" >/dev/null
q "BEGIN; UPDATE t_rustydb SET n = 99 WHERE id = 120000; ROLLBACK" >/dev/null
if [ "${RDB_TDE:-0}" != 1 ]; then
	rdb_is "rustydb: the updates went in place" \
		"$(q "SELECT inplace_updates FROM rustydb.undo_stats WHERE relid = 't_rustydb'::regclass")" "2"
	r=$(verbose rustydb)
	rdb_is "rustydb: VACUUM reads the two updated pages and the last" "$(scanned <<<"$r")" "3"
else
	# an encrypted table keeps no insert reserve: the updates go out of
	# place, and the pages their new versions went to are read too
	r=$(verbose rustydb)
	rdb_is "rustydb: VACUUM reads the two updated pages, at most two more, and the last" \
		"$(scanned <<<"$r" | awk '{ print ($1 >= 3 && $1 <= 5) }')" "1"
fi
rdb_is "rustydb: the rows read their committed values" \
	"$(q "SELECT string_agg(id || ':' || n, ',' ORDER BY id) FROM t_rustydb WHERE id IN (50000, 120000)")" \
	"50000:1,120000:0"
rdb_is "rustydb: every page all-visible again" "$(all_visible rustydb)" "t"

# 4. relfrozenxid: a run that skipped pages leaves it; FREEZE reads all
for _ in $(seq 1 20); do q "SELECT txid_current()" >/dev/null; done
before=$(q "SELECT relfrozenxid FROM pg_class WHERE relname = 't_rustydb'")
verbose rustydb >/dev/null
rdb_is "rustydb: a run that skipped pages does not move relfrozenxid" \
	"$(q "SELECT relfrozenxid FROM pg_class WHERE relname = 't_rustydb'")" "$before"
for am in rustydb heap; do
	r=$(verbose "$am" FREEZE)
	rdb_is "$am: VACUUM (FREEZE) reads every page" "$(scanned <<<"$r")" "$(relpages "$am")"
done
rdb_is "rustydb: VACUUM (FREEZE) advances relfrozenxid" \
	"$(q "SELECT age(relfrozenxid) < age('$before'::xid) FROM pg_class WHERE relname = 't_rustydb'")" "t"
r=$(verbose rustydb DISABLE_PAGE_SKIPPING)
rdb_is "rustydb: DISABLE_PAGE_SKIPPING reads every page" "$(scanned <<<"$r")" "$(relpages rustydb)"

# 4b. all-frozen: FREEZE marked every page; a row lock clears its page's
#     bit (the page stays all-visible), on the primary, after a crash and
#     on a standby; an aggressive run reads that page only, and a run that
#     left out only all-frozen pages advances relfrozenxid
summary() { q "SELECT all_visible = '$(relpages "$1")' AND all_frozen = '$(relpages "$1")' FROM pg_visibility_map_summary('t_$1')"; }
# bits AM ID: "all_visible|all_frozen" of the map entry of the page of row ID
bits() {
	rdb_psql "${3:-vac}" "SELECT all_visible, all_frozen FROM pg_visibility_map('t_$1')
		WHERE blkno = (SELECT (ctid::text::point)[0]::bigint FROM t_$1 WHERE id = $2)"
}
for am in rustydb heap; do
	rdb_is "$am: after FREEZE every page all-visible and all-frozen" "$(summary "$am")" "t"
done
rdb_standby_create vac vacstandby
rdb_wait_replay vac vacstandby
for am in rustydb heap; do
	q "BEGIN; SELECT id FROM t_$am WHERE id = 70000 FOR SHARE; COMMIT" >/dev/null
	rdb_is "$am: a row lock clears its page's all-frozen bit, not all-visible" "$(bits "$am" 70000)" "t|f"
done
rdb_is "rustydb: verify_table checks the map: nothing found after the lock" \
	"$(q "SELECT count(*) FROM rustydb.verify_table('t_rustydb')")" "0"
rdb_wait_replay vac vacstandby
for am in rustydb heap; do
	rdb_is "$am: the standby replayed the lock's clear" "$(bits "$am" 70000 vacstandby)" "t|f"
done
rdb_is "rustydb: verify_table on the standby finds nothing" \
	"$(rdb_psql vacstandby "SELECT count(*) FROM rustydb.verify_table('t_rustydb')")" "0"
rdb_node_crash vac
rdb_node_start vac
rdb_is "rustydb: after a crash the bit is still clear" "$(bits rustydb 70000)" "t|f"
for am in rustydb heap; do
	r=$(verbose "$am" FREEZE)
	rdb_is "$am: an aggressive VACUUM reads the locked page and the last" "$(scanned <<<"$r")" "2"
	rdb_is "$am: and marks the page all-frozen again" "$(bits "$am" 70000)" "t|t"
done
for _ in $(seq 1 20); do q "SELECT txid_current()" >/dev/null; done
before=$(q "SELECT relfrozenxid FROM pg_class WHERE relname = 't_rustydb'")
r=$(verbose rustydb)
rdb_is "rustydb: a run that left out all-frozen pages only reads 1" "$(scanned <<<"$r")" "1"
rdb_is "rustydb: and advances relfrozenxid" \
	"$(q "SELECT age(relfrozenxid) < age('$before'::xid) FROM pg_class WHERE relname = 't_rustydb'")" "t"
rdb_wait_replay vac vacstandby
rdb_compare vac vacstandby "SELECT blkno, all_visible, all_frozen FROM pg_visibility_map('t_rustydb') ORDER BY 1"
rdb_compare vac vacstandby "SELECT count(*), sum(n) FROM t_rustydb"

# 5. an emptied tail: read (the map's bits were cleared) and truncated
for am in rustydb heap; do
	p0=$(relpages "$am")
	q "DELETE FROM t_$am WHERE id > $((ROWS / 2))" >/dev/null
	verbose "$am" >/dev/null
	rdb_is "$am: VACUUM gives the emptied half back" \
		"$(q "SELECT relpages < $p0 * 0.6 AND pg_relation_size('t_$am') / 8192 < $p0 * 0.6
			FROM pg_class WHERE relname = 't_$am'")" "t"
	rdb_is "$am: its rows are all there" "$(q "SELECT count(*) FROM t_$am")" "$((ROWS / 2 - 3))"
done

# 6. autovacuum's report under log_autovacuum_min_duration = 0
q "ALTER TABLE t_rustydb SET (autovacuum_enabled = on, autovacuum_vacuum_threshold = 10,
	autovacuum_vacuum_scale_factor = 0)" >/dev/null
q "DELETE FROM t_rustydb WHERE id BETWEEN 10 AND 60" >/dev/null
q "ALTER SYSTEM SET autovacuum = on" >/dev/null
rdb_reload vac
rdb_wait_for "autovacuum to vacuum t_rustydb" 120 rdb_psql_true vac \
	"SELECT autovacuum_count >= 1 FROM pg_stat_user_tables WHERE relname = 't_rustydb'"
rdb_wait_for "autovacuum's report in the log" 30 \
	grep -q 'automatic vacuum of table "postgres.public.t_rustydb": index scans: 1' "$(rdb_dir vac)/server.log"
rdb_ok "rustydb: autovacuum's report says what it read and removed" \
	grep -q "tuples: 51 removed" "$(rdb_dir vac)/server.log"

# 7. a multixact xmax whose updater rolled back (a key-share lock, then an
#    update in a subtransaction that rolled back): while VACUUM keeps the
#    multixact, relfrozenxid stays at or before the updater, whose commit
#    status a reader may still ask; FREEZE clears it and moves past it
for am in rustydb heap; do
	q "CREATE TABLE m_$am (id int PRIMARY KEY, k int, n int) USING $am WITH (autovacuum_enabled = off);
		CREATE INDEX ON m_$am (k); INSERT INTO m_$am SELECT g, g, 0 FROM generate_series(1, 100) g" >/dev/null
	q "VACUUM FREEZE m_$am"
	U=$(q "BEGIN; SELECT 1 FROM m_$am WHERE id = 5 FOR KEY SHARE; SAVEPOINT s;
		UPDATE m_$am SET k = k + 1000 WHERE id = 5; SELECT xmin FROM m_$am WHERE id = 5;
		ROLLBACK TO s; COMMIT" | tail -n 1)
	q "SELECT count(*) FROM m_$am WHERE id = 5" >/dev/null # the reader's hint
	for _ in $(seq 1 5); do q "SELECT txid_current()" >/dev/null; done
	q "VACUUM m_$am"
	rdb_is "$am: relfrozenxid stays at or before the rolled-back updater $U of the multixact" \
		"$(q "SELECT age(relfrozenxid) >= age('$U'::xid) FROM pg_class WHERE relname = 'm_$am'")" "t"
	q "VACUUM FREEZE m_$am"
	rdb_is "$am: VACUUM FREEZE clears it and moves past it" \
		"$(q "SELECT age(relfrozenxid) < age('$U'::xid) FROM pg_class WHERE relname = 'm_$am'")" "t"
done

rdb_is "verify_table t_rustydb finds nothing" "$(q "SELECT count(*) FROM rustydb.verify_table('t_rustydb')")" "0"
rdb_is "verify_table m_rustydb finds nothing" "$(q "SELECT count(*) FROM rustydb.verify_table('m_rustydb')")" "0"
rdb_summary
