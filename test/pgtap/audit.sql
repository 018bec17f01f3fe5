-- rustydb audit: every action class produces records with the right
-- fields; failed statements and rolled-back work are recorded; superusers
-- are audited; policy changes (disabling one) are recorded.
-- The test runs in one transaction that rolls back at the end: every
-- record checked here was committed by the audit worker independently of
-- it, which is what "independent of the user's transaction" means.
BEGIN;
SELECT plan(44);

CREATE TABLE audit_tap_t (id int PRIMARY KEY, v text);
CREATE ROLE audit_tap_user;
GRANT SELECT ON audit_tap_t TO audit_tap_user;
SELECT rustydb.audit_flush();
CREATE TEMP TABLE tap_base AS SELECT coalesce(max(seq), 0) AS seq FROM rustydb._audit_records;
CREATE TEMP VIEW tap_rec AS
	SELECT * FROM rustydb.audit_trail WHERE seq > (SELECT seq FROM tap_base);

-- policy management
SELECT lives_ok($$SELECT rustydb.create_audit_policy('tap_dml',
	'{select,insert,update,delete,truncate}', '{audit_tap_t}')$$, 'create a DML policy on one table');
SELECT lives_ok($$SELECT rustydb.create_audit_policy('tap_other', '{ddl,role,function}')$$,
	'create a DDL/role/function policy');
SELECT throws_ok($$SELECT rustydb.create_audit_policy('tap_dml', '{select}')$$, '42710',
	'audit policy "tap_dml" already exists', 'duplicate policy names are refused');
SELECT throws_ok($$SELECT rustydb.create_audit_policy('tap_bad', '{frobnicate}')$$, '22023',
	'unknown audit action "frobnicate"', 'unknown actions are refused');

-- one statement of each class
INSERT INTO audit_tap_t VALUES (1, 'a'), (2, 'b'), (3, 'c');
SELECT count(*) FROM audit_tap_t;
UPDATE audit_tap_t SET v = 'u' WHERE id <= 2;
DELETE FROM audit_tap_t WHERE id = 3;
CREATE TABLE audit_tap_ddl (x int);
CREATE ROLE audit_tap_role2;
CREATE FUNCTION audit_tap_fn() RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN 42; END';
SELECT audit_tap_fn();
-- a failed statement (unique violation at run time)
SELECT throws_ok($$INSERT INTO audit_tap_t VALUES (10, 'x'), (10, 'y')$$, '23505', NULL,
	'a failing insert fails');
-- rolled-back work
SAVEPOINT s1;
INSERT INTO audit_tap_t VALUES (50, 'rolled back');
ROLLBACK TO SAVEPOINT s1;
-- another user (the test runs as a superuser; this one is not)
SET ROLE audit_tap_user;
SELECT count(*) FROM audit_tap_t;
RESET ROLE;
TRUNCATE audit_tap_t;
SELECT lives_ok($$SELECT rustydb.disable_audit_policy('tap_other')$$, 'disable a policy');
-- no longer audited: DDL after the policy was disabled
CREATE TABLE audit_tap_after (x int);
SELECT ok(rustydb.audit_flush(), 'the audit worker wrote every queued record');

-- fields of one record
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'insert' AND object = 'public.audit_tap_t'
	AND outcome = 'success' AND rows_affected = 3), 1, 'insert: one record, 3 rows');
SELECT is((SELECT pid FROM tap_rec WHERE action = 'insert' AND rows_affected = 3), pg_backend_pid(),
	'record has the session''s pid');
SELECT is((SELECT session_id FROM tap_rec WHERE action = 'insert' AND rows_affected = 3),
	(SELECT session_id FROM rustydb.audit_trail WHERE pid = pg_backend_pid() ORDER BY seq DESC LIMIT 1),
	'record has a session id');
SELECT ok((SELECT session_id ~ ('^[0-9a-f]+\.' || to_hex(pg_backend_pid()) || '$')
	FROM tap_rec WHERE action = 'insert' AND rows_affected = 3), 'session id is start time.pid in hex');
SELECT is((SELECT user_name || '/' || session_user_name FROM tap_rec
	WHERE action = 'insert' AND rows_affected = 3), current_user || '/' || session_user,
	'superuser recorded as user and session user');
SELECT is((SELECT database_name FROM tap_rec WHERE action = 'insert' AND rows_affected = 3),
	current_database()::text, 'record has the database');
SELECT is((SELECT client_addr FROM tap_rec WHERE action = 'insert' AND rows_affected = 3),
	coalesce(host(inet_client_addr()), '[local]'), 'record has the client address');
SELECT is((SELECT coalesce(application_name, '') FROM tap_rec WHERE action = 'insert' AND rows_affected = 3),
	current_setting('application_name'), 'record has the application name');
SELECT is((SELECT xid FROM tap_rec WHERE action = 'insert' AND rows_affected = 3),
	pg_current_xact_id()::text::bigint, 'record has the transaction id');
SELECT is((SELECT statement FROM tap_rec WHERE action = 'insert' AND rows_affected = 3),
	$$INSERT INTO audit_tap_t VALUES (1, 'a'), (2, 'b'), (3, 'c')$$, 'record has the statement text');
SELECT ok((SELECT event_time BETWEEN now() - interval '1 minute' AND clock_timestamp()
	FROM tap_rec WHERE action = 'insert' AND rows_affected = 3), 'record has the event time');
SELECT is((SELECT count(*)::int FROM tap_rec WHERE hash IS NULL OR length(hash) <> 64), 0,
	'every record carries a hash');

-- each class
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'select' AND object = 'public.audit_tap_t'
	AND user_name = current_user AND rows_affected = 1), 1, 'select recorded with rows');
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'update' AND object = 'public.audit_tap_t'
	AND rows_affected = 2 AND outcome = 'success'), 1, 'update recorded with rows');
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'delete' AND object = 'public.audit_tap_t'
	AND rows_affected = 1), 1, 'delete recorded with rows');
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'truncate' AND object = 'public.audit_tap_t'
	AND statement = 'TRUNCATE audit_tap_t'), 1, 'truncate recorded');
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'ddl' AND detail = 'CREATE TABLE'
	AND object = 'audit_tap_ddl' AND rows_affected IS NULL), 1, 'ddl recorded with its command');
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'role' AND detail = 'CREATE ROLE'
	AND statement = 'CREATE ROLE audit_tap_role2'), 1, 'role change recorded');
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'function' AND object = 'public.audit_tap_fn'), 1,
	'function execution recorded');
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'ddl' AND detail = 'CREATE FUNCTION'), 1,
	'create function recorded as ddl');

-- failures and rollbacks
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'insert' AND outcome = '23505'
	AND statement LIKE 'INSERT INTO audit_tap_t VALUES (10%'), 1, 'failed statement recorded with its SQLSTATE');
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'insert' AND outcome = 'success'
	AND statement LIKE '%rolled back%'), 1, 'statement of rolled-back work recorded');
SELECT is((SELECT count(*)::int FROM audit_tap_t WHERE v = 'rolled back'), 0, '... and its row is gone');

-- users
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'select' AND user_name = 'audit_tap_user'
	AND session_user_name = session_user), 1, 'SET ROLE: user and session user both recorded');

-- policy changes are security events
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'audit_policy' AND object = 'tap_dml'
	AND detail = 'create'), 1, 'policy creation recorded');
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'audit_policy' AND object = 'tap_other'
	AND detail = 'disable'), 1, 'disabling a policy recorded');
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'ddl' AND object = 'audit_tap_after'), 0,
	'nothing recorded by a disabled policy');
UPDATE rustydb.audit_policies SET enabled = true WHERE policy_name = 'tap_other';
SELECT rustydb.drop_audit_policy('tap_dml');
SELECT rustydb.audit_flush();
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'audit_policy' AND object = 'tap_other'
	AND detail = 'enable' AND statement LIKE 'UPDATE rustydb.audit_policies%'), 1,
	'changing the policy table directly is recorded too');
SELECT is((SELECT count(*)::int FROM tap_rec WHERE action = 'audit_policy' AND object = 'tap_dml'
	AND detail = 'drop'), 1, 'dropping a policy recorded');

-- roles and conditions
SELECT lives_ok($$SELECT rustydb.create_audit_policy('tap_cond', '{select}', '{audit_tap_t}',
	'{audit_tap_user}', 'true')$$, 'policy with roles and condition');
SELECT throws_ok($$SELECT rustydb.create_audit_policy('tap_cond2', '{select}', NULL, NULL, 'no_such_column')$$,
	'22023', NULL, 'an invalid condition is refused');
SELECT throws_ok($$SELECT rustydb.create_audit_policy('tap_role', '{select}', NULL, '{no_such_role_x}')$$,
	'42704', 'role "no_such_role_x" does not exist', 'an unknown role is refused');
SELECT count(*) FROM audit_tap_t; -- superuser: not in the policy's roles
SET ROLE audit_tap_user;
SELECT count(*) FROM audit_tap_t;
RESET ROLE;
SELECT rustydb.audit_flush();
SELECT is((SELECT array_agg(user_name)::text FROM tap_rec WHERE action = 'select'
	AND seq > (SELECT max(seq) FROM tap_rec WHERE object = 'tap_cond')), '{audit_tap_user}',
	'a role-scoped policy audits only its roles');

-- relation names are cached per session: a renamed table or schema is
-- recorded under its new name
CREATE SCHEMA audit_tap_s;
CREATE TABLE audit_tap_s.rn (x int);
SELECT rustydb.create_audit_policy('tap_rn', '{insert}', '{audit_tap_s.rn}');
INSERT INTO audit_tap_s.rn VALUES (1);
ALTER TABLE audit_tap_s.rn RENAME TO rn2;
INSERT INTO audit_tap_s.rn2 VALUES (2);
ALTER SCHEMA audit_tap_s RENAME TO audit_tap_s2;
INSERT INTO audit_tap_s2.rn2 VALUES (3);
SELECT rustydb.audit_flush();
SELECT is((SELECT array_agg(object ORDER BY seq)::text FROM tap_rec WHERE action = 'insert'
	AND statement LIKE 'INSERT INTO audit_tap_s%'),
	'{audit_tap_s.rn,audit_tap_s.rn2,audit_tap_s2.rn2}',
	'records name a relation as it is called when the statement runs');

-- the trail is append-only
SELECT throws_ok($$DELETE FROM rustydb._audit_records$$, '42501', 'the audit trail is append-only',
	'the trail cannot be deleted from');
SELECT throws_ok($$UPDATE rustydb._audit_records SET statement = 'x'$$, '42501',
	'the audit trail is append-only', 'the trail cannot be updated');
SELECT is((SELECT valid FROM rustydb.verify_audit_trail()), true, 'the chain verifies');

SELECT * FROM finish();
ROLLBACK;
