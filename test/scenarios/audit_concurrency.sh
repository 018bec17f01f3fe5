#!/usr/bin/env bash
# Audit trail under concurrency: verify_audit_trail() run again and again
# while several sessions keep the audit worker writing batches (and while
# the size limit makes the worker purge the trail) must always report a
# valid chain, also from a REPEATABLE READ transaction. A batch committed
# after the caller's snapshot was taken is not a missing record.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap 'kill $(jobs -p) 2>/dev/null || true; rdb_cleanup' EXIT

q() { rdb_psql conc "$1"; }

rdb_node_init conc
# a small trail: the worker purges the oldest records while verification runs
rdb_node_conf conc "rustydb.audit_max_size = 1"
rdb_node_start conc
q "CREATE EXTENSION rustydb"
q "CREATE TABLE t (id int)"
q "SELECT rustydb.create_audit_policy('dml', '{select,insert}', '{t}')"

# writers: short audited statements as fast as they go
STOP=$RDB_WORK/stop
PAD=$(printf 'x%.0s' $(seq 1 1500))
writer() {
	while [ ! -e "$STOP" ]; do
		q "INSERT INTO t VALUES (1); SELECT count(*) FROM t WHERE false AND '$PAD' <> '';
		   INSERT INTO t VALUES (2); SELECT count(*) FROM t WHERE false AND '$PAD' <> '';
		   INSERT INTO t VALUES (3); SELECT count(*) FROM t WHERE false" >/dev/null 2>&1 || true
	done
}
for w in 1 2 3; do writer & done

# the verifier: each call is its own statement (and snapshot)
VERIFY="SELECT valid || coalesce(' ' || problem, '') FROM rustydb.verify_audit_trail()"
bad=0 runs=0 first=""
end=$((SECONDS + ${AUDIT_CONC_SECONDS:-20}))
# at least that long, and on a loaded machine longer (at most 5 times as
# long), until the writers have made the worker write and purge meanwhile
busy() { [ "$(q "SELECT written > 1000 AND purged > 0 FROM rustydb.audit_info")" = t ]; }
hard_end=$((SECONDS + 5 * ${AUDIT_CONC_SECONDS:-20}))
while [ "$SECONDS" -lt "$end" ] || { [ "$SECONDS" -lt "$hard_end" ] && ! busy; }; do
	out=$(q "$VERIFY; $VERIFY; $VERIFY; $VERIFY; $VERIFY")
	while read -r line; do
		runs=$((runs + 1))
		if [ "$line" != "true" ]; then
			bad=$((bad + 1))
			[ -n "$first" ] || first=$line
		fi
	done <<<"$out"
done
# a REPEATABLE READ transaction's snapshot is older than the batches
# written meanwhile (it waits until the worker has written 50 more records;
# audit_info's counters are in shared memory, not under the snapshot):
# verification still checks the trail as it is now
rr=$(q "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM t WHERE false;
	DO \$\$ DECLARE w0 bigint := (SELECT written FROM rustydb.audit_info); t0 timestamptz := clock_timestamp();
	BEGIN
		WHILE (SELECT written FROM rustydb.audit_info) < w0 + 50 LOOP
			IF clock_timestamp() > t0 + interval '120 s' THEN
				RAISE EXCEPTION 'the audit worker wrote no 50 records within 120 s';
			END IF;
			PERFORM pg_sleep(0.05);
		END LOOP;
	END \$\$;
	$VERIFY; COMMIT" | tail -1)
touch "$STOP"
wait
rdb_is "verification in an older REPEATABLE READ snapshot finds a valid chain" "$rr" true
rdb_log "verifications: $runs, not valid: $bad ${first:+(first: $first)}"
rdb_log "$(q "SELECT format('written %s, purged %s, trail %s bytes', written, purged, trail_bytes) FROM rustydb.audit_info")"
rdb_is "verification during concurrent writes always finds a valid chain" "$bad" 0
rdb_ok "the writers kept the worker busy" test "$(q "SELECT written > 1000 FROM rustydb.audit_info")" = t
rdb_ok "the worker purged while verification ran" test "$(q "SELECT purged > 0 FROM rustydb.audit_info")" = t
rdb_is "the chain verifies at the end" "$(q "SELECT rustydb.audit_flush(); $VERIFY" | tail -1)" true

rdb_summary
