-- the rustydb table access method: own pages, MVCC and WAL
CREATE EXTENSION IF NOT EXISTS pg_walinspect;
SELECT pg_current_wal_flush_lsn() AS lsn_before \gset
CREATE TABLE demo_accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL) USING rustydb;
INSERT INTO demo_accounts SELECT g, 'owner ' || g, 100 FROM generate_series(1, 10000) g;
UPDATE demo_accounts SET balance = balance + 5 WHERE id <= 100;
DELETE FROM demo_accounts WHERE id > 9990;
SELECT a.amname, count(*) AS rows, sum(balance) AS total,
       pg_size_pretty(pg_relation_size('demo_accounts')) AS size
FROM demo_accounts, pg_class c JOIN pg_am a ON a.oid = c.relam
WHERE c.relname = 'demo_accounts' GROUP BY a.amname;
EXPLAIN (COSTS OFF) SELECT * FROM demo_accounts WHERE id = 42;
SELECT * FROM demo_accounts WHERE id = 42;
VACUUM (VERBOSE OFF) demo_accounts;
SELECT count(*) AS problems FROM rustydb.verify_table('demo_accounts');
-- rustydb's WAL records, described by its resource manager
SELECT record_type, count(*) AS records, min(description) AS example
FROM pg_get_wal_records_info(:'lsn_before', pg_current_wal_flush_lsn())
WHERE resource_manager = 'rustydb'
GROUP BY record_type ORDER BY record_type;
