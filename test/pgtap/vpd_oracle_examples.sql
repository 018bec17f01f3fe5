-- VPD acceptance 1 and 2: the classic Oracle VPD examples, ported.
--  * rows per department through an application context
--  * column masking with sec_relevant_cols and all_rows (and without all_rows)
--  * update_check
--  * a prepared statement and a PL/pgSQL function run before and after set_context
BEGIN;
SELECT plan(35);

SET client_min_messages = warning;
CREATE ROLE vpdx_hr NOLOGIN;
CREATE ROLE vpdx_clerk NOLOGIN;
GRANT rustydb_context_admin TO vpdx_hr;
CREATE SCHEMA vpdx AUTHORIZATION vpdx_hr;
GRANT USAGE ON SCHEMA vpdx TO vpdx_clerk;
SET ROLE vpdx_hr;

CREATE TABLE vpdx.emp (empno int PRIMARY KEY, ename text, job text, deptno int, sal numeric, comm numeric);
INSERT INTO vpdx.emp VALUES
	(7839, 'KING', 'PRESIDENT', 10, 5000, NULL), (7782, 'CLARK', 'MANAGER', 10, 2450, NULL),
	(7934, 'MILLER', 'CLERK', 10, 1300, NULL), (7566, 'JONES', 'MANAGER', 20, 2975, NULL),
	(7369, 'SMITH', 'CLERK', 20, 800, NULL), (7698, 'BLAKE', 'MANAGER', 30, 2850, NULL),
	(7499, 'ALLEN', 'SALESMAN', 30, 1600, 300), (7521, 'WARD', 'SALESMAN', 30, 1250, 500);
GRANT SELECT, INSERT, UPDATE, DELETE ON vpdx.emp TO vpdx_clerk;

-- Oracle: CREATE CONTEXT emp_ctx USING emp_ctx_pkg; the package sets the department at logon.
CREATE FUNCTION vpdx.set_emp_ctx(dept int) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
AS $$ BEGIN PERFORM rustydb.set_context('emp_ctx', 'deptno', dept::text); END $$;
GRANT EXECUTE ON FUNCTION vpdx.set_emp_ctx(int) TO vpdx_clerk;
SELECT rustydb.create_context('emp_ctx', 'vpdx.set_emp_ctx');

-- Oracle: FUNCTION get_dept_pred(schema_p IN VARCHAR2, table_p IN VARCHAR2) RETURN VARCHAR2
CREATE FUNCTION vpdx.dept_pred(schema_p text, table_p text) RETURNS text LANGUAGE plpgsql
AS $$
BEGIN
	RETURN 'deptno = ' || coalesce(rustydb.sys_context('emp_ctx', 'deptno')::int::text, 'NULL');
END $$;
SELECT rustydb.add_policy(object_schema => 'vpdx', object_name => 'emp', policy_name => 'emp_dept_policy',
	function_schema => 'vpdx', policy_function => 'dept_pred', statement_types => 'select, update, delete',
	policy_type => 'context_sensitive');
RESET ROLE;

SELECT is((SELECT policy_type FROM rustydb.policies WHERE policy_name = 'emp_dept_policy'),
	'CONTEXT_SENSITIVE', 'policy listed with its type in rustydb.policies');

-- Example 1: rows per department through the context
SET ROLE vpdx_clerk;
SELECT is_empty('SELECT * FROM vpdx.emp', 'no context set: no rows');
SELECT vpdx.set_emp_ctx(10);
SELECT results_eq('SELECT ename FROM vpdx.emp ORDER BY ename',
	$$VALUES ('CLARK'), ('KING'), ('MILLER')$$, 'department 10 sees its employees');
SELECT vpdx.set_emp_ctx(30);
SELECT results_eq('SELECT ename FROM vpdx.emp ORDER BY ename',
	$$VALUES ('ALLEN'), ('BLAKE'), ('WARD')$$, 'department 30 after the context changes');
SELECT is((SELECT count(*)::int FROM vpdx.emp WHERE deptno = 10), 0, 'other departments invisible even by name');
SELECT lives_ok('UPDATE vpdx.emp SET sal = sal WHERE deptno = 10', 'updating another department is a no-op');
SELECT is((SELECT count(*)::int FROM vpdx.emp), 3, 'delete/update limited to own department');
SELECT throws_ok($$SELECT rustydb.set_context('emp_ctx', 'deptno', '10')$$, '42501', NULL,
	'only the trusted function may set the context');

-- Acceptance 2: a prepared statement before and after set_context
SELECT vpdx.set_emp_ctx(10);
PREPARE emp_names AS SELECT ename FROM vpdx.emp ORDER BY ename;
SELECT results_eq('EXECUTE emp_names', $$VALUES ('CLARK'), ('KING'), ('MILLER')$$, 'prepared: department 10');
SELECT vpdx.set_emp_ctx(20);
SELECT results_eq('EXECUTE emp_names', $$VALUES ('JONES'), ('SMITH')$$, 'prepared: department 20 after set_context');
SELECT vpdx.set_emp_ctx(10);
SELECT results_eq('EXECUTE emp_names', $$VALUES ('CLARK'), ('KING'), ('MILLER')$$, 'prepared: back to 10');
PREPARE emp_by_job(text) AS SELECT ename FROM vpdx.emp WHERE job = $1 ORDER BY ename;
SELECT results_eq($$EXECUTE emp_by_job('MANAGER')$$, $$VALUES ('CLARK')$$, 'prepared with a parameter');
SELECT vpdx.set_emp_ctx(30);
SELECT results_eq($$EXECUTE emp_by_job('MANAGER')$$, $$VALUES ('BLAKE')$$, 'prepared with a parameter after set_context');
DEALLOCATE emp_names;
DEALLOCATE emp_by_job;

-- Acceptance 2: a PL/pgSQL function (cached SPI plans) before and after set_context
RESET ROLE;
CREATE FUNCTION vpdx.dept_names() RETURNS SETOF text LANGUAGE plpgsql
AS $$ BEGIN RETURN QUERY SELECT ename FROM vpdx.emp ORDER BY ename; END $$;
CREATE FUNCTION vpdx.switch_and_count(dept int) RETURNS int LANGUAGE plpgsql
AS $$
DECLARE n int;
BEGIN
	PERFORM vpdx.set_emp_ctx(dept);
	SELECT count(*) INTO n FROM vpdx.emp;
	RETURN n;
END $$;
GRANT EXECUTE ON FUNCTION vpdx.dept_names(), vpdx.switch_and_count(int) TO vpdx_clerk;
SET ROLE vpdx_clerk;
SELECT vpdx.set_emp_ctx(10);
SELECT results_eq('SELECT * FROM vpdx.dept_names()', $$VALUES ('CLARK'), ('KING'), ('MILLER')$$,
	'PL/pgSQL: department 10');
SELECT vpdx.set_emp_ctx(20);
SELECT results_eq('SELECT * FROM vpdx.dept_names()', $$VALUES ('JONES'), ('SMITH')$$,
	'PL/pgSQL: department 20 after set_context');
SELECT is(vpdx.switch_and_count(10), 3, 'PL/pgSQL: context changed inside the function (10)');
SELECT is(vpdx.switch_and_count(20), 2, 'PL/pgSQL: context changed inside the function (20)');
SELECT is(vpdx.switch_and_count(30), 3, 'PL/pgSQL: context changed inside the function (30)');

-- Example 2: update_check (Oracle: update_check => TRUE)
RESET ROLE;
SET ROLE vpdx_hr;
SELECT rustydb.add_policy('vpdx', 'emp', 'emp_insert_check', 'vpdx', 'dept_pred',
	statement_types => 'insert, update', update_check => true, policy_type => 'context_sensitive');
SET ROLE vpdx_clerk;
SELECT vpdx.set_emp_ctx(20);
SELECT lives_ok($$INSERT INTO vpdx.emp VALUES (7876, 'ADAMS', 'CLERK', 20, 1100, NULL)$$,
	'insert into own department');
SELECT throws_ok($$INSERT INTO vpdx.emp VALUES (7900, 'JAMES', 'CLERK', 30, 950, NULL)$$, '42501',
	'new row violates row-level security policy "emp_insert_check" for table "emp"',
	'update_check: insert into another department fails naming the policy');
SELECT throws_ok($$UPDATE vpdx.emp SET deptno = 30 WHERE ename = 'SMITH'$$, '42501', NULL,
	'update_check: moving a row out of the department fails');
SELECT lives_ok($$UPDATE vpdx.emp SET sal = 900 WHERE ename = 'SMITH'$$, 'update inside the department');
RESET ROLE;
SET ROLE vpdx_hr;
SELECT rustydb.drop_policy('vpdx', 'emp', 'emp_insert_check');
SET ROLE vpdx_clerk;
SELECT lives_ok($$UPDATE vpdx.emp SET deptno = 30 WHERE ename = 'ADAMS'$$,
	'without update_check a row may leave the department');

-- Example 3: column masking (Oracle: sec_relevant_cols => 'sal,comm', sec_relevant_cols_opt => ALL_ROWS)
RESET ROLE;
SET ROLE vpdx_hr;
SELECT rustydb.drop_policy('vpdx', 'emp', 'emp_dept_policy');
SELECT rustydb.add_policy(object_schema => 'vpdx', object_name => 'emp', policy_name => 'sal_mask',
	function_schema => 'vpdx', policy_function => 'dept_pred', statement_types => 'select',
	sec_relevant_cols => 'sal,comm', sec_relevant_cols_opt => rustydb.all_rows(),
	policy_type => 'context_sensitive');
SET ROLE vpdx_clerk;
SELECT vpdx.set_emp_ctx(30);
SELECT is((SELECT count(*)::int FROM vpdx.emp), 9, 'all_rows: every row is returned');
SELECT results_eq('SELECT ename, sal, comm FROM vpdx.emp WHERE deptno IN (20, 30) ORDER BY empno',
	$$VALUES ('SMITH', NULL::numeric, NULL::numeric), ('ALLEN', 1600, 300), ('WARD', 1250, 500),
	         ('JONES', NULL, NULL), ('BLAKE', 2850, NULL), ('ADAMS', 1100, NULL)$$,
	'all_rows: sal and comm are NULL outside department 30');
SELECT is((SELECT count(*)::int FROM vpdx.emp WHERE sal IS NOT NULL AND deptno <> 30), 0,
	'all_rows: filtering on a masked column finds nothing outside the department');
SELECT is((SELECT sum(sal) FROM vpdx.emp), 6800::numeric, 'all_rows: aggregates see masked values');
SELECT is((SELECT count(*)::int FROM vpdx.emp e WHERE (e).sal IS NOT NULL OR row_to_json(e)::text LIKE '%5000%'), 4,
	'all_rows: whole-row references are masked too');

-- without all_rows: the policy applies only when a relevant column is referenced
RESET ROLE;
SET ROLE vpdx_hr;
SELECT rustydb.drop_policy('vpdx', 'emp', 'sal_mask');
SELECT rustydb.add_policy('vpdx', 'emp', 'sal_rows', 'vpdx', 'dept_pred', statement_types => 'select',
	sec_relevant_cols => 'sal, comm', policy_type => 'context_sensitive');
SET ROLE vpdx_clerk;
SELECT is((SELECT count(*)::int FROM (SELECT ename, job FROM vpdx.emp) s), 9,
	'sec_relevant_cols: a query without sal/comm sees every row');
SELECT is((SELECT count(*)::int FROM (SELECT ename, sal FROM vpdx.emp) s), 4,
	'sec_relevant_cols: a query reading sal sees department 30 only');

-- Acceptance 2 with a dynamic policy whose predicate depends on a table, not a context
RESET ROLE;
SET ROLE vpdx_hr;
SELECT rustydb.drop_policy('vpdx', 'emp', 'sal_rows');
CREATE TABLE vpdx.visible_jobs (job text);
INSERT INTO vpdx.visible_jobs VALUES ('CLERK');
CREATE FUNCTION vpdx.job_pred(s text, o text) RETURNS text LANGUAGE sql
AS $$ SELECT format('job IN (%s)', coalesce(string_agg(quote_literal(job), ', '), 'NULL')) FROM vpdx.visible_jobs $$;
SELECT rustydb.add_policy('vpdx', 'emp', 'by_job', 'vpdx', 'job_pred', statement_types => 'select');
CREATE FUNCTION vpdx.job_names() RETURNS SETOF text LANGUAGE plpgsql
AS $$ BEGIN RETURN QUERY SELECT ename FROM vpdx.emp ORDER BY ename; END $$;
GRANT EXECUTE ON FUNCTION vpdx.job_names() TO vpdx_clerk;
SET ROLE vpdx_clerk;
PREPARE by_job AS SELECT ename FROM vpdx.emp ORDER BY ename;
SELECT results_eq('EXECUTE by_job', $$VALUES ('ADAMS'), ('MILLER'), ('SMITH')$$, 'dynamic, prepared: clerks');
SELECT results_eq('SELECT * FROM vpdx.job_names()', $$VALUES ('ADAMS'), ('MILLER'), ('SMITH')$$,
	'dynamic, PL/pgSQL: clerks');
RESET ROLE;
UPDATE vpdx.visible_jobs SET job = 'MANAGER';
SET ROLE vpdx_clerk;
SELECT results_eq('EXECUTE by_job', $$VALUES ('BLAKE'), ('CLARK'), ('JONES')$$,
	'dynamic, prepared: re-evaluated at the next execution');
SELECT results_eq('SELECT * FROM vpdx.job_names()', $$VALUES ('BLAKE'), ('CLARK'), ('JONES')$$,
	'dynamic, PL/pgSQL: re-evaluated at the next execution');
SELECT results_eq('EXECUTE by_job', $$VALUES ('BLAKE'), ('CLARK'), ('JONES')$$,
	'dynamic, prepared: unchanged predicate, same rows');
DEALLOCATE by_job;

RESET ROLE;
SELECT * FROM finish();
ROLLBACK;
