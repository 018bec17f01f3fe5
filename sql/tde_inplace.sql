-- In-place updates of encrypted tables (docs/storage.md, "In-place updates
-- and undo"; issue 21, acceptance 4): the new version is sealed as any, the
-- previous version goes to undo re-sealed on its own, and every reader that
-- follows a chain opens the sealed images it returns. Older versions are
-- read here through this session's own cursors (their snapshots predate
-- the updates), an aborted subtransaction (readers walk past its version,
-- the next writer repairs it with the sealed image) and a transition table
-- (the SnapshotAny fetch of the row the running command replaced). The
-- marker scan over the files is test/scenarios/am_inplace_tde.sh.
CREATE EXTENSION IF NOT EXISTS rustydb;
SET client_min_messages = warning;

CREATE TABLE ti (id int PRIMARY KEY, v int, note text) USING rustydb
	WITH (encrypted = true, fillfactor = 50);
INSERT INTO ti SELECT g, 0, 'row ' || g FROM generate_series(1, 200) g;
UPDATE ti SET v = v + 1, note = note || ' one';
SELECT encrypted FROM rustydb.undo_store('ti');
SELECT inplace_updates > 0 AS in_place, fallback_group_member FROM rustydb.undo_stats
WHERE relid = 'ti'::regclass;
SELECT count(*), sum(v), count(*) FILTER (WHERE note LIKE '% one') AS ones FROM ti;

-- cursors opened before updates of the same transaction read the versions
-- before them (sealed undo images): sequential, index, bitmap, TID scans
BEGIN;
DECLARE cseq CURSOR FOR SELECT sum(v), min(note), max(note) FROM ti;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
DECLARE cidx CURSOR FOR SELECT id, v, note FROM ti WHERE id IN (3, 77, 150) ORDER BY id;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = on;
DECLARE cbmp CURSOR FOR SELECT count(*), sum(v), max(note) FROM ti WHERE id BETWEEN 10 AND 60;
RESET enable_seqscan;
RESET enable_indexscan;
RESET enable_bitmapscan;
DECLARE ctid_c CURSOR FOR SELECT id, v, note FROM ti WHERE ctid = (SELECT ctid FROM ti WHERE id = 5);
UPDATE ti SET v = v + 10, note = note || ' two';
UPDATE ti SET v = v + 10 WHERE id % 2 = 0;
FETCH ALL FROM cseq;
FETCH ALL FROM cidx;
FETCH ALL FROM cbmp;
FETCH ALL FROM ctid_c;
SELECT id, v, note FROM ti WHERE id IN (3, 77, 150) ORDER BY id;
COMMIT;

-- an aborted subtransaction's in-place versions: readers walk past them,
-- the next writer repairs each row from its sealed image
BEGIN;
SAVEPOINT s;
UPDATE ti SET v = v + 1000, note = note || ' aborted' WHERE id <= 20;
ROLLBACK TO SAVEPOINT s;
SELECT count(*), sum(v), count(*) FILTER (WHERE note LIKE '%aborted%') AS aborted FROM ti WHERE id <= 20;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT id, v, note FROM ti WHERE id IN (1, 20) ORDER BY id;
-- an index build and ANALYZE take each row's version before the aborted one
CREATE INDEX ti_v ON ti (v);
ANALYZE ti;
COMMIT;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FILTER (WHERE v = 1011) AS aborted_value,
	(SELECT count(*) FROM ti WHERE v = 11 AND id <= 20) AS committed_value FROM ti WHERE v = 1011;
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX ti_v;
UPDATE ti SET v = v + 1 WHERE id <= 20;
SELECT count(*), sum(v), count(*) FILTER (WHERE note LIKE '%aborted%') AS aborted FROM ti WHERE id <= 20;
SELECT repairs > 0 AS repaired FROM rustydb.undo_stats WHERE relid = 'ti'::regclass;

-- a transition table: the rows this statement replaced in place, fetched
-- by TID (SnapshotAny) as sealed images and opened
CREATE FUNCTION ti_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'old rows: %, sum %, %', (SELECT count(*) FROM o), (SELECT sum(v) FROM o),
		(SELECT min(note) FROM o);
	RETURN NULL;
END $$;
CREATE TRIGGER ti_old AFTER UPDATE ON ti REFERENCING OLD TABLE AS o
	FOR EACH STATEMENT EXECUTE FUNCTION ti_old();
SET client_min_messages = notice;
UPDATE ti SET v = v + 1, note = note || ' three' WHERE id BETWEEN 30 AND 39;
SET client_min_messages = warning;
DROP TRIGGER ti_old ON ti;
DROP FUNCTION ti_old();

-- rows COPY sealed in groups are updated out of place (counted), once
SELECT fallback_group_member AS group_fallbacks_before FROM rustydb.undo_stats
WHERE relid = 'ti'::regclass \gset
COPY ti (id, v, note) FROM PROGRAM 'seq 1001 1100 | awk ''{print $1 "\t0\tcopied " $1}''';
UPDATE ti SET v = v + 1 WHERE id > 1000;
SELECT fallback_group_member > :group_fallbacks_before AS group_fallbacks FROM rustydb.undo_stats
WHERE relid = 'ti'::regclass;
SELECT count(*), sum(v) FROM ti WHERE id > 1000;

SELECT count(*), sum(v), max(note) FROM ti;
SELECT count(*) AS damaged FROM rustydb.verify_table('ti');
-- CLUSTER copies the rows (no snapshot needs their older versions here)
CLUSTER ti USING ti_pkey;
SELECT count(*), sum(v), max(note) FROM ti;
SELECT count(*) AS damaged FROM rustydb.verify_table('ti');
SELECT ok FROM rustydb.verify_encryption('ti') WHERE "check" = 'stored payloads open';
DROP TABLE ti;

-- rows updated in place one per transaction, round after round, on pages
-- that fill up: pruning keeps the undo pointers of sealed versions (their
-- associated data covers t_hoff), so every row still opens
CREATE TABLE tacc (aid int PRIMARY KEY, bid int, abalance int, filler char(84)) USING rustydb
	WITH (encrypted = true);
INSERT INTO tacc SELECT g, 1, 0, '' FROM generate_series(1, 300) g;
DO $$ BEGIN FOR i IN 0..539 LOOP
  UPDATE tacc SET abalance = abalance + 1 WHERE aid = 1 + i % 180; COMMIT;
END LOOP; END $$;
SELECT count(*), sum(abalance) FROM tacc;
SELECT count(*) AS damaged FROM rustydb.verify_table('tacc');
SELECT ok FROM rustydb.verify_encryption('tacc') WHERE "check" = 'stored payloads open';
DROP TABLE tacc;
