#!/usr/bin/env bash
# Active Session History robustness: hundreds of connections, backends
# exiting while being sampled, slow and cancelled readers, switching ASH off
# and on, and the sampler worker killed (SIGTERM: restarted by the
# postmaster; SIGKILL: crash restart) keeps sampling afterwards.
#   RDB_ASH_CONNECTIONS  sessions for the many-connections phase (default 300)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

NCONN=${RDB_ASH_CONNECTIONS:-300}
PGBENCH=$RDB_BINDIR/pgbench

rdb_node_init ash_robust
rdb_node_conf ash_robust "max_connections = $((NCONN + 20))"
rdb_node_conf ash_robust "rustydb.ash_sampling_interval = 10ms"
rdb_node_conf ash_robust "rustydb.ash_max_entries = 20000"
rdb_node_start ash_robust
rdb_psql ash_robust "CREATE EXTENSION rustydb"
log=$(rdb_dir ash_robust)/server.log

info() { rdb_psql ash_robust "SELECT $1 FROM rustydb.ash_info"; }
wait_for() { # wait_for SQL-returning-boolean [seconds]
	local i
	for i in $(seq 1 $((${2:-30} * 10))); do
		[ "$(rdb_psql ash_robust "$1")" = "t" ] && return 0
		sleep 0.1
	done
	return 1
}
bench() {
	"$PGBENCH" -h "$(rdb_sock ash_robust)" -p "$(rdb_port ash_robust)" -U postgres -n "$@" postgres
}

rdb_ok "the sampler worker runs" wait_for "SELECT worker_pid IS NOT NULL AND samples_taken > 0 FROM rustydb.ash_info"
pid1=$(info worker_pid)

# ---- many connections, all active at once
echo "SELECT pg_sleep(1);" >"$RDB_WORK/sleep.sql"
bench -c "$NCONN" -j 2 -T 6 -f "$RDB_WORK/sleep.sql" >"$RDB_WORK/many.out" 2>&1 || { cat "$RDB_WORK/many.out"; rdb_fail "pgbench with $NCONN connections"; }
max=$(info max_sessions_per_sample)
rdb_ok "a sample recorded at least 95% of $NCONN sleeping sessions (max $max)" test "$max" -ge $((NCONN * 95 / 100))
rdb_is "their rows carry the PgSleep wait and a query id" \
	"$(rdb_psql ash_robust "SELECT count(*) > 0 AND bool_and(query_id IS NOT NULL) FROM rustydb.active_session_history WHERE wait_event = 'PgSleep'")" "t"
cost=$(info "round(avg_sample_us::numeric, 1)")
echo "# sampler cost per sample, averaged over the run: ${cost} us"

# ---- a pile-up of lock waiters: at most 64 blocking-pid lookups per sample
rdb_psql ash_robust "CREATE TABLE pile (id int PRIMARY KEY, v int); INSERT INTO pile VALUES (1, 0)"
rdb_psql ash_robust "BEGIN; UPDATE pile SET v = 1; SELECT pg_sleep(4); COMMIT" >/dev/null &
holder=$!
sleep 0.5
echo "UPDATE pile SET v = v + 1 WHERE id = 1;" >"$RDB_WORK/pile.sql"
bench -c 80 -j 2 -t 1 -f "$RDB_WORK/pile.sql" >"$RDB_WORK/pile.out" 2>&1 &
piler=$!
wait "$holder"
wait "$piler" || { cat "$RDB_WORK/pile.out"; rdb_fail "pgbench lock pile-up"; }
read -r known unknown <<<"$(rdb_psql ash_robust "SELECT max(known), max(unknown) FROM (
	SELECT count(*) FILTER (WHERE blocking_pids IS NOT NULL) AS known,
	       count(*) FILTER (WHERE blocking_pids IS NULL) AS unknown
	FROM rustydb.active_session_history WHERE wait_event_type = 'Lock' GROUP BY sample_id) s" -F ' ')"
rdb_ok "with 80 lock waiters, blocking pids were looked up for at most 64 per sample (max $known)" test "$known" -le 64 -a "$known" -ge 60
rdb_ok "and the others recorded as unknown (max $unknown per sample)" test "$unknown" -ge 1

# ---- backends exiting while sampled: a new connection per statement
before=$(info samples_taken)
echo "SELECT 1;" >"$RDB_WORK/one.sql"
bench -C -c 40 -j 2 -T 5 -f "$RDB_WORK/one.sql" >"$RDB_WORK/churn.out" 2>&1 || { cat "$RDB_WORK/churn.out"; rdb_fail "pgbench -C churn"; }
rdb_is "the worker survived connection churn (same pid)" "$(info worker_pid)" "$pid1"
rdb_ok "and kept sampling" test "$(info samples_taken)" -gt "$((before + 100))"

# ---- a slow reader and a cancelled reader do not hold the sampler up
before=$(info samples_taken)
rdb_psql ash_robust "SELECT count(pg_sleep(0.0005)) FROM rustydb.active_session_history" >/dev/null
after=$(info samples_taken)
rdb_ok "samples kept coming while a slow reader ran ($before -> $after)" test "$after" -gt "$before"
out=$(rdb_psql ash_robust "SET statement_timeout = '300ms'; SELECT count(pg_sleep(0.01)) FROM rustydb.active_session_history, generate_series(1, 1000)" 2>&1 || true)
rdb_ok "a reader can be cancelled" grep -q "canceling statement due to statement timeout" <<<"$out"
before=$(info samples_taken)
sleep 0.5
rdb_ok "the sampler keeps going after the cancelled read" test "$(info samples_taken)" -gt "$before"

# ---- ash_enabled off and on without a restart
rdb_psql ash_robust "ALTER SYSTEM SET rustydb.ash_enabled = off" && rdb_psql ash_robust "SELECT pg_reload_conf()" >/dev/null
rdb_ok "ash_enabled = off is picked up" wait_for "SELECT NOT enabled FROM rustydb.ash_info"
before=$(info samples_taken)
sleep 0.5
rdb_is "no samples while disabled" "$(info samples_taken)" "$before"
rdb_psql ash_robust "ALTER SYSTEM RESET rustydb.ash_enabled" && rdb_psql ash_robust "SELECT pg_reload_conf()" >/dev/null
rdb_ok "sampling resumes when enabled again" wait_for "SELECT samples_taken > $before FROM rustydb.ash_info"

# ---- the worker terminated: the postmaster restarts it, the ring is kept
rows=$(info rows_written)
kill -TERM "$pid1"
rdb_ok "after SIGTERM a new worker is started (bgw_restart_time)" \
	wait_for "SELECT worker_pid IS NOT NULL AND worker_pid <> $pid1 AND worker_starts = 2 FROM rustydb.ash_info" 30
rdb_ok "the ring kept its rows across the worker restart" test "$(info rows_written)" -ge "$rows"
before=$(info samples_taken)
rdb_ok "the new worker samples" wait_for "SELECT samples_taken > $before FROM rustydb.ash_info"

# ---- the worker killed: the server restarts all processes, ASH comes back
pid2=$(info worker_pid)
kill -KILL "$pid2"
sleep 1
rdb_ok "after SIGKILL the server recovers and the worker is back" \
	wait_for "SELECT worker_pid IS NOT NULL AND worker_pid <> $pid2 AND samples_taken > 0 FROM rustydb.ash_info" 60
rdb_ok "the restart was logged" grep -q "rustydb ash sampler.*was terminated by signal 9" "$log"
rdb_ok "no assertion failure or other crash in the log" bash -c "! grep -E 'TRAP:|terminated by signal (6|11)|PANIC' '$log'"

rdb_summary
