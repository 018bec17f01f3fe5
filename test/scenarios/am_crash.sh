#!/usr/bin/env bash
# rustydb tables survive kill -9: pgbench (scale 10, 2 clients) on rustydb
# tables, the whole cluster killed mid-run (once it has committed 200
# transactions), restarted, five times. After
# each crash every acknowledged transaction is present (pgbench's per-
# transaction log), none half-done (TPC-B invariant: accounts, tellers,
# branches and history deltas all sum alike) and verify_table is clean.
# With RDB_TDE=1 (test/lib/cluster.sh) the tables are encrypted, and
# verify_encryption opens every stored payload after the last crash.
# TPC-B's updates change no indexed column, so rustydb updates in place
# where the row fits (issue 21): the crashes hit in-place versions, undo
# chains and undo pages, and verify_table checks the undo pointers.
# RDB_EXPECT_INPLACE (default 1): before each crash, rustydb.undo_stats
# must count in-place updates of the pgbench tables, and at the end their
# undo stores must not be empty; 0 while the in-place path has not landed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT
EXPECT=${RDB_EXPECT_INPLACE:-1}
# with RDB_TDE=1 (encrypted tables) RDB_EXPECT_INPLACE_TDE=0 turns the
# in-place checks off (default: as RDB_EXPECT_INPLACE)
[ "${RDB_TDE:-0}" = 1 ] && EXPECT=${RDB_EXPECT_INPLACE_TDE:-$EXPECT}

rdb_node_init amcrash
rdb_node_conf amcrash "default_table_access_method = 'rustydb'"
rdb_node_start amcrash
rdb_psql amcrash "CREATE EXTENSION rustydb"

PGB=("$RDB_BINDIR/pgbench" -h "$(rdb_sock amcrash)" -p "$(rdb_port amcrash)" -U postgres)
"${PGB[@]}" -i -q -s 10 postgres >"$RDB_WORK/pgbench-init.log" 2>&1 ||
	{
		cat "$RDB_WORK/pgbench-init.log"
		rdb_die "pgbench -i failed"
	}
rdb_is "pgbench tables are rustydb tables" \
	"$(rdb_psql amcrash "SELECT string_agg(c.relname || ':' || a.amname, ',' ORDER BY c.relname)
		FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.relname LIKE 'pgbench_%' AND c.relkind = 'r'")" \
	"pgbench_accounts:rustydb,pgbench_branches:rustydb,pgbench_history:rustydb,pgbench_tellers:rustydb"
rdb_is "pgbench tables are encrypted exactly when RDB_TDE=1" \
	"$(rdb_psql amcrash "SELECT count(*) FROM rustydb.encryption_status WHERE encrypted AND \"table\"::text LIKE 'pgbench_%'")" \
	"$([ "${RDB_TDE:-0}" = 1 ] && echo 4 || echo 0)"

INVARIANT="SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches)
	AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers)
	AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)"
VERIFY="SELECT count(*) FROM (SELECT * FROM rustydb.verify_table('pgbench_accounts')
	UNION ALL SELECT * FROM rustydb.verify_table('pgbench_branches')
	UNION ALL SELECT * FROM rustydb.verify_table('pgbench_tellers')
	UNION ALL SELECT * FROM rustydb.verify_table('pgbench_history')) p"

acked=0
for round in 1 2 3 4 5; do
	logdir=$RDB_WORK/pgbench-$round
	mkdir -p "$logdir"
	# pgbench runs until the crash ends it; the crash comes once it has
	# committed 200 transactions this round (not after a time: on a loaded
	# machine it may not have committed any)
	(cd "$logdir" && "${PGB[@]}" -n -c 2 -j 2 -T 600 -l postgres >"$logdir/out.log" 2>&1) &
	bench=$!
	rdb_wait_for "round $round: pgbench to commit 200 transactions" 300 \
		rdb_psql_true amcrash "SELECT count(*) >= $acked + 200 FROM pgbench_history"
	if [ "$EXPECT" = 1 ]; then
		# (the counters start at zero with each server start)
		n=$(rdb_psql amcrash "SELECT coalesce(sum(inplace_updates), 0) FROM rustydb.undo_stats
			WHERE relid IN ('pgbench_accounts'::regclass, 'pgbench_tellers'::regclass, 'pgbench_branches'::regclass)")
		rdb_ok "round $round: pgbench's updates went in place ($n in-place updates)" test "$n" -gt 0
	fi
	rdb_node_crash amcrash
	wait "$bench" 2>/dev/null || true
	rdb_node_start amcrash
	this=$(cat "$logdir"/pgbench_log.* 2>/dev/null | wc -l)
	acked=$((acked + this))
	history=$(rdb_psql amcrash "SELECT count(*) FROM pgbench_history")
	rdb_ok "round $round: $this acknowledged transactions, all present (history $history >= $acked)" \
		test "$history" -ge "$acked" -a "$this" -gt 0
	rdb_ok "round $round: at most the in-flight commits beyond the acknowledged ones" \
		test "$history" -le $((acked + 2))
	acked=$history
	rdb_is "round $round: TPC-B invariant holds" "$(rdb_psql amcrash "$INVARIANT")" "t"
	rdb_is "round $round: verify_table finds nothing" "$(rdb_psql amcrash "$VERIFY")" "0"
done

if [ "${RDB_TDE:-0}" = 1 ]; then
	rdb_is "after the crashes, every stored payload of the encrypted tables opens" \
		"$(rdb_psql amcrash "SELECT count(*) FILTER (WHERE ok), count(*) FROM pg_class c,
			LATERAL rustydb.verify_encryption(c.oid) v
			WHERE c.relname LIKE 'pgbench_%' AND c.relkind = 'r' AND v.\"check\" = 'stored payloads open'")" \
		"4|4"
fi
if [ "$EXPECT" = 1 ]; then
	# (pgbench_accounts is filled at fillfactor 100: whether its rows find
	# room for their first in-place version depends on the page, so only
	# its store's size is shown)
	rdb_is "after the crashes, the undo stores of tellers and branches are not empty" \
		"$(rdb_psql amcrash "SELECT count(*) FROM unnest(ARRAY['pgbench_tellers', 'pgbench_branches']::regclass[]) t
			WHERE pg_relation_size(rustydb.undo_relation(t)) > 0")" "2"
	rdb_log "undo store of pgbench_accounts: $(rdb_psql amcrash "SELECT pg_size_pretty(pg_relation_size(rustydb.undo_relation('pgbench_accounts')))")"
fi
rdb_psql amcrash "VACUUM pgbench_accounts"
rdb_is "after VACUUM: invariant holds" "$(rdb_psql amcrash "$INVARIANT")" "t"
rdb_is "after VACUUM: verify_table finds nothing" "$(rdb_psql amcrash "$VERIFY")" "0"
rdb_is "index and sequential scans agree" \
	"$(rdb_psql amcrash "SET enable_seqscan = off; SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid > 0")" \
	"$(rdb_psql amcrash "SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid > 0")"

rdb_summary
