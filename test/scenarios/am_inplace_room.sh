#!/usr/bin/env bash
# Room for in-place versions on a page filled up to the insert reserve
# (issue 21; docs/storage.md, "Giving the undo pointer's 8 bytes back").
# A table with pgbench_accounts' row at fillfactor 100: its first page's
# rows are updated in place one per transaction, round after round, and no
# update may find the page full (fallback_no_space), the rows keep their
# TIDs and the table its size: pruning compacts the page and removes the
# undo pointers every snapshot is past. Then a second session pins the page
# (a cursor stopped on its first row, with its snapshot) while this one
# updates a row of it: the reserve takes that version although pruning
# cannot compact under the pin; once the session ends, the versions written
# meanwhile give their room back too, and more rounds still find room.
# The table is loaded without the pointer reserve
# (rustydb.inplace_pointer_reserve, scenario am_inplace_held), which would
# keep room for every row's pointer and leave pruning nothing to remove.
# Deterministic: the second session is waited for by its state, never by
# time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT
N=inplaceroom
rdb_node_init $N
rdb_node_conf $N "autovacuum = off"
rdb_node_start $N
q() { rdb_psql $N "$@"; }

q "CREATE EXTENSION rustydb;
	CREATE TABLE acc (aid int PRIMARY KEY, bid int, abalance int, filler char(84)) USING rustydb;
	SET rustydb.inplace_pointer_reserve = off;
	INSERT INTO acc SELECT g, 1, 0, '' FROM generate_series(1, 1000) g;
	CREATE TABLE tids AS SELECT aid, ctid AS tid FROM acc" >/dev/null
SIZE=$(q "SELECT pg_relation_size('acc')")
PAGE=$(q "SELECT count(*) FROM acc WHERE ctid < '(1,0)'::tid")
rdb_ok "the first page holds rows ($PAGE)" test "$PAGE" -gt 10
# one transaction per update, every row of the first page, ROUNDS times
rounds() {
	q "DO \$\$ BEGIN FOR r IN 1..$1 LOOP FOR i IN 1..$PAGE LOOP
		UPDATE acc SET abalance = abalance + 1 WHERE aid = i; COMMIT; END LOOP; END LOOP; END \$\$" >/dev/null
}
stats() { q "SELECT inplace_updates || ' ' || fallback_no_space FROM rustydb.undo_stats WHERE relid = 'acc'::regclass"; }

rounds 3
rdb_is "three rounds over the first page: all in place, none found the page full" "$(stats)" "$((3 * PAGE)) 0"

# a reader of the first page (so pruning compacts it), then a session
# pinning it: a cursor stopped on its first row, its snapshot held
q "SELECT abalance FROM acc WHERE aid = $PAGE" >/dev/null
(q "BEGIN; DECLARE c CURSOR FOR SELECT * FROM acc; FETCH 1 FROM c; SELECT pg_sleep(600); COMMIT" \
	>/dev/null 2>&1 || true) &
rdb_wait_for "the pinning session to hold its cursor (in pg_sleep)" 120 \
	rdb_psql_true $N "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
q "UPDATE acc SET abalance = abalance + 1 WHERE aid = 1" >/dev/null
rdb_is "an update of the pinned page goes in place (the reserve)" "$(stats)" "$((3 * PAGE + 1)) 0"
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'" >/dev/null
rdb_wait_for "the pinning session to end" 60 \
	rdb_psql_true $N "SELECT count(*) = 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"

rounds 2
rdb_is "two more rounds after the pin: all in place, none found the page full" \
	"$(stats)" "$((5 * PAGE + 1)) 0"
rdb_is "every row kept its TID" \
	"$(q "SELECT count(*) FROM acc a JOIN tids t USING (aid) WHERE a.ctid <> t.tid")" "0"
rdb_is "the table kept its size" "$(q "SELECT pg_relation_size('acc')")" "$SIZE"
rdb_is "the values" "$(q "SELECT sum(abalance) FROM acc")" "$((5 * PAGE + 1))"
rdb_is "verify_table finds nothing" "$(q "SELECT count(*) FROM rustydb.verify_table('acc')")" "0"
rdb_check_server_logs $N
rdb_summary
