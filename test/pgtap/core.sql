-- SQL contracts of rustydb's core: schema, functions, privileges, settings view.
BEGIN;
SELECT plan(22);

SELECT has_extension('rustydb', 'the rustydb extension is installed');
SELECT has_schema('rustydb');

SELECT has_function('rustydb', 'version', ARRAY[]::text[]);
SELECT function_returns('rustydb', 'version', ARRAY[]::text[], 'text');
SELECT is(rustydb.version(), '0.1.0', 'version() is 0.1.0');
SELECT volatility_is('rustydb', 'version', ARRAY[]::text[], 'immutable');

SELECT has_function('rustydb', 'build_info', ARRAY[]::text[]);
SELECT is((SELECT postgres_version FROM rustydb.build_info()), current_setting('server_version'),
	'build_info() names the server version it was built against');
SELECT matches((SELECT libsodium_version FROM rustydb.build_info()), '^[0-9]+\.[0-9]+\.[0-9]+$',
	'build_info() reports the libsodium version');
SELECT isnt((SELECT compiler FROM rustydb.build_info()), NULL, 'build_info() reports the compiler');

SELECT has_view('rustydb', 'settings', 'rustydb.settings exists');
SELECT columns_are('rustydb', 'settings',
	ARRAY['name', 'value', 'unit', 'type', 'min', 'max', 'allowed_values', 'default_value',
		  'restart_needed', 'context', 'description']);
SELECT col_type_is('rustydb', 'settings', 'restart_needed', 'boolean', 'restart_needed is boolean');
SELECT is_empty($$SELECT name FROM rustydb.settings WHERE name NOT LIKE 'rustydb.%'$$,
	'every setting in the view is a rustydb.* setting');
SELECT set_eq($$SELECT name FROM rustydb.settings$$,
	$$SELECT name FROM pg_settings WHERE name LIKE 'rustydb.%'$$,
	'the view lists exactly the rustydb.* settings the server knows');
SELECT is_empty($$SELECT name FROM rustydb.settings WHERE type IN ('integer', 'real') AND (min IS NULL OR max IS NULL)$$,
	'every numeric setting is bounded');
SELECT is_empty($$SELECT name FROM rustydb.settings WHERE restart_needed <> (context = 'postmaster')$$,
	'restart_needed agrees with the context');

-- privileges
SELECT function_privs_are('rustydb', 'selftest_boundary', ARRAY['text'], 'public', ARRAY[]::text[],
	'PUBLIC cannot run the boundary self-test');
SELECT table_privs_are('rustydb', 'settings', 'public', ARRAY['SELECT'],
	'PUBLIC can read rustydb.settings');
SELECT schema_privs_are('rustydb', 'public', ARRAY['USAGE'], 'PUBLIC has only USAGE on schema rustydb');

-- the boundary, once more through pgTAP
SELECT throws_ok($$SELECT rustydb.selftest_boundary('pg_error')$$, '22012', 'division by zero',
	'a PostgreSQL error beneath C++ keeps its SQLSTATE');
SELECT throws_ok($$SELECT rustydb.selftest_boundary('std_exception')$$, 'XX000', NULL,
	'a C++ exception becomes an internal error');

SELECT * FROM finish();
ROLLBACK;
