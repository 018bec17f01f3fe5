#!/usr/bin/env bash
# Plaintext paths around encrypted tables (issue 19, items 2-7; docs/tde.md,
# "Plaintext paths"). For each path, a unique marker value goes into an
# encrypted table and is searched for in every file under the data
# directory, in the server log and in the temporary file directory (while
# the statement runs where a statement writes one, and after CHECKPOINT);
# each search has a control that proves it sees the marker where rustydb
# does not (or cannot) keep it out:
#   2 server log      errors quoting values (unique, check, foreign key,
#                     not-null, casts, COPY), RAISE, log_statement, PL/pgSQL
#                     and portal contexts: redacted in the log, whole for the
#                     client; control: rustydb.redact_server_log = off
#   3 statistics      ANALYZE of an encrypted table stores value-free
#                     column statistics (value_free, the default: no value,
#                     the estimates right) or none (none; reltuples right);
#                     control: a plain table, and tde_statistics = full;
#                     earlier statistics deleted; autovacuum's ANALYZE too
#   4 derived tables  CREATE TABLE AS / SELECT INTO / materialized views
#                     (through views, CTEs, sublinks, EXECUTE, functions)
#                     are encrypted; USING heap is reported (and the control:
#                     its marker is found), or refused with the error setting
#   5 dump/restore    pg_dump (plain, custom, --schema-only) carries
#                     encrypted=true; restores are encrypted, and fail
#                     without a key provider or without rustydb; control:
#                     a plain table of the same dump is found on disk
#   6 temp files      a spilling sort over an encrypted table is reported
#                     (its marker is in pgsql_tmp while it runs: the control,
#                     PostgreSQL writes it); CLUSTER, VACUUM FULL and
#                     rotate_table_key write no temporary file
#   7 key mix-ups     a provider without the tables' master key: WARNING
#                     on first use and on CREATE, naming the key and how
#                     many tables need it; a keyring inside the data
#                     directory is refused by the setting's check hook
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

RING=$(rdb_keyring_create "$RDB_WORK/tleak_keys")
TMPSPC=$RDB_WORK/tleak_tmpspc
mkdir -p "$TMPSPC"
chown "$RDB_SERVER_USER" "$TMPSPC"

rdb_node_init tleak
rdb_node_conf tleak "rustydb.keyring_file = '$RING'"
# rustydb's own tables keep statement text, sealed with a key provider
# (issue 19 item 1: tde_text.sh, not this script): no session history here
rdb_node_conf tleak "rustydb.ash_enabled = off"
rdb_node_conf tleak "log_statement = 'all'"
rdb_node_conf tleak "log_temp_files = 0"
rdb_node_conf tleak "log_min_messages = notice"
rdb_node_conf tleak "log_min_error_statement = notice"
rdb_node_start tleak
rdb_psql tleak "CREATE EXTENSION rustydb"
if [ -z "$(rdb_psql tleak "SELECT amhandler::text FROM pg_am WHERE amname = 'rustydb'")" ]; then
	rdb_log "skipped: the rustydb table access method is not part of this build"
	rdb_summary
	exit 0
fi
DATA=$(rdb_dir tleak)/data
LOG=$(rdb_dir tleak)/server.log

q() { rdb_psql tleak "$1" 2>&1 || true; }
# every file under the data directory (pgsql_tmp included) and the temporary tablespace
on_disk() { grep -rlaF -- "$1" "$DATA" "$TMPSPC" 2>/dev/null | sed "s|^$RDB_WORK/||" | tr '\n' ' ' || true; }
in_log() { grep -caF -- "$1" "$LOG" || true; }
checkpoint() { rdb_psql tleak "CHECKPOINT" >/dev/null; }
mark() { echo "RDBLEAK-$1-$RANDOM$RANDOM"; }
setting_is() { [ "$(rdb_psql tleak "SHOW $1")" = "$2" ]; }

# ======================================================================
# 2. the server log
# ======================================================================
M_UNIQ=$(mark uniq)
M_CHECK=$(mark check)
M_FK=$(mark fk)
M_NULL=$(mark notnull)
M_CAST=$(mark cast)
M_COPY=$(mark copy)
M_RAISE=$(mark raise)
M_STMT=$(mark stmt)
M_PLPG=$(mark plpgsql)
M_PREP=$(mark prepared)
M_CTRL=$(mark logcontrol)
rdb_psql tleak "CREATE TABLE lg (id int PRIMARY KEY, v text UNIQUE NOT NULL,
		CHECK (v NOT LIKE '%-check-%')) USING rustydb WITH (encrypted = true);
	CREATE TABLE lg_ref (v text REFERENCES lg (v)) USING rustydb WITH (encrypted = true)" 2>/dev/null
# (markers never in the statement that creates an encrypted table: the
# statement text in rustydb's own tables is tde_text.sh's subject)
rdb_psql tleak "INSERT INTO lg VALUES (1, '$M_UNIQ')"
c_uniq=$(q "INSERT INTO lg VALUES (2, '$M_UNIQ')")
c_check=$(q "INSERT INTO lg VALUES (3, '$M_CHECK')") # the marker has -check- in it
c_fk=$(q "INSERT INTO lg_ref VALUES ('$M_FK')")
c_null=$(q "INSERT INTO lg VALUES (4, NULL), (5, '$M_NULL')")
c_cast=$(q "INSERT INTO lg VALUES ('$M_CAST', 'x')")
c_copy=$(printf '%s\tx\n' "$M_COPY" | rdb_psql tleak "COPY lg FROM STDIN" 2>&1 || true)
c_raise=$(q "DO \$\$ BEGIN RAISE WARNING 'value %', (SELECT v FROM lg WHERE id = 1) || '-$M_RAISE'; END \$\$")
q "SELECT count(*) FROM lg WHERE v = '$M_STMT'" >/dev/null
q "CREATE FUNCTION lg_f() RETURNS void LANGUAGE plpgsql AS \$\$
	BEGIN INSERT INTO lg VALUES (1, '$M_PLPG'); END \$\$" >/dev/null
c_plpg=$(q "SELECT lg_f()")
c_prep=$(q "PREPARE lg_p(int, text) AS INSERT INTO lg VALUES (\$1, \$2); EXECUTE lg_p(1, '$M_PREP')")
rdb_ok "the client gets the full unique violation (DETAIL names the key)" \
	bash -c "echo '$c_uniq' | grep -q 'Key (v)=($M_UNIQ) already exists'"
rdb_ok "... the full check violation" bash -c "echo '$c_check' | grep -q 'Failing row contains (3, $M_CHECK'"
rdb_ok "... the foreign key violation" bash -c "echo '$c_fk' | grep -q 'Key (v)=($M_FK) is not present'"
rdb_ok "... the cast error" bash -c "echo '$c_cast' | grep -q 'invalid input syntax for type integer: \"$M_CAST\"'"
rdb_ok "... the COPY context" bash -c "echo '$c_copy' | grep -q '$M_COPY'"
rdb_ok "... the RAISE" bash -c "echo '$c_raise' | grep -q 'WARNING:  value $M_UNIQ-$M_RAISE'"
rdb_ok "... the PL/pgSQL statement" bash -c "echo '$c_plpg' | grep -q '$M_PLPG'"
for m in "$M_UNIQ" "$M_CHECK" "$M_FK" "$M_NULL" "$M_CAST" "$M_COPY" "$M_RAISE" "$M_STMT" "$M_PLPG" "$M_PREP"; do
	rdb_is "the server log holds no ${m%-*}" "$(in_log "$m")" "0"
done
rdb_ok "the server log says what it left out" bash -c "grep -q 'Key (v)=(<redacted>) already exists' '$LOG' &&
	grep -q 'Failing row contains (<redacted>)' '$LOG' && grep -q 'STATEMENT:  INSERT INTO lg VALUES (<redacted>, <redacted>)' '$LOG'"
rdb_psql tleak "ALTER SYSTEM SET rustydb.redact_server_log = off" && rdb_psql tleak "SELECT pg_reload_conf()" >/dev/null
rdb_wait_for "the reload" 10 setting_is rustydb.redact_server_log off
q "INSERT INTO lg VALUES (2, '$M_UNIQ-$M_CTRL')" >/dev/null
q "INSERT INTO lg VALUES (2, '$M_UNIQ-$M_CTRL')" >/dev/null
rdb_ok "control: with rustydb.redact_server_log = off the log holds the value" test "$(in_log "$M_CTRL")" -gt 0
rdb_psql tleak "ALTER SYSTEM RESET rustydb.redact_server_log" && rdb_psql tleak "SELECT pg_reload_conf()" >/dev/null
rdb_wait_for "the reload" 10 setting_is rustydb.redact_server_log auto
# (the data directory is not searched for these markers: they are in the
# unique index, a plaintext path rustydb warns about when the index is
# created; the audit trail keeps the statements' text sealed, tde_text.sh)

# ======================================================================
# 3. statistics
# ======================================================================
M_STAT=$(mark stat)
M_STATP=$(mark statplain)
M_STATF=$(mark statfull)
rdb_psql tleak "CREATE TABLE st (id int, v text) USING rustydb WITH (encrypted = true);
	CREATE TABLE st_plain (id int, v text) USING rustydb;
	CREATE STATISTICS st_ext (mcv) ON id, v FROM st"
rdb_psql tleak "INSERT INTO st SELECT i, '$M_STAT-' || (i % 3) FROM generate_series(1, 3000) i;
	INSERT INTO st_plain SELECT i, '$M_STATP-' || (i % 3) FROM generate_series(1, 3000) i;
	ANALYZE st; ANALYZE st_plain"
checkpoint
rdb_is "ANALYZE of the encrypted table stores value-free column statistics (value_free, the default)" \
	"$(q "SELECT string_agg(attname || ':' || n_distinct || ':' || (most_common_vals IS NULL AND histogram_bounds IS NULL AND most_common_elems IS NULL), ',' ORDER BY attname) FROM pg_stats WHERE tablename = 'st'")" \
	"id:-1:true,v:3:true"
rdb_is "... not a value in pg_statistic's value arrays" \
	"$(q "SELECT count(*) FROM pg_statistic WHERE starelid = 'st'::regclass AND (stavalues1 IS NOT NULL OR stavalues2 IS NOT NULL OR stavalues3 IS NOT NULL OR stavalues4 IS NOT NULL OR stavalues5 IS NOT NULL)")" "0"
rdb_is "... no extended statistics data" \
	"$(q "SELECT count(*) FROM pg_statistic_ext_data d JOIN pg_statistic_ext e ON e.oid = d.stxoid WHERE e.stxname = 'st_ext'")" "0"
rdb_is "... and counts its rows (reltuples)" "$(q "SELECT reltuples FROM pg_class WHERE relname = 'st'")" "3000"
rdb_psql tleak "SET rustydb.tde_statistics = none; ANALYZE st"
rdb_is "under none it stores no column statistics, and counts the rows" \
	"$(q "SELECT count(*) FROM pg_stats WHERE tablename = 'st'") $(q "SELECT reltuples FROM pg_class WHERE relname = 'st'")" "0 3000"
rdb_psql tleak "ANALYZE st"
checkpoint
rdb_is "its marker is nowhere under the data directory" "$(on_disk "$M_STAT")" ""
rdb_ok "control: the plain table's most common values reach pg_statistic on disk" \
	bash -c "[ -n \"\$(grep -rlaF '$M_STATP' '$DATA/base')\" ]"
rdb_psql tleak "SET rustydb.tde_statistics = full; UPDATE st SET v = '$M_STATF'; ANALYZE st"
checkpoint
rdb_ok "control: with tde_statistics = full the encrypted table's values reach pg_statistic" \
	test "$(q "SELECT count(*) FROM pg_stats WHERE tablename = 'st'")" -gt 0 -a -n "$(grep -rlaF "$M_STATF" "$DATA/base")"
rdb_psql tleak "ANALYZE st"
rdb_is "the next ANALYZE under value_free deletes their values" \
	"$(q "SELECT count(*) FROM pg_stats WHERE tablename = 'st' AND (most_common_vals IS NOT NULL OR histogram_bounds IS NOT NULL)") $(q "SELECT count(*) FROM pg_statistic_ext_data d JOIN pg_statistic_ext e ON e.oid = d.stxoid WHERE e.stxname = 'st_ext'")" "0 0"
rdb_psql tleak "SET rustydb.tde_statistics = full; ANALYZE st"
rdb_psql tleak "SET rustydb.tde_statistics = none; ANALYZE st"
rdb_is "... and the next under none deletes them all" \
	"$(q "SELECT count(*) FROM pg_stats WHERE tablename = 'st'") $(q "SELECT count(*) FROM pg_statistic_ext_data d JOIN pg_statistic_ext e ON e.oid = d.stxoid WHERE e.stxname = 'st_ext'")" "0 0"
# autovacuum's ANALYZE (a background worker) stores value-free statistics too
M_STATA=$(mark statauto)
rdb_psql tleak "ALTER TABLE st SET (autovacuum_enabled = false);
	ALTER TABLE st_plain SET (autovacuum_enabled = false);
	CREATE TABLE sta (id int, v text) USING rustydb WITH (encrypted = true)"
rdb_psql tleak "ALTER SYSTEM SET autovacuum_naptime = 1"
rdb_reload tleak
rdb_psql tleak "INSERT INTO sta SELECT i, '$M_STATA-' || (i % 5) FROM generate_series(1, 3000) i"
rdb_ok "autovacuum analyzes the new encrypted table" \
	rdb_poll 120 rdb_psql_true tleak "SELECT autoanalyze_count > 0 FROM pg_stat_user_tables WHERE relname = 'sta'"
rdb_psql tleak "ALTER SYSTEM RESET autovacuum_naptime"
rdb_reload tleak
checkpoint
rdb_is "... storing value-free statistics: distinct counts, no value" \
	"$(q "SELECT string_agg(attname || ':' || n_distinct || ':' || (most_common_vals IS NULL AND histogram_bounds IS NULL), ',' ORDER BY attname) FROM pg_stats WHERE tablename = 'sta'")" \
	"id:-1:true,v:5:true"
rdb_is "... and its marker is nowhere under the data directory" "$(on_disk "$M_STATA")" ""

# ======================================================================
# 4. derived tables (the default table access method is heap here)
# ======================================================================
M_CTAS=$(mark ctas)
M_HEAP=$(mark explicitheap)
M_DPLAIN=$(mark derivedplain)
rdb_psql tleak "CREATE TABLE src (id int, v text) USING rustydb WITH (encrypted = true)"
rdb_psql tleak "INSERT INTO src SELECT i, '$M_CTAS-' || i FROM generate_series(1, 50) i;
	CREATE TABLE src_plain AS SELECT i AS id, '$M_DPLAIN-' || i AS v FROM generate_series(1, 50) i;
	CREATE VIEW src_v AS SELECT * FROM src WHERE id > 0;
	CREATE FUNCTION src_f() RETURNS SETOF src LANGUAGE sql AS 'SELECT * FROM src'" 2>/dev/null
out=$(q "PREPARE src_p AS SELECT * FROM src;
	CREATE TABLE d_ctas AS SELECT * FROM src;
	SELECT * INTO d_into FROM src;
	CREATE TABLE d_view AS SELECT * FROM src_v;
	CREATE TABLE d_cte AS WITH c AS (SELECT * FROM src) SELECT * FROM c;
	CREATE TABLE d_sub AS SELECT id FROM src_plain WHERE v IN (SELECT v FROM src) OR true;
	CREATE TABLE d_exec AS EXECUTE src_p;
	CREATE MATERIALIZED VIEW d_mv AS SELECT * FROM src_v;
	CREATE TABLE d_rusty USING rustydb AS SELECT * FROM src;
	REFRESH MATERIALIZED VIEW d_mv")
rdb_ok "a derived table is made a rustydb table, with a NOTICE" \
	bash -c "echo '$out' | grep -q 'NOTICE:  table \"d_ctas\" is created as an encrypted rustydb table: its query reads encrypted table \"src\"'"
rdb_is "CREATE TABLE AS, SELECT INTO, views, CTEs, sublinks, EXECUTE, materialized views: all encrypted" \
	"$(q "SELECT string_agg(\"table\"::text || '=' || encrypted, ' ' ORDER BY \"table\"::text) FROM rustydb.encryption_status WHERE \"table\"::text LIKE 'd\\_%'")" \
	"d_ctas=true d_cte=true d_exec=true d_into=true d_mv=true d_rusty=true d_sub=true d_view=true"
rdb_is "... and they keep encrypted=true for pg_dump" \
	"$(q "SELECT count(*) FROM pg_class WHERE relname LIKE 'd\\_%' AND reloptions @> '{encrypted=true}'")" "8"
out=$(q "CREATE TABLE h_ctas USING heap AS SELECT replace(v, '$M_CTAS', '$M_HEAP') AS v FROM src")
rdb_ok "USING heap over an encrypted table is reported (WARNING naming both tables)" \
	bash -c "echo '$out' | grep -q 'WARNING:  table \"h_ctas\" holds rows of encrypted table \"src\" unencrypted'"
out=$(q "CREATE TABLE h_func USING heap AS SELECT replace(v, '$M_CTAS', '$M_HEAP') FROM src_f()")
rdb_ok "... also when the rows come through a function (seen while it runs)" \
	bash -c "echo '$out' | grep -q 'WARNING:  table \"h_func\" holds rows of encrypted table \"src\" unencrypted'"
rdb_expect_error "rustydb.plaintext_derived_action = error refuses it" tleak \
	"SET rustydb.plaintext_derived_action = error; CREATE TABLE h_err USING heap AS SELECT * FROM src" \
	'ERROR:  table "h_err" holds rows of encrypted table "src" unencrypted'
rdb_expect_error "... and an unencrypted materialized view's REFRESH" tleak \
	"CREATE VIEW h_v AS SELECT 1::bigint AS n; CREATE MATERIALIZED VIEW h_mv USING heap AS SELECT * FROM h_v;
	 CREATE OR REPLACE VIEW h_v AS SELECT count(*) AS n FROM src;
	 SET rustydb.plaintext_derived_action = error; REFRESH MATERIALIZED VIEW h_mv" \
	'ERROR:  table "h_mv" holds rows of encrypted table "src" unencrypted'
checkpoint
rdb_is "the derived tables' marker is nowhere under the data directory" "$(on_disk "$M_CTAS")" ""
rdb_ok "control: the reported heap table's marker is on disk" test -n "$(on_disk "$M_HEAP")"
rdb_ok "control: a table derived from a plain table is plaintext on disk" test -n "$(on_disk "$M_DPLAIN")"

# ======================================================================
# 5. dump and restore
# ======================================================================
M_DUMP=$(mark dump)
M_DUMPP=$(mark dumpplain)
rdb_psql tleak "CREATE DATABASE dumped"
RDB_DB=dumped rdb_psql tleak "CREATE EXTENSION rustydb;
	SET default_table_access_method = rustydb;
	CREATE TABLE enc_d (id int, v text) WITH (encrypted = true, fillfactor = 90);
	CREATE TABLE auto_d (id int, v text);
	CREATE TABLE plain_d (id int, v text);
	CREATE MATERIALIZED VIEW mv_d WITH (encrypted = true) AS SELECT * FROM enc_d" 2>/dev/null
RDB_DB=dumped rdb_psql tleak "INSERT INTO enc_d SELECT i, '$M_DUMP-' || i FROM generate_series(1, 100) i;
	INSERT INTO plain_d SELECT i, '$M_DUMPP-' || i FROM generate_series(1, 100) i;
	REFRESH MATERIALIZED VIEW mv_d" 2>/dev/null
RDB_DB=dumped rdb_psql tleak "SET rustydb.encrypt_new_tables = on; CREATE TABLE auto_d2 (id int, v text) USING rustydb"
RDB_DB=dumped rdb_psql tleak "INSERT INTO auto_d2 SELECT i, '$M_DUMP-auto' FROM generate_series(1, 10) i"
DUMPS=$RDB_WORK/tleak_dumps
mkdir -p "$DUMPS"
chmod 777 "$DUMPS"
dump() { "$RDB_BINDIR/pg_dump" -h "$(rdb_sock tleak)" -p "$(rdb_port tleak)" -U postgres "$@" dumped; }
dump -f "$DUMPS/plain.sql"
dump -Fc -f "$DUMPS/custom.dump"
dump --schema-only -f "$DUMPS/schema.sql"
rdb_ok "pg_dump writes encrypted='true' for the encrypted tables and materialized view" \
	bash -c "grep -q \"CREATE TABLE public.enc_d (\" '$DUMPS/plain.sql' &&
		[ \"\$(grep -c \"encrypted='true'\" '$DUMPS/plain.sql')\" = 3 ] &&
		grep -q \"WITH (fillfactor='90', encrypted='true')\" '$DUMPS/plain.sql' &&
		[ \"\$(grep -c \"encrypted='true'\" '$DUMPS/schema.sql')\" = 3 ]"
rdb_is "... and nothing for the plain tables" "$(grep -A3 'CREATE TABLE public.plain_d' "$DUMPS/plain.sql" | grep -c encrypted || true)" "0"

restore_into() { # NODE FORMAT: restore a dump into database restored of NODE
	local node=$1
	rdb_psql "$node" "CREATE DATABASE restored" >/dev/null
	case $2 in
	plain) "$RDB_BINDIR/psql" -X -q -h "$(rdb_sock "$node")" -p "$(rdb_port "$node")" -U postgres -d restored -f "$DUMPS/plain.sql" ;;
	custom) "$RDB_BINDIR/pg_restore" -h "$(rdb_sock "$node")" -p "$(rdb_port "$node")" -U postgres -d restored "$DUMPS/custom.dump" ;;
	schema) "$RDB_BINDIR/psql" -X -q -h "$(rdb_sock "$node")" -p "$(rdb_port "$node")" -U postgres -d restored -f "$DUMPS/schema.sql" &&
		"$RDB_BINDIR/pg_restore" -h "$(rdb_sock "$node")" -p "$(rdb_port "$node")" -U postgres -d restored --data-only "$DUMPS/custom.dump" &&
		RDB_DB=restored rdb_psql "$node" "REFRESH MATERIALIZED VIEW mv_d" ;; # post-data, not in --data-only
	esac
}
RING2=$(rdb_keyring_create "$RDB_WORK/tleak_keys2")
for fmt in plain custom schema; do
	node=tleak_r_$fmt
	rdb_node_init "$node"
	rdb_node_conf "$node" "rustydb.keyring_file = '$RING2'"
	rdb_node_conf "$node" "rustydb.ash_enabled = off"
	rdb_node_start "$node"
	restore_into "$node" "$fmt" >"$RDB_WORK/$node.restore.log" 2>&1 || true
	rdb_is "$fmt restore: the encrypted tables are encrypted again, the plain one is not" \
		"$(RDB_DB=restored rdb_psql "$node" "SELECT string_agg(\"table\"::text || '=' || encrypted, ' ' ORDER BY \"table\"::text) FROM rustydb.encryption_status")" \
		"auto_d=false auto_d2=true enc_d=true mv_d=true plain_d=false"
	rdb_is "$fmt restore: every row is back" \
		"$(RDB_DB=restored rdb_psql "$node" "SELECT (SELECT count(*) FROM enc_d) || ' ' || (SELECT count(*) FROM mv_d) || ' ' || (SELECT count(*) FROM auto_d2) || ' ' || (SELECT count(*) FROM plain_d)")" \
		"100 100 10 100"
	rdb_psql "$node" "CHECKPOINT" >/dev/null
	rdb_is "$fmt restore: the encrypted rows' marker is nowhere under its data directory" \
		"$(grep -rlaF "$M_DUMP" "$(rdb_dir "$node")/data" | tr '\n' ' ' || true)" ""
	rdb_ok "$fmt restore, control: the plain table's marker is on its disk" \
		test -n "$(grep -rlaF "$M_DUMPP" "$(rdb_dir "$node")/data" || true)"
	rdb_node_stop "$node"
done

# a server with rustydb but no key provider, and one without rustydb
rdb_node_init tleak_nokey
rdb_node_conf tleak_nokey "rustydb.ash_enabled = off"
rdb_node_start tleak_nokey
rdb_node_init tleak_norustydb --no-rustydb
rdb_node_start tleak_norustydb
for node in tleak_nokey tleak_norustydb; do
	for fmt in plain custom; do
		rdb_psql "$node" "DROP DATABASE IF EXISTS restored" >/dev/null
		out=$(restore_into "$node" "$fmt" 2>&1 || true)
		if [ "$node" = tleak_nokey ]; then want='no master key provider is configured'; else want='unrecognized parameter "encrypted"'; fi
		rdb_ok "$fmt restore into $node fails clearly ($want)" \
			bash -c "echo \"\$1\" | grep -q '$want'" _ "$out"
		rdb_is "$fmt restore into $node: no encrypted table was created" \
			"$(RDB_DB=restored rdb_psql "$node" "SELECT count(*) FROM pg_class WHERE relname IN ('enc_d', 'mv_d', 'auto_d2')")" "0"
		rdb_psql "$node" "CHECKPOINT" >/dev/null
		rdb_is "$fmt restore into $node: the encrypted rows' marker is nowhere under its data directory" \
			"$(grep -rlaF "$M_DUMP" "$(rdb_dir "$node")/data" | tr '\n' ' ' || true)" ""
		rdb_ok "$fmt restore into $node, control: the plain table's rows are restored and on disk" \
			test -n "$(grep -rlaF "$M_DUMPP" "$(rdb_dir "$node")/data" || true)"
	done
	rdb_node_stop "$node"
done

# ======================================================================
# 6. temporary files
# ======================================================================
M_SORT=$(mark sort)
M_CLU=$(mark cluster)
rdb_psql tleak "CREATE TABLE tf (id int, v text) USING rustydb WITH (encrypted = true)"
rdb_psql tleak "INSERT INTO tf SELECT i, '$M_SORT-' || md5(i::text) || repeat('x', 100) FROM generate_series(1, 20000) i" 2>/dev/null
# a sort that spills, then waits on its second row: its file is in pgsql_tmp meanwhile
(q "SET work_mem = '64kB'; SELECT count(pg_sleep(CASE WHEN n = 2 THEN 8 ELSE 0 END))
	FROM (SELECT v, row_number() OVER () AS n FROM (SELECT v FROM tf ORDER BY v) s) t" >"$RDB_WORK/tleak_sort.out") &
sorter=$!
sleeping() { [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")" = 1 ]; }
rdb_wait_for "the spilling sort to sleep" 60 sleeping
rdb_ok "control: while the sort runs its temporary file holds the rows in plaintext (PostgreSQL writes it)" \
	bash -c "[ -n \"\$(grep -rlaF '$M_SORT' '$DATA/base/pgsql_tmp' 2>/dev/null)\" ]"
wait "$sorter" || true
rdb_ok "the statement is reported: WARNING naming the encrypted table" \
	grep -q 'WARNING:  statement wrote [0-9]* temporary file(s) ([0-9]* kB) while reading or writing encrypted table(s) "tf"' "$RDB_WORK/tleak_sort.out"
rdb_expect_error "rustydb.plaintext_temp_file_action = error refuses it" tleak \
	"SET work_mem = '64kB'; SET rustydb.plaintext_temp_file_action = error; SELECT count(*) FROM (SELECT v FROM tf ORDER BY v) s" \
	'ERROR:  statement wrote [0-9]* temporary file'
out=$(q "SET work_mem = '64kB'; SELECT count(*) FROM (SELECT v FROM tf ORDER BY v) s WHERE false")
rdb_is "a query that writes no temporary file is not reported" "$(echo "$out" | grep -c WARNING || true)" "0"
# rustydb's own rewrites: CLUSTER (asked to sort), VACUUM FULL, rotate_table_key
rdb_psql tleak "CREATE TABLE clu (id int, v text) USING rustydb WITH (encrypted = true)"
# 5000 rows of 600 bytes: the rows (3 MB) exceed maintenance_work_mem, the index build's sort does not
rdb_psql tleak "INSERT INTO clu SELECT (i * 7919) % 5000, '$M_CLU-' || repeat('y', 600) FROM generate_series(1, 5000) i;
	CREATE TABLE clu_plain (LIKE clu) USING rustydb; INSERT INTO clu_plain SELECT id, replace(v, '$M_CLU', 'plain') FROM clu;
	SET client_min_messages = error; CREATE INDEX clu_i ON clu (id); CREATE INDEX clu_plain_i ON clu_plain (id)" >/dev/null 2>&1
before=$(grep -c 'LOG:  temporary file:' "$LOG" || true)
rdb_psql tleak "SET maintenance_work_mem = '1MB'; SET enable_indexscan = off; CLUSTER clu USING clu_i" >/dev/null
rdb_psql tleak "VACUUM FULL clu" >/dev/null
rdb_psql tleak "SELECT rustydb.rotate_table_key('clu')" >/dev/null
after=$(grep -c 'LOG:  temporary file:' "$LOG" || true)
rdb_is "CLUSTER (sort preferred), VACUUM FULL and rotate_table_key of the encrypted table write no temporary file" "$((after - before))" "0"
rdb_is "... CLUSTER still orders it" "$(q "SELECT bool_and(ok) FROM (SELECT id >= lag(id, 1, -1) OVER () AS ok FROM clu) s")" "t"
rdb_psql tleak "SET maintenance_work_mem = '1MB'; SET enable_indexscan = off; CLUSTER clu_plain USING clu_plain_i" >/dev/null
rdb_ok "control: the same CLUSTER of a plain table sorts through a temporary file" \
	test "$(grep -c 'LOG:  temporary file:' "$LOG" || true)" -gt "$after"
checkpoint
rdb_is "after the statements and a CHECKPOINT no file holds the encrypted rows' marker" "$(on_disk "$M_SORT")$(on_disk "$M_CLU")" ""

# ======================================================================
# 7. master key mix-ups and the keyring's location
# ======================================================================
RING3=$(rdb_keyring_create "$RDB_WORK/tleak_keys3")
use_keyring() {
	rdb_psql tleak "ALTER SYSTEM SET rustydb.keyring_file = '$1'" && rdb_psql tleak "SELECT pg_reload_conf()" >/dev/null
	rdb_wait_for "the reload" 10 setting_is rustydb.keyring_file "$1"
}
n_tables=$(q "SELECT count(DISTINCT k.relid) FROM rustydb.table_keys k JOIN pg_class c ON c.oid = k.relid WHERE c.relkind IN ('r', 'm')")
old_id=$(q "SELECT master_key_id FROM rustydb.master_key_info()")
use_keyring "$RING3"
new_id=$(q "SELECT master_key_id FROM rustydb.master_key_info()")
out=$(q "SELECT count(*) FROM src_plain")
rdb_is "a session that uses no table key is not warned" "$(echo "$out" | grep -c WARNING || true)" "0"
out=$(q "CREATE TABLE k_new (x int) USING rustydb WITH (encrypted = true)")
rdb_ok "CREATE of an encrypted table warns, naming the missing master key and how many tables need it" \
	bash -c "echo \"\$1\" | grep -q 'WARNING:  encrypted table \"k_new\" is created under master key $new_id, but master key $old_id, which $n_tables encrypted table(s) of this database need, is not available from keyring_file'" _ "$out"
out=$(q "SELECT count(*) FROM k_new")
rdb_ok "a session's first use of table keys warns too" \
	bash -c "echo \"\$1\" | grep -q 'WARNING:  master key $old_id, which $n_tables encrypted table(s) of this database need, is not available from keyring_file'" _ "$out"
use_keyring "$RING"
out=$(q "SELECT count(*) FROM k_new")
rdb_ok "back on the first keyring, the new table's key is the missing one" \
	bash -c "echo \"\$1\" | grep -q 'WARNING:  master key $new_id, which 1 encrypted table(s) of this database need'" _ "$out"
rdb_expect_error "a keyring inside the data directory is refused by the setting's check hook (ALTER SYSTEM)" tleak \
	"ALTER SYSTEM SET rustydb.keyring_file = '$DATA/ring'" \
	'keyring file ".*/data/ring" is inside the data directory'
ln -s "$DATA" "$RDB_WORK/tleak_link"
rdb_expect_error "... also through a symbolic link" tleak \
	"ALTER SYSTEM SET rustydb.keyring_file = '$RDB_WORK/tleak_link/ring'" \
	'is inside the data directory'
rdb_psql tleak "ALTER SYSTEM RESET rustydb.keyring_file" >/dev/null
echo "rustydb.keyring_file = '$DATA/pg_wal/ring'" | rdb_as_server tee -a "$DATA/postgresql.conf" >/dev/null
rdb_psql tleak "SELECT pg_reload_conf()" >/dev/null
rdb_wait_for "the reload's complaint" 10 grep -q 'keyring file ".*/pg_wal/ring" is inside the data directory' "$LOG"
rdb_is "... and in postgresql.conf: a reload keeps the previous keyring" "$(q "SHOW rustydb.keyring_file")" "$RING"
rdb_node_restart tleak
rdb_is "... a restart leaves the setting empty (no key provider) instead of using it" \
	"$(q "SHOW rustydb.keyring_file")|$(q "SELECT count(*) FROM src" | grep -o 'no master key provider is configured')" \
	"|no master key provider is configured"

rdb_summary
