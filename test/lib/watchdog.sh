#!/usr/bin/env bash
# A watched pgbench run for concurrency tests. Source after cluster.sh.
#
#   rdb_pgbench_watched NODE DB LOG -- PGBENCH_ARGS...
#
# Runs pgbench against NODE/DB (output in LOG) with a progress report every
# second (-P 1) and watches it: if pgbench completes no transaction for
# RDB_STALL_SECONDS (default 60) while it runs, the run has stopped making
# progress. The watchdog then writes pg_stat_activity, the lock waits and
# every waiting backend's stack (gdb) into LOG.stall, stops pgbench, ends
# the node with an immediate shutdown (a hung instance does not stop
# otherwise) and returns 2. Returns pgbench's status otherwise.
#
# Progress is pgbench's own count of completed transactions, never time
# and never the server's commit counters (background workers and
# autovacuum commit in a hung instance): a slow, loaded machine still
# completes transactions, so the stall window only has to exceed the
# longest pause a healthy run can have (a checkpoint, a lock wait that the
# deadlock detector ends after deadlock_timeout).
#
#   RDB_BUSY_LOOPS   busy CPU loops run beside pgbench (default 2): a lock-
#                    order bug needs a backend preempted while it holds a
#                    buffer lock, which a loaded machine makes likely

# rdb_pgbench_progress LOG: transactions in the newest progress report
# (-P), or "none" before the first one
rdb_pgbench_progress() {
	local line
	line=$(grep -E '^progress: ' "$1" 2>/dev/null | tail -n 1)
	if [ -z "$line" ]; then echo none; else echo "$line"; fi
}

# rdb_dump_stall NODE DB FILE: what a hung instance looks like, for the log
rdb_dump_stall() {
	local node=$1 out=$3 pid
	{
		echo "==== pg_stat_activity"
		timeout 20 "$RDB_BINDIR/psql" -X -h "$(rdb_sock "$node")" -p "$(rdb_port "$node")" -U postgres -d postgres -c \
			"SELECT pid, backend_type, state, wait_event_type, wait_event, xact_start, left(query, 80) AS query
			   FROM pg_stat_activity ORDER BY pid" 2>&1
		echo "==== pg_locks not granted"
		timeout 20 "$RDB_BINDIR/psql" -X -h "$(rdb_sock "$node")" -p "$(rdb_port "$node")" -U postgres -d postgres -c \
			"SELECT pid, locktype, relation::regclass, page, tuple, transactionid, mode FROM pg_locks WHERE NOT granted" 2>&1
		echo "==== stacks of the backends waiting on a lightweight lock or buffer pin"
		for pid in $(timeout 20 "$RDB_BINDIR/psql" -X -A -t -h "$(rdb_sock "$node")" -p "$(rdb_port "$node")" \
			-U postgres -d postgres -c "SELECT pid FROM pg_stat_activity WHERE wait_event_type IN ('LWLock', 'BufferPin')" 2>/dev/null); do
			echo "---- pid $pid"
			if command -v gdb >/dev/null; then
				timeout 60 gdb -p "$pid" -batch -nx -ex 'bt 30' 2>&1 | grep -E '^#' || echo "(no stack)"
			else
				echo "(gdb not installed)"
			fi
		done
	} >"$out" 2>&1
}

rdb_pgbench_watched() {
	local node=$1 db=$2 log=$3 stall=${RDB_STALL_SECONDS:-60} bench status last now i
	local -a busy=()
	shift 4 # NODE DB LOG --
	for ((i = 0; i < ${RDB_BUSY_LOOPS:-2}; i++)); do
		(while :; do :; done) &
		busy+=($!)
	done
	"$RDB_BINDIR/pgbench" -h "$(rdb_sock "$node")" -p "$(rdb_port "$node")" -U postgres -P 1 "$@" "$db" >"$log" 2>&1 &
	bench=$!
	last=none
	local progress_at=$SECONDS
	# poll pgbench's reports (one a second) until it exits
	while kill -0 "$bench" 2>/dev/null; do
		sleep 1
		now=$(rdb_pgbench_progress "$log")
		# a new report with transactions in it is progress
		if [ "$now" != "$last" ] && [[ "$now" =~ ^progress:\ [0-9.]+\ s,\ ([0-9.]+)\ tps ]] &&
			[ "${BASH_REMATCH[1]}" != "0.0" ]; then
			progress_at=$SECONDS
		fi
		last=$now
		if [ $((SECONDS - progress_at)) -ge "$stall" ]; then
			echo "# watchdog: pgbench completed no transaction in $db for $stall s; state in $log.stall"
			rdb_dump_stall "$node" "$db" "$log.stall"
			sed 's/^/#   /' "$log.stall" | head -n 200
			kill "$bench" 2>/dev/null
			rdb_node_stop "$node" immediate
			wait "$bench" 2>/dev/null
			[ "${#busy[@]}" -gt 0 ] && kill "${busy[@]}" 2>/dev/null
			wait "${busy[@]}" 2>/dev/null
			return 2
		fi
	done
	wait "$bench"
	status=$?
	[ "${#busy[@]}" -gt 0 ] && kill "${busy[@]}" 2>/dev/null
	wait "${busy[@]}" 2>/dev/null
	return "$status"
}
