-- Sealed statement text in rustydb's own tables (docs/tde.md, "rustydb's own
-- tables"): values sealed by rustydb._seal_text (as the ASH worker and the
-- audit worker store them while a key provider is configured; regress.conf
-- configures one) read whole through the views. The audit worker and its
-- trail are checked end to end by test/scenarios/tde_text.sh.
SELECT rustydb._seal_text('rustydb.ash_history_data', 'query', -1, NULL) IS NULL AS strict;
INSERT INTO rustydb.ash_history_data (id, sample_id, sample_time, pid, session_state,
	wait_event_type, wait_event, query, query_sealed, sample_interval_ms, persist_every)
SELECT -i, i, timestamptz '2000-01-01 00:00:00+00' + i * interval '1 s', 4242, 'ON CPU', 'CPU', 'CPU',
	CASE WHEN i = 3 THEN 'SELECT ''stored before a key provider was configured''' END,
	CASE WHEN i < 3 THEN rustydb._seal_text('rustydb.ash_history_data', 'query', -i,
		format('INSERT INTO enc VALUES (%s, ''secret %s'')', i, i)) END,
	1000, 1
FROM generate_series(1, 3) i;
-- stored: no text, sealed bytes that do not hold it
SELECT id, query IS NULL AS text_null, length(query_sealed) - length(convert_to(format('INSERT INTO enc VALUES (%s, ''secret %s'')', -id, -id), 'UTF8')) AS overhead,
	position('secret'::bytea IN query_sealed) AS found
FROM rustydb.ash_history_data WHERE id < 0 ORDER BY id DESC;
-- the view opens them
SELECT id, query FROM rustydb.ash_history WHERE id < 0 ORDER BY id DESC;
-- the key is rustydb's own, in rustydb.table_keys like a table's
SELECT "table", encrypted, key_version FROM rustydb.encryption_status WHERE "table" = 'rustydb.ash_history_data'::regclass;
SELECT "check", ok FROM rustydb.verify_encryption('rustydb.ash_history_data');
-- a value moved to another row or column does not open
SELECT rustydb._open_text('rustydb.ash_history_data', 'query', -2, query_sealed) FROM rustydb.ash_history_data WHERE id = -1;
SELECT rustydb._open_text('rustydb._audit_records', 'statement', -1, query_sealed) FROM rustydb.ash_history_data WHERE id = -1;
-- nor a table payload
SELECT rustydb._open_text('rustydb.ash_history_data', 'query', -1, set_byte(rustydb._seal_text('rustydb.ash_history_data', 'query', -1, 'x'), 1, 0));
-- only rustydb's sealed columns
SELECT rustydb._open_text('rustydb.ash_history_data', 'usename', -1, '\x00');
SELECT rustydb._seal_text('pg_class', 'query', -1, 'x');
SELECT rustydb.rotate_table_key('rustydb.ash_history_data');
-- privileges: sealing is for superusers; opening needs SELECT on the table or its view
CREATE ROLE tde_text_user;
SET ROLE tde_text_user;
SELECT rustydb._seal_text('rustydb.ash_history_data', 'query', -1, 'x');
SELECT rustydb._open_text('rustydb.ash_history_data', 'query', -1, '\x00');
RESET ROLE;
GRANT pg_read_all_stats TO tde_text_user;
SET ROLE tde_text_user;
SELECT id, query FROM rustydb.ash_history WHERE id = -1;
RESET ROLE;
DELETE FROM rustydb.ash_history_data WHERE id < 0;
DROP ROLE tde_text_user;
