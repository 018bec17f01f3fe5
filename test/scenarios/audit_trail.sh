#!/usr/bin/env bash
# Audit trail end to end: records of a rolled-back transaction and of a
# failed statement survive; tampering with the trail (as a superuser who
# disables rustydb's guard) is reported at the exact record; a purge
# leaves the chain verifiable from the purge point and is itself audited;
# a restarted audit worker loses nothing; a keyed chain cannot be
# recomputed without the key.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

q() { rdb_psql audit "$1"; }

KEY=$(rdb_audit_key_create "$RDB_WORK/audit.key")

rdb_node_init audit
rdb_node_conf audit "rustydb.audit_key_file = '$KEY'"
rdb_node_conf audit "rustydb.audit_statement_max = 256"
rdb_node_start audit
q "CREATE EXTENSION rustydb"
q "CREATE TABLE acct (id int PRIMARY KEY, balance int)"
q "SELECT rustydb.create_audit_policy('dml', '{select,insert,update,delete}', '{acct}')"

# a rolled-back transaction and a failed statement
q "BEGIN; INSERT INTO acct VALUES (1, 100); UPDATE acct SET balance = 0; ROLLBACK"
q "INSERT INTO acct VALUES (2, 1/0)" 2>/dev/null || true
q "INSERT INTO acct SELECT 3, 1/(g - 1) FROM generate_series(1, 1) g" 2>/dev/null || true
rdb_is "records are flushed" "$(q "SELECT rustydb.audit_flush()")" t
rdb_is "rolled-back insert recorded" \
	"$(q "SELECT outcome || ':' || rows_affected FROM rustydb.audit_trail WHERE action = 'insert' AND statement = 'INSERT INTO acct VALUES (1, 100)'")" \
	"success:1"
rdb_is "rolled-back update recorded" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE action = 'update' AND object = 'public.acct' AND rows_affected = 1")" 1
rdb_is "the rolled-back rows are gone" "$(q "SELECT count(*) FROM acct")" 0
rdb_is "failed statement recorded with its SQLSTATE" \
	"$(q "SELECT outcome FROM rustydb.audit_trail WHERE statement LIKE 'INSERT INTO acct SELECT 3%'")" 22012

# statements failing before execution: syntax error (first statement of
# a session), unknown table, planning error; an unaudited run-time error
# is not recorded as one
q "SELEC * FROM acct" 2>/dev/null || true
q "SELECT 1; SELECT * FROM no_such_table" >/dev/null 2>&1 || true
q "SELECT count(*) FROM acct; INSERT INTO acct VALUES (4, 1/0)" >/dev/null 2>&1 || true
q "CREATE TABLE unaudited (x int); INSERT INTO unaudited VALUES (1/(random() * 0)::int)" 2>/dev/null || true
q "DO \$\$BEGIN PERFORM * FROM no_such_table2; EXCEPTION WHEN undefined_table THEN NULL; END\$\$; SELECT * FROM no_such_table3" 2>/dev/null || true
q "SELECT rustydb.audit_flush()" >/dev/null
rdb_is "syntax error recorded" \
	"$(q "SELECT outcome || ':' || user_name || ':' || (database_name IS NOT NULL) FROM rustydb.audit_trail WHERE action = 'statement' AND statement = 'SELEC * FROM acct'")" \
	"42601:$RDB_SERVER_USER:true"
rdb_is "unknown table recorded" \
	"$(q "SELECT outcome || ':' || detail FROM rustydb.audit_trail WHERE action = 'statement' AND statement LIKE '%no_such_table'")" \
	'42P01:relation "no_such_table" does not exist'
rdb_is "planning error recorded" \
	"$(q "SELECT outcome FROM rustydb.audit_trail WHERE action = 'statement' AND statement LIKE '%VALUES (4, 1/0)'")" 22012
rdb_is "run-time error of an unaudited statement not recorded" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE statement LIKE '%unaudited%'")" 0
rdb_is "an error caught inside a statement not recorded, the next statement's is" \
	"$(q "SELECT string_agg(outcome || ':' || detail, ',') FROM rustydb.audit_trail WHERE action = 'statement' AND statement LIKE 'DO%'")" \
	'42P01:relation "no_such_table3" does not exist'

# more records, then a clean chain
for i in $(seq 10 40); do q "INSERT INTO acct VALUES ($i, $i)"; done
q "SELECT rustydb.audit_flush()" >/dev/null
rdb_is "the chain verifies" "$(q "SELECT valid FROM rustydb.verify_audit_trail()")" t

# tamper: edit one record, bypassing rustydb's guard
victim=$(q "SELECT seq FROM rustydb.audit_trail WHERE statement = 'INSERT INTO acct VALUES (20, 20)'")
q "ALTER TABLE rustydb._audit_records DISABLE TRIGGER audit_records_guard;
   UPDATE rustydb._audit_records SET rows_affected = 0 WHERE seq = $victim;
   ALTER TABLE rustydb._audit_records ENABLE ALWAYS TRIGGER audit_records_guard"
rdb_is "an edited record is reported exactly" \
	"$(q "SELECT CASE WHEN valid THEN 't' ELSE 'f' END || ' ' || first_broken_seq FROM rustydb.verify_audit_trail()")" "f $victim"
rdb_is "disabling the guard is itself audited" \
	"$(q "SELECT rustydb.audit_flush(); SELECT count(*) >= 2 FROM rustydb.audit_trail WHERE action = 'audit_storage'" | tail -1)" t
# put it back: the chain verifies again
q "ALTER TABLE rustydb._audit_records DISABLE TRIGGER audit_records_guard;
   UPDATE rustydb._audit_records SET rows_affected = 1 WHERE seq = $victim;
   ALTER TABLE rustydb._audit_records ENABLE ALWAYS TRIGGER audit_records_guard"
rdb_is "restored record verifies" "$(q "SELECT valid FROM rustydb.verify_audit_trail()")" t

# tamper: delete one record
victim=$(q "SELECT seq FROM rustydb.audit_trail WHERE statement = 'INSERT INTO acct VALUES (30, 30)'")
q "SET session_replication_role = replica; ALTER TABLE rustydb._audit_records DISABLE TRIGGER audit_records_guard;
   DELETE FROM rustydb._audit_records WHERE seq = $victim;
   ALTER TABLE rustydb._audit_records ENABLE ALWAYS TRIGGER audit_records_guard"
rdb_is "a deleted record is reported exactly" \
	"$(q "SELECT CASE WHEN valid THEN 't' ELSE 'f' END || ' ' || first_broken_seq || ' ' || problem FROM rustydb.verify_audit_trail()")" \
	"f $victim record $victim is missing"

# tamper: recompute the edited record's hash without the key (unkeyed BLAKE2b is not enough)
victim2=$(q "SELECT seq FROM rustydb.audit_trail WHERE statement = 'INSERT INTO acct VALUES (12, 12)'")
q "ALTER TABLE rustydb._audit_records DISABLE TRIGGER audit_records_guard;
   UPDATE rustydb._audit_records SET statement = 'harmless', hash = sha256(hash) WHERE seq = $victim2;
   ALTER TABLE rustydb._audit_records ENABLE ALWAYS TRIGGER audit_records_guard"
rdb_is "the first broken record is reported" \
	"$(q "SELECT first_broken_seq FROM rustydb.verify_audit_trail()")" "$victim2"

rdb_is "every break is reported, not only the first: the edited record (and the link after its forged hash), the deleted one" \
	"$(q "SELECT breaks FROM rustydb.verify_audit_trail()") $(q "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM rustydb.audit_trail_breaks()")" \
	"3 $(printf '%s\n' "$victim2" "$((victim2 + 1))" "$victim" | sort -n | paste -sd,)"

# a purge never absorbs a break silently: refused, or acknowledged and recorded
cut=$(q "SELECT event_time FROM rustydb.audit_trail WHERE seq = $((victim + 1))")
out=$(q "SELECT rustydb.purge_audit_trail('$cut')" 2>&1 || true)
rdb_ok "purging over the damage is refused" grep -q 'cannot purge the audit trail through record' <<<"$out"
# purge past the damage, acknowledged: the chain verifies from the purge point
purged=$(q "SELECT rustydb.purge_audit_trail('$cut', acknowledge_breaks => true)")
rdb_is "purge removed the records before the cut (one was already deleted)" "$purged" "$((victim - 1))"
rdb_is "anchor is the last purged record" "$(q "SELECT seq FROM rustydb._audit_anchor")" "$victim"
rdb_is "after the purge the chain verifies from the purge point" \
	"$(q "SELECT valid FROM rustydb.verify_audit_trail()")" t
q "SELECT rustydb.audit_flush()" >/dev/null
rdb_is "the purge is audited (the refused one too)" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE action = 'purge_audit_trail' AND detail LIKE 'before %'")" 2
rdb_is "the acknowledged breaks and the record missing in the purged range are recorded" \
	"$(q "SELECT string_agg(action, ',' ORDER BY seq) FROM rustydb.audit_trail WHERE action IN ('audit_purge_breaks', 'audit_purge_gap')")" \
	"audit_purge_breaks,audit_purge_gap"
rdb_is "purge needs the audit function: direct deletes are refused" \
	"$(q "DELETE FROM rustydb._audit_records" 2>&1 | grep -o 'append-only')" append-only

# the worker restarts after being terminated and loses nothing
before=$(q "SELECT count(*) FROM rustydb.audit_trail")
q "SELECT pg_terminate_backend(worker_pid) FROM rustydb.audit_info" >/dev/null
for i in $(seq 100 119); do q "INSERT INTO acct VALUES ($i, $i)"; done
rdb_is "records written after a worker restart" "$(q "SELECT rustydb.audit_flush(20000)")" t
rdb_is "every record is there" "$(q "SELECT count(*) - $before >= 20 FROM rustydb.audit_trail")" t
rdb_is "the chain continues across the restart" "$(q "SELECT valid FROM rustydb.verify_audit_trail()")" t

# a server restart keeps the chain (the worker reloads the last hash)
rdb_node_restart audit
q "INSERT INTO acct VALUES (500, 1)"
q "SELECT rustydb.audit_flush(20000)" >/dev/null
rdb_is "the chain continues across a server restart" "$(q "SELECT valid FROM rustydb.verify_audit_trail()")" t

# truncating the tail is detected while the server knows the last record
last=$(q "SELECT max(seq) FROM rustydb.audit_trail")
q "ALTER TABLE rustydb._audit_records DISABLE TRIGGER audit_records_guard;
   DELETE FROM rustydb._audit_records WHERE seq = $last;
   ALTER TABLE rustydb._audit_records ENABLE ALWAYS TRIGGER audit_records_guard" 
rdb_is "a deleted newest record is reported" \
	"$(q "SELECT first_broken_seq FROM rustydb.verify_audit_trail()")" "$last"

# statement text is bounded; parameters are added when the setting says so
# (an EXECUTE is recorded with the text of its prepared statement)
q "SELECT count(*) FROM acct WHERE id > 0 AND balance IS NOT NULL $(printf 'AND id <> %d ' $(seq 1000 1100))" >/dev/null
rdb_node_conf audit "rustydb.audit_log_parameters = on"
rdb_reload audit
q "PREPARE p(int, text) AS SELECT * FROM acct WHERE id = \$1 AND \$2 IS NOT NULL; EXECUTE p(7, 'it''s')" >/dev/null
q "SELECT rustydb.audit_flush()" >/dev/null
rdb_is "long statement text cut at rustydb.audit_statement_max" \
	"$(q "SELECT octet_length(statement) <= 256 AND statement LIKE 'SELECT count(*) FROM acct WHERE id > 0%' FROM rustydb.audit_trail WHERE statement LIKE 'SELECT count(*) FROM acct WHERE id > 0%'")" t
rdb_is "parameters recorded with rustydb.audit_log_parameters" \
	"$(q "SELECT statement FROM rustydb.audit_trail WHERE action = 'select' AND statement LIKE '%\$2 IS NOT NULL%' ORDER BY seq DESC LIMIT 1")" \
	"PREPARE p(int, text) AS SELECT * FROM acct WHERE id = \$1 AND \$2 IS NOT NULL
parameters: \$1 = '7', \$2 = 'it''s'"
rdb_is "turning the setting on was recorded" \
	"$(q "SELECT detail FROM rustydb.audit_trail WHERE action = 'setting_change' AND object = 'rustydb.audit_log_parameters'")" "off -> on"

rdb_summary
