-- NULL arguments, one rule for every rustydb SQL function (sql/install/00_core.sql):
-- a function that computes a value is STRICT (NULL in, NULL out); a function
-- that acts (creates, drops, sets, reports) refuses a NULL argument that has
-- no meaning with SQLSTATE 22004, 'argument "name" must not be null'.
-- Arguments with a meaning when NULL are documented with their function
-- (e.g. object_schema: the current schema; refresh_policy's object_name:
-- every table).
BEGIN;
SELECT plan(30);

-- Every user-facing function with arguments is STRICT or one of the acting
-- functions checked below; a new function must take a side.
SELECT is(
	(SELECT coalesce(string_agg(p.proname, ', ' ORDER BY p.proname), '')
	   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	  WHERE n.nspname = 'rustydb' AND p.proname NOT LIKE '\_%' AND p.pronargs > 0
	    AND NOT p.proisstrict AND p.prorettype <> 'table_am_handler'::regtype
	    AND p.proname NOT IN ('set_context', 'clear_context', 'add_policy', 'add_grouped_policy',
	        'drop_policy', 'drop_grouped_policy', 'enable_policy', 'enable_grouped_policy',
	        'disable_grouped_policy', 'refresh_policy', 'refresh_grouped_policy', 'alter_policy',
	        'alter_grouped_policy', 'create_policy_group', 'delete_policy_group',
	        'add_policy_context', 'drop_policy_context', 'create_context', 'drop_context',
	        'ash_report', 'ash_report_html', 'create_audit_policy', 'enable_audit_policy',
	        'disable_audit_policy', 'drop_audit_policy')),
	'', 'every rustydb function with arguments is STRICT or refuses NULL explicitly');

SELECT ok((SELECT proisstrict FROM pg_proc WHERE oid = 'rustydb.sys_context(text, text, integer)'::regprocedure),
	'sys_context computes a value: STRICT');
SELECT is(rustydb.sys_context(NULL, 'session_user'), NULL, 'sys_context(NULL, ...) is NULL');
SELECT is(rustydb.sys_context('userenv', 'session_user', NULL), NULL, 'sys_context(..., NULL length) is NULL');

-- C functions
SELECT throws_ok($$SELECT rustydb.set_context(NULL, 'a', 'b')$$, '22004',
	'argument "namespace" must not be null', 'set_context: NULL namespace');
SELECT throws_ok($$SELECT rustydb.set_context('ns', NULL, 'b')$$, '22004',
	'argument "attribute" must not be null', 'set_context: NULL attribute');
SELECT throws_ok($$SELECT rustydb.clear_context(NULL)$$, '22004',
	'argument "namespace" must not be null', 'clear_context: NULL namespace');

-- contexts
SELECT throws_ok($$SELECT rustydb.create_context(NULL, 'f')$$, '22004',
	'argument "namespace" must not be null', 'create_context: NULL namespace');
SELECT throws_ok($$SELECT rustydb.create_context('ns', NULL)$$, '22004',
	'argument "trusted_function" must not be null', 'create_context: NULL trusted_function');
SELECT throws_ok($$SELECT rustydb.drop_context(NULL)$$, '22004',
	'argument "namespace" must not be null', 'drop_context: NULL namespace');

-- DBMS_RLS-style API
CREATE SCHEMA nullargs;
CREATE TABLE nullargs.t (a int);
CREATE FUNCTION nullargs.f(text, text) RETURNS text LANGUAGE sql AS $$ SELECT 'a > 0' $$;
SELECT throws_ok($$SELECT rustydb.add_policy('nullargs', NULL, 'p', 'nullargs', 'f')$$, '22004',
	'argument "object_name" must not be null', 'add_policy: NULL object_name');
SELECT throws_ok($$SELECT rustydb.add_policy('nullargs', 't', NULL, 'nullargs', 'f')$$, '22004',
	'argument "policy_name" must not be null', 'add_policy: NULL policy_name');
SELECT throws_ok($$SELECT rustydb.add_policy('nullargs', 't', 'p', 'nullargs', NULL)$$, '22004',
	'argument "policy_function" must not be null', 'add_policy: NULL policy_function');
SELECT throws_ok($$SELECT rustydb.add_policy('nullargs', 't', '  ', 'nullargs', 'f')$$, '22023',
	'policy_name must not be empty', 'add_policy: an empty policy_name is a different error');
SELECT lives_ok($$SELECT rustydb.add_policy('nullargs', 't', 'p', 'nullargs', 'f')$$,
	'add_policy with every argument works');
SELECT throws_ok($$SELECT rustydb.drop_policy('nullargs', 't', NULL)$$, '22004',
	'argument "policy_name" must not be null', 'drop_policy: NULL policy_name');
SELECT throws_ok($$SELECT rustydb.enable_policy('nullargs', 't', NULL, true)$$, '22004',
	'argument "policy_name" must not be null', 'enable_policy: NULL policy_name');
SELECT throws_ok($$SELECT rustydb.enable_policy('nullargs', 't', 'p', NULL)$$, '22004',
	'argument "enable" must not be null', 'enable_policy: NULL enable');
SELECT throws_ok($$SELECT rustydb.create_policy_group('nullargs', 't', NULL)$$, '22004',
	'argument "policy_group" must not be null', 'create_policy_group: NULL policy_group');
SELECT throws_ok($$SELECT rustydb.add_policy_context('nullargs', 't', NULL, 'a')$$, '22004',
	'argument "namespace" must not be null', 'add_policy_context: NULL namespace');
SELECT throws_ok($$SELECT rustydb.add_policy_context('nullargs', 't', 'ns', NULL)$$, '22004',
	'argument "attribute" must not be null', 'add_policy_context: NULL attribute');
SELECT throws_ok($$SELECT rustydb.drop_policy_context('nullargs', 't', NULL, 'a')$$, '22004',
	'argument "namespace" must not be null', 'drop_policy_context: NULL namespace');
SELECT throws_ok($$SELECT rustydb.alter_policy('nullargs', 't', 'p', 1, NULL, 'a')$$, '22004',
	'argument "namespace" must not be null', 'alter_policy: NULL namespace');
SELECT lives_ok($$SELECT rustydb.refresh_policy(NULL, NULL, NULL)$$,
	'refresh_policy(NULL, NULL, NULL): NULL object_name means every table (documented)');
SELECT lives_ok($$SELECT rustydb.drop_policy(NULL, 't', 'p')$$,
	'drop_policy: NULL object_schema means the current schema (documented)')
	FROM (SELECT set_config('search_path', 'nullargs, public', true)) s;

-- ASH reports
SELECT throws_ok($$SELECT rustydb.ash_report(NULL, now())$$, '22004',
	'argument "p_from" must not be null', 'ash_report: NULL p_from');
SELECT throws_ok($$SELECT rustydb.ash_report_html(now(), NULL)$$, '22004',
	'argument "p_to" must not be null', 'ash_report_html: NULL p_to');

-- audit policies
SELECT throws_ok($$SELECT rustydb.create_audit_policy(NULL, '{select}')$$, '22004',
	'argument "policy_name" must not be null', 'create_audit_policy: NULL policy_name');
SELECT throws_ok($$SELECT rustydb.create_audit_policy('p', NULL)$$, '22004',
	'argument "actions" must not be null', 'create_audit_policy: NULL actions');
SELECT throws_ok($$SELECT rustydb.drop_audit_policy(NULL)$$, '22004',
	'argument "policy_name" must not be null', 'drop_audit_policy: NULL policy_name');

SELECT * FROM finish();
ROLLBACK;
