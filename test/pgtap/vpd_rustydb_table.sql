-- VPD on a table of rustydb's own access method (USING rustydb): the same
-- policies, update checks and column masking as on heap tables.
BEGIN;
SELECT plan(6);

SET client_min_messages = warning;
CREATE ROLE vpda_owner NOLOGIN;
CREATE ROLE vpda_user NOLOGIN;
CREATE SCHEMA vpda AUTHORIZATION vpda_owner;
GRANT USAGE ON SCHEMA vpda TO vpda_user;
SET ROLE vpda_owner;
CREATE TABLE vpda.t (id int PRIMARY KEY, region text, secret text) USING rustydb;
INSERT INTO vpda.t SELECT g, CASE WHEN g % 2 = 0 THEN 'north' ELSE 'south' END, 's' || g
	FROM generate_series(1, 200) g;
GRANT SELECT, INSERT, UPDATE ON vpda.t TO vpda_user;
CREATE FUNCTION vpda.pred(s text, o text) RETURNS text LANGUAGE sql AS $$ SELECT 'region = ''north''' $$;
SELECT rustydb.add_policy('vpda', 't', 'north', 'vpda', 'pred', update_check => true);
RESET ROLE;

SELECT is((SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.oid = 'vpda.t'::regclass)::text,
	'rustydb', 'the table uses the rustydb access method');
SET ROLE vpda_user;
SELECT is((SELECT count(*)::int FROM vpda.t), 100, 'policy filters a rustydb table');
SELECT is((SELECT count(*)::int FROM vpda.t WHERE region = 'south'), 0, 'no protected row');
SELECT is((SELECT count(*)::int FROM vpda.t WHERE id = 3), 0, 'no protected row through the primary key index');
SELECT throws_ok($$INSERT INTO vpda.t VALUES (1000, 'south', 'x')$$, '42501', NULL, 'update_check on a rustydb table');
SELECT is_empty($$UPDATE vpda.t SET secret = 'x' WHERE region = 'south' RETURNING id$$,
	'UPDATE cannot reach protected rows of a rustydb table');
RESET ROLE;
SELECT * FROM finish();
ROLLBACK;
