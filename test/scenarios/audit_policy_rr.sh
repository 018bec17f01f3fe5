#!/usr/bin/env bash
# An audit policy created while another session is inside a REPEATABLE
# READ transaction applies to that session's next statement and after its
# COMMIT: the session loads the policy list with a fresh snapshot, not its
# transaction's (which would cache the old list past the transaction).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap 'exec 3>&- 2>/dev/null; rdb_cleanup' EXIT

rdb_node_init arr
rdb_node_start arr
rdb_psql arr "CREATE EXTENSION rustydb; CREATE TABLE apc_t (id int)"

# the user's session, fed through a fifo; each step ends by writing a line
# to a file, so the script waits for the state, never for time
fifo=$RDB_WORK/user.fifo
mkfifo "$fifo"
out=$RDB_WORK/user.out
"$RDB_BINDIR/psql" -X -q -A -t -h "$(rdb_sock arr)" -p "$(rdb_port arr)" -U postgres -d postgres <"$fifo" >"$out" 2>&1 &
exec 3>"$fifo"
step() { # step SQL MARKER: run SQL in the user's session, wait for MARKER
	echo "$1" >&3
	echo "SELECT '$2';" >&3
	rdb_wait_for "the user's session to reach '$2'" 120 grep -q "^$2\$" "$out"
}

step "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1;" began
rdb_psql arr "SELECT rustydb.create_audit_policy('apc_p', ARRAY['insert'], ARRAY['apc_t'::regclass])" >/dev/null
step "INSERT INTO apc_t VALUES (1);" ins1
step "COMMIT;" committed
step "INSERT INTO apc_t VALUES (2);" ins2
rdb_psql arr "SELECT rustydb.audit_flush()" >/dev/null
rdb_is "both inserts after the policy's creation are audited (the first inside the older REPEATABLE READ transaction)" \
	"$(rdb_psql arr "SELECT string_agg(statement, ' | ' ORDER BY seq) FROM rustydb.audit_trail WHERE action = 'insert' AND object = 'public.apc_t'")" \
	"INSERT INTO apc_t VALUES (1) | INSERT INTO apc_t VALUES (2)"

step "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1;" began2
rdb_psql arr "SELECT rustydb.disable_audit_policy('apc_p')" >/dev/null
step "INSERT INTO apc_t VALUES (3);" ins3
step "COMMIT;" committed2
rdb_psql arr "SELECT rustydb.audit_flush()" >/dev/null
rdb_is "a policy disabled meanwhile no longer audits" \
	"$(rdb_psql arr "SELECT count(*) FROM rustydb.audit_trail WHERE action = 'insert' AND statement LIKE '%VALUES (3)%'")" "0"
exec 3>&-
rdb_summary
