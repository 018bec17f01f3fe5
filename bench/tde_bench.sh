#!/usr/bin/env bash
# Transparent data encryption benchmark, phase 1: the raw throughput of
# rustydb's seal and open paths (rustydb.tde_cipher_bench: the same
# functions the table access method calls, with a throwaway key) for a
# 128-byte row payload and an 8 KiB payload, for every algorithm this CPU
# offers. This is the ceiling for encrypted tables: the per-row cost an
# encrypted table adds cannot be below it.
#
#   bash bench/tde_bench.sh            build, temporary install, one server
#   ITER_SMALL=N ITER_LARGE=N          iterations (default 200000 / 20000)
#
# Phase 2: encrypted rustydb vs plain rustydb vs heap, same server, same
# run, on the table access method's four workloads (bench/am_bench.sh):
# TPC-B (pgbench scale 10, 2 clients, RDB_BENCH_SECONDS, default 20),
# COPY of 1M rows, a full-scan aggregate over 1M rows (best of 3), 100k
# index point lookups. Ratios encrypted/plain (throughput: higher is better).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ITER_SMALL=${ITER_SMALL:-200000}
ITER_LARGE=${ITER_LARGE:-20000}

make -s -j2 >/dev/null
WORK=$(mktemp -d /tmp/rustydb-bench.XXXXXX)
chmod 755 "$WORK"
. test/lib/install.sh
RDB_BINDIR=$(rdb_temp_install "$WORK/install" "$ROOT")
export RDB_BINDIR
RDB_WORK=$WORK/nodes
mkdir -p "$RDB_WORK"
. test/lib/cluster.sh
cleanup_all() {
	rdb_cleanup
	rm -rf "$WORK"
}
trap cleanup_all EXIT

KEYS=$WORK/keys
mkdir -p "$KEYS"
chown "$RDB_SERVER_USER" "$KEYS"
rdb_as_server bash scripts/rustydb-keyring create "$KEYS/ring" >/dev/null
rdb_node_init bench
rdb_node_conf bench "rustydb.keyring_file = '$KEYS/ring'"
rdb_node_conf bench "shared_buffers = '256MB'"
rdb_node_conf bench "max_wal_size = '2GB'"
rdb_node_conf bench "autovacuum = off"
rdb_node_start bench
rdb_psql bench "CREATE EXTENSION rustydb"

echo "# rustydb TDE cipher ceiling on $(nproc) CPU(s): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "# libsodium $(rdb_psql bench "SELECT libsodium_version FROM rustydb.build_info()"), AES-256-GCM available: $(grep -qw aes /proc/cpuinfo && echo yes || echo no)"
printf '%-20s %-6s %8s %12s %10s\n' algorithm op bytes ns/op MB/s
for spec in "128 $ITER_SMALL" "8192 $ITER_LARGE"; do
	set -- $spec
	rdb_psql bench "SELECT algorithm, operation, bytes, round(ns_per_op::numeric, 1), round(mb_per_s::numeric, 0)
		FROM rustydb.tde_cipher_bench($1, $2)" -F ' ' |
		while read -r alg op bytes ns mbs; do
			printf '%-20s %-6s %8s %12s %10s\n' "$alg" "$op" "$bytes" "$ns" "$mbs"
		done
done
echo "# seal/open include the 4-byte header, the session nonce and the caller's"
echo "# associated data path; a sealed payload is 36 bytes longer than its plaintext."

# ---- phase 2: the four workloads, heap / rustydb / rustydb encrypted
SECONDS_TPCB=${RDB_BENCH_SECONDS:-20}
PGB=("$RDB_BINDIR/pgbench" -h "$(rdb_sock bench)" -p "$(rdb_port bench)" -U postgres)
now() { date +%s.%N; }
q() { rdb_psql bench "$1"; }
COPYFILE=$(rdb_dir bench)/copy.data
q "COPY (SELECT g, g % 1000, md5(g::text), g / 7.0 FROM generate_series(1, 1000000) g) TO '$COPYFILE'"
declare -A R
for mode in heap plain enc; do
	case $mode in
	heap) export PGOPTIONS="-c default_table_access_method=heap" ;;
	plain) export PGOPTIONS="-c default_table_access_method=rustydb -c rustydb.encrypt_new_tables=off" ;;
	enc) export PGOPTIONS="-c default_table_access_method=rustydb -c rustydb.encrypt_new_tables=on -c rustydb.plaintext_index_action=warning -c client_min_messages=error" ;;
	esac
	q "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history, c" >/dev/null
	"${PGB[@]}" -i -q -s 10 postgres >/dev/null 2>&1
	R[$mode.encrypted]=$(q "SELECT count(*) FROM rustydb.encryption_status WHERE encrypted AND \"table\"::text LIKE 'pgbench%'")
	q "CHECKPOINT"
	R[$mode.tpcb]=$("${PGB[@]}" -n -c 2 -j 2 -T "$SECONDS_TPCB" postgres 2>/dev/null |
		sed -nE 's/^tps = ([0-9.]+) .*/\1/p' | head -n1)
	q "CREATE TABLE c (id int, a int, b text, c numeric)"
	q "CHECKPOINT"
	t0=$(now)
	q "COPY c FROM '$COPYFILE'"
	t1=$(now)
	R[$mode.copy_s]=$(echo "$t1 - $t0" | bc -l)
	q "VACUUM ANALYZE c"
	best=999999
	for _ in 1 2 3; do
		t0=$(now)
		q "SELECT count(*), sum(a), max(b) FROM c" >/dev/null
		t1=$(now)
		t=$(echo "$t1 - $t0" | bc -l)
		best=$(echo "if ($t < $best) $t else $best" | bc -l)
	done
	R[$mode.scan_s]=$best
	q "CREATE INDEX c_id ON c (id)" 2>/dev/null
	q "SELECT count(*) FROM c WHERE id < 100" >/dev/null
	t0=$(now)
	q "DO \$\$ DECLARE s bigint := 0; v int; BEGIN
		FOR i IN 1..100000 LOOP
			SELECT a INTO v FROM c WHERE id = 1 + (i * 7919) % 1000000;
			s := s + v;
		END LOOP; END \$\$"
	t1=$(now)
	R[$mode.lookup_s]=$(echo "$t1 - $t0" | bc -l)
done
unset PGOPTIONS

ratio() { echo "scale=3; $1 / $2" | bc -l; }
echo
echo "# encrypted tables in the enc run: ${R[enc.encrypted]} of pgbench's 4 (plain run: ${R[plain.encrypted]})"
printf '%-32s %10s %10s %10s %10s %8s\n' measure heap plain encrypted enc/plain target
printf '%-32s %10.1f %10.1f %10.1f %10s %8s\n' "TPC-B tps" "${R[heap.tpcb]}" "${R[plain.tpcb]}" "${R[enc.tpcb]}" "$(ratio "${R[enc.tpcb]}" "${R[plain.tpcb]}")" 0.85
printf '%-32s %10.3f %10.3f %10.3f %10s %8s\n' "COPY 1M rows, s" "${R[heap.copy_s]}" "${R[plain.copy_s]}" "${R[enc.copy_s]}" "$(ratio "${R[plain.copy_s]}" "${R[enc.copy_s]}")" 0.75
printf '%-32s %10.3f %10.3f %10.3f %10s %8s\n' "full-scan aggregate 1M rows, s" "${R[heap.scan_s]}" "${R[plain.scan_s]}" "${R[enc.scan_s]}" "$(ratio "${R[plain.scan_s]}" "${R[enc.scan_s]}")" 0.7
printf '%-32s %10.3f %10.3f %10.3f %10s %8s\n' "100k index point lookups, s" "${R[heap.lookup_s]}" "${R[plain.lookup_s]}" "${R[enc.lookup_s]}" "$(ratio "${R[plain.lookup_s]}" "${R[enc.lookup_s]}")" 0.85
echo "(enc/plain: throughput ratio, i.e. plain time / encrypted time; higher is better)"
