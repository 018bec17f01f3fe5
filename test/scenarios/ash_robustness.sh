#!/usr/bin/env bash
# Active Session History robustness: hundreds of connections, a pile-up of
# lock waiters, backends exiting while being sampled, slow and cancelled
# readers, switching ASH off and on, and the sampler worker killed
# (SIGTERM: the postmaster restarts it, the ring is kept; SIGKILL: a crash
# restart of the whole server, shared memory and so the ring start empty,
# ash_history keeps what was persisted).
#
# Every check waits for the state it measures, never for a time: the
# sessions are held inside their sleep (or lock wait) until the test has
# seen all of them there in pg_stat_activity and the sampler has taken
# samples since, then released. So it passes on a loaded machine.
#   RDB_ASH_CONNECTIONS  sessions for the many-connections phase (default 300)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap 'kill $(jobs -p) 2>/dev/null || true; rdb_cleanup' EXIT

NCONN=${RDB_ASH_CONNECTIONS:-300}
NWAIT=80 # lock waiters: more than the 64 blocker lookups per sample
PGBENCH=$RDB_BINDIR/pgbench
N=ash_robust

rdb_node_init $N
rdb_node_conf $N "max_connections = $((NCONN + 20))"
rdb_node_conf $N "rustydb.ash_sampling_interval = 10ms"
rdb_node_conf $N "rustydb.ash_max_entries = 20000"
rdb_node_start $N
log=$(rdb_dir $N)/server.log

q() { rdb_psql $N "$1"; }
info() { q "SELECT $1 FROM rustydb.ash_info"; }
# wait_state DESC SQL [SECONDS]: until SQL is true (at most SECONDS, 120)
wait_state() { rdb_wait_for "$1" "${3:-120}" rdb_psql_true $N "$2"; }
# samples_since T COUNT: wait until COUNT samples were taken after time T
samples_since() {
	wait_state "$2 samples taken after $1" \
		"SELECT count(DISTINCT sample_id) >= $2 FROM rustydb.active_session_history WHERE sample_time > '$1'"
}
# pause / resume: sampling off / on (ash_enabled), until the sampler says so
pause() {
	q "ALTER SYSTEM SET rustydb.ash_enabled = off"
	rdb_reload $N
	wait_state "the sampler to see ash_enabled = off" "SELECT NOT enabled FROM rustydb.ash_info"
}
resume() {
	q "ALTER SYSTEM RESET rustydb.ash_enabled"
	rdb_reload $N
	wait_state "the sampler to see ash_enabled = on" "SELECT enabled FROM rustydb.ash_info"
}
# per_sample T EXPR: "MIN-MAX COUNT" of EXPR (an aggregate over one
# sample's rows) over the samples taken after time T, read while sampling is
# paused (at 300 rows a sample the ring turns over in less than a second: a
# reader could lose rows being overwritten); the ring's oldest sample may
# have lost rows to newer ones and does not count
per_sample() {
	q "WITH r AS MATERIALIZED (SELECT * FROM rustydb.active_session_history),
		b AS (SELECT min(sample_id) AS lo, max(sample_id) AS hi FROM r),
		s AS (SELECT $2 AS v FROM r, b WHERE r.sample_id > b.lo AND r.sample_id < b.hi
			AND r.sample_time > '$1' GROUP BY r.sample_id)
		SELECT min(v) || '-' || max(v) || ' ' || count(*) FROM s"
}
# active_count LIKE: sessions running a statement whose text is LIKE the pattern
active_count() { q "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '$1'"; }
bench() { # runs in the background: its pid is pgbench's
	exec "$PGBENCH" -h "$(rdb_sock $N)" -p "$(rdb_port $N)" -U postgres -n "$@" postgres
}

# hold(what): sleep (in pg_sleep, 0.1 s at a time) until the test releases
# it with INSERT INTO released VALUES (what)
q "CREATE EXTENSION rustydb;
	CREATE TABLE released (what text);
	CREATE FUNCTION hold(what text) RETURNS void LANGUAGE plpgsql AS \$\$
	BEGIN
		WHILE NOT EXISTS (SELECT FROM released r WHERE r.what = hold.what) LOOP
			PERFORM pg_sleep(0.1);
		END LOOP;
	END \$\$"
release() { q "INSERT INTO released VALUES ('$1')"; }
HISTSTATS="FROM pg_stat_user_tables WHERE relid = 'rustydb.ash_history_data'::regclass"
seq0=$(q "SELECT seq_scan $HISTSTATS") # CREATE EXTENSION's index builds

wait_state "the sampler worker to sample" "SELECT worker_pid IS NOT NULL AND samples_taken > 0 FROM rustydb.ash_info" 60
rdb_pass "the sampler worker runs"
pid1=$(info worker_pid)

# ---- many connections, all active at once
echo "SELECT hold('many');" >"$RDB_WORK/many.sql"
bench -c "$NCONN" -j 2 -t 1 -f "$RDB_WORK/many.sql" >"$RDB_WORK/many.out" 2>&1 &
many=$!
wait_state "all $NCONN sessions to be inside hold('many')" \
	"SELECT count(*) = $NCONN FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT hold(''many'')%'" 300
t0=$(q "SELECT clock_timestamp()")
samples_since "$t0" 4
pause
read -r range nsamples <<<"$(per_sample "$t0" "count(*) FILTER (WHERE query LIKE 'SELECT hold(''many'')%')")"
rdb_is "each of the $nsamples samples taken while the $NCONN sessions were active recorded all of them" \
	"$range" "$NCONN-$NCONN"
rdb_ok "max_sessions_per_sample counts them ($(info max_sessions_per_sample))" test "$(info max_sessions_per_sample)" -ge "$NCONN"
rdb_is "their rows in pg_sleep carry the PgSleep wait and a query id" \
	"$(q "SELECT count(*) > 0 AND bool_and(query_id IS NOT NULL) FROM rustydb.active_session_history
		WHERE query LIKE 'SELECT hold(''many'')%' AND wait_event = 'PgSleep'")" "t"
resume
release many
wait "$many" || {
	cat "$RDB_WORK/many.out"
	rdb_fail "pgbench with $NCONN connections"
}
echo "# sampler cost per sample, averaged over the run: $(info "round(avg_sample_us::numeric, 1)") us"

# ---- a pile-up of lock waiters: at most 64 blocking-pid lookups per sample
q "CREATE TABLE pile (id int PRIMARY KEY, v int); INSERT INTO pile VALUES (1, 0)"
q "BEGIN; UPDATE pile SET v = 1; SELECT hold('pile'); COMMIT" >/dev/null &
holder=$!
wait_state "the holder to have updated the row" \
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'BEGIN; UPDATE pile%' AND backend_xid IS NOT NULL"
echo "UPDATE pile SET v = v + 1 WHERE id = 1;" >"$RDB_WORK/pile.sql"
bench -c $NWAIT -j 2 -t 1 -f "$RDB_WORK/pile.sql" >"$RDB_WORK/pile.out" 2>&1 &
piler=$!
wait_state "all $NWAIT updates to wait on the lock" \
	"SELECT count(*) = $NWAIT FROM pg_stat_activity WHERE query LIKE 'UPDATE pile SET%' AND wait_event_type = 'Lock'" 300
t0=$(q "SELECT clock_timestamp()")
samples_since "$t0" 4
pause
read -r known nsamples <<<"$(per_sample "$t0" "count(*) FILTER (WHERE wait_event_type = 'Lock' AND blocking_pids IS NOT NULL)")"
read -r unknown _ <<<"$(per_sample "$t0" "count(*) FILTER (WHERE wait_event_type = 'Lock' AND blocking_pids IS NULL)")"
resume
rdb_is "with $NWAIT lock waiters, blocking pids were looked up for 64 in each of $nsamples samples" "$known" "64-64"
rdb_is "and the other $((NWAIT - 64)) recorded as unknown" "$unknown" "$((NWAIT - 64))-$((NWAIT - 64))"
release pile
wait "$holder"
wait "$piler" || {
	cat "$RDB_WORK/pile.out"
	rdb_fail "pgbench lock pile-up"
}

# ---- backends exiting while sampled: a new connection per statement, until
# the sampler has taken 100 samples and 200 sessions have come and gone
before=$(info samples_taken)
sessions=$(q "SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'")
echo "SELECT 1;" >"$RDB_WORK/one.sql"
bench -C -c 40 -j 2 -T 600 -f "$RDB_WORK/one.sql" >"$RDB_WORK/churn.out" 2>&1 &
churn=$!
wait_state "100 samples and 200 sessions during the connection churn" \
	"SELECT samples_taken >= $before + 100 AND (SELECT sessions FROM pg_stat_database WHERE datname = 'postgres') >= $sessions + 200
	 FROM rustydb.ash_info"
rdb_ok "the churn was still running then" kill -0 "$churn"
kill "$churn"
wait "$churn" 2>/dev/null || true
rdb_is "the worker survived connection churn (same pid)" "$(info worker_pid)" "$pid1"

# ---- a slow reader and a cancelled reader do not hold the sampler up
SLOW="SELECT count(pg_sleep(0.0005)) FROM rustydb.active_session_history, generate_series(1, 10)"
q "$SLOW" >/dev/null 2>&1 &
reader=$!
wait_state "the slow reader to run" "SELECT count(*) = 1 FROM pg_stat_activity WHERE state = 'active' AND query = '$SLOW'"
before=$(info samples_taken)
wait_state "10 samples while the slow reader runs" "SELECT samples_taken >= $before + 10 FROM rustydb.ash_info"
rdb_is "samples kept coming while a slow reader ran (it still runs)" "$(active_count "$SLOW")" "1"
rdb_is "the slow reader can be cancelled" \
	"$(q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = '$SLOW'")" "t"
wait "$reader" 2>/dev/null || true
out=$(q "SET statement_timeout = '300ms'; SELECT count(pg_sleep(0.01)) FROM rustydb.active_session_history, generate_series(1, 1000)" 2>&1 || true)
rdb_ok "a reader stopped by statement_timeout is cancelled" grep -q "canceling statement due to statement timeout" <<<"$out"
before=$(info samples_taken)
wait_state "a sample after the cancelled read" "SELECT samples_taken > $before FROM rustydb.ash_info"
rdb_pass "the sampler keeps going after the cancelled read"

# ---- ash_enabled off and on without a restart (pause and resume above)
pause
rdb_pass "ash_enabled = off is picked up"
# once the sampler shows it disabled it takes no sample; a window to see
# that (load can only make it shorter, never fail it)
before=$(info samples_taken)
sleep 0.5
rdb_is "no samples while disabled" "$(info samples_taken)" "$before"
resume
wait_state "sampling to resume" "SELECT samples_taken > $before FROM rustydb.ash_info"
rdb_pass "sampling resumes when enabled again"

# ---- persistence passes (one a second while anything is sampled; 2000
# rows a second were added to ash_history above) run between two samples:
# their cost must not grow with the table. The sampler reports the table's
# statistics (else autovacuum never analyses it) and never plans a scan of
# the whole table (without statistics, its trims used to)
rdb_ok "the sampler's inserts reached ash_history_data's statistics ($(info rows_persisted) rows persisted)" \
	rdb_poll 30 rdb_psql_true $N "SELECT n_tup_ins = (SELECT rows_persisted FROM rustydb.ash_info) $HISTSTATS"
rdb_is "no persistence pass scanned all of ash_history_data ($(q "SELECT n_live_tup $HISTSTATS") rows)" \
	"$(q "SELECT seq_scan - $seq0 $HISTSTATS")" "0"

# ---- the worker terminated: the postmaster restarts it, the ring is kept
rows=$(info rows_written)
kill -TERM "$pid1"
wait_state "a new worker after SIGTERM" \
	"SELECT worker_pid IS NOT NULL AND worker_pid <> $pid1 AND worker_starts = 2 FROM rustydb.ash_info" 60
rdb_pass "after SIGTERM a new worker is started (bgw_restart_time)"
rdb_ok "the ring kept its rows across the worker restart" test "$(info rows_written)" -ge "$rows"
before=$(info samples_taken)
wait_state "the new worker to sample" "SELECT samples_taken > $before FROM rustydb.ash_info"
rdb_pass "the new worker samples"

# ---- the worker killed: a crash restart of the whole server; shared memory
# is created anew, so the ring starts empty; ash_history is a table and
# keeps what was persisted
pid2=$(info worker_pid)
wait_state "rows persisted to ash_history" "SELECT count(*) > 0 FROM rustydb.ash_history"
persisted=$(q "SELECT count(*) FROM rustydb.ash_history")
t_kill=$(q "SELECT clock_timestamp()")
kill -KILL "$pid2"
# (the check itself sleeps 50 ms, so the sampler has a session to record)
wait_state "the server to restart and a new worker to record a session" \
	"SELECT worker_pid IS NOT NULL AND worker_pid <> $pid2 AND rows_written > 0 FROM rustydb.ash_info, pg_sleep(0.05)" 120
rdb_ok "the postmaster reinitialised shared memory after the SIGKILL" \
	grep -q "rustydb ash sampler.*was terminated by signal 9" "$log"
rdb_ok "... (all server processes terminated; reinitializing)" grep -q "all server processes terminated; reinitializing" "$log"
rdb_is "the counters started over (worker_starts = 1)" "$(info worker_starts)" "1"
rdb_is "the ring lost its rows: each row in it was sampled after the kill" \
	"$(q "SELECT coalesce(bool_and(sample_time > '$t_kill'), true) AND (SELECT oldest_sample > '$t_kill' FROM rustydb.ash_info)
		FROM rustydb.active_session_history")" "t"
rdb_ok "ash_history kept the rows persisted before the kill ($persisted)" \
	test "$(q "SELECT count(*) FROM rustydb.ash_history WHERE sample_time < '$t_kill'")" -ge "$persisted"
rdb_ok "no assertion failure or other crash in the log" bash -c "! grep -E 'TRAP:|terminated by signal (6|11)|PANIC' '$log'"

rdb_summary
