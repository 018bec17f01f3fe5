#!/usr/bin/env bash
# VPD overhead benchmark (issue acceptance 3).
#
# A 1M-row table queried through a VPD policy whose predicate can use an
# index, against an identical table without row security queried with the
# same predicate written by hand, in the same run, as the same unprivileged
# role. For each policy type (static, context_sensitive, dynamic) and each
# protocol (prepared = extended protocol with cached plans, simple = parse and
# plan every statement) it prints throughput of both and the ratio
# policy/hand-written. The baseline and the policy run are executed at the
# same time (one client each), REPS times, so that both see the same load on
# a shared machine; the ratio is the mean of the per-pair ratios. Also prints the per-statement cost of a dynamic
# policy (latency difference) and of evaluating its function alone.
#
#   bash bench/vpd_bench.sh            # DURATION=10 seconds per run, ROWS=1000000
#   DURATION=5 ROWS=200000 bash bench/vpd_bench.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DURATION=${DURATION:-10}
ROWS=${ROWS:-1000000}
REPS=${REPS:-3}

make -s -j2 >/dev/null
WORK=$(mktemp -d /tmp/rustydb-vpdbench.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=../test/lib/install.sh
. test/lib/install.sh
RDB_BINDIR=$(rdb_temp_install "$WORK/install" "$ROOT")
export RDB_BINDIR
RDB_WORK=$WORK/nodes
mkdir -p "$RDB_WORK"
export RDB_WORK
# shellcheck source=../test/lib/cluster.sh
. test/lib/cluster.sh
cleanup() {
	rdb_cleanup
	rm -rf "$WORK"
}
trap cleanup EXIT

rdb_node_init bench
rdb_node_conf bench "shared_buffers = 256MB
max_connections = 20
synchronous_commit = off"
rdb_node_start bench
PSQL() { rdb_psql bench "$1"; }

echo "# loading $ROWS rows into two identical tables"
PSQL "CREATE EXTENSION rustydb" >/dev/null
rdb_psql bench "
CREATE ROLE bench_user LOGIN;
CREATE SCHEMA b;
GRANT USAGE ON SCHEMA b TO bench_user;
CREATE TABLE b.t_policy (id int NOT NULL, dept int NOT NULL, v int NOT NULL, pad text);
INSERT INTO b.t_policy SELECT g, g % 100, g % 1000, repeat('x', 40) FROM generate_series(1, $ROWS) g;
CREATE INDEX ON b.t_policy (dept, id);
CREATE TABLE b.t_plain AS SELECT * FROM b.t_policy;
CREATE INDEX ON b.t_plain (dept, id);
GRANT SELECT ON b.t_policy, b.t_plain TO bench_user;
CREATE FUNCTION b.set_dept(d int) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
AS \$\$ BEGIN PERFORM rustydb.set_context('bench', 'dept', d::text); END \$\$;
GRANT EXECUTE ON FUNCTION b.set_dept(int) TO bench_user;
SELECT rustydb.create_context('bench', 'b.set_dept');
CREATE FUNCTION b.static_pred(s text, o text) RETURNS text LANGUAGE sql AS \$\$ SELECT 'dept = 42' \$\$;
CREATE FUNCTION b.ctx_pred(s text, o text) RETURNS text LANGUAGE plpgsql
AS \$\$ BEGIN RETURN 'dept = ' || coalesce(rustydb.sys_context('bench', 'dept')::int, -1); END \$\$;
CREATE FUNCTION b.dyn_pred(s text, o text) RETURNS text LANGUAGE plpgsql
AS \$\$ BEGIN RETURN 'dept = ' || coalesce(rustydb.sys_context('bench', 'dept')::int, -1); END \$\$;
" >/dev/null

PSQL "VACUUM ANALYZE b.t_policy" >/dev/null
PSQL "VACUUM ANALYZE b.t_plain" >/dev/null

set_policy() {
	rdb_psql bench "SELECT rustydb.drop_policy('b', 't_policy', policy_name) FROM rustydb.policies WHERE object_name = 't_policy';
		SELECT rustydb.add_policy('b', 't_policy', 'p_$1', 'b', '$2', policy_type => '$1');" >/dev/null
}

cat >"$WORK/policy.sql" <<'SQL'
\set k random(1, 990000)
SELECT b.set_dept(42);
SELECT count(*), sum(v) FROM b.t_policy WHERE id BETWEEN :k AND :k + 9999;
SQL
cat >"$WORK/plain.sql" <<'SQL'
\set k random(1, 990000)
SELECT b.set_dept(42);
SELECT count(*), sum(v) FROM b.t_plain WHERE id BETWEEN :k AND :k + 9999 AND dept = 42;
SQL
chmod 644 "$WORK"/*.sql

tps() { # script protocol
	"$RDB_BINDIR/pgbench" -n -c 1 -j 1 -T "$DURATION" -M "$2" -f "$WORK/$1.sql" \
		-h "$(rdb_sock bench)" -p "$(rdb_port bench)" -U bench_user postgres 2>/dev/null |
		sed -nE 's/^tps = ([0-9.]+).*/\1/p'
}
tps_pair() { # protocol: "baseline policy", run at the same time
	tps plain "$1" >"$WORK/b.out" &
	local pid=$!
	tps policy "$1" >"$WORK/p.out"
	wait "$pid"
	echo "$(cat "$WORK/b.out") $(cat "$WORK/p.out")"
}

echo "# plan through the policy (static):"
set_policy static static_pred
rdb_psql bench "SET ROLE bench_user; EXPLAIN (COSTS OFF) SELECT count(*), sum(v) FROM b.t_policy WHERE id BETWEEN 1 AND 10000" | sed 's/^/#   /'

printf '%-18s %-9s %12s %12s %8s\n' policy_type protocol hand_tps policy_tps ratio
declare -A RESULT
for type in static context_sensitive dynamic; do
	case $type in
	static) set_policy static static_pred ;;
	context_sensitive) set_policy context_sensitive ctx_pred ;;
	dynamic) set_policy dynamic dyn_pred ;;
	esac
	for proto in prepared simple; do
		base=0 pol=0 rsum=0
		for _ in $(seq 1 "$REPS"); do
			read -r b p <<<"$(tps_pair "$proto")"
			base=$(echo "$base + $b" | bc -l)
			pol=$(echo "$pol + $p" | bc -l)
			rsum=$(echo "$rsum + $p / $b" | bc -l)
		done
		base=$(echo "$base / $REPS" | bc -l)
		pol=$(echo "$pol / $REPS" | bc -l)
		ratio=$(echo "$rsum / $REPS" | bc -l)
		RESULT[$type/$proto]="$base $pol"
		printf '%-18s %-9s %12.1f %12.1f %8.3f\n' "$type" "$proto" "$base" "$pol" "$ratio"
	done
done

echo "# per-statement cost of the dynamic policy (latency difference per transaction, microseconds):"
for proto in prepared simple; do
	read -r base pol <<<"${RESULT[dynamic/$proto]}"
	printf '#   %-9s %8.1f us\n' "$proto" "$(echo "1000000 / $pol - 1000000 / $base" | bc -l)"
done
echo "# cost of one policy-function call plus predicate parse, measured alone:"
rdb_psql bench "SET ROLE bench_user;
DO \$\$ DECLARE t0 timestamptz; n int := 20000; BEGIN
	t0 := clock_timestamp();
	FOR i IN 1..n LOOP PERFORM b.dyn_pred('b', 't_policy'); END LOOP;
	RAISE NOTICE 'policy function call: % us', round(extract(epoch FROM clock_timestamp() - t0) * 1e6 / n, 2);
END \$\$;" 2>&1 | sed -nE 's/.*NOTICE: *(.*)/#   \1/p'
