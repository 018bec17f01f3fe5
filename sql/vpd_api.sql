-- VPD: SQL API, catalog views, predicate validation, evaluation types,
-- policy groups, driving contexts, application contexts, exemption.
CREATE EXTENSION IF NOT EXISTS rustydb;
SET client_min_messages = warning;
CREATE ROLE vpd_owner NOLOGIN;
CREATE ROLE vpd_user NOLOGIN;
GRANT rustydb_context_admin TO vpd_owner;
RESET client_min_messages;
CREATE SCHEMA vpdt AUTHORIZATION vpd_owner;
GRANT USAGE ON SCHEMA vpdt TO vpd_user;
SET ROLE vpd_owner;
CREATE TABLE vpdt.emp (empno int PRIMARY KEY, ename text, deptno int, sal numeric);
INSERT INTO vpdt.emp VALUES (1, 'KING', 10, 5000), (2, 'BLAKE', 30, 2850), (3, 'CLARK', 10, 2450),
	(4, 'SMITH', 20, 800), (5, 'ALLEN', 30, 1600);
GRANT SELECT, INSERT, UPDATE, DELETE ON vpdt.emp TO vpd_user;
CREATE SEQUENCE vpdt.evals;
GRANT ALL ON SEQUENCE vpdt.evals TO vpd_user;

-- trusted function of the context
CREATE FUNCTION vpdt.set_dept(d int) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
AS $$ BEGIN PERFORM rustydb.set_context('emp_ctx', 'deptno', d::text); END $$;
CREATE FUNCTION vpdt.clear_dept() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
AS $$ BEGIN PERFORM rustydb.clear_context('emp_ctx'); END $$;
SELECT rustydb.create_context('emp_ctx', 'vpdt.set_dept');
SELECT rustydb.create_context('EMP_CTX', 'vpdt.set_dept');     -- duplicate (case-insensitive)
SELECT rustydb.create_context('userenv', 'vpdt.set_dept');     -- reserved
SELECT rustydb.create_context('other_ctx', 'vpdt.no_such');    -- no function
SELECT namespace, schema, package, type, trusted_function FROM rustydb.contexts ORDER BY 1;

-- policy functions
CREATE FUNCTION vpdt.dept_pred(s text, o text) RETURNS text LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM nextval('vpdt.evals');
	IF rustydb.sys_context('emp_ctx', 'deptno') IS NULL THEN
		RETURN '1 = 0';
	END IF;
	RETURN format('deptno = %s', rustydb.sys_context('emp_ctx', 'deptno')::int);
END $$;
CREATE FUNCTION vpdt.bad_pred(s text, o text) RETURNS text LANGUAGE sql
AS $$ SELECT current_setting('vpdt.pred') $$;
CREATE TABLE vpdt.secrets (val text);
INSERT INTO vpdt.secrets VALUES ('the secret');
CREATE FUNCTION vpdt.failing_pred(s text, o text) RETURNS text LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'secret value %', (SELECT max(val) FROM vpdt.secrets); END $$;
CREATE FUNCTION vpdt.recursive_pred(s text, o text) RETURNS text LANGUAGE plpgsql
AS $$ BEGIN RETURN format('sal < %s', (SELECT max(sal) FROM vpdt.emp)); END $$;
CREATE FUNCTION vpdt.not_a_policy(x int) RETURNS text LANGUAGE sql AS $$ SELECT 'true' $$;

-- argument checking
SELECT rustydb.add_policy('vpdt', 'emp', 'p', 'vpdt', 'no_such_function');
SELECT rustydb.add_policy('vpdt', 'emp', 'p', 'vpdt', 'not_a_policy');
SELECT rustydb.add_policy('vpdt', 'emp', 'p', 'vpdt', 'dept_pred', statement_types => 'select,truncate');
SELECT rustydb.add_policy('vpdt', 'emp', 'p', 'vpdt', 'dept_pred', policy_type => 'sometimes');
SELECT rustydb.add_policy('vpdt', 'emp', 'p', 'vpdt', 'dept_pred', sec_relevant_cols => 'sal,bonus');
SELECT rustydb.add_policy('vpdt', 'emp', 'p', 'vpdt', 'dept_pred', sec_relevant_cols_opt => rustydb.all_rows());
SELECT rustydb.add_policy('vpdt', 'nosuch', 'p', 'vpdt', 'dept_pred');
SELECT rustydb.add_policy('vpdt', 'emp', 'p', 'vpdt', 'dept_pred', namespace => 'emp_ctx', attribute => 'deptno');

-- a context-sensitive policy: re-evaluated only when the context changes
SELECT rustydb.add_policy(object_schema => 'vpdt', object_name => 'emp', policy_name => 'emp_dept',
	function_schema => 'vpdt', policy_function => 'dept_pred', policy_type => 'context_sensitive');
SELECT rustydb.add_policy('vpdt', 'emp', 'emp_dept', 'vpdt', 'dept_pred');   -- duplicate
SELECT object_owner, object_name, policy_group, policy_name, pf_owner, package, function, sel, ins, upd,
	del, idx, chk_option, enable, static_policy, policy_type, long_predicate
	FROM rustydb.policies;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'vpdt.emp'::regclass;

SET ROLE vpd_user;
SELECT * FROM vpdt.emp ORDER BY empno;                -- no context: no rows
SELECT rustydb.set_context('emp_ctx', 'deptno', '10'); -- not from the trusted function
SELECT rustydb.clear_context('emp_ctx');
SELECT rustydb.set_context('userenv', 'current_user', 'x');
SELECT vpdt.set_dept(10);
SELECT rustydb.sys_context('emp_ctx', 'DEPTNO'), rustydb.sys_context('EMP_CTX', 'deptno', 1),
	rustydb.sys_context('emp_ctx', 'nothing');
SELECT * FROM rustydb.session_context();
SELECT setval('vpdt.evals', 1, false);
SELECT * FROM vpdt.emp ORDER BY empno;
SELECT * FROM vpdt.emp ORDER BY empno;
SELECT last_value AS evaluations FROM vpdt.evals;     -- once for both statements
SELECT vpdt.set_dept(10);                              -- same value: no change
SELECT * FROM vpdt.emp ORDER BY empno;
SELECT last_value AS evaluations FROM vpdt.evals;
SELECT vpdt.set_dept(30);
SELECT * FROM vpdt.emp ORDER BY empno;
SELECT last_value AS evaluations FROM vpdt.evals;     -- re-evaluated after the change
-- userenv
SELECT rustydb.sys_context('userenv', 'session_user') AS session_user,
	rustydb.sys_context('userenv', 'current_user') AS current_user,
	rustydb.sys_context('userenv', 'current_schema') AS current_schema,
	rustydb.sys_context('userenv', 'isdba') AS isdba,
	rustydb.sys_context('userenv', 'db_name') = current_database() AS db_name,
	rustydb.sys_context('userenv', 'sessionid') = pg_backend_pid()::text AS sessionid,
	rustydb.sys_context('userenv', 'module') = current_setting('application_name') AS module;
SELECT rustydb.sys_context('userenv', 'no_such_thing');
SELECT rustydb.sys_context('emp_ctx', 'deptno', 0);
-- DML through the policy
UPDATE vpdt.emp SET sal = sal + 1 RETURNING empno, ename, deptno;
DELETE FROM vpdt.emp WHERE deptno = 10 RETURNING empno;
INSERT INTO vpdt.emp VALUES (6, 'WARD', 20, 1250);     -- no update_check: allowed
UPDATE vpdt.emp SET deptno = 20 WHERE empno = 5;       -- moves out of sight: allowed
SELECT * FROM vpdt.emp ORDER BY empno;
RESET ROLE;
SELECT count(*) AS all_rows_for_superuser FROM vpdt.emp;

-- static: evaluated once per session cache; refresh_policy forces a new evaluation
SET ROLE vpd_owner;
SELECT rustydb.drop_policy('vpdt', 'emp', 'emp_dept');
SELECT rustydb.drop_policy('vpdt', 'emp', 'emp_dept');   -- already gone
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'vpdt.emp'::regclass;
SELECT rustydb.add_policy('vpdt', 'emp', 'emp_static', 'vpdt', 'dept_pred', policy_type => 'STATIC',
	update_check => true);
SET ROLE vpd_user;
SELECT setval('vpdt.evals', 1, false);
SELECT vpdt.set_dept(20);
SELECT ename FROM vpdt.emp ORDER BY 1;          -- evaluated now (dept 20)
SELECT vpdt.set_dept(30);
SELECT ename FROM vpdt.emp ORDER BY 1;          -- static: still dept 20
SELECT last_value AS evaluations FROM vpdt.evals;
INSERT INTO vpdt.emp VALUES (7, 'TURNER', 30, 1500);   -- update_check: not dept 20
UPDATE vpdt.emp SET deptno = 30 WHERE empno = 4;       -- update_check
INSERT INTO vpdt.emp VALUES (7, 'TURNER', 20, 1500);
RESET ROLE;
SELECT rustydb.refresh_policy('vpdt', 'emp', 'emp_static');   -- not owner
SET ROLE vpd_owner;
SELECT rustydb.refresh_policy('vpdt', 'emp', 'emp_static');
SET ROLE vpd_user;
SELECT ename FROM vpdt.emp ORDER BY 1;          -- re-evaluated: dept 30
SELECT last_value AS evaluations FROM vpdt.evals;

-- dynamic: evaluated for every statement and every execution
SET ROLE vpd_owner;
SELECT rustydb.drop_policy('vpdt', 'emp', 'emp_static');
SELECT rustydb.add_policy('vpdt', 'emp', 'emp_dyn', 'vpdt', 'dept_pred');
SELECT policy_type FROM rustydb.policies WHERE policy_name = 'emp_dyn';
SET ROLE vpd_user;
SELECT setval('vpdt.evals', 1, false);
PREPARE q AS SELECT ename FROM vpdt.emp ORDER BY 1;
EXECUTE q;
EXECUTE q;
EXECUTE q;
SELECT last_value AS evaluations FROM vpdt.evals;     -- once at PREPARE, then once per execution
DEALLOCATE q;
-- disable / enable
RESET ROLE;
SET ROLE vpd_owner;
SELECT rustydb.enable_policy('vpdt', 'emp', 'emp_dyn', false);
SET ROLE vpd_user;
SELECT count(*) FROM vpdt.emp;
SET ROLE vpd_owner;
SELECT rustydb.enable_policy('vpdt', 'emp', 'emp_dyn');
SELECT enable FROM rustydb.policies WHERE policy_name = 'emp_dyn';
SET ROLE vpd_user;
SELECT count(*) FROM vpdt.emp;

-- invalid predicates: one expression only, errors name the policy and reveal nothing
SET ROLE vpd_owner;
SELECT rustydb.drop_policy('vpdt', 'emp', 'emp_dyn');
SELECT rustydb.add_policy('vpdt', 'emp', 'emp_bad', 'vpdt', 'bad_pred');
SET ROLE vpd_user;
SET vpdt.pred = '1=1; DROP TABLE vpdt.emp';
SELECT count(*) FROM vpdt.emp;
SET vpdt.pred = '1=1) UNION (SELECT true';
SELECT count(*) FROM vpdt.emp;
SET vpdt.pred = 'true FROM pg_authid';
SELECT count(*) FROM vpdt.emp;
SET vpdt.pred = 'true) OR (true';
SELECT count(*) FROM vpdt.emp;
SET vpdt.pred = 'true --';
SELECT count(*) FROM vpdt.emp;
SET vpdt.pred = 'no_such_column = 1';
SELECT count(*) FROM vpdt.emp;
SET vpdt.pred = 'sal';
SELECT count(*) FROM vpdt.emp;
SET vpdt.pred = 'count(*) > 0';
SELECT count(*) FROM vpdt.emp;
SET vpdt.pred = '';
SELECT count(*) FROM vpdt.emp;                      -- empty predicate: no restriction
SET vpdt.pred = 'deptno IN (SELECT 20)';
SELECT count(*) FROM vpdt.emp;                      -- subqueries are expressions
SET vpdt.pred = 'deptno = 20 AND ename <> ''X''';
SELECT count(*) FROM vpdt.emp;
RESET vpdt.pred;
RESET ROLE;
-- the owner sees the parser's message
SET ROLE vpd_owner;
SET vpdt.pred = 'no_such_column = 1';
SELECT count(*) FROM vpdt.emp;
RESET vpdt.pred;
-- a failing policy function: the statement fails naming the policy; its message stays in the log
SELECT rustydb.drop_policy('vpdt', 'emp', 'emp_bad');
SELECT rustydb.add_policy('vpdt', 'emp', 'emp_fail', 'vpdt', 'failing_pred');
SET ROLE vpd_user;
SELECT ename FROM vpdt.emp;
SET ROLE vpd_owner;
SELECT rustydb.drop_policy('vpdt', 'emp', 'emp_fail');
-- a policy function that queries its own table
SELECT rustydb.add_policy('vpdt', 'emp', 'emp_rec', 'vpdt', 'recursive_pred');
SET ROLE vpd_user;
SELECT ename FROM vpdt.emp;
SET ROLE vpd_owner;
SELECT rustydb.drop_policy('vpdt', 'emp', 'emp_rec');

-- policy groups and driving contexts
SELECT rustydb.create_policy_group('vpdt', 'emp', 'managers');
SELECT rustydb.create_policy_group('vpdt', 'emp', 'clerks');
SELECT rustydb.create_policy_group('vpdt', 'emp', 'clerks');   -- duplicate
CREATE FUNCTION vpdt.sal_pred(s text, o text) RETURNS text LANGUAGE sql AS $$ SELECT 'sal < 2000' $$;
CREATE FUNCTION vpdt.d30_pred(s text, o text) RETURNS text LANGUAGE sql AS $$ SELECT 'deptno = 30' $$;
CREATE FUNCTION vpdt.not_king(s text, o text) RETURNS text LANGUAGE sql AS $$ SELECT 'ename <> ''KING''' $$;
SELECT rustydb.add_grouped_policy('vpdt', 'emp', 'clerks', 'low_sal', 'vpdt', 'sal_pred');
SELECT rustydb.add_grouped_policy('vpdt', 'emp', 'managers', 'own_dept', 'vpdt', 'd30_pred');
SELECT rustydb.add_grouped_policy('vpdt', 'emp', 'nosuch', 'x', 'vpdt', 'd30_pred');
SELECT rustydb.add_policy('vpdt', 'emp', 'no_king', 'vpdt', 'not_king');
SET ROLE vpd_user;
SELECT ename FROM vpdt.emp ORDER BY 1;          -- no driving context: every group applies
SET ROLE vpd_owner;
CREATE FUNCTION vpdt.set_role_ctx(r text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
AS $$ BEGIN PERFORM rustydb.set_context('app_role', 'group', r); END $$;
GRANT EXECUTE ON FUNCTION vpdt.set_role_ctx(text) TO vpd_user;
SELECT rustydb.create_context('app_role', 'vpdt.set_role_ctx(text)');
SELECT rustydb.add_policy_context('vpdt', 'emp', 'app_role', 'group');
SELECT * FROM rustydb.policy_contexts;
SELECT * FROM rustydb.policy_groups ORDER BY policy_group;
SET ROLE vpd_user;
SELECT ename FROM vpdt.emp ORDER BY 1;          -- context unset: only SYS_DEFAULT
SELECT vpdt.set_role_ctx('clerks');
SELECT ename FROM vpdt.emp ORDER BY 1;
SELECT vpdt.set_role_ctx('MANAGERS');
SELECT ename FROM vpdt.emp ORDER BY 1;
SELECT vpdt.set_role_ctx('nobody');
SELECT ename FROM vpdt.emp ORDER BY 1;
SET ROLE vpd_owner;
SELECT rustydb.disable_grouped_policy('vpdt', 'emp', 'managers', 'own_dept');
SET ROLE vpd_user;
SELECT vpdt.set_role_ctx('managers');
SELECT ename FROM vpdt.emp ORDER BY 1;
SET ROLE vpd_owner;
SELECT rustydb.delete_policy_group('vpdt', 'emp', 'managers');   -- still has a policy
SELECT rustydb.drop_grouped_policy('vpdt', 'emp', 'managers', 'own_dept');
SELECT rustydb.delete_policy_group('vpdt', 'emp', 'managers');
SELECT rustydb.drop_policy_context('vpdt', 'emp', 'app_role', 'group');
SELECT rustydb.drop_grouped_policy('vpdt', 'emp', 'clerks', 'low_sal');
SELECT rustydb.delete_policy_group('vpdt', 'emp', 'clerks');

-- alter_policy: attribute associations of a context-sensitive policy
SELECT rustydb.alter_policy('vpdt', 'emp', 'no_king', rustydb.add_attribute_association(), 'emp_ctx', 'deptno');
SELECT rustydb.add_policy('vpdt', 'emp', 'by_dept', 'vpdt', 'dept_pred', policy_type => 'context_sensitive',
	namespace => 'emp_ctx', attribute => 'deptno');
SELECT rustydb.alter_policy('vpdt', 'emp', 'by_dept', rustydb.add_attribute_association(), 'app_role', 'group');
SELECT rustydb.alter_policy('vpdt', 'emp', 'by_dept', 3, 'app_role', 'group');
SELECT * FROM rustydb.policy_attributes ORDER BY namespace;
SET ROLE vpd_user;
SELECT vpdt.set_dept(30);
SELECT setval('vpdt.evals', 1, false);
SELECT ename FROM vpdt.emp ORDER BY 1;
SELECT vpdt.set_role_ctx('x');
SELECT ename FROM vpdt.emp ORDER BY 1;      -- app_role.group is associated: re-evaluated
SET ROLE vpd_owner;
SELECT rustydb.alter_policy('vpdt', 'emp', 'by_dept', rustydb.remove_attribute_association(), 'app_role', 'group');
SET ROLE vpd_user;
SELECT ename FROM vpdt.emp ORDER BY 1;
SELECT vpdt.set_role_ctx('y');
SELECT ename FROM vpdt.emp ORDER BY 1;      -- not associated any more: cached predicate
SELECT last_value AS evaluations FROM vpdt.evals;
SELECT vpdt.set_dept(20);
SELECT ename FROM vpdt.emp ORDER BY 1;
SELECT last_value AS evaluations FROM vpdt.evals;

-- exemption
RESET ROLE;
GRANT rustydb_exempt_access_policy TO vpd_user;
SET ROLE vpd_user;
SELECT count(*) AS exempt_sees_all FROM vpdt.emp;
RESET ROLE;
REVOKE rustydb_exempt_access_policy FROM vpd_user;
SET ROLE vpd_user;
SELECT count(*) AS not_exempt_any_more FROM vpdt.emp;

-- the owner cannot switch row security off while policies exist
SET ROLE vpd_owner;
ALTER TABLE vpdt.emp DISABLE ROW LEVEL SECURITY;
ALTER TABLE vpdt.emp NO FORCE ROW LEVEL SECURITY;
-- an index policy refuses CREATE INDEX (an index sees every row)
SELECT rustydb.add_policy('vpdt', 'emp', 'idx_pol', 'vpdt', 'not_king', statement_types => 'index');
CREATE INDEX ON vpdt.emp (lower(ename));
SELECT rustydb.drop_policy('vpdt', 'emp', 'idx_pol');
CREATE INDEX emp_lower ON vpdt.emp (lower(ename));
-- catalog views
SELECT object_name, policy_name, sec_rel_column, column_option FROM rustydb.sec_relevant_cols;
SELECT policy_name, policy_type, static_policy FROM rustydb.policies ORDER BY 1;

-- cleanup: dropping the table removes its policies
RESET ROLE;
DROP TABLE vpdt.emp;
SELECT count(*) AS policies_left FROM rustydb.vpd_policy;
SELECT rustydb.drop_context('emp_ctx');
SELECT rustydb.drop_context('app_role');
SELECT rustydb.drop_context('app_role');
DROP SCHEMA vpdt CASCADE;
DROP ROLE vpd_user;
DROP ROLE vpd_owner;
