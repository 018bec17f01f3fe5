-- Transparent data encryption: keys, the encrypted option, seal/open
-- through the API the table access method uses (via the superuser
-- self-test functions), rotation, verification and failure paths.
-- The server's key provider is a test key_command (test/regress.conf).
CREATE EXTENSION IF NOT EXISTS rustydb;
-- Until the rustydb table access method exists, stand in for it with an
-- access method of that name backed by heap: the key management does not
-- depend on the storage format. (A no-op once the real one is installed.)
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_am WHERE amname = 'rustydb') THEN
		CREATE ACCESS METHOD rustydb TYPE TABLE HANDLER heap_tableam_handler;
	END IF;
END $$;
SET client_min_messages = warning;

-- settings of the subsystem
SELECT name, type, default_value, min, max, context
FROM rustydb.settings
WHERE name IN ('rustydb.keyring_file', 'rustydb.key_command', 'rustydb.encrypt_new_tables',
               'rustydb.plaintext_index_action', 'rustydb.cipher_cache_size')
ORDER BY name;
SELECT provider, length(master_key_id) AS id_len FROM rustydb.master_key_info();

-- the encrypted option
CREATE TABLE tde_a (id int, v text) USING rustydb WITH (encrypted = true);
CREATE TABLE tde_plain (id int) USING rustydb;
CREATE TABLE tde_off (id int) USING rustydb WITH (encrypted = false, fillfactor = 70);
SELECT "table", encrypted, key_version, key_versions,
       cipher IN ('aes-256-gcm', 'xchacha20-poly1305') AS cipher_ok,
       length(key_id) AS key_id_len, length(master_key_id) AS mk_len,
       created = last_rotated AS never_rotated
FROM rustydb.encryption_status WHERE "table"::text LIKE 'tde_%' ORDER BY "table"::text;
-- the option is taken out of the statement and stored as encrypted=true (for pg_dump); other options are kept
SELECT relname, reloptions FROM pg_class WHERE relname IN ('tde_a', 'tde_off') ORDER BY 1;
-- only rustydb tables can be encrypted
CREATE TABLE tde_heap (id int) WITH (encrypted = true);
CREATE TABLE tde_heap2 (id int) USING heap WITH (encrypted);
CREATE TABLE tde_part (id int) PARTITION BY RANGE (id) WITH (encrypted = true);
CREATE TABLE tde_bad (id int) USING rustydb WITH (encrypted = 'maybe');
ALTER TABLE tde_a SET (encrypted = false);
ALTER TABLE tde_a RESET (encrypted);
-- CREATE TABLE AS and materialized views
CREATE TABLE tde_ctas USING rustydb WITH (encrypted) AS SELECT 1 AS x;
CREATE MATERIALIZED VIEW tde_mv USING rustydb WITH (encrypted = on) AS SELECT 1 AS x;
SELECT "table", encrypted FROM rustydb.encryption_status
WHERE "table"::text IN ('tde_ctas', 'tde_mv') ORDER BY "table"::text;
-- rustydb.encrypt_new_tables, and an explicit false overrides it
SET rustydb.encrypt_new_tables = on;
CREATE TABLE tde_auto (id int) USING rustydb;
CREATE TABLE tde_auto_off (id int) USING rustydb WITH (encrypted = false);
CREATE TABLE tde_auto_heap (id int) USING heap;
RESET rustydb.encrypt_new_tables;
SELECT "table", encrypted FROM rustydb.encryption_status
WHERE "table"::text LIKE 'tde_auto%' ORDER BY "table"::text;

-- indexes on encrypted tables store plaintext keys
SET client_min_messages = notice;
CREATE INDEX tde_a_id ON tde_a (id);
CREATE INDEX tde_plain_id ON tde_plain (id);
SET rustydb.plaintext_index_action = error;
CREATE INDEX tde_a_v ON tde_a (v);
ALTER TABLE tde_a ADD PRIMARY KEY (id);
RESET rustydb.plaintext_index_action;
SET client_min_messages = warning;

-- seal and open
CREATE TABLE sealed AS
	SELECT rustydb.tde_seal('tde_a', 'marker-0001'::bytea, 'ctx') AS s1,
	       rustydb.tde_seal('tde_a', 'marker-0001'::bytea, 'ctx') AS s2,
	       rustydb.tde_seal('tde_a', ''::bytea) AS empty,
	       rustydb.tde_seal('tde_a', convert_to(repeat('x', 100000), 'UTF8')) AS big;
SELECT length(s1) AS sealed_len, length(s1) - length('marker-0001'::bytea) AS overhead,
       s1 <> s2 AS nonces_differ,
       position('marker'::bytea IN s1) = 0 AS no_plaintext,
       get_byte(s1, 2) + 256 * get_byte(s1, 3) AS key_version,
       length(empty) AS empty_len
FROM sealed;
SELECT convert_from(rustydb.tde_open('tde_a', s1, 'ctx'), 'UTF8') AS opened,
       convert_from(rustydb.tde_open('tde_a', s2, 'ctx'), 'UTF8') AS opened2,
       length(rustydb.tde_open('tde_a', empty)) AS empty_opened,
       rustydb.tde_open('tde_a', big) = convert_to(repeat('x', 100000), 'UTF8') AS big_ok
FROM sealed;
-- counters in one session are consecutive, sessions are shared
SELECT substr(s1, 5, 12) = substr(s2, 5, 12) AS same_session,
       get_byte(s2, 16) - get_byte(s1, 16) AS counter_step
FROM sealed;
-- tampering: every region of the sealed bytes, the associated data, length
SELECT rustydb.tde_open('tde_a', set_byte(s1, 0, get_byte(s1, 0) # 1), 'ctx', 3) FROM sealed;
SELECT rustydb.tde_open('tde_a', set_byte(s1, 1, 1), 'ctx', 3) FROM sealed;
SELECT rustydb.tde_open('tde_a', set_byte(s1, 1, 7), 'ctx', 3) FROM sealed;
SELECT rustydb.tde_open('tde_a', set_byte(s1, 2, get_byte(s1, 2) # 4), 'ctx', 3) FROM sealed;
SELECT rustydb.tde_open('tde_a', set_byte(s1, 8, get_byte(s1, 8) # 1), 'ctx', 3) FROM sealed;
SELECT rustydb.tde_open('tde_a', set_byte(s1, 17, get_byte(s1, 17) # 1), 'ctx', 3) FROM sealed;
SELECT rustydb.tde_open('tde_a', set_byte(s1, 22, get_byte(s1, 22) # 1), 'ctx', 3) FROM sealed;
SELECT rustydb.tde_open('tde_a', set_byte(s1, length(s1) - 1, get_byte(s1, length(s1) - 1) # 128), 'ctx', 3) FROM sealed;
SELECT rustydb.tde_open('tde_a', s1, 'other', 12) FROM sealed;
SELECT rustydb.tde_open('tde_a', substr(s1, 1, 30), 'ctx', 5) FROM sealed;
SELECT rustydb.tde_open('tde_a', substr(s1, 1, length(s1) - 1), 'ctx') FROM sealed;
-- whole tuples (heap layout), as the table access method seals them: the
-- header stays, the payload is sealed, the fields that decide how it
-- decodes are authenticated, those that change later (xmax, hints) are not
SELECT plain_len, sealed_len - plain_len AS overhead, round_trip, slot_round_trip,
       position('secret-name'::bytea IN sealed) = 0 AS payload_hidden,
       null_bitmap_tamper_detected, header_tamper_detected, payload_tamper_detected,
       mutable_fields_ignored
FROM rustydb.tde_tuple_selftest('tde_a', ROW(42, 'secret-name'::text, NULL::int, 3.5::float8, NULL::text));
SELECT plain_len, sealed_len - plain_len AS overhead, round_trip, slot_round_trip,
       position('secret-name'::bytea IN sealed) = 0 AS payload_hidden,
       null_bitmap_tamper_detected, header_tamper_detected, payload_tamper_detected,
       mutable_fields_ignored
FROM rustydb.tde_tuple_selftest('tde_a', ROW(repeat('secret-name', 300), 7::bigint, true));
-- another table's key does not open it
SELECT rustydb.tde_open('tde_ctas', s1, 'ctx', 0) FROM sealed;
SELECT rustydb.tde_seal('tde_plain', 'x');
SELECT rustydb.tde_seal('tde_a', 'x', convert_to(repeat('a', 1025), 'UTF8'));

-- verification
SELECT "check", ok, regexp_replace(detail, 'aes-256-gcm|xchacha20-poly1305', 'cipher') AS detail
FROM rustydb.verify_encryption('tde_a');
SELECT * FROM rustydb.verify_encryption('tde_plain');

-- table key rotation: a new key version; the table is rewritten so that
-- every stored payload is sealed under it, and the older version is deleted
INSERT INTO tde_a SELECT i, 'rotate ' || i FROM generate_series(1, 200) i;
UPDATE tde_a SET v = v || ' updated' WHERE id % 4 = 0;
SELECT relfilenode AS before_rotation FROM pg_class WHERE relname = 'tde_a' \gset
SET client_min_messages = notice;
SELECT rustydb.rotate_table_key('tde_a');
SET client_min_messages = warning;
SELECT relfilenode <> :before_rotation AS rewritten FROM pg_class WHERE relname = 'tde_a';
SELECT count(*), sum(id), count(*) FILTER (WHERE v LIKE '% updated') AS updated FROM tde_a;
SELECT key_version, is_current FROM rustydb.table_keys WHERE relid = 'tde_a'::regclass ORDER BY 1;
SELECT "check", ok, detail FROM rustydb.verify_encryption('tde_a') WHERE "check" = 'stored payloads open';
SELECT id, v FROM tde_a WHERE id IN (3, 4) ORDER BY id;
-- bytes sealed under the deleted version no longer open; new ones use version 2
SELECT convert_from(rustydb.tde_open('tde_a', s1, 'ctx'), 'UTF8') AS old_payload FROM sealed;
UPDATE sealed SET s1 = rustydb.tde_seal('tde_a', 'marker-0001'::bytea, 'ctx');
SELECT get_byte(rustydb.tde_seal('tde_a', 'y'), 2) AS new_version;
-- a rotation that rolls back leaves the old storage and key version in use
BEGIN;
SELECT rustydb.rotate_table_key('tde_a');
ROLLBACK;
SELECT key_version, is_current FROM rustydb.table_keys WHERE relid = 'tde_a'::regclass ORDER BY 1;
SELECT count(*) FROM tde_a;
-- a table this transaction is reading cannot be rewritten
BEGIN;
DECLARE c CURSOR FOR SELECT * FROM tde_a;
FETCH 1 FROM c;
SELECT rustydb.rotate_table_key('tde_a');
ROLLBACK;
TRUNCATE tde_a;
-- its TOAST table got the same new version
SELECT t.key_version, t.key_id = k.key_id AS same_key, t.is_current
FROM pg_class c
JOIN rustydb.table_keys k ON k.relid = c.oid
JOIN rustydb.table_keys t ON t.relid = c.reltoastrelid AND t.key_version = k.key_version
WHERE c.relname = 'tde_a' ORDER BY 1;
-- the payload verifier opens every stored version and sealed large value,
-- including large values, after a rotation rewrote them under version 2
CREATE TABLE tde_v (id int, v text, big text) USING rustydb WITH (encrypted = true);
ALTER TABLE tde_v ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO tde_v SELECT i, 'row ' || i, CASE WHEN i % 25 = 0 THEN repeat(md5(i::text), 200) END
FROM generate_series(1, 300) i;
INSERT INTO tde_v VALUES (0, repeat('inline', 10), repeat('z', 500));
SELECT rustydb.rotate_table_key('tde_v');
UPDATE tde_v SET v = v || ' updated' WHERE id % 10 = 0;
DELETE FROM tde_v WHERE id % 7 = 0;
BEGIN;
INSERT INTO tde_v VALUES (1000, 'aborted', repeat(md5('a'), 100));
ROLLBACK;
INSERT INTO tde_v SELECT i, 'after rotation', repeat(md5(i::text), 100) FROM generate_series(301, 310) i;
SELECT "check", ok, detail ~ '^[0-9]+ payloads and [0-9]+ large values checked, 0 failed' AS counted,
       substring(detail from '^([0-9]+) payloads')::int >= 311 AS every_version,
       substring(detail from 'and ([0-9]+) large')::int >= 21 AS every_value
FROM rustydb.verify_encryption('tde_v') WHERE "check" = 'stored payloads open';
SELECT key_version FROM rustydb.table_keys WHERE relid = 'tde_v'::regclass;
SELECT count(*), sum(length(big)) FROM tde_v;
DROP TABLE tde_v;
SELECT key_version, key_versions, last_rotated >= created AS rotated
FROM rustydb.encryption_status WHERE "table" = 'tde_a'::regclass;
SELECT rustydb.rotate_table_key('tde_plain');
-- master key rotation with a key command re-wraps under the command's key:
-- every key is already wrapped by it
SELECT rustydb.rotate_master_key();
SELECT convert_from(rustydb.tde_open('tde_a', s1, 'ctx'), 'UTF8') AS after_master FROM sealed;

-- rewrites keep the table's keys; the transient relation leaves nothing behind
VACUUM FULL tde_a;
CLUSTER tde_a USING tde_a_id;
ALTER TABLE tde_a ALTER COLUMN id TYPE bigint;
REFRESH MATERIALIZED VIEW tde_mv;
-- a materialized view rotates the same way (rewritten, one version left);
-- an unpopulated one has nothing to rewrite
SELECT rustydb.rotate_table_key('tde_mv');
SELECT key_version, is_current FROM rustydb.table_keys WHERE relid = 'tde_mv'::regclass;
SELECT x FROM tde_mv;
REFRESH MATERIALIZED VIEW tde_mv WITH NO DATA;
SELECT rustydb.rotate_table_key('tde_mv');
SELECT key_version, is_current FROM rustydb.table_keys WHERE relid = 'tde_mv'::regclass;
REFRESH MATERIALIZED VIEW tde_mv;
TRUNCATE tde_a;
SELECT convert_from(rustydb.tde_open('tde_a', s1, 'ctx'), 'UTF8') AS after_rewrites FROM sealed;
SELECT count(*) AS orphan_keys FROM rustydb.table_keys WHERE relid NOT IN (SELECT oid FROM pg_class);
-- the TOAST table of an encrypted table shares its data keys (same key ids)
SELECT t.key_version, t.key_id = k.key_id AS same_key, t.is_current
FROM pg_class c
JOIN rustydb.table_keys k ON k.relid = c.oid
JOIN rustydb.table_keys t ON t.relid = c.reltoastrelid AND t.key_version = k.key_version
WHERE c.relname = 'tde_a' ORDER BY 1;
SELECT count(*) AS toast_keys_of_unencrypted FROM rustydb.table_keys k
JOIN pg_class c ON c.reltoastrelid = k.relid WHERE c.relname IN ('tde_plain', 'tde_off');

-- a damaged wrapped key: clear error naming the relation, others unaffected
UPDATE rustydb.table_keys SET wrapped_key = set_byte(wrapped_key, 30, get_byte(wrapped_key, 30) # 1)
WHERE relid = 'tde_ctas'::regclass;
-- (this backend still holds the key it unwrapped before; a new one cannot)
\c -
SET client_min_messages = warning;
SELECT rustydb.tde_seal('tde_ctas', 'x');
SELECT "check", ok FROM rustydb.verify_encryption('tde_ctas');
SELECT length(rustydb.tde_seal('tde_auto', 'still works')) AS other_table;
SELECT count(*) FROM tde_plain;

-- more encrypted tables in one statement than the backend's cipher cache
-- holds: entries are evicted and unwrapped again, pointers stay valid
SET rustydb.cipher_cache_size = 16;
DO $$ BEGIN FOR i IN 1..24 LOOP
	EXECUTE format('CREATE TABLE tde_many_%s (id int) USING rustydb WITH (encrypted)', i);
END LOOP; END $$;
SELECT count(*) AS opened
FROM (SELECT c.oid::regclass AS r, rustydb.tde_seal(c.oid::regclass, convert_to(c.relname, 'UTF8')) AS s
      FROM pg_class c WHERE c.relname LIKE 'tde\_many\_%') x,
     generate_series(1, 3) g
WHERE convert_from(rustydb.tde_open(r, s), 'UTF8') = r::text;
RESET rustydb.cipher_cache_size;
DO $$ BEGIN FOR i IN 1..24 LOOP EXECUTE format('DROP TABLE tde_many_%s', i); END LOOP; END $$;

-- temporary tables, and tables whose creation rolls back, leave no keys
CREATE TEMP TABLE tde_tmp (a int) USING rustydb WITH (encrypted);
SELECT count(*) AS temp_keys FROM rustydb.table_keys WHERE relid = 'tde_tmp'::regclass;
DISCARD TEMP;
BEGIN;
CREATE TABLE tde_rolled_back (a int) USING rustydb WITH (encrypted);
SAVEPOINT s;
CREATE TABLE tde_rolled_back2 (a int) USING rustydb WITH (encrypted);
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS keys_in_xact FROM rustydb.table_keys WHERE relid = 'tde_rolled_back'::regclass;
ROLLBACK;
SELECT count(*) AS orphan_keys FROM rustydb.table_keys WHERE relid NOT IN (SELECT oid FROM pg_class);

-- privileges
CREATE ROLE regress_tde_user;
CREATE SCHEMA regress_tde AUTHORIZATION regress_tde_user;
SET ROLE regress_tde_user;
SELECT rustydb.tde_seal('tde_a', 'x');
SELECT rustydb.rotate_master_key();
SELECT rustydb.rotate_table_key('tde_a');
SELECT * FROM rustydb.verify_encryption('tde_a');
SELECT count(*) FROM rustydb.table_keys;
SELECT count(*) >= 0 AS status_readable FROM rustydb.encryption_status;
-- an ordinary user can create encrypted tables and rotate their keys
CREATE TABLE regress_tde.users (id int) USING rustydb WITH (encrypted);
SET client_min_messages = notice;
SELECT rustydb.rotate_table_key('regress_tde.users');
SET client_min_messages = warning;
SELECT "check", ok FROM rustydb.verify_encryption('regress_tde.users');
RESET ROLE;
SELECT "table", encrypted, key_version FROM rustydb.encryption_status WHERE "table" = 'regress_tde.users'::regclass;

-- plaintext paths (docs/tde.md): statistics, derived tables, the option in reloptions
INSERT INTO tde_a SELECT i, 'v' || (i % 3) FROM generate_series(1, 300) i;
ANALYZE tde_a;
SELECT reltuples >= 300 AS rows_counted,
       (SELECT count(*) FROM pg_stats WHERE tablename = 'tde_a'
        AND (most_common_vals IS NOT NULL OR histogram_bounds IS NOT NULL)) AS column_values
FROM pg_class WHERE relname = 'tde_a';
SET rustydb.tde_statistics = full;
ANALYZE tde_a;
SELECT count(*) > 0 AS full_stats FROM pg_stats WHERE tablename = 'tde_a';
RESET rustydb.tde_statistics;
ANALYZE tde_a;
SELECT count(*) AS values_deleted_by_next_analyze FROM pg_stats WHERE tablename = 'tde_a'
AND (most_common_vals IS NOT NULL OR histogram_bounds IS NOT NULL);
SET client_min_messages = notice;
CREATE TABLE tde_d1 AS SELECT * FROM tde_a WHERE id < 10;
CREATE TABLE tde_d2 USING heap AS SELECT * FROM (SELECT * FROM tde_a) s WHERE id < 0;
SET rustydb.plaintext_derived_action = error;
CREATE TABLE tde_d3 USING heap AS SELECT * FROM tde_a;
RESET rustydb.plaintext_derived_action;
SET client_min_messages = warning;
SELECT c.relname, c.relam = (SELECT oid FROM pg_am WHERE amname = 'rustydb') AS rustydb,
       s.encrypted IS TRUE AS encrypted, c.reloptions
FROM pg_class c LEFT JOIN rustydb.encryption_status s ON s."table" = c.oid
WHERE c.relname LIKE 'tde\_d_' ORDER BY 1;
ALTER TABLE tde_d1 SET (fillfactor = 50, autovacuum_enabled = off);
ALTER TABLE tde_d1 RESET (fillfactor);
SELECT reloptions FROM pg_class WHERE relname = 'tde_d1';
DROP TABLE tde_d1, tde_d2;

-- dropping removes the keys
DROP SCHEMA regress_tde CASCADE;
DROP MATERIALIZED VIEW tde_mv;
DROP TABLE tde_a, tde_plain, tde_off, tde_ctas, tde_auto, tde_auto_off, tde_auto_heap;
SELECT count(*) AS keys_left FROM rustydb.table_keys;
DROP ROLE regress_tde_user;
DROP TABLE sealed;
-- remove the stand-in access method (never the real one)
DO $$
BEGIN
	IF EXISTS (SELECT FROM pg_am WHERE amname = 'rustydb' AND amhandler = 'heap_tableam_handler'::regproc) THEN
		DROP ACCESS METHOD rustydb;
	END IF;
END $$;
