-- EXPLAIN under VPD policies: for a role subject to a policy, no figure
-- EXPLAIN prints may depend on rows the policy hides. EXPLAIN ANALYZE and
-- BUFFERS of a statement that reads a protected table are refused before
-- anything runs, for every plan shape and format, through views, subqueries,
-- prepared statements and generic plans, in any isolation level; plain
-- EXPLAIN shows the plan without costs and estimates. Exempt roles and
-- statements on unprotected tables are unaffected.
CREATE EXTENSION IF NOT EXISTS rustydb;
SET client_min_messages = warning;
CREATE ROLE vpdx_owner NOLOGIN;
CREATE ROLE vpdx_user NOLOGIN;
CREATE ROLE vpdx_exempt NOLOGIN;
GRANT rustydb_exempt_access_policy TO vpdx_exempt;
RESET client_min_messages;
CREATE SCHEMA vpdx AUTHORIZATION vpdx_owner;
GRANT USAGE ON SCHEMA vpdx TO vpdx_user, vpdx_exempt;
SET ROLE vpdx_owner;
CREATE TABLE vpdx.emp_heap (id int PRIMARY KEY, name text, dept int) USING heap;
CREATE TABLE vpdx.emp_rdb (id int PRIMARY KEY, name text, dept int) USING rustydb;
CREATE INDEX emp_heap_name ON vpdx.emp_heap (name);
CREATE INDEX emp_rdb_name ON vpdx.emp_rdb (name);
INSERT INTO vpdx.emp_heap SELECT g, 'name' || g, g % 10 FROM generate_series(1, 1000) g;
INSERT INTO vpdx.emp_rdb SELECT * FROM vpdx.emp_heap;
CREATE TABLE vpdx.open_t (id int) USING rustydb;
INSERT INTO vpdx.open_t VALUES (1), (2);
CREATE VIEW vpdx.v AS SELECT * FROM vpdx.emp_rdb;
GRANT SELECT ON ALL TABLES IN SCHEMA vpdx TO vpdx_user, vpdx_exempt;
CREATE FUNCTION vpdx.pred(s text, o text) RETURNS text LANGUAGE sql AS $$ SELECT 'dept = 1' $$;
SELECT rustydb.add_policy('vpdx', 'emp_heap', 'p', 'vpdx', 'pred');
SELECT rustydb.add_policy('vpdx', 'emp_rdb', 'p', 'vpdx', 'pred');
-- run an EXPLAIN; its first line, or the error it raised
CREATE FUNCTION vpdx.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
	EXECUTE q INTO r;
	RETURN r;
EXCEPTION WHEN insufficient_privilege THEN
	RETURN 'refused: ' || SQLERRM;
END $$;
RESET ROLE;
ANALYZE vpdx.emp_heap;
ANALYZE vpdx.emp_rdb;
SET ROLE vpdx_user;

-- every plan shape on both access methods (name12 is hidden: dept 2)
CREATE TEMP TABLE shapes (shape text, settings text, q text);
INSERT INTO shapes VALUES
	('seq', 'SET enable_indexscan = off; SET enable_bitmapscan = off', 'SELECT * FROM vpdx.%s WHERE name = ''name12'''),
	('index', 'SET enable_seqscan = off; SET enable_bitmapscan = off', 'SELECT * FROM vpdx.%s WHERE name = ''name12'''),
	('index-only', 'SET enable_seqscan = off; SET enable_bitmapscan = off', 'SELECT name FROM vpdx.%s WHERE name = ''name12'''),
	('bitmap', 'SET enable_seqscan = off; SET enable_indexscan = off', 'SELECT * FROM vpdx.%s WHERE name = ''name12'''),
	('tid', 'SET enable_seqscan = off', 'SELECT * FROM vpdx.%s WHERE ctid = ''(0,12)''');
CREATE TEMP TABLE results (shape text, tab text, opts text, result text);
DO $$
DECLARE s record; t text; o text;
BEGIN
	FOR s IN SELECT * FROM shapes LOOP
		FOREACH t IN ARRAY ARRAY['emp_heap', 'emp_rdb'] LOOP
			FOREACH o IN ARRAY ARRAY['ANALYZE', 'ANALYZE, FORMAT JSON', 'ANALYZE, FORMAT XML',
				'ANALYZE, FORMAT YAML', 'ANALYZE, BUFFERS', 'BUFFERS', 'BUFFERS, FORMAT JSON'] LOOP
				EXECUTE s.settings;
				INSERT INTO results VALUES (s.shape, t, o,
					vpdx.try(format('EXPLAIN (%s, COSTS OFF, TIMING OFF, SUMMARY OFF) ', o) || format(s.q, t)));
				RESET enable_seqscan; RESET enable_indexscan; RESET enable_bitmapscan;
			END LOOP;
		END LOOP;
	END LOOP;
END $$;
SELECT shape, tab, count(*) AS option_sets, min(result) AS result FROM results
	GROUP BY shape, tab, result ORDER BY 1, 2, 4;
-- through a view, a subquery, a CTE, a join with an unprotected table
SELECT vpdx.try('EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM vpdx.v WHERE name = ''name12''');
SELECT vpdx.try('EXPLAIN (ANALYZE, COSTS OFF) SELECT (SELECT count(*) FROM vpdx.emp_rdb)');
SELECT vpdx.try('EXPLAIN (ANALYZE, COSTS OFF) WITH c AS (SELECT * FROM vpdx.emp_heap) SELECT count(*) FROM c');
SELECT vpdx.try('EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM vpdx.open_t o JOIN vpdx.emp_rdb e ON e.id = o.id');
-- plain EXPLAIN: the plan without costs or estimates
EXPLAIN SELECT * FROM vpdx.emp_rdb WHERE id = 12;
EXPLAIN (FORMAT YAML) SELECT * FROM vpdx.emp_rdb WHERE id = 12;
-- prepared statements, custom and generic plans
PREPARE q(text) AS SELECT * FROM vpdx.emp_rdb WHERE name = $1;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE q('name12');
EXPLAIN (BUFFERS, COSTS OFF) EXECUTE q('name12');
EXPLAIN EXECUTE q('name12');
EXPLAIN (COSTS OFF) EXECUTE q('name12');
SET plan_cache_mode = force_generic_plan;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE q('name12');
EXPLAIN (COSTS OFF) EXECUTE q('name12');
RESET plan_cache_mode;
-- under SERIALIZABLE too
BEGIN ISOLATION LEVEL SERIALIZABLE;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM vpdx.emp_heap WHERE id = 12;
ROLLBACK;
-- the queries themselves still work and see only dept 1
SELECT count(*), min(dept), max(dept) FROM vpdx.emp_rdb;
-- an unprotected table: EXPLAIN ANALYZE as usual
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM vpdx.open_t;
-- an exempt role sees every figure
SET ROLE vpdx_exempt;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM vpdx.emp_rdb WHERE name = 'name12';
RESET ROLE;
DROP TABLE shapes, results;
DROP SCHEMA vpdx CASCADE;
DROP ROLE vpdx_owner;
DROP ROLE vpdx_user;
DROP ROLE vpdx_exempt;
