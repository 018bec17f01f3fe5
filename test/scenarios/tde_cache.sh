#!/usr/bin/env bash
# The shared cache of opened payloads (rustydb.tde_cache_size, docs/tde.md):
# stale-plaintext hunts. An encrypted table e and its heap twin h get the
# same statements; after each step the cache is warm (every page of e was
# read before the step) and e, read through a sequential, an index, a
# bitmap and a TID scan, must hold exactly what h holds:
#  - updates (HOT and not), deletes, on-access pruning that re-seals groups,
#    VACUUM, VACUUM FULL, rotate_table_key, TRUNCATE, TRUNCATE of a table
#    created in the same transaction (same relfilenode, new rows), DROP
#    and CREATE again;
#  - a hot standby whose queries read through its own cache while it
#    replays the same changes;
#  - a table larger than the cache is read through a ring and does not
#    flush the entries of a small table read often;
#  - with the key provider removed, a new session gets the key error
#    although the cache holds the table's plaintext, and the cache empties;
#  - admission: a first scan keeps nothing, the second fills the cache; a
#    fetch of a small row does not look at it (rustydb.tde_cache_min_read);
#  - the default size (-1): a quarter of shared_buffers with a key
#    provider, no cache without one.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

RING=$(rdb_keyring_create "$RDB_WORK/tde_cache_keys")
rdb_node_init tc_p
rdb_node_conf tc_p "rustydb.keyring_file = '$RING'"
rdb_node_conf tc_p "rustydb.tde_cache_size = '16MB'"
# every read uses the cache, single rows too (the default leaves a fetch of
# fewer than 1kB to the cipher; checked at the end)
rdb_node_conf tc_p "rustydb.tde_cache_min_read = 0"
rdb_node_conf tc_p "autovacuum = off"
rdb_node_start tc_p
rdb_psql tc_p "CREATE EXTENSION rustydb"
q() { rdb_psql tc_p "$1" 2>&1 || true; }
stat() { q "SELECT $1 FROM rustydb.tde_cache"; }

rdb_is "the cache has the configured size" "$(stat "size_bytes / 1048576")" 16
rdb_is "rustydb.memory shows the cache" \
	"$(q "SELECT \"limit\", limit_setting FROM rustydb.memory WHERE name = 'rustydb tde cache'")" \
	"2048|rustydb.tde_cache_size"

rdb_psql tc_p "CREATE TABLE e (id int PRIMARY KEY, v text, n int) USING rustydb WITH (encrypted = true)"
rdb_psql tc_p "CREATE TABLE h (id int PRIMARY KEY, v text, n int) USING heap"
both() { # SQL with @T for the table
	rdb_psql tc_p "${1//@T/e}" >/dev/null
	rdb_psql tc_p "${1//@T/h}" >/dev/null
}
both "COPY @T FROM PROGRAM \$\$seq 1 6000 | awk '{print \$1 \"\trow \" \$1 \"\t\" \$1 % 97}'\$\$"
both "INSERT INTO @T SELECT g, 'single ' || g, g % 89 FROM generate_series(6001, 6400) g"

CONTENT="SELECT md5(string_agg(id || ':' || v || ':' || n, ',' ORDER BY id))"
# every access path of node N ("" for the primary) on e against h on the primary
paths() {
	local node=${1:-tc_p}
	rdb_psql "$node" "SET enable_indexscan = off; SET enable_bitmapscan = off; $CONTENT FROM e" 2>&1 | tail -1
	rdb_psql "$node" "SET enable_seqscan = off; SET enable_bitmapscan = off;
		$CONTENT FROM e WHERE id BETWEEN 1 AND 1000000" 2>&1 | tail -1
	rdb_psql "$node" "SET enable_seqscan = off; SET enable_indexscan = off;
		$CONTENT FROM e WHERE id BETWEEN 1 AND 1000000" 2>&1 | tail -1
	rdb_psql "$node" "$CONTENT FROM e WHERE ctid = ANY (ARRAY(SELECT ctid FROM e))" 2>&1 | tail -1
}
want() {
	local c
	c=$(q "$CONTENT FROM h")
	printf '%s\n%s\n%s\n%s' "$c" "$c" "$c" "$c"
}
check() { # step description: e (warm) against h on every path
	rdb_is "$1: sequential, index, bitmap and TID scans of e give h's rows" "$(paths)" "$(want)"
}
warm() { paths "${1:-tc_p}" >/dev/null; }

warm
ins0=$(stat inserts)
rdb_ok "reading e filled the cache ($ins0 pages)" test "$ins0" -gt 20
hits0=$(stat hits)
warm
rdb_ok "reading e again hits the cache ($(($(stat hits) - hits0)) rows)" \
	test "$(($(stat hits) - hits0))" -ge 25000
check "after loading"
# parallel workers take the leader's settings (each first reset to its boot
# value): that must not look like a removed key provider
inv=$(stat invalidations)
used=$(stat used_entries)
rdb_is "a parallel scan of e" "$(q "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
	SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
	SELECT count(*) FROM e")" 6400
rdb_is "... evicted nothing" "$(stat invalidations) $(stat used_entries)" "$inv $used"

warm
both "UPDATE @T SET n = n + 1000 WHERE id % 7 = 0"
check "after HOT updates"
warm
both "UPDATE @T SET v = v || ' moved', id = id + 10000 WHERE id % 11 = 0"
check "after non-HOT updates of the key"
warm
both "DELETE FROM @T WHERE id % 13 = 0"
check "after deletes"
# on-access pruning: HOT updates of the same rows, the cache warm between
# them; pruning frees the dead versions' line pointers (re-sealing their
# groups' survivors) and the next updates reuse them for other values of
# the same length
for i in 1 2 3 4 5; do
	both "UPDATE @T SET n = n + 1 WHERE id % 5 = 1"
	check "after HOT updates and on-access pruning, round $i"
done
warm
both "VACUUM @T"
check "after VACUUM"
# line pointers VACUUM freed, reused by new rows of the same shapes
both "INSERT INTO @T SELECT g + 30000, 'row ' || g, g % 97 FROM generate_series(1, 3000) g"
check "after inserts into the space VACUUM freed"
warm
inv=$(stat invalidations)
both "VACUUM FULL @T"
check "after VACUUM FULL"
rdb_ok "VACUUM FULL evicted the old file's entries" test "$(stat invalidations)" -gt "$inv"
warm
inv=$(stat invalidations)
rdb_psql tc_p "SELECT rustydb.rotate_table_key('e')" >/dev/null
check "after rotate_table_key"
rdb_ok "rotate_table_key evicted the old file's entries" test "$(stat invalidations)" -gt "$inv"
warm
both "UPDATE @T SET v = 'after rotation ' || id WHERE id % 3 = 0"
check "after updates under the new key"
warm
both "TRUNCATE @T"
both "COPY @T FROM PROGRAM \$\$seq 1 3000 | awk '{print \$1 \"\tsecond life \" \$1 \"\t\" \$1 % 31}'\$\$"
check "after TRUNCATE and a new COPY"
# the same relfilenode with other rows: TRUNCATE of a table created in the transaction
same=$(rdb_psql tc_p "BEGIN;
	CREATE TABLE x (id int, v text) USING rustydb WITH (encrypted = true);
	INSERT INTO x SELECT g, 'first ' || g FROM generate_series(1, 2000) g;
	SELECT count(*) FROM x WHERE v LIKE 'first%';
	SELECT count(*) FROM x WHERE v LIKE 'first%';
	CREATE TEMP TABLE fn AS SELECT pg_relation_filenode('x') AS f;
	TRUNCATE x;
	INSERT INTO x SELECT g, 'second ' || g FROM generate_series(1, 2000) g;
	SELECT count(*) FILTER (WHERE v LIKE 'second%'), count(*) FROM x;
	SELECT (SELECT f FROM fn) = pg_relation_filenode('x');
	COMMIT" | tr '\n' ' ')
rdb_is "TRUNCATE in the creating transaction keeps the file and reads only the new rows" \
	"$same" "2000 2000 2000|2000 t "
# DROP and CREATE again: the new table's first reads cannot see the old plaintext
warm
inv=$(stat invalidations)
rdb_psql tc_p "DROP TABLE e"
rdb_ok "DROP evicted e's entries" test "$(stat invalidations)" -gt "$inv"
rdb_psql tc_p "CREATE TABLE e (id int PRIMARY KEY, v text, n int) USING rustydb WITH (encrypted = true)"
rdb_psql tc_p "INSERT INTO e SELECT id, v, n FROM h"
check "after DROP and CREATE"

# ---- a hot standby reads through its own cache while it replays
rdb_standby_create tc_p tc_s
rdb_wait_replay tc_p tc_s
sq() { rdb_psql tc_s "$1" 2>&1 || true; }
standby_check() {
	rdb_wait_replay tc_p tc_s
	rdb_is "standby, $1: every path of e gives the primary's h" "$(paths tc_s)" "$(want)"
}
warm tc_s
warm tc_s
rdb_ok "the standby's queries hit its cache" test "$(sq "SELECT hits FROM rustydb.tde_cache")" -gt 0
both "UPDATE @T SET n = n + 1 WHERE id % 4 = 0"
standby_check "after updates"
warm tc_s
both "DELETE FROM @T WHERE id % 9 = 0"
standby_check "after deletes"
warm tc_s
both "COPY @T FROM PROGRAM \$\$seq 20001 24000 | awk '{print \$1 \"\tlate \" \$1 \"\t\" \$1 % 7}'\$\$"
warm tc_s
for i in 1 2 3; do
	both "UPDATE @T SET n = n + 1 WHERE id > 20000 AND id % 3 = 0"
	rdb_psql tc_p "SELECT count(*) FROM e" >/dev/null # prune on access on the primary
	standby_check "after COPY, HOT updates and on-access pruning, round $i"
done
warm tc_s
both "VACUUM @T"
standby_check "after VACUUM"
warm tc_s
both "INSERT INTO @T SELECT g + 40000, 'late ' || g, g % 7 FROM generate_series(20001, 22000) g"
standby_check "after inserts into the space VACUUM freed"
warm tc_s
both "VACUUM FULL @T"
standby_check "after VACUUM FULL"
warm tc_s
rdb_psql tc_p "SELECT rustydb.rotate_table_key('e')" >/dev/null
standby_check "after rotate_table_key"
rdb_node_stop tc_s

# ---- a bulk read does not flush the cache
rdb_psql tc_p "CREATE TABLE small (id int, v text) USING rustydb WITH (encrypted = true)"
rdb_psql tc_p "INSERT INTO small SELECT g, repeat('s', 40) FROM generate_series(1, 5000) g"
rdb_psql tc_p "CREATE TABLE big (id int, v text) USING rustydb WITH (encrypted = true)"
rdb_psql tc_p "COPY big FROM PROGRAM \$\$seq 1 250000 | awk '{print \$1 \"\tbig row \" \$1 \" padding padding padding\"}'\$\$"
rdb_ok "big is larger than the cache ($(q "SELECT pg_relation_size('big') / 8192") pages)" \
	test "$(q "SELECT pg_relation_size('big') / 8192 > 2048")" = t
for _ in 1 2 3; do q "SELECT count(*) FROM small WHERE v <> ''" >/dev/null; done
q "SET max_parallel_workers_per_gather = 0; SELECT count(*) FROM big WHERE v <> ''" >/dev/null
q "SET max_parallel_workers_per_gather = 0; SELECT count(*) FROM big WHERE v <> ''" >/dev/null
m0=$(stat misses)
rdb_is "small reads right after two scans of big" \
	"$(q "SELECT count(*) FROM small WHERE v = repeat('s', 40)")" 5000
rdb_is "small's entries survived the bulk reads (no miss)" "$(($(stat misses) - m0))" 0
rdb_ok "the cache is full but not only of big" test "$(stat used_entries)" -le 2048

# ---- the key provider removed, with a warm cache
warm
rdb_psql tc_p "ALTER SYSTEM SET rustydb.keyring_file = ''"
rdb_reload tc_p
rdb_expect_error "a new session gets the key error although e's plaintext is cached" tc_p \
	"SELECT count(*) FROM e" "no master key provider is configured"
rdb_expect_error "an index fetch too" tc_p \
	"SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT v FROM e WHERE id = 1" \
	"no master key provider is configured"
rdb_ok "a backend that reloaded emptied the cache" \
	rdb_poll 30 rdb_psql_true tc_p "SELECT used_entries = 0 FROM rustydb.tde_cache"
rdb_psql tc_p "ALTER SYSTEM RESET rustydb.keyring_file"
rdb_reload tc_p
check "with the provider back"

# ---- admission: one-off reads do not fill the cache
rdb_psql tc_p "SELECT rustydb.tde_cache_reset()" >/dev/null
SEQ="SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM e WHERE v <> ''"
ins=$(stat inserts)
q "$SEQ" >/dev/null
rdb_is "a first scan of e after the cache was emptied keeps nothing" "$(($(stat inserts) - ins))" 0
q "$SEQ" >/dev/null
rdb_ok "the second one fills the cache ($(($(stat inserts) - ins)) pages)" \
	test "$(($(stat inserts) - ins))" -gt 20
m0=$(stat misses)
q "$SEQ" >/dev/null
rdb_is "the third one hits every row" "$(($(stat misses) - m0))" 0
# the default tde_cache_min_read (1kB): a fetch of a small row opens it
# without looking at the cache, a bitmap scan of one row per page too
hm=$(stat "hits || ' ' || misses")
rdb_is "index fetches of small rows" "$(q "SET rustydb.tde_cache_min_read = '1kB';
	SET enable_seqscan = off; SET enable_bitmapscan = off;
	SELECT count(*) FROM e WHERE id IN (1, 700, 1400, 2100)")" 4
rdb_is "bitmap scans of one row per page" "$(q "SET rustydb.tde_cache_min_read = '1kB';
	SET enable_seqscan = off; SET enable_indexscan = off;
	SELECT count(*) FROM e WHERE id IN (1, 700, 1400, 2100)")" 4
rdb_is "... leave the cache alone with the default tde_cache_min_read" "$(stat "hits || ' ' || misses")" "$hm"

# ---- cache off
rdb_node_conf tc_p "rustydb.tde_cache_size = 0"
rdb_node_restart tc_p
rdb_is "rustydb.tde_cache_size = 0: no cache" "$(stat "size_bytes || '|' || inserts")" "0|0"
check "without the cache"

# ---- the default (-1): a quarter of shared_buffers with a key provider, none without
rdb_as_server sed -i '/^rustydb.tde_cache_size/d' "$(rdb_dir tc_p)/data/postgresql.conf"
rdb_node_restart tc_p
rdb_is "by default (-1) with a key provider: a quarter of shared_buffers" \
	"$(stat "size_bytes = pg_size_bytes(current_setting('shared_buffers')) / 4 AND size_bytes > 0")" "t"
check "with the default cache"
rdb_node_conf tc_p "rustydb.keyring_file = ''"
rdb_node_restart tc_p
rdb_is "... and no cache without a key provider" "$(stat "size_bytes")" "0"

rdb_node_stop tc_p
rdb_summary
