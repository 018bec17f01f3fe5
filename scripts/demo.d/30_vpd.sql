-- Virtual Private Database: a row policy driven by an application context
CREATE ROLE demo_clerk NOLOGIN;
CREATE TABLE demo_emp (empno int PRIMARY KEY, ename text, deptno int, sal numeric);
INSERT INTO demo_emp VALUES (7839, 'KING', 10, 5000), (7782, 'CLARK', 10, 2450),
	(7566, 'JONES', 20, 2975), (7698, 'BLAKE', 30, 2850), (7499, 'ALLEN', 30, 1600);
GRANT SELECT ON demo_emp TO demo_clerk;
CREATE FUNCTION demo_set_dept(dept int) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
AS $$ BEGIN PERFORM rustydb.set_context('emp_ctx', 'deptno', dept::text); END $$;
GRANT EXECUTE ON FUNCTION demo_set_dept(int) TO demo_clerk;
SELECT rustydb.create_context('emp_ctx', 'demo_set_dept(int)');
CREATE FUNCTION demo_dept_pred(schema_p text, table_p text) RETURNS text LANGUAGE sql
AS $$ SELECT 'deptno = ' || coalesce(rustydb.sys_context('emp_ctx', 'deptno')::int::text, 'NULL') $$;
SELECT rustydb.add_policy(object_schema => 'public', object_name => 'demo_emp',
	policy_name => 'emp_dept', function_schema => 'public', policy_function => 'demo_dept_pred',
	policy_type => 'context_sensitive');
SELECT object_name, policy_name, policy_type, sel, ins, upd, del, enable FROM rustydb.policies;
SET ROLE demo_clerk;
PREPARE by_dept AS SELECT ename, deptno FROM demo_emp ORDER BY ename;
EXECUTE by_dept;
SELECT demo_set_dept(10);
EXECUTE by_dept;
SELECT demo_set_dept(30);
EXECUTE by_dept;
-- only the context's trusted function may set it
DO $$
BEGIN
	PERFORM rustydb.set_context('emp_ctx', 'deptno', '20');
EXCEPTION WHEN insufficient_privilege THEN
	RAISE NOTICE 'refused: %', SQLERRM;
END $$;
RESET ROLE;
