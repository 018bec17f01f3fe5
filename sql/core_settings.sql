--
-- Every rustydb.* setting rejects out-of-range values with a clear error.
-- ALTER SYSTEM validates a value against the setting's bounds and check
-- hook whatever its context, without applying it.
--
\set VERBOSITY default
SELECT count(*) > 0 AS have_bounded_settings
FROM rustydb.settings WHERE type IN ('integer', 'real');

-- one below the minimum, one above the maximum
SELECT format('ALTER SYSTEM SET %I = %s', name,
              CASE type WHEN 'integer' THEN (min::numeric - 1)::text
                        ELSE (min::numeric - greatest(abs(min::numeric), 1))::text END)
FROM rustydb.settings WHERE type IN ('integer', 'real') ORDER BY name
\gexec
SELECT format('ALTER SYSTEM SET %I = %s', name,
              CASE type WHEN 'integer' THEN (max::numeric + 1)::text
                        ELSE (max::numeric * 2 + 1)::text END)
FROM rustydb.settings WHERE type IN ('integer', 'real') ORDER BY name
\gexec
-- enums reject a value outside their list, booleans a non-boolean
SELECT format('ALTER SYSTEM SET %I = %L', name, 'no_such_value')
FROM rustydb.settings WHERE type IN ('enum', 'bool') ORDER BY name
\gexec

-- nothing was written to postgresql.auto.conf
SELECT count(*) AS applied
FROM pg_file_settings WHERE name LIKE 'rustydb.%' AND sourcefile LIKE '%auto.conf';
