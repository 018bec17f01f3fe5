-- SQL contracts of transparent data encryption (docs/tde.md), on a server
-- with no key provider configured: catalog objects, privileges, option
-- validation, and the clear error an encrypted table gets without a key.
BEGIN;
SELECT plan(36);

SELECT has_table('rustydb', 'table_keys', 'rustydb.table_keys exists');
SELECT is((SELECT a.amname::text FROM pg_class c JOIN pg_am a ON a.oid = c.relam
	WHERE c.oid = 'rustydb.table_keys'::regclass), 'heap', 'the key catalog is a heap table');
SELECT col_is_pk('rustydb', 'table_keys', ARRAY['relid', 'key_version'], 'keys are by (relid, key_version)');
SELECT columns_are('rustydb', 'table_keys',
	ARRAY['relid', 'key_version', 'is_current', 'cipher', 'key_id', 'master_key_id', 'wrapped_key',
		  'created', 'last_rotated']);
SELECT has_view('rustydb', 'encryption_status', 'rustydb.encryption_status exists');
SELECT columns_are('rustydb', 'encryption_status',
	ARRAY['table', 'encrypted', 'key_id', 'key_version', 'cipher', 'master_key_id', 'created',
		  'last_rotated', 'key_versions']);
SELECT has_function('rustydb', 'rotate_master_key', ARRAY[]::text[]);
SELECT has_function('rustydb', 'rotate_table_key', ARRAY['regclass']);
SELECT has_function('rustydb', 'verify_encryption', ARRAY['regclass']);
SELECT function_returns('rustydb', 'rotate_master_key', ARRAY[]::text[], 'integer');
SELECT function_returns('rustydb', 'rotate_table_key', ARRAY['regclass'], 'integer');
SELECT has_function('rustydb', 'master_key_info', ARRAY[]::text[]);
SELECT has_function('rustydb', 'tde_seal', ARRAY['regclass', 'bytea', 'bytea']);
SELECT has_function('rustydb', 'tde_open', ARRAY['regclass', 'bytea', 'bytea', 'integer']);
SELECT has_function('rustydb', 'tde_tuple_selftest', ARRAY['regclass', 'record']);
SELECT has_function('rustydb', 'tde_cipher_bench', ARRAY['integer', 'integer']);

-- privileges: an ordinary role
CREATE ROLE tap_tde_user;
SELECT ok(NOT has_function_privilege('tap_tde_user', 'rustydb.rotate_master_key()', 'EXECUTE'),
	'rotate_master_key() is not for PUBLIC');
SELECT ok(NOT has_function_privilege('tap_tde_user', 'rustydb.tde_seal(regclass, bytea, bytea)', 'EXECUTE'),
	'tde_seal() is not for PUBLIC');
SELECT ok(NOT has_function_privilege('tap_tde_user', 'rustydb.master_key_info()', 'EXECUTE'),
	'master_key_info() is not for PUBLIC');
SELECT ok(NOT has_table_privilege('tap_tde_user', 'rustydb.table_keys', 'SELECT'),
	'table_keys is not readable by PUBLIC');
SELECT ok(has_table_privilege('tap_tde_user', 'rustydb.encryption_status', 'SELECT'),
	'encryption_status is readable by PUBLIC');

-- option validation
SELECT throws_ok($$CREATE TABLE tap_h (a int) WITH (encrypted = true)$$, '22023',
	'option "encrypted" is only valid for tables using the rustydb access method',
	'encrypted is refused on a heap table');
SELECT throws_ok($$CREATE TABLE tap_p (a int) PARTITION BY LIST (a) WITH (encrypted)$$, '0A000',
	'option "encrypted" cannot be set on a partitioned table', 'and on a partitioned table');
SELECT lives_ok($$CREATE TABLE tap_f (a int) WITH (fillfactor = 60)$$,
	'other table options are untouched');
SELECT throws_ok($$ALTER TABLE tap_f SET (encrypted = true)$$, '0A000',
	'cannot change option "encrypted" of an existing table', 'encrypted cannot be changed later');

-- a stand-in rustydb access method (heap storage) when the real one is absent
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_am WHERE amname = 'rustydb') THEN
		CREATE ACCESS METHOD rustydb TYPE TABLE HANDLER heap_tableam_handler;
	END IF;
END $$;

-- no key provider on this server
SELECT throws_ok($$SELECT rustydb.master_key_info()$$, '55000',
	'no master key provider is configured', 'master_key_info() without a provider');
SELECT throws_ok($$CREATE TABLE tap_e (a int) USING rustydb WITH (encrypted = true)$$, '55000',
	'no master key provider is configured', 'an encrypted table needs a key provider');
SELECT lives_ok($$CREATE TABLE tap_u (a int) USING rustydb$$, 'unencrypted rustydb tables need none');
SELECT is((SELECT encrypted FROM rustydb.encryption_status WHERE "table" = 'tap_u'::regclass), false,
	'encryption_status lists the unencrypted rustydb table');
SET LOCAL rustydb.encrypt_new_tables = on;
SELECT throws_ok($$CREATE TABLE tap_e2 (a int) USING rustydb$$, '55000',
	'no master key provider is configured', 'encrypt_new_tables applies to rustydb tables');
SELECT lives_ok($$CREATE TABLE tap_h2 (a int) USING heap$$, 'but not to heap tables');
SELECT lives_ok($$CREATE TABLE tap_u2 (a int) USING rustydb WITH (encrypted = false)$$,
	'encrypted = false overrides encrypt_new_tables');
RESET rustydb.encrypt_new_tables;
SELECT throws_ok($$SELECT rustydb.tde_seal('tap_u', 'x')$$, '42809', 'relation "tap_u" is not encrypted',
	'sealing needs an encrypted table');
SELECT is((SELECT ok FROM rustydb.verify_encryption('tap_u') WHERE "check" = 'encrypted'), false,
	'verify_encryption reports an unencrypted table');
SELECT cmp_ok((SELECT min(mb_per_s) FROM rustydb.tde_cipher_bench(128, 100)), '>', 0::float8,
	'the cipher benchmark runs');
SELECT is((SELECT count(DISTINCT operation)::int FROM rustydb.tde_cipher_bench(64, 10)), 2,
	'it measures seal and open');

SELECT * FROM finish();
ROLLBACK;
