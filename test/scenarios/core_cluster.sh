#!/usr/bin/env bash
# The scenario helpers on an ordinary (heap) table: restart, crash (kill -9
# of every server process) and recovery, and a pg_basebackup standby whose
# hot-standby results are compared with the primary's after each change.
# Later subsystems add their own cases in test/scenarios/<subsystem>_*.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

rdb_node_init primary
rdb_node_start primary
rdb_psql primary "CREATE EXTENSION rustydb;
	CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
	INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 1000) g;"

# ---- restart ----
rdb_node_restart primary
rdb_is "rows survive a clean restart" "$(rdb_psql primary "SELECT count(*), sum(balance) FROM accounts")" "1000|100000"

# ---- crash and recovery ----
# Committed transfers must survive; an open transaction must vanish.
rdb_psql primary "UPDATE accounts SET balance = balance - 10 WHERE id = 1;
	UPDATE accounts SET balance = balance + 10 WHERE id = 2;"
"$RDB_BINDIR/psql" -X -q -h "$(rdb_sock primary)" -p "$(rdb_port primary)" -U postgres -d postgres \
	-c "BEGIN; UPDATE accounts SET balance = 0; SELECT pg_sleep(60);" >/dev/null 2>&1 &
open_txn=$!
# its UPDATE done (it sleeps after it), so the crash interrupts real work
rdb_wait_for "the open transaction to have updated every row" 60 rdb_psql_true primary \
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'BEGIN; UPDATE accounts%' AND wait_event = 'PgSleep'"
rdb_psql primary "CHECKPOINT"
# more committed work after the checkpoint, so recovery has WAL to replay
rdb_psql primary "INSERT INTO accounts SELECT g, 1 FROM generate_series(1001, 1500) g"
rdb_node_crash primary
wait "$open_txn" 2>/dev/null || true
rdb_node_start primary
rdb_ok "the server recovered after kill -9" grep -q "database system was interrupted\|database system was not properly shut down" "$(rdb_dir primary)/server.log"
rdb_is "committed work survives the crash; the open transaction does not" \
	"$(rdb_psql primary "SELECT count(*), sum(balance), min(balance) FROM accounts")" "1500|100500|1"
rdb_is "committed transfer survived" "$(rdb_psql primary "SELECT balance FROM accounts WHERE id IN (1, 2) ORDER BY id")" "90
110"

# ---- streaming standby ----
rdb_standby_create primary standby
rdb_wait_replay primary standby
rdb_is "the standby is in recovery" "$(rdb_psql standby "SELECT pg_is_in_recovery()")" "t"
rdb_compare primary standby "SELECT id, balance FROM accounts ORDER BY id"

rdb_psql primary "UPDATE accounts SET balance = balance * 2 WHERE id % 7 = 0"
rdb_wait_replay primary standby
rdb_compare primary standby "SELECT id, balance FROM accounts ORDER BY id"

rdb_psql primary "DELETE FROM accounts WHERE id > 1400; CREATE INDEX ON accounts (balance)"
rdb_wait_replay primary standby
rdb_compare primary standby "SELECT count(*), sum(balance) FROM accounts"
rdb_compare primary standby "SET enable_seqscan = off; SELECT id FROM accounts WHERE balance = 200 ORDER BY id"

# the standby survives its own crash and catches up
rdb_node_crash standby
rdb_psql primary "TRUNCATE accounts; INSERT INTO accounts VALUES (1, 1)"
rdb_node_start standby
rdb_wait_replay primary standby
rdb_compare primary standby "SELECT * FROM accounts"
rdb_is "the extension replicated" "$(rdb_psql standby "SELECT rustydb.version()")" "0.1.0"

rdb_summary
