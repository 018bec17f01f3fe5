-- Rows of encrypted tables in the executor's slots (docs/tde.md, "Slots"):
-- every path that hands a stored row to a slot, and every path that looks
-- at the stored version behind a slot, on an encrypted table with rows
-- sealed on their own, rows in sealed groups and sealed large values. An
-- assert-enabled server checks PostgreSQL's slot contracts on each.
-- The server's key provider is a test key_command (test/regress.conf).
CREATE EXTENSION IF NOT EXISTS rustydb;
SET client_min_messages = warning;

CREATE TABLE ts (id int PRIMARY KEY, v text, big text) USING rustydb WITH (encrypted = true);
-- rows in sealed groups (COPY), rows sealed on their own, one large value
COPY ts (id, v) FROM PROGRAM 'seq 1 200 | awk ''{print $1 "\tcopied " $1}''';
INSERT INTO ts SELECT g, 'inserted ' || g FROM generate_series(201, 260) g;
UPDATE ts SET big = repeat('large value ', 1000) WHERE id = 7;
SELECT "table", encrypted FROM rustydb.encryption_status WHERE "table"::text = 'ts';

-- scans: sequential, index, bitmap, TID, TID range, sample
SELECT count(*), sum(id), count(big), max(length(big)) FROM ts;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT id, v, length(big) FROM ts WHERE id IN (7, 150, 250) ORDER BY id;
RESET enable_bitmapscan;
SET enable_indexscan = off;
SELECT count(*), min(v), max(v) FROM ts WHERE id BETWEEN 10 AND 40;
RESET enable_indexscan;
RESET enable_seqscan;
SELECT id, v FROM ts WHERE ctid = (SELECT ctid FROM ts WHERE id = 3);
SELECT count(*) = (SELECT count(*) FROM ts) AS all_rows FROM ts WHERE ctid >= '(0,1)';
SELECT count(*) > 0 AS some_rows FROM ts WHERE ctid < '(1,0)';
SELECT count(*) > 0 AS sampled FROM ts TABLESAMPLE SYSTEM (100) REPEATABLE (1);
-- system columns come from the opened copy
SELECT tableoid::regclass, xmin = (SELECT xmin FROM ts WHERE id = 1) AS same_xmin,
       ctid = (SELECT ctid FROM ts WHERE id = 1) AS same_ctid
FROM ts WHERE id = 1;

-- a cursor moving both ways and re-reading its current row
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT id, v FROM ts WHERE id <= 5 ORDER BY ctid;
FETCH 3 FROM c;
FETCH BACKWARD 1 FROM c;
FETCH RELATIVE 0 FROM c;
COMMIT;

-- row locks, and the rows they return
BEGIN;
SELECT id, v, length(big) FROM ts WHERE id IN (7, 8) ORDER BY id FOR UPDATE;
SELECT id FROM ts WHERE id = 9 FOR KEY SHARE;
COMMIT;

-- updates and deletes (the old version opened), RETURNING both versions
UPDATE ts SET v = v || ' updated' WHERE id IN (7, 100, 230) RETURNING id, v, length(big);
DELETE FROM ts WHERE id IN (5, 205) RETURNING id, v;

-- BEFORE triggers read the old row through a row lock
CREATE TABLE ts_log (id int, old_v text, new_v text);
CREATE FUNCTION ts_trig() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO ts_log VALUES (OLD.id, OLD.v, NEW.v);
	RETURN NEW;
END $$;
CREATE TRIGGER ts_before BEFORE UPDATE ON ts FOR EACH ROW EXECUTE FUNCTION ts_trig();
UPDATE ts SET v = 'triggered' WHERE id = 11;
SELECT * FROM ts_log;
DROP TRIGGER ts_before ON ts;

-- ON CONFLICT under repeatable read checks the existing row against the
-- snapshot (tuple_satisfies_snapshot, by the row's TID)
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO ts (id, v) VALUES (12, 'conflict') ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v || ' on ' || ts.v
RETURNING id, v;
INSERT INTO ts (id, v) VALUES (13, 'ignored') ON CONFLICT (id) DO NOTHING;
COMMIT;
SELECT id, v FROM ts WHERE id IN (12, 13) ORDER BY id;

-- a deferred foreign key re-checks the new row (tuple_satisfies_snapshot)
CREATE TABLE ts_child (id int, pid int REFERENCES ts DEFERRABLE INITIALLY DEFERRED)
	USING rustydb WITH (encrypted = true);
BEGIN;
INSERT INTO ts_child VALUES (1, 1), (2, 2);
UPDATE ts_child SET pid = 3 WHERE id = 2;
DELETE FROM ts_child WHERE id = 1;
COMMIT;
BEGIN;
INSERT INTO ts_child VALUES (3, 9999);
COMMIT;
SELECT * FROM ts_child ORDER BY id;

-- ANALYZE samples opened rows
ANALYZE ts;
SELECT reltuples FROM pg_class WHERE relname = 'ts';
-- CREATE INDEX, CLUSTER and VACUUM FULL read every version (SnapshotAny) and
-- judge each before opening its large values: the versions of row 7 that
-- the updates above left dead lost their TOAST chunks when a read of the
-- current value pruned the TOAST page, and opening them failed ("unexpected
-- chunk number") until issue 17
SELECT length(big) FROM ts WHERE id = 7;
SELECT length(big) FROM ts WHERE id = 7;
CREATE INDEX ts_v ON ts (v);
SELECT count(*) FROM ts WHERE v LIKE '%updated';
DELETE FROM ts WHERE id % 10 = 1;
CLUSTER ts USING ts_pkey;
SELECT count(*), sum(id), count(big) FROM ts;
UPDATE ts SET v = v || '.' WHERE id % 3 = 0;
VACUUM FULL ts;
SELECT count(*), sum(id), count(big), sum(length(v)) FROM ts;
SELECT ok, detail FROM rustydb.verify_encryption('ts') WHERE "check" = 'stored payloads open';

DROP TABLE ts_child, ts, ts_log;
DROP FUNCTION ts_trig;
