#!/usr/bin/env bash
# Statement text in rustydb's own tables (issue 19, item 1; docs/tde.md,
# "rustydb's own tables"). With a key provider configured, statements on
# an encrypted table carry a unique marker literal (in an INSERT's values,
# a query's WHERE clause and an error message the audit trail keeps as
# its detail) while ASH samples them into rustydb.ash_history and the
# audit worker writes them to the trail. Once both are in (waiting for
# that state) and after CHECKPOINT, the marker is in no file under the
# data directory (pg_wal included), nor in the server log or the
# temporary tablespace; the views show the statements whole, and the
# chain verifies. Then, without a key provider:
#   - the control: a new marker in a statement's text is found in the files
#     of rustydb._audit_records and rustydb.ash_history_data (the search
#     sees plaintext where it is stored);
#   - the sealed values read as NULL with a WARNING, the plaintext ones as
#     before, and the chain still verifies (it covers the sealed bytes);
# and with the key provider back, the sealed values read again.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap 'cleanup_sessions; rdb_cleanup' EXIT

RING=$(rdb_keyring_create "$RDB_WORK/ttext_keys")
TMPSPC=$RDB_WORK/ttext_tmpspc
mkdir -p "$TMPSPC"
chown "$RDB_SERVER_USER" "$TMPSPC"

rdb_node_init ttext
rdb_node_conf ttext "rustydb.keyring_file = '$RING'"
rdb_node_conf ttext "rustydb.ash_sampling_interval = 10ms"
rdb_node_conf ttext "rustydb.ash_persist_every = 1"
rdb_node_conf ttext "rustydb.audit_log_parameters = on"
rdb_node_conf ttext "log_min_messages = notice"
# small enough that the sampler's persistence pass over 1 s of 10 ms samples
# would spill its rows (plaintext query text) to temporary files
rdb_node_conf ttext "work_mem = '64kB'"
rdb_node_conf ttext "log_temp_files = 0"
rdb_node_start ttext
rdb_psql ttext "CREATE EXTENSION rustydb"
if [ -z "$(rdb_psql ttext "SELECT amhandler::text FROM pg_am WHERE amname = 'rustydb'")" ]; then
	rdb_log "skipped: the rustydb table access method is not part of this build"
	rdb_summary
	exit 0
fi
DATA=$(rdb_dir ttext)/data
LOG=$(rdb_dir ttext)/server.log

q() { rdb_psql ttext "$1" 2>&1 || true; }
on_disk() { grep -rlaF -- "$1" "$DATA" "$TMPSPC" 2>/dev/null | sed "s|^$RDB_WORK/||" | tr '\n' ' ' || true; }
in_log() { grep -caF -- "$1" "$LOG" || true; }
mark() { echo "RDBTEXT-$1-$RANDOM$RANDOM"; }

# background sessions this script starts: a holder of advisory lock 7 and
# the marked statements that wait for it (so ASH samples them while active)
BG_PIDS=()
cleanup_sessions() {
	local p
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	BG_PIDS=()
}
hold_lock() {
	rdb_psql ttext "SELECT pg_advisory_lock(7), pg_sleep(600) -- ttext lock holder" >/dev/null 2>&1 &
	BG_PIDS+=($!)
	rdb_wait_for "the lock holder" 30 rdb_psql_true ttext \
		"SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 7 AND granted"
}
# end the holder's session; the waiting statements then run to their end
release_lock() {
	local p
	rdb_psql ttext "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE '%ttext lock holder' AND pid <> pg_backend_pid()" >/dev/null
	for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	BG_PIDS=()
}
# run SQL in the background (it waits for the lock)
waiting() {
	rdb_psql ttext "$1" >/dev/null 2>&1 &
	BG_PIDS+=($!)
}
# (not counting this poll itself, which ASH may sample too)
# wait_ash DESC MARKER: until ASH has persisted the statement; on timeout,
# what the sampler and the sessions were doing
wait_ash() {
	rdb_poll 90 in_ash "$2" && return 0
	rdb_psql ttext "SELECT * FROM rustydb.ash_info" -x >&2 || true
	rdb_psql ttext "SELECT pid, state, wait_event_type, wait_event, left(query, 90) FROM pg_stat_activity" >&2 || true
	rdb_psql ttext "SELECT count(*), count(query), count(query_sealed), max(sample_time) FROM rustydb.ash_history_data" >&2 || true
	rdb_die "timed out waiting for $1"
}
in_ash() { rdb_psql_true ttext "SELECT count(*) > 0 FROM rustydb.ash_history WHERE query LIKE '%$1%' AND query NOT LIKE '%rustydb.ash_history%'"; }

rdb_psql ttext "CREATE TABLE enc (id int, v text) USING rustydb WITH (encrypted = true);
	CREATE TABLE plain (id int, v text);
	SELECT rustydb.create_audit_policy('enc_dml', '{select,insert,update,delete}', '{enc,plain}')"
rdb_psql ttext "CREATE TABLESPACE ttext_tmp LOCATION '$TMPSPC'"
rdb_psql ttext "ALTER SYSTEM SET temp_tablespaces = 'ttext_tmp'" && rdb_reload ttext

# ======================================================================
# with a key provider: statement text is sealed
# ======================================================================
M=$(mark sealed)
hold_lock
S_INSERT="INSERT INTO enc SELECT 1, '$M-insert' FROM (SELECT pg_advisory_lock_shared(7)) l"
# (the lock first: a WHERE clause over no rows would never wait for it)
S_WHERE="SELECT CASE WHEN pg_advisory_lock_shared(7) IS NOT NULL THEN (SELECT count(*) FROM enc WHERE v = '$M-where') END"
waiting "$S_INSERT"
waiting "$S_WHERE"
wait_ash "ASH to persist the waiting statements" "$M-where"
wait_ash "... both of them" "$M-insert"
release_lock
rdb_psql ttext "PREPARE p(text) AS SELECT count(*) FROM enc WHERE v = \$1; EXECUTE p('$M-param')" >/dev/null
q "INSERT INTO enc VALUES ('$M-cast', 'x')" >/dev/null
rdb_is "the audit worker wrote the records" "$(rdb_psql ttext "SELECT rustydb.audit_flush()")" t
rdb_psql ttext "CHECKPOINT"
rdb_is "ASH history keeps every query sealed (the text column NULL)" \
	"$(q "SELECT count(query) || ' ' || (count(query_sealed) > 0) FROM rustydb.ash_history_data")" "0 true"
rdb_is "the trail keeps every statement and detail sealed (the text columns NULL)" \
	"$(q "SELECT count(*) FILTER (WHERE statement IS NOT NULL OR detail IS NOT NULL) || ' ' ||
		(count(statement_sealed) > 0) || ' ' || (count(detail_sealed) > 0) FROM rustydb._audit_records")" "0 true true"
rdb_is "the audit trail view shows the INSERT whole" \
	"$(q "SELECT statement FROM rustydb.audit_trail WHERE action = 'insert' AND object = 'public.enc'")" \
	"INSERT INTO enc SELECT 1, '$M-insert' FROM (SELECT pg_advisory_lock_shared(7)) l"
rdb_is "... the SELECT and the prepared statement's parameter" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE statement LIKE '%$M-where%' OR statement LIKE '%$M-param%'")" 2
rdb_is "... the failed cast with its message as detail" \
	"$(q "SELECT outcome || ': ' || detail FROM rustydb.audit_trail WHERE statement LIKE '%$M-cast%'")" \
	"22P02: invalid input syntax for type integer: \"$M-cast\""
# (other statements above have the marker in their text too, and may be sampled)
rdb_is "ash_history shows the queries whole" \
	"$(q "SELECT count(DISTINCT query) FROM rustydb.ash_history WHERE query IN (\$q\$$S_INSERT\$q\$, \$q\$$S_WHERE\$q\$)")" 2
rdb_ok "... and so does the ASH report" \
	test "$(q "SELECT count(*) FROM rustydb.ash_report(now() - interval '1 hour') r WHERE r LIKE '%$M-%'")" -gt 0
rdb_is "the chain verifies" "$(q "SELECT valid FROM rustydb.verify_audit_trail()")" t
rdb_is "rustydb's own tables have data keys (encryption_status)" \
	"$(q "SELECT string_agg(\"table\"::text || '=' || encrypted, ' ' ORDER BY \"table\"::text) FROM rustydb.encryption_status WHERE \"table\"::text LIKE 'rustydb.%'")" \
	"rustydb._audit_records=true rustydb.ash_history_data=true"
rdb_is "creating them was audited as key management" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE action = 'key_management' AND detail LIKE '%for its sealed columns'")" 2
rdb_is "the marker is in no file under the data directory (pg_wal included) or the temporary tablespace" \
	"$(on_disk "$M")" ""
rdb_is "... nor in the server log" "$(in_log "$M")" 0
ash_pid=$(q "SELECT worker_pid FROM rustydb.ash_info")
rdb_is "the sampler's persistence passes wrote no temporary file (work_mem = 64kB)" \
	"$(grep -c "\[$ash_pid\] .*temporary file" "$LOG" || true)" 0
rdb_expect_error "the data key of rustydb's own table is not rotated" ttext \
	"SELECT rustydb.rotate_table_key('rustydb._audit_records')" "cannot rotate the data key of rustydb's own table"
rdb_is "rotate_master_key re-wraps their keys with the others" "$(q "SELECT rustydb.rotate_master_key() >= 2")" t
rdb_is "... and they open after it" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE statement LIKE '%$M-insert%'")" 1

# copies: the table's rows hold sealed bytes, the view's the text
out=$(q "CREATE TABLE copy_raw AS SELECT * FROM rustydb._audit_records")
rdb_is "a copy of the trail's table is a plain heap table, not reported (it holds the sealed bytes)" \
	"$(echo "$out" | grep -c WARNING) $(q "SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE relname = 'copy_raw'")" "0 heap"
out=$(q "CREATE TABLE copy_view USING heap AS SELECT * FROM rustydb.audit_trail")
rdb_ok "a heap copy of the trail's view is reported (it holds the text)" \
	bash -c "echo '$out' | grep -q 'WARNING:  table \"copy_view\" holds rows of encrypted table \"_audit_records\" unencrypted'"
rdb_psql ttext "DROP TABLE copy_raw, copy_view"

# a value moved to another row does not open
rdb_expect_error "a sealed statement copied to another record does not open" ttext \
	"BEGIN; ALTER TABLE rustydb._audit_records DISABLE TRIGGER audit_records_guard;
	 UPDATE rustydb._audit_records SET statement_sealed = (SELECT statement_sealed FROM rustydb._audit_records
		WHERE statement_sealed IS NOT NULL ORDER BY seq LIMIT 1)
		WHERE seq = (SELECT max(seq) FROM rustydb._audit_records WHERE statement_sealed IS NOT NULL);
	 SELECT statement FROM rustydb.audit_trail WHERE seq = (SELECT max(seq) FROM rustydb._audit_records WHERE statement_sealed IS NOT NULL);
	 ROLLBACK" "could not decrypt data of relation \"_audit_records\""
rdb_expect_error "... and breaks the chain" ttext \
	"BEGIN; ALTER TABLE rustydb._audit_records DISABLE TRIGGER audit_records_guard;
	 UPDATE rustydb._audit_records SET statement_sealed = (SELECT statement_sealed FROM rustydb._audit_records
		WHERE statement_sealed IS NOT NULL ORDER BY seq LIMIT 1)
		WHERE seq = (SELECT max(seq) FROM rustydb._audit_records WHERE statement_sealed IS NOT NULL);
	 DO \$\$BEGIN IF NOT (SELECT valid FROM rustydb.verify_audit_trail()) THEN RAISE EXCEPTION 'chain broken'; END IF; END\$\$;
	 ROLLBACK" "chain broken"
rdb_psql ttext "CREATE ROLE ttext_reader LOGIN"
rdb_expect_error "the opener needs SELECT on the table or its view" ttext \
	"SET ROLE ttext_reader; SELECT rustydb._open_text('rustydb._audit_records', 'statement', seq, statement_sealed) FROM (SELECT 1::bigint AS seq, '\\x00'::bytea AS statement_sealed) s" \
	"permission denied to open sealed values of rustydb._audit_records.statement"
rdb_psql ttext "GRANT SELECT ON rustydb.audit_trail TO ttext_reader"
rdb_is "a role granted the view reads the text" \
	"$(q "SET ROLE ttext_reader; SELECT count(*) FROM rustydb.audit_trail WHERE statement LIKE '%$M-insert%'")" 1

# ======================================================================
# without a key provider
# ======================================================================
rdb_psql ttext "ALTER SYSTEM SET rustydb.keyring_file = ''" && rdb_reload ttext
C=$(mark control)
hold_lock
waiting "SELECT CASE WHEN pg_advisory_lock_shared(7) IS NOT NULL THEN (SELECT count(*) FROM plain WHERE v = '$C-where') END"
wait_ash "ASH to persist the waiting statement" "$C-where"
release_lock
rdb_is "the audit worker wrote the records" "$(rdb_psql ttext "SELECT rustydb.audit_flush()")" t
rdb_psql ttext "CHECKPOINT"
trail_file=$(q "SELECT pg_relation_filepath('rustydb._audit_records')")
ash_file=$(q "SELECT pg_relation_filepath('rustydb.ash_history_data')")
rdb_ok "control: the audit trail's file holds the plaintext statement" grep -qaF -- "$C-where" "$DATA/$trail_file"
rdb_ok "control: the ASH history's file holds the plaintext query" grep -qaF -- "$C-where" "$DATA/$ash_file"
rdb_ok "control: the search sees the marker" test -n "$(on_disk "$C")"
out=$(q "SELECT count(*) FILTER (WHERE statement IS NULL) || ' ' || count(*) FILTER (WHERE statement LIKE '%$C-where%')
	FROM rustydb.audit_trail WHERE object = 'public.enc' OR statement LIKE '%$C-where%'")
rdb_ok "sealed statements read as NULL with a WARNING, plaintext ones as before" \
	bash -c "echo '$out' | grep -q 'WARNING:  sealed values of rustydb._audit_records.statement cannot be opened: they read as NULL' &&
		echo '$out' | grep -qE '^[1-9][0-9]* 1\$'"
rdb_is "the chain verifies without the key" "$(q "SELECT valid FROM rustydb.verify_audit_trail()")" t
rdb_psql ttext "ALTER SYSTEM RESET rustydb.keyring_file" && rdb_reload ttext
rdb_is "with the key provider back the sealed values read again" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE statement LIKE '%$M-insert%'")" 1
rdb_ok "DROP EXTENSION drops rustydb's own tables with their keys" \
	rdb_psql ttext "SET client_min_messages = warning; DROP EXTENSION rustydb CASCADE"

rdb_summary
