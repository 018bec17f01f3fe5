-- rustydb core: version, build information, settings, self-tests.
-- Part of rustydb--0.1.0.sql (assembled by the Makefile from sql/install/*.sql).

\echo Use "CREATE EXTENSION rustydb" to load this file. \quit

CREATE SCHEMA rustydb;
COMMENT ON SCHEMA rustydb IS 'rustydb functions, views and catalogs';

CREATE FUNCTION rustydb.version()
RETURNS text
AS 'MODULE_PATHNAME', 'rustydb_version'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION rustydb.version() IS 'rustydb version';

CREATE FUNCTION rustydb.build_info(
	OUT rustydb_version text,
	OUT postgres_version text,
	OUT libsodium_version text,
	OUT compiler text,
	OUT cxx_standard text,
	OUT build_type text)
RETURNS record
AS 'MODULE_PATHNAME', 'rustydb_build_info'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION rustydb.build_info() IS 'versions rustydb was built with';

CREATE FUNCTION rustydb._settings_registry(
	OUT name text,
	OUT value text,
	OUT unit text,
	OUT type text,
	OUT min text,
	OUT max text,
	OUT allowed_values text,
	OUT default_value text,
	OUT restart_needed boolean,
	OUT context text,
	OUT description text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rustydb_settings_registry'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE VIEW rustydb.settings AS
	SELECT name, value, unit, type, min, max, allowed_values, default_value,
	       restart_needed, context, description
	FROM rustydb._settings_registry()
	ORDER BY name;
COMMENT ON VIEW rustydb.settings IS 'every rustydb.* setting, its value, bounds and description';

CREATE FUNCTION rustydb.selftest_boundary(test text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'rustydb_selftest_boundary'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION rustydb.selftest_boundary(text) FROM PUBLIC;
COMMENT ON FUNCTION rustydb.selftest_boundary(text) IS 'exercise the C++/PostgreSQL error boundary (superuser diagnostic)';

GRANT USAGE ON SCHEMA rustydb TO PUBLIC;
GRANT SELECT ON rustydb.settings TO PUBLIC;

-- ---------------------------------------------------------------------------
-- NULL arguments. A rustydb function is STRICT (NULL in, NULL out, nothing
-- done) unless one of its arguments has a meaning when NULL (documented with
-- the function). Such a function refuses NULL for every other argument with
-- this one error: SQLSTATE 22004, naming the argument (C functions raise the
-- same error through rustydb::require_argument).
-- ---------------------------------------------------------------------------
CREATE FUNCTION rustydb._not_null(is_null boolean, argument text) RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
	IF is_null THEN
		RAISE EXCEPTION 'argument "%" must not be null', argument USING ERRCODE = 'null_value_not_allowed';
	END IF;
END
$$;
