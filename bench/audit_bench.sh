#!/usr/bin/env bash
# Audit overhead: pgbench TPC-B on one server (rustydb and pgaudit both
# preloaded), in interleaved rounds of:
#   off            no rustydb audit policy, pgaudit.log = none
#   rustydb_dml    rustydb policy on pgbench's tables: select, insert, update, delete
#   rustydb_write  rustydb policy on pgbench's tables: insert, update, delete
#   pgaudit_write  pgaudit.log = 'write' (Debian's postgresql-15-pgaudit)
# Prints the median TPS of each mode and the ratios (target: rustydb_dml /
# off >= 0.9). Not a timed test: run it by hand, record figures in
# docs/benchmarks.md.
#
#   BENCH_SECONDS  seconds per pgbench run (default 20)
#   BENCH_ROUNDS   rounds of the four modes (default 3)
#   BENCH_CLIENTS  pgbench clients (default 4)
#   BENCH_SCALE    pgbench scale (default 5)
#   BENCH_SYNC     synchronous_commit (default off: CPU-bound, the worst case
#                  for auditing; "on" is PostgreSQL's default, durable commits)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SECS=${BENCH_SECONDS:-20}
ROUNDS=${BENCH_ROUNDS:-3}
CLIENTS=${BENCH_CLIENTS:-4}
SCALE=${BENCH_SCALE:-5}
SYNC=${BENCH_SYNC:-off}

if [ ! -e /usr/lib/postgresql/15/lib/pgaudit.so ]; then
	if [ "$(id -u)" -eq 0 ]; then
		apt-get install -y postgresql-15-pgaudit >/dev/null
	else
		echo "install postgresql-15-pgaudit first" >&2
		exit 1
	fi
fi

make -s -j2 >/dev/null
WORK=$(mktemp -d /tmp/rustydb-audit-bench.XXXXXX)
chmod 755 "$WORK"
. test/lib/install.sh
RDB_BINDIR=$(rdb_temp_install "$WORK/install" "$ROOT")
export RDB_BINDIR
RDB_WORK=$WORK/nodes
mkdir -p "$RDB_WORK"
export RDB_WORK
. test/lib/cluster.sh
trap 'rdb_cleanup; rm -rf "$WORK"' EXIT

rdb_node_init bench
rdb_node_conf bench "shared_preload_libraries = 'rustydb,pgaudit'"
rdb_node_conf bench "pgaudit.log = 'none'"
rdb_node_conf bench "shared_buffers = 256MB"
rdb_node_conf bench "synchronous_commit = $SYNC"
rdb_node_start bench
q() { rdb_psql bench "$1"; }
q "CREATE EXTENSION rustydb; CREATE EXTENSION pgaudit"
"$RDB_BINDIR/pgbench" -i -s "$SCALE" -q -h "$(rdb_sock bench)" -p "$(rdb_port bench)" -U postgres postgres >/dev/null 2>&1
T="{pgbench_accounts,pgbench_branches,pgbench_tellers,pgbench_history}"
q "SELECT rustydb.create_audit_policy('bench_dml', '{select,insert,update,delete}', '$T')" >/dev/null
q "SELECT rustydb.create_audit_policy('bench_write', '{insert,update,delete}', '$T')" >/dev/null
q "SELECT rustydb.disable_audit_policy('bench_dml'); SELECT rustydb.disable_audit_policy('bench_write')" >/dev/null

mode() {
	q "SELECT rustydb.disable_audit_policy('bench_dml'); SELECT rustydb.disable_audit_policy('bench_write')" >/dev/null
	q "ALTER SYSTEM SET pgaudit.log = 'none'" >/dev/null
	case $1 in
	rustydb_dml) q "SELECT rustydb.enable_audit_policy('bench_dml')" >/dev/null ;;
	rustydb_write) q "SELECT rustydb.enable_audit_policy('bench_write')" >/dev/null ;;
	pgaudit_write) q "ALTER SYSTEM SET pgaudit.log = 'write'" >/dev/null ;;
	esac
	q "SELECT pg_reload_conf()" >/dev/null
	sleep 1
}

# Server CPU (user + system ticks) of every backend that exited (the
# postmaster's reaped children) plus the long-lived audit worker: CPU per
# transaction is far less sensitive than TPS to other load on the machine.
server_ticks() {
	local pm wpid t
	pm=$(rdb_node_pid bench)
	t=$(awk '{print $16 + $17}' "/proc/$pm/stat")
	wpid=$(q "SELECT worker_pid FROM rustydb.audit_info")
	if [ -n "$wpid" ] && [ -r "/proc/$wpid/stat" ]; then
		t=$((t + $(awk '{print $14 + $15}' "/proc/$wpid/stat")))
	fi
	echo "$t"
}
HZ=$(getconf CLK_TCK)

declare -A RESULTS CPU
MODES="off rustydb_dml rustydb_write pgaudit_write"
for r in $(seq 1 "$ROUNDS"); do
	for m in $MODES; do
		mode "$m"
		t0=$(server_ticks)
		out=$("$RDB_BINDIR/pgbench" -n -T "$SECS" -c "$CLIENTS" -j 2 -h "$(rdb_sock bench)" \
			-p "$(rdb_port bench)" -U postgres postgres 2>/dev/null)
		q "SELECT rustydb.audit_flush(60000)" >/dev/null
		t1=$(server_ticks)
		tps=$(sed -nE 's/^tps = ([0-9.]+).*/\1/p' <<<"$out" | head -n1)
		txns=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' <<<"$out")
		us=$(awk -v d=$((t1 - t0)) -v n="$txns" -v hz="$HZ" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')
		echo "round $r $m: $tps tps, $us us server CPU per transaction"
		RESULTS[$m]="${RESULTS[$m]:-} $tps"
		CPU[$m]="${CPU[$m]:-} $us"
	done
done

median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "pgbench TPC-B, scale $SCALE, $CLIENTS clients, synchronous_commit = $SYNC, ${SECS}s x $ROUNDS rounds (medians)"
printf '%-14s %10s %14s\n' mode tps "cpu_us/txn"
for m in $MODES; do
	printf '%-14s %10.1f %14.1f\n' "$m" "$(median "${RESULTS[$m]}")" "$(median "${CPU[$m]}")"
done
off=$(median "${RESULTS[off]}")
dml=$(median "${RESULTS[rustydb_dml]}")
wr=$(median "${RESULTS[rustydb_write]}")
pga=$(median "${RESULTS[pgaudit_write]}")
echo
awk -v a="$dml" -v b="$off" 'BEGIN {printf "ratio rustydb_dml / off        = %.3f (target >= 0.9)\n", a / b}'
awk -v a="$wr" -v b="$off" 'BEGIN {printf "ratio rustydb_write / off      = %.3f\n", a / b}'
awk -v a="$pga" -v b="$off" 'BEGIN {printf "ratio pgaudit_write / off      = %.3f\n", a / b}'
awk -v a="$wr" -v b="$pga" 'BEGIN {printf "ratio rustydb_write / pgaudit_write = %.3f\n", a / b}'
c_off=$(median "${CPU[off]}")
for m in rustydb_dml rustydb_write pgaudit_write; do
	awk -v a="$c_off" -v b="$(median "${CPU[$m]}")" -v m="$m" \
		'BEGIN {printf "cpu-based ratio %-14s = %.3f (off cpu/txn / %s cpu/txn)\n", m, a / b, m}'
done
q "SELECT 'audit_info: enqueued=' || enqueued || ' written=' || written || ' dropped=' || dropped || ' waits=' || waits || ' high_water=' || high_water FROM rustydb.audit_info"
