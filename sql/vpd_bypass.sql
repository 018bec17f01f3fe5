-- VPD: paths whose output must be compared exactly (COPY TO, EXPLAIN,
-- error messages), as an unprivileged role.
CREATE EXTENSION IF NOT EXISTS rustydb;
SET client_min_messages = warning;
CREATE ROLE vpdr_owner NOLOGIN;
CREATE ROLE vpdr_user NOLOGIN;
RESET client_min_messages;
CREATE SCHEMA vpdr AUTHORIZATION vpdr_owner;
GRANT USAGE ON SCHEMA vpdr TO vpdr_user;
SET ROLE vpdr_owner;
CREATE TABLE vpdr.t (id int PRIMARY KEY, region text, secret text);
INSERT INTO vpdr.t SELECT g, CASE WHEN g % 2 = 0 THEN 'north' ELSE 'south' END, 'secret-' || g
	FROM generate_series(1, 10) g;
GRANT SELECT, INSERT ON vpdr.t TO vpdr_user;
CREATE FUNCTION vpdr.pred(s text, o text) RETURNS text LANGUAGE sql AS $$ SELECT 'region = ''north''' $$;
SELECT rustydb.add_policy('vpdr', 't', 'north_only', 'vpdr', 'pred', policy_type => 'static');
SET ROLE vpdr_user;
-- COPY TO: the table form is rewritten into a query through the policy
COPY vpdr.t TO STDOUT;
COPY (SELECT * FROM vpdr.t WHERE region = 'south') TO STDOUT;
COPY vpdr.t (id) TO STDOUT;
-- COPY FROM is refused under row security (use INSERT)
COPY vpdr.t FROM STDIN;
11	north	x
\.
-- EXPLAIN shows the predicate as a filter or an index condition
EXPLAIN (COSTS OFF) SELECT * FROM vpdr.t;
EXPLAIN (COSTS OFF) SELECT * FROM vpdr.t WHERE id = 3;
-- EXPLAIN ANALYZE: refused under a policy (vpd_explain.sql tries every plan shape)
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM vpdr.t WHERE secret LIKE 'secret%';
RESET ROLE;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM vpdr.t WHERE secret LIKE 'secret-1%';
-- errors reveal no protected value
SET ROLE vpdr_user;
SELECT id / (id - 3) FROM vpdr.t;       -- row 3 is protected: no division by zero
SELECT secret::int FROM vpdr.t WHERE id = 1;
RESET ROLE;
DROP SCHEMA vpdr CASCADE;
DROP ROLE vpdr_user;
DROP ROLE vpdr_owner;
