#!/usr/bin/env bash
# Active Session History overhead, measured in one run on one server:
#   1. pgbench, 2 clients, select-only (-S) and TPC-B, with ASH off and
#      sampling every 1 s, 100 ms and 10 ms; modes interleaved over several
#      rounds, median TPS per mode, printed as ratios to "off".
#   2. the sampler's cost per sample with N connections all active
#      (sleeping in pg_sleep) and all idle, for N = 100 and 500.
# Uses a build installed privately (as scripts/test.sh does).
#   ASH_BENCH_SECONDS   seconds per pgbench run (default 10)
#   ASH_BENCH_ROUNDS    rounds of the four modes (default 5)
# Besides TPS, each run records the CPU time the sampler process itself
# used (from /proc), which a busy shared machine does not distort the way it
# distorts TPS: its share of the run is the sampler's direct cost.
#   ASH_BENCH_SCALE     pgbench scale (default 10)
#   ASH_BENCH_CONNS     connection counts for the sampler cost (default "100 500")
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SECS=${ASH_BENCH_SECONDS:-10}
ROUNDS=${ASH_BENCH_ROUNDS:-5}
SCALE=${ASH_BENCH_SCALE:-10}
CONNS=${ASH_BENCH_CONNS:-100 500}

make -s -j2 >/dev/null
WORK=$(mktemp -d /tmp/rustydb-ashbench.XXXXXX)
chmod 755 "$WORK"
. test/lib/install.sh
RDB_BINDIR=$(rdb_temp_install "$WORK/install" "$ROOT")
export RDB_BINDIR RDB_WORK=$WORK/nodes
mkdir -p "$RDB_WORK"
. test/lib/cluster.sh
trap 'rdb_cleanup; rm -rf "$WORK"' EXIT

maxconn=20
for n in $CONNS; do [ $((n + 20)) -gt $maxconn ] && maxconn=$((n + 20)); done
rdb_node_init b
rdb_node_conf b "max_connections = $maxconn"
rdb_node_conf b "shared_buffers = 256MB"
rdb_node_conf b "rustydb.ash_persist_every = 10"
rdb_node_start b
rdb_psql b "CREATE EXTENSION rustydb"
pgb() { "$RDB_BINDIR/pgbench" -h "$(rdb_sock b)" -p "$(rdb_port b)" -U postgres "$@" postgres; }
pgb -i -q -s "$SCALE" >/dev/null 2>&1

set_mode() { # off | interval
	if [ "$1" = off ]; then
		rdb_psql b "ALTER SYSTEM SET rustydb.ash_enabled = off"
	else
		rdb_psql b "ALTER SYSTEM RESET rustydb.ash_enabled"
		rdb_psql b "ALTER SYSTEM SET rustydb.ash_sampling_interval = '$1'"
	fi
	rdb_psql b "SELECT pg_reload_conf()" >/dev/null
	local want
	if [ "$1" = off ]; then want="f"; else want="t $(echo "$1" | sed -E 's/ms$//; s/^([0-9]+)s$/\1000/')"; fi
	for _ in $(seq 1 100); do
		[ "$(rdb_psql b "SELECT CASE WHEN enabled THEN 't ' || sampling_interval_ms ELSE 'f' END FROM rustydb.ash_info")" = "$want" ] && return 0
		sleep 0.1
	done
	echo "mode $1 not picked up by the sampler" >&2
	exit 1
}

tps() { pgb "$@" -n -c 2 -j 2 -T "$SECS" 2>/dev/null | sed -nE 's/^tps = ([0-9.]+).*/\1/p'; }
# CPU seconds (user + system) the sampler process has used so far
worker_cpu() {
	local pid
	pid=$(rdb_psql b "SELECT worker_pid FROM rustydb.ash_info")
	awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$pid/stat"
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

MODES=(off 1s 100ms 10ms)
declare -A R C
echo "# rustydb ASH overhead: pgbench scale $SCALE, 2 clients, ${SECS} s per run, $ROUNDS rounds, $(nproc) cores"
for wl in select-only tpcb; do
	flag=""
	[ "$wl" = select-only ] && flag="-S"
	for r in $(seq 1 "$ROUNDS"); do
		for k in 0 1 2 3; do
			# rotate the order each round so no mode always runs first
			m=${MODES[$(((k + r) % 4))]}
			set_mode "$m"
			c0=$(worker_cpu)
			t=$(tps $flag)
			c1=$(worker_cpu)
			R[$wl.$m]="${R[$wl.$m]:-} $t"
			C[$wl.$m]=$(echo "${C[$wl.$m]:-0} + $c1 - $c0" | bc -l)
			echo "#   $wl round $r, ASH $m: $t tps, sampler CPU $(echo "$c1 - $c0" | bc -l) s"
		done
	done
done
echo
printf '%-12s %-8s %12s %8s %22s\n' workload ash tps_median ratio sampler_cpu_share
for wl in select-only tpcb; do
	base=$(echo "${R[$wl.off]}" | tr ' ' '\n' | sed '/^$/d' | median)
	for m in "${MODES[@]}"; do
		med=$(echo "${R[$wl.$m]}" | tr ' ' '\n' | sed '/^$/d' | median)
		printf '%-12s %-8s %12.1f %8.3f %21.4f%%\n' "$wl" "$m" "$med" "$(echo "$med / $base" | bc -l)" \
			"$(echo "100 * ${C[$wl.$m]} / ($SECS * $ROUNDS)" | bc -l)"
	done
done

# ---- sampler cost per sample
echo
set_mode 10ms
echo "SELECT pg_sleep(5);" >"$WORK/active.sql"
printf '\\sleep 5 s\n' >"$WORK/idle.sql"
cost_during() { # script clients -> "us_per_sample sessions_per_sample"
	local before after
	pgb -n -c "$2" -j 2 -T 8 -f "$1" >/dev/null 2>&1 &
	local pid=$!
	sleep 3
	before=$(rdb_psql b "SELECT avg_sample_us * samples_taken, samples_taken FROM rustydb.ash_info" -F ' ')
	sleep 3
	after=$(rdb_psql b "SELECT avg_sample_us * samples_taken, samples_taken, sessions_last_sample FROM rustydb.ash_info" -F ' ')
	wait "$pid" || true
	read -r us0 n0 <<<"$before"
	read -r us1 n1 s1 <<<"$after"
	printf '%.1f %s' "$(echo "($us1 - $us0) / ($n1 - $n0)" | bc -l)" "$s1"
}
echo "# sampler cost per sample at 10 ms (share of one core = us_per_sample / 10000)"
printf '%-12s %-8s %16s %18s\n' connections state us_per_sample sessions_sampled
for n in $CONNS; do
	for state in active idle; do
		read -r us s <<<"$(cost_during "$WORK/$state.sql" "$n")"
		printf '%-12s %-8s %16s %18s\n' "$n" "$state" "$us" "$s"
	done
done
