--
-- rustydb WAL: the custom resource manager "rustydb" (id 144) and its
-- records as pg_walinspect shows them.
--
CREATE EXTENSION IF NOT EXISTS rustydb;
CREATE SCHEMA am_wal;
CREATE EXTENSION pg_walinspect SCHEMA am_wal;
SET search_path = am_wal;
-- the out-of-place forms; in-place updates and their records: am_inplace
SET rustydb.update_in_place = off;

SELECT rm_id, rm_name, rm_builtin FROM pg_get_wal_resource_managers() WHERE rm_name = 'rustydb';

CREATE TABLE w (a int PRIMARY KEY, b text) USING rustydb;
CREATE TABLE lsn (name text, l pg_lsn);
INSERT INTO lsn VALUES ('start', pg_current_wal_insert_lsn());

INSERT INTO w VALUES (1, 'one');
INSERT INTO w SELECT g, 'bulk' FROM generate_series(2, 4) g;
COPY w FROM stdin;
5	copied
6	copied
\.
UPDATE w SET b = 'changed' WHERE a = 1;
DELETE FROM w WHERE a = 2;
SELECT a FROM w WHERE a = 3 FOR UPDATE;
INSERT INTO w VALUES (4, 'x') ON CONFLICT (a) DO UPDATE SET b = 'upserted';
INSERT INTO w VALUES (7, 'x') ON CONFLICT (a) DO NOTHING;
VACUUM (FREEZE) w;
INSERT INTO lsn VALUES ('end', pg_current_wal_insert_lsn());

-- every rustydb record kind used above, in order, with its description
SELECT record_type, regexp_replace(description, '(xmax|cutoff_xid|latest_removed_xid|infomask2?) (0x)?[0-9A-F]+', '\1 N', 'g') AS description
FROM pg_get_wal_records_info((SELECT l FROM lsn WHERE name = 'start'), (SELECT l FROM lsn WHERE name = 'end'))
WHERE resource_manager = 'rustydb'
ORDER BY start_lsn;

SELECT a, b FROM w ORDER BY a;
SELECT * FROM rustydb.verify_table('w');

RESET search_path;
RESET rustydb.update_in_place;
DROP SCHEMA am_wal CASCADE;
