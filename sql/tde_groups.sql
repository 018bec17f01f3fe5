-- Sealed groups (docs/tde.md): COPY into an encrypted table seals up to
-- rustydb.seal_group_rows rows of one page with one AEAD, the group's seal
-- kept in the page's group table. Reads open whole groups; pruning frees
-- or re-seals groups that lose members; verify_encryption opens them.
-- The server's key provider is a test key_command (test/regress.conf).
CREATE EXTENSION IF NOT EXISTS rustydb;
CREATE EXTENSION IF NOT EXISTS pg_walinspect;
SET client_min_messages = warning;

SELECT name, type, default_value, min, max, context
FROM rustydb.settings WHERE name = 'rustydb.seal_group_rows';

-- the records of one kind since an LSN (up to the WAL flushed), key versions masked
CREATE FUNCTION tg_records(since pg_lsn, kind text) RETURNS SETOF text LANGUAGE sql AS $$
	SELECT regexp_replace(description, 'key version [0-9]+', 'key version N', 'g')
	FROM pg_get_wal_records_info(since, pg_current_wal_flush_lsn())
	WHERE resource_manager = 'rustydb' AND record_type = kind ORDER BY start_lsn $$;

CREATE TABLE tg (id int, v text) USING rustydb WITH (encrypted = true, autovacuum_enabled = false);
SELECT pg_current_wal_insert_lsn() AS lsn \gset
COPY tg FROM PROGRAM 'seq 1 1000 | awk ''{print $1 "\tvalue " $1}''';
-- a new page with a group table (flag 0x10) of slots for groups of 4 rows (the default)
SELECT * FROM tg_records(:'lsn', 'MULTI_INSERT') LIMIT 2;
SELECT count(*), sum(id), count(DISTINCT v) FROM tg;
SELECT * FROM tg WHERE id IN (1, 16, 17, 128, 129, 1000) ORDER BY id;
SELECT ok, detail FROM rustydb.verify_encryption('tg') WHERE "check" = 'stored payloads open';
-- index lookups open their row's group
CREATE INDEX tg_id ON tg (id);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT v FROM tg WHERE id = 500;
SELECT string_agg(v, ',' ORDER BY id) FROM tg WHERE id BETWEEN 14 AND 19;
RESET enable_seqscan;
RESET enable_bitmapscan;

-- updates and deletes leave dead members; VACUUM frees whole groups and
-- re-seals the survivors of the others (PRUNE records with re-sealed groups)
UPDATE tg SET v = v || ' updated' WHERE id % 10 = 0;
DELETE FROM tg WHERE id % 7 = 0;
DELETE FROM tg WHERE id BETWEEN 17 AND 32;
SELECT pg_current_wal_insert_lsn() AS lsn \gset
VACUUM tg;
CHECKPOINT; -- flushes the WAL read below
SELECT count(*) FILTER (WHERE d LIKE '%re-sealed%') > 0 AS resealed,
       count(*) FILTER (WHERE d LIKE '%: freed%') > 0 AS freed
FROM tg_records(:'lsn', 'PRUNE') d;
SELECT count(*), sum(id), sum(length(v)) FROM tg;
SELECT * FROM tg WHERE id IN (1, 10, 14, 16, 33, 1000) ORDER BY id;
SELECT ok, detail FROM rustydb.verify_encryption('tg') WHERE "check" = 'stored payloads open';

-- an aborted COPY: VACUUM frees its groups
BEGIN;
COPY tg FROM PROGRAM 'seq 2001 2500 | awk ''{print $1 "\taborted " $1}''';
ROLLBACK;
VACUUM tg;
SELECT count(*), max(id) FROM tg;
SELECT ok, detail FROM rustydb.verify_encryption('tg') WHERE "check" = 'stored payloads open';

-- larger groups, and none (1: every row sealed on its own, no group table)
CREATE TABLE tg4 (id int, v text) USING rustydb WITH (encrypted = true);
CREATE TABLE tg1 (id int, v text) USING rustydb WITH (encrypted = true);
SET rustydb.seal_group_rows = 16;
SELECT pg_current_wal_insert_lsn() AS lsn \gset
COPY tg4 FROM PROGRAM 'seq 1 10 | awk ''{print $1 "\tfour " $1}''';
SELECT * FROM tg_records(:'lsn', 'MULTI_INSERT');
SET rustydb.seal_group_rows = 1;
SELECT pg_current_wal_insert_lsn() AS lsn \gset
COPY tg1 FROM PROGRAM 'seq 1 10 | awk ''{print $1 "\tone " $1}''';
SELECT * FROM tg_records(:'lsn', 'MULTI_INSERT');
RESET rustydb.seal_group_rows;
SET rustydb.seal_group_rows = 0;
SET rustydb.seal_group_rows = 17;
SELECT string_agg(v, ',' ORDER BY id) FROM tg4;
SELECT string_agg(v, ',' ORDER BY id) FROM tg1;
-- rows of both kinds on one page: single inserts next to groups
INSERT INTO tg4 VALUES (11, 'single');
UPDATE tg4 SET v = v || '!' WHERE id IN (2, 5);
SELECT string_agg(v, ',' ORDER BY id) FROM tg4;
SELECT ok, detail FROM rustydb.verify_encryption('tg4') WHERE "check" = 'stored payloads open';

-- an unencrypted table's COPY is not affected
CREATE TABLE tgp (id int, v text) USING rustydb;
SELECT pg_current_wal_insert_lsn() AS lsn \gset
COPY tgp FROM PROGRAM 'seq 1 3 | awk ''{print $1 "\tplain " $1}''';
SELECT * FROM tg_records(:'lsn', 'MULTI_INSERT');

-- rows with large values (sealed, then toasted) and nulls in groups
CREATE TABLE tgt (id int, a text, b text, c int) USING rustydb WITH (encrypted = true);
COPY tgt FROM PROGRAM 'seq 1 40 | awk ''{ if ($1 % 3 == 0) print $1 "\t\\N\tb" $1 "\t\\N"; else print $1 "\ta" $1 "\t\\N\t" $1 }''';
COPY tgt FROM PROGRAM 'awk ''BEGIN { for (i = 1; i <= 3; i++) { s = ""; for (j = 0; j < 3000; j++) s = s "x" (j * i); print 100 + i "\ta" s "\t\\N\t" i } }''';
SELECT count(*), count(a), count(b), count(c), sum(length(a)) FROM tgt;
SELECT ok, detail FROM rustydb.verify_encryption('tgt') WHERE "check" = 'stored payloads open';

DROP TABLE tg, tg4, tg1, tgp, tgt;
DROP FUNCTION tg_records;
