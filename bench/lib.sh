# Shared set-up and statistics of the bench/ scripts. Source it from a
# script in bench/ after `set -euo pipefail`:
#
#   . "$(dirname "$0")/lib.sh"
#   bench_setup            build, private install, cluster helpers, cleanup
#   bench_stats A B ...    "median mean ci95_halfwidth n" of numbers
#   bench_reaped_cpu NODE  CPU seconds of NODE's exited server processes
#   bench_qd, bench_timed  SQL in a database of a node; its wall-clock time
#   bench_copy_data, bench_copy_timed, BENCH_SCAN_SQL, BENCH_LOOKUP_SQL
#                          the AM workloads on table c
#
# Throughput on the 2-core development machine varies by 10-25% between
# separate runs of the same thing, far more than most targets' margins, so
# the scripts compare modes in alternating pairs (or inside one continuous
# run) and report the distribution of the per-pair ratios, not one ratio
# of two single runs.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bench_setup() {
	cd "$BENCH_ROOT"
	# scratch space of the run (removed at exit): BENCH_WORK
	BENCH_WORK=$(mktemp -d /tmp/rustydb-bench.XXXXXX)
	chmod 755 "$BENCH_WORK"
	if [ -z "${RDB_BINDIR:-}" ]; then
		make -s -j2 >/dev/null
		. test/lib/install.sh
		RDB_BINDIR=$(rdb_temp_install "$BENCH_WORK/install" "$BENCH_ROOT")
		export RDB_BINDIR
	fi
	export RDB_WORK=${RDB_WORK:-$BENCH_WORK/nodes}
	mkdir -p "$RDB_WORK"
	. test/lib/cluster.sh
	trap 'rdb_cleanup; rm -rf "$BENCH_WORK"' EXIT
}

# bench_stats X...: median, mean, 95% confidence half-width of the mean
# (normal approximation), count
bench_stats() {
	python3 - "$@" <<'PY'
import sys, statistics as st
x = [float(v) for v in sys.argv[1:]]
hw = 1.96 * st.stdev(x) / len(x) ** 0.5 if len(x) > 1 else float('nan')
print(f"{st.median(x):.3f} {st.mean(x):.3f} {hw:.3f} {len(x)}")
PY
}

# bench_reaped_cpu NODE: CPU seconds (user + system) of every server process
# of NODE that has exited so far (the postmaster's reaped children, e.g.
# the backends of a finished pgbench run). CPU per transaction is far less
# sensitive than throughput to other load on the machine.
bench_reaped_cpu() {
	# wait until the client backends of a finished run have exited
	for _ in $(seq 1 100); do
		[ "$(rdb_psql "$1" "SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")" = 0 ] && break
		sleep 0.05
	done
	sleep 0.1
	awk -v hz="$(getconf CLK_TCK)" '{print ($16 + $17) / hz}' "/proc/$(rdb_node_pid "$1")/stat"
}

# bench_qd NODE DB SQL: run SQL in database DB of NODE (unaligned, tuples only)
bench_qd() {
	"$RDB_BINDIR/psql" -X -q -At -h "$(rdb_sock "$1")" -p "$(rdb_port "$1")" -U postgres -d "$2" \
		-v ON_ERROR_STOP=1 -c "$3"
}

# bench_timed NODE DB SQL: wall-clock seconds of SQL
bench_timed() {
	local t0 t1
	t0=$(date +%s.%N)
	bench_qd "$1" "$2" "$3" >/dev/null
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

# The table access method's read workloads on table c (id int, a int, b
# text, c numeric) of 1M rows with an index on id: a full-scan aggregate and
# 100k index point lookups (am_bench.sh, tde_bench.sh). bench_copy_data NODE
# writes the 1M rows COPY loads into c to a file of NODE's and prints its path.
BENCH_SCAN_SQL="SELECT count(*), sum(a), max(b) FROM c"
BENCH_LOOKUP_SQL="DO \$\$ DECLARE s bigint := 0; v int; BEGIN
	FOR i IN 1..100000 LOOP
		SELECT a INTO v FROM c WHERE id = 1 + (i * 7919) % 1000000;
		s := s + v;
	END LOOP; END \$\$"
# bench_copy_timed NODE DB FILE: empty table c of DB (TRUNCATE gives it a
# new file), checkpoint, then the wall-clock seconds of COPY c FROM FILE
bench_copy_timed() {
	bench_qd "$1" "$2" "TRUNCATE c"
	rdb_psql "$1" "CHECKPOINT"
	bench_timed "$1" "$2" "COPY c FROM '$3'"
}

bench_copy_data() {
	local f
	f=$(rdb_dir "$1")/copy.data
	rdb_psql "$1" "COPY (SELECT g, g % 1000, md5(g::text), g / 7.0 FROM generate_series(1, 1000000) g) TO '$f'"
	echo "$f"
}
