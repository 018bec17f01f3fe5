#!/usr/bin/env bash
# A superuser covering tracks: replacing the trail's guard function,
# disabling its trigger and deleting the newest records. Each change to the
# trail's protection is recorded, naming the object; the truncated tail is
# reported by verify_audit_trail() while the server runs, after a clean
# restart and after kill -9 (the chain's head is kept outside SQL, in
# pg_rustydb/audit_head); sequence numbers are never reused, and the worker
# records the loss when it starts. With the audit key, a forged head file is
# reported too.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

q() { rdb_psql tamper "$1"; }
# head_seq: the seq the head file holds (int64 at offset 16)
head_seq() { od -An -t d8 -j 16 -N 8 "$(rdb_dir tamper)/data/pg_rustydb/audit_head" | tr -d ' '; }
# wait_head SEQ: until the worker's head covers record SEQ (it writes it
# once idle for 100 ms): the state the crash below must happen in
head_covers() { [ "$(head_seq)" -ge "$1" ]; }
wait_head() { rdb_wait_for "the audit head to reach record $1" 60 head_covers "$1"; }
KEY=$(rdb_audit_key_create "$RDB_WORK/audit.key")

rdb_node_init tamper
rdb_node_conf tamper "rustydb.audit_key_file = '$KEY'"
rdb_node_start tamper
q "CREATE EXTENSION rustydb; CREATE TABLE acct (id int PRIMARY KEY, v int)"
q "SELECT rustydb.create_audit_policy('dml', '{insert}', '{acct}')" >/dev/null
for i in $(seq 1 20); do q "INSERT INTO acct VALUES ($i, $i)"; done
q "SELECT rustydb.audit_flush()" >/dev/null
rdb_is "a clean trail verifies" "$(q "SELECT valid FROM rustydb.verify_audit_trail()")" t
rdb_ok "the head file exists outside SQL's tables" test -s "$(rdb_dir tamper)/data/pg_rustydb/audit_head"

# ---- the attack: replace the guard, disable its trigger (each recorded,
# naming the object, as the superuser does it), then delete the newest records
base=$(q "SELECT max(seq) FROM rustydb._audit_records")
q "CREATE OR REPLACE FUNCTION rustydb._audit_trail_guard() RETURNS trigger LANGUAGE plpgsql
	AS \$\$ BEGIN RETURN NULL; END \$\$"
q "ALTER TABLE rustydb._audit_records DISABLE TRIGGER audit_records_guard"
q "SELECT rustydb.audit_flush()" >/dev/null
rdb_is "replacing the guard function is a security event naming it" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE seq > $base AND action = 'rustydb_object_change'
		AND object = 'rustydb._audit_trail_guard()' AND detail LIKE '%created or replaced'")" 1
rdb_is "disabling the guard's trigger names the table and the trigger" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE seq > $base AND action = 'audit_storage'
		AND object = 'rustydb._audit_records (trigger audit_records_guard)' AND detail LIKE '%(now disabled)'")" 1
rdb_is "... and the ALTER TABLE names the table" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE seq > $base AND action = 'audit_storage' AND object = 'rustydb._audit_records'")" 1
last=$(q "SELECT max(seq) FROM rustydb._audit_records")
q "DELETE FROM rustydb._audit_records WHERE seq > $last - 5"
rdb_is "the truncated tail (the evidence above included) is reported while the server runs" \
	"$(q "SELECT valid, first_broken_seq FROM rustydb.verify_audit_trail()")" "f|$((last - 4))"

# ---- a clean restart: the head still says where the trail ended
rdb_node_restart tamper
rdb_is "after a restart the truncated tail is still reported (head kept outside SQL)" \
	"$(q "SELECT valid, first_broken_seq FROM rustydb.verify_audit_trail()")" "f|$((last - 4))"
rdb_is "... as missing from the end of the trail, naming the head" \
	"$(q "SELECT problem FROM rustydb.verify_audit_trail()")" \
	"records $((last - 4)) to $last are missing from the end of the trail (the trail's head, kept outside SQL in pg_rustydb/audit_head, is record $last)"
q "ALTER TABLE rustydb._audit_records ENABLE ALWAYS TRIGGER audit_records_guard"
q "INSERT INTO acct VALUES (100, 100)"
q "SELECT rustydb.audit_flush()" >/dev/null
rdb_is "sequence numbers are never reused: the next record comes after the deleted ones" \
	"$(q "SELECT min(seq) FROM rustydb._audit_records WHERE seq > $last - 5")" "$((last + 1))"
rdb_is "the worker recorded the loss when it started" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE action = 'audit_records_missing'
		AND detail LIKE 'records $((last - 4)) to $last were written but are no longer in the trail%'")" 1
rdb_is "the gap stays visible (the break is the deleted records, once)" \
	"$(q "SELECT string_agg(seq || ': ' || problem, ' | ') FROM rustydb.audit_trail_breaks()")" \
	"$((last - 4)): records $((last - 4)) to $last are missing"

q "ALTER FUNCTION rustydb.verify_audit_trail() SET search_path = public"
q "BEGIN; ALTER EXTENSION rustydb DROP FUNCTION rustydb.audit_trail_breaks();
	DROP FUNCTION rustydb.audit_trail_breaks(); ROLLBACK"
q "SELECT rustydb.audit_flush()" >/dev/null
rdb_is "altering and dropping rustydb's functions are recorded, also when rolled back" \
	"$(q "SELECT string_agg(object || ' ' || split_part(detail, ' ', 6), ', ' ORDER BY seq) FROM rustydb.audit_trail
		WHERE action = 'rustydb_object_change' AND object <> 'rustydb._audit_trail_guard()'")" \
	"rustydb.verify_audit_trail() altered, rustydb.audit_trail_breaks() dropped"
rdb_is "... and taking a function out of the extension" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE action = 'audit_extension' AND object = 'rustydb'")" 1
q "CREATE FUNCTION rustydb.audit_backdoor() RETURNS int LANGUAGE sql AS 'SELECT 1'"
q "DROP FUNCTION rustydb.audit_backdoor()"
q "SELECT rustydb.audit_flush()" >/dev/null
rdb_is "a new function in rustydb's schema, and its drop, are recorded" \
	"$(q "SELECT string_agg(object || ' ' || split_part(detail, ' ', 6), ', ' ORDER BY seq) FROM rustydb.audit_trail
		WHERE action = 'rustydb_object_change' AND object LIKE 'rustydb.audit_backdoor%'")" \
	"rustydb.audit_backdoor(...) created, rustydb.audit_backdoor() dropped"

# ---- kill -9 right after a second truncation
q "ALTER TABLE rustydb._audit_records DISABLE TRIGGER audit_records_guard"
q "SELECT rustydb.audit_flush()" >/dev/null
last=$(q "SELECT max(seq) FROM rustydb._audit_records")
wait_head "$last"
q "DELETE FROM rustydb._audit_records WHERE seq > $last - 2"
rdb_node_crash tamper
rdb_node_start tamper
rdb_ok "after kill -9 the second truncation is reported too" \
	bash -c "grep -q \"$((last - 1)): records $((last - 1)) to $last are missing\" <<<\"$(q "SELECT string_agg(seq || ': ' || problem, ' | ') FROM rustydb.audit_trail_breaks()")\""

# ---- a forged head file (without the key) is reported
rdb_node_stop tamper
printf 'RDBAUDHD\001\000\000\000\001\000\000\000' >"$RDB_WORK/forged"
head -c 72 /dev/zero >>"$RDB_WORK/forged"
cp "$RDB_WORK/forged" "$(rdb_dir tamper)/data/pg_rustydb/audit_head"
chown "$RDB_SERVER_USER" "$(rdb_dir tamper)/data/pg_rustydb/audit_head"
rdb_node_start tamper
rdb_ok "a head file not written with the audit key is reported" \
	bash -c "grep -q 'audit_head is damaged' <<<\"$(q "SELECT string_agg(problem, ' | ') FROM rustydb.audit_trail_breaks()")\""
q "INSERT INTO acct VALUES (200, 200)"
q "SELECT rustydb.audit_flush()" >/dev/null
rdb_is "... and the worker records it when it starts" \
	"$(q "SELECT count(*) FROM rustydb.audit_trail WHERE action = 'audit_head_damaged'")" 1
rdb_ok "no backend crashed" bash -c "! grep -q 'terminated by signal' '$(rdb_dir tamper)/server.log'"
rdb_summary
