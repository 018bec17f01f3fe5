-- What ANALYZE stores for encrypted tables (rustydb.tde_statistics,
-- docs/tde.md "Statistics"): under value_free (the default) null
-- fractions, widths, distinct counts and correlations, never a value;
-- compared with a heap twin whose rows are all in ANALYZE's sample, so
-- both sides' statistics are exact and deterministic. A correlation
-- depends on the table's physical order, which differs between the
-- twins: each is compared with the one its own rows' order gives.
CREATE EXTENSION IF NOT EXISTS rustydb;
SET client_min_messages = warning;
SHOW rustydb.tde_statistics;

-- (w: values over 1 kB, which ANALYZE does not compare: counted as distinct)
CREATE TABLE st_enc (id int PRIMARY KEY, grp int, v text, n int, ord int, p point, w text)
	USING rustydb WITH (encrypted = true);
CREATE TABLE st_heap (id int PRIMARY KEY, grp int, v text, n int, ord int, p point, w text) USING heap;
INSERT INTO st_enc
	SELECT i, i % 10, CASE WHEN i % 7 = 0 THEN NULL ELSE repeat('x', i % 50) || (i % 100) END,
	       CASE WHEN i % 3 = 0 THEN NULL ELSE i % 1000 END, -i, point(i, i),
	       CASE WHEN i % 10 = 0 THEN repeat(md5((i % 40)::text), 33) END
	FROM generate_series(1, 5000) i;
INSERT INTO st_heap SELECT * FROM st_enc;
ANALYZE st_enc;
ANALYZE st_heap;

-- the view the planner's users read: the same figures, no value
CREATE FUNCTION st_stats(t name)
RETURNS TABLE (attname name, null_frac real, avg_width int, n_distinct real, correlated boolean,
			   has_values boolean)
LANGUAGE sql AS $$
	SELECT attname, null_frac, avg_width, n_distinct, correlation IS NOT NULL,
	       most_common_vals IS NOT NULL OR histogram_bounds IS NOT NULL
	FROM pg_stats WHERE tablename = t ORDER BY attname
$$;
-- what ANALYZE's correlation is when every row is sampled: the Pearson
-- correlation of the non-null values' ranks by value and by position
CREATE FUNCTION st_corr(t regclass, c name) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE r float8;
BEGIN
	EXECUTE format('SELECT corr(rv, rp) FROM (SELECT row_number() OVER (ORDER BY %I, ctid) rv,
		row_number() OVER (ORDER BY ctid) rp FROM %s WHERE %I IS NOT NULL) s', c, t, c) INTO r;
	RETURN r;
END $$;
CREATE FUNCTION st_differences() RETURNS TABLE (attname name, what text) LANGUAGE sql AS $$
	SELECT attname, 'heap twin' FROM st_stats('st_enc') e FULL JOIN st_stats('st_heap') h USING (attname)
	WHERE (e.null_frac, e.avg_width, e.n_distinct, e.correlated)
		  IS DISTINCT FROM (h.null_frac, h.avg_width, h.n_distinct, h.correlated)
	UNION ALL
	SELECT attname, 'correlation ' || tablename FROM pg_stats
	WHERE tablename IN ('st_enc', 'st_heap') AND attname NOT IN ('p', 'w')
	  AND NOT abs(correlation - st_corr(tablename::regclass, attname)) < 1e-5 -- (a real against a float8)
$$;
SELECT * FROM st_stats('st_enc');
SELECT * FROM st_differences();
-- pg_statistic itself: no value array, only correlation slots
SELECT count(*) AS rows,
       count(*) FILTER (WHERE stavalues1 IS NOT NULL OR stavalues2 IS NOT NULL OR
                               stavalues3 IS NOT NULL OR stavalues4 IS NOT NULL OR
                               stavalues5 IS NOT NULL) AS with_values,
       array_agg(DISTINCT stakind1) AS kinds1,
       count(*) FILTER (WHERE stakind2 <> 0 OR stakind3 <> 0 OR stakind4 <> 0 OR stakind5 <> 0)
	       AS other_kinds
FROM pg_statistic WHERE starelid = 'st_enc'::regclass;

-- the planner's estimates are the heap twin's
CREATE FUNCTION st_rows(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO j;
	RETURN (j->0->'Plan'->>'Plan Rows')::int;
END $$;
SELECT q, st_rows(format(q, 'st_enc')) AS encrypted, st_rows(format(q, 'st_heap')) AS heap
FROM (VALUES ('SELECT * FROM %s WHERE id = 42'), ('SELECT * FROM %s WHERE grp = 3'),
             ('SELECT * FROM %s WHERE n IS NULL'), ('SELECT DISTINCT v FROM %s'),
             ('SELECT * FROM %s WHERE v = ''abc''')) AS w(q);
-- a key lookup is an index scan, also as a generic plan
EXPLAIN (COSTS OFF) SELECT v FROM st_enc WHERE id = 42;
PREPARE st_lookup(int) AS SELECT v FROM st_enc WHERE id = $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE st_lookup(42);
RESET plan_cache_mode;
EXECUTE st_lookup(42);
DEALLOCATE st_lookup;

-- rows read through in-place updates' undo chains (version of the row
-- the sample sees), and a rolled-back update
UPDATE st_enc SET n = coalesce(n, 0) + 1 WHERE id % 2 = 0;
UPDATE st_heap SET n = coalesce(n, 0) + 1 WHERE id % 2 = 0;
BEGIN;
UPDATE st_enc SET n = NULL WHERE id % 5 = 0;
ROLLBACK;
ANALYZE st_enc;
ANALYZE st_heap;
SELECT * FROM st_differences();
SELECT null_frac, n_distinct FROM pg_stats WHERE tablename = 'st_enc' AND attname = 'n';

-- n_distinct set by the DBA wins, as for any table
ALTER TABLE st_enc ALTER COLUMN grp SET (n_distinct = 42);
ANALYZE st_enc;
SELECT n_distinct FROM pg_stats WHERE tablename = 'st_enc' AND attname = 'grp';
ALTER TABLE st_enc ALTER COLUMN grp RESET (n_distinct);
-- a column with statistics target 0 gets none
ALTER TABLE st_enc ALTER COLUMN ord SET STATISTICS 0;
ANALYZE st_enc;
SELECT count(*) AS ord_rows FROM pg_stats WHERE tablename = 'st_enc' AND attname = 'ord';
ALTER TABLE st_enc ALTER COLUMN ord SET STATISTICS -1;

-- a sample smaller than the table (300 rows of 5,000, from at most 300
-- pages): the reservoir; what a random sample cannot change
ALTER TABLE st_enc ALTER COLUMN id SET STATISTICS 1, ALTER COLUMN grp SET STATISTICS 1,
	ALTER COLUMN v SET STATISTICS 1, ALTER COLUMN n SET STATISTICS 1,
	ALTER COLUMN ord SET STATISTICS 1, ALTER COLUMN p SET STATISTICS 1,
	ALTER COLUMN w SET STATISTICS 1;
ANALYZE st_enc;
SELECT attname, n_distinct FROM pg_stats
WHERE tablename = 'st_enc' AND attname IN ('id', 'grp', 'ord') ORDER BY attname;
SELECT reltuples BETWEEN 4000 AND 6000 AS reltuples_near FROM pg_class WHERE relname = 'st_enc';
ALTER TABLE st_enc ALTER COLUMN id SET STATISTICS -1, ALTER COLUMN grp SET STATISTICS -1,
	ALTER COLUMN v SET STATISTICS -1, ALTER COLUMN n SET STATISTICS -1,
	ALTER COLUMN ord SET STATISTICS -1, ALTER COLUMN p SET STATISTICS -1,
	ALTER COLUMN w SET STATISTICS -1;

-- none: row counts only; full: everything; then value_free deletes the values
SET rustydb.tde_statistics = none;
ANALYZE st_enc;
SELECT count(*) AS column_stats FROM pg_stats WHERE tablename = 'st_enc';
SELECT reltuples FROM pg_class WHERE relname = 'st_enc';
SET rustydb.tde_statistics = full;
ANALYZE st_enc;
SELECT count(*) FILTER (WHERE histogram_bounds IS NOT NULL) > 0 AS full_has_values
FROM pg_stats WHERE tablename = 'st_enc';
RESET rustydb.tde_statistics;
ANALYZE st_enc;
SELECT count(*) > 0 AS column_stats,
       count(*) FILTER (WHERE most_common_vals IS NOT NULL OR histogram_bounds IS NOT NULL)
	       AS with_values
FROM pg_stats WHERE tablename = 'st_enc';
-- twice in one transaction: the second replaces the first
BEGIN;
ANALYZE st_enc;
ANALYZE st_enc;
COMMIT;
SELECT count(*) AS column_stats FROM pg_stats WHERE tablename = 'st_enc';

-- a partition of a partitioned table, analyzed through its parent
CREATE TABLE st_parted (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE st_part1 PARTITION OF st_parted FOR VALUES FROM (0) TO (1000)
	USING rustydb WITH (encrypted = true);
INSERT INTO st_parted SELECT i, 'p' || (i % 4) FROM generate_series(0, 999) i;
ANALYZE st_parted;
SELECT tablename, attname, n_distinct, most_common_vals IS NULL AS no_values
FROM pg_stats WHERE tablename IN ('st_parted', 'st_part1') ORDER BY tablename, attname;

-- large values stored out of line: too wide to compare, so ANALYZE
-- neither fetches nor opens them; their width is their 18-byte TOAST
-- pointers', as heap's; unique for both. The same rows' other values are
-- sealed one by one (a row with large values): opened and compared
CREATE TABLE st_large (id int, big text, s text) USING rustydb WITH (encrypted = true);
CREATE TABLE st_large_heap (id int, big text, s text) USING heap;
INSERT INTO st_large
	SELECT i, (SELECT string_agg(md5((i * 100 + j)::text), '') FROM generate_series(1, 100) j),
	       repeat('s', 30) || (i % 7)
	FROM generate_series(1, 200) i;
INSERT INTO st_large_heap SELECT * FROM st_large;
ANALYZE st_large;
ANALYZE st_large_heap;
SELECT tablename, attname, null_frac, avg_width, n_distinct FROM pg_stats
WHERE attname IN ('big', 's') AND tablename IN ('st_large', 'st_large_heap') ORDER BY attname, tablename;

-- an empty table and a table of nulls
CREATE TABLE st_empty (a int, b text) USING rustydb WITH (encrypted = true);
ANALYZE st_empty;
SELECT count(*) FROM pg_stats WHERE tablename = 'st_empty';
INSERT INTO st_empty SELECT NULL, NULL FROM generate_series(1, 10);
ANALYZE st_empty;
SELECT attname, null_frac, avg_width, n_distinct, correlation FROM pg_stats
WHERE tablename = 'st_empty' ORDER BY attname;

DROP FUNCTION st_differences();
DROP TABLE st_enc, st_heap, st_parted, st_empty, st_large, st_large_heap;
DROP FUNCTION st_stats(name);
DROP FUNCTION st_corr(regclass, name);
DROP FUNCTION st_rows(text);
