#!/usr/bin/env bash
# The audit writer makes its batch's tuple slots once per process, not per
# record or per batch (each slot pins the trail's descriptor in the resource
# owner: that cost the writer about a third of its CPU). With the writer's
# DEBUG1 message counted in the server log: many batches, one set of slots;
# and a restarted writer makes one set of its own.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

N=aslots
rdb_node_init $N
rdb_node_conf $N "log_min_messages = debug1"
rdb_node_start $N
q() { rdb_psql $N "$1"; }
q "CREATE EXTENSION rustydb; CREATE TABLE t (id int)" >/dev/null
q "SELECT rustydb.create_audit_policy('t_ins', '{insert}', '{t}')" >/dev/null
LOG=$(rdb_dir $N)/server.log
made() { grep -c "rustydb audit writer: [0-9]* tuple slots made" "$LOG" || true; }
batches() { # N: N audited statements, each waiting until the trail has it (one batch each)
	for i in $(seq 1 "$1"); do
		q "INSERT INTO t VALUES ($i); SELECT rustydb.audit_flush(10000)" >/dev/null
	done
}
w0=$(q "SELECT written FROM rustydb.audit_info")
batches 20
rdb_is "20 audited statements, each written in a batch of its own" \
	"$(q "SELECT written - $w0 >= 20 FROM rustydb.audit_info")" "t"
rdb_is "the writer made its tuple slots once" "$(made)" "1"
pid=$(q "SELECT worker_pid FROM rustydb.audit_info")
q "SELECT pg_terminate_backend($pid)" >/dev/null
rdb_wait_for "a new audit writer after the old one was terminated" 60 \
	rdb_psql_true $N "SELECT coalesce(worker_pid, 0) NOT IN (0, $pid) FROM rustydb.audit_info"
batches 5
rdb_is "a restarted writer makes one set of its own" "$(made)" "2"
rdb_is "the trail's chain verifies" "$(q "SELECT valid FROM rustydb.verify_audit_trail()")" "t"
rdb_summary
