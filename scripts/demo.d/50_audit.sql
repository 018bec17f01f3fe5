-- the audit trail: a policy, audited statements, the hash chain
SELECT rustydb.create_audit_policy('demo_dml', ARRAY['insert', 'update', 'delete'], ARRAY['demo_accounts'::regclass]);
UPDATE demo_accounts SET balance = balance - 1 WHERE id = 1;
DELETE FROM demo_accounts WHERE id = 2;
SELECT rustydb.audit_flush();
SELECT seq, user_name, action, object, outcome, rows_affected, left(statement, 50) AS statement
FROM rustydb.audit_trail ORDER BY seq DESC LIMIT 4;
SELECT * FROM rustydb.verify_audit_trail();
SELECT * FROM rustydb.audit_info;
SELECT name, kind, bytes, entries, "limit", high_water FROM rustydb.memory;
