#!/usr/bin/env bash
# VPD overhead benchmark (issue acceptance 3).
#
# A 1M-row table queried through a VPD policy whose predicate can use an
# index, against an identical table without row security queried with the
# same predicate written by hand, in the same run, as the same unprivileged
# role. One pgbench script runs both statements alternately in every
# transaction, so both see exactly the same conditions (this machine is
# shared; separate runs drift by tens of percent), and pgbench -r reports
# each statement's mean latency. For each policy type (static,
# context_sensitive, dynamic) and protocol (prepared = extended protocol with
# cached plans, simple = parse and plan every statement) it prints the
# statements' throughput (1/latency) and the ratio policy/hand-written, and
# the per-statement cost of the dynamic policy (latency difference). Also prints the per-statement cost of a dynamic
# policy (latency difference) and of evaluating its function alone.
#
#   bash bench/vpd_bench.sh            # DURATION=10 seconds per run, ROWS=1000000
#   DURATION=5 ROWS=200000 bash bench/vpd_bench.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DURATION=${DURATION:-10}
ROWS=${ROWS:-1000000}

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
rdb_node_conf bench "shared_buffers = 512MB
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

# Both orders: the second statement of a transaction is measurably slower
# (it competes with the first one's I/O), so each order runs for DURATION
# and the latencies are averaged.
cat >"$WORK/both1.sql" <<'SQL'
\set k random(1, 990000)
SELECT b.set_dept(42);
SELECT count(*), sum(v) FROM b.t_plain WHERE id BETWEEN :k AND :k + 9999 AND dept = 42;
SELECT count(*), sum(v) FROM b.t_policy WHERE id BETWEEN :k AND :k + 9999;
SQL
cat >"$WORK/both2.sql" <<'SQL'
\set k random(1, 990000)
SELECT b.set_dept(42);
SELECT count(*), sum(v) FROM b.t_policy WHERE id BETWEEN :k AND :k + 9999;
SELECT count(*), sum(v) FROM b.t_plain WHERE id BETWEEN :k AND :k + 9999 AND dept = 42;
SQL
chmod 644 "$WORK"/*.sql

# latencies (ms) of the hand-written and the policy statement
latencies_order() { # protocol script
	"$RDB_BINDIR/pgbench" -n -r -c 1 -j 1 -T "$DURATION" -M "$1" -f "$WORK/$2.sql" \
		-h "$(rdb_sock bench)" -p "$(rdb_port bench)" -U bench_user postgres 2>/dev/null |
		awk '/FROM b.t_plain/ {h = $1} /FROM b.t_policy/ {p = $1} END {print h, p}'
}
latencies() { # protocol: mean latencies (ms) of the hand-written and the policy statement
	local h1 p1 h2 p2
	read -r h1 p1 <<<"$(latencies_order "$1" both1)"
	read -r h2 p2 <<<"$(latencies_order "$1" both2)"
	echo "$(echo "($h1 + $h2) / 2" | bc -l) $(echo "($p1 + $p2) / 2" | bc -l)"
}

echo "# plan through the policy (static):"
set_policy static static_pred
rdb_psql bench "SET ROLE bench_user; EXPLAIN (COSTS OFF) SELECT count(*), sum(v) FROM b.t_policy WHERE id BETWEEN 1 AND 10000" | sed 's/^/#   /'

# warm-up: both tables and indexes into shared buffers
DURATION=$((DURATION / 2 + 1)) latencies prepared >/dev/null

printf '%-18s %-9s %12s %12s %8s %10s\n' policy_type protocol hand_stmt/s policy_stmt/s ratio extra_us
for type in static context_sensitive dynamic; do
	case $type in
	static) set_policy static static_pred ;;
	context_sensitive) set_policy context_sensitive ctx_pred ;;
	dynamic) set_policy dynamic dyn_pred ;;
	esac
	for proto in prepared simple; do
		read -r h p <<<"$(latencies "$proto")"
		printf '%-18s %-9s %12.1f %12.1f %8.3f %10.1f\n' "$type" "$proto" "$(echo "1000 / $h" | bc -l)" \
			"$(echo "1000 / $p" | bc -l)" "$(echo "$h / $p" | bc -l)" "$(echo "($p - $h) * 1000" | bc -l)"
	done
done
echo "# extra_us: policy statement latency minus hand-written, microseconds per statement"
echo "# (for the dynamic policy: the per-statement cost of evaluating it)"
echo "# cost of one call of the PL/pgSQL policy function, measured alone:"
rdb_psql bench "SET ROLE bench_user;
DO \$\$ DECLARE t0 timestamptz; n int := 20000; BEGIN
	t0 := clock_timestamp();
	FOR i IN 1..n LOOP PERFORM b.dyn_pred('b', 't_policy'); END LOOP;
	RAISE NOTICE 'policy function call: % us', round(extract(epoch FROM clock_timestamp() - t0) * 1e6 / n, 2);
END \$\$;" 2>&1 | sed -nE 's/.*NOTICE: *(.*)/#   \1/p'
