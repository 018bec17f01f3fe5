#!/usr/bin/env bash
# rustydb table access method vs heap, same server, same run:
#   TPC-B (pgbench scale 10, 2 clients), COPY of 1M rows, a full-scan
#   aggregate over 1M rows, 100k index point lookups; table sizes.
# Prints each figure for heap and rustydb and the rustydb/heap ratio
# (throughput: higher is better; time and size: lower is better).
#
#   bash bench/am_bench.sh            (RDB_BENCH_SECONDS=30 for TPC-B)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SECONDS_TPCB=${RDB_BENCH_SECONDS:-30}

if [ -z "${RDB_BINDIR:-}" ]; then
	make -s -j2 >/dev/null
	WORK=$(mktemp -d /tmp/rustydb-bench.XXXXXX)
	chmod 755 "$WORK"
	. test/lib/install.sh
	RDB_BINDIR=$(rdb_temp_install "$WORK/install" "$ROOT")
	export RDB_BINDIR
	export RDB_WORK=$WORK/nodes
	mkdir -p "$RDB_WORK"
fi
. test/lib/cluster.sh
trap rdb_cleanup EXIT

rdb_node_init bench
rdb_node_conf bench "shared_buffers = '256MB'"
rdb_node_conf bench "max_wal_size = '2GB'"
rdb_node_conf bench "autovacuum = off"
rdb_node_start bench
rdb_psql bench "CREATE EXTENSION rustydb"
PGB=("$RDB_BINDIR/pgbench" -h "$(rdb_sock bench)" -p "$(rdb_port bench)" -U postgres)
now() { date +%s.%N; }
q() { rdb_psql bench "$1"; }

# the COPY source: 1M rows, written once by the server
COPYFILE=$(rdb_dir bench)/copy.data
q "COPY (SELECT g, g % 1000, md5(g::text), g / 7.0 FROM generate_series(1, 1000000) g) TO '$COPYFILE'"

declare -A R
for am in heap rustydb; do
	export PGOPTIONS="-c default_table_access_method=$am"
	q "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history, c" >/dev/null
	"${PGB[@]}" -i -q -s 10 postgres >/dev/null 2>&1
	q "CHECKPOINT"
	R[$am.tpcb]=$("${PGB[@]}" -n -c 2 -j 2 -T "$SECONDS_TPCB" postgres 2>/dev/null |
		sed -nE 's/^tps = ([0-9.]+) .*/\1/p' | head -n1)
	R[$am.accounts_mb]=$(q "SELECT round(pg_relation_size('pgbench_accounts') / 1048576.0, 1)")

	q "CREATE TABLE c (id int, a int, b text, c numeric)"
	q "CHECKPOINT"
	t0=$(now)
	q "COPY c FROM '$COPYFILE'"
	t1=$(now)
	R[$am.copy_s]=$(echo "$t1 - $t0" | bc -l)
	R[$am.c_mb]=$(q "SELECT round(pg_relation_size('c') / 1048576.0, 1)")
	q "VACUUM ANALYZE c"

	best=999999
	for _ in 1 2 3; do
		t0=$(now)
		q "SELECT count(*), sum(a), max(b) FROM c" >/dev/null
		t1=$(now)
		t=$(echo "$t1 - $t0" | bc -l)
		best=$(echo "if ($t < $best) $t else $best" | bc -l)
	done
	R[$am.scan_s]=$best

	q "CREATE INDEX c_id ON c (id)"
	q "SELECT count(*) FROM c WHERE id < 100" >/dev/null
	t0=$(now)
	q "DO \$\$ DECLARE s bigint := 0; v int; BEGIN
		FOR i IN 1..100000 LOOP
			SELECT a INTO v FROM c WHERE id = 1 + (i * 7919) % 1000000;
			s := s + v;
		END LOOP; END \$\$"
	t1=$(now)
	R[$am.lookup_s]=$(echo "$t1 - $t0" | bc -l)
done
unset PGOPTIONS

ratio() { echo "scale=3; $1 / $2" | bc -l; }
printf '%-34s %12s %12s %10s\n' "measure" "heap" "rustydb" "ratio"
printf '%-34s %12.1f %12.1f %10s\n' "TPC-B tps (higher is better)" "${R[heap.tpcb]}" "${R[rustydb.tpcb]}" "$(ratio "${R[rustydb.tpcb]}" "${R[heap.tpcb]}")"
printf '%-34s %12.3f %12.3f %10s\n' "COPY 1M rows, s" "${R[heap.copy_s]}" "${R[rustydb.copy_s]}" "$(ratio "${R[heap.copy_s]}" "${R[rustydb.copy_s]}")"
printf '%-34s %12.3f %12.3f %10s\n' "full-scan aggregate 1M rows, s" "${R[heap.scan_s]}" "${R[rustydb.scan_s]}" "$(ratio "${R[heap.scan_s]}" "${R[rustydb.scan_s]}")"
printf '%-34s %12.3f %12.3f %10s\n' "100k index point lookups, s" "${R[heap.lookup_s]}" "${R[rustydb.lookup_s]}" "$(ratio "${R[heap.lookup_s]}" "${R[rustydb.lookup_s]}")"
printf '%-34s %12.1f %12.1f %10s\n' "pgbench_accounts size, MB" "${R[heap.accounts_mb]}" "${R[rustydb.accounts_mb]}" "$(ratio "${R[rustydb.accounts_mb]}" "${R[heap.accounts_mb]}")"
printf '%-34s %12.1f %12.1f %10s\n' "COPY table size, MB" "${R[heap.c_mb]}" "${R[rustydb.c_mb]}" "$(ratio "${R[rustydb.c_mb]}" "${R[heap.c_mb]}")"
echo "(ratios: speed as rustydb/heap throughput, i.e. heap time / rustydb time; size as rustydb/heap)"
