-- rustydb.memory lists every rustydb shared structure and the per-backend
-- ones that can grow, with bytes, entries, limit and high-water mark.
BEGIN;
SELECT plan(6);

SELECT is_empty(
	$$SELECT name FROM pg_shmem_allocations WHERE name LIKE 'rustydb%'
	  EXCEPT SELECT name FROM rustydb.memory WHERE kind = 'shared'$$,
	'every rustydb shared memory allocation is listed in rustydb.memory');
SELECT is_empty(
	$$SELECT name FROM rustydb.memory WHERE kind = 'shared'
	  EXCEPT SELECT name FROM pg_shmem_allocations$$,
	'every shared structure rustydb.memory lists exists');
SELECT is_empty(
	$$SELECT m.name FROM rustydb.memory m JOIN pg_shmem_allocations a USING (name)
	  WHERE m.bytes > a.allocated_size OR m.bytes <= 0$$,
	'shared structures report their allocated size');
SELECT results_eq(
	$$SELECT "limit", limit_setting FROM rustydb.memory WHERE name = 'rustydb audit queue'$$,
	$$SELECT current_setting('rustydb.audit_queue_size')::bigint, 'rustydb.audit_queue_size'$$,
	'the audit queue reports its limit and the setting that sets it');
SELECT ok((SELECT entries <= "limit" AND high_water <= "limit" AND high_water >= 0
	FROM rustydb.memory WHERE name = 'rustydb audit queue'), 'queue entries and high-water within the limit');
SELECT results_eq(
	$$SELECT kind, "limit", limit_setting FROM rustydb.memory WHERE name = 'rustydb audit policy cache'$$,
	$$VALUES ('backend', current_setting('rustydb.audit_max_policies')::bigint, 'rustydb.audit_max_policies')$$,
	'the per-backend policy cache is listed with its limit');

SELECT * FROM finish();
ROLLBACK;
