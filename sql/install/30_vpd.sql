-- rustydb VPD: Oracle DBMS_RLS-style row policies, application contexts and
-- column masking. Part of rustydb--0.1.0.sql (assembled from sql/install/*.sql).
-- User guide and reference: docs/vpd.md.

-- ---------------------------------------------------------------------------
-- Roles (global objects: created once per cluster, kept when the extension
-- is dropped).
--   rustydb_exempt_access_policy   members bypass every VPD policy (Oracle's
--                                  EXEMPT ACCESS POLICY); grant it like any role.
--   rustydb_context_admin          members may create and drop application
--                                  contexts (Oracle's CREATE ANY CONTEXT).
-- ---------------------------------------------------------------------------
DO $vpd$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rustydb_exempt_access_policy') THEN
		CREATE ROLE rustydb_exempt_access_policy NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rustydb_context_admin') THEN
		CREATE ROLE rustydb_context_admin NOLOGIN;
	END IF;
END
$vpd$;

-- ---------------------------------------------------------------------------
-- Catalog tables. Rows are keyed by the protected table's OID, so renames
-- keep their policies; an sql_drop event trigger removes rows of dropped
-- tables. Writes go through the API functions below; native row security on
-- these tables lets a role change only the policies of tables it owns.
-- ---------------------------------------------------------------------------
CREATE TABLE rustydb.vpd_policy (
	id              serial PRIMARY KEY,
	relid           oid NOT NULL,
	policy_group    name NOT NULL DEFAULT 'SYS_DEFAULT',
	policy_name     name NOT NULL,
	func            oid NOT NULL,
	sel             boolean NOT NULL,
	ins             boolean NOT NULL,
	upd             boolean NOT NULL,
	del             boolean NOT NULL,
	idx             boolean NOT NULL,
	update_check    boolean NOT NULL,
	enable          boolean NOT NULL,
	policy_type     text NOT NULL CHECK (policy_type IN ('STATIC', 'SHARED_STATIC',
	                    'CONTEXT_SENSITIVE', 'SHARED_CONTEXT_SENSITIVE', 'DYNAMIC')),
	long_predicate  boolean NOT NULL,
	sec_relevant_cols name[],
	all_rows        boolean NOT NULL DEFAULT false,
	UNIQUE (relid, policy_group, policy_name)
);

CREATE TABLE rustydb.vpd_policy_group (
	relid           oid NOT NULL,
	policy_group    name NOT NULL,
	PRIMARY KEY (relid, policy_group)
);

-- Context attributes a context-sensitive policy depends on (add_policy's
-- namespace/attribute, alter_policy). attribute NULL: any attribute of the namespace.
CREATE TABLE rustydb.vpd_policy_attribute (
	policy_id       integer NOT NULL REFERENCES rustydb.vpd_policy (id) ON DELETE CASCADE,
	namespace       text NOT NULL,
	attribute       text NOT NULL,
	PRIMARY KEY (policy_id, namespace, attribute)
);

-- Driving contexts (add_policy_context): the value names the policy group to enforce.
CREATE TABLE rustydb.vpd_driving_context (
	relid           oid NOT NULL,
	namespace       text NOT NULL,
	attribute       text NOT NULL,
	PRIMARY KEY (relid, namespace, attribute)
);

-- Application contexts (create_context).
CREATE TABLE rustydb.vpd_context (
	namespace       text PRIMARY KEY CHECK (namespace = lower(namespace) AND namespace <> 'userenv'
	                    AND length(namespace) BETWEEN 1 AND 128),
	func            oid NOT NULL,
	created_by      name NOT NULL DEFAULT current_user
);

-- Tables whose row security rustydb switched on, so the last drop_policy
-- restores what was there before.
CREATE TABLE rustydb.vpd_protected (
	relid           oid PRIMARY KEY,
	enabled_rls     boolean NOT NULL,
	forced_rls      boolean NOT NULL
);

CREATE FUNCTION rustydb._vpd_owns(relid oid) RETURNS boolean
LANGUAGE sql STABLE
AS $$ SELECT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = $1
                     AND pg_has_role(current_user, c.relowner, 'USAGE')) $$;

DO $vpd$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['vpd_policy', 'vpd_policy_group', 'vpd_driving_context', 'vpd_protected']
	LOOP
		EXECUTE format('ALTER TABLE rustydb.%I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format('CREATE POLICY owner_reads ON rustydb.%I FOR SELECT USING (true)', t);
		EXECUTE format('CREATE POLICY owner_writes ON rustydb.%I FOR ALL USING (rustydb._vpd_owns(relid)) WITH CHECK (rustydb._vpd_owns(relid))', t);
		EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON rustydb.%I TO PUBLIC', t);
	END LOOP;
END
$vpd$;
ALTER TABLE rustydb.vpd_policy_attribute ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_reads ON rustydb.vpd_policy_attribute FOR SELECT USING (true);
CREATE POLICY owner_writes ON rustydb.vpd_policy_attribute FOR ALL
	USING (EXISTS (SELECT 1 FROM rustydb.vpd_policy p WHERE p.id = policy_id AND rustydb._vpd_owns(p.relid)))
	WITH CHECK (EXISTS (SELECT 1 FROM rustydb.vpd_policy p WHERE p.id = policy_id AND rustydb._vpd_owns(p.relid)));
GRANT SELECT, INSERT, UPDATE, DELETE ON rustydb.vpd_policy_attribute TO PUBLIC;
GRANT USAGE ON SEQUENCE rustydb.vpd_policy_id_seq TO PUBLIC;
GRANT SELECT ON rustydb.vpd_context TO PUBLIC;
GRANT INSERT, DELETE ON rustydb.vpd_context TO rustydb_context_admin;

-- ---------------------------------------------------------------------------
-- C functions
-- ---------------------------------------------------------------------------

-- Markers ANDed in front of every policy predicate; constant-folded away by
-- the planner. Their presence in a cached query lets rustydb invalidate
-- exactly the cached plans that depend on a static, context-sensitive or
-- dynamic policy. Arguments: policy id, flags, security-relevant columns;
-- for dynamic policies also the predicate text and when it was computed.
CREATE FUNCTION rustydb._vpd_static(integer, integer, smallint[]) RETURNS boolean
AS 'MODULE_PATHNAME', 'rustydb_vpd_marker' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION rustydb._vpd_context(integer, integer, smallint[]) RETURNS boolean
AS 'MODULE_PATHNAME', 'rustydb_vpd_marker' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION rustydb._vpd_dynamic(integer, integer, smallint[], text, bigint) RETURNS boolean
AS 'MODULE_PATHNAME', 'rustydb_vpd_marker' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION rustydb._vpd_invalidate(relid oid, action text, policy_name text)
RETURNS void AS 'MODULE_PATHNAME', 'rustydb_vpd_invalidate' LANGUAGE C VOLATILE;

CREATE FUNCTION rustydb._vpd_refresh(relid oid, policy_name text)
RETURNS void AS 'MODULE_PATHNAME', 'rustydb_vpd_refresh' LANGUAGE C VOLATILE;

CREATE FUNCTION rustydb.set_context(namespace text, attribute text, value text)
RETURNS void AS 'MODULE_PATHNAME', 'rustydb_vpd_set_context' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION rustydb.set_context(text, text, text) IS
	'set an application context attribute (only from the namespace''s trusted function)';

CREATE FUNCTION rustydb.clear_context(namespace text, client_identifier text DEFAULT NULL,
	attribute text DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'rustydb_vpd_clear_context' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION rustydb.clear_context(text, text, text) IS
	'clear one attribute, or every attribute, of an application context (only from its trusted function)';

CREATE FUNCTION rustydb.sys_context(namespace text, attribute text, length integer DEFAULT 256)
RETURNS text AS 'MODULE_PATHNAME', 'rustydb_vpd_sys_context' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION rustydb.sys_context(text, text, integer) IS
	'value of an application context attribute, or of a built-in USERENV attribute';

CREATE FUNCTION rustydb.session_context(OUT namespace text, OUT attribute text, OUT value text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'rustydb_vpd_session_context' LANGUAGE C STABLE;
COMMENT ON FUNCTION rustydb.session_context() IS 'application context attributes set in this session';

-- ---------------------------------------------------------------------------
-- DBMS_RLS-style API
-- ---------------------------------------------------------------------------
CREATE FUNCTION rustydb._vpd_relid(object_schema text, object_name text) RETURNS oid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	r oid;
	s text := coalesce(object_schema, current_schema());
BEGIN
	PERFORM rustydb._not_null(object_name IS NULL, 'object_name');
	SELECT c.oid INTO r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE n.nspname = s AND c.relname = object_name AND c.relkind IN ('r', 'p', 'v', 'm', 'f');
	IF r IS NULL THEN
		RAISE EXCEPTION 'table "%.%" does not exist', s, object_name USING ERRCODE = 'undefined_table';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = r AND relkind IN ('r', 'p')) THEN
		RAISE EXCEPTION '"%.%" is not a table', s, object_name
			USING ERRCODE = 'wrong_object_type',
			      HINT = 'Add the policy to the tables under the view; views never bypass the policies of their tables.';
	END IF;
	IF NOT rustydb._vpd_owns(r) THEN
		RAISE EXCEPTION 'must be owner of table %.%', s, object_name USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN r;
END
$$;

-- Switch row security on for the table and every partition or inheritance
-- child, remembering what was already on.
CREATE FUNCTION rustydb._vpd_protect(r oid) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	c record;
BEGIN
	FOR c IN
		WITH RECURSIVE tree(relid) AS (
			SELECT r UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.relid)
		SELECT t.relid, k.relrowsecurity, k.relforcerowsecurity
		  FROM tree t JOIN pg_class k ON k.oid = t.relid
	LOOP
		IF NOT EXISTS (SELECT 1 FROM rustydb.vpd_protected WHERE relid = c.relid) THEN
			INSERT INTO rustydb.vpd_protected VALUES (c.relid, NOT c.relrowsecurity, NOT c.relforcerowsecurity);
		END IF;
		IF NOT c.relrowsecurity THEN
			EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', c.relid::regclass);
		END IF;
		IF NOT c.relforcerowsecurity THEN
			EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', c.relid::regclass);
		END IF;
	END LOOP;
END
$$;

-- Undo _vpd_protect once no policy is left on the table or its ancestors.
CREATE FUNCTION rustydb._vpd_unprotect(r oid) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	c record;
BEGIN
	FOR c IN
		WITH RECURSIVE tree(relid) AS (
			SELECT r UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.relid)
		SELECT p.* FROM tree t JOIN rustydb.vpd_protected p ON p.relid = t.relid
	LOOP
		IF EXISTS (
			WITH RECURSIVE anc(relid) AS (
				SELECT c.relid UNION SELECT i.inhparent FROM pg_inherits i JOIN anc a ON i.inhrelid = a.relid)
			SELECT 1 FROM anc JOIN rustydb.vpd_policy p ON p.relid = anc.relid) THEN
			CONTINUE;
		END IF;
		IF c.forced_rls THEN
			EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', c.relid::regclass);
		END IF;
		IF c.enabled_rls THEN
			EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', c.relid::regclass);
		END IF;
		DELETE FROM rustydb.vpd_protected WHERE relid = c.relid;
	END LOOP;
END
$$;

CREATE FUNCTION rustydb._vpd_upper(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT upper(btrim(v)) $$;

CREATE FUNCTION rustydb._vpd_group(r oid, policy_group text) RETURNS name
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	g name := coalesce(nullif(policy_group, ''), 'SYS_DEFAULT');
BEGIN
	IF g <> 'SYS_DEFAULT' AND NOT EXISTS (SELECT 1 FROM rustydb.vpd_policy_group pg
	                                       WHERE pg.relid = r AND pg.policy_group = g) THEN
		RAISE EXCEPTION 'policy group "%" does not exist for table %', g, r::regclass
			USING ERRCODE = 'undefined_object', HINT = 'Create it with rustydb.create_policy_group.';
	END IF;
	RETURN g;
END
$$;

CREATE FUNCTION rustydb._vpd_add_policy(
	object_schema text, object_name text, policy_group text, policy_name text,
	function_schema text, policy_function text, statement_types text,
	update_check boolean, enable boolean, static_policy boolean, policy_type text,
	long_predicate boolean, sec_relevant_cols text, sec_relevant_cols_opt integer,
	namespace text, attribute text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	r oid := rustydb._vpd_relid(object_schema, object_name);
	g name := rustydb._vpd_group(r, policy_group);
	f oid;
	fs text := coalesce(function_schema, current_schema());
	st text[];
	s text;
	pt text;
	cols name[];
	col text;
	pid integer;
	ns text := lower(btrim(namespace));
	att text := lower(btrim(attribute));
BEGIN
	PERFORM rustydb._not_null(policy_name IS NULL, 'policy_name');
	PERFORM rustydb._not_null(policy_function IS NULL, 'policy_function');
	IF btrim(policy_name) = '' THEN
		RAISE EXCEPTION 'policy_name must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	f := to_regprocedure(format('%I.%I(text, text)', fs, policy_function));
	IF f IS NULL THEN
		RAISE EXCEPTION 'policy function %.%(text, text) does not exist', fs, policy_function
			USING ERRCODE = 'undefined_function',
			      HINT = 'A policy function takes (object_schema text, object_name text) and returns the predicate as text.';
	END IF;
	IF (SELECT prorettype FROM pg_proc WHERE oid = f) NOT IN ('text'::regtype, 'varchar'::regtype) THEN
		RAISE EXCEPTION 'policy function % must return text', f::regprocedure USING ERRCODE = 'invalid_function_definition';
	END IF;
	IF (SELECT proretset OR prokind <> 'f' FROM pg_proc WHERE oid = f) THEN
		RAISE EXCEPTION 'policy function % must be a plain function returning one value', f::regprocedure
			USING ERRCODE = 'invalid_function_definition';
	END IF;

	st := string_to_array(lower(regexp_replace(coalesce(statement_types, 'select,insert,update,delete'), '\s', '', 'g')), ',');
	FOREACH s IN ARRAY st LOOP
		IF s NOT IN ('select', 'insert', 'update', 'delete', 'index') THEN
			RAISE EXCEPTION 'invalid statement type "%"', s
				USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a comma-separated list of select, insert, update, delete and index.';
		END IF;
	END LOOP;

	pt := rustydb._vpd_upper(coalesce(policy_type, CASE WHEN static_policy THEN 'STATIC' ELSE 'DYNAMIC' END));
	IF pt NOT IN ('STATIC', 'SHARED_STATIC', 'CONTEXT_SENSITIVE', 'SHARED_CONTEXT_SENSITIVE', 'DYNAMIC') THEN
		RAISE EXCEPTION 'invalid policy type "%"', policy_type
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'Use STATIC, SHARED_STATIC, CONTEXT_SENSITIVE, SHARED_CONTEXT_SENSITIVE or DYNAMIC.';
	END IF;

	IF sec_relevant_cols IS NOT NULL AND btrim(sec_relevant_cols) <> '' THEN
		FOREACH col IN ARRAY regexp_split_to_array(btrim(sec_relevant_cols), '\s*[,\s]\s*') LOOP
			IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = r AND attname = col
			               AND attnum > 0 AND NOT attisdropped) THEN
				RAISE EXCEPTION 'column "%" of table % does not exist', col, r::regclass
					USING ERRCODE = 'undefined_column';
			END IF;
			cols := cols || col::name;
		END LOOP;
	END IF;
	IF sec_relevant_cols_opt IS NOT NULL AND sec_relevant_cols_opt <> 1 THEN
		RAISE EXCEPTION 'invalid sec_relevant_cols_opt %', sec_relevant_cols_opt
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Use NULL or rustydb.all_rows() (1).';
	END IF;
	IF sec_relevant_cols_opt = 1 THEN
		IF cols IS NULL THEN
			RAISE EXCEPTION 'sec_relevant_cols_opt all_rows needs sec_relevant_cols' USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF st <> ARRAY['select'] THEN
			RAISE EXCEPTION 'sec_relevant_cols_opt all_rows applies only to select policies'
				USING ERRCODE = 'invalid_parameter_value', HINT = 'Use statement_types => ''select''.';
		END IF;
	END IF;
	IF (ns IS NULL) <> (att IS NULL) THEN
		RAISE EXCEPTION 'namespace and attribute must be given together' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF ns IS NOT NULL AND pt NOT IN ('CONTEXT_SENSITIVE', 'SHARED_CONTEXT_SENSITIVE') THEN
		RAISE EXCEPTION 'namespace and attribute apply only to context-sensitive policies' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT 1 FROM rustydb.vpd_policy p WHERE p.relid = r AND p.policy_group = g
	           AND p.policy_name = _vpd_add_policy.policy_name) THEN
		RAISE EXCEPTION 'policy "%" already exists for table %', _vpd_add_policy.policy_name, r::regclass
			USING ERRCODE = 'duplicate_object';
	END IF;

	INSERT INTO rustydb.vpd_policy (relid, policy_group, policy_name, func, sel, ins, upd, del, idx,
	                                update_check, enable, policy_type, long_predicate, sec_relevant_cols, all_rows)
	VALUES (r, g, policy_name, f, 'select' = ANY (st), 'insert' = ANY (st), 'update' = ANY (st),
	        'delete' = ANY (st), 'index' = ANY (st), coalesce(update_check, false), coalesce(enable, true),
	        pt, coalesce(long_predicate, false), cols, coalesce(sec_relevant_cols_opt = 1, false))
	RETURNING id INTO pid;
	IF ns IS NOT NULL THEN
		INSERT INTO rustydb.vpd_policy_attribute VALUES (pid, ns, att);
	END IF;
	PERFORM rustydb._vpd_protect(r);
	PERFORM rustydb._vpd_invalidate(r, 'add_policy', policy_name);
END
$$;

-- Oracle's DBMS_RLS.ALL_ROWS.
CREATE FUNCTION rustydb.all_rows() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 1';

CREATE FUNCTION rustydb.add_policy(
	object_schema text DEFAULT NULL,
	object_name text DEFAULT NULL,
	policy_name text DEFAULT NULL,
	function_schema text DEFAULT NULL,
	policy_function text DEFAULT NULL,
	statement_types text DEFAULT NULL,
	update_check boolean DEFAULT false,
	enable boolean DEFAULT true,
	static_policy boolean DEFAULT false,
	policy_type text DEFAULT NULL,
	long_predicate boolean DEFAULT false,
	sec_relevant_cols text DEFAULT NULL,
	sec_relevant_cols_opt integer DEFAULT NULL,
	namespace text DEFAULT NULL,
	attribute text DEFAULT NULL)
RETURNS void
LANGUAGE sql
AS $$ SELECT rustydb._vpd_add_policy(object_schema, object_name, 'SYS_DEFAULT', policy_name,
	function_schema, policy_function, statement_types, update_check, enable, static_policy,
	policy_type, long_predicate, sec_relevant_cols, sec_relevant_cols_opt, namespace, attribute) $$;
COMMENT ON FUNCTION rustydb.add_policy(text, text, text, text, text, text, boolean, boolean, boolean, text, boolean, text, integer, text, text)
	IS 'DBMS_RLS.ADD_POLICY: attach a policy function to a table';

CREATE FUNCTION rustydb.add_grouped_policy(
	object_schema text DEFAULT NULL,
	object_name text DEFAULT NULL,
	policy_group text DEFAULT 'SYS_DEFAULT',
	policy_name text DEFAULT NULL,
	function_schema text DEFAULT NULL,
	policy_function text DEFAULT NULL,
	statement_types text DEFAULT NULL,
	update_check boolean DEFAULT false,
	enable boolean DEFAULT true,
	static_policy boolean DEFAULT false,
	policy_type text DEFAULT NULL,
	long_predicate boolean DEFAULT false,
	sec_relevant_cols text DEFAULT NULL,
	sec_relevant_cols_opt integer DEFAULT NULL,
	namespace text DEFAULT NULL,
	attribute text DEFAULT NULL)
RETURNS void
LANGUAGE sql
AS $$ SELECT rustydb._vpd_add_policy(object_schema, object_name, policy_group, policy_name,
	function_schema, policy_function, statement_types, update_check, enable, static_policy,
	policy_type, long_predicate, sec_relevant_cols, sec_relevant_cols_opt, namespace, attribute) $$;
COMMENT ON FUNCTION rustydb.add_grouped_policy(text, text, text, text, text, text, text, boolean, boolean, boolean, text, boolean, text, integer, text, text)
	IS 'DBMS_RLS.ADD_GROUPED_POLICY: add a policy to a policy group';

CREATE FUNCTION rustydb._vpd_find(r oid, g name, p text) RETURNS integer
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	pid integer;
BEGIN
	PERFORM rustydb._not_null(p IS NULL, 'policy_name');
	SELECT id INTO pid FROM rustydb.vpd_policy WHERE relid = r AND policy_group = g AND policy_name = p;
	IF pid IS NULL THEN
		RAISE EXCEPTION 'policy "%" does not exist for table %', p, r::regclass
			USING ERRCODE = 'undefined_object';
	END IF;
	RETURN pid;
END
$$;

CREATE FUNCTION rustydb.drop_grouped_policy(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	policy_group text DEFAULT 'SYS_DEFAULT', policy_name text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	r oid := rustydb._vpd_relid(object_schema, object_name);
	pid integer := rustydb._vpd_find(r, rustydb._vpd_group(r, policy_group), policy_name);
BEGIN
	DELETE FROM rustydb.vpd_policy WHERE id = pid;
	PERFORM rustydb._vpd_unprotect(r);
	PERFORM rustydb._vpd_invalidate(r, 'drop_policy', policy_name);
END
$$;

CREATE FUNCTION rustydb.drop_policy(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	policy_name text DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT rustydb.drop_grouped_policy(object_schema, object_name, 'SYS_DEFAULT', policy_name) $$;
COMMENT ON FUNCTION rustydb.drop_policy(text, text, text) IS 'DBMS_RLS.DROP_POLICY';

CREATE FUNCTION rustydb.enable_grouped_policy(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	group_name text DEFAULT 'SYS_DEFAULT', policy_name text DEFAULT NULL, enable boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	r oid := rustydb._vpd_relid(object_schema, object_name);
	pid integer := rustydb._vpd_find(r, rustydb._vpd_group(r, group_name), policy_name);
BEGIN
	PERFORM rustydb._not_null(enable IS NULL, 'enable');
	UPDATE rustydb.vpd_policy p SET enable = enable_grouped_policy.enable WHERE p.id = pid;
	PERFORM rustydb._vpd_invalidate(r, CASE WHEN enable THEN 'enable_policy' ELSE 'disable_policy' END, policy_name);
END
$$;

CREATE FUNCTION rustydb.disable_grouped_policy(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	group_name text DEFAULT 'SYS_DEFAULT', policy_name text DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT rustydb.enable_grouped_policy(object_schema, object_name, group_name, policy_name, false) $$;

CREATE FUNCTION rustydb.enable_policy(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	policy_name text DEFAULT NULL, enable boolean DEFAULT true)
RETURNS void LANGUAGE sql
AS $$ SELECT rustydb.enable_grouped_policy(object_schema, object_name, 'SYS_DEFAULT', policy_name, enable) $$;
COMMENT ON FUNCTION rustydb.enable_policy(text, text, text, boolean) IS 'DBMS_RLS.ENABLE_POLICY';

CREATE FUNCTION rustydb.refresh_grouped_policy(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	group_name text DEFAULT NULL, policy_name text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	r oid;
BEGIN
	IF object_name IS NULL THEN
		-- every policy on every table the caller owns
		FOR r IN SELECT DISTINCT p.relid FROM rustydb.vpd_policy p WHERE rustydb._vpd_owns(p.relid) LOOP
			PERFORM rustydb._vpd_refresh(r, NULL);
		END LOOP;
		RETURN;
	END IF;
	r := rustydb._vpd_relid(object_schema, object_name);
	IF policy_name IS NOT NULL THEN
		PERFORM rustydb._vpd_find(r, rustydb._vpd_group(r, group_name), policy_name);
	END IF;
	PERFORM rustydb._vpd_refresh(r, policy_name);
END
$$;

CREATE FUNCTION rustydb.refresh_policy(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	policy_name text DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT rustydb.refresh_grouped_policy(object_schema, object_name, 'SYS_DEFAULT', policy_name) $$;
COMMENT ON FUNCTION rustydb.refresh_policy(text, text, text) IS
	'DBMS_RLS.REFRESH_POLICY: re-evaluate cached predicates and invalidate cached plans';

-- Oracle's DBMS_RLS.ADD_ATTRIBUTE_ASSOCIATION / REMOVE_ATTRIBUTE_ASSOCIATION.
CREATE FUNCTION rustydb.add_attribute_association() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 1';
CREATE FUNCTION rustydb.remove_attribute_association() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 2';

CREATE FUNCTION rustydb.alter_grouped_policy(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	policy_group text DEFAULT 'SYS_DEFAULT', policy_name text DEFAULT NULL,
	alter_option integer DEFAULT NULL, namespace text DEFAULT NULL, attribute text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	r oid := rustydb._vpd_relid(object_schema, object_name);
	pid integer := rustydb._vpd_find(r, rustydb._vpd_group(r, policy_group), policy_name);
	ns text := lower(btrim(namespace));
	att text := lower(btrim(attribute));
BEGIN
	PERFORM rustydb._not_null(ns IS NULL, 'namespace');
	PERFORM rustydb._not_null(att IS NULL, 'attribute');
	IF (SELECT policy_type FROM rustydb.vpd_policy WHERE id = pid) NOT IN ('CONTEXT_SENSITIVE', 'SHARED_CONTEXT_SENSITIVE') THEN
		RAISE EXCEPTION 'policy "%" is not context-sensitive', policy_name
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Attribute associations apply only to context-sensitive policies.';
	END IF;
	IF alter_option = 1 THEN
		INSERT INTO rustydb.vpd_policy_attribute VALUES (pid, ns, att) ON CONFLICT DO NOTHING;
	ELSIF alter_option = 2 THEN
		DELETE FROM rustydb.vpd_policy_attribute a WHERE a.policy_id = pid AND a.namespace = ns AND a.attribute = att;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'policy "%" has no association with %.%', policy_name, ns, att USING ERRCODE = 'undefined_object';
		END IF;
	ELSE
		RAISE EXCEPTION 'invalid alter_option %', alter_option
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'Use rustydb.add_attribute_association() or rustydb.remove_attribute_association().';
	END IF;
	PERFORM rustydb._vpd_invalidate(r, 'alter_policy', policy_name);
END
$$;

CREATE FUNCTION rustydb.alter_policy(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	policy_name text DEFAULT NULL, alter_option integer DEFAULT NULL, namespace text DEFAULT NULL,
	attribute text DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT rustydb.alter_grouped_policy(object_schema, object_name, 'SYS_DEFAULT', policy_name,
	alter_option, namespace, attribute) $$;
COMMENT ON FUNCTION rustydb.alter_policy(text, text, text, integer, text, text) IS
	'DBMS_RLS.ALTER_POLICY: add or remove a context attribute association';

CREATE FUNCTION rustydb.create_policy_group(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	policy_group text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	r oid := rustydb._vpd_relid(object_schema, object_name);
BEGIN
	PERFORM rustydb._not_null(policy_group IS NULL, 'policy_group');
	IF btrim(policy_group) = '' OR policy_group = 'SYS_DEFAULT' THEN
		RAISE EXCEPTION 'invalid policy group name "%"', policy_group
			USING ERRCODE = 'invalid_parameter_value', HINT = 'SYS_DEFAULT always exists.';
	END IF;
	IF EXISTS (SELECT 1 FROM rustydb.vpd_policy_group g WHERE g.relid = r AND g.policy_group = create_policy_group.policy_group) THEN
		RAISE EXCEPTION 'policy group "%" already exists for table %', policy_group, r::regclass
			USING ERRCODE = 'duplicate_object';
	END IF;
	INSERT INTO rustydb.vpd_policy_group VALUES (r, policy_group);
	PERFORM rustydb._vpd_invalidate(r, 'create_policy_group', policy_group);
END
$$;
COMMENT ON FUNCTION rustydb.create_policy_group(text, text, text) IS 'DBMS_RLS.CREATE_POLICY_GROUP';

CREATE FUNCTION rustydb.delete_policy_group(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	policy_group text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	r oid := rustydb._vpd_relid(object_schema, object_name);
	g name := rustydb._vpd_group(r, policy_group);
BEGIN
	IF g = 'SYS_DEFAULT' THEN
		RAISE EXCEPTION 'policy group SYS_DEFAULT cannot be deleted' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT 1 FROM rustydb.vpd_policy p WHERE p.relid = r AND p.policy_group = g) THEN
		RAISE EXCEPTION 'policy group "%" of table % still has policies', g, r::regclass
			USING ERRCODE = 'dependent_objects_still_exist', HINT = 'Drop them with rustydb.drop_grouped_policy first.';
	END IF;
	DELETE FROM rustydb.vpd_policy_group pg WHERE pg.relid = r AND pg.policy_group = g;
	PERFORM rustydb._vpd_invalidate(r, 'delete_policy_group', g);
END
$$;
COMMENT ON FUNCTION rustydb.delete_policy_group(text, text, text) IS 'DBMS_RLS.DELETE_POLICY_GROUP';

CREATE FUNCTION rustydb.add_policy_context(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	namespace text DEFAULT NULL, attribute text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	r oid := rustydb._vpd_relid(object_schema, object_name);
	ns text := lower(btrim(namespace));
	att text := lower(btrim(attribute));
BEGIN
	PERFORM rustydb._not_null(ns IS NULL, 'namespace');
	PERFORM rustydb._not_null(att IS NULL, 'attribute');
	IF EXISTS (SELECT 1 FROM rustydb.vpd_driving_context d WHERE d.relid = r AND d.namespace = ns AND d.attribute = att) THEN
		RAISE EXCEPTION 'driving context %.% already exists for table %', ns, att, r::regclass
			USING ERRCODE = 'duplicate_object';
	END IF;
	INSERT INTO rustydb.vpd_driving_context VALUES (r, ns, att);
	PERFORM rustydb._vpd_protect(r);
	PERFORM rustydb._vpd_invalidate(r, 'add_policy_context', ns || '.' || att);
END
$$;
COMMENT ON FUNCTION rustydb.add_policy_context(text, text, text, text) IS
	'DBMS_RLS.ADD_POLICY_CONTEXT: the context attribute whose value names the policy group to enforce';

CREATE FUNCTION rustydb.drop_policy_context(object_schema text DEFAULT NULL, object_name text DEFAULT NULL,
	namespace text DEFAULT NULL, attribute text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	r oid := rustydb._vpd_relid(object_schema, object_name);
BEGIN
	PERFORM rustydb._not_null(namespace IS NULL, 'namespace');
	PERFORM rustydb._not_null(attribute IS NULL, 'attribute');
	DELETE FROM rustydb.vpd_driving_context d
	 WHERE d.relid = r AND d.namespace = lower(btrim(drop_policy_context.namespace))
	   AND d.attribute = lower(btrim(drop_policy_context.attribute));
	IF NOT FOUND THEN
		RAISE EXCEPTION 'driving context %.% does not exist for table %', namespace, attribute, r::regclass
			USING ERRCODE = 'undefined_object';
	END IF;
	PERFORM rustydb._vpd_invalidate(r, 'drop_policy_context', lower(namespace) || '.' || lower(attribute));
END
$$;
COMMENT ON FUNCTION rustydb.drop_policy_context(text, text, text, text) IS 'DBMS_RLS.DROP_POLICY_CONTEXT';

CREATE FUNCTION rustydb.create_context(namespace text, trusted_function text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	ns text := lower(btrim(namespace));
	f oid;
BEGIN
	PERFORM rustydb._not_null(namespace IS NULL, 'namespace');
	PERFORM rustydb._not_null(trusted_function IS NULL, 'trusted_function');
	IF ns = '' OR length(ns) > 128 THEN
		RAISE EXCEPTION 'invalid context namespace "%"', namespace USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF ns = 'userenv' THEN
		RAISE EXCEPTION 'namespace userenv is built in and read-only' USING ERRCODE = 'reserved_name';
	END IF;
	IF NOT pg_has_role(current_user, 'rustydb_context_admin', 'USAGE') THEN
		RAISE EXCEPTION 'permission denied to create context "%"', ns
			USING ERRCODE = 'insufficient_privilege',
			      HINT = 'Only members of rustydb_context_admin may create application contexts.';
	END IF;
	IF trusted_function LIKE '%(%' THEN
		f := to_regprocedure(trusted_function);
	ELSE
		f := to_regproc(trusted_function);
	END IF;
	IF f IS NULL THEN
		RAISE EXCEPTION 'function "%" does not exist', trusted_function USING ERRCODE = 'undefined_function';
	END IF;
	IF EXISTS (SELECT 1 FROM rustydb.vpd_context c WHERE c.namespace = ns) THEN
		RAISE EXCEPTION 'context "%" already exists', ns USING ERRCODE = 'duplicate_object';
	END IF;
	INSERT INTO rustydb.vpd_context (namespace, func) VALUES (ns, f);
	PERFORM rustydb._vpd_invalidate(0, 'create_context', ns);
END
$$;
COMMENT ON FUNCTION rustydb.create_context(text, text) IS
	'CREATE CONTEXT namespace USING trusted_function: only that function may set the namespace''s attributes';

CREATE FUNCTION rustydb.drop_context(namespace text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	ns text := lower(btrim(namespace));
BEGIN
	PERFORM rustydb._not_null(namespace IS NULL, 'namespace');
	IF NOT pg_has_role(current_user, 'rustydb_context_admin', 'USAGE') THEN
		RAISE EXCEPTION 'permission denied to drop context "%"', ns USING ERRCODE = 'insufficient_privilege';
	END IF;
	DELETE FROM rustydb.vpd_context c WHERE c.namespace = ns;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'context "%" does not exist', ns USING ERRCODE = 'undefined_object';
	END IF;
	PERFORM rustydb._vpd_invalidate(0, 'drop_context', ns);
END
$$;
COMMENT ON FUNCTION rustydb.drop_context(text) IS 'DROP CONTEXT';


-- ---------------------------------------------------------------------------
-- Catalog views (Oracle's DBA_POLICIES, DBA_POLICY_GROUPS, DBA_POLICY_CONTEXTS,
-- DBA_SEC_RELEVANT_COLS, DBA_POLICY_ATTRIBUTES, DBA_CONTEXT)
-- ---------------------------------------------------------------------------
CREATE VIEW rustydb.policies AS
SELECT n.nspname AS object_owner, c.relname AS object_name, p.policy_group, p.policy_name,
       fn.nspname AS pf_owner, NULL::name AS package, f.proname AS function,
       CASE WHEN p.sel THEN 'YES' ELSE 'NO' END AS sel,
       CASE WHEN p.ins THEN 'YES' ELSE 'NO' END AS ins,
       CASE WHEN p.upd THEN 'YES' ELSE 'NO' END AS upd,
       CASE WHEN p.del THEN 'YES' ELSE 'NO' END AS del,
       CASE WHEN p.idx THEN 'YES' ELSE 'NO' END AS idx,
       CASE WHEN p.update_check THEN 'YES' ELSE 'NO' END AS chk_option,
       CASE WHEN p.enable THEN 'YES' ELSE 'NO' END AS enable,
       CASE WHEN p.policy_type IN ('STATIC', 'SHARED_STATIC') THEN 'YES' ELSE 'NO' END AS static_policy,
       p.policy_type,
       CASE WHEN p.long_predicate THEN 'YES' ELSE 'NO' END AS long_predicate,
       'NO'::text AS common,
       'NO'::text AS inherited
  FROM rustydb.vpd_policy p
  JOIN pg_class c ON c.oid = p.relid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_proc f ON f.oid = p.func
  LEFT JOIN pg_namespace fn ON fn.oid = f.pronamespace;
COMMENT ON VIEW rustydb.policies IS 'VPD policies (the columns of Oracle''s DBA_POLICIES)';

CREATE VIEW rustydb.policy_groups AS
SELECT n.nspname AS object_owner, c.relname AS object_name, 'SYS_DEFAULT'::name AS policy_group
  FROM (SELECT relid FROM rustydb.vpd_policy UNION SELECT relid FROM rustydb.vpd_policy_group) t
  JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
UNION ALL
SELECT n.nspname, c.relname, g.policy_group
  FROM rustydb.vpd_policy_group g
  JOIN pg_class c ON c.oid = g.relid JOIN pg_namespace n ON n.oid = c.relnamespace;
COMMENT ON VIEW rustydb.policy_groups IS 'VPD policy groups (Oracle''s DBA_POLICY_GROUPS)';

CREATE VIEW rustydb.policy_contexts AS
SELECT n.nspname AS object_owner, c.relname AS object_name, d.namespace, d.attribute
  FROM rustydb.vpd_driving_context d
  JOIN pg_class c ON c.oid = d.relid JOIN pg_namespace n ON n.oid = c.relnamespace;
COMMENT ON VIEW rustydb.policy_contexts IS 'VPD driving contexts (Oracle''s DBA_POLICY_CONTEXTS)';

CREATE VIEW rustydb.policy_attributes AS
SELECT n.nspname AS object_owner, c.relname AS object_name, p.policy_group, p.policy_name,
       a.namespace, a.attribute
  FROM rustydb.vpd_policy_attribute a
  JOIN rustydb.vpd_policy p ON p.id = a.policy_id
  JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace;
COMMENT ON VIEW rustydb.policy_attributes IS
	'context attributes of context-sensitive policies (Oracle''s DBA_POLICY_ATTRIBUTES)';

CREATE VIEW rustydb.sec_relevant_cols AS
SELECT n.nspname AS object_owner, c.relname AS object_name, p.policy_group, p.policy_name,
       col AS sec_rel_column, CASE WHEN p.all_rows THEN 'ALL_ROWS' ELSE 'NONE' END AS column_option
  FROM rustydb.vpd_policy p
  CROSS JOIN LATERAL unnest(p.sec_relevant_cols) AS col
  JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace;
COMMENT ON VIEW rustydb.sec_relevant_cols IS 'security-relevant columns (Oracle''s DBA_SEC_RELEVANT_COLS)';

CREATE VIEW rustydb.contexts AS
SELECT x.namespace, fn.nspname AS schema, f.proname AS package, 'ACCESSED LOCALLY'::text AS type,
       x.func::regprocedure::text AS trusted_function
  FROM rustydb.vpd_context x
  LEFT JOIN pg_proc f ON f.oid = x.func
  LEFT JOIN pg_namespace fn ON fn.oid = f.pronamespace;
COMMENT ON VIEW rustydb.contexts IS 'application contexts (Oracle''s DBA_CONTEXT)';

GRANT SELECT ON rustydb.policies, rustydb.policy_groups, rustydb.policy_contexts,
	rustydb.policy_attributes, rustydb.sec_relevant_cols, rustydb.contexts TO PUBLIC;

-- Remove the policies of dropped tables, and the contexts of dropped functions.
CREATE FUNCTION rustydb._vpd_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
	o record;
BEGIN
	FOR o IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
		IF o.classid = 'pg_class'::regclass AND o.objsubid = 0 THEN
			DELETE FROM rustydb.vpd_policy WHERE relid = o.objid;
			DELETE FROM rustydb.vpd_policy_group WHERE relid = o.objid;
			DELETE FROM rustydb.vpd_driving_context WHERE relid = o.objid;
			DELETE FROM rustydb.vpd_protected WHERE relid = o.objid;
		ELSIF o.classid = 'pg_proc'::regclass THEN
			DELETE FROM rustydb.vpd_context WHERE func = o.objid;
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION rustydb._vpd_sql_drop() FROM PUBLIC;
CREATE EVENT TRIGGER rustydb_vpd_sql_drop ON sql_drop EXECUTE FUNCTION rustydb._vpd_sql_drop();
