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
