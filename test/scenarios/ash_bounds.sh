#!/usr/bin/env bash
# Active Session History bounds (acceptance 3): sampling every 10 ms under
# load, the shared-memory ring and rustydb.ash_history stay within their
# limits the whole time, the memory reported never changes, and ash_info's
# counters agree with what the views hold. The sampler's writes to
# ash_history reach the table's statistics, so autovacuum analyses and
# vacuums it (without statistics the planner scanned the whole table at
# every persistence pass, and a pass runs between two samples: one that
# grows with the table drops samples; ash_robustness.sh checks the scans).
#   RDB_ASH_BOUNDS_SECONDS  how long to run (default 30; 600 for the
#                           10-minute figure in docs/ash.md)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

SECS=${RDB_ASH_BOUNDS_SECONDS:-30}
RING=3000
KEEP=2000
PGBENCH=$RDB_BINDIR/pgbench

rdb_node_init ash_bounds
rdb_node_conf ash_bounds "rustydb.ash_sampling_interval = 10ms"
rdb_node_conf ash_bounds "rustydb.ash_max_entries = $RING"
rdb_node_conf ash_bounds "rustydb.ash_persist_every = 2"
rdb_node_conf ash_bounds "rustydb.ash_retention_rows = $KEEP"
rdb_node_start ash_bounds
rdb_psql ash_bounds "CREATE EXTENSION rustydb"

info() { rdb_psql ash_bounds "SELECT $1 FROM rustydb.ash_info"; }
# this script's own reads of ash_history use its indexes, so that the
# table's seq_scan counter counts the sampler's scans only
NOSEQ="SET enable_seqscan = off;"
mem0=$(info memory_bytes)
shm0=$(rdb_psql ash_bounds "SELECT size FROM pg_shmem_allocations WHERE name = 'rustydb ash'")
rdb_ok "the segment holds what ash_info reports ($mem0 <= $shm0 bytes)" test "$mem0" -le "$shm0"

# 8 sessions: sleeping, on CPU, and blocking each other on one row
cat >"$RDB_WORK/mix.sql" <<'SQL'
\set r random(1, 4)
SELECT pg_sleep(0.02 * :r);
SELECT count(*) FROM generate_series(1, 20000 * :r);
BEGIN;
UPDATE ash_hot SET v = v + 1 WHERE id = 1;
SELECT pg_sleep(0.01);
COMMIT;
SQL
rdb_psql ash_bounds "CREATE TABLE ash_hot (id int PRIMARY KEY, v int); INSERT INTO ash_hot VALUES (1, 0)"
"$PGBENCH" -h "$(rdb_sock ash_bounds)" -p "$(rdb_port ash_bounds)" -U postgres -n -c 8 -j 2 -T "$SECS" \
	-f "$RDB_WORK/mix.sql" postgres >"$RDB_WORK/pgbench.out" 2>&1 &
bench=$!

violations=0 checks=0 max_ring=0 max_hist=0
end=$((SECONDS + SECS))
while [ $SECONDS -lt $end ]; do
	line=$(rdb_psql ash_bounds "$NOSEQ SELECT i.rows_in_ring, (SELECT count(*) FROM rustydb.active_session_history),
		(SELECT count(*) FROM rustydb.ash_history), i.memory_bytes,
		(SELECT size FROM pg_shmem_allocations WHERE name = 'rustydb ash')
		FROM rustydb.ash_info i" -F ' ')
	read -r in_ring viewed hist mem shm <<<"$line"
	checks=$((checks + 1))
	[ "$in_ring" -gt "$max_ring" ] && max_ring=$in_ring
	[ "$hist" -gt "$max_hist" ] && max_hist=$hist
	if [ "$in_ring" -gt $RING ] || [ "$viewed" -gt $RING ] || [ "$hist" -gt $KEEP ] ||
		[ "$mem" != "$mem0" ] || [ "$shm" != "$shm0" ]; then
		violations=$((violations + 1))
		echo "# over a limit: ring $in_ring view $viewed history $hist memory $mem shm $shm"
	fi
	sleep 1
done
wait "$bench" || { cat "$RDB_WORK/pgbench.out"; rdb_fail "pgbench workload"; }
echo "# $SECS s at 10 ms: $checks checks, ring max $max_ring/$RING, history max $max_hist/$KEEP"
rdb_is "ring, view, ash_history and memory stayed within their limits at every check" "$violations" "0"
rdb_is "the ring filled up" "$max_ring" "$RING"
rdb_is "ash_history filled up to its row limit" "$max_hist" "$KEEP"

# Stop sampling, wait until the worker has written out what is due (a pass
# after the newest sample), then compare counts.
rdb_psql ash_bounds "ALTER SYSTEM SET rustydb.ash_enabled = off"
rdb_reload ash_bounds
rdb_wait_for "the sampler to see ash_enabled = off" 60 rdb_psql_true ash_bounds "SELECT NOT enabled FROM rustydb.ash_info"
rdb_wait_for "a persistence pass after the newest sample" 60 \
	rdb_psql_true ash_bounds "SELECT last_persist > newest_sample FROM rustydb.ash_info"
rdb_ok "the sampler's inserts and deletes reached ash_history_data's statistics (autovacuum sees them)" \
	rdb_poll 30 rdb_psql_true ash_bounds "$NOSEQ SELECT n_tup_ins = i.rows_persisted
		AND n_tup_del = i.rows_persisted - (SELECT count(*) FROM rustydb.ash_history_data)
		FROM pg_stat_user_tables, rustydb.ash_info i WHERE relid = 'rustydb.ash_history_data'::regclass"
echo "# ash_history_data: $(rdb_psql ash_bounds "SELECT format('%s sequential and %s index scans, analysed %s times by autovacuum',
	seq_scan, idx_scan, autoanalyze_count) FROM pg_stat_user_tables WHERE relid = 'rustydb.ash_history_data'::regclass")"
read -r written in_ring over viewed persisted lost samples dropped hist oldest <<<"$(rdb_psql ash_bounds "
	SELECT rows_written, rows_in_ring, rows_overwritten,
	       (SELECT count(*) FROM rustydb.active_session_history),
	       rows_persisted, rows_not_persisted, samples_taken, samples_dropped,
	       (SELECT count(*) FROM rustydb.ash_history),
	       oldest_sample = (SELECT min(sample_time) FROM rustydb.active_session_history)
	FROM rustydb.ash_info" -F ' ')"
echo "# rows written $written, in ring $in_ring, overwritten $over; persisted $persisted, lost $lost; samples $samples, dropped $dropped"
rdb_is "rows_in_ring = rows_written - rows_overwritten" "$in_ring" "$((written - over))"
rdb_is "the view shows exactly rows_in_ring rows" "$viewed" "$in_ring"
rdb_is "oldest_sample is the oldest row of the view" "$oldest" "t"
rdb_is "ash_history holds min(rows persisted, ash_retention_rows)" "$hist" "$((persisted < KEEP ? persisted : KEEP))"
rdb_is "ash_history ids are consecutive (count = max - min + 1)" \
	"$(rdb_psql ash_bounds "SELECT count(*) = max(id) - min(id) + 1 FROM rustydb.ash_history_data")" "t"
rdb_is "ash_history holds only samples whose id is a multiple of ash_persist_every" \
	"$(rdb_psql ash_bounds "SELECT count(*) FROM rustydb.ash_history WHERE sample_id % 2 <> 0")" "0"
due=$(rdb_psql ash_bounds "SELECT count(*) FROM rustydb._ash_ring(0, NULL, 2)")
rdb_is "every due row still in the ring ($due) is in ash_history, with the same wait event and query id" \
	"$(rdb_psql ash_bounds "SELECT count(*) FROM rustydb._ash_ring(0, NULL, 2) r JOIN rustydb.ash_history h
		ON h.sample_id = r.sample_id AND h.pid = r.pid AND h.wait_event = r.wait_event
		AND h.query_id IS NOT DISTINCT FROM r.query_id")" "$due"
rdb_ok "samples_taken is about $SECS s / 10 ms (taken $samples, dropped $dropped)" \
	test $((samples + dropped)) -ge $((SECS * 100 * 80 / 100))

# Age retention: rows older than ash_retention_age go at the next write.
rdb_psql ash_bounds "UPDATE rustydb.ash_history_data SET sample_time = sample_time - interval '2 hours' WHERE id <= (SELECT min(id) + 99 FROM rustydb.ash_history_data)"
rdb_psql ash_bounds "ALTER SYSTEM SET rustydb.ash_retention_age = '1h'"
rdb_psql ash_bounds "ALTER SYSTEM RESET rustydb.ash_enabled"
rdb_reload ash_bounds
# a pass runs once something was sampled: the check sleeps 50 ms to be
rdb_ok "rows older than ash_retention_age are deleted (at the next pass)" \
	rdb_poll 60 rdb_psql_true ash_bounds "SELECT count(*) = 0 FROM rustydb.ash_history, pg_sleep(0.05)
		WHERE sample_time < now() - interval '1 hour'"

rdb_summary
