-- Active Session History: views, info, reports (text and HTML) over
-- persisted history rows, argument errors and privileges.
BEGIN;
SELECT plan(34);

SELECT has_view('rustydb', 'active_session_history', 'active_session_history exists');
SELECT columns_are('rustydb', 'active_session_history', ARRAY[
	'sample_id', 'sample_time', 'pid', 'leader_pid', 'backend_type', 'datid', 'datname',
	'usesysid', 'usename', 'application_name', 'client_addr', 'client_port', 'state',
	'session_state', 'wait_event_type', 'wait_event', 'query_id', 'query', 'xact_start',
	'query_start', 'blocking_pids', 'blocking_pids_total', 'sample_interval_ms'],
	'active_session_history has the documented columns');
SELECT has_view('rustydb', 'ash_info', 'ash_info exists');
SELECT has_view('rustydb', 'ash_history', 'ash_history exists');
SELECT has_view('rustydb', 'wait_events', 'wait_events exists');

-- ash_info
SELECT is((SELECT count(*) FROM rustydb.ash_info), 1::bigint, 'ash_info has one row');
SELECT is((SELECT ring_size FROM rustydb.ash_info),
	current_setting('rustydb.ash_max_entries')::int, 'ring_size is ash_max_entries');
SELECT ok((SELECT count(*) FROM rustydb.active_session_history) <= (SELECT ring_size FROM rustydb.ash_info),
	'the ring view never holds more than ring_size rows');
SELECT ok((SELECT memory_bytes >= ring_size::bigint * query_text_size FROM rustydb.ash_info),
	'memory_bytes covers the ring');
SELECT ok((SELECT memory_bytes <= s.size FROM rustydb.ash_info, pg_shmem_allocations s
	WHERE s.name = 'rustydb ash'), 'memory_bytes is what the segment allocated');
SELECT is((SELECT query_text_size FROM rustydb.ash_info),
	(SELECT setting::int FROM pg_settings WHERE name = 'rustydb.ash_query_text_size'), 'query_text_size is the setting');

-- the ring is newest first
SELECT ok((SELECT bool_and(a.sample_id >= b.sample_id)
	FROM (SELECT sample_id, row_number() OVER () AS n FROM rustydb.active_session_history) a
	JOIN (SELECT sample_id, row_number() OVER () AS n FROM rustydb.active_session_history) b
	ON b.n = a.n + 1) IS NOT FALSE, 'active_session_history is newest first');
SELECT ok((SELECT bool_and(wait_event_type IS NOT NULL AND wait_event IS NOT NULL
	AND (wait_event_type <> 'CPU' OR session_state = 'ON CPU'))
	FROM rustydb.active_session_history) IS NOT FALSE, 'every row has a wait event, CPU when none');

-- rustydb's own wait events
SELECT ok((SELECT count(*) >= 3 FROM rustydb.wait_events WHERE wait_event_type = 'rustydb'),
	'rustydb lists its own wait events');
SELECT is((SELECT wait_event_info & x'FF00FF00'::bigint FROM rustydb.wait_events WHERE wait_event = 'SelfTestWait'),
	x'07005200'::bigint, 'rustydb wait events live in the Extension class with the R marker');

-- reports over persisted history: one session sampled 10 times, 10 s apart,
-- persisted 1 in 10 at a 1 s interval: 100 s of DB time over 100 s
INSERT INTO rustydb.ash_history_data (id, sample_id, sample_time, pid, backend_type, usename,
	application_name, session_state, wait_event_type, wait_event, query_id, query,
	blocking_pids, sample_interval_ms, persist_every)
SELECT -i, i * 10, timestamptz '2000-01-01 00:00:00+00' + (i - 1) * interval '10 s', 4242,
	'client backend', 'alice', 'app <b>', CASE WHEN i <= 6 THEN 'WAITING' ELSE 'ON CPU' END,
	CASE WHEN i <= 6 THEN 'Lock' ELSE 'CPU' END, CASE WHEN i <= 6 THEN 'transactionid' ELSE 'CPU' END,
	77, 'UPDATE t SET v = 1 WHERE x < 3 & y', CASE WHEN i <= 6 THEN ARRAY[4343] ELSE '{}' END,
	1000, 10
FROM generate_series(1, 10) i;

CREATE TEMP TABLE rep AS
	SELECT row_number() OVER () AS n, l FROM rustydb.ash_report('2000-01-01 00:00:00+00', '2000-01-01 01:00:00+00') l;
SELECT is((SELECT l FROM rep WHERE l LIKE 'Average active sessions%'),
	'Average active sessions    1.00', 'history rows are weighted by interval and persist_every');
SELECT is((SELECT l FROM rep WHERE l LIKE 'DB time (s)%'), 'DB time (s)                100.00', 'DB time from history');
SELECT is((SELECT l FROM rep WHERE l LIKE 'Active session rows%'), 'Active session rows        10 (ring 0, history 10)', 'rows counted by source');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE l ~ '^Lock +transactionid +6 +60\.0 +0\.60$'), 'top wait event: Lock 60%');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE l ~ '^CPU +CPU +4 +40\.0 +0\.40$'), 'then CPU 40%');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE l ~ '^77 +10 +100\.0 +Lock: transactionid +UPDATE t SET v = 1'), 'top SQL with its top event and text');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE l ~ '^4242 +alice +app <b> +10 +100\.0 +Lock: transactionid$'), 'top session');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE l ~ '^4343 +6 +60\.0 +1 +\(not sampled\)'), 'top blocking session');
SELECT is((SELECT count(*) FROM rep WHERE l ~ '^2000-01-01'), 10::bigint, 'activity over time has 10 slots');
SELECT ok((SELECT array_agg(n ORDER BY n) FROM rep WHERE l IN ('Top Wait Events', 'Top SQL', 'Top Sessions',
	'Top Blocking Sessions', 'Activity Over Time')) IS NOT NULL
	AND (SELECT count(*) FROM rep WHERE l IN ('Top Wait Events', 'Top SQL', 'Top Sessions',
	'Top Blocking Sessions', 'Activity Over Time')) = 5, 'the report has its five sections');

CREATE TEMP TABLE html AS
	SELECT rustydb.ash_report_html('2000-01-01 00:00:00+00', '2000-01-01 01:00:00+00') AS h;
SELECT ok((SELECT h ~ '^<!DOCTYPE html>' AND h ~ '</html>$' FROM html), 'HTML report is one page');
SELECT ok((SELECT h !~ '(<script|<link|src=|href=)' FROM html), 'HTML report is self-contained');
SELECT is((SELECT count(*) FROM html, regexp_matches(h, '<rect class="aas" data-class="Lock"', 'g')), 6::bigint,
	'the chart has a Lock bar per Lock sample bucket');
SELECT ok((SELECT h LIKE '%app &lt;b&gt;%' AND h LIKE '%x &lt; 3 &amp; y%' AND h NOT LIKE '%app <b>%' FROM html),
	'HTML report escapes text');

-- argument errors
SELECT throws_ok($$SELECT rustydb.ash_report(NULL, now())$$, '22004', 'argument "p_from" must not be null',
	'a NULL range is refused');
SELECT throws_ok($$SELECT rustydb.ash_report_html(now(), now() - interval '1 hour')$$, '22023',
	'report range starts after it ends', 'a reversed range is refused');
SELECT throws_ok($$SELECT * FROM rustydb._ash_ring(0, NULL, 0)$$, '22023', NULL, 'every must be positive');
SELECT throws_ok($$SELECT rustydb.ash_selftest_wait(-1)$$, '22023', NULL, 'negative wait refused');

-- privileges: the ring shows every user's queries, like pg_stat_activity
CREATE ROLE ash_tap_nobody;
SET LOCAL ROLE ash_tap_nobody;
SELECT throws_ok($$SELECT count(*) FROM rustydb.active_session_history$$, '42501', NULL,
	'an unprivileged role cannot read the ring');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
