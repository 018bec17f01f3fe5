--
-- In-place updates (docs/storage.md, "In-place updates and undo"): an
-- UPDATE that changes no indexed column rewrites the row at its TID and
-- keeps the previous version in the table's undo store; readers whose
-- snapshot cannot see the new version follow the chain.
--
CREATE EXTENSION IF NOT EXISTS rustydb;
CREATE SCHEMA am_inplace;
CREATE EXTENSION IF NOT EXISTS pg_walinspect SCHEMA am_inplace;
SELECT extnamespace::regnamespace AS walinspect FROM pg_extension WHERE extname = 'pg_walinspect' \gset
SET search_path = am_inplace, :walinspect;
SET rustydb.update_in_place = on;

CREATE TABLE t (id int PRIMARY KEY, n int, pad text) USING rustydb WITH (fillfactor = 70);
INSERT INTO t SELECT g, 0, repeat('x', 50) FROM generate_series(1, 200) g;
CREATE TABLE lsn (l pg_lsn);
INSERT INTO lsn SELECT pg_current_wal_insert_lsn();

-- the same TID, no new index entry, an INPLACE record
SELECT ctid AS before FROM t WHERE id = 5 \gset
UPDATE t SET n = n + 1 WHERE id = 5;
SELECT ctid = :'before' AS same_tid, n FROM t WHERE id = 5;
SELECT inplace_updates, fallback_indexed, repairs FROM rustydb.undo_stats WHERE relid = 't'::regclass;
INSERT INTO lsn SELECT pg_current_wal_insert_lsn(); -- its commit flushes the records
SELECT record_type, regexp_replace(description, 'undo [0-9A-F/]+', 'undo P') AS description
  FROM pg_get_wal_records_info((SELECT min(l) FROM lsn), (SELECT max(l) FROM lsn))
 WHERE resource_manager = 'rustydb' AND record_type = 'INPLACE';

-- an indexed column changes: out of place, counted
UPDATE t SET id = 1000 WHERE id = 200;
SELECT inplace_updates, fallback_indexed FROM rustydb.undo_stats WHERE relid = 't'::regclass;

-- a cursor's snapshot (an earlier command) reads the version before
BEGIN;
DECLARE c CURSOR FOR SELECT id, n FROM t WHERE id IN (1, 2, 3) ORDER BY id;
UPDATE t SET n = n + 10 WHERE id IN (1, 2, 3);
FETCH ALL FROM c;
SELECT id, n FROM t WHERE id IN (1, 2, 3) ORDER BY id;
COMMIT;

-- every plan shape sees the same rows
UPDATE t SET n = n + 1, pad = repeat('y', 60) WHERE id % 7 = 0;
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*), sum(n), sum(length(pad)) FROM t WHERE id > 0;
SET enable_indexscan = off; SET enable_bitmapscan = on;
SELECT count(*), sum(n), sum(length(pad)) FROM t WHERE id > 0;
RESET enable_indexscan; RESET enable_bitmapscan; SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_seqscan = on;
SELECT count(*), sum(n), sum(length(pad)) FROM t;
RESET enable_seqscan; RESET enable_indexscan; RESET enable_bitmapscan;
SELECT count(*) FROM t WHERE ctid = '(0,5)';

-- a rolled-back in-place update is never seen, and is repaired later
BEGIN;
UPDATE t SET n = -1 WHERE id <= 20;
SELECT count(*) FROM t WHERE n = -1;
ROLLBACK;
SELECT count(*) FROM t WHERE n = -1;
SELECT id, n FROM t WHERE id IN (1, 5, 20) ORDER BY id;
-- the next writer repairs first
UPDATE t SET n = n + 100 WHERE id = 20;
SELECT n FROM t WHERE id = 20;
-- savepoints
BEGIN;
UPDATE t SET n = 7 WHERE id = 30;
SAVEPOINT s;
UPDATE t SET n = 8 WHERE id = 30;
SELECT n FROM t WHERE id = 30;
ROLLBACK TO s;
SELECT n FROM t WHERE id = 30;
UPDATE t SET n = n + 1 WHERE id = 30;
COMMIT;
SELECT n FROM t WHERE id = 30;

-- one command reaching a row twice: the second is skipped, as with heap
UPDATE t SET n = n + 1 FROM (VALUES (40), (40)) v(x) WHERE t.id = v.x;
SELECT n FROM t WHERE id = 40;

-- row locks and upserts on rows with chains
BEGIN;
SELECT n FROM t WHERE id = 5 FOR UPDATE;
UPDATE t SET n = n + 1 WHERE id = 5;
SELECT n FROM t WHERE id = 5 FOR KEY SHARE;
COMMIT;
INSERT INTO t VALUES (5, 0, 'z') ON CONFLICT (id) DO UPDATE SET n = t.n + 1000;
SELECT n, pad FROM t WHERE id = 5;

-- BEFORE triggers see the old row and may change the new one
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.n := OLD.n + 1; RETURN NEW; END $$;
CREATE TRIGGER bump BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION bump();
UPDATE t SET pad = 'trigger' WHERE id = 50;
SELECT n, pad FROM t WHERE id = 50;
DROP TRIGGER bump ON t;

-- AFTER row triggers fetch old and new by TID: such a table updates out of place
CREATE TABLE seen (old_n int, new_n int);
CREATE FUNCTION remember() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO am_inplace.seen VALUES (OLD.n, NEW.n); RETURN NULL; END $$;
CREATE TRIGGER remember AFTER UPDATE ON t FOR EACH ROW EXECUTE FUNCTION remember();
SELECT inplace_updates AS before FROM rustydb.undo_stats WHERE relid = 't'::regclass \gset
UPDATE t SET n = n + 1 WHERE id = 60;
SELECT old_n, new_n FROM seen;
SELECT inplace_updates = :before AS not_in_place FROM rustydb.undo_stats WHERE relid = 't'::regclass;
DROP TRIGGER remember ON t;

-- a session with rustydb.update_in_place off writes out of place; both forms read alike
SET rustydb.update_in_place = off;
UPDATE t SET n = n + 1 WHERE id = 61;
RESET rustydb.update_in_place;
UPDATE t SET n = n + 1 WHERE id = 61;
SELECT n FROM t WHERE id = 61;

-- an aborted in-place version is not lost by index builds, VACUUM FULL, ANALYZE
BEGIN;
UPDATE t SET n = -5 WHERE id BETWEEN 70 AND 79;
ROLLBACK;
CREATE INDEX t_n ON t (n);
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM t WHERE n = -5;
SELECT count(*) FROM t WHERE n >= 0;
RESET enable_seqscan; RESET enable_bitmapscan;
DROP INDEX t_n;
BEGIN;
UPDATE t SET n = -6 WHERE id BETWEEN 80 AND 89;
ROLLBACK;
ANALYZE t;
SELECT reltuples FROM pg_class WHERE oid = 't'::regclass;
VACUUM FULL t;
SELECT count(*), sum(n) FILTER (WHERE n < 0) FROM t;
SELECT count(*) FROM rustydb.verify_table('t');

-- many updates of the same rows: pruning compacts, the table keeps its size
CREATE TABLE u (id int PRIMARY KEY, n int, pad text) USING rustydb WITH (fillfactor = 70);
INSERT INTO u SELECT g, 0, repeat('u', 80) FROM generate_series(1, 300) g;
SELECT pg_relation_size('u') AS start_size \gset
DO $$ BEGIN FOR i IN 1..50 LOOP UPDATE am_inplace.u SET n = n + 1 WHERE id = 1 + (i * 37) % 300; END LOOP; END $$;
UPDATE u SET n = n + 1 WHERE id = 17;
UPDATE u SET n = n + 1 WHERE id = 17;
UPDATE u SET n = n + 1 WHERE id = 17;
SELECT pg_relation_size('u') = :start_size AS same_size, sum(n) FROM u;
SELECT count(*) FROM rustydb.verify_table('u');
SELECT inplace_updates > 0 AS in_place FROM rustydb.undo_stats WHERE relid = 'u'::regclass;

-- a table filled up to the insert reserve (fillfactor 100, the row of
-- pgbench_accounts): every row of its first three pages updated in place,
-- one row per transaction, three rounds. An in-place version is 8 bytes
-- longer than the row it replaced; pruning removes the undo pointer once
-- every snapshot sees its creator, so each page keeps room for one more
-- version: no update finds its page full, the table keeps its size.
-- (Loaded without the pointer reserve, which would keep room for every
-- row's pointer and leave pruning nothing to remove.)
CREATE TABLE acc (aid int PRIMARY KEY, bid int, abalance int, filler char(84)) USING rustydb;
SET rustydb.inplace_pointer_reserve = off;
INSERT INTO acc SELECT g, 1, 0, '' FROM generate_series(1, 1000) g;
RESET rustydb.inplace_pointer_reserve;
CREATE TABLE acc_tids AS SELECT aid, ctid AS tid FROM acc WHERE aid <= 180;
SELECT pg_relation_size('acc') AS acc_size, pg_current_wal_insert_lsn() AS acc_lsn \gset
DO $$ BEGIN FOR i IN 0..539 LOOP
  UPDATE am_inplace.acc SET abalance = abalance + 1 WHERE aid = 1 + i % 180; COMMIT;
END LOOP; END $$;
SELECT pg_relation_size('acc') = :acc_size AS same_size, sum(abalance) FROM acc;
SELECT inplace_updates, fallback_no_space FROM rustydb.undo_stats WHERE relid = 'acc'::regclass;
SELECT count(*) AS rows_at_their_tid FROM acc a JOIN acc_tids t USING (aid) WHERE a.ctid = t.tid;
SELECT count(*) > 0 AS pointers_removed
  FROM pg_get_wal_records_info(:'acc_lsn', pg_current_wal_flush_lsn())
 WHERE resource_manager = 'rustydb' AND record_type = 'PRUNE' AND description LIKE '%nstripped%';
SELECT count(*) FROM rustydb.verify_table('acc');

-- an aborted writer that changed a row twice, its two undo records on
-- different undo pages: recycling the older page repairs the row first
-- (the newer version points at the later record, whose image points at
-- the older one), so the row reads its committed value afterwards
-- (previous versions copied to undo at once, as encrypted tables do)
SET rustydb.inplace_previous_on_page = off;
CREATE TABLE w (id int PRIMARY KEY, v int NOT NULL, pad text) USING rustydb WITH (fillfactor = 50);
INSERT INTO w SELECT g, 0, repeat('w', 40) FROM generate_series(1, 2000) g;
BEGIN;
UPDATE w SET v = v + 1 WHERE id = 1;
UPDATE w SET v = v + 1 WHERE id BETWEEN 500 AND 900;
UPDATE w SET v = v + 1 WHERE id = 1;
ROLLBACK;
SELECT pages_in_use > 2 AS several_pages FROM rustydb.undo_store('w');
SELECT rustydb.undo_discard('w') > 0 AS recycled;
SELECT id, v FROM w WHERE id = 1;
SELECT count(*), sum(v) FROM w;
SELECT count(*) FROM rustydb.verify_table('w');
RESET rustydb.inplace_previous_on_page;

-- previous versions on the page (the default for plain tables): an
-- in-place update writes no undo; a snapshot reads the version it
-- replaced from the page; compaction drops it once no snapshot needs it,
-- so the table keeps its size through single-row updates without VACUUM
CREATE TABLE p (id int PRIMARY KEY, n int NOT NULL, pad text) USING rustydb WITH (fillfactor = 60);
INSERT INTO p SELECT g, 0, repeat('p', 60) FROM generate_series(1, 500) g;
SELECT pg_relation_size('p') AS p_size \gset
SELECT format('UPDATE am_inplace.p SET n = n + 1 WHERE id = %s', 1 + i % 25) FROM generate_series(1, 60) i \gexec
SELECT pg_relation_size('p') = :p_size AS same_size, sum(n), count(*) FROM p;
SELECT count(*) FROM rustydb.verify_table('p');
BEGIN;
DECLARE pc CURSOR FOR SELECT sum(n), count(*) FROM p;
UPDATE p SET n = n + 1 WHERE id <= 250;
UPDATE p SET n = n + 1 WHERE id <= 100;
FETCH ALL FROM pc;
SELECT sum(n), count(*) FROM p;
COMMIT;
SELECT count(*) FROM rustydb.verify_table('p');
-- the records: LOCAL (one block), no undo page
INSERT INTO lsn SELECT pg_current_wal_insert_lsn();
UPDATE p SET n = n + 1 WHERE id = 7;
INSERT INTO lsn SELECT pg_current_wal_insert_lsn();
SELECT record_type, regexp_replace(description, 'off [0-9]+', 'off N') AS description,
       block_ref LIKE '%blkref #1%' AS two_blocks
  FROM pg_get_wal_records_info((SELECT l FROM lsn ORDER BY l DESC OFFSET 1 LIMIT 1), (SELECT max(l) FROM lsn))
 WHERE resource_manager = 'rustydb' AND record_type = 'INPLACE';
-- WAL format 7 packs header fields: the LOCAL record and a packed INSERT
-- are no longer than heap's HOT_UPDATE and INSERT of the same rows
CREATE TABLE ph (id int PRIMARY KEY, n int NOT NULL, pad text) USING heap WITH (fillfactor = 60);
INSERT INTO ph SELECT g, 0, repeat('p', 60) FROM generate_series(1, 10) g;
UPDATE ph SET n = n + 1 WHERE id = 9; -- the page's first change since its INSERTs
INSERT INTO lsn SELECT pg_current_wal_insert_lsn();
UPDATE p SET n = n + 1 WHERE id = 8;
UPDATE ph SET n = n + 1 WHERE id = 8;
INSERT INTO p VALUES (1001, 5, repeat('q', 60));
INSERT INTO ph VALUES (1001, 5, repeat('q', 60));
INSERT INTO lsn SELECT pg_current_wal_insert_lsn();
CREATE TEMP TABLE wl AS
SELECT resource_manager, record_type, record_length, fpi_length
  FROM pg_get_wal_records_info((SELECT l FROM lsn ORDER BY l DESC OFFSET 1 LIMIT 1), (SELECT max(l) FROM lsn))
 WHERE (resource_manager = 'rustydb' AND record_type IN ('INPLACE', 'INSERT')
        AND block_ref LIKE format('%% rel %s/%s/%s %%', (SELECT oid FROM pg_tablespace WHERE spcname = 'pg_default'),
                                  (SELECT oid FROM pg_database WHERE datname = current_database()), pg_relation_filenode('p')))
    OR (resource_manager = 'Heap' AND record_type IN ('HOT_UPDATE', 'INSERT')
        AND block_ref LIKE format('%% rel %s/%s/%s %%', (SELECT oid FROM pg_tablespace WHERE spcname = 'pg_default'),
                                  (SELECT oid FROM pg_database WHERE datname = current_database()), pg_relation_filenode('ph')));
-- (a full-page image, after a checkpoint came between, leaves a row out)
SELECT resource_manager, record_type, record_length FROM wl WHERE fpi_length = 0 ORDER BY 1, 2;
-- an INSERT record's main data and packed header are one byte longer each
SELECT (SELECT record_length FROM wl WHERE record_type = 'INPLACE') <=
       (SELECT record_length FROM wl WHERE record_type = 'HOT_UPDATE') AS local_le_heap,
       (SELECT record_length FROM wl WHERE resource_manager = 'rustydb' AND record_type = 'INSERT') <=
       (SELECT record_length FROM wl WHERE resource_manager = 'Heap' AND record_type = 'INSERT') + 2 AS insert_le_heap
  FROM wl HAVING bool_and(fpi_length = 0);

RESET search_path;
DROP SCHEMA am_inplace CASCADE;
