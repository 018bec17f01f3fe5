#!/usr/bin/env bash
# Concurrent writers on hot rows must never hang the instance or lose an
# update. 16 pgbench clients (RDB_CONC_CLIENTS) run, beside busy CPU loops:
#   pair    issue 16's reproducer as reported: two row updates per
#           transaction in random order, run in 30 short rounds ("fresh"
#           runs), each on a refilled 100-row table with new backends, whose
#           first update of a full page takes the last page, which another
#           backend may just have extended (where the get_buffer_for_tuple
#           lock-order hang struck before the fix; docs/storage.md)
#   two     the same with a ledger (every statement records what it changed)
#   three   SELECT ... FOR SHARE, SELECT ... FOR UPDATE, an update,
#           INSERT ... ON CONFLICT DO UPDATE and an update that changes the
#           row's length, in random row order
#   churn   DELETE and re-INSERT of a row in one statement, and an update
#   wide    two updates of rows of a table with fillfactor 100 and rows
#           that change length: new versions go to other pages, and the
#           table extends during the run
#   grow    the same on 64 wide rows (autovacuum off): the table keeps
#           extending under contended pages
#   vac     VACUUM of the hot tables beside the writers (mixes, weight 1)
#   abort   an update of a random row, committed or rolled back at random,
#           beside scans (scan: every read of a page prunes it): pruning
#           meets in-place versions whose creators abort under it, and a
#           row judged dead there vanished with its chain (docs/storage.md,
#           "Rollback"); every run of the old code lost rows (rc-abort-enc:
#           the same on an encrypted table, repairs from sealed undo images)
# on small hot tables (100 rows: most versions land on the last pages,
# which the relation extends under the writers), under READ COMMITTED,
# REPEATABLE READ and SERIALIZABLE (--max-tries retries serialization
# failures and deadlocks), on plain and encrypted tables. Each transaction
# adds what it added to the rows into a ledger, so the final state is
# checked: the sums agree, every row is there once, verify_table (and
# verify_encryption) find nothing. A watchdog (test/lib/watchdog.sh) fails
# the run when it stops committing, with the waiting backends' stacks.
#
#   RDB_CONC_AM=heap         calibrate on heap (the same runs; a failure
#                            there is PostgreSQL's or the script's)
#   RDB_CONC_SECONDS=N       seconds per run (default 15)
#   RDB_CONC_ROUNDS=N        rounds of the fresh runs (default 30, 1 s each)
#   RDB_CONC_ONLY="rc-fresh-plain" runs to do (names as printed)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
. "$ROOT/test/lib/watchdog.sh"
trap rdb_cleanup EXIT

AM=${RDB_CONC_AM:-rustydb}
SECONDS_PER_RUN=${RDB_CONC_SECONDS:-15}
CLIENTS=${RDB_CONC_CLIENTS:-16}
SCRIPTS=$RDB_WORK/scripts
mkdir -p "$SCRIPTS"

rdb_node_init conc
rdb_node_conf conc "rustydb.keyring_file = '$(rdb_keyring_create "$RDB_WORK/keys")'"
rdb_node_conf conc "max_connections = 60"
rdb_node_conf conc "rustydb.plaintext_index_action = log"
rdb_node_conf conc "deadlock_timeout = 100ms"
rdb_node_start conc

cat >"$SCRIPTS/two.sql" <<'SQL'
\set a random(1, 100)
\set b random(1, 100)
BEGIN;
WITH u AS (UPDATE hot SET v = v + 1 WHERE id = :a RETURNING 1) INSERT INTO ledger SELECT 'hot', count(*) FROM u;
WITH u AS (UPDATE hot SET v = v + 1 WHERE id = :b RETURNING 1) INSERT INTO ledger SELECT 'hot', count(*) FROM u;
END;
SQL
# the reproducer of issue 16, as reported (no ledger: every transaction
# adds exactly 2, so the sum is twice what pgbench completed)
cat >"$SCRIPTS/pair.sql" <<'SQL'
\set a random(1, 100)
\set b random(1, 100)
BEGIN;
UPDATE hot SET v = v + 1 WHERE id = :a;
UPDATE hot SET v = v + 1 WHERE id = :b;
END;
SQL
cat >"$SCRIPTS/three.sql" <<'SQL'
\set a random(1, 100)
\set b random(1, 100)
\set c random(1, 100)
\set n random(0, 60)
BEGIN;
SELECT v FROM hot WHERE id = :c FOR SHARE;
SELECT v FROM hot WHERE id = :a FOR UPDATE;
WITH u AS (UPDATE hot SET v = v + 1 WHERE id = :a RETURNING 1) INSERT INTO ledger SELECT 'hot', count(*) FROM u;
WITH u AS (INSERT INTO hot VALUES (:b, 1, '') ON CONFLICT (id) DO UPDATE SET v = hot.v + 1 RETURNING 1)
  INSERT INTO ledger SELECT 'hot', count(*) FROM u;
WITH u AS (UPDATE hot SET v = v + 1, pad = repeat('x', :n) WHERE id = :c RETURNING 1)
  INSERT INTO ledger SELECT 'hot', count(*) FROM u;
END;
SQL
cat >"$SCRIPTS/churn.sql" <<'SQL'
\set a random(1, 100)
\set b random(1, 100)
BEGIN;
WITH d AS (DELETE FROM hot WHERE id = :a RETURNING v, pad),
     i AS (INSERT INTO hot SELECT :a, v + 1, pad FROM d RETURNING 1)
INSERT INTO ledger SELECT 'hot', count(*) FROM i;
WITH u AS (UPDATE hot SET v = v + 1 WHERE id = :b RETURNING 1) INSERT INTO ledger SELECT 'hot', count(*) FROM u;
END;
SQL
# length_updates TABLE ROWS SUM: two updates of random rows that change
# their length (md5 repeated n and SUM - n times), each logged in the ledger
length_updates() {
	cat >"$SCRIPTS/$1.sql" <<SQL
\\set a random(1, $2)
\\set b random(1, $2)
\\set n random(1, $(($3 - 1)))
BEGIN;
WITH u AS (UPDATE $1 SET v = v + 1, pad = repeat(md5(:a::text), :n) WHERE id = :a RETURNING 1)
  INSERT INTO ledger SELECT '$1', count(*) FROM u;
WITH u AS (UPDATE $1 SET v = v + 1, pad = repeat(md5(:b::text), $3 - :n) WHERE id = :b RETURNING 1)
  INSERT INTO ledger SELECT '$1', count(*) FROM u;
END;
SQL
}
length_updates wide 2000 13
length_updates grow 64 62

cat >"$SCRIPTS/abort.sql" <<'SQL'
\set a random(1, 100)
\set r random(0, 1)
BEGIN;
WITH u AS (UPDATE hot SET v = v + 1 WHERE id = :a RETURNING 1) INSERT INTO ledger SELECT 'hot', count(*) FROM u;
\if :r
COMMIT;
\else
ROLLBACK;
\endif
SQL
cat >"$SCRIPTS/scan.sql" <<'SQL'
SELECT sum(v) FROM hot;
SQL

# VACUUM beside the writers (pruning and the visibility map under them)
cat >"$SCRIPTS/vac.sql" <<'SQL'
VACUUM hot, grow;
SQL

# run NAME ENCRYPTED ISOLATION SCRIPT... (SCRIPT@WEIGHT as pgbench takes it)
run() {
	local name=$1 enc=$2 iso=$3 db status with=""
	shift 3
	if [ -n "${RDB_CONC_ONLY:-}" ] && [[ " $RDB_CONC_ONLY " != *" $name "* ]]; then return 0; fi
	db=conc_${name//-/_}
	[ "$AM" = rustydb ] && with="USING rustydb WITH (encrypted = $enc)"
	[ "$AM" = rustydb ] || with="USING $AM"
	rdb_psql conc "CREATE DATABASE $db"
	RDB_DB=$db rdb_psql conc "
		CREATE EXTENSION rustydb;
		CREATE TABLE hot (id int PRIMARY KEY, v bigint NOT NULL, pad text NOT NULL) $with;
		CREATE TABLE wide (id int PRIMARY KEY, v bigint NOT NULL, pad text NOT NULL) $with;
		ALTER TABLE wide SET (fillfactor = 100);
		CREATE TABLE grow (id int PRIMARY KEY, v bigint NOT NULL, pad text NOT NULL) $with;
		ALTER TABLE grow SET (fillfactor = 100, autovacuum_enabled = off);
		CREATE TABLE ledger (tab text NOT NULL, delta int NOT NULL) $with;" >/dev/null 2>&1
	# -fresh runs: several short rounds, each on freshly filled tables with
	# new backends (no cached target page: the first update of a full page
	# takes the last page, which another backend may just have extended)
	local rounds=1 seconds=$SECONDS_PER_RUN round done_tx=0 n
	if [[ "$name" == *fresh* ]]; then
		rounds=${RDB_CONC_ROUNDS:-30}
		seconds=1
	fi
	local -a args=(-n -c "$CLIENTS" -j 4 -T "$seconds" --max-tries=1000)
	for s in "$@"; do
		if [[ "$s" == *@* ]]; then args+=(-f "$SCRIPTS/${s%@*}.sql@${s#*@}"); else args+=(-f "$SCRIPTS/$s.sql"); fi
	done
	for ((round = 1; round <= rounds; round++)); do
		RDB_DB=$db rdb_psql conc "
			TRUNCATE hot, wide, grow, ledger;
			INSERT INTO hot SELECT g, 0, '' FROM generate_series(1, 100) g;
			INSERT INTO wide SELECT g, 0, repeat(md5(g::text), 6) FROM generate_series(1, 2000) g;
			INSERT INTO grow SELECT g, 0, repeat(md5(g::text), 32) FROM generate_series(1, 64) g;" >/dev/null 2>&1
		status=0
		PGOPTIONS="-c default_transaction_isolation=${iso// /\\ }" \
			rdb_pgbench_watched conc "$db" "$RDB_WORK/$name.log" -- "${args[@]}" || status=$?
		if [ "$status" -eq 2 ] && [ -e "$RDB_WORK/$name.log.stall" ]; then
			rdb_fail "$name ($AM, $iso, $*): round $round stopped committing (watchdog)"
			rdb_node_start conc
			return 0
		fi
		[ "$status" -eq 0 ] || break
		n=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$RDB_WORK/$name.log")
		done_tx=$((done_tx + ${n:-0}))
	done
	# pair.sql alone logs nothing: the last round's sum is twice its count
	[ "$*" = pair ] && RDB_DB=$db rdb_psql conc "INSERT INTO ledger VALUES ('hot', 2 * ${n:-0})" >/dev/null
	if [ "$status" -eq 0 ] && [ "$done_tx" -gt 0 ]; then
		rdb_pass "$name ($AM, $iso, $*): $done_tx transactions in $rounds round(s), no stall ($(grep -E '^number of (failed|transactions retried)' "$RDB_WORK/$name.log" | tr '\n' ' '))"
	else
		rdb_fail "$name ($AM, $iso, $*): pgbench failed (status $status)" "$(tail -n 15 "$RDB_WORK/$name.log")"
	fi
	rdb_is "$name: every hot row is there once, and its sum is the ledger's" \
		"$(RDB_DB=$db rdb_psql conc "SELECT count(*), count(DISTINCT id), sum(v) = (SELECT coalesce(sum(delta), 0) FROM ledger WHERE tab = 'hot')
			FROM hot")" "100|100|t"
	rdb_is "$name: the wide table's sum is the ledger's" \
		"$(RDB_DB=$db rdb_psql conc "SELECT count(*), sum(v) = (SELECT coalesce(sum(delta), 0) FROM ledger WHERE tab = 'wide')
			FROM wide")" "2000|t"
	rdb_is "$name: the growing table's sum is the ledger's" \
		"$(RDB_DB=$db rdb_psql conc "SELECT count(*), sum(v) = (SELECT coalesce(sum(delta), 0) FROM ledger WHERE tab = 'grow')
			FROM grow")" "64|t"
	rdb_is "$name: an index scan finds what a sequential scan finds" \
		"$(RDB_DB=$db rdb_psql conc "SET enable_seqscan = off; SET enable_bitmapscan = off;
			SELECT sum(v) FROM hot WHERE id BETWEEN 1 AND 100" 2>&1)" \
		"$(RDB_DB=$db rdb_psql conc "SET enable_indexscan = off; SET enable_bitmapscan = off;
			SELECT sum(v) FROM hot" 2>&1)"
	if [ "$AM" = rustydb ]; then
		RDB_DB=$db rdb_psql conc "VACUUM hot, wide, grow, ledger" >/dev/null
		rdb_is "$name: verify_table finds nothing, after the run and a VACUUM" \
			"$(RDB_DB=$db rdb_psql conc "SELECT t || ' (' || blkno || ',' || offnum || '): ' || msg
				FROM unnest(ARRAY['hot', 'wide', 'grow', 'ledger']) t, rustydb.verify_table(t::regclass) LIMIT 10")" ""
		if [ "$enc" = true ]; then
			rdb_is "$name: verify_encryption opens every payload" \
				"$(RDB_DB=$db rdb_psql conc "SELECT count(*) FILTER (WHERE NOT ok) FROM (SELECT * FROM rustydb.verify_encryption('hot')
					UNION ALL SELECT * FROM rustydb.verify_encryption('wide')) p")" "0"
		fi
	fi
}

run rc-fresh-plain false "read committed" pair
run rc-fresh-enc true "read committed" pair
run rc-grow false "read committed" grow
run rc-abort-plain false "read committed" abort@10 scan@1
run rc-abort-enc true "read committed" abort@10 scan@1
for enc in false true; do
	tag=plain
	[ "$enc" = true ] && tag=enc
	[ "$AM" = rustydb ] || { [ "$enc" = true ] && continue; }
	run "rc-mix-$tag" "$enc" "read committed" two@20 three@20 churn@20 wide@20 grow@20 vac@1
	run "rr-mix-$tag" "$enc" "repeatable read" two@20 three@20 churn@20 wide@20 grow@20 vac@1
	run "ser-mix-$tag" "$enc" serializable two@20 three@20 churn@20 wide@20 grow@20 vac@1
done

rdb_summary
