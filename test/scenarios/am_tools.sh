#!/usr/bin/env bash
# PostgreSQL tools that assume heap, each tried on rustydb tables: what they
# do (work, work with a difference, refuse, or read the wrong thing), and
# that the tables are intact afterwards. Every statement that changes a
# rustydb table goes to a heap twin too (r/h plain, e/eh encrypted); after
# each tool the twins must hold the same rows and verify_table must find
# nothing.
#
#   pageinspect, pgstattuple, pg_surgery, amcheck and pg_amcheck,
#   pg_visibility, pg_freespacemap, pg_walinspect, pg_dump/pg_restore -j 2,
#   postgres_fdw (loopback), pg_partman 4.7, pg_checksums (a cluster made
#   by initdb -k, and --enable), pg_prewarm (and autoprewarm), pg_rewind
#   after a failover.
#
# Block numbers: data block N (the N of ctid (N,x)) is file block N + 1,
# block 0 the metapage; RelationGetNumberOfBlocks() counts data pages.
# Tools that read blocks with ReadBuffer(rel, n) for n below that count
# therefore read file block n: the metapage and not the last data page.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

# q NODE SQL: output and errors, never fails
q() { rdb_psql "$1" "$2" 2>&1 || true; }
# pair A B NODE SQL...: each statement for table A and for its heap twin B
# (TBL stands for the table's name); twin: r and h; etwin: e and eh
pair() {
	local a=$1 b=$2 node=$3 s
	shift 3
	for s in "$@"; do
		rdb_psql "$node" "${s//TBL/$a}" >/dev/null
		rdb_psql "$node" "${s//TBL/$b}" >/dev/null
	done
}
twin() { pair r h "$@"; }
etwin() { pair e eh "$@"; }
# rowsig TABLE: count and digest of its rows
rowsig() {
	echo "SELECT count(*) || ' ' || md5(coalesce(string_agg(id || ':' || v || ':' || coalesce(n::text, '-'), ',' ORDER BY id), '')) FROM $1"
}
SIGS="SELECT ($(rowsig r)) || ' / ' || ($(rowsig e))"
HSIGS="SELECT ($(rowsig h)) || ' / ' || ($(rowsig eh))"
VERIFY="SELECT (SELECT count(*) FROM rustydb.verify_table('r')) + (SELECT count(*) FROM rustydb.verify_table('e'))"
# intact NODE TOOL: the rustydb tables equal their heap twins and verify clean
intact() {
	rdb_is "$2: r and e hold the rows of their heap twins" "$(q "$1" "$SIGS")" "$(q "$1" "$HSIGS")"
	rdb_is "$2: verify_table(r) and verify_table(e) find nothing" "$(q "$1" "$VERIFY")" "0"
}
# quiet CMD...: CMD's output only when it fails
quiet() {
	local out
	out=$("$@" 2>&1) && return 0
	awk '{ print "#   " $0 }' <<<"$out"
	return 1
}
datapages() { q "$1" "SELECT data_pages FROM rustydb.metapage('$2')"; }

# ---- the main node: data checksums (initdb -k), a keyring, no autovacuum
# (visibility-map states must be the statements' own)
RING=$(rdb_keyring_create "$RDB_WORK/keys")
RDB_INITDB_OPTS=--data-checksums rdb_node_init p
rdb_node_conf p "rustydb.keyring_file = '$RING'"
rdb_node_conf p "rustydb.plaintext_index_action = log"
rdb_node_conf p "autovacuum = off"
rdb_node_conf p "wal_keep_size = '512MB'"
rdb_node_start p
rdb_psql p "CREATE EXTENSION rustydb"
for ext in pageinspect pgstattuple pg_surgery pg_visibility amcheck pg_prewarm pg_freespacemap \
	pg_walinspect pg_buffercache postgres_fdw; do
	rdb_psql p "CREATE EXTENSION $ext"
done
rdb_psql p "CREATE TABLE r (id int PRIMARY KEY, v text, n bigint) USING rustydb;
	CREATE TABLE h (LIKE r INCLUDING ALL) USING heap;
	CREATE TABLE e (id int PRIMARY KEY, v text, n bigint) USING rustydb WITH (encrypted = true);
	CREATE TABLE eh (LIKE e INCLUDING ALL) USING heap"
# rows, some large enough to be TOASTed (each a different incompressible-ish value)
twin p "INSERT INTO TBL SELECT g, CASE WHEN g % 500 = 0
	        THEN (SELECT string_agg(md5(g::text || i), '') FROM generate_series(1, 200) i)
	        ELSE 'row ' || g END, g * 10 FROM generate_series(1, 3000) g" \
	"UPDATE TBL SET n = n + 1 WHERE id % 7 = 0" \
	"DELETE FROM TBL WHERE id % 13 = 0"
etwin p "INSERT INTO TBL SELECT g, 'secret ' || g, g FROM generate_series(1, 1000) g" \
	"UPDATE TBL SET n = -n WHERE id % 9 = 0"
rdb_is "setup: e is encrypted, r is not" "$(q p "SELECT string_agg(encrypted::text, ' ' ORDER BY t) FROM
	(SELECT 'e' t, encrypted FROM rustydb.metapage('e') UNION ALL SELECT 'r', encrypted FROM rustydb.metapage('r')) m")" "true false"
intact p "setup"
N=$(datapages p r)

# ---- pageinspect: raw blocks are file blocks (block 0 the metapage)
rdb_is "pageinspect: get_raw_page(r, 0) is the metapage (pd_special 8184, pd_lower 44)" \
	"$(q p "SELECT special || ' ' || lower FROM page_header(get_raw_page('r', 0))")" "8184 44"
rdb_is "pageinspect: heap_page_items on the metapage: 5 line pointers, all unused, no tuple" \
	"$(q p "SELECT count(*) || ' ' || count(*) FILTER (WHERE lp_flags <> 0 OR t_data IS NOT NULL) FROM heap_page_items(get_raw_page('r', 0))")" "5 0"
rdb_is "pageinspect: raw block 1 is data block 0 (its live tuples are r's rows with ctid (0,x))" \
	"$(q p "SELECT string_agg(t_ctid::text, ' ' ORDER BY lp) FROM heap_page_items(get_raw_page('r', 1)) WHERE lp_flags = 1 AND t_xmax = 0")" \
	"$(q p "SELECT string_agg(ctid::text, ' ' ORDER BY ctid) FROM r WHERE ctid < '(1,0)'")"
rdb_is "pageinspect: data pages carry the 8-byte special space (pd_special 8184)" \
	"$(q p "SELECT special FROM page_header(get_raw_page('r', 1))")" "8184"
rdb_expect_error "pageinspect: get_raw_page refuses the file's last block (the last data page)" p \
	"SELECT get_raw_page('r', $N)" "block number $N is out of range for relation \"r\""
rdb_expect_error "pageinspect: heap_page_item_attrs refuses rustydb (only heap AM is supported)" p \
	"SELECT * FROM heap_page_item_attrs(get_raw_page('r', 1), 'r'::regclass)" "only heap AM is supported"
rdb_expect_error "pageinspect: tuple_data_split refuses rustydb (only heap AM is supported)" p \
	"SELECT tuple_data_split('r'::regclass, t_data, t_infomask, t_infomask2, t_bits) FROM heap_page_items(get_raw_page('r', 1))" \
	"only heap AM is supported"
rdb_is "pageinspect: raw tuples of encrypted e hold no plaintext (its heap twin's do)" \
	"$(q p "SELECT (SELECT count(*) FROM heap_page_items(get_raw_page('e', 1)) WHERE position('secret'::bytea IN t_data) > 0) || ' ' ||
	        (SELECT count(*) > 0 FROM heap_page_items(get_raw_page('eh', 0)) WHERE position('secret'::bytea IN t_data) > 0)")" "0 true"
intact p "pageinspect"

# ---- pgstattuple
rdb_expect_error "pgstattuple: pgstattuple(r) refused (only heap AM is supported)" p \
	"SELECT * FROM pgstattuple('r')" "only heap AM is supported"
rdb_expect_error "pgstattuple: pgstattuple_approx(r) refused (only heap AM is supported)" p \
	"SELECT * FROM pgstattuple_approx('r')" "only heap AM is supported"
rdb_is "pgstattuple: pg_relpages(r) counts data pages (pg_relation_size / 8192 - 1, the metapage left out)" \
	"$(q p "SELECT pg_relpages('r') || ' ' || (pg_relation_size('r') / 8192 - 1)")" "$N $N"
# (rows updated in place add no index entries: r_pkey has no more leaf pages than h_pkey)
rdb_is "pgstattuple: pgstatindex(r_pkey) works: h_pkey's height, at most its leaf pages" \
	"$(q p "SELECT r.tree_level = h.tree_level AND r.leaf_pages BETWEEN 1 AND h.leaf_pages
		FROM pgstatindex('r_pkey') r, pgstatindex('h_pkey') h")" "t"
intact p "pgstattuple"

# ---- pg_surgery
rdb_expect_error "pg_surgery: heap_force_kill(r) refused (only heap AM is supported)" p \
	"SELECT heap_force_kill('r', ARRAY['(0,1)']::tid[])" "only heap AM is supported"
rdb_expect_error "pg_surgery: heap_force_freeze(r) refused (only heap AM is supported)" p \
	"SELECT heap_force_freeze('r', ARRAY['(0,1)']::tid[])" "only heap AM is supported"
intact p "pg_surgery"

# ---- amcheck and pg_amcheck
rdb_expect_error "amcheck: verify_heapam(r) refused (only heap AM is supported)" p \
	"SELECT * FROM verify_heapam('r')" "only heap AM is supported"
rdb_is "amcheck: bt_index_check(r_pkey, heapallindexed) and bt_index_parent_check pass" \
	"$(q p "SELECT 'ok' FROM (SELECT bt_index_check('r_pkey', true), bt_index_parent_check('r_pkey', true, true)) s")" "ok"
rdb_is "amcheck: bt_index_check(e_pkey, heapallindexed) passes on the encrypted table" \
	"$(q p "SELECT 'ok' FROM (SELECT bt_index_check('e_pkey', true)) s")" "ok"
# heapallindexed really reads the rustydb table: a row the index never got is found
rdb_psql p "CREATE TABLE ai (id int PRIMARY KEY) USING rustydb; INSERT INTO ai SELECT generate_series(1, 100)"
rdb_psql p "UPDATE pg_index SET indisready = false WHERE indexrelid = 'ai_pkey'::regclass"
rdb_psql p "INSERT INTO ai VALUES (1000)"
rdb_psql p "UPDATE pg_index SET indisready = true WHERE indexrelid = 'ai_pkey'::regclass"
rdb_expect_error "amcheck: heapallindexed finds a rustydb row missing from the index, by its ctid" p \
	"SELECT bt_index_check('ai_pkey', true)" \
	'heap tuple (0,101) from table "ai" lacks matching index tuple within index "ai_pkey"'
rdb_psql p "DROP TABLE ai"
amc() { "$RDB_BINDIR/pg_amcheck" -h "$(rdb_sock p)" -p "$(rdb_port p)" -U postgres "$@" postgres 2>&1; }
out=$(amc -t r) && st=0 || st=$?
rdb_is "pg_amcheck -t r: exits 1, no heap tables to check matching \"r\"" \
	"$st $(echo "$out" | grep -c 'error: no heap tables to check matching "r"')" "1 1"
out=$(amc -s public -v --heapallindexed) && st=0 || st=$?
rdb_is "pg_amcheck -s public: passes; checks h, r_pkey and e_pkey, skips the rustydb tables r and e" \
	"$st $(echo "$out" | grep -Ec 'checking heap table "postgres.public.h"|checking btree index "postgres.public.(r|e)_pkey"') $(echo "$out" | grep -Ec 'heap table "postgres.public.(r|e)"')" \
	"0 3 0"
intact p "amcheck"

# ---- pg_visibility: map queries read the map (data block numbers); the
# page-reading ones would read file block N for data block N, and rustydb's
# guard (tools.cpp) refuses them on rustydb tables
twin p "VACUUM (FREEZE) TBL"
N=$(datapages p r)
NH=$(q p "SELECT pg_relpages('h')")
rdb_is "pg_visibility: after VACUUM every data page of r is all-visible in the map" \
	"$(q p "SELECT count(*) FILTER (WHERE all_visible) || '/' || count(*) FROM pg_visibility_map('r')")" "$N/$N"
rdb_is "pg_visibility: VACUUM (FREEZE) sets the all-frozen bit of every data page of r, as of h's" \
	"$(q p "SELECT (SELECT count(*) FILTER (WHERE all_frozen) FROM pg_visibility_map('r')) || ' ' ||
	        (SELECT count(*) FILTER (WHERE all_frozen) FROM pg_visibility_map('h'))")" "$N $NH"
out=$(q p "SELECT count(*) FROM pg_visibility('r')" 2>&1 || true)
rdb_ok "pg_visibility: pg_visibility(r) (it reads file block N for data block N) is refused with rustydb's error" \
	grep -q 'ERROR:  pg_visibility() cannot check rustydb table "r"' <<<"$out"
rdb_is "pg_visibility: ... while pg_visibility(h) still works (pd_all_visible agrees with the map)" \
	"$(q p "SELECT count(*) FROM pg_visibility('h') WHERE all_visible <> pd_all_visible")" "0"
# a committed delete on data block 0: its map bit is cleared, nothing is corrupt
DEL=$(q p "SELECT min(id) FROM r WHERE ctid < '(1,0)'")
twin p "DELETE FROM TBL WHERE id = $DEL"
rdb_is "pg_visibility: data block 0 no longer all-visible after a DELETE there" \
	"$(q p "SELECT all_visible FROM pg_visibility_map('r', 0)")" "f"
out=$(q p "SELECT pg_check_visible(c.oid::regclass) FROM pg_class c WHERE c.relname = 'r'" 2>&1 || true)
rdb_ok "pg_visibility: pg_check_visible(r), the table given by a non-constant argument, is refused (no false corruption report)" \
	grep -q 'ERROR:  pg_check_visible() cannot check rustydb table "r"' <<<"$out"
rdb_is "pg_visibility: ... pg_check_visible(h) reports nothing after the committed DELETE" \
	"$(q p "SELECT coalesce(string_agg(t_ctid::text, ' '), 'none') FROM pg_check_visible('h')")" "none"
out=$(q p "DO \$\$ BEGIN PERFORM * FROM pg_check_frozen('r'); END \$\$" 2>&1 || true)
rdb_ok "pg_visibility: pg_check_frozen(r) called from PL/pgSQL is refused" \
	grep -q 'ERROR:  pg_check_frozen() cannot check rustydb table "r"' <<<"$out"
twin p "VACUUM TBL" "SELECT pg_truncate_visibility_map('TBL')"
rdb_is "pg_visibility: pg_truncate_visibility_map empties the map" \
	"$(q p "SELECT count(*) FILTER (WHERE all_visible) FROM pg_visibility_map('r')")" "0"
twin p "VACUUM TBL"
N=$(datapages p r)
NH=$(q p "SELECT pg_relpages('h')")
rdb_is "pg_visibility: the next VACUUM after pg_truncate_visibility_map rebuilds the map (r as h)" \
	"$(q p "SELECT (SELECT count(*) FILTER (WHERE all_visible) FROM pg_visibility_map('r')) || ' ' ||
	        (SELECT count(*) FILTER (WHERE all_visible) FROM pg_visibility_map('h'))")" "$N $NH"
rdb_is "pg_visibility: index-only scans of r return h's answer afterwards" \
	"$(q p "SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*), sum(id) FROM r WHERE id > 0")" \
	"$(q p "SELECT count(*), sum(id) FROM h WHERE id > 0")"
intact p "pg_visibility"

# ---- pg_freespacemap: one row per file block, the metapage first
N=$(datapages p r)
rdb_is "pg_freespacemap: pg_freespace(r) has a row per file block (data pages + 1), blkno 0 the metapage with 0 bytes" \
	"$(q p "SELECT count(*) || ' ' || max(blkno) || ' ' || (SELECT avail FROM pg_freespace('r') WHERE blkno = 0) FROM pg_freespace('r')")" \
	"$((N + 1)) $N 0"
rdb_is "pg_freespacemap: pg_freespace(r, blkno) takes file block numbers (the last data page is blkno $N)" \
	"$(q p "SELECT pg_freespace('r', $N) > 0")" "t"
intact p "pg_freespacemap"

# ---- pg_walinspect: rustydb's records, block references in file blocks
DBOID=$(q p "SELECT oid FROM pg_database WHERE datname = current_database()")
FNODE=$(q p "SELECT pg_relation_filenode('r')")
L0=$(q p "SELECT pg_current_wal_lsn()")
DEL=$(q p "SELECT min(id) FROM r WHERE ctid < '(1,0)'")
twin p "INSERT INTO TBL VALUES (100001, 'wal', 1)" "UPDATE TBL SET n = n + 1 WHERE id = 3001 - 1" "DELETE FROM TBL WHERE id = $DEL"
L1=$(q p "SELECT pg_current_wal_lsn()")
rdb_is "pg_walinspect: INSERT, UPDATE and DELETE records of resource manager rustydb" \
	"$(q p "SELECT string_agg(DISTINCT record_type, ',' ORDER BY record_type) FROM pg_get_wal_records_info('$L0', '$L1')
	        WHERE resource_manager = 'rustydb' AND record_type IN ('INSERT', 'UPDATE', 'DELETE')")" "DELETE,INSERT,UPDATE"
rdb_is "pg_walinspect: every rustydb record has a description" \
	"$(q p "SELECT count(*) > 0 AND bool_and(description <> '') FROM pg_get_wal_records_info('$L0', '$L1') WHERE resource_manager = 'rustydb'")" "t"
rdb_is "pg_walinspect: the DELETE of a row in data block 0 references file block 1 of r" \
	"$(q p "SELECT substring(block_ref FROM 'rel [0-9]+/[0-9]+/[0-9]+ fork main blk [0-9]+') FROM pg_get_wal_records_info('$L0', '$L1')
	        WHERE resource_manager = 'rustydb' AND record_type = 'DELETE' AND block_ref LIKE '%/$DBOID/$FNODE %'")" \
	"rel 1663/$DBOID/$FNODE fork main blk 1"
rdb_is "pg_walinspect: pg_get_wal_stats counts the rustydb records" \
	"$(q p "SELECT count > 0 FROM pg_get_wal_stats('$L0', '$L1') WHERE \"resource_manager/record_type\" = 'rustydb'")" "t"
intact p "pg_walinspect"

# ---- pg_dump / pg_restore, directory format, two jobs each
DUMP=$RDB_WORK/dump
rdb_psql p "CREATE DATABASE restored"
rdb_psql p "CREATE DATABASE restored_enc"
PGCONN=(-h "$(rdb_sock p)" -p "$(rdb_port p)" -U postgres)
rdb_ok "pg_dump -Fd -j 2 of the database" "$RDB_BINDIR/pg_dump" "${PGCONN[@]}" -Fd -j 2 -f "$DUMP" postgres
rdb_ok "pg_restore -j 2 into a new database" "$RDB_BINDIR/pg_restore" "${PGCONN[@]}" -j 2 -d restored "$DUMP"
AMS="SELECT string_agg(c.relname || ':' || a.amname, ' ' ORDER BY c.relname) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
	WHERE c.relname IN ('r', 'h', 'e', 'eh') AND c.relnamespace = 'public'::regnamespace"
rdb_is "pg_restore: r and e are restored as rustydb tables, h and eh as heap" \
	"$(RDB_DB=restored q p "$AMS")" "e:rustydb eh:heap h:heap r:rustydb"
rdb_is "pg_restore: the restored r and e hold the original rows" "$(RDB_DB=restored q p "$SIGS")" "$(q p "$SIGS")"
rdb_is "pg_restore: the restored r and e pass verify_table, their primary keys check" \
	"$(RDB_DB=restored q p "$VERIFY; SELECT 'ok' FROM (SELECT bt_index_check('r_pkey', true), bt_index_check('e_pkey', true)) s")" "0
ok"
rdb_is "pg_restore: encrypted = true survives (kept in reloptions, docs/tde.md), e comes back encrypted" \
	"$(RDB_DB=restored q p "SELECT encrypted FROM rustydb.metapage('e')")" "t"
rdb_ok "pg_restore -j 2 with rustydb.encrypt_new_tables = on (PGOPTIONS)" \
	env PGOPTIONS="-c rustydb.encrypt_new_tables=on" "$RDB_BINDIR/pg_restore" "${PGCONN[@]}" -j 2 -d restored_enc "$DUMP"
rdb_is "pg_restore with rustydb.encrypt_new_tables = on: e encrypted again, and so is r" \
	"$(RDB_DB=restored_enc q p "SELECT (SELECT encrypted FROM rustydb.metapage('e')) || ' ' || (SELECT encrypted FROM rustydb.metapage('r'))")" "true true"
rdb_is "pg_restore with encrypt_new_tables: rows equal, encryption verifies" \
	"$(RDB_DB=restored_enc q p "$SIGS; SELECT bool_and(ok) FROM rustydb.verify_encryption('e')")" "$(q p "$SIGS")
t"
intact p "pg_dump"

# ---- postgres_fdw through a loopback server
rdb_psql p "CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw
	        OPTIONS (host '$(rdb_sock p)', port '$(rdb_port p)', dbname 'postgres');
	CREATE USER MAPPING FOR postgres SERVER loop OPTIONS (user 'postgres');
	CREATE FOREIGN TABLE fr (id int, v text, n bigint) SERVER loop OPTIONS (table_name 'r');
	CREATE FOREIGN TABLE fh (id int, v text, n bigint) SERVER loop OPTIONS (table_name 'h');
	CREATE FOREIGN TABLE fe (id int, v text, n bigint) SERVER loop OPTIONS (table_name 'e');
	CREATE FOREIGN TABLE feh (id int, v text, n bigint) SERVER loop OPTIONS (table_name 'eh')"
rdb_is "postgres_fdw: SELECT through fr and fe returns r's and e's rows" \
	"$(q p "SELECT ($(rowsig fr)) || ' / ' || ($(rowsig fe))")" "$(q p "$SIGS")"
twin p "INSERT INTO fTBL SELECT g, 'fdw ' || g, g FROM generate_series(200001, 200300) g" \
	"UPDATE fTBL SET v = v || ' upd', n = n * 2 WHERE id % 11 = 0" \
	"DELETE FROM fTBL WHERE id % 17 = 0"
etwin p "INSERT INTO fTBL VALUES (5000, 'secret fdw', 1)" "UPDATE fTBL SET n = 0 WHERE id < 100" "DELETE FROM fTBL WHERE id % 19 = 0"
twin p "ANALYZE fTBL" "ANALYZE TBL"
N=$(datapages p r)
rdb_is "postgres_fdw: ANALYZE fr gives the same reltuples as fh" \
	"$(q p "SELECT reltuples FROM pg_class WHERE relname = 'fr'")" "$(q p "SELECT reltuples FROM pg_class WHERE relname = 'fh'")"
rdb_is "postgres_fdw: ANALYZE fr sets relpages = pg_relation_size(r) / 8192 = r's data pages + 1 (the metapage); r.relpages = data pages" \
	"$(q p "SELECT (SELECT relpages FROM pg_class WHERE relname = 'fr') || ' ' || (SELECT relpages FROM pg_class WHERE relname = 'r')")" \
	"$((N + 1)) $N"
rdb_is "postgres_fdw: the planner's row estimate for fr is fh's" \
	"$(q p "EXPLAIN SELECT * FROM fr" | grep -Eo 'rows=[0-9]+')" "$(q p "EXPLAIN SELECT * FROM fh" | grep -Eo 'rows=[0-9]+')"
rdb_is "postgres_fdw: ANALYZE fh sets relpages = h's pages" \
	"$(q p "SELECT (SELECT relpages FROM pg_class WHERE relname = 'fh') = pg_relpages('h')")" "t"
intact p "postgres_fdw"

# ---- pg_partman 4.7 in a database whose default access method is rustydb
rdb_psql p "CREATE DATABASE pm"
RDB_DB=pm rdb_psql p "CREATE EXTENSION rustydb; CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman"
# (sessions started after this see it; the extension must exist first)
rdb_psql p "ALTER DATABASE pm SET default_table_access_method = rustydb"
pm() { RDB_DB=pm q p "$1"; }
CHILD_AMS="SELECT string_agg(c.relname || ':' || a.amname, ' ' ORDER BY c.relname) FROM pg_inherits i
	JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_am a ON a.oid = c.relam WHERE i.inhparent = 'PARENT'::regclass"
rdb_is "pg_partman: version 4.7" "$(pm "SELECT extversion LIKE '4.7.%' FROM pg_extension WHERE extname = 'pg_partman'")" "t"
pm "CREATE TABLE items (id bigint NOT NULL, v text) PARTITION BY RANGE (id);
	CREATE INDEX ON items (id);
	CREATE TABLE items_twin (id bigint NOT NULL, v text) USING heap" >/dev/null
rdb_is "pg_partman: create_parent by id" \
	"$(pm "SELECT partman.create_parent('public.items', 'id', 'native', '100', p_premake := 3, p_start_partition := '0')")" "t"
rdb_is "pg_partman: the child partitions (and the default) are rustydb tables" "$(pm "${CHILD_AMS//PARENT/items}")" \
	"items_default:rustydb items_p0:rustydb items_p100:rustydb items_p200:rustydb items_p300:rustydb"
rdb_is "pg_partman: its template table is a rustydb table" \
	"$(pm "SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.oid = 'partman.template_public_items'::regclass")" "rustydb"
for stmt in "INSERT INTO TBL SELECT g, 'v' || g FROM generate_series(0, 349) g" \
	"UPDATE TBL SET v = v || '!' WHERE id % 3 = 0" "DELETE FROM TBL WHERE id % 10 = 5"; do
	pm "${stmt//TBL/items}; ${stmt//TBL/items_twin}" >/dev/null
done
rdb_is "pg_partman: rows routed to the children, none to the default" \
	"$(pm "SELECT string_agg(p || ':' || n, ' ' ORDER BY p) FROM (SELECT tableoid::regclass::text p, count(*) n FROM items GROUP BY 1) s")" \
	"items_p0:90 items_p100:90 items_p200:90 items_p300:45"
rdb_is "pg_partman: run_maintenance() runs" "$(pm "SELECT 'ok' FROM (SELECT partman.run_maintenance()) s")" "ok"
rdb_is "pg_partman: run_maintenance() made rustydb partitions ahead of the data" "$(pm "${CHILD_AMS//PARENT/items}")" \
	"items_default:rustydb items_p0:rustydb items_p100:rustydb items_p200:rustydb items_p300:rustydb items_p400:rustydb items_p500:rustydb items_p600:rustydb"
for stmt in "INSERT INTO TBL SELECT g, 'w' || g FROM generate_series(350, 620) g" "UPDATE TBL SET id = id + 100 WHERE id BETWEEN 90 AND 95"; do
	pm "${stmt//TBL/items}; ${stmt//TBL/items_twin}" >/dev/null
done
pm "INSERT INTO items VALUES (2005, 'far'), (2050, 'far'); INSERT INTO items_twin VALUES (2005, 'far'), (2050, 'far')" >/dev/null
rdb_is "pg_partman: rows beyond the partitions go to the default" \
	"$(pm "SELECT string_agg(DISTINCT tableoid::regclass::text, ' ') FROM items WHERE id >= 2000")" "items_default"
rdb_is "pg_partman: partition_data_id() moves them to a new rustydb partition" \
	"$(pm "SELECT partman.partition_data_id('public.items');
	        SELECT string_agg(DISTINCT tableoid::regclass::text || ':' || (SELECT amname FROM pg_am a JOIN pg_class c ON a.oid = c.relam
	        WHERE c.oid = tableoid), ' ') FROM items WHERE id >= 2000")" "2
items_p2000:rustydb"
rdb_is "pg_partman: items holds the rows of its heap twin (after a cross-partition UPDATE and partition_data_id)" \
	"$(pm "SELECT count(*) || ' ' || md5(string_agg(id || v, ',' ORDER BY id, v)) FROM items")" "$(pm "SELECT count(*) || ' ' || md5(string_agg(id || v, ',' ORDER BY id, v)) FROM items_twin")"
rdb_is "pg_partman: verify_table finds nothing in any partition" \
	"$(pm "SELECT count(*) FROM pg_inherits i, rustydb.verify_table(i.inhrelid) v WHERE i.inhparent = 'items'::regclass")" "0"
rdb_is "pg_partman: create_parent by time (daily)" \
	"$(pm "CREATE TABLE ev (at timestamptz NOT NULL, v text) PARTITION BY RANGE (at);
	        SELECT partman.create_parent('public.ev', 'at', 'native', 'daily', p_premake := 2)")" "t"
rdb_is "pg_partman: time partitions are rustydb tables; a row for now() goes to a child, not the default" \
	"$(pm "SELECT count(*) FILTER (WHERE a.amname <> 'rustydb') FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	        JOIN pg_am a ON a.oid = c.relam WHERE i.inhparent = 'ev'::regclass;
	        INSERT INTO ev VALUES (now(), 'x'); SELECT tableoid::regclass::text <> 'ev_default' FROM ev")" "0
t"
rdb_is "pg_partman: run_maintenance() again" "$(pm "SELECT 'ok' FROM (SELECT partman.run_maintenance()) s")" "ok"
intact p "pg_partman"

# ---- pg_checksums, offline, on the initdb -k cluster
rdb_is "pg_checksums: the main node has data checksums (initdb -k)" "$(q p "SHOW data_checksums")" "on"
RFILE=$(q p "SELECT pg_relation_filepath('r')")
EFILE=$(q p "SELECT pg_relation_filepath('e')")
N=$(datapages p r)
rdb_node_stop p
out=$(rdb_as_server "$RDB_BINDIR/pg_checksums" --check -v -D "$(rdb_dir p)/data" 2>&1) && st=0 || st=$?
rdb_is "pg_checksums --check passes on a cluster with rustydb tables" \
	"$st $(echo "$out" | grep -Ec '^Bad checksums: +0$')" "0 1"
rdb_is "pg_checksums --check verified r's and e's files" \
	"$(echo "$out" | grep -Ec "checksums verified in file \".*/($RFILE|$EFILE)\"")" "2"
rdb_node_start p

# ---- pg_prewarm, on the freshly started server (r not in shared buffers yet)
BUFS="SELECT coalesce(string_agg(relblocknumber::text, ',' ORDER BY relblocknumber), 'none') FROM pg_buffercache
	WHERE relfilenode = pg_relation_filenode('r') AND relforknumber = 0
	  AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
rdb_is "pg_prewarm: r has no block in shared buffers after the restart" "$(q p "$BUFS")" "none"
rdb_is "pg_prewarm(r) prewarms as many blocks as r has data pages" "$(q p "SELECT pg_prewarm('r')")" "$N"
rdb_is "pg_prewarm(r) loads file blocks 0 .. data pages - 1: the metapage, and not the last data page" \
	"$(q p "$BUFS")" "$(seq -s, 0 $((N - 1)))"
rdb_expect_error "pg_prewarm: the last data page cannot be named (block numbers stop at data pages - 1)" p \
	"SELECT pg_prewarm('r', 'buffer', 'main', 0, $N)" "ending block number must be between 0 and $((N - 1))"
rdb_is "pageinspect: page_checksum(raw block 1, 1) is its stored checksum (checksums cover file block numbers)" \
	"$(q p "SELECT page_checksum(get_raw_page('r', 1), 1) = checksum FROM page_header(get_raw_page('r', 1))")" "t"
intact p "pg_checksums and pg_prewarm"

# ---- pg_checksums --enable on a stopped cluster with rustydb tables
rdb_node_init c
rdb_node_conf c "rustydb.keyring_file = '$RING'"
rdb_node_conf c "rustydb.plaintext_index_action = log"
rdb_node_conf c "shared_preload_libraries = 'rustydb,pg_prewarm'"
rdb_node_conf c "pg_prewarm.autoprewarm_interval = 0"
rdb_node_start c
rdb_psql c "CREATE EXTENSION rustydb;
	CREATE TABLE r (id int PRIMARY KEY, v text, n bigint) USING rustydb;
	CREATE TABLE e (id int PRIMARY KEY, v text, n bigint) USING rustydb WITH (encrypted = true);
	INSERT INTO r SELECT g, 'row ' || g, g FROM generate_series(1, 5000) g;
	INSERT INTO e SELECT g, 'secret ' || g, g FROM generate_series(1, 2000) g;
	UPDATE r SET n = 0 WHERE id % 4 = 0; DELETE FROM e WHERE id % 5 = 0"
rdb_is "pg_checksums --enable: the cluster starts without checksums" "$(q c "SHOW data_checksums")" "off"
BEFORE=$(q c "$SIGS")
rdb_psql c "CREATE EXTENSION pg_buffercache"
NC=$(datapages c r)
CDB=$(q c "SELECT oid FROM pg_database WHERE datname = current_database()")
CNODE=$(q c "SELECT pg_relation_filenode('r')")
rdb_is "autoprewarm: every file block of r (0 .. $NC) is in shared buffers before the shutdown" \
	"$(q c "${BUFS}")" "$(seq -s, 0 "$NC")"
rdb_node_stop c
rdb_is "autoprewarm: the shutdown dumped every file block of r, the last data page ($NC) too" \
	"$(grep -Ec "^$CDB,[0-9]+,$CNODE,0,[0-9]+\$" "$(rdb_dir c)/data/autoprewarm.blocks") $(grep -c "^$CDB,[0-9]*,$CNODE,0,$NC\$" "$(rdb_dir c)/data/autoprewarm.blocks")" \
	"$((NC + 1)) 1"
rdb_ok "pg_checksums --enable on the stopped cluster" quiet rdb_as_server "$RDB_BINDIR/pg_checksums" --enable -D "$(rdb_dir c)/data"
out=$(rdb_as_server "$RDB_BINDIR/pg_checksums" --check -D "$(rdb_dir c)/data" 2>&1) && st=0 || st=$?
rdb_is "pg_checksums --check passes after --enable" "$st $(echo "$out" | grep -Ec '^Bad checksums: +0$')" "0 1"
rdb_node_start c
# the autoprewarm worker loads r's blocks in the background: until it has
# loaded as many as r has data pages
prewarmed() { [ "$(q c "SELECT count(*) FROM pg_buffercache WHERE relfilenode = $CNODE AND relforknumber = 0")" -ge "$NC" ]; }
rdb_wait_for "autoprewarm to load r" 120 prewarmed
rdb_is "autoprewarm: at startup it loads file blocks 0 .. data pages - 1 of r: the metapage, and not the last data page" \
	"$(q c "${BUFS}")" "$(seq -s, 0 $((NC - 1)))"
rdb_is "pg_checksums --enable: checksums on, r and e read back (from disk) unchanged" \
	"$(q c "SHOW data_checksums; $SIGS")" "on
$BEFORE"
rdb_is "pg_checksums --enable: verify_table finds nothing, e's encryption verifies" \
	"$(q c "$VERIFY; SELECT bool_and(ok) FROM rustydb.verify_encryption('e')")" "0
t"
rdb_node_stop c

# ---- pg_rewind: primary p, streaming standby s promoted, both written, p
# rewound against s and started as its standby
rdb_standby_create p s
twin p "UPDATE TBL SET v = v || ' before failover' WHERE id % 5 = 1"
etwin p "UPDATE TBL SET v = v || ' before failover' WHERE id % 5 = 1"
rdb_wait_replay p s
rdb_is "pg_rewind: s promoted" "$(q s "SELECT pg_promote(true, 60)")" "t"
rdb_psql s "CHECKPOINT"
# the new timeline on s: every change to both twins
twin s "UPDATE TBL SET n = n + 1000 WHERE id % 4 = 0" "INSERT INTO TBL SELECT g, 'on s', g FROM generate_series(300001, 302000) g" \
	"DELETE FROM TBL WHERE id % 6 = 0"
etwin s "UPDATE TBL SET v = 'on s' WHERE id % 3 = 1" "DELETE FROM TBL WHERE id % 8 = 0"
# the old primary goes on alone: changes that must disappear
rdb_psql p "UPDATE r SET v = 'lost' WHERE id % 4 = 1"
rdb_psql p "INSERT INTO r SELECT g, 'lost', g FROM generate_series(400001, 406000) g"
rdb_psql p "DELETE FROM e WHERE id % 2 = 0"
rdb_psql p "INSERT INTO e SELECT g, 'lost', g FROM generate_series(400001, 401000) g"
rdb_psql p "CREATE TABLE lost (a int) USING rustydb; INSERT INTO lost SELECT generate_series(1, 1000)"
rdb_psql p "VACUUM r"
rdb_psql p "VACUUM e"
rdb_psql p "CHECKPOINT"
rdb_node_stop p
rdb_as_server cp "$(rdb_dir p)/data/postgresql.conf" "$(rdb_dir p)/postgresql.conf.own"
rdb_ok "pg_rewind of the old primary against the promoted standby" \
	quiet rdb_as_server "$RDB_BINDIR/pg_rewind" -D "$(rdb_dir p)/data" -R \
	--source-server="host=$(rdb_sock s) port=$(rdb_port s) user=postgres dbname=postgres"
# pg_rewind copied s's configuration: p keeps its own, and follows s without a slot
rdb_as_server cp "$(rdb_dir p)/postgresql.conf.own" "$(rdb_dir p)/data/postgresql.conf"
rdb_as_server sed -i '/^primary_slot_name/d' "$(rdb_dir p)/data/postgresql.auto.conf"
rdb_node_start p
rdb_wait_replay s p
rdb_is "pg_rewind: the old primary runs as a standby of s" "$(q p "SELECT pg_is_in_recovery()")" "t"
ALL="$SIGS; $HSIGS"
rdb_is "pg_rewind: r, e (and their twins) on the rewound node are the new primary's" "$(q p "$ALL")" "$(q s "$ALL")"
rdb_is "pg_rewind: the old primary's own changes are gone" \
	"$(q p "SELECT to_regclass('lost') IS NULL, (SELECT count(*) FROM r WHERE v = 'lost' OR id > 400000), (SELECT count(*) FROM e WHERE v = 'lost')")" "t|0|0"
VMS="SELECT string_agg(blkno || ':' || all_visible, ' ' ORDER BY blkno) FROM pg_visibility_map('r')
	UNION ALL SELECT string_agg(blkno || ':' || all_visible, ' ' ORDER BY blkno) FROM pg_visibility_map('e')"
rdb_is "pg_rewind: the visibility maps of r and e on the rewound node are the new primary's" "$(q p "$VMS")" "$(q s "$VMS")"
IDX="SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT id, n FROM r WHERE id BETWEEN 290 AND 310 ORDER BY id"
rdb_is "pg_rewind: index scans of r on the rewound node give the new primary's rows" "$(q p "$IDX")" "$(q s "$IDX")"
rdb_is "pg_rewind: e's encryption verifies on the rewound node" "$(q p "SELECT bool_and(ok) FROM rustydb.verify_encryption('e')")" "t"
intact p "pg_rewind (rewound node)"
twin s "UPDATE TBL SET n = n - 1 WHERE id % 10 = 3" "INSERT INTO TBL SELECT g, 'after rewind', g FROM generate_series(500001, 500500) g"
etwin s "UPDATE TBL SET n = n - 1 WHERE id % 10 = 3"
rdb_wait_replay s p
rdb_is "pg_rewind: replication from s resumed, same rows" "$(q p "$ALL")" "$(q s "$ALL")"
intact p "pg_rewind (rewound node, replication resumed)"
rdb_ok "no server logged a PANIC, a crash or an inconsistent page" \
	bash -c "! grep -Eq 'PANIC|terminated by signal|inconsistent page' '$(rdb_dir p)/server.log' '$(rdb_dir s)/server.log' '$(rdb_dir c)/server.log'"

rdb_summary
