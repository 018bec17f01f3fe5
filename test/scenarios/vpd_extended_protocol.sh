#!/usr/bin/env bash
# VPD acceptance 2 over the extended query protocol: pgbench runs the same
# statements with -M extended (unnamed statements) and -M prepared (named
# statements whose plans are cached per connection), switching the
# application context between executions. Each query divides by zero when it
# returns the rows of another context, which aborts the pgbench client, so a
# stale predicate fails the run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

rdb_node_init vpdx
rdb_node_start vpdx
rdb_psql vpdx "CREATE EXTENSION rustydb" >/dev/null
rdb_psql vpdx "
CREATE ROLE vpd_app LOGIN;
CREATE SCHEMA app;
GRANT USAGE ON SCHEMA app TO vpd_app;
CREATE TABLE app.emp (empno int PRIMARY KEY, deptno int NOT NULL);
INSERT INTO app.emp SELECT g, 10 * (1 + g % 3) FROM generate_series(1, 30) g;
GRANT SELECT ON app.emp TO vpd_app;
CREATE FUNCTION app.set_dept(d int) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
AS \$\$ BEGIN PERFORM rustydb.set_context('app_ctx', 'deptno', d::text); END \$\$;
GRANT EXECUTE ON FUNCTION app.set_dept(int) TO vpd_app;
SELECT rustydb.create_context('app_ctx', 'app.set_dept');
CREATE FUNCTION app.pred(s text, o text) RETURNS text LANGUAGE sql
AS \$\$ SELECT 'deptno = ' || coalesce(rustydb.sys_context('app_ctx', 'deptno')::int, -1) \$\$;
" >/dev/null

SCRIPT=$RDB_WORK/switch.sql
cat >"$SCRIPT" <<'SQL'
\set d random(1, 3)
SELECT app.set_dept(:d * 10);
SELECT 1 / (CASE WHEN count(*) = 10 AND min(deptno) = :d * 10 AND max(deptno) = :d * 10 THEN 1 ELSE 0 END) FROM app.emp;
SELECT 1 / (CASE WHEN count(*) = 0 THEN 1 ELSE 0 END) FROM app.emp WHERE deptno <> :d * 10;
SQL
chmod 644 "$SCRIPT"

run() { # protocol
	"$RDB_BINDIR/pgbench" -n -c 2 -j 1 -t 200 -M "$1" -f "$SCRIPT" -h "$(rdb_sock vpdx)" \
		-p "$(rdb_port vpdx)" -U vpd_app postgres >"$RDB_WORK/pgbench-$1.log" 2>&1
}

for type in context_sensitive dynamic static; do
	rdb_psql vpdx "SELECT rustydb.drop_policy('app', 'emp', policy_name) FROM rustydb.policies;
		SELECT rustydb.add_policy('app', 'emp', 'by_dept', 'app', 'pred', policy_type => '$type')" >/dev/null
	if [ "$type" = static ]; then
		# a static predicate is computed once: the rows stay those of the first context
		if run prepared; then
			rdb_fail "static policy: a context change must not re-evaluate a static predicate"
		else
			rdb_pass "static policy keeps its first predicate (as Oracle's STATIC)"
		fi
		continue
	fi
	for proto in extended prepared simple; do
		if run "$proto"; then
			rdb_pass "$type policy, -M $proto: every execution saw the rows of the current context"
		else
			rdb_fail "$type policy, -M $proto: a stale predicate was used"
			tail -n 5 "$RDB_WORK/pgbench-$proto.log"
		fi
	done
done

rdb_summary
