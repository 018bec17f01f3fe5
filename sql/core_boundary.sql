--
-- The C++/PostgreSQL error boundary: every kind of failure inside C++
-- code reaches the client as an ordinary ERROR with the right SQLSTATE,
-- every C++ destructor runs, and the backend keeps working.
--
SELECT pg_backend_pid() AS pid_before \gset

SELECT rustydb.selftest_boundary('ok');

-- (SQLSTATEs are checked by the DO block below; LOCATION lines would
-- tie the output to source line numbers.)
-- A PostgreSQL error (division by zero) raised beneath C++ frames keeps its
-- SQLSTATE 22012.
SELECT rustydb.selftest_boundary('pg_error');
-- rustydb::Error keeps its SQLSTATE, detail and hint.
SELECT rustydb.selftest_boundary('rustydb_error');
-- Other C++ exceptions become internal errors (XX000) naming the function.
SELECT rustydb.selftest_boundary('std_exception');
SELECT rustydb.selftest_boundary('unknown');
-- std::bad_alloc becomes out of memory (53200).
SELECT rustydb.selftest_boundary('bad_alloc');
SELECT rustydb.selftest_boundary('no such test');

-- No C++ object outlived its failure: every destructor ran.
SELECT rustydb.selftest_boundary('destructors') AS live_objects;

-- The failures can be caught like any PostgreSQL error.
DO $$
DECLARE
	state text;
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['pg_error', 'rustydb_error', 'std_exception', 'bad_alloc', 'unknown'] LOOP
		BEGIN
			PERFORM rustydb.selftest_boundary(t);
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
			RAISE NOTICE '% -> %', t, state;
		END;
	END LOOP;
END
$$;

-- Failures inside a transaction abort it cleanly; the next one works.
BEGIN;
SELECT rustydb.selftest_boundary('pg_error');
SELECT 1;
ROLLBACK;

-- The same backend is still serving us.
SELECT pg_backend_pid() = :pid_before AS same_backend,
       rustydb.selftest_boundary('ok') AS still_works,
       rustydb.selftest_boundary('destructors') AS live_objects;
