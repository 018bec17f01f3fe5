#!/usr/bin/env bash
# A pg_basebackup standby replays rustydb WAL: after each change on the
# primary the standby's hot-standby queries return the same results. The
# primary runs with wal_consistency_checking = 'rustydb', so the standby
# also checks every replayed page against the primary's full-page image.
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

# the undo store (issue 21, in progress): metapage, ring pages and
# recycling replayed (pages without records; a ring of 128 pages wrapped)
rdb_psql amprimary "SET rustydb.undo_max_size = '1MB'; SELECT rustydb.selftest_undo_pages('acc', 200);
	SELECT rustydb.undo_discard('acc'); SELECT rustydb.selftest_undo_pages('acc', 50);
	SELECT txid_current()" >/dev/null # an xid: the commit flushes the UNDO records too
rdb_wait_replay amprimary amstandby
rdb_compare amprimary amstandby "SELECT * FROM rustydb.undo_store('acc')"
rdb_is "undo store: the ring's 128 pages wrapped on the standby too" \
	"$(rdb_psql amstandby "SELECT capacity, pages_in_use, file_blocks FROM rustydb.undo_store('acc')")" "128|51|129"
# VACUUM recycles, restarts the empty ring and truncates the file (UNDO
# DISCARD, UNDO META, the storage manager's truncation); set_undo_size
# restarts it with another capacity (UNDO META)
rdb_psql amprimary "VACUUM acc" >/dev/null
rdb_psql amprimary "SELECT rustydb.set_undo_size('acc', 2);
	SELECT rustydb.selftest_undo_pages('acc', 10); SELECT txid_current()" >/dev/null
rdb_wait_replay amprimary amstandby
rdb_compare amprimary amstandby "SELECT * FROM rustydb.undo_store('acc')"
rdb_is "undo store: truncated by VACUUM, resized and refilled on the standby too" \
	"$(rdb_psql amstandby "SELECT capacity, pages_in_use, file_blocks FROM rustydb.undo_store('acc')")" "256|10|11"

rdb_ok "the standby reported no inconsistency" \
	bash -c "! grep -q 'inconsistent page found' '$(rdb_dir amstandby)/server.log'"
rdb_ok "neither server logged a PANIC" \
	bash -c "! grep -q 'PANIC' '$(rdb_dir amstandby)/server.log' '$(rdb_dir amprimary)/server.log'"

rdb_summary
