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
-- relation in pg_toast, access method rustydb_undo, owned by the bootstrap
-- superuser, with no catalog dependency (rustydb drops it with the table)
CREATE SCHEMA am_undo;
SET search_path = am_undo;
CREATE TABLE u (id int PRIMARY KEY, n int, pad text) USING rustydb;
SELECT c.relname = 'rustydb_undo_' || 'u'::regclass::oid AS named_after_oid, n.nspname,
	c.relkind, c.relpersistence, a.amname, pg_relation_size(c.oid) AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam
WHERE c.oid = rustydb.undo_relation('u');
SELECT relowner = 10 AS bootstrap_owner, reltablespace = 0 AS default_tablespace,
	(SELECT count(*) FROM pg_depend WHERE objid = c.oid OR refobjid = c.oid) AS dependencies,
	(SELECT count(*) FROM pg_shdepend WHERE objid = c.oid) AS shared_dependencies
FROM pg_class c WHERE oid = rustydb.undo_relation('u');

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

-- the store's metapage and ring: written on first use, bounded by
-- rustydb.undo_max_size (fixed when the metapage is written), recycled in
-- order. rustydb.selftest_undo_pages starts empty insert pages, as the
-- in-place path will when a record does not fit.
CREATE EXTENSION pg_walinspect SCHEMA am_undo;
CREATE TABLE s (a int) USING rustydb;
SELECT * FROM rustydb.undo_store('s');
SET rustydb.undo_max_size = '1MB';
CREATE TABLE lsn (name text, l pg_lsn);
INSERT INTO lsn VALUES ('start', pg_current_wal_insert_lsn());
SELECT rustydb.selftest_undo_pages('s', 3) AS started;
INSERT INTO lsn VALUES ('started', pg_current_wal_insert_lsn());
SELECT record_type, regexp_replace(description, 'table [0-9]+', 'table N') AS description,
	block_ref ~ 'blkref #1' AS two_blocks
FROM pg_get_wal_records_info((SELECT l FROM lsn WHERE name = 'start'),
	(SELECT l FROM lsn WHERE name = 'started'))
WHERE resource_manager = 'rustydb' ORDER BY start_lsn;
SELECT present, encrypted, capacity, pages_in_use, base, insert, discard, file_blocks
FROM rustydb.undo_store('s');
-- pages without records: every one but the insert page can go
SELECT rustydb.undo_discard('s') AS recycled;
INSERT INTO lsn VALUES ('recycled', pg_current_wal_insert_lsn());
SELECT record_type, description
FROM pg_get_wal_records_info((SELECT l FROM lsn WHERE name = 'started'),
	(SELECT l FROM lsn WHERE name = 'recycled'))
WHERE resource_manager = 'rustydb' ORDER BY start_lsn;
SELECT pages_in_use, insert, discard FROM rustydb.undo_store('s');
-- the ring holds 128 pages (1 MB): full, it starts no page; recycled, it
-- wraps around without growing the file
SELECT rustydb.selftest_undo_pages('s', 500) AS started;
SELECT pages_in_use, file_blocks FROM rustydb.undo_store('s');
SELECT rustydb.selftest_undo_pages('s', 1) AS started_when_full;
SELECT rustydb.undo_discard('s') AS recycled;
SELECT rustydb.selftest_undo_pages('s', 500) AS started_after_wrap;
SELECT pages_in_use, file_blocks, insert / 8192 AS insert_page, discard / 8192 AS discard_page
FROM rustydb.undo_store('s');
-- the setting applies to stores written from now on; 0 starts none
SET rustydb.undo_max_size = 0;
CREATE TABLE s0 (a int) USING rustydb;
SELECT rustydb.selftest_undo_pages('s0', 1) AS started_disabled;
SELECT present, file_blocks FROM rustydb.undo_store('s0');
SELECT rustydb.selftest_undo_pages('s', 1) AS started_full_existing;
RESET rustydb.undo_max_size;
SELECT present, file_blocks FROM rustydb.undo_store('h');
SELECT * FROM rustydb.undo_store('pg_class');
SET ROLE am_undo_other;
SELECT rustydb.undo_discard('s');
SELECT rustydb.selftest_undo_pages('s', 1);
RESET ROLE;

-- rustydb.undo_stats: one row per rustydb table with a store (or with
-- counters): the store's capacity, use and positions from its metapage
-- (NULL before the metapage is written), the in-place counters since
-- server start. The counters' shared memory is in rustydb.memory.
SELECT name, kind, "limit", limit_setting FROM rustydb.memory WHERE name = 'rustydb undo stats';
CREATE TABLE st (a int) USING rustydb;
CREATE TABLE st2 (a int) USING heap;
CREATE VIEW stv AS SELECT relid, capacity_bytes, used_bytes, insert_position / 8192 AS insert_page,
	discard_position / 8192 AS discard_page, pages_discarded
FROM rustydb.undo_stats WHERE relid::text IN ('st', 's', 'st2')
	AND relid IS NOT NULL;
SELECT * FROM stv ORDER BY relid::text;
SELECT relid, inplace_updates, fallback_undo_full, fallback_indexed, fallback_toast,
	fallback_too_large, fallback_shrinks, fallback_no_space, fallback_no_store,
	fallback_disabled, fallback_new_file, repairs, pages_discarded
FROM rustydb.undo_stats WHERE relid = 'st'::regclass;
SELECT rustydb.selftest_undo_pages('st', 4) AS started;
SELECT * FROM stv ORDER BY relid::text;
-- rustydb.set_undo_size changes only an empty store: these pages are in use
SELECT rustydb.set_undo_size('st', 2);
-- VACUUM recycles the undo no snapshot needs (counted in pages_discarded);
-- the store, empty then, restarts its ring at block 1 and its file goes
-- back to the metapage
INSERT INTO lsn VALUES ('before vacuum', pg_current_wal_insert_lsn());
VACUUM st;
INSERT INTO lsn VALUES ('vacuumed', pg_current_wal_insert_lsn());
SELECT resource_manager, record_type,
	CASE WHEN resource_manager = 'rustydb' THEN regexp_replace(description, 'table [0-9]+', 'table N') END AS description
FROM pg_get_wal_records_info((SELECT l FROM lsn WHERE name = 'before vacuum'),
	(SELECT l FROM lsn WHERE name = 'vacuumed'))
WHERE resource_manager = 'rustydb' OR (resource_manager = 'Storage' AND record_type = 'TRUNCATE')
ORDER BY start_lsn;
SELECT * FROM stv ORDER BY relid::text;
SELECT capacity, pages_in_use, base / 8192 AS base_page, insert, discard / 8192 AS discard_page, file_blocks
FROM rustydb.undo_store('st');
-- empty now: resized (UNDO META), the ring restarting where the next page would have been
INSERT INTO lsn VALUES ('before resize', pg_current_wal_insert_lsn());
SELECT rustydb.set_undo_size('st', 2);
INSERT INTO lsn VALUES ('resized', pg_current_wal_insert_lsn());
SELECT record_type, regexp_replace(description, 'table [0-9]+', 'table N') AS description
FROM pg_get_wal_records_info((SELECT l FROM lsn WHERE name = 'before resize'),
	(SELECT l FROM lsn WHERE name = 'resized'))
WHERE resource_manager = 'rustydb' ORDER BY start_lsn;
SELECT capacity, pages_in_use, base / 8192 AS base_page, file_blocks FROM rustydb.undo_store('st');
SELECT rustydb.selftest_undo_pages('st', 1000) AS started_in_2mb;
SELECT * FROM stv ORDER BY relid::text;
-- VACUUM of the store itself does the same (autovacuum does not visit
-- stores: nothing reports dead rows for them; VACUUM of the table does it)
\set ECHO none
SELECT format('VACUUM %s', rustydb.undo_relation('st')) \gexec
\set ECHO all
SELECT * FROM stv ORDER BY relid::text;
SELECT capacity, pages_in_use, base / 8192 AS base_page, file_blocks FROM rustydb.undo_store('st');
SELECT rustydb.set_undo_size('st', 1);
SELECT capacity, pages_in_use, file_blocks FROM rustydb.undo_store('st');
-- VACUUM (TRUNCATE false) recycles and keeps the file
SELECT rustydb.selftest_undo_pages('st', 3) AS started;
VACUUM (TRUNCATE false) st;
SELECT pages_in_use, file_blocks FROM rustydb.undo_store('st');
-- a store without a metapage gets one of that size; a heap table has none
CREATE TABLE st3 (a int) USING rustydb;
SELECT rustydb.set_undo_size('st3', 3);
SELECT present, capacity, pages_in_use, file_blocks FROM rustydb.undo_store('st3');
SELECT rustydb.set_undo_size('st2', 3);
SELECT rustydb.set_undo_size('st3', 0);
SELECT rustydb.set_undo_size('st3', 1048577);
-- the table's owner resizes; everyone reads the view; a superuser resets it
SET ROLE am_undo_other;
SELECT rustydb.set_undo_size('st', 1);
SELECT count(*) > 0 AS readable FROM rustydb.undo_stats WHERE relid = 'st'::regclass;
SELECT rustydb.reset_undo_stats();
RESET ROLE;
SELECT rustydb.reset_undo_stats('st');
SELECT * FROM stv ORDER BY relid::text;
DROP VIEW stv;
-- a dropped table's counters go with it
SELECT entries AS entries_before FROM rustydb.memory WHERE name = 'rustydb undo stats' \gset
DROP TABLE s;
SELECT :entries_before - entries AS entries_freed FROM rustydb.memory WHERE name = 'rustydb undo stats';
SELECT rustydb.reset_undo_stats();
SELECT entries FROM rustydb.memory WHERE name = 'rustydb undo stats';
DROP TABLE st, st2, st3;

-- a table converted to heap keeps its store until it is dropped
CREATE TABLE conv (a int) USING rustydb;
SELECT rustydb.undo_relation('conv') AS conv_store \gset
ALTER TABLE conv SET ACCESS METHOD heap;
SELECT to_regclass(:'conv_store') IS NOT NULL AS kept;
DROP TABLE conv;
SELECT to_regclass(:'conv_store') IS NULL AS dropped_with_table;
-- event triggers do not see stores go (an internal deletion)
CREATE FUNCTION am_undo_dropped() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
	FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
		RAISE NOTICE 'dropped % %', r.object_type, regexp_replace(r.object_identity, '[0-9]+', 'N');
	END LOOP;
END $$;
CREATE EVENT TRIGGER am_undo_drop ON sql_drop EXECUTE FUNCTION am_undo_dropped();
CREATE TABLE ev (a int) USING rustydb;
DROP TABLE ev;
DROP EVENT TRIGGER am_undo_drop;
DROP FUNCTION am_undo_dropped();

-- dropped with its table
DROP TABLE u;
SELECT to_regclass(:'store') IS NULL AS store_dropped;
SET client_min_messages = warning;
DROP SCHEMA am_undo CASCADE;
RESET client_min_messages;
DROP ROLE am_undo_other;
-- no store outlived its table
SELECT count(*) AS orphan_stores FROM pg_class c
WHERE c.relam = (SELECT oid FROM pg_am WHERE amname = 'rustydb_undo')
	AND NOT EXISTS (SELECT 1 FROM pg_class t WHERE t.oid = substr(c.relname, 14)::oid);

-- DROP EXTENSION rustydb CASCADE takes the tables and their stores along
-- (the stores first, while their access method can still open them)
SELECT current_database() AS regress_db \gset
CREATE DATABASE am_undo_drop_ext;
\c am_undo_drop_ext
SET client_min_messages = warning;
CREATE EXTENSION rustydb;
CREATE TABLE t1 (a int) USING rustydb;
CREATE TEMP TABLE t2 (a int) USING rustydb;
SELECT rustydb.selftest_undo_pages('t1', 2) AS started;
SELECT count(*) AS stores FROM pg_class WHERE relname LIKE 'rustydb\_undo\_%';
DROP EXTENSION rustydb CASCADE;
SELECT count(*) AS stores_left FROM pg_class WHERE relname LIKE 'rustydb\_undo\_%';
SELECT count(*) AS tables_left FROM pg_class WHERE relname IN ('t1', 't2');
-- counters of a dropped database go with it
CREATE EXTENSION rustydb;
CREATE TABLE t3 (a int) USING rustydb;
SELECT rustydb.selftest_undo_pages('t3', 3) AS started;
SELECT rustydb.undo_discard('t3') AS recycled;
SELECT count(*) AS entries FROM rustydb.undo_stats WHERE pages_discarded > 0;
\c :regress_db
DROP DATABASE am_undo_drop_ext;
SELECT entries FROM rustydb.memory WHERE name = 'rustydb undo stats';
