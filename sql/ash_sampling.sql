-- Active Session History, acceptance 1: a session sleeping in pg_sleep is
-- sampled with its wait event and query id; a session blocked on a row lock
-- with the blocking pid and its own query id; rustydb's own wait events get
-- rustydb's names; idle and idle-in-transaction sessions are not sampled.
CREATE EXTENSION IF NOT EXISTS dblink;
ALTER SYSTEM SET rustydb.ash_sampling_interval = '20ms';
SELECT pg_reload_conf();
-- wait (at most 30 s) until the sampler runs at 20 ms
DO $$
BEGIN
	FOR i IN 1 .. 3000 LOOP
		EXIT WHEN (SELECT sampling_interval_ms = 20 AND enabled FROM rustydb.ash_info);
		PERFORM pg_sleep(0.01);
	END LOOP;
END
$$;
SELECT enabled, sampling_interval_ms, worker_pid IS NOT NULL AS worker_running FROM rustydb.ash_info;

CREATE TABLE ash_t (id int PRIMARY KEY, v int);
INSERT INTO ash_t VALUES (1, 0);

SELECT dblink_connect('sleeper', 'dbname=' || current_database());
SELECT dblink_connect('blocked', 'dbname=' || current_database());
SELECT dblink_connect('own_wait', 'dbname=' || current_database());
SELECT dblink_connect('idle', 'dbname=' || current_database());
SELECT dblink_connect('idle_tx', 'dbname=' || current_database());
CREATE TEMP TABLE ash_pids AS
	SELECT 'sleeper' AS who, p FROM dblink('sleeper', 'SELECT pg_backend_pid()') AS t(p int)
	UNION ALL SELECT 'blocked', p FROM dblink('blocked', 'SELECT pg_backend_pid()') AS t(p int)
	UNION ALL SELECT 'own_wait', p FROM dblink('own_wait', 'SELECT pg_backend_pid()') AS t(p int)
	UNION ALL SELECT 'idle', p FROM dblink('idle', 'SELECT pg_backend_pid()') AS t(p int)
	UNION ALL SELECT 'idle_tx', p FROM dblink('idle_tx', 'SELECT pg_backend_pid()') AS t(p int);
SELECT dblink_exec('idle_tx', 'BEGIN');
SELECT * FROM dblink('idle_tx', 'SELECT 1') AS t(x int);
-- from now on the idle sessions are idle (their state is set before the reply)
CREATE TEMP TABLE ash_mark AS SELECT clock_timestamp() AS t;

BEGIN;
UPDATE ash_t SET v = 1 WHERE id = 1;  -- hold the row lock
SELECT dblink_send_query('sleeper', 'SELECT pg_sleep(3) /* ash sleeper */');
SELECT dblink_send_query('blocked', 'UPDATE ash_t SET v = 2 WHERE id = 1 /* ash blocked */');
SELECT dblink_send_query('own_wait', 'SELECT rustydb.ash_selftest_wait(3000) /* ash own wait */');
-- wait (at most 20 s) until the sampler has seen all three waiting
DO $$
BEGIN
	FOR i IN 1 .. 2000 LOOP
		EXIT WHEN (SELECT count(DISTINCT a.pid) = 3 FROM rustydb.active_session_history a
		           JOIN ash_pids p ON p.p = a.pid
		           WHERE (p.who = 'sleeper' AND a.wait_event = 'PgSleep')
		              OR (p.who = 'blocked' AND a.wait_event_type = 'Lock')
		              OR (p.who = 'own_wait' AND a.wait_event = 'SelfTestWait'));
		PERFORM pg_sleep(0.01);
	END LOOP;
END
$$;

-- the sleeping session: its wait event, and the query id PostgreSQL reports for it
SELECT a.backend_type, a.state, a.session_state, a.wait_event_type, a.wait_event,
       a.query_id IS NOT NULL AS has_query_id,
       a.query_id = (SELECT query_id FROM pg_stat_activity WHERE pid = p.p) AS same_query_id_as_pg_stat_activity,
       a.query, a.datname = current_database() AS right_db, a.usename = current_user AS right_user,
       a.blocking_pids
FROM rustydb.active_session_history a JOIN ash_pids p ON p.p = a.pid
WHERE p.who = 'sleeper' AND a.wait_event = 'PgSleep'
LIMIT 1;

-- the blocked session: Lock wait, blocked by this session, with its own query id
SELECT a.state, a.session_state, a.wait_event_type, a.wait_event,
       a.blocking_pids = ARRAY[pg_backend_pid()] AS blocked_by_me,
       a.blocking_pids_total,
       a.query_id IS NOT NULL AS has_query_id,
       a.query_id = (SELECT query_id FROM pg_stat_activity WHERE pid = p.p) AS same_query_id_as_pg_stat_activity,
       a.query_id <> (SELECT query_id FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS not_blockers_query_id,
       a.query, a.xact_start IS NOT NULL AS has_xact_start
FROM rustydb.active_session_history a JOIN ash_pids p ON p.p = a.pid
WHERE p.who = 'blocked' AND a.wait_event_type = 'Lock'
LIMIT 1;

-- rustydb's own wait event, under rustydb's name
SELECT a.wait_event_type, a.wait_event, a.query_id IS NOT NULL AS has_query_id, a.query
FROM rustydb.active_session_history a JOIN ash_pids p ON p.p = a.pid
WHERE p.who = 'own_wait' AND a.wait_event = 'SelfTestWait'
LIMIT 1;
SELECT wait_event_type, wait_event, description FROM rustydb.wait_events ORDER BY wait_event_info;

-- idle and idle-in-transaction sessions are never sampled
SELECT p.who, count(a.pid) AS rows_in_ash
FROM ash_pids p LEFT JOIN rustydb.active_session_history a
	ON a.pid = p.p AND a.sample_time > (SELECT t FROM ash_mark)
WHERE p.who IN ('idle', 'idle_tx')
GROUP BY p.who ORDER BY p.who;

-- this session shows up in the report's blocking sessions
SELECT count(*) = 1 AS report_names_me_as_blocker
FROM rustydb._ash_sections(now() - interval '1 minute', now() + interval '1 minute') s
WHERE s.section = 'blockers' AND s.c1 = pg_backend_pid()::text;
SELECT count(*) AS report_has_blocking_section
FROM rustydb.ash_report(now() - interval '1 minute', now() + interval '1 minute') l
WHERE l = 'Top Blocking Sessions';
COMMIT;

SELECT * FROM dblink_get_result('sleeper') AS t(x text);
SELECT * FROM dblink_get_result('blocked') AS t(x text);
SELECT * FROM dblink_get_result('own_wait') AS t(x text);
SELECT dblink_disconnect('sleeper'), dblink_disconnect('blocked'), dblink_disconnect('own_wait'),
       dblink_disconnect('idle'), dblink_disconnect('idle_tx');

ALTER SYSTEM RESET rustydb.ash_sampling_interval;
SELECT pg_reload_conf();
DROP TABLE ash_t;

-- rustydb's own idle waits (a worker's main loop waiting for work) are not
-- activity, and rustydb's workers never show the bare Extension/Extension
-- PostgreSQL reports for extensions (dblink's waits above do)
SELECT count(*) AS idle_or_unnamed_rustydb_waits
FROM rustydb.active_session_history
WHERE (wait_event_type = 'rustydb' AND wait_event IN ('AuditWriterMain', 'AshSamplerMain'))
   OR (backend_type LIKE 'rustydb %' AND wait_event_type = 'Extension');
-- (the audit writer sleeps in AuditWriterMain between batches: were it
-- counted, this session's samples would show it nearly every second)
