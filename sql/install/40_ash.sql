-- rustydb Active Session History: ring view, info, history, reports.
-- Part of rustydb--0.1.0.sql (assembled by the Makefile from sql/install/*.sql).
-- ASH shows every user's queries: like pg_stat_activity's query column, it is
-- readable by superusers and members of pg_read_all_stats only.

CREATE FUNCTION rustydb._ash_ring(
	after_row bigint, upto_row bigint, every integer,
	OUT row_no bigint,
	OUT sample_id bigint,
	OUT sample_time timestamptz,
	OUT pid integer,
	OUT leader_pid integer,
	OUT backend_type text,
	OUT datid oid,
	OUT usesysid oid,
	OUT application_name text,
	OUT client_addr inet,
	OUT client_port integer,
	OUT state text,
	OUT session_state text,
	OUT wait_event_type text,
	OUT wait_event text,
	OUT query_id bigint,
	OUT query text,
	OUT xact_start timestamptz,
	OUT query_start timestamptz,
	OUT blocking_pids integer[],
	OUT sample_interval_ms integer,
	OUT blocking_pids_total integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rustydb_ash_ring'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION rustydb._ash_ring(bigint, bigint, integer) FROM PUBLIC;

CREATE VIEW rustydb.active_session_history AS
	SELECT r.sample_id, r.sample_time, r.pid, r.leader_pid, r.backend_type,
	       r.datid, d.datname, r.usesysid, a.rolname AS usename,
	       r.application_name, r.client_addr, r.client_port, r.state,
	       r.session_state, r.wait_event_type, r.wait_event, r.query_id,
	       r.query, r.xact_start, r.query_start, r.blocking_pids,
	       r.blocking_pids_total, r.sample_interval_ms
	FROM rustydb._ash_ring(0, NULL, 1) r
	LEFT JOIN pg_catalog.pg_database d ON d.oid = r.datid
	LEFT JOIN pg_catalog.pg_roles a ON a.oid = r.usesysid
	ORDER BY r.sample_id DESC, r.pid;
COMMENT ON VIEW rustydb.active_session_history IS 'Active Session History: the in-memory ring of sampled active sessions, newest first';

CREATE FUNCTION rustydb._ash_info(
	OUT enabled boolean,
	OUT sampling_interval_ms integer,
	OUT ring_size integer,
	OUT rows_in_ring bigint,
	OUT rows_written bigint,
	OUT rows_overwritten bigint,
	OUT samples_taken bigint,
	OUT samples_dropped bigint,
	OUT rows_skipped bigint,
	OUT oldest_sample timestamptz,
	OUT newest_sample timestamptz,
	OUT rows_persisted bigint,
	OUT rows_not_persisted bigint,
	OUT persist_status text,
	OUT last_persist timestamptz,
	OUT memory_bytes bigint,
	OUT query_text_size integer,
	OUT avg_sample_us double precision,
	OUT last_sample_us double precision,
	OUT sessions_last_sample integer,
	OUT max_sessions_per_sample bigint,
	OUT worker_pid integer,
	OUT worker_starts integer)
RETURNS record
AS 'MODULE_PATHNAME', 'rustydb_ash_info'
LANGUAGE C VOLATILE;

CREATE VIEW rustydb.ash_info AS SELECT * FROM rustydb._ash_info();
COMMENT ON VIEW rustydb.ash_info IS 'Active Session History: sampler settings, ring usage and counters';

CREATE FUNCTION rustydb._wait_events(
	OUT wait_event_type text, OUT wait_event text, OUT wait_event_info bigint,
	OUT description text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rustydb_wait_events'
LANGUAGE C IMMUTABLE;
CREATE VIEW rustydb.wait_events AS SELECT * FROM rustydb._wait_events();
COMMENT ON VIEW rustydb.wait_events IS 'wait events rustydb reports under names of its own';

CREATE FUNCTION rustydb.ash_selftest_wait(ms integer)
RETURNS void
AS 'MODULE_PATHNAME', 'rustydb_ash_selftest_wait'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION rustydb.ash_selftest_wait(integer) FROM PUBLIC;
COMMENT ON FUNCTION rustydb.ash_selftest_wait(integer) IS 'wait ms milliseconds in rustydb''s SelfTestWait event (diagnostic)';

-- Persisted samples, written by the sampler worker of the database named by
-- rustydb.ash_database. The worker assigns consecutive ids and deletes
-- id <= newest - ash_retention_rows in the same transaction as each insert,
-- so the table never holds more than ash_retention_rows rows.
CREATE TABLE rustydb.ash_history_data (
	id bigint PRIMARY KEY,
	sample_id bigint NOT NULL,
	sample_time timestamptz NOT NULL,
	pid integer NOT NULL,
	leader_pid integer,
	backend_type text,
	datid oid,
	datname name,
	usesysid oid,
	usename name,
	application_name text,
	client_addr inet,
	client_port integer,
	state text,
	session_state text NOT NULL,
	wait_event_type text NOT NULL,
	wait_event text NOT NULL,
	query_id bigint,
	query text,
	xact_start timestamptz,
	query_start timestamptz,
	blocking_pids integer[],
	sample_interval_ms integer NOT NULL,
	persist_every integer NOT NULL,
	-- query sealed (then query is NULL) while a key provider is configured;
	-- opened by the ash_history view
	query_sealed bytea
) USING heap;
CREATE INDEX ash_history_data_sample_time ON rustydb.ash_history_data (sample_time);
REVOKE ALL ON rustydb.ash_history_data FROM PUBLIC;

CREATE VIEW rustydb.ash_history AS
	SELECT id, sample_id, sample_time, pid, leader_pid, backend_type, datid,
	       datname, usesysid, usename, application_name, client_addr,
	       client_port, state, session_state, wait_event_type, wait_event,
	       query_id,
	       CASE WHEN query_sealed IS NULL THEN query
	            ELSE rustydb._open_text('rustydb.ash_history_data', 'query', id, query_sealed)
	       END AS query,
	       xact_start, query_start, blocking_pids, sample_interval_ms, persist_every
	FROM rustydb.ash_history_data;
COMMENT ON VIEW rustydb.ash_history IS 'Active Session History samples persisted by the sampler (1 in ash_persist_every), bounded by ash_retention_age and ash_retention_rows';

-- Samples between p_from and p_to, each weighted by the seconds of database
-- time it stands for: the ring where it reaches back, ash_history before.
CREATE TYPE rustydb.ash_sample AS (source text, sample_id bigint, sample_time timestamptz,
	pid integer, usename name, application_name text, session_state text,
	wait_event_type text, wait_event text, event text, query_id bigint,
	query text, blocking_pids integer[], weight double precision);
CREATE FUNCTION rustydb._ash_samples(p_from timestamptz, p_to timestamptz)
RETURNS SETOF rustydb.ash_sample
LANGUAGE sql STABLE
AS $$
	WITH ring AS MATERIALIZED (SELECT * FROM rustydb.active_session_history),
	ring_start AS (SELECT min(r.sample_time) AS t FROM ring r)
	SELECT 'ring', r.sample_id, r.sample_time, r.pid, r.usename, r.application_name,
	       r.session_state, r.wait_event_type, r.wait_event,
	       CASE WHEN r.wait_event_type = 'CPU' THEN 'CPU'
	            ELSE r.wait_event_type || ': ' || r.wait_event END,
	       r.query_id, r.query, r.blocking_pids, r.sample_interval_ms / 1000.0
	FROM ring r
	WHERE r.sample_time >= p_from AND r.sample_time <= p_to
	UNION ALL
	SELECT 'history', h.sample_id, h.sample_time, h.pid, h.usename, h.application_name,
	       h.session_state, h.wait_event_type, h.wait_event,
	       CASE WHEN h.wait_event_type = 'CPU' THEN 'CPU'
	            ELSE h.wait_event_type || ': ' || h.wait_event END,
	       h.query_id, h.query, h.blocking_pids,
	       h.sample_interval_ms * h.persist_every / 1000.0
	FROM rustydb.ash_history h
	WHERE h.sample_time >= p_from AND h.sample_time <= p_to
	  AND h.sample_time < coalesce((SELECT t FROM ring_start), 'infinity')
$$;
REVOKE ALL ON FUNCTION rustydb._ash_samples(timestamptz, timestamptz) FROM PUBLIC;

-- The report's sections as rows: (section, rank, columns...), shared by the
-- text and the HTML report.
CREATE TYPE rustydb.ash_section AS (section text, rank integer, c1 text, c2 text,
	c3 text, c4 text, c5 text, c6 text, num double precision);
CREATE FUNCTION rustydb._ash_sections(p_from timestamptz, p_to timestamptz)
RETURNS SETOF rustydb.ash_section
LANGUAGE sql STABLE
AS $$
	WITH s AS MATERIALIZED (SELECT * FROM rustydb._ash_samples(p_from, p_to)),
	tot AS (SELECT coalesce(sum(weight), 0) AS w, count(*) AS n,
	               min(sample_time) AS t0, max(sample_time) AS t1,
	               count(DISTINCT sample_time) AS samples,
	               count(*) FILTER (WHERE source = 'ring') AS ring_rows,
	               count(*) FILTER (WHERE source = 'history') AS history_rows
	        FROM s),
	el AS (SELECT greatest(extract(epoch FROM (t1 - t0)) +
	                       coalesce((SELECT max(weight) FROM s), 1), 1) AS secs FROM tot),
	pct AS (SELECT w AS total FROM tot),
	tb AS (SELECT tot.t0, el.secs / 10 AS width, el.secs / 10 AS divisor FROM tot, el),
	sl AS MATERIALIZED (SELECT s.*, least(10, 1 + floor(extract(epoch FROM s.sample_time - tb.t0)
	                                                    / tb.width))::int AS slot
	       FROM s, tb)
	-- summary
	SELECT 'summary', 1, 'From', p_from::text, NULL, NULL, NULL, NULL, NULL::float8
	UNION ALL SELECT 'summary', 2, 'To', p_to::text, NULL, NULL, NULL, NULL, NULL
	UNION ALL SELECT 'summary', 3, 'First sample', t0::text, NULL, NULL, NULL, NULL, NULL FROM tot
	UNION ALL SELECT 'summary', 4, 'Last sample', t1::text, NULL, NULL, NULL, NULL, NULL FROM tot
	UNION ALL SELECT 'summary', 5, 'Samples', samples::text, NULL, NULL, NULL, NULL, NULL FROM tot
	UNION ALL SELECT 'summary', 6, 'Active session rows',
	       format('%s (ring %s, history %s)', n, ring_rows, history_rows), NULL, NULL, NULL, NULL, NULL FROM tot
	UNION ALL SELECT 'summary', 7, 'DB time (s)', round(w::numeric, 2)::text, NULL, NULL, NULL, NULL, NULL FROM tot
	UNION ALL SELECT 'summary', 8, 'Elapsed (s)', round(secs::numeric, 2)::text, NULL, NULL, NULL, NULL, NULL FROM el
	UNION ALL SELECT 'summary', 9, 'Average active sessions',
	       round((w / secs)::numeric, 2)::text, NULL, NULL, NULL, NULL, w / secs FROM tot, el
	-- top wait events
	UNION ALL
	SELECT 'events', (row_number() OVER (ORDER BY sum(weight) DESC, event))::int,
	       wait_event_type, wait_event, count(*)::text,
	       round((100 * sum(weight) / nullif((SELECT total FROM pct), 0))::numeric, 1)::text,
	       round((sum(weight) / (SELECT secs FROM el))::numeric, 2)::text, NULL, sum(weight)
	FROM s GROUP BY wait_event_type, wait_event, event
	-- top SQL
	UNION ALL
	SELECT 'sql', (row_number() OVER (ORDER BY q.w DESC, q.query_id))::int,
	       coalesce(q.query_id::text, '(none)'), q.n::text,
	       round((100 * q.w / nullif((SELECT total FROM pct), 0))::numeric, 1)::text,
	       q.top_event, q.query, NULL, q.w
	FROM (SELECT query_id, count(*) AS n, sum(weight) AS w,
	             (array_agg(query ORDER BY sample_time DESC))[1] AS query,
	             (SELECT e.event FROM s e WHERE e.query_id IS NOT DISTINCT FROM s.query_id
	              GROUP BY e.event ORDER BY sum(e.weight) DESC, e.event LIMIT 1) AS top_event
	      FROM s GROUP BY query_id) q
	-- top sessions
	UNION ALL
	SELECT 'sessions', (row_number() OVER (ORDER BY q.w DESC, q.pid))::int,
	       q.pid::text, q.usename, q.application_name, q.n::text,
	       round((100 * q.w / nullif((SELECT total FROM pct), 0))::numeric, 1)::text,
	       q.top_event, q.w
	FROM (SELECT pid, max(usename) AS usename, max(application_name) AS application_name,
	             count(*) AS n, sum(weight) AS w,
	             (SELECT e.event FROM s e WHERE e.pid = s.pid
	              GROUP BY e.event ORDER BY sum(e.weight) DESC, e.event LIMIT 1) AS top_event
	      FROM s GROUP BY pid) q
	-- top blocking sessions
	UNION ALL
	SELECT 'blockers', (row_number() OVER (ORDER BY q.w DESC, q.blocker))::int,
	       q.blocker::text, q.n::text,
	       round((100 * q.w / nullif((SELECT total FROM pct), 0))::numeric, 1)::text,
	       q.blocked::text,
	       (SELECT max(b.usename) || ' / ' || coalesce(max(b.application_name), '')
	        FROM s b WHERE b.pid = q.blocker),
	       (SELECT e.event FROM s e WHERE e.pid = q.blocker
	        GROUP BY e.event ORDER BY sum(e.weight) DESC, e.event LIMIT 1),
	       q.w
	FROM (SELECT b.blocker, count(*) AS n, sum(s.weight) AS w, count(DISTINCT s.pid) AS blocked
	      FROM s, unnest(s.blocking_pids) AS b(blocker) GROUP BY b.blocker) q
	-- activity over time: 10 equal slots across the samples found
	UNION ALL
	SELECT 'time', q.slot, (tb.t0 + (q.slot - 1) * tb.width * interval '1 second')::text,
	       q.n::text, round((q.w / tb.divisor)::numeric, 2)::text, q.top_event,
	       NULL, NULL, q.w / tb.divisor
	FROM (SELECT sl.slot, count(*) AS n, sum(sl.weight) AS w,
	             (SELECT e.event FROM sl e WHERE e.slot = sl.slot
	              GROUP BY e.event ORDER BY sum(e.weight) DESC, e.event LIMIT 1) AS top_event
	      FROM sl GROUP BY sl.slot) q, tb
$$;
REVOKE ALL ON FUNCTION rustydb._ash_sections(timestamptz, timestamptz) FROM PUBLIC;

CREATE FUNCTION rustydb._ash_check_range(p_from timestamptz, p_to timestamptz)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
	PERFORM rustydb._not_null(p_from IS NULL, 'p_from');
	PERFORM rustydb._not_null(p_to IS NULL, 'p_to');
	IF p_from > p_to THEN
		RAISE EXCEPTION 'report range starts after it ends'
			USING ERRCODE = '22023', DETAIL = format('from %s is later than to %s', p_from, p_to);
	END IF;
END
$$;

-- Text report in the manner of Oracle's ashrpt.
CREATE FUNCTION rustydb.ash_report(p_from timestamptz, p_to timestamptz DEFAULT now())
RETURNS SETOF text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	secs rustydb.ash_section[];
	r rustydb.ash_section;
	found_any boolean;
	line text := repeat('-', 100);
BEGIN
	PERFORM rustydb._ash_check_range(p_from, p_to);
	secs := ARRAY(SELECT x FROM rustydb._ash_sections(p_from, p_to) x);

	RETURN NEXT 'ASH Report: rustydb Active Session History';
	RETURN NEXT line;
	FOR r IN SELECT * FROM unnest(secs) u WHERE u.section = 'summary' ORDER BY u.rank LOOP
		RETURN NEXT format('%-26s %s', r.c1, coalesce(r.c2, '-'));
	END LOOP;

	RETURN NEXT '';
	RETURN NEXT 'Top Wait Events';
	RETURN NEXT line;
	RETURN NEXT format('%-10s %-36s %10s %10s %10s', 'Type', 'Event', 'Samples', '% Activity', 'Avg Active');
	found_any := false;
	FOR r IN SELECT * FROM unnest(secs) u WHERE u.section = 'events' ORDER BY u.rank LIMIT 10 LOOP
		RETURN NEXT format('%-10s %-36s %10s %10s %10s', r.c1, r.c2, r.c3, r.c4, r.c5);
		found_any := true;
	END LOOP;
	IF NOT found_any THEN RETURN NEXT '(no samples)'; END IF;

	RETURN NEXT '';
	RETURN NEXT 'Top SQL';
	RETURN NEXT line;
	RETURN NEXT format('%-20s %8s %10s %-28s %s', 'Query ID', 'Samples', '% Activity', 'Top Event', 'Query');
	found_any := false;
	FOR r IN SELECT * FROM unnest(secs) u WHERE u.section = 'sql' ORDER BY u.rank LIMIT 10 LOOP
		RETURN NEXT format('%-20s %8s %10s %-28s %s', r.c1, r.c2, r.c3, left(r.c4, 28),
		                   left(regexp_replace(coalesce(r.c5, ''), '\s+', ' ', 'g'), 60));
		found_any := true;
	END LOOP;
	IF NOT found_any THEN RETURN NEXT '(no samples)'; END IF;

	RETURN NEXT '';
	RETURN NEXT 'Top Sessions';
	RETURN NEXT line;
	RETURN NEXT format('%-8s %-16s %-24s %8s %10s %s', 'PID', 'User', 'Application', 'Samples', '% Activity', 'Top Event');
	found_any := false;
	FOR r IN SELECT * FROM unnest(secs) u WHERE u.section = 'sessions' ORDER BY u.rank LIMIT 10 LOOP
		RETURN NEXT format('%-8s %-16s %-24s %8s %10s %s', r.c1, coalesce(r.c2, '-'),
		                   left(coalesce(r.c3, ''), 24), r.c4, r.c5, r.c6);
		found_any := true;
	END LOOP;
	IF NOT found_any THEN RETURN NEXT '(no samples)'; END IF;

	RETURN NEXT '';
	RETURN NEXT 'Top Blocking Sessions';
	RETURN NEXT line;
	RETURN NEXT format('%-12s %15s %10s %16s %-24s %s', 'Blocking PID', 'Blocked Samples', '% Activity', 'Sessions Blocked', 'User / Application', 'Top Event');
	found_any := false;
	FOR r IN SELECT * FROM unnest(secs) u WHERE u.section = 'blockers' ORDER BY u.rank LIMIT 10 LOOP
		RETURN NEXT format('%-12s %15s %10s %16s %-24s %s', r.c1, r.c2, r.c3, r.c4,
		                   left(coalesce(r.c5, '(not sampled)'), 24), coalesce(r.c6, '(not sampled)'));
		found_any := true;
	END LOOP;
	IF NOT found_any THEN RETURN NEXT '(no blocked sessions)'; END IF;

	RETURN NEXT '';
	RETURN NEXT 'Activity Over Time';
	RETURN NEXT line;
	RETURN NEXT format('%-34s %8s %10s %s', 'Slot Start', 'Samples', 'Avg Active', 'Top Event');
	found_any := false;
	FOR r IN SELECT * FROM unnest(secs) u WHERE u.section = 'time' ORDER BY u.rank LOOP
		RETURN NEXT format('%-34s %8s %10s %s', r.c1, r.c2, r.c3, r.c4);
		found_any := true;
	END LOOP;
	IF NOT found_any THEN RETURN NEXT '(no samples)'; END IF;
END
$$;
COMMENT ON FUNCTION rustydb.ash_report(timestamptz, timestamptz) IS 'Active Session History text report: top wait events, SQL, sessions, blockers, activity over time';

CREATE FUNCTION rustydb._ash_html(t text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
	SELECT replace(replace(replace(replace(replace(coalesce(t, ''), '&', '&amp;'),
		'<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;

-- Colour of a wait class in the HTML chart.
CREATE FUNCTION rustydb._ash_class_color(cls text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
	SELECT CASE cls
		WHEN 'CPU' THEN '#2e9e44' WHEN 'Lock' THEN '#d62728' WHEN 'LWLock' THEN '#ff7f0e'
		WHEN 'IO' THEN '#1f77b4' WHEN 'IPC' THEN '#9467bd' WHEN 'Client' THEN '#8c564b'
		WHEN 'Timeout' THEN '#e377c2' WHEN 'BufferPin' THEN '#7f7f7f'
		WHEN 'Extension' THEN '#bcbd22' WHEN 'rustydb' THEN '#17becf'
		WHEN 'Activity' THEN '#aec7e8' ELSE '#555555' END
$$;

CREATE TYPE rustydb.ash_chart_point AS (b integer, cls text, aas double precision);

-- One self-contained HTML page: an average-active-sessions chart stacked by
-- wait class (inline SVG) above the report's tables.
CREATE FUNCTION rustydb.ash_report_html(p_from timestamptz, p_to timestamptz DEFAULT now())
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	secs rustydb.ash_section[];
	r record;
	html text;
	svg text;
	legend text := '';
	t0 timestamptz;
	t1 timestamptz;
	nb constant integer := 60;
	width double precision;
	divisor double precision;
	ymax double precision;
	px0 constant integer := 60;
	py0 constant integer := 20;
	pw constant integer := 820;
	ph constant integer := 240;
	bar double precision := 820.0 / 60;
	acc double precision[];
	h double precision;
	classes text[];
	pts rustydb.ash_chart_point[];
	i integer;
BEGIN
	PERFORM rustydb._ash_check_range(p_from, p_to);
	secs := ARRAY(SELECT x FROM rustydb._ash_sections(p_from, p_to) x);

	SELECT min(x.sample_time), max(x.sample_time), max(x.weight) INTO t0, t1, divisor
		FROM rustydb._ash_samples(p_from, p_to) x;
	IF t0 IS NOT NULL THEN
		width := (extract(epoch FROM t1 - t0) + divisor) / nb;
		divisor := width;
		pts := ARRAY(
			SELECT ROW(g.b, g.cls, g.aas)::rustydb.ash_chart_point
			FROM (SELECT least(nb, 1 + floor(extract(epoch FROM x.sample_time - t0) / width))::int AS b,
			             x.wait_event_type AS cls, sum(x.weight) / divisor AS aas
			      FROM rustydb._ash_samples(p_from, p_to) x
			      WHERE x.sample_time <= t1
			      GROUP BY 1, 2) g);
	END IF;

	html := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ASH Report</title>'
		|| '<style>body{font-family:sans-serif;margin:20px;color:#222}'
		|| 'table{border-collapse:collapse;margin-bottom:18px}'
		|| 'th,td{border:1px solid #bbb;padding:3px 8px;font-size:13px;text-align:left}'
		|| 'th{background:#eee}td.n{text-align:right}.legend span{display:inline-block;margin-right:14px;font-size:13px}'
		|| '.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}</style></head><body>'
		|| '<h1>ASH Report: rustydb Active Session History</h1><table>';
	FOR r IN SELECT * FROM unnest(secs) u WHERE u.section = 'summary' ORDER BY u.rank LOOP
		html := html || '<tr><th>' || rustydb._ash_html(r.c1) || '</th><td>' || rustydb._ash_html(r.c2) || '</td></tr>';
	END LOOP;
	html := html || '</table><h2>Average Active Sessions by Wait Class</h2>';

	-- the chart
	svg := format('<svg id="aas-chart" xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s">',
	              px0 + pw + 20, py0 + ph + 40, px0 + pw + 20, py0 + ph + 40)
		|| format('<rect x="%s" y="%s" width="%s" height="%s" fill="#fafafa" stroke="#999"/>', px0, py0, pw, ph);
	IF t0 IS NULL THEN
		svg := svg || format('<text x="%s" y="%s" font-size="14">no samples in this range</text>', px0 + 20, py0 + ph / 2);
	ELSE
		classes := ARRAY(SELECT p.cls FROM unnest(pts) p GROUP BY p.cls
		                 ORDER BY (p.cls <> 'CPU'), sum(p.aas) DESC, p.cls);
		SELECT max(t.aas) INTO ymax FROM (SELECT sum(p.aas) AS aas FROM unnest(pts) p GROUP BY p.b) t;
		ymax := greatest(ymax, 0.000001);
		acc := array_fill(0::double precision, ARRAY[nb]);
		FOR r IN SELECT p.b, p.cls, p.aas FROM unnest(pts) p ORDER BY p.b, array_position(classes, p.cls)
		LOOP
			h := r.aas / ymax * ph;
			svg := svg || format('<rect class="aas" data-class="%s" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s: %s</title></rect>',
				rustydb._ash_html(r.cls), round((px0 + (r.b - 1) * bar)::numeric, 2),
				round((py0 + ph - acc[r.b] - h)::numeric, 2), round((bar - 1)::numeric, 2),
				round(h::numeric, 2), rustydb._ash_class_color(r.cls), rustydb._ash_html(r.cls),
				round(r.aas::numeric, 2));
			acc[r.b] := acc[r.b] + h;
		END LOOP;
		-- axes labels
		svg := svg || format('<text x="%s" y="%s" font-size="12" text-anchor="end">%s</text>', px0 - 6, py0 + 10, round(ymax::numeric, 2))
			|| format('<text x="%s" y="%s" font-size="12" text-anchor="end">0</text>', px0 - 6, py0 + ph)
			|| format('<text x="%s" y="%s" font-size="12">%s</text>', px0, py0 + ph + 18, rustydb._ash_html(t0::text))
			|| format('<text x="%s" y="%s" font-size="12" text-anchor="end">%s</text>', px0 + pw, py0 + ph + 18, rustydb._ash_html(t1::text))
			|| format('<text x="%s" y="%s" font-size="12" transform="rotate(-90 14 %s)" text-anchor="middle">avg active sessions</text>', 14, py0 + ph / 2, py0 + ph / 2);
		FOR i IN 1 .. coalesce(array_length(classes, 1), 0) LOOP
			legend := legend || format('<span><i style="background:%s"></i>%s</span>',
				rustydb._ash_class_color(classes[i]), rustydb._ash_html(classes[i]));
		END LOOP;
	END IF;
	html := html || svg || '</svg><div class="legend">' || legend || '</div>';

	-- the tables
	html := html || '<h2>Top Wait Events</h2><table><tr><th>Type</th><th>Event</th><th>Samples</th><th>% Activity</th><th>Avg Active</th></tr>';
	FOR r IN SELECT * FROM unnest(secs) u WHERE u.section = 'events' ORDER BY u.rank LIMIT 10 LOOP
		html := html || format('<tr><td>%s</td><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td></tr>',
			rustydb._ash_html(r.c1), rustydb._ash_html(r.c2), r.c3, r.c4, r.c5);
	END LOOP;
	html := html || '</table><h2>Top SQL</h2><table><tr><th>Query ID</th><th>Samples</th><th>% Activity</th><th>Top Event</th><th>Query</th></tr>';
	FOR r IN SELECT * FROM unnest(secs) u WHERE u.section = 'sql' ORDER BY u.rank LIMIT 10 LOOP
		html := html || format('<tr><td>%s</td><td class="n">%s</td><td class="n">%s</td><td>%s</td><td>%s</td></tr>',
			rustydb._ash_html(r.c1), r.c2, r.c3, rustydb._ash_html(r.c4), rustydb._ash_html(left(r.c5, 200)));
	END LOOP;
	html := html || '</table><h2>Top Sessions</h2><table><tr><th>PID</th><th>User</th><th>Application</th><th>Samples</th><th>% Activity</th><th>Top Event</th></tr>';
	FOR r IN SELECT * FROM unnest(secs) u WHERE u.section = 'sessions' ORDER BY u.rank LIMIT 10 LOOP
		html := html || format('<tr><td>%s</td><td>%s</td><td>%s</td><td class="n">%s</td><td class="n">%s</td><td>%s</td></tr>',
			r.c1, rustydb._ash_html(r.c2), rustydb._ash_html(r.c3), r.c4, r.c5, rustydb._ash_html(r.c6));
	END LOOP;
	html := html || '</table><h2>Top Blocking Sessions</h2><table><tr><th>Blocking PID</th><th>Blocked Samples</th><th>% Activity</th><th>Sessions Blocked</th><th>User / Application</th><th>Top Event</th></tr>';
	FOR r IN SELECT * FROM unnest(secs) u WHERE u.section = 'blockers' ORDER BY u.rank LIMIT 10 LOOP
		html := html || format('<tr><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td>%s</td><td>%s</td></tr>',
			r.c1, r.c2, r.c3, r.c4, rustydb._ash_html(coalesce(r.c5, '(not sampled)')), rustydb._ash_html(coalesce(r.c6, '(not sampled)')));
	END LOOP;
	html := html || '</table><h2>Activity Over Time</h2><table><tr><th>Slot Start</th><th>Samples</th><th>Avg Active</th><th>Top Event</th></tr>';
	FOR r IN SELECT * FROM unnest(secs) u WHERE u.section = 'time' ORDER BY u.rank LOOP
		html := html || format('<tr><td>%s</td><td class="n">%s</td><td class="n">%s</td><td>%s</td></tr>',
			rustydb._ash_html(r.c1), r.c2, r.c3, rustydb._ash_html(r.c4));
	END LOOP;
	html := html || '</table></body></html>';
	RETURN html;
END
$$;
COMMENT ON FUNCTION rustydb.ash_report_html(timestamptz, timestamptz) IS 'Active Session History report as one HTML page with an average-active-sessions chart';

REVOKE ALL ON FUNCTION rustydb.ash_report(timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION rustydb.ash_report_html(timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON rustydb.active_session_history, rustydb.ash_history FROM PUBLIC;
GRANT SELECT ON rustydb.active_session_history, rustydb.ash_history, rustydb.ash_info TO pg_read_all_stats;
GRANT SELECT ON rustydb.wait_events TO PUBLIC;
GRANT SELECT ON rustydb.ash_info TO PUBLIC;
