#!/usr/bin/env bash
# VACUUM and the xids that undo still holds (issue 21): the images of rows
# updated in place keep their creators' xids (and their updaters' in xmax)
# in the undo store, which VACUUM's freezing of the table's pages does not
# see. While a record stays (its writer still running, or needed by a
# snapshot), relfrozenxid must not pass the oldest xid it holds, or the
# commit log could be truncated under a version a snapshot reads from undo.
# Once the records are recycled, VACUUM FREEZE advances relfrozenxid again.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT
N=undohorizon
rdb_node_init $N
rdb_node_conf $N "autovacuum = off"
rdb_node_start $N
q() { rdb_psql $N "$@"; }

q "CREATE EXTENSION rustydb;
	CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, note text) USING rustydb;
	INSERT INTO t SELECT g, g, 'row ' || g FROM generate_series(1, 100) g;" >/dev/null
X=$(q "SELECT xmin FROM t WHERE id = 1")
# later xids, so that VACUUM FREEZE could move relfrozenxid past X
for i in 1 2 3 4 5; do q "SELECT pg_current_xact_id()" >/dev/null; done

(q "BEGIN; UPDATE t SET v = v + 1000, note = note || ' open' WHERE id <= 10;
	SELECT pg_sleep(600); COMMIT" >/dev/null 2>&1 || true) &
rdb_wait_for "the open transaction to have updated its rows (in pg_sleep)" 120 \
	rdb_psql_true $N "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
rdb_is "the open transaction updated in place" \
	"$(q "SELECT inplace_updates >= 10 FROM rustydb.undo_stats WHERE relid = 't'::regclass")" "t"

q "VACUUM (FREEZE) t" >/dev/null
rdb_is "VACUUM recycled none of the open writer's undo (its insert page stays)" \
	"$(q "SELECT pages_discarded FROM rustydb.undo_stats WHERE relid = 't'::regclass")" "0"
rdb_is "relfrozenxid stays at or before the images' creator ($X) while undo holds them" \
	"$(q "SELECT age(relfrozenxid) >= age('$X'::xid) FROM pg_class WHERE oid = 't'::regclass")" "t"
rdb_is "other readers see the committed values" \
	"$(q "SELECT count(*), sum(v) FROM t")" "100|5050"

# the writer dies: its rows are repaired, its records recycled, the horizon moves
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'" >/dev/null
rdb_wait_for "the open transaction to end" 60 \
	rdb_psql_true $N "SELECT count(*) = 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
q "VACUUM (FREEZE) t" >/dev/null
q "VACUUM (FREEZE) t" >/dev/null
rdb_is "after the writer ended, VACUUM retired its insert page and recycled it" \
	"$(q "SELECT pages_discarded > 0 FROM rustydb.undo_stats WHERE relid = 't'::regclass")" "t"
rdb_is "after the writer ended and VACUUM recycled its undo, relfrozenxid passes $X" \
	"$(q "SELECT age(relfrozenxid) < age('$X'::xid) FROM pg_class WHERE oid = 't'::regclass")" "t"
rdb_is "the rows read their committed values" "$(q "SELECT count(*), sum(v) FROM t")" "100|5050"
rdb_is "verify_table finds nothing" "$(q "SELECT count(*) FROM rustydb.verify_table('t')")" "0"
rdb_check_server_logs $N
rdb_summary
