#!/usr/bin/env bash
# pg_repack (Debian's postgresql-15-repack) on rustydb tables: its copy is
# a rustydb table with the original's keys, so its file swap exchanges
# rustydb files (issue 23). Plain and encrypted tables with large values
# and dropped columns, repacked while pgbench changes them (pg_repack's
# log replay), are compared with heap twins that received the same
# statements; verify_table and verify_encryption stay clean; an encrypted
# table's change log is sealed (its marker never reaches a file); pg_repack
# -a over a database mixing heap and rustydb tables; --only-indexes; a
# standby replays it all. Then the damage a heap-building tool did before:
# a heap copy swapped in with pg_repack's own swap function gives one clear
# error on every access path, and rustydb.recover_heap_pages() rebuilds the
# table from those heap pages (plain and encrypted, with large values).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

if [ ! -x "$RDB_BINDIR/pg_repack" ]; then
	echo "not ok 1 - pg_repack is not installed in $RDB_BINDIR (scripts/install-deps.sh installs postgresql-15-repack)"
	echo "# passed 0, failed 1"
	exit 1
fi

rdb_node_init rp
rdb_node_conf rp "rustydb.keyring_file = '$(rdb_keyring_create "$RDB_WORK/keys")'"
rdb_node_conf rp "rustydb.plaintext_index_action = log"
rdb_node_conf rp "wal_level = logical"
rdb_node_start rp
rdb_psql rp "CREATE EXTENSION rustydb; CREATE EXTENSION pg_repack"
rdb_standby_create rp rps
REPACK=("$RDB_BINDIR/pg_repack" -h "$(rdb_sock rp)" -p "$(rdb_port rp)" -U postgres -d postgres)

# make NAME WITH: a table and its heap twin, 20,000 rows (every 50th with a
# large value), a dropped column, half the rows deleted
make_pair() {
	rdb_psql rp "
		CREATE TABLE $1 (id int PRIMARY KEY, gone int, v int NOT NULL, pad text NOT NULL) USING rustydb $2;
		CREATE TABLE ${1}_twin (id int PRIMARY KEY, gone int, v int NOT NULL, pad text NOT NULL) USING heap;
		CREATE INDEX ${1}_v ON $1 (v);
		INSERT INTO $1 SELECT g, g, g, CASE WHEN g % 50 = 0
			THEN (SELECT string_agg(md5(g::text || x::text), '') FROM generate_series(1, 150) x)
			ELSE repeat('p', 80) END FROM generate_series(1, 20000) g;
		INSERT INTO ${1}_twin SELECT * FROM $1;
		ALTER TABLE $1 DROP COLUMN gone;
		ALTER TABLE ${1}_twin DROP COLUMN gone;
		DELETE FROM $1 WHERE id % 2 = 0;
		DELETE FROM ${1}_twin WHERE id % 2 = 0;" >/dev/null 2>&1
}
# same NAME: the table equals its twin (rows both ways, and through the index)
same() {
	rdb_psql rp "SELECT (SELECT count(*) FROM (SELECT * FROM $1 EXCEPT SELECT * FROM ${1}_twin) a)
		+ (SELECT count(*) FROM (SELECT * FROM ${1}_twin EXCEPT SELECT * FROM $1) b)
		+ (SELECT count(*) FROM $1) - (SELECT count(*) FROM ${1}_twin)"
}
verify() {
	rdb_psql rp "SELECT count(*) FROM rustydb.verify_table('$1')"
}

make_pair rplain "WITH (encrypted = false)"
make_pair renc "WITH (encrypted = true)"
rdb_psql rp "INSERT INTO renc VALUES (999999, 1, 'repack-log-marker-7f3a'); INSERT INTO renc_twin VALUES (999999, 1, 'repack-log-marker-7f3a')"
size_before=$(rdb_psql rp "SELECT pg_relation_size('rplain')")

# ---- pg_repack under concurrent changes (its trigger logs them, then replays)
cat >"$RDB_WORK/dml.sql" <<'SQL'
\set a random(1, 20000)
\set b random(20001, 40000)
BEGIN;
UPDATE rplain SET v = v + 1 WHERE id = :a;
UPDATE rplain_twin SET v = v + 1 WHERE id = :a;
UPDATE renc SET v = v + 1, pad = md5(:a::text) WHERE id = :a;
UPDATE renc_twin SET v = v + 1, pad = md5(:a::text) WHERE id = :a;
INSERT INTO rplain VALUES (:b, :b, 'new') ON CONFLICT (id) DO UPDATE SET v = rplain.v + 1;
INSERT INTO rplain_twin VALUES (:b, :b, 'new') ON CONFLICT (id) DO UPDATE SET v = rplain_twin.v + 1;
DELETE FROM renc WHERE id = :a + 1;
DELETE FROM renc_twin WHERE id = :a + 1;
END;
SQL
"$RDB_BINDIR/pgbench" -h "$(rdb_sock rp)" -p "$(rdb_port rp)" -U postgres -n -c 4 -j 2 -T 600 \
	-f "$RDB_WORK/dml.sql" postgres >"$RDB_WORK/pgbench.log" 2>&1 &
bench=$!
# wait until the workload is committing, then repack both tables
# new_rows N: the workload has inserted more than N rows
new_rows() { [ "$(rdb_psql rp "SELECT count(*) FROM rplain WHERE id > 20000")" -gt "$1" ]; }
rdb_wait_for "the workload to commit" 300 new_rows 20
status=0
"${REPACK[@]}" -t rplain -t renc >"$RDB_WORK/repack1.log" 2>&1 || status=$?
# keep the workload going until after the swap, then stop it
rdb_wait_for "the workload to commit after the repack" 300 new_rows 200
kill "$bench" 2>/dev/null
wait "$bench" 2>/dev/null || true
rdb_is "pg_repack -t rplain -t renc under pgbench: exit 0" "$status" "0"
rdb_ok "... it repacked both tables" grep -q 'repacking table "public.renc"' "$RDB_WORK/repack1.log"
rdb_is "... both are still rustydb tables" \
	"$(rdb_psql rp "SELECT string_agg(c.relname || ':' || a.amname, ',' ORDER BY c.relname) FROM pg_class c
		JOIN pg_am a ON a.oid = c.relam WHERE c.relname IN ('rplain', 'renc')")" "renc:rustydb,rplain:rustydb"
rdb_is "... the encrypted one is still encrypted, under the same key" \
	"$(rdb_psql rp "SELECT encrypted, key_version FROM rustydb.encryption_status WHERE \"table\" = 'renc'::regclass")" "t|1"
rdb_is "... rplain equals its heap twin (rows changed during the repack included)" "$(same rplain)" "0"
rdb_is "... renc equals its heap twin" "$(same renc)" "0"
rdb_is "... rows the workload inserted during the run are there" \
	"$(rdb_psql rp "SELECT count(*) > 200 FROM rplain WHERE id > 20000")" "t"
rdb_is "... large values read back" \
	"$(rdb_psql rp "SELECT count(*), sum(length(pad)) FROM renc WHERE length(pad) > 1000")" \
	"$(rdb_psql rp "SELECT count(*), sum(length(pad)) FROM renc_twin WHERE length(pad) > 1000")"
rdb_is "... an index scan agrees" \
	"$(rdb_psql rp "SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*), sum(v) FROM rplain WHERE v > 0")" \
	"$(rdb_psql rp "SELECT count(*), sum(v) FROM rplain_twin")"
rdb_is "... verify_table finds nothing in either" "$(verify rplain) $(verify renc)" "0 0"
rdb_is "... verify_encryption: every payload and large value opens" \
	"$(rdb_psql rp "SELECT count(*) FILTER (WHERE NOT ok) FROM rustydb.verify_encryption('renc')")" "0"
rdb_ok "... the deleted half's space was returned ($size_before -> $(rdb_psql rp "SELECT pg_relation_size('rplain')") bytes)" \
	test "$(rdb_psql rp "SELECT pg_relation_size('rplain')")" -lt "$size_before"
rdb_is "... pg_repack left nothing behind in its schema" \
	"$(rdb_psql rp "SELECT count(*) FROM pg_class WHERE relnamespace = 'repack'::regnamespace AND relkind = 'r'")" "0"

# ---- what pg_repack creates, one statement at a time (deterministic)
plain_oid=$(rdb_psql rp "SELECT 'rplain'::regclass::oid")
enc_oid=$(rdb_psql rp "SELECT 'renc'::regclass::oid")
rdb_psql rp "SET default_table_access_method = heap;
	CREATE TABLE repack.table_$enc_oid WITH (fillfactor = 90) TABLESPACE pg_default AS SELECT * FROM ONLY renc WITH NO DATA;
	CREATE TABLE repack.log_$enc_oid (id bigserial PRIMARY KEY, row renc);
	INSERT INTO repack.log_$enc_oid (row) SELECT r FROM renc r WHERE id = 999999;
	SET rustydb.encrypt_new_tables = on;
	CREATE TABLE repack.table_$plain_oid AS SELECT * FROM ONLY rplain WITH NO DATA;
	CREATE TABLE repack.log_$plain_oid (id bigserial PRIMARY KEY, row rplain);" >/dev/null
rdb_is "pg_repack's copy of an encrypted table: rustydb, under the original's key (session default heap)" \
	"$(rdb_psql rp "SELECT a.amname, e.encrypted, e.key_id = (SELECT key_id FROM rustydb.encryption_status WHERE \"table\" = 'renc'::regclass)
		FROM pg_class c JOIN pg_am a ON a.oid = c.relam JOIN rustydb.encryption_status e ON e.\"table\" = c.oid
		WHERE c.oid = 'repack.table_$enc_oid'::regclass")" "rustydb|t|t"
rdb_is "... its change log: rustydb, encrypted under the original's key" \
	"$(rdb_psql rp "SELECT a.amname, e.encrypted, e.key_id = (SELECT key_id FROM rustydb.encryption_status WHERE \"table\" = 'renc'::regclass)
		FROM pg_class c JOIN pg_am a ON a.oid = c.relam JOIN rustydb.encryption_status e ON e.\"table\" = c.oid
		WHERE c.oid = 'repack.log_$enc_oid'::regclass")" "rustydb|t|t"
rdb_is "pg_repack's copy of a plain table: rustydb and plain, even with encrypt_new_tables on" \
	"$(rdb_psql rp "SELECT a.amname, coalesce(e.encrypted, false) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
		LEFT JOIN rustydb.encryption_status e ON e.\"table\" = c.oid WHERE c.oid = 'repack.table_$plain_oid'::regclass")" "rustydb|f"
rdb_is "... its change log is the session's kind of table (heap)" \
	"$(rdb_psql rp "SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.oid = 'repack.log_$plain_oid'::regclass")" "heap"
rdb_psql rp "CHECKPOINT" >/dev/null
logfile=$(rdb_dir rp)/data/$(rdb_psql rp "SELECT pg_relation_filepath('repack.log_$enc_oid')")
twinfile=$(rdb_dir rp)/data/$(rdb_psql rp "SELECT pg_relation_filepath('renc_twin')")
rdb_ok "... a row it logs is sealed: its marker is not in the log's file (control: in the heap twin's)" \
	bash -c "test -s '$logfile' && ! grep -q repack-log-marker-7f3a '$logfile' && grep -q repack-log-marker-7f3a '$twinfile'"
rdb_psql rp "DROP TABLE repack.table_$enc_oid, repack.log_$enc_oid, repack.table_$plain_oid, repack.log_$plain_oid" >/dev/null
rdb_psql rp "CREATE TABLE notrepack_table (a int) USING heap; CREATE SCHEMA rp_user;
	CREATE TABLE rp_user.table_$enc_oid AS SELECT * FROM rplain WITH NO DATA" >/dev/null
rdb_is "a table_<oid> outside pg_repack's schema is not steered" \
	"$(rdb_psql rp "SELECT count(*) FROM rustydb.encryption_status WHERE \"table\" = 'rp_user.table_$enc_oid'::regclass AND encrypted")" "0"

# ---- --only-indexes, -a over a mixed database
rdb_psql rp "CREATE TABLE hmix (id int PRIMARY KEY, v text) USING heap;
	INSERT INTO hmix SELECT g, 'h' || g FROM generate_series(1, 5000) g; DELETE FROM hmix WHERE id % 3 = 0;
	UPDATE rplain SET v = v + 1 WHERE id % 7 = 0; UPDATE rplain_twin SET v = v + 1 WHERE id % 7 = 0;" >/dev/null
status=0
"${REPACK[@]}" -t rplain --only-indexes >"$RDB_WORK/repack2.log" 2>&1 || status=$?
rdb_is "pg_repack --only-indexes on a rustydb table: exit 0" "$status" "0"
rdb_is "... index scans agree with the twin" \
	"$(rdb_psql rp "SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*), sum(id) FROM rplain WHERE v > 0")" \
	"$(rdb_psql rp "SELECT count(*), sum(id) FROM rplain_twin")"
status=0
"${REPACK[@]}" -a >"$RDB_WORK/repack3.log" 2>&1 || status=$?
rdb_is "pg_repack -a over heap and rustydb tables (plain and encrypted): exit 0" "$status" "0"
rdb_ok "... it repacked the rustydb tables" grep -q 'repacking table "public.renc"' "$RDB_WORK/repack3.log"
rdb_ok "... and the heap ones" grep -q 'repacking table "public.hmix"' "$RDB_WORK/repack3.log"
rdb_is "... every table equals its twin, verify_table clean" \
	"$(same rplain) $(same renc) $(verify rplain) $(verify renc)" "0 0 0 0"
rdb_is "... the heap table kept its rows" "$(rdb_psql rp "SELECT count(*), sum(id) FROM hmix")" \
	"$(rdb_psql rp "SELECT count(*), sum(g) FROM generate_series(1, 5000) g WHERE g % 3 <> 0")"

rdb_wait_replay rp rps
for q in "SELECT count(*), sum(v), sum(length(pad)) FROM rplain" "SELECT count(*), sum(v), sum(length(pad)) FROM renc"; do
	rdb_compare rp rps "$q"
done
rdb_is "the standby's copies verify clean" \
	"$(rdb_psql rps "SELECT count(*) FROM rustydb.verify_table('rplain')") $(rdb_psql rps "SELECT count(*) FROM rustydb.verify_table('renc')")" "0 0"

# ---- the damage a heap-building tool does, and the recovery
# swap_heap: what pg_repack did before rustydb steered its copy: a heap
# copy of the table swapped in by pg_repack's own repack_swap()
swap_heap() {
	local oid
	oid=$(rdb_psql rp "SELECT '$1'::regclass::oid")
	rdb_psql rp "
		CREATE TABLE swapcopy USING heap AS SELECT $(rdb_psql rp "SELECT repack.get_columns_for_create_as($oid)") FROM ONLY $1;
		$(rdb_psql rp "SELECT repack.get_drop_columns($oid, 'swapcopy')");
		ALTER TABLE swapcopy RENAME TO table_$oid;
		ALTER TABLE table_$oid SET SCHEMA repack;" >/dev/null
	# the copy's indexes, as pg_repack builds them
	rdb_psql rp "$(rdb_psql rp "SELECT string_agg(repack.repack_indexdef(indexrelid, indrelid, NULL, false), '; ')
		FROM pg_index WHERE indrelid = '$1'::regclass")" >/dev/null
	rdb_psql rp "
		BEGIN;
		LOCK TABLE $1, repack.table_$oid IN ACCESS EXCLUSIVE MODE;
		SELECT repack.repack_swap('$1'::regclass);
		DROP TABLE repack.table_$oid;
		COMMIT;" >/dev/null
}
for t in rplain renc; do
	swap_heap "$t"
	for q in "SELECT count(*) FROM $t" "SELECT * FROM $t WHERE id = 1 AND v = 1" "UPDATE $t SET v = 0 WHERE id = 1" \
		"INSERT INTO $t VALUES (-1, 1, 'x')" "ANALYZE $t" "VACUUM $t"; do
		out=$(rdb_psql rp "$q" 2>&1 || true)
		rdb_ok "$t over heap files: '$q' gives the clear error" \
			grep -q "ERROR:  relation \"$t\" holds heap pages, not rustydb pages" <<<"$out"
	done
	out=$(rdb_psql rp "SELECT count(*) FROM $t" 2>&1 || true)
	rdb_ok "... whose hint names the recovery" grep -q "HINT:  SELECT rustydb.recover_heap_pages('public.$t')" <<<"$out"
	out=$(rdb_psql rp "SELECT msg FROM rustydb.verify_table('$t')" 2>&1 || true)
	rdb_ok "... verify_table says what block 0 is" grep -q 'it is a heap page' <<<"$out"
	rows=$(rdb_psql rp "SELECT rustydb.recover_heap_pages('$t')" 2>/dev/null)
	rdb_is "rustydb.recover_heap_pages('$t') returns the row count" "$rows" "$(rdb_psql rp "SELECT count(*) FROM ${t}_twin")"
	rdb_is "... $t equals its twin again, verify_table clean" "$(same "$t") $(verify "$t")" "0 0"
	rdb_is "... block 0 is a rustydb metapage again" \
		"$(rdb_psql rp "SELECT present, encrypted FROM rustydb.metapage('$t')")" \
		"t|$([ "$t" = renc ] && echo t || echo f)"
done
rdb_is "the recovered encrypted table opens everywhere" \
	"$(rdb_psql rp "SELECT count(*) FILTER (WHERE NOT ok) FROM rustydb.verify_encryption('renc')")" "0"
out=$(rdb_psql rp "SELECT rustydb.recover_heap_pages('rplain')" 2>&1 || true)
rdb_ok "recover_heap_pages on a healthy table is refused" \
	grep -q 'ERROR:  relation "rplain" does not hold heap pages' <<<"$out"
out=$(rdb_psql rp "SELECT rustydb.recover_heap_pages('hmix')" 2>&1 || true)
rdb_ok "... and on a heap table" grep -q 'ERROR:  "hmix" is not a rustydb table' <<<"$out"
rdb_psql rp "CREATE ROLE someone LOGIN; GRANT EXECUTE ON FUNCTION rustydb.recover_heap_pages(regclass) TO someone;
	GRANT USAGE ON SCHEMA rustydb TO someone" >/dev/null
out=$(rdb_psql rp "SET ROLE someone; SELECT rustydb.recover_heap_pages('rplain')" 2>&1 || true)
rdb_ok "... and for a role that does not own the table" grep -q 'ERROR:  must be owner of table rplain' <<<"$out"
rdb_wait_replay rp rps
rdb_compare rp rps "SELECT count(*), sum(v), sum(length(pad)) FROM renc"
rdb_ok "no backend crashed" bash -c "! grep -q 'terminated by signal' '$(rdb_dir rp)/server.log'"

rdb_summary
