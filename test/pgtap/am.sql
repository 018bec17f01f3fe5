-- SQL contracts of the rustydb table access method.
BEGIN;
SELECT plan(16);

SELECT is((SELECT amtype::text FROM pg_am WHERE amname = 'rustydb'), 't',
	'rustydb is a table access method');
SELECT is((SELECT amhandler::text FROM pg_am WHERE amname = 'rustydb'), 'rustydb.tableam_handler',
	'its handler is rustydb.tableam_handler');
SELECT is((SELECT rm_id FROM pg_get_wal_resource_managers() WHERE rm_name = 'rustydb'), 144,
	'the WAL resource manager rustydb has id 144');
SELECT has_function('rustydb', 'verify_table', ARRAY['regclass']);
SELECT function_returns('rustydb', 'verify_table', ARRAY['regclass'], 'setof record');
SELECT ok(NOT has_function_privilege('public', 'rustydb.verify_table(regclass)', 'EXECUTE'),
	'verify_table is not granted to PUBLIC');

CREATE TABLE tap_am (id int PRIMARY KEY, v text) USING rustydb;
SELECT is((SELECT a.amname::text FROM pg_class c JOIN pg_am a ON a.oid = c.relam
	WHERE c.oid = 'tap_am'::regclass), 'rustydb', 'CREATE TABLE ... USING rustydb');
SELECT is_empty('SELECT * FROM rustydb.verify_table(''tap_am'')', 'an empty table verifies clean');

INSERT INTO tap_am SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
SELECT is((SELECT count(*) FROM tap_am), 1000::bigint, 'rows inserted are read back');
SELECT is((SELECT ctid::text FROM tap_am WHERE id = 1), '(0,1)', 'the first row is at (0,1), as in heap');
UPDATE tap_am SET v = 'changed' WHERE id <= 10;
DELETE FROM tap_am WHERE id > 990;
SELECT is((SELECT count(*) FILTER (WHERE v = 'changed') || '/' || count(*) FROM tap_am), '10/990',
	'updates and deletes are seen by the same transaction');
SELECT is_empty('SELECT * FROM rustydb.verify_table(''tap_am'')', 'the changed table verifies clean');
SELECT throws_ok('INSERT INTO tap_am VALUES (1, ''dup'')', '23505', NULL,
	'unique violations are detected through the index');
SELECT lives_ok('INSERT INTO tap_am VALUES (1, ''dup'') ON CONFLICT (id) DO UPDATE SET v = excluded.v',
	'ON CONFLICT DO UPDATE works');

CREATE TABLE tap_heap (a int) USING heap;
SELECT throws_ok('SELECT * FROM rustydb.verify_table(''tap_heap'')', '42809',
	'"tap_heap" is not a rustydb table', 'verify_table refuses other tables');
SELECT lives_ok('SELECT * FROM tap_am WHERE id = 1 FOR UPDATE NOWAIT',
	'NOWAIT on a row this transaction changed is not an error');

SELECT * FROM finish();
ROLLBACK;
