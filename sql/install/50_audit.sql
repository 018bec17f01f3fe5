-- rustydb audit: policies, the append-only trail, retention, integrity,
-- the audit_info and memory views. See docs/audit.md.

-- ---- policies ----

CREATE TABLE rustydb.audit_policies (
	policy_name name PRIMARY KEY,
	actions text[] NOT NULL,
	objects regclass[],
	roles text[],
	condition text,
	enabled boolean NOT NULL DEFAULT true,
	created timestamptz NOT NULL DEFAULT now(),
	created_by name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE rustydb.audit_policies IS 'audit policies of this database (change them with the rustydb.*_audit_policy functions)';
REVOKE ALL ON rustydb.audit_policies FROM PUBLIC;

CREATE FUNCTION rustydb._audit_policies_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'rustydb_audit_policies_changed'
LANGUAGE C;
REVOKE ALL ON FUNCTION rustydb._audit_policies_changed() FROM PUBLIC;

-- Every change of a policy, through the functions below or not, is an
-- audited security event; ENABLE ALWAYS: also under session_replication_role.
CREATE TRIGGER audit_policies_changed
	AFTER INSERT OR UPDATE OR DELETE ON rustydb.audit_policies
	FOR EACH ROW EXECUTE FUNCTION rustydb._audit_policies_changed();
CREATE TRIGGER audit_policies_truncated
	AFTER TRUNCATE ON rustydb.audit_policies
	FOR EACH STATEMENT EXECUTE FUNCTION rustydb._audit_policies_changed();
ALTER TABLE rustydb.audit_policies ENABLE ALWAYS TRIGGER audit_policies_changed;
ALTER TABLE rustydb.audit_policies ENABLE ALWAYS TRIGGER audit_policies_truncated;

CREATE FUNCTION rustydb.create_audit_policy(
	policy_name name,
	actions text[],
	objects regclass[] DEFAULT NULL,
	roles text[] DEFAULT NULL,
	condition text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a text;
	r text;
	ok boolean;
	n integer;
BEGIN
	PERFORM rustydb._not_null(policy_name IS NULL, 'policy_name');
	PERFORM rustydb._not_null(actions IS NULL, 'actions');
	IF cardinality(actions) = 0 THEN
		RAISE EXCEPTION 'audit policy needs at least one action'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOREACH a IN ARRAY actions LOOP
		IF a IS NULL OR a NOT IN ('select', 'insert', 'update', 'delete', 'truncate', 'ddl',
								  'role', 'function', 'all') THEN
			RAISE EXCEPTION 'unknown audit action "%"', a
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Valid actions are select, insert, update, delete, truncate, ddl, role, function and all.';
		END IF;
	END LOOP;
	IF roles IS NOT NULL THEN
		FOREACH r IN ARRAY roles LOOP
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
				RAISE EXCEPTION 'role "%" does not exist', r USING ERRCODE = 'undefined_object';
			END IF;
		END LOOP;
	END IF;
	IF condition IS NOT NULL THEN
		BEGIN
			EXECUTE format('SELECT (%s)::boolean', condition) INTO ok;
		EXCEPTION WHEN OTHERS THEN
			RAISE EXCEPTION 'invalid audit policy condition: %', SQLERRM
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('The condition must be a boolean SQL expression; %s was given.', quote_literal(condition));
		END;
	END IF;
	IF EXISTS (SELECT 1 FROM rustydb.audit_policies p WHERE p.policy_name = create_audit_policy.policy_name) THEN
		RAISE EXCEPTION 'audit policy "%" already exists', policy_name USING ERRCODE = 'duplicate_object';
	END IF;
	SELECT count(*) INTO n FROM rustydb.audit_policies;
	IF n >= current_setting('rustydb.audit_max_policies')::integer THEN
		RAISE EXCEPTION 'too many audit policies'
			USING ERRCODE = 'program_limit_exceeded',
				  DETAIL = format('This database has %s policies; rustydb.audit_max_policies is %s.', n, current_setting('rustydb.audit_max_policies')),
				  HINT = 'Drop unused policies or raise rustydb.audit_max_policies.';
	END IF;
	INSERT INTO rustydb.audit_policies (policy_name, actions, objects, roles, condition)
	VALUES (policy_name, actions, objects, roles, condition);
END;
$$;
COMMENT ON FUNCTION rustydb.create_audit_policy(name, text[], regclass[], text[], text) IS 'create an enabled audit policy';

CREATE FUNCTION rustydb.enable_audit_policy(policy_name name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM rustydb._not_null(policy_name IS NULL, 'policy_name');
	UPDATE rustydb.audit_policies p SET enabled = true WHERE p.policy_name = enable_audit_policy.policy_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'audit policy "%" does not exist', policy_name USING ERRCODE = 'undefined_object';
	END IF;
END;
$$;
COMMENT ON FUNCTION rustydb.enable_audit_policy(name) IS 'enable an audit policy (audited)';

CREATE FUNCTION rustydb.disable_audit_policy(policy_name name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM rustydb._not_null(policy_name IS NULL, 'policy_name');
	UPDATE rustydb.audit_policies p SET enabled = false WHERE p.policy_name = disable_audit_policy.policy_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'audit policy "%" does not exist', policy_name USING ERRCODE = 'undefined_object';
	END IF;
END;
$$;
COMMENT ON FUNCTION rustydb.disable_audit_policy(name) IS 'disable an audit policy (audited)';

CREATE FUNCTION rustydb.drop_audit_policy(policy_name name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM rustydb._not_null(policy_name IS NULL, 'policy_name');
	DELETE FROM rustydb.audit_policies p WHERE p.policy_name = drop_audit_policy.policy_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'audit policy "%" does not exist', policy_name USING ERRCODE = 'undefined_object';
	END IF;
END;
$$;
COMMENT ON FUNCTION rustydb.drop_audit_policy(name) IS 'drop an audit policy (audited)';

REVOKE ALL ON FUNCTION rustydb.create_audit_policy(name, text[], regclass[], text[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION rustydb.enable_audit_policy(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION rustydb.disable_audit_policy(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION rustydb.drop_audit_policy(name) FROM PUBLIC;

-- ---- the trail ----

-- Written only by the audit worker (direct inserts, no triggers) and
-- shortened only by purges; the guard trigger refuses everything else.
CREATE TABLE rustydb._audit_records (
	seq bigint PRIMARY KEY,
	event_time timestamptz NOT NULL,
	session_id text NOT NULL,
	pid integer NOT NULL,
	user_name text NOT NULL,
	session_user_name text NOT NULL,
	database_name text NOT NULL,
	client_addr text,
	application_name text,
	action text NOT NULL,
	object text,
	statement text,
	detail text,
	outcome text NOT NULL,
	rows_affected bigint,
	xid bigint,
	record_bytes integer NOT NULL,
	prev_hash bytea NOT NULL,
	hash bytea NOT NULL,
	-- statement and detail sealed (then those columns are NULL) while a key
	-- provider is configured; opened by the audit_trail view
	statement_sealed bytea,
	detail_sealed bytea
) USING heap WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000);
REVOKE ALL ON rustydb._audit_records FROM PUBLIC;

-- The seq and hash of the last purged record: where verification starts.
CREATE TABLE rustydb._audit_anchor (
	seq bigint NOT NULL,
	hash bytea NOT NULL,
	purged_at timestamptz
) USING heap;
INSERT INTO rustydb._audit_anchor VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000', NULL);
REVOKE ALL ON rustydb._audit_anchor FROM PUBLIC;

CREATE FUNCTION rustydb._audit_trail_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'rustydb_audit_trail_guard'
LANGUAGE C;
REVOKE ALL ON FUNCTION rustydb._audit_trail_guard() FROM PUBLIC;

CREATE TRIGGER audit_records_guard
	BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON rustydb._audit_records
	FOR EACH STATEMENT EXECUTE FUNCTION rustydb._audit_trail_guard();
CREATE TRIGGER audit_anchor_guard
	BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON rustydb._audit_anchor
	FOR EACH STATEMENT EXECUTE FUNCTION rustydb._audit_trail_guard();
ALTER TABLE rustydb._audit_records ENABLE ALWAYS TRIGGER audit_records_guard;
ALTER TABLE rustydb._audit_anchor ENABLE ALWAYS TRIGGER audit_anchor_guard;

CREATE VIEW rustydb.audit_trail AS
	SELECT seq, event_time, session_id, pid, user_name, session_user_name, database_name,
	       client_addr, application_name, action, object,
	       CASE WHEN statement_sealed IS NULL THEN statement
	            ELSE rustydb._open_text('rustydb._audit_records', 'statement', seq, statement_sealed)
	       END AS statement,
	       CASE WHEN detail_sealed IS NULL THEN detail
	            ELSE rustydb._open_text('rustydb._audit_records', 'detail', seq, detail_sealed)
	       END AS detail,
	       outcome, rows_affected, xid, encode(hash, 'hex') AS hash
	FROM rustydb._audit_records;
COMMENT ON VIEW rustydb.audit_trail IS 'the audit trail, one row per audit record (seq is its place in the hash chain)';
REVOKE ALL ON rustydb.audit_trail FROM PUBLIC;

CREATE FUNCTION rustydb._audit_queue_stats(
	OUT queue_size bigint,
	OUT queued bigint,
	OUT high_water bigint,
	OUT enqueued bigint,
	OUT written bigint,
	OUT dropped bigint,
	OUT rejected bigint,
	OUT logged_to_server bigint,
	OUT waits bigint,
	OUT purged bigint,
	OUT trail_bytes bigint,
	OUT trail_records bigint,
	OUT last_seq bigint,
	OUT worker_pid integer,
	OUT worker_records bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'rustydb_audit_queue_stats'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION rustydb._audit_queue_stats() FROM PUBLIC;

CREATE VIEW rustydb.audit_info AS
	SELECT q.queue_size, q.queued, q.high_water, q.enqueued, q.written, q.worker_records,
	       q.dropped, q.rejected,
	       q.logged_to_server, q.waits, q.purged, q.trail_records, q.trail_bytes,
	       current_setting('rustydb.audit_max_size') AS trail_limit,
	       pg_total_relation_size('rustydb._audit_records') AS trail_disk_bytes,
	       (SELECT event_time FROM rustydb._audit_records ORDER BY seq LIMIT 1) AS oldest_record,
	       q.last_seq, q.worker_pid
	FROM rustydb._audit_queue_stats() q;
COMMENT ON VIEW rustydb.audit_info IS 'audit queue and trail: sizes, high-water mark, counters since server start';
REVOKE ALL ON rustydb.audit_info FROM PUBLIC;

CREATE FUNCTION rustydb.purge_audit_trail(before timestamptz, acknowledge_breaks boolean DEFAULT false)
RETURNS bigint
AS 'MODULE_PATHNAME', 'rustydb_purge_audit_trail'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION rustydb.purge_audit_trail(timestamptz, boolean) IS 'delete audit records older than a time (audited); refused while the range has a break unless acknowledge_breaks (then the breaks are recorded); returns the count';
REVOKE ALL ON FUNCTION rustydb.purge_audit_trail(timestamptz, boolean) FROM PUBLIC;

CREATE FUNCTION rustydb.verify_audit_trail(
	OUT valid boolean,
	OUT records_checked bigint,
	OUT first_broken_seq bigint,
	OUT problem text,
	OUT breaks bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'rustydb_verify_audit_trail'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION rustydb.verify_audit_trail() IS 'check the hash chain of the audit trail and its head kept outside SQL; reports the first break and how many there are';
REVOKE ALL ON FUNCTION rustydb.verify_audit_trail() FROM PUBLIC;

CREATE FUNCTION rustydb.audit_trail_breaks(OUT seq bigint, OUT problem text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rustydb_audit_trail_breaks'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION rustydb.audit_trail_breaks() IS 'every break of the audit trail''s chain (missing, modified, out of place records; a truncated end)';
REVOKE ALL ON FUNCTION rustydb.audit_trail_breaks() FROM PUBLIC;

CREATE FUNCTION rustydb.audit_flush(timeout_ms integer DEFAULT 10000)
RETURNS boolean
AS 'MODULE_PATHNAME', 'rustydb_audit_flush'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION rustydb.audit_flush(integer) IS 'wait until the records queued so far are in the trail (false on timeout)';

-- ---- bounds ----

CREATE FUNCTION rustydb._memory(
	OUT name text,
	OUT kind text,
	OUT bytes bigint,
	OUT entries bigint,
	OUT "limit" bigint,
	OUT high_water bigint,
	OUT limit_setting text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rustydb_memory'
LANGUAGE C VOLATILE;

CREATE VIEW rustydb.memory AS
	SELECT name, kind, bytes, entries, "limit", high_water, limit_setting
	FROM rustydb._memory();
COMMENT ON VIEW rustydb.memory IS 'every rustydb shared structure and this backend''s growable ones: bytes, entries, limit, high-water mark';
GRANT SELECT ON rustydb.memory TO PUBLIC;
