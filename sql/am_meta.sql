--
-- The rustydb metapage (block 0 of the file) and data block numbers: rows
-- keep heap's ctids, an empty table has no block, the planner sees heap's
-- estimates, and VACUUM's truncation leaves no stale visibility-map bit.
--
CREATE EXTENSION IF NOT EXISTS rustydb;
CREATE SCHEMA am_meta;
CREATE EXTENSION pg_walinspect SCHEMA am_meta;
SET search_path = am_meta;

-- an empty table has no block at all, as in heap
CREATE TABLE m (id int PRIMARY KEY, pad text) USING rustydb WITH (autovacuum_enabled = off);
SELECT pg_relation_size('m') AS bytes, * FROM rustydb.metapage('m');
SELECT * FROM rustydb.verify_table('m');

-- the first row creates the metapage (one WAL record) and the first data page
CREATE TABLE lsn (name text, l pg_lsn);
INSERT INTO lsn VALUES ('before', pg_current_wal_insert_lsn());
INSERT INTO m VALUES (1, repeat('a', 1000));
INSERT INTO lsn VALUES ('after', pg_current_wal_insert_lsn());
SELECT record_type, description, block_ref ~ 'blk 0' AS block_0
FROM pg_get_wal_records_info((SELECT l FROM lsn WHERE name = 'before'), (SELECT l FROM lsn WHERE name = 'after'))
WHERE resource_manager = 'rustydb' ORDER BY start_lsn;
SELECT pg_relation_size('m') / 8192 AS blocks, * FROM rustydb.metapage('m');
SELECT ctid, id FROM m;

-- more data pages: ctids are those heap gives the same rows
INSERT INTO m SELECT g, repeat('a', 1000) FROM generate_series(2, 28) g;
CREATE TABLE h (id int PRIMARY KEY, pad text) USING heap WITH (autovacuum_enabled = off);
INSERT INTO h SELECT id, pad FROM m ORDER BY id;
SELECT count(*) AS rows, count(*) FILTER (WHERE m.ctid = h.ctid) AS same_ctid
FROM m JOIN h USING (id);
SELECT data_pages, pg_relation_size('m') / 8192 AS blocks, pg_relation_size('h') / 8192 AS heap_blocks
FROM rustydb.metapage('m');
SELECT count(*) FROM m WHERE ctid >= '(3,0)' AND ctid < '(4,0)';

-- statistics: the table's block count as PostgreSQL sees it
-- (RelationGetNumberOfBlocks, the access method's relation_size) is its
-- data pages, so relpages from VACUUM, ANALYZE and CREATE INDEX is heap's;
-- the planner's estimate is heap's for the same rows
VACUUM m;
VACUUM h;
SELECT (SELECT relpages FROM pg_class WHERE oid = 'm'::regclass) AS vacuum_relpages,
       (SELECT relpages FROM pg_class WHERE oid = 'h'::regclass) AS heap_relpages;
UPDATE pg_class SET relpages = 0 WHERE oid IN ('m'::regclass, 'h'::regclass);
ANALYZE m;
ANALYZE h;
SELECT (SELECT relpages FROM pg_class WHERE oid = 'm'::regclass) AS analyze_relpages,
       (SELECT relpages FROM pg_class WHERE oid = 'h'::regclass) AS heap_relpages;
UPDATE pg_class SET relpages = 0 WHERE oid IN ('m'::regclass, 'h'::regclass);
CREATE INDEX m_pad ON m (pad);
CREATE INDEX h_pad ON h (pad);
SELECT (SELECT relpages FROM pg_class WHERE oid = 'm'::regclass) AS create_index_relpages,
       (SELECT relpages FROM pg_class WHERE oid = 'h'::regclass) AS heap_relpages;
DROP INDEX m_pad, h_pad;
VACUUM ANALYZE m;
VACUUM ANALYZE h;
CREATE FUNCTION estimate(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO j;
	RETURN (j->0->'Plan'->>'Node Type') || ', cost ' || (j->0->'Plan'->>'Total Cost') ||
		', rows ' || (j->0->'Plan'->>'Plan Rows');
END $$;
SELECT estimate('SELECT * FROM m') = estimate('SELECT * FROM h') AS seq_scan_as_heap,
       estimate('SELECT * FROM m WHERE id < 10') = estimate('SELECT * FROM h WHERE id < 10') AS index_scan_as_heap;
SELECT estimate('SELECT * FROM m');

-- TABLESAMPLE, TID range scans and parallel workers address data blocks
SELECT count(*) FROM m TABLESAMPLE SYSTEM (100);
SELECT count(*) FROM m WHERE ctid > '(0,0)';
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM m;
SELECT count(*), sum(id) FROM m;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;

-- BRIN counts page ranges over the data blocks (RelationGetNumberOfBlocks):
-- no range stands for the metapage, so a fresh index leaves nothing to
-- summarize and a search for a missing value reads no page
CREATE TABLE b (id int) USING rustydb WITH (autovacuum_enabled = off);
INSERT INTO b SELECT g FROM generate_series(1, 2000) g;
CREATE INDEX b_brin ON b USING brin (id) WITH (pages_per_range = 1);
SELECT brin_summarize_new_values('b_brin') AS new_ranges;
SET enable_seqscan = off;
EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF, SUMMARY OFF) SELECT * FROM b WHERE id = 5000;
SELECT count(*) FROM b WHERE id BETWEEN 10 AND 1500;
RESET enable_seqscan;

-- VACUUM truncating the empty tail: the first data block it frees keeps no
-- all-visible bit (PostgreSQL shortens the visibility map by the file's
-- block count, one more than the data pages kept), so an index-only scan
-- over rows a rolled-back transaction put there must not return them
DELETE FROM m WHERE id > 7;
INSERT INTO lsn VALUES ('truncate', pg_current_wal_insert_lsn());
VACUUM m;
INSERT INTO lsn VALUES ('truncated', pg_current_wal_insert_lsn());
SELECT data_pages, pg_relation_size('m') / 8192 AS blocks FROM rustydb.metapage('m');
SELECT record_type, description
FROM pg_get_wal_records_info((SELECT l FROM lsn WHERE name = 'truncate'), (SELECT l FROM lsn WHERE name = 'truncated'))
WHERE resource_manager = 'rustydb' AND record_type = 'CLEAR_VISIBLE';
BEGIN;
INSERT INTO m SELECT g, repeat('b', 1000) FROM generate_series(100, 120) g;
ROLLBACK;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM m WHERE id >= 100;
SELECT count(*) FROM m WHERE id >= 100;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT * FROM rustydb.verify_table('m');

-- the last data page gone: the metapage goes too, and comes back with the next row
DELETE FROM m;
VACUUM m;
SELECT pg_relation_size('m') AS bytes, present, data_pages FROM rustydb.metapage('m');
INSERT INTO m VALUES (1, 'again');
SELECT ctid, id FROM m;
SELECT present, data_pages FROM rustydb.metapage('m');

-- TRUNCATE and rewrites start a new file with its own metapage
INSERT INTO m SELECT g, repeat('c', 1000) FROM generate_series(2, 20) g;
DELETE FROM m WHERE id % 2 = 0;
VACUUM FULL m;
SELECT data_pages, pg_relation_size('m') / 8192 AS blocks FROM rustydb.metapage('m');
SELECT * FROM rustydb.verify_table('m');
TRUNCATE m;
SELECT pg_relation_size('m') AS bytes, present FROM rustydb.metapage('m');

-- an encrypted table's metapage says so
CREATE TABLE e (a int, b text) USING rustydb WITH (encrypted = true);
INSERT INTO e VALUES (1, 'secret');
INSERT INTO m VALUES (1, 'plain');
SELECT present, encrypted FROM rustydb.metapage('e');
SELECT present, encrypted FROM rustydb.metapage('m');
SELECT * FROM rustydb.verify_table('e');
-- a rewrite of an encrypted table (a transient relation with the table's keys) keeps the flag
INSERT INTO e SELECT g, 'secret' FROM generate_series(2, 500) g;
VACUUM FULL e;
SELECT present, encrypted, data_pages > 0 AS has_data FROM rustydb.metapage('e');
SELECT * FROM rustydb.verify_table('e');
SELECT count(*) FROM e;

-- an aborted update leaves the old versions' links pointing at versions
-- that VACUUM removes and truncates away: not a corruption (the checker
-- follows links only of updates that committed or are running)
CREATE TABLE ab (id int PRIMARY KEY, pad text) USING rustydb WITH (fillfactor = 100);
INSERT INTO ab SELECT g, repeat('a', 50) FROM generate_series(1, 100) g;
SELECT data_pages FROM rustydb.metapage('ab');
BEGIN;
UPDATE ab SET id = id + 1000;
SELECT data_pages FROM rustydb.metapage('ab');
ROLLBACK;
VACUUM ab;
SELECT data_pages FROM rustydb.metapage('ab');
SELECT * FROM rustydb.verify_table('ab');
SELECT count(*), sum(id) FROM ab;
-- a committed update's links, and a locker's, are followed and clean
UPDATE ab SET id = id + 1000 WHERE id <= 10;
SELECT id FROM ab WHERE id = 11 FOR UPDATE;
SELECT * FROM rustydb.verify_table('ab');

-- not a rustydb table
SELECT * FROM rustydb.metapage('h');

RESET search_path;
DROP SCHEMA am_meta CASCADE;
