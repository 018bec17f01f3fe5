--
-- rustydb table access method: DML, indexes, COPY, ON CONFLICT, TOAST,
-- VACUUM, CLUSTER, TABLESAMPLE, TRUNCATE, ALTER TABLE rewrites.
--
CREATE EXTENSION IF NOT EXISTS rustydb;
CREATE SCHEMA am_dml;
SET search_path = am_dml;

SELECT amname, amtype FROM pg_am WHERE amname = 'rustydb';

CREATE TABLE t (a int PRIMARY KEY, b text, c float8) USING rustydb;
SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.oid = 'am_dml.t'::regclass;

-- insert, select, ctids like heap's
INSERT INTO t SELECT g, 'row ' || g, g / 2.0 FROM generate_series(1, 2000) g;
SELECT count(*), sum(a), min(b), max(c) FROM t;
SELECT ctid, a FROM t WHERE a IN (1, 2, 500) ORDER BY a;

-- update and delete
UPDATE t SET b = 'updated' WHERE a % 10 = 0;
DELETE FROM t WHERE a % 7 = 0;
SELECT count(*), count(*) FILTER (WHERE b = 'updated') FROM t;
UPDATE t SET a = a + 10000 WHERE a = 3;
SELECT * FROM t WHERE a IN (3, 10003);

-- index scans of every kind
CREATE INDEX t_b ON t (b);
CREATE INDEX t_hash ON t USING hash (a);
CREATE INDEX t_brin ON t USING brin (a);
CREATE TABLE docs (id int, tags text[], body tsvector, p point) USING rustydb;
INSERT INTO docs SELECT g, ARRAY['t' || (g % 5), 'all'], to_tsvector('word' || (g % 3)),
	point(g % 10, g % 7) FROM generate_series(1, 500) g;
CREATE INDEX docs_gin ON docs USING gin (tags);
CREATE INDEX docs_gist ON docs USING gist (p);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM t WHERE b = 'row 11';
SELECT * FROM t WHERE b = 'row 11';
SELECT count(*) FROM t WHERE a = 42;
SELECT count(*) FROM t WHERE a BETWEEN 100 AND 200;
SELECT count(*) FROM docs WHERE tags @> ARRAY['t1'];
SELECT count(*) FROM docs WHERE p <@ box '((0,0),(2,2))';
SELECT a FROM t WHERE a < 5 ORDER BY a;
RESET enable_seqscan;

-- heap-only versions: updates of unindexed columns add no index entries
-- (out of place; the in-place path is am_inplace's)
SET rustydb.update_in_place = off;
CREATE TABLE hot (id int PRIMARY KEY, v int, w int) USING rustydb;
INSERT INTO hot SELECT g, 0, 0 FROM generate_series(1, 100) g;
BEGIN;
UPDATE hot SET v = v + 1;
UPDATE hot SET v = v + 1 WHERE id <= 50;
UPDATE hot SET id = id + 1000 WHERE id <= 10;
SELECT pg_stat_get_xact_tuples_hot_updated('hot'::regclass) AS hot_updates,
       pg_stat_get_xact_tuples_updated('hot'::regclass) AS updates;
COMMIT;
RESET rustydb.update_in_place;
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*), sum(v) FROM hot WHERE id > 0;
SELECT id, v FROM hot WHERE id IN (20, 1005) ORDER BY id;
RESET enable_bitmapscan;
SELECT count(*), sum(v) FROM hot WHERE id > 0;
RESET enable_seqscan;
VACUUM hot;
SET enable_seqscan = off;
SELECT count(*), sum(v) FROM hot WHERE id > 0;
RESET enable_seqscan;
CREATE INDEX hot_v ON hot (v);
SELECT count(*) FROM hot WHERE v = 2;
SELECT * FROM rustydb.verify_table('hot');

-- bitmap and index-only scans
SET enable_seqscan = off; SET enable_indexscan = off;
SELECT count(*) FROM t WHERE a < 300 OR b = 'updated';
RESET enable_seqscan; RESET enable_indexscan;
SELECT count(*) FROM (SELECT a FROM t WHERE a > 1500 ORDER BY a) s;

-- TID and TID-range scans
SELECT a FROM t WHERE ctid = '(0,1)';
SELECT count(*) FROM t WHERE ctid < '(1,0)';
SELECT count(*) = (SELECT count(*) FROM t) FROM t WHERE ctid >= '(0,0)';

-- COPY (multi-insert)
COPY t (a, b, c) FROM stdin;
20001	copied one	1.5
20002	copied two	2.5
\.
SELECT * FROM t WHERE a > 20000 ORDER BY a;
CREATE TABLE bulk (id int, v text) USING rustydb;
INSERT INTO bulk SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
COPY (SELECT * FROM bulk ORDER BY id) TO stdout WITH (FORMAT csv) \g /dev/null
SELECT count(*), count(DISTINCT v) FROM bulk;

-- ON CONFLICT
INSERT INTO t VALUES (1, 'conflict', 0) ON CONFLICT (a) DO UPDATE SET b = excluded.b;
INSERT INTO t VALUES (1, 'ignored', 0) ON CONFLICT DO NOTHING;
INSERT INTO t VALUES (30000, 'fresh', 0) ON CONFLICT (a) DO NOTHING;
SELECT a, b FROM t WHERE a IN (1, 30000) ORDER BY a;

-- row locks in one session
BEGIN;
SELECT a FROM t WHERE a = 2 FOR UPDATE;
SELECT a FROM t WHERE a = 2 FOR SHARE;
SELECT a FROM t WHERE a = 4 FOR KEY SHARE;
SELECT a FROM t WHERE a = 4 FOR NO KEY UPDATE NOWAIT;
SELECT a FROM t WHERE a IN (5, 6) ORDER BY a FOR UPDATE SKIP LOCKED;
UPDATE t SET b = 'locked then updated' WHERE a = 2;
SELECT b FROM t WHERE a = 2;
COMMIT;

-- subtransactions and rollback
BEGIN;
INSERT INTO t VALUES (40000, 'kept', 0);
SAVEPOINT s1;
INSERT INTO t VALUES (40001, 'rolled back', 0);
UPDATE t SET b = 'rolled back' WHERE a = 40000;
ROLLBACK TO s1;
DELETE FROM t WHERE a = 1;
ROLLBACK;
SELECT count(*) FROM t WHERE a >= 40000;
SELECT a, b FROM t WHERE a = 1;

-- TOAST
CREATE TABLE big (id int PRIMARY KEY, v text) USING rustydb;
SELECT reltoastrelid <> 0 AS has_toast FROM pg_class WHERE oid = 'am_dml.big'::regclass;
INSERT INTO big SELECT g, repeat(md5(g::text), 2000) FROM generate_series(1, 20) g;
INSERT INTO big VALUES (100, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 20000) g));
SELECT id, length(v), md5(v) = md5(repeat(md5(id::text), 2000)) AS intact FROM big WHERE id <= 3 ORDER BY id;
SELECT length(v) FROM big WHERE id = 100;
UPDATE big SET v = v || 'x' WHERE id = 1;
SELECT length(v) FROM big WHERE id = 1;
DELETE FROM big WHERE id = 2;
SELECT count(*) FROM big;

-- VACUUM, ANALYZE, statistics
VACUUM t;
VACUUM (FREEZE) bulk;
ANALYZE t;
SELECT relpages > 0 AS has_pages, reltuples = (SELECT count(*) FROM t) AS tuples_right
FROM pg_class WHERE oid = 'am_dml.t'::regclass;
SELECT count(*) FROM t;
SELECT * FROM rustydb.verify_table('t');
SELECT * FROM rustydb.verify_table('bulk');

-- CLUSTER, VACUUM FULL, ALTER TABLE rewrites
CLUSTER t USING t_pkey;
SELECT count(*), sum(a) FROM t;
VACUUM FULL big;
SELECT count(*), sum(length(v)) FROM big;
ALTER TABLE t ADD COLUMN d int DEFAULT 7;
ALTER TABLE t ALTER COLUMN c TYPE numeric;
SELECT a, b, c, d FROM t WHERE a = 10 ;
ALTER TABLE bulk SET ACCESS METHOD heap;
ALTER TABLE bulk SET ACCESS METHOD rustydb;
SELECT count(*) FROM bulk;
SELECT * FROM rustydb.verify_table('t');

-- TABLESAMPLE
SELECT count(*) > 0 AS sampled FROM bulk TABLESAMPLE SYSTEM (50) REPEATABLE (1);
SELECT count(*) > 0 AS sampled FROM bulk TABLESAMPLE BERNOULLI (10) REPEATABLE (1);
SELECT count(*) FROM bulk TABLESAMPLE SYSTEM (100);

-- CREATE INDEX CONCURRENTLY and REINDEX
CREATE INDEX CONCURRENTLY bulk_v ON bulk (v);
REINDEX INDEX CONCURRENTLY bulk_v;
SET enable_seqscan = off;
SELECT id FROM bulk WHERE v = md5('77');
RESET enable_seqscan;

-- cursors: backward scans
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT id FROM bulk WHERE id <= 5;
FETCH 3 FROM c;
FETCH BACKWARD 2 FROM c;
FETCH LAST FROM c;
FETCH BACKWARD 1 FROM c;
COMMIT;

-- TRUNCATE
TRUNCATE bulk;
SELECT count(*) FROM bulk;
BEGIN; INSERT INTO bulk VALUES (1, 'a'); TRUNCATE bulk; INSERT INTO bulk VALUES (2, 'b'); COMMIT;
SELECT * FROM bulk;

-- temporary and unlogged tables
CREATE TEMP TABLE tmp (a int) USING rustydb;
INSERT INTO tmp SELECT generate_series(1, 100);
SELECT count(*) FROM tmp;
CREATE UNLOGGED TABLE unl (a int) USING rustydb;
INSERT INTO unl SELECT generate_series(1, 100);
SELECT count(*) FROM unl;

-- partitions and foreign keys
CREATE TABLE parent (id int PRIMARY KEY) USING rustydb;
CREATE TABLE child (id int, pid int REFERENCES parent ON DELETE CASCADE) USING rustydb;
INSERT INTO parent SELECT generate_series(1, 10);
INSERT INTO child SELECT g, g % 10 + 1 FROM generate_series(1, 30) g;
DELETE FROM parent WHERE id = 1;
SELECT count(*) FROM child;
INSERT INTO child VALUES (99, 99);
CREATE TABLE pt (k int, v text) PARTITION BY RANGE (k);
CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (100) USING rustydb;
CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (100) TO (200) USING rustydb;
INSERT INTO pt SELECT g, 'v' FROM generate_series(0, 199) g;
UPDATE pt SET k = k + 100 WHERE k = 5;
SELECT tableoid::regclass, count(*) FROM pt GROUP BY 1 ORDER BY 1;

-- a default access method of rustydb
SET default_table_access_method = rustydb;
CREATE TABLE dflt (a int);
SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.oid = 'am_dml.dflt'::regclass;
RESET default_table_access_method;

-- not a rustydb table
CREATE TABLE heap_t (a int) USING heap;
SELECT * FROM rustydb.verify_table('heap_t');

RESET search_path;
DROP SCHEMA am_dml CASCADE;
