#!/usr/bin/env bash
# rustydb.undo_stats is bounded by rustydb.undo_stats_tables: with room for
# two tables, a third table's events go to the overflow entry (relid NULL),
# nothing is lost and nothing fails; a dropped table's entry is freed for
# the next table; another session's temporary table shows no store figures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

rdb_node_init undostats
rdb_node_conf undostats "rustydb.undo_stats_tables = 2"
rdb_node_start undostats
rdb_psql undostats "CREATE EXTENSION rustydb;
	CREATE TABLE a (x int) USING rustydb; CREATE TABLE b (x int) USING rustydb;
	CREATE TABLE c (x int) USING rustydb; CREATE TABLE d (x int) USING rustydb;"

# n pages started and n - 1 recycled (the insert page stays)
recycle() {
	rdb_psql undostats "SELECT rustydb.selftest_undo_pages('$1', $2); SELECT rustydb.undo_discard('$1')" >/dev/null
}

rdb_is "the segment's limit is the setting" \
	"$(rdb_psql undostats "SELECT \"limit\", entries FROM rustydb.memory WHERE name = 'rustydb undo stats'")" "2|0"
recycle a 3
recycle b 4
recycle c 5
Q="SELECT coalesce(relid::text, 'overflow'), pages_discarded FROM rustydb.undo_stats
	WHERE pages_discarded > 0 ORDER BY 1"
rdb_is "two entries and the overflow entry" "$(rdb_psql undostats "$Q")" "a|2
b|3
overflow|4"
rdb_is "entries at the limit" \
	"$(rdb_psql undostats "SELECT entries, high_water FROM rustydb.memory WHERE name = 'rustydb undo stats'")" "2|2"
rdb_is "c has a store but no entry: its row shows the store with zero counters" \
	"$(rdb_psql undostats "SELECT capacity_bytes > 0, used_bytes, pages_discarded FROM rustydb.undo_stats WHERE relid = 'c'::regclass")" "t|8192|0"

# a dropped table's entry goes; the next table gets it
rdb_psql undostats "DROP TABLE a"
recycle d 2
rdb_is "d took a's entry" "$(rdb_psql undostats "$Q")" "b|3
d|1
overflow|4"

# another session's temporary table: listed, its store's figures NULL
# (its pages are in that session's local buffers)
printf '%s\n' "CREATE TEMP TABLE tt (x int) USING rustydb;" \
	"SELECT rustydb.selftest_undo_pages('tt', 2);" "SELECT pg_sleep(8);" |
	"$RDB_BINDIR/psql" -X -q -h "$(rdb_sock undostats)" -p "$(rdb_port undostats)" -U postgres \
		-d postgres >/dev/null &
holder=$!
for _ in $(seq 1 50); do
	[ "$(rdb_psql undostats "SELECT count(*) FROM pg_class WHERE relname = 'tt'")" = 1 ] && break
	sleep 0.1
done
rdb_is "another session's temporary table: no store figures" \
	"$(rdb_psql undostats "SELECT capacity_bytes IS NULL, used_bytes IS NULL, pages_discarded
		FROM rustydb.undo_stats WHERE relid IN (SELECT oid FROM pg_class WHERE relname = 'tt')")" "t|t|0"
wait "$holder"

rdb_psql undostats "SELECT rustydb.reset_undo_stats()"
rdb_is "reset empties every entry and the overflow" \
	"$(rdb_psql undostats "SELECT count(*) FROM rustydb.undo_stats WHERE pages_discarded > 0 OR relid IS NULL")" "0"

rdb_ok "no server error" bash -c "! grep -q 'PANIC\|TRAP' '$(rdb_dir undostats)/server.log'"
rdb_summary
