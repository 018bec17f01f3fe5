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
# Phase 2 (encrypted rustydb vs plain rustydb vs heap on the table access
# method's workloads) needs the table access method; see docs/tde.md.
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

rdb_node_init bench
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
