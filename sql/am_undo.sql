--
-- The undo store of in-place updates (docs/storage.md, "In-place updates
-- and undo"; in progress): its page, record and tuple-extension formats,
-- checked in memory by rustydb.selftest_undo().
--
CREATE EXTENSION IF NOT EXISTS rustydb;

-- every check passes (the first failure would be an ERROR naming it); the
-- count shows that none was skipped
SELECT rustydb.selftest_undo() AS checks_passed;

-- a superuser diagnostic
CREATE ROLE am_undo_user;
SET ROLE am_undo_user;
SELECT rustydb.selftest_undo();
RESET ROLE;
DROP ROLE am_undo_user;

-- every rustydb table gets its undo store when it is created: a companion
-- relation in pg_toast, access method rustydb_undo, internal dependency
CREATE SCHEMA am_undo;
SET search_path = am_undo;
CREATE TABLE u (id int PRIMARY KEY, n int, pad text) USING rustydb;
SELECT c.relname = 'rustydb_undo_' || 'u'::regclass::oid AS named_after_oid, n.nspname,
	c.relkind, c.relpersistence, a.amname, pg_relation_size(c.oid) AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam
WHERE c.oid = rustydb.undo_relation('u');
SELECT deptype FROM pg_depend
WHERE classid = 'pg_class'::regclass AND objid = rustydb.undo_relation('u')
	AND refobjid = 'u'::regclass;

-- it has no rows of its own: reading or writing it is refused
INSERT INTO u SELECT g, g, 'x' FROM generate_series(1, 10) g;
DO $$
DECLARE
	q text;
BEGIN
	FOREACH q IN ARRAY ARRAY['SELECT * FROM %s', 'DELETE FROM %s', 'SELECT ctid FROM %s WHERE ctid = ''(0,1)''']
	LOOP
		BEGIN
			EXECUTE format(q, rustydb.undo_relation('u'));
		EXCEPTION WHEN wrong_object_type THEN
			RAISE NOTICE '%: %', split_part(q, ' ', 1), regexp_replace(SQLERRM, '[0-9]+', 'N');
		END;
	END LOOP;
END $$;

-- the store belongs to the table (its OID), not to its files: TRUNCATE,
-- VACUUM FULL and CLUSTER keep it
SELECT rustydb.undo_relation('u') AS store \gset
TRUNCATE u;
VACUUM FULL u;
CLUSTER u USING u_pkey;
SELECT rustydb.undo_relation('u') = :'store'::regclass AS same_store;
-- VACUUM and VACUUM FULL of the store itself run (nothing to do yet; VACUUM
-- FULL copies its pages as they are)
\set ECHO none
SELECT format('VACUUM %s', :'store') \gexec
SELECT format('VACUUM FULL %s', :'store') \gexec
\set ECHO all

-- temporary and unlogged tables: a store of the same persistence
CREATE TEMP TABLE tt (a int) USING rustydb;
SELECT rustydb.undo_relation('tt')::text ~ '^pg_toast_temp_' AS temp_namespace, relpersistence
FROM pg_class WHERE oid = rustydb.undo_relation('tt');
CREATE UNLOGGED TABLE ul (a int) USING rustydb;
SELECT relpersistence FROM pg_class WHERE oid = rustydb.undo_relation('ul');

-- partitions have one, partitioned tables (no storage) none; CREATE TABLE AS too
CREATE TABLE p (a int) PARTITION BY RANGE (a);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10) USING rustydb;
CREATE TABLE ctas USING rustydb AS SELECT 1 AS a;
SELECT rustydb.undo_relation('p') IS NULL AS parent_none,
	rustydb.undo_relation('p1') IS NOT NULL AS partition_has,
	rustydb.undo_relation('ctas') IS NOT NULL AS ctas_has;

-- heap tables have none; a table converted by ALTER TABLE ... SET ACCESS
-- METHOD gets one from rustydb.create_undo (idempotent)
CREATE TABLE h (a int) USING heap;
SELECT rustydb.undo_relation('h') IS NULL AS heap_none;
SELECT rustydb.create_undo('h');
ALTER TABLE h SET ACCESS METHOD rustydb;
SELECT rustydb.undo_relation('h') IS NULL AS converted_none_yet;
SELECT rustydb.create_undo('h') = rustydb.undo_relation('h') AS created;
SELECT rustydb.create_undo('h') = rustydb.undo_relation('h') AS created_once;

-- only the table's owner creates it
CREATE ROLE am_undo_other;
GRANT USAGE ON SCHEMA am_undo TO am_undo_other;
SET ROLE am_undo_other;
SELECT rustydb.create_undo('u');
RESET ROLE;

-- dropped with its table
DROP TABLE u;
SELECT to_regclass(:'store') IS NULL AS store_dropped;
SET client_min_messages = warning;
DROP SCHEMA am_undo CASCADE;
RESET client_min_messages;
DROP ROLE am_undo_other;
SELECT count(*) AS orphan_stores FROM pg_class c
WHERE c.relam = (SELECT oid FROM pg_am WHERE amname = 'rustydb_undo')
	AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'i');
