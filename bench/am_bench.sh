#!/usr/bin/env bash
# rustydb table access method vs heap, same server, same run:
#   TPC-B (pgbench scale 10, 2 clients), COPY of 1M rows, a full-scan
#   aggregate over 1M rows, 100k index point lookups; table sizes.
#
# heap and rustydb each get a database of their own on one server (the
# pgbench tables and the 1M-row table created with that database's
# default_table_access_method), and every workload runs in alternating
# pairs, heap then rustydb or rustydb then heap, so drift and load spikes
# hit both alike. Printed per workload: the median of each side, and the
# median, mean and 95% confidence half-width of the per-pair ratios
# (rustydb/heap throughput: heap time / rustydb time, higher is better;
# sizes rustydb/heap, lower is better).
#
#   AM_BENCH_PAIRS    pairs per workload (default 7)
#   AM_BENCH_SECONDS  seconds of each TPC-B run (default 10)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PAIRS=${AM_BENCH_PAIRS:-7}
SECS=${AM_BENCH_SECONDS:-10}
bench_setup

rdb_node_init bench
rdb_node_conf bench "shared_buffers = '512MB'"
rdb_node_conf bench "max_wal_size = '4GB'"
rdb_node_conf bench "autovacuum = off"
rdb_node_start bench
PGB=("$RDB_BINDIR/pgbench" -h "$(rdb_sock bench)" -p "$(rdb_port bench)" -U postgres)
q() { rdb_psql bench "$@"; }
qd() { bench_qd bench "$@"; }
timed() { bench_timed bench "$@"; }

COPYFILE=$(bench_copy_data bench)
for am in heap rustydb; do
	q "CREATE DATABASE b_$am"
	qd "b_$am" "CREATE EXTENSION IF NOT EXISTS rustydb"
	qd "b_$am" "ALTER DATABASE b_$am SET default_table_access_method = $am"
	"${PGB[@]}" -i -q -s 10 "b_$am" >/dev/null 2>&1
	qd "b_$am" "CREATE TABLE c (id int, a int, b text, c numeric)"
done
q "CHECKPOINT"

declare -A V # am.workload -> list of values
declare -A RAT # workload -> list of per-pair ratios
order() { if [ $(($1 % 2)) -eq 1 ]; then echo "heap rustydb"; else echo "rustydb heap"; fi; }

echo "# rustydb vs heap: $PAIRS alternating pairs per workload, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# TPC-B: throughput of each run
for p in $(seq 1 "$PAIRS"); do
	declare -A T=()
	declare -A U=()
	for am in $(order "$p"); do
		c0=$(bench_reaped_cpu bench)
		out=$("${PGB[@]}" -n -c 2 -j 2 -T "$SECS" "b_$am" 2>/dev/null)
		c1=$(bench_reaped_cpu bench)
		T[$am]=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out" | head -n1)
		n=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' <<<"$out")
		U[$am]=$(echo "($c1 - $c0) * 1000000 / $n" | bc -l)
	done
	V[heap.tpcb]+=" ${T[heap]}"
	V[rustydb.tpcb]+=" ${T[rustydb]}"
	V[heap.tpcb_cpu]+=" ${U[heap]}"
	V[rustydb.tpcb_cpu]+=" ${U[rustydb]}"
	RAT[tpcb]+=" $(echo "${T[rustydb]} / ${T[heap]}" | bc -l)"
	RAT[tpcb_cpu]+=" $(echo "${U[heap]} / ${U[rustydb]}" | bc -l)"
	printf '#   TPC-B pair %d: heap %.1f tps %.0f us CPU/txn, rustydb %.1f tps %.0f us CPU/txn\n' \
		"$p" "${T[heap]}" "${U[heap]}" "${T[rustydb]}" "${U[rustydb]}"
done
for am in heap rustydb; do
	V[$am.accounts_mb]=$(qd "b_$am" "SELECT round(pg_relation_size('pgbench_accounts') / 1048576.0, 1)")
done

# COPY: into an emptied table each time (TRUNCATE gives it a new file)
for p in $(seq 1 "$PAIRS"); do
	declare -A T=()
	for am in $(order "$p"); do
		T[$am]=$(bench_copy_timed bench "b_$am" "$COPYFILE")
	done
	V[heap.copy]+=" ${T[heap]}"
	V[rustydb.copy]+=" ${T[rustydb]}"
	RAT[copy]+=" $(echo "${T[heap]} / ${T[rustydb]}" | bc -l)"
done
for am in heap rustydb; do
	V[$am.c_mb]=$(qd "b_$am" "SELECT round(pg_relation_size('c') / 1048576.0, 1)")
	qd "b_$am" "VACUUM ANALYZE c"
	qd "b_$am" "CREATE INDEX c_id ON c (id)"
	qd "b_$am" "SELECT count(*), sum(a), max(b) FROM c" >/dev/null # warm the cache
done

for w in scan lookup; do
	sql=$BENCH_SCAN_SQL
	[ "$w" = lookup ] && sql=$BENCH_LOOKUP_SQL
	for p in $(seq 1 "$PAIRS"); do
		declare -A T=()
		for am in $(order "$p"); do T[$am]=$(timed "b_$am" "$sql"); done
		V[heap.$w]+=" ${T[heap]}"
		V[rustydb.$w]+=" ${T[rustydb]}"
		RAT[$w]+=" $(echo "${T[heap]} / ${T[rustydb]}" | bc -l)"
	done
done

med() { bench_stats "$@" | cut -d' ' -f1; }
echo
printf '%-32s %10s %10s %8s %8s %8s %7s\n' measure heap rustydb ratio mean ci95 target
row() { # label workload target
	read -r m mean hw _ <<<"$(bench_stats ${RAT[$2]})"
	printf '%-32s %10s %10s %8s %8s %8s %7s\n' "$1" "$(med ${V[heap.$2]})" "$(med ${V[rustydb.$2]})" \
		"$m" "$mean" "±$hw" "$3"
}
row "TPC-B tps" tpcb ">=0.9"
row "TPC-B backend CPU us/txn" tpcb_cpu "-"
row "COPY 1M rows, s" copy ">=0.9"
row "full-scan aggregate 1M rows, s" scan ">=0.9"
row "100k index point lookups, s" lookup ">=0.9"
printf '%-32s %10s %10s %8s %8s %8s %7s\n' "pgbench_accounts size, MB" "${V[heap.accounts_mb]}" "${V[rustydb.accounts_mb]}" \
	"$(echo "scale=3; ${V[rustydb.accounts_mb]} / ${V[heap.accounts_mb]}" | bc -l)" - - "<=1.1"
printf '%-32s %10s %10s %8s %8s %8s %7s\n' "COPY table size, MB" "${V[heap.c_mb]}" "${V[rustydb.c_mb]}" \
	"$(echo "scale=3; ${V[rustydb.c_mb]} / ${V[heap.c_mb]}" | bc -l)" - - "<=1.1"
echo "# heap, rustydb: medians (tps or seconds); ratio: median of the per-pair rustydb/heap"
echo "# throughput ratios (heap time / rustydb time), mean and 95% half-width of those ratios;"
echo "# TPC-B backend CPU: CPU time of the run's backends per transaction (ratio heap/rustydb)"
