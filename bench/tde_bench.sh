#!/usr/bin/env bash
# Transparent data encryption benchmark, one server, one run.
#
# Phase 1, the ceiling: the raw throughput of rustydb's seal and open paths
# (rustydb.tde_cipher_bench: the same functions the table access method
# calls, with a throwaway key) for a 128-byte row payload and an 8 KiB
# payload, for every algorithm this CPU offers. An encrypted table cannot
# add less than this per row.
#
# Phase 2: encrypted rustydb vs plain rustydb vs heap on the table access
# method's four workloads (as bench/am_bench.sh): TPC-B (pgbench scale 10,
# 2 clients), COPY of 1M rows, a full-scan aggregate over 1M rows (as
# planned, i.e. parallel, and once more in one process), 100k index point
# lookups; the encrypted reads go through the shared cache of opened
# payloads (rustydb.tde_cache_size = -1 unless TDE_BENCH_CACHE_SIZE: a quarter of
# shared_buffers), which the warm-up scan fills; then the parallel scan
# again with that cache emptied before each run ("cache emptied": every
# payload opened again; shared buffers warm in every mode). The cache's
# figures (entries, MB used, hits, misses, evictions) are printed. Since
# the cache admits a page on its second miss, the emptied cache's scan is a
# first read (it keeps nothing) and "filling the cache" times the scan after
# it, the one that makes the entries. Each mode has a database of its own on the server
# (heap: default_table_access_method = heap; plain: rustydb; enc: rustydb
# with rustydb.encrypt_new_tables = on), and every workload runs in rounds
# of the three modes, the order rotated from round to round, so drift and
# load spikes hit all modes alike. Printed per workload: the median of each
# mode, and the median, mean and 95% half-width of the per-round ratios
# encrypted/plain (throughput: higher is better) and encrypted/heap.
#
# Phase 3, the ceilings of the workloads that read or write every row
# (COPY, the one-process scan), computed from this run's plain times, the
# table's payload bytes and the cipher figures measured at the table's own
# payload size: what encrypted/plain would be if encryption cost nothing
# but the cipher calls, (a) with one AEAD per row (rows sealed on their
# own), (b) with one AEAD per group of rustydb.seal_group_rows rows (what
# COPY writes) and (c) with one AEAD per page, the least any authenticated
# format must spend (every payload byte through the cipher once). The additive model
# (plain time + cipher time) was checked against a scan that sealed each
# page's tuple area (docs/benchmarks.md).
#
#   TDE_BENCH_GROUP_ROWS  rustydb.seal_group_rows of the encrypted database
#                      (default: the setting's default); COPY, pgbench -i
#                      included, seals that many rows of a page together
#   TDE_BENCH_CACHE_SIZE  rustydb.tde_cache_size (default -1, the setting's
#                      default: a quarter of shared_buffers, 128MB;
#                      TDE_BENCH_CACHE_SIZE=0 turns the cache off)
#   TDE_BENCH_STATISTICS  rustydb.tde_statistics (default: the setting's,
#                      value_free); none gives the encrypted table no column
#                      statistics, and its lookups a bitmap heap scan
#   TDE_BENCH_ROUNDS   rounds per workload (default 5)
#   TDE_BENCH_SECONDS  seconds of each TPC-B run (default 10)
#   ITER_SMALL=N ITER_LARGE=N   cipher iterations (default 200000 / 20000)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROUNDS=${TDE_BENCH_ROUNDS:-5}
SECS=${TDE_BENCH_SECONDS:-10}
ITER_SMALL=${ITER_SMALL:-200000}
ITER_LARGE=${ITER_LARGE:-20000}
GROUP_ROWS=${TDE_BENCH_GROUP_ROWS:-}
bench_setup

KEYS=$BENCH_WORK/keys
mkdir -p "$KEYS"
chown "$RDB_SERVER_USER" "$KEYS"
rdb_as_server bash scripts/rustydb-keyring create "$KEYS/ring" >/dev/null
rdb_node_init bench
rdb_node_conf bench "rustydb.keyring_file = '$KEYS/ring'"
rdb_node_conf bench "shared_buffers = '512MB'"
rdb_node_conf bench "max_wal_size = '4GB'"
rdb_node_conf bench "autovacuum = off"
rdb_node_conf bench "rustydb.plaintext_index_action = log"
rdb_node_conf bench "rustydb.tde_cache_size = '${TDE_BENCH_CACHE_SIZE:--1}'"
[ -n "${TDE_BENCH_STATISTICS:-}" ] && rdb_node_conf bench "rustydb.tde_statistics = '$TDE_BENCH_STATISTICS'"
rdb_node_start bench
rdb_psql bench "CREATE EXTENSION rustydb"

echo "# rustydb TDE cipher ceiling on $(nproc) CPU(s): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "# libsodium $(rdb_psql bench "SELECT libsodium_version FROM rustydb.build_info()"), AES-256-GCM available: $(grep -qw aes /proc/cpuinfo && echo yes || echo no)"
printf '%-20s %-6s %8s %12s %10s\n' algorithm op bytes ns/op MB/s
declare -A CIPH # algorithm.operation.bytes -> "ns_per_op mb_per_s"
cipher_run() { # bytes iterations: print and remember the figures
	local alg op bytes ns mbs
	while read -r alg op bytes ns mbs; do
		printf '%-20s %-6s %8s %12s %10s\n' "$alg" "$op" "$bytes" "$ns" "$mbs"
		CIPH[$alg.$op.$bytes]="$ns $mbs"
	done < <(rdb_psql bench "SELECT algorithm, operation, bytes, round(ns_per_op::numeric, 1),
		round(mb_per_s::numeric, 0) FROM rustydb.tde_cipher_bench($1, $2)" -F ' ')
}
cipher_run 128 "$ITER_SMALL"
cipher_run 8192 "$ITER_LARGE"
echo "# seal/open include the 4-byte header, the session nonce and the caller's"
echo "# associated data path; a sealed payload is 36 bytes longer than its plaintext."

# ---- phase 2
PGB=("$RDB_BINDIR/pgbench" -h "$(rdb_sock bench)" -p "$(rdb_port bench)" -U postgres)
q() { rdb_psql bench "$@"; }
qd() { bench_qd bench "$@"; }
timed() { bench_timed bench "$@"; }
MODES=(heap plain enc)
COPYFILE=$(bench_copy_data bench)
for m in "${MODES[@]}"; do
	q "CREATE DATABASE b_$m"
	qd "b_$m" "CREATE EXTENSION IF NOT EXISTS rustydb"
	am=rustydb
	[ "$m" = heap ] && am=heap
	qd "b_$m" "ALTER DATABASE b_$m SET default_table_access_method = $am"
	qd "b_$m" "ALTER DATABASE b_$m SET rustydb.encrypt_new_tables = $([ "$m" = enc ] && echo on || echo off)"
	if [ "$m" = enc ] && [ -n "$GROUP_ROWS" ]; then
		qd "b_$m" "ALTER DATABASE b_$m SET rustydb.seal_group_rows = $GROUP_ROWS"
	fi
	"${PGB[@]}" -i -q -s 10 "b_$m" >/dev/null 2>&1
	qd "b_$m" "CREATE TABLE c (id int, a int, b text, c numeric)"
done
ENCRYPTED=$(qd b_enc "SELECT count(*) FROM rustydb.encryption_status WHERE encrypted AND (\"table\"::text LIKE 'pgbench%' OR \"table\"::text = 'c')")
PLAIN_ENC=$(qd b_plain "SELECT count(*) FROM rustydb.encryption_status WHERE encrypted")
q "CHECKPOINT"

declare -A V   # mode.workload -> values
declare -A RAT # workload.enc_plain / workload.enc_heap -> per-round ratios
order() { # round -> the three modes, rotated
	local r=$(($1 % 3))
	echo "${MODES[$r]} ${MODES[$(((r + 1) % 3))]} ${MODES[$(((r + 2) % 3))]}"
}
record() { # workload kind(throughput|time) values of heap plain enc
	local w=$1 kind=$2
	V[heap.$w]+=" $3"
	V[plain.$w]+=" $4"
	V[enc.$w]+=" $5"
	if [ "$kind" = throughput ]; then
		RAT[$w.enc_plain]+=" $(echo "$5 / $4" | bc -l)"
		RAT[$w.enc_heap]+=" $(echo "$5 / $3" | bc -l)"
	else
		RAT[$w.enc_plain]+=" $(echo "$4 / $5" | bc -l)"
		RAT[$w.enc_heap]+=" $(echo "$3 / $5" | bc -l)"
	fi
}

echo
GROUP_ROWS=$(qd b_enc "SHOW rustydb.seal_group_rows")
echo "# phase 2: $ROUNDS rounds of heap/plain/encrypted per workload, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# encrypted: rustydb.seal_group_rows = $GROUP_ROWS (COPY, pgbench -i included)"
for r in $(seq 1 "$ROUNDS"); do
	declare -A T=()
	for m in $(order "$r"); do
		T[$m]=$("${PGB[@]}" -n -c 2 -j 2 -T "$SECS" "b_$m" 2>/dev/null | sed -nE 's/^tps = ([0-9.]+) .*/\1/p' | head -n1)
	done
	record tpcb throughput "${T[heap]}" "${T[plain]}" "${T[enc]}"
	printf '#   TPC-B round %d: heap %.1f, plain %.1f, encrypted %.1f tps\n' "$r" "${T[heap]}" "${T[plain]}" "${T[enc]}"
done
for r in $(seq 1 "$ROUNDS"); do
	declare -A T=()
	for m in $(order "$r"); do
		T[$m]=$(bench_copy_timed bench "b_$m" "$COPYFILE")
	done
	record copy time "${T[heap]}" "${T[plain]}" "${T[enc]}"
done
for m in "${MODES[@]}"; do
	V[$m.c_mb]=$(qd "b_$m" "SELECT round(pg_relation_size('c') / 1048576.0, 1)")
	qd "b_$m" "VACUUM ANALYZE c"
	qd "b_$m" "CREATE INDEX c_id ON c (id)"
	qd "b_$m" "SELECT count(*), sum(a), max(b) FROM c" >/dev/null # warm the cache
	# the plan of a lookup, as the lookups get it (the encrypted table's
	# statistics are rustydb.tde_statistics')
	V[$m.plan]=$(qd "b_$m" "EXPLAIN (COSTS OFF) SELECT a FROM c WHERE id = 42" | head -n 1 |
		sed 's/ using .*//; s/ on .*//')
done
for w in scan scan1 lookup ilookup cold fill; do
	sql=$BENCH_SCAN_SQL
	[ "$w" = scan1 ] && sql="SET max_parallel_workers_per_gather = 0; $BENCH_SCAN_SQL"
	[ "$w" = lookup ] && sql=$BENCH_LOOKUP_SQL
	# the same lookups through index scans in every mode: without column
	# statistics (rustydb.tde_statistics = none) the encrypted table's plan
	# is a bitmap heap scan, the others' an index scan (with value_free,
	# the default, an index scan as well)
	[ "$w" = ilookup ] && sql="SET enable_bitmapscan = off; $BENCH_LOOKUP_SQL"
	for r in $(seq 1 "$ROUNDS"); do
		declare -A T=()
		for m in $(order "$r"); do
			# cold: the encrypted scan with the cache of opened payloads emptied
			# first (shared buffers stay warm, as for the other modes)
			[ "$w" = cold ] && q "SELECT rustydb.tde_cache_reset()" >/dev/null
			# fill: the read that fills the emptied cache (a page's first
			# miss is only remembered, its second one makes the entry)
			if [ "$w" = fill ]; then
				q "SELECT rustydb.tde_cache_reset()" >/dev/null
				qd "b_$m" "$sql" >/dev/null
			fi
			T[$m]=$(timed "b_$m" "$sql")
		done
		record "$w" time "${T[heap]}" "${T[plain]}" "${T[enc]}"
	done
	[ "$w" = scan ] && CACHE_AFTER_SCAN=$(q "SELECT used_entries || ' entries, ' ||
		round(used_bytes / 1048576.0, 1) || ' MB used of ' || round(size_bytes / 1048576.0) ||
		' MB; hits ' || hits || ', misses ' || misses || ', evictions ' || evictions
		FROM rustydb.tde_cache")
done
CACHE_END=$(q "SELECT used_entries || ' entries, ' || round(used_bytes / 1048576.0, 1) ||
	' MB used of ' || round(size_bytes / 1048576.0) || ' MB (rustydb.tde_cache_size = ' ||
	current_setting('rustydb.tde_cache_size') || '); hits ' || hits || ', misses ' || misses ||
	', inserts ' || inserts || ', evictions ' || evictions || ', invalidations ' || invalidations
	FROM rustydb.tde_cache")

med() { bench_stats "$@" | cut -d' ' -f1; }
echo
echo "# encrypted tables in the encrypted database: $ENCRYPTED of 5 (pgbench's 4 and c); in the plain one: $PLAIN_ENC"
printf '%-32s %9s %9s %9s %9s %8s %8s %9s %7s\n' measure heap plain encrypted enc/plain mean ci95 enc/heap target
row() { # label workload target
	read -r m mean hw _ <<<"$(bench_stats ${RAT[$2.enc_plain]})"
	printf '%-32s %9s %9s %9s %9s %8s %8s %9s %7s\n' "$1" "$(med ${V[heap.$2]})" "$(med ${V[plain.$2]})" \
		"$(med ${V[enc.$2]})" "$m" "$mean" "±$hw" "$(med ${RAT[$2.enc_heap]})" "$3"
}
row "TPC-B tps" tpcb ">=0.9"
row "COPY 1M rows, s" copy "(=)"
row "full-scan aggregate 1M rows, s" scan ">=0.85"
row "  the same in one process, s" scan1 "(>=0.85)"
row "  the same, cache emptied, s" cold ""
row "  the same, filling the cache, s" fill ""
row "100k index point lookups, s" lookup ">=0.95"
row "  the same, index scans, s" ilookup "(>=0.95)"
printf '%-32s %9s %9s %9s\n' "COPY table size, MB" "${V[heap.c_mb]}" "${V[plain.c_mb]}" "${V[enc.c_mb]}"
echo "# a lookup's plan: heap ${V[heap.plan]}, plain ${V[plain.plan]}, encrypted ${V[enc.plan]} (rustydb.tde_statistics = $(q "SHOW rustydb.tde_statistics"))"
echo "# cache of opened payloads after the warm scans: $CACHE_AFTER_SCAN"
echo "# at the end: $CACHE_END"
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# heap, plain, encrypted: medians (tps or seconds); enc/plain: median of the per-round"
echo "# throughput ratios encrypted/plain (plain time / encrypted time), their mean and 95%"
echo "# half-width; enc/heap: median of the per-round ratios encrypted/heap"

# ---- phase 3
# the table's payload (tuple length less the 24-byte header) in the plain database
read -r NROWS PAYLOAD_B AVG_PAYLOAD <<<"$(qd b_plain "SELECT count(*), sum(pg_column_size(c.*) - 24),
	round(avg(pg_column_size(c.*) - 24)) FROM c" | tr '|' ' ')"
ALG=$(qd b_enc "SELECT cipher FROM rustydb.encryption_status WHERE \"table\"::text = 'c'")
echo
echo "# phase 3: ceilings; table c: $NROWS rows, payload $PAYLOAD_B bytes (mean $AVG_PAYLOAD), $ALG"
cipher_run "$AVG_PAYLOAD" "$ITER_SMALL"
GROUP_B=$((AVG_PAYLOAD * GROUP_ROWS))
[ "$GROUP_ROWS" -gt 1 ] && cipher_run "$GROUP_B" "$ITER_LARGE"
ceiling() { # plain_seconds per_row_ns per_group_ns page_mb_per_s -> "per-row per-group page"
	python3 - "$1" "$2" "$3" "$4" "$NROWS" "$PAYLOAD_B" "$GROUP_ROWS" <<'PY'
import sys
t, ns, gns, mbs, n, b, g = (float(v) for v in sys.argv[1:])
print(f"{t / (t + n * ns * 1e-9):.3f} {t / (t + n / g * gns * 1e-9):.3f} {t / (t + b / (mbs * 1e6)):.3f}")
PY
}
printf '%-32s %9s %9s %9s %9s %9s %7s\n' measure plain enc/plain per-row "group/$GROUP_ROWS" page target
for spec in "COPY 1M rows|copy|seal|>=0.75" "full-scan aggregate, one process|scan1|open|>=0.7"; do
	IFS='|' read -r label w op target <<<"$spec"
	read -r small_ns _ <<<"${CIPH[$ALG.$op.$AVG_PAYLOAD]}"
	read -r group_ns _ <<<"${CIPH[$ALG.$op.$GROUP_B]}"
	read -r _ page_mbs <<<"${CIPH[$ALG.$op.8192]}"
	tp=$(med ${V[plain.$w]})
	read -r c_row c_group c_page <<<"$(ceiling "$tp" "$small_ns" "$group_ns" "$page_mbs")"
	printf '%-32s %9s %9s %9s %9s %9s %7s\n' "$label" "$tp" "$(med ${RAT[$w.enc_plain]})" "$c_row" \
		"$c_group" "$c_page" "$target"
done
echo "# per-row: plain/(plain + rows x one seal (COPY) or open (scan) of a mean payload);"
echo "# group/N: plain/(plain + rows/N x one seal or open of N mean payloads), the sealed"
echo "# groups COPY writes; page: plain/(plain + payload bytes at the 8 KiB seal or open"
echo "# rate). Rows sealed on their own are at or below the first (they also store 36 more"
echo "# bytes a row); no authenticated format can pass the last."
