-- Active Session History: the sampler, its ring and a report
SELECT enabled, sampling_interval_ms, ring_size, samples_taken > 0 AS sampling, memory_bytes FROM rustydb.ash_info;
SELECT pg_sleep(2.5);
SELECT sample_time, pid, state, wait_event_type, wait_event, left(query, 40) AS query
FROM rustydb.active_session_history
WHERE query LIKE 'SELECT pg_sleep%'
ORDER BY sample_time DESC LIMIT 3;
SELECT * FROM rustydb.ash_report(now() - interval '1 minute', now()) LIMIT 25;
