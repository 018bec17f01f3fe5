#!/usr/bin/env bash
# Records queued in shared memory when the whole server stops without a
# clean shutdown are lost; the loss must not be silent. After kill -9 (and
# an immediate shutdown) the trail gets an "audit_records_lost" event naming
# the last record written before; a clean restart and a restart of the
# writer alone add none; the chain still verifies.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

N=agap
rdb_node_init $N
rdb_node_start $N
q() { rdb_psql $N "$1"; }
q "CREATE EXTENSION rustydb; CREATE TABLE t (id int)" >/dev/null
q "SELECT rustydb.create_audit_policy('t_ins', '{insert}', '{t}')" >/dev/null
audited() { q "INSERT INTO t VALUES ($1); SELECT rustydb.audit_flush(10000)" >/dev/null; }
lost() { q "SELECT count(*) FROM rustydb.audit_trail WHERE action = 'audit_records_lost'"; }
audited 1
rdb_is "a new trail has no loss event" "$(lost)" "0"

rdb_node_stop $N
rdb_node_start $N
audited 2
rdb_is "a clean restart adds no loss event" "$(lost)" "0"

pid=$(q "SELECT worker_pid FROM rustydb.audit_info")
q "SELECT pg_terminate_backend($pid)" >/dev/null
rdb_wait_for "a new audit writer after the old one was terminated" 60 \
	rdb_psql_true $N "SELECT coalesce(worker_pid, 0) NOT IN (0, $pid) FROM rustydb.audit_info"
audited 3
rdb_is "a restart of the writer alone adds no loss event" "$(lost)" "0"

last=$(q "SELECT max(seq) FROM rustydb.audit_trail")
rdb_node_crash $N
rdb_node_start $N
audited 4
rdb_is "after kill -9 the trail has one loss event" "$(lost)" "1"
rdb_is "... naming the last record written before the crash" \
	"$(q "SELECT detail LIKE '%after record $last;%' FROM rustydb.audit_trail WHERE action = 'audit_records_lost'")" "t"
rdb_is "... recorded before the first record after the restart" \
	"$(q "SELECT (SELECT seq FROM rustydb.audit_trail WHERE action = 'audit_records_lost') <
		(SELECT max(seq) FROM rustydb.audit_trail WHERE action = 'insert')")" "t"

rdb_as_server "$RDB_BINDIR/pg_ctl" -D "$(rdb_dir $N)/data" -m immediate -w stop >/dev/null
rdb_node_start $N
audited 5
rdb_is "an immediate shutdown is a loss event too" "$(lost)" "2"
rdb_is "the chain verifies" "$(q "SELECT valid FROM rustydb.verify_audit_trail()")" "t"
rdb_summary
