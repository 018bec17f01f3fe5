#!/usr/bin/env bash
# pglogical (postgresql-15-pglogical) replicates rustydb tables: a provider
# and a subscriber, both preloading rustydb and pglogical; the initial copy,
# then inserts, COPY, updates of key and non-key columns, deletes and large
# values on a rustydb table of the provider reach the subscriber (waited
# for by LSN), where the table equals the provider's row by row. The
# subscriber's table is heap: pglogical's apply writes with heap functions
# (simple_heap_delete, heap_multi_insert), not through the table access
# method, so it cannot apply into a rustydb table (docs/am.md). Skipped when
# pglogical is not installed (scripts/install-deps.sh installs it).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

if [ ! -e "$("$RDB_BINDIR/pg_config" --pkglibdir)/pglogical.so" ]; then
	echo "1..0 # SKIP pglogical is not installed"
	exit 0
fi

for n in prov subs; do
	rdb_node_init "$n"
	rdb_node_conf "$n" "shared_preload_libraries = 'rustydb, pglogical'"
	rdb_node_conf "$n" "wal_level = logical"
	rdb_node_conf "$n" "track_commit_timestamp = on"
	rdb_node_conf "$n" "max_worker_processes = 16"
	# a server that restricts output plugins to a list (a setting stock
	# PostgreSQL 15 does not have) must allow pglogical's
	if "$RDB_BINDIR/postgres" --describe-config 2>/dev/null | grep '^output_plugin_libraries' >/dev/null; then
		rdb_node_conf "$n" "output_plugin_libraries = 'pgoutput, test_decoding, pglogical_output'"
	fi
	rdb_node_start "$n"
	rdb_psql "$n" "CREATE EXTENSION rustydb; CREATE EXTENSION pglogical;
		CREATE TABLE acc (id int PRIMARY KEY, owner text, balance bigint, note text) USING $([ "$n" = subs ] && echo heap || echo rustydb);"
done
dsn() { echo "host=$(rdb_sock "$1") port=$(rdb_port "$1") dbname=postgres user=postgres"; }

rdb_psql prov "INSERT INTO acc SELECT g, 'owner ' || g, 100, NULL FROM generate_series(1, 2000) g"
rdb_psql prov "SELECT pglogical.create_node(node_name := 'prov', dsn := '$(dsn prov)')" >/dev/null
rdb_psql prov "SELECT pglogical.replication_set_add_table('default', 'acc', true)" >/dev/null
rdb_psql subs "SELECT pglogical.create_node(node_name := 'subs', dsn := '$(dsn subs)')" >/dev/null
rdb_psql subs "SELECT pglogical.create_subscription(subscription_name := 'sub1', provider_dsn := '$(dsn prov)')" >/dev/null
rdb_psql subs "SELECT pglogical.wait_for_subscription_sync_complete('sub1')" >/dev/null

Q="SELECT count(*), sum(balance), md5(string_agg(a::text, ',' ORDER BY id)) FROM acc a"
rdb_compare prov subs "$Q"

rdb_psql prov "UPDATE acc SET balance = balance + id % 7 WHERE id % 3 = 0;
	UPDATE acc SET id = id + 100000 WHERE id % 97 = 0;
	DELETE FROM acc WHERE id % 11 = 0;
	INSERT INTO acc SELECT 5000, 'large', 1, string_agg(md5(g::text), '') FROM generate_series(1, 400) g;
	COPY acc FROM PROGRAM 'seq 10001 11000 | sed \"s/\$/\towner\t7\tcopied/\"'"
rdb_psql prov "BEGIN; INSERT INTO acc VALUES (6000, 'rolled back', 0); ROLLBACK"
rdb_psql prov "UPDATE acc SET owner = 'after large' WHERE id = 5000"

lsn=$(rdb_psql prov "SELECT pg_current_wal_lsn()")
rdb_wait_for "the subscriber to confirm $lsn" 120 rdb_psql_true prov \
	"SELECT count(*) = 1 AND bool_and(confirmed_flush_lsn >= '$lsn') FROM pg_replication_slots WHERE plugin = 'pglogical_output'"
rdb_compare prov subs "$Q"
rdb_is "the provider's table is a rustydb table" \
	"$(rdb_psql prov "SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE relname = 'acc'")" rustydb

rdb_psql subs "SELECT pglogical.drop_subscription('sub1')" >/dev/null
rdb_summary
