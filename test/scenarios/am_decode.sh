#!/usr/bin/env bash
# Logical decoding of rustydb tables (docs/am.md, "Logical replication").
#
# Part 1, output plugins: one workload (inserts, COPY, updates of key and
# non-key columns, deletes, TOASTed values, upsert, TRUNCATE, savepoints
# with rollback, a two-phase transaction, a transaction large enough to
# stream with logical_decoding_work_mem = 64kB; REPLICA IDENTITY DEFAULT,
# FULL, USING INDEX and NOTHING) runs on heap tables (schema h), then on
# the same rustydb tables (schema r) and encrypted rustydb tables (schema
# e); test_decoding (plain, two-phase, streaming), wal2json and decoderbufs
# (when installed) must emit the same changes for each, schema names aside.
#
# Part 2, built-in logical replication: pgbench TPC-B on an encrypted
# rustydb publisher, one subscriber on rustydb (encrypted) and one on heap;
# a kill -9 of the publisher in the middle; after catching up (waited for
# by LSN) every table is equal row by row and the TPC-B invariant holds.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

have_wal2json=0
[ -e "$("$RDB_BINDIR/pg_config" --pkglibdir)/wal2json.so" ] && have_wal2json=1
have_dbufs=0
[ -e "$("$RDB_BINDIR/pg_config" --pkglibdir)/decoderbufs.so" ] && have_dbufs=1

# ---------------------------------------------------------------------------
# Part 1: the same changes from heap and rustydb tables
# ---------------------------------------------------------------------------
rdb_node_init dec
ring=$(rdb_keyring_create "$RDB_WORK/dec_keys")
rdb_node_conf dec "wal_level = logical"
rdb_node_conf dec "logical_decoding_work_mem = 64kB"
rdb_node_conf dec "rustydb.keyring_file = '$ring'"
rdb_node_conf dec "rustydb.plaintext_index_action = log"
# a server that restricts output plugins to a list (a setting stock
# PostgreSQL 15 does not have) must allow wal2json and decoderbufs
if "$RDB_BINDIR/postgres" --describe-config 2>/dev/null | grep '^output_plugin_libraries' >/dev/null; then
	rdb_node_conf dec "output_plugin_libraries = 'pgoutput, test_decoding, wal2json, decoderbufs'"
fi
rdb_node_start dec
rdb_psql dec "CREATE EXTENSION rustydb"

# tables of schema $1 with access method $2 (options $3)
make_tables() {
	rdb_psql dec "CREATE SCHEMA $1; SET search_path = $1;
		CREATE TABLE t (id int PRIMARY KEY, k int, v text, big text) USING $2 $3;
		CREATE TABLE f (a int, b text) USING $2 $3;
		ALTER TABLE f REPLICA IDENTITY FULL;
		CREATE TABLE n (a int, b text) USING $2 $3;
		ALTER TABLE n REPLICA IDENTITY NOTHING;
		CREATE TABLE ui (a int NOT NULL, b text, c int) USING $2 $3;
		CREATE UNIQUE INDEX ui_a ON ui (a);
		ALTER TABLE ui REPLICA IDENTITY USING INDEX ui_a;"
}
make_tables h heap ""
make_tables r rustydb ""
make_tables e rustydb "WITH (encrypted = true)"

rdb_psql dec "SELECT pg_create_logical_replication_slot('td', 'test_decoding')" >/dev/null
rdb_psql dec "SELECT pg_create_logical_replication_slot('td2pc', 'test_decoding', false, true)" >/dev/null
rdb_psql dec "SELECT pg_create_logical_replication_slot('tdstream', 'test_decoding')" >/dev/null
if [ "$have_wal2json" = 1 ]; then
	rdb_psql dec "SELECT pg_create_logical_replication_slot('w2j', 'wal2json')" >/dev/null
fi
if [ "$have_dbufs" = 1 ]; then
	rdb_psql dec "SELECT pg_create_logical_replication_slot('dbufs', 'decoderbufs')" >/dev/null
fi

# the workload on schema $1
workload() {
	local s=$1 f=$RDB_WORK/workload_$1.sql
	{
		echo "SET search_path = $s;"
		echo "INSERT INTO t SELECT g, g, 'v' || g, NULL FROM generate_series(1, 20) g;"
		echo "COPY t (id, k, v) FROM stdin;"
		for i in $(seq 101 140); do printf '%s\t%s\tcopied %s\n' "$i" "$i" "$i"; done
		echo '\.'
		echo "UPDATE t SET v = v || ' changed' WHERE id <= 5;"
		echo "UPDATE t SET id = id + 1000 WHERE id BETWEEN 6 AND 8;"
		echo "DELETE FROM t WHERE id BETWEEN 9 AND 10;"
		echo "INSERT INTO t VALUES (11, 11, 'x') ON CONFLICT (id) DO UPDATE SET v = 'upserted';"
		echo "INSERT INTO t VALUES (300, 300, 'x') ON CONFLICT (id) DO UPDATE SET v = 'upserted';"
		echo "INSERT INTO t VALUES (300, 300, 'x') ON CONFLICT DO NOTHING;"
		echo "INSERT INTO t SELECT 500, 500, 'toasted', string_agg(md5(g::text), '') FROM generate_series(1, 400) g;"
		echo "UPDATE t SET v = 'toast unchanged' WHERE id = 500;"
		echo "UPDATE t SET big = (SELECT string_agg(md5((g * 7)::text), '') FROM generate_series(1, 400) g) WHERE id = 500;"
		echo "UPDATE t SET id = 501 WHERE id = 500;"
		echo "INSERT INTO f VALUES (-1, (SELECT string_agg(md5((g * 3)::text), '') FROM generate_series(1, 400) g));"
		echo "UPDATE f SET a = -2 WHERE a = -1;"
		echo "DELETE FROM t WHERE id = 501;"
		echo "COPY t (id, k, v, big) FROM stdin;"
		for i in $(seq 510 515); do printf '%s\t%s\tcopied toast\t%s\n' "$i" "$i" "$(seq 1 2000 | md5sum | cut -c1-32)$(head -c 3000 /dev/zero | tr '\0' "$((i % 10))")"; done
		echo '\.'
		echo "BEGIN; INSERT INTO t VALUES (600, 1, 'kept');"
		echo "SAVEPOINT a; INSERT INTO t VALUES (601, 1, 'rolled back'); UPDATE t SET v = 'rolled back' WHERE id = 1; ROLLBACK TO a;"
		echo "SAVEPOINT b; INSERT INTO t VALUES (602, 1, 'released'); UPDATE t SET v = 'in savepoint' WHERE id = 2; RELEASE b;"
		echo "COMMIT;"
		echo "BEGIN; INSERT INTO t VALUES (700, 7, 'aborted'); ROLLBACK;"
		echo "BEGIN; INSERT INTO t VALUES (800, 8, 'two-phase'); UPDATE t SET v = 'prepared' WHERE id = 3; PREPARE TRANSACTION 'gid_decode';"
		echo "COMMIT PREPARED 'gid_decode';"
		echo "BEGIN; INSERT INTO t VALUES (801, 8, 'two-phase rolled back'); PREPARE TRANSACTION 'gid_decode2';"
		echo "ROLLBACK PREPARED 'gid_decode2';"
		echo "INSERT INTO t SELECT g, g, repeat('s', 200), NULL FROM generate_series(10000, 11500) g;"
		echo "INSERT INTO f SELECT g, 'f' || g FROM generate_series(1, 10) g;"
		echo "UPDATE f SET b = b || '!' WHERE a <= 3; DELETE FROM f WHERE a > 8;"
		echo "INSERT INTO n SELECT g, 'n' || g FROM generate_series(1, 5) g;"
		echo "UPDATE n SET b = 'nn' WHERE a = 1; DELETE FROM n WHERE a = 2;"
		echo "INSERT INTO ui SELECT g, 'u' || g, g FROM generate_series(1, 5) g;"
		echo "UPDATE ui SET c = 0 WHERE a = 1; UPDATE ui SET a = 100 WHERE a = 2; DELETE FROM ui WHERE a = 3;"
		echo "TRUNCATE f;"
		echo "TRUNCATE n, ui;"
	} >"$f"
	"$RDB_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$(rdb_sock dec)" -p "$(rdb_port dec)" -U postgres \
		-d postgres -f "$f" >/dev/null
}

# the changes of slot $1 (plugin options $2), schema names as S
changes() {
	rdb_psql dec "SELECT data FROM pg_logical_slot_get_changes('$1', NULL, NULL $2)" |
		sed -E 's/\b[hre]\.(t|f|n|ui)\b/S.\1/g; s/"schema":"[hre]"/"schema":"S"/g'
}
TD_OPTS=", 'include-xids', '0', 'skip-empty-xacts', '1'"
STREAM_OPTS="$TD_OPTS, 'stream-changes', '1'"
W2J_OPTS=", 'include-xids', '0', 'include-timestamp', '0'"
# decoderbufs' text form (Debezium reads the same messages as protobuf):
# one line per change, transaction ids and commit times taken out
DBUFS_OPTS=", 'debug-mode', '1'"
dbufs_changes() {
	changes dbufs "$DBUFS_OPTS" | awk 'BEGIN { RS = "" } { gsub(/\n/, " | "); print }' |
		sed -E 's/txid\[[0-9]+\]/txid[X]/g; s/commit_time\[[0-9]+\]/commit_time[X]/g'
}

declare -A out
declare -A lsn_before lsn_after
for s in h r e; do
	start=$(date +%s.%N)
	lsn_before[$s]=$(rdb_psql dec "SELECT pg_current_wal_lsn()")
	workload "$s"
	lsn_after[$s]=$(rdb_psql dec "SELECT pg_current_wal_lsn()")
	out[td_$s]=$(changes td "$TD_OPTS")
	out[td2pc_$s]=$(changes td2pc "$TD_OPTS")
	out[stream_$s]=$(changes tdstream "$STREAM_OPTS")
	if [ "$have_wal2json" = 1 ]; then
		out[w2j_$s]=$(changes w2j "$W2J_OPTS")
	fi
	if [ "$have_dbufs" = 1 ]; then
		out[dbufs_$s]=$(dbufs_changes)
	fi
	rdb_log "schema $s: workload and decoding in $(echo "$(date +%s.%N) - $start" | bc) s"
done
compare_out() {
	local what=$1 x=${out[$2]} y=${out[$3]}
	if [ "${4:-}" = encrypted ]; then
		# sealed rows are larger in the reorder buffer: streamed blocks end
		# elsewhere; an UPDATE of an encrypted row stores its large values
		# anew, so the plugin gets them where heap says unchanged (checked
		# below)
		local drop=(-e 'a streamed block for transaction' -e 'toast unchanged' -e 'a\[integer\]:-2' -e '"columnvalues":\[-2'
			-e 'column_name\[a\], column_type\[23\], datum\[-2\]')
		x=$(grep -v "${drop[@]}" <<<"$x")
		y=$(grep -v "${drop[@]}" <<<"$y")
	fi
	if [ "$x" = "$y" ]; then
		rdb_pass "$what: the same changes ($(echo "$x" | wc -l) lines)"
	else
		rdb_fail "$what: the changes differ" "$(diff <(echo "$x") <(echo "$y") | cut -c1-300 | head -30)"
	fi
}
plugins="td td2pc stream"
[ "$have_wal2json" = 1 ] && plugins="$plugins w2j"
[ "$have_wal2json" = 1 ] || rdb_log "wal2json is not installed (scripts/install-deps.sh installs it): not compared"
[ "$have_dbufs" = 1 ] && plugins="$plugins dbufs"
[ "$have_dbufs" = 1 ] || rdb_log "decoderbufs is not installed (scripts/install-deps.sh installs it): not compared"
for p in $plugins; do
	compare_out "$p: rustydb as heap" "${p}_h" "${p}_r"
	compare_out "$p: encrypted rustydb as heap" "${p}_h" "${p}_e" encrypted
done
rdb_ok "test_decoding saw the TOASTed value" grep -q "toasted" <(echo "${out[td_r]}")
rdb_ok "test_decoding kept an unchanged TOASTed value as such" grep -q "unchanged-toast-datum" <(echo "${out[td_r]}")
rdb_ok "the big transaction was streamed" grep -q "opening a streamed block" <(echo "${out[stream_r]}")
rdb_ok "the two-phase slot saw PREPARE TRANSACTION" grep -q "PREPARE TRANSACTION 'gid_decode'" <(echo "${out[td2pc_r]}")
rdb_ok "an old key was decoded for an update of the key" grep -q "old-key: id\[integer\]:6" <(echo "${out[td_r]}")
if grep -qE "rolled back'|'aborted'" <<<"${out[td_r]}"; then
	rdb_fail "no rolled-back change was decoded"
else
	rdb_pass "no rolled-back change was decoded"
fi
rdb_ok "the encrypted rows were decoded as plaintext" grep -q "copied 120" <(echo "${out[td_e]}")
if [ "$have_dbufs" = 1 ]; then
	rdb_ok "decoderbufs got the encrypted rows as plaintext" grep -q "datum\[copied 120\]" <(echo "${out[dbufs_e]}")
fi
rdb_ok "an encrypted TOASTed value was decoded as plaintext" grep -q "big\[text\]:'c4ca4238" <(echo "${out[td_e]}")
rdb_ok "an encrypted TOASTed value an UPDATE left unchanged comes in full" \
	grep -q "'toast unchanged' big\[text\]:'c4ca4238" <(echo "${out[td_e]}")

# the records' trailers as pg_walinspect shows them (rm_desc)
rdb_psql dec "CREATE EXTENSION IF NOT EXISTS pg_walinspect" >/dev/null
desc_of() {
	rdb_psql dec "SELECT string_agg(DISTINCT record_type || ': ' || regexp_replace(description, '^.*; logical', 'logical'), E'\n' ORDER BY record_type || ': ' || regexp_replace(description, '^.*; logical', 'logical'))
		FROM pg_get_wal_records_info('${lsn_before[$1]}', '${lsn_after[$1]}')
		WHERE resource_manager = 'rustydb' AND description LIKE '%; logical%' AND description NOT LIKE '%old key%'"
}
rdb_is "rustydb records carry the logical trailer (pg_walinspect)" "$(desc_of r)" "CONFIRM: logical
DELETE: logical
INSERT: logical
MULTI_INSERT: logical, last in multi-insert
UPDATE: logical"
rdb_is "... sealed for the encrypted table (CONFIRM carries no tuple)" "$(desc_of e)" "CONFIRM: logical
DELETE: logical, sealed
INSERT: logical, sealed
MULTI_INSERT: logical, last in multi-insert, sealed
UPDATE: logical, sealed"
rdb_ok "... and old keys where REPLICA IDENTITY asks" rdb_psql_true dec \
	"SELECT count(*) > 0 FROM pg_get_wal_records_info('${lsn_before[r]}', '${lsn_after[r]}')
	 WHERE resource_manager = 'rustydb' AND record_type IN ('UPDATE', 'DELETE') AND description LIKE '%old key%'"

# without its key, decoding an encrypted table stops with the key error and
# resumes once the key is back
rdb_psql dec "INSERT INTO e.t VALUES (900, 9, 'while the key is away')"
mv "$ring" "$ring.away"
rdb_node_restart dec
rdb_expect_error "without the key: the key error naming the relation" dec \
	"SELECT data FROM pg_logical_slot_get_changes('td', NULL, NULL $TD_OPTS)" \
	'cannot access encrypted relation "t"'
mv "$ring.away" "$ring"
rdb_node_restart dec
rdb_is "with the key back: the change is decoded" \
	"$(rdb_psql dec "SELECT count(*) FROM pg_logical_slot_get_changes('td', NULL, NULL $TD_OPTS) WHERE data LIKE '%while the key is away%'")" 1
for slot in td td2pc tdstream w2j; do
	rdb_psql dec "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot'" >/dev/null
done
rdb_node_stop dec

# ---------------------------------------------------------------------------
# Part 2: built-in logical replication under pgbench, with a publisher crash
# ---------------------------------------------------------------------------
PGBENCH_SECONDS=${RDB_DECODE_PGBENCH_SECONDS:-8}
pub_ring=$(rdb_keyring_create "$RDB_WORK/pub_keys")
sub_ring=$(rdb_keyring_create "$RDB_WORK/sub_keys")
rdb_node_init pub
rdb_node_conf pub "wal_level = logical"
rdb_node_conf pub "default_table_access_method = rustydb"
rdb_node_conf pub "rustydb.keyring_file = '$pub_ring'"
rdb_node_conf pub "rustydb.encrypt_new_tables = on"
rdb_node_conf pub "rustydb.plaintext_index_action = log"
rdb_node_start pub
rdb_node_init subr
rdb_node_conf subr "default_table_access_method = rustydb"
rdb_node_conf subr "rustydb.keyring_file = '$sub_ring'"
rdb_node_conf subr "rustydb.encrypt_new_tables = on"
rdb_node_conf subr "rustydb.plaintext_index_action = log"
rdb_node_start subr
rdb_node_init subh
rdb_node_start subh

pgb() {
	local node=$1
	shift
	"$RDB_BINDIR/pgbench" -h "$(rdb_sock "$node")" -p "$(rdb_port "$node")" -U postgres "$@" postgres
}
for n in pub subr subh; do rdb_psql "$n" "CREATE EXTENSION rustydb"; done
pgb pub -i -s 2 -q >/dev/null 2>&1
pgb subr -i -I dtp -s 2 -q >/dev/null 2>&1
pgb subh -i -I dtp -s 2 -q >/dev/null 2>&1
rdb_is "the publisher's pgbench tables are encrypted rustydb tables" \
	"$(rdb_psql pub "SELECT count(*) FROM rustydb.encryption_status WHERE encrypted AND \"table\"::text LIKE 'pgbench_%'")" 4
rdb_is "subscriber subr's pgbench tables are encrypted rustydb tables" \
	"$(rdb_psql subr "SELECT count(*) FROM rustydb.encryption_status WHERE encrypted AND \"table\"::text LIKE 'pgbench_%'")" 4
rdb_psql pub "CREATE PUBLICATION bench FOR TABLE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history"
pubconn="host=$(rdb_sock pub) port=$(rdb_port pub) user=postgres dbname=postgres"
for n in subr subh; do
	rdb_psql "$n" "CREATE SUBSCRIPTION sub_$n CONNECTION '$pubconn' PUBLICATION bench"
done
synced() { rdb_psql_true "$1" "SELECT count(*) = 4 AND bool_and(srsubstate = 'r') FROM pg_subscription_rel"; }
for n in subr subh; do rdb_wait_for "$n's initial copy" 120 synced "$n"; done

# Every subscriber has confirmed the publisher's current WAL position.
caught_up() {
	local lsn
	lsn=$(rdb_psql pub "SELECT pg_current_wal_lsn()") || return 1
	rdb_wait_for "the subscribers to reach $lsn" 180 rdb_psql_true pub \
		"SELECT count(*) = 2 AND bool_and(confirmed_flush_lsn >= '$lsn') FROM pg_replication_slots WHERE slot_type = 'logical' AND slot_name LIKE 'sub_%'"
}

start=$(date +%s.%N)
pgb pub -c 4 -j 2 -T "$PGBENCH_SECONDS" -n >"$RDB_WORK/pgbench1.log" 2>&1 &
bench=$!
# the crash: once the run has committed some transactions
rdb_wait_for "pgbench to commit transactions" 60 rdb_psql_true pub "SELECT count(*) > 500 FROM pgbench_history"
rdb_node_crash pub
wait "$bench" || true
rdb_node_start pub
pgb pub -c 4 -j 2 -T "$PGBENCH_SECONDS" -n >"$RDB_WORK/pgbench2.log" 2>&1
rdb_log "pgbench after the crash: $(grep -E '^(number of transactions actually processed|tps)' "$RDB_WORK/pgbench2.log" | tr '\n' ' ')"
rdb_psql pub "CHECKPOINT" >/dev/null
caught_up
rdb_log "pgbench runs, crash, restart and catching up: $(echo "$(date +%s.%N) - $start" | bc) s"

rows() {
	rdb_psql "$1" "SET work_mem = '256MB'; SELECT 'accounts', count(*), md5(string_agg(a::text, ',' ORDER BY aid)) FROM pgbench_accounts a
		UNION ALL SELECT 'branches', count(*), md5(string_agg(b::text, ',' ORDER BY bid)) FROM pgbench_branches b
		UNION ALL SELECT 'tellers', count(*), md5(string_agg(t::text, ',' ORDER BY tid)) FROM pgbench_tellers t
		UNION ALL SELECT 'history', count(*), md5(string_agg(h::text, ',' ORDER BY tid, bid, aid, delta, mtime)) FROM pgbench_history h
		ORDER BY 1"
}
invariant() {
	rdb_psql "$1" "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches)
		AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers)
		AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)"
}
pub_rows=$(rows pub)
rdb_log "publisher: $(echo "$pub_rows" | tr '\n' ' ')"
rdb_is "TPC-B invariant on the publisher" "$(invariant pub)" t
for n in subr subh; do
	rdb_is "$n: every table equal to the publisher's, row by row" "$(rows "$n")" "$pub_rows"
	rdb_is "TPC-B invariant on $n" "$(invariant "$n")" t
done

# rustydb's own tables are not published, and never applied
rdb_expect_error "a publication naming a rustydb table is refused" pub \
	"CREATE PUBLICATION own FOR TABLE rustydb.table_keys" 'cannot include table "rustydb.table_keys"'
rdb_expect_error "a publication of schema rustydb is refused" pub \
	"CREATE PUBLICATION own FOR TABLES IN SCHEMA rustydb" 'cannot include schema "rustydb"'
rdb_expect_error "user_catalog_table on a rustydb table is refused" pub \
	"CREATE TABLE uc (a int) WITH (user_catalog_table = true)" 'cannot be a user catalog table'
# a FOR ALL TABLES publication includes rustydb's own tables: a subscriber
# with rustydb skips their rows (initial copy and changes) with a WARNING
rdb_psql pub "CREATE PUBLICATION everything FOR ALL TABLES;
	INSERT INTO rustydb.vpd_context (namespace, func) VALUES ('decode_initial', 'now'::regproc)"
rdb_psql subh "CREATE TABLE pgbench_other (id int PRIMARY KEY)"
rdb_psql pub "CREATE TABLE pgbench_other (id int PRIMARY KEY)"
rdb_psql subh "DROP SUBSCRIPTION sub_subh"
rdb_psql subh "TRUNCATE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history"
rdb_psql subh "CREATE SUBSCRIPTION sub_all CONNECTION '$pubconn' PUBLICATION everything" 2>&1 | grep -v NOTICE || true
rdb_wait_for "subh's initial copy of every table" 120 rdb_psql_true subh \
	"SELECT count(*) > 4 AND bool_and(srsubstate = 'r') FROM pg_subscription_rel"
rdb_psql pub "INSERT INTO rustydb.vpd_context (namespace, func) VALUES ('decode_change', 'now'::regproc);
	INSERT INTO pgbench_other VALUES (1)"
rdb_wait_for "subh to apply the change after it" 60 rdb_psql_true subh "SELECT count(*) = 1 FROM pgbench_other"
rdb_is "rustydb's own rows from FOR ALL TABLES are not applied" \
	"$(rdb_psql subh "SELECT count(*) FROM rustydb.vpd_context WHERE namespace LIKE 'decode%'")" 0
rdb_ok "... each skipped with a WARNING" grep -q "replicated change of rustydb.vpd_context was skipped" "$(rdb_dir subh)/server.log"
rdb_is "... while the pgbench tables were copied" "$(rows subh)" "$(rows pub)"
out_guard=$(rdb_psql subh "SET session_replication_role = replica;
	INSERT INTO rustydb.vpd_context (namespace, func) VALUES ('by_hand', 'now'::regproc);
	SELECT count(*) FROM rustydb.vpd_context WHERE namespace = 'by_hand'" 2>&1)
rdb_is "a session in replica mode (not a replication worker) writes rustydb's tables as before" "$out_guard" 1
for n in subr subh; do rdb_node_stop "$n"; done
rdb_node_stop pub
rdb_summary
