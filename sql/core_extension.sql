--
-- The extension's spine: create, versions, settings view, drop.
--
CREATE EXTENSION rustydb;

SELECT rustydb.version();

SELECT rustydb_version = rustydb.version() AS version_matches,
       postgres_version LIKE '15.%' AS built_for_pg15,
       postgres_version = current_setting('server_version') AS same_server,
       libsodium_version ~ '^[0-9]+\.[0-9]+\.[0-9]+' AS has_libsodium,
       compiler LIKE 'g++ %' AS has_compiler,
       cxx_standard = 'C++201703L' AS is_cxx17,
       build_type IN ('release', 'assert') AS has_build_type
FROM rustydb.build_info();

-- the schema and its members
SELECT nspname FROM pg_namespace WHERE nspname = 'rustydb';
-- (core's own functions; each subsystem's tests check theirs)
SELECT p.proname, pg_get_function_result(p.oid) AS result
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'rustydb'
  AND p.proname IN ('version', 'build_info', '_settings_registry', 'selftest_boundary')
ORDER BY 1;
-- every function in the schema belongs to the extension
SELECT p.oid::regprocedure
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'rustydb'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e');

-- rustydb.settings has the documented columns
SELECT attname, format_type(atttypid, atttypmod)
FROM pg_attribute
WHERE attrelid = 'rustydb.settings'::regclass AND attnum > 0
ORDER BY attnum;

-- every rustydb.* setting known to the server is in the registry, and back
SELECT name FROM pg_settings WHERE name LIKE 'rustydb.%'
EXCEPT SELECT name FROM rustydb.settings;
SELECT name FROM rustydb.settings
EXCEPT SELECT name FROM pg_settings WHERE name LIKE 'rustydb.%';

-- the registry agrees with pg_settings on bounds, units and context
SELECT s.name
FROM rustydb.settings s JOIN pg_settings p USING (name)
WHERE s.min IS DISTINCT FROM p.min_val
   OR s.max IS DISTINCT FROM p.max_val
   OR s.unit IS DISTINCT FROM p.unit
   OR s.context IS DISTINCT FROM p.context
   OR s.restart_needed IS DISTINCT FROM (p.context = 'postmaster');

-- every setting is described
SELECT name FROM rustydb.settings WHERE coalesce(description, '') = '';

-- the reserved prefix: a misspelt rustydb setting is an error, not a placeholder
SET rustydb.no_such_setting = 1;

-- unprivileged users can read the settings but not run the self-test
CREATE ROLE rustydb_regress_user;
SET ROLE rustydb_regress_user;
SELECT count(*) >= 0 AS can_read_settings FROM rustydb.settings;
SELECT rustydb.selftest_boundary('ok');
RESET ROLE;
DROP ROLE rustydb_regress_user;

-- DROP EXTENSION removes everything, including the schema; it can come back
DROP EXTENSION rustydb;
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname = 'rustydb';
CREATE EXTENSION rustydb;
SELECT rustydb.version();
