#!/usr/bin/env bash
# In-place updates while another session holds a REPEATABLE READ snapshot
# (issue 21, workload D; docs/storage.md, "The pointer reserve"). A row's
# first in-place update lengthens it by its 8-byte undo pointer, which
# pruning gives back only once no snapshot predates the update: while the
# snapshot is held every updated row keeps it. With
# rustydb.inplace_pointer_reserve (default on) an insert leaves each page
# room for the pointers of all its rows, so tables loaded by INSERT and by
# COPY at the default settings update every row in place, round after
# round, with 0 fallback_no_space and their sizes (table and index)
# unchanged; once the snapshot ends, more rounds keep them. A table loaded
# with the setting off shows the old behaviour: its pages hold the pointers
# of a few rows, the rest go out of place and it grows. Then the free space
# map: pages VACUUM recorded without the pointer reserve (the setting off)
# are offered to inserts that need it, refused, recorded with the rows'
# pointers taken off, and the inserts end (a page recorded with its whole
# free space would be offered again for ever); and VACUUM with the reserve
# records what an insert can use. Updates are one per transaction by
# primary key, as D's clients do (pruning compacts the page at each index
# fetch). Deterministic: the snapshot's session is waited for by its state.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT
N=inplaceheld
ROWS=3000
rdb_node_init $N
rdb_node_conf $N "autovacuum = off"
rdb_node_start $N
q() { rdb_psql $N "$@"; }
off() { PGOPTIONS="-c rustydb.inplace_pointer_reserve=off" q "$@"; }

q "CREATE EXTENSION rustydb; CREATE EXTENSION pg_freespacemap" >/dev/null
for t in ins cpy off; do
	q "CREATE TABLE $t (id int PRIMARY KEY, counter int NOT NULL, pad text NOT NULL) USING rustydb" >/dev/null
done
q "INSERT INTO ins SELECT g, 0, repeat('x', 100) FROM generate_series(1, $ROWS) g" >/dev/null
q "COPY (SELECT g, 0, repeat('x', 100) FROM generate_series(1, $ROWS) g) TO STDOUT" |
	q "COPY cpy FROM STDIN"
off "INSERT INTO off SELECT g, 0, repeat('x', 100) FROM generate_series(1, $ROWS) g" >/dev/null
# (no VACUUM: the free space map is the subject of the last part)

size() { q "SELECT pg_relation_size('$1') || ' ' || pg_relation_size('$1_pkey')"; }
pages() { q "SELECT pg_relation_size('$1') / current_setting('block_size')::int"; }
declare -A SIZE
for t in ins cpy off; do SIZE[$t]=$(size $t); done
PI=$(pages ins) PC=$(pages cpy) PO=$(pages off)
echo "# pages at load: INSERT $PI, COPY $PC, INSERT with the setting off $PO"
rdb_ok "the pointer reserve costs pages at load, a few percent ($PI and $PC against $PO)" \
	awk -v a="$PI" -v c="$PC" -v o="$PO" 'BEGIN { exit !(a > o && c > o && a <= o * 1.08 && c <= o * 1.08) }'

# one transaction per update, every row of table $1 by primary key, $2 times
rounds() {
	q "DO \$\$ BEGIN FOR r IN 1..$2 LOOP FOR i IN 1..$ROWS LOOP
		UPDATE $1 SET counter = counter + 1 WHERE id = i; COMMIT; END LOOP; END LOOP; END \$\$" >/dev/null
}
stats() { q "SELECT inplace_updates || ' ' || fallback_no_space FROM rustydb.undo_stats WHERE relid = '$1'::regclass"; }

# the snapshot: another session's REPEATABLE READ transaction that read the
# three tables, then sleeps
(q "BEGIN ISOLATION LEVEL REPEATABLE READ;
	SELECT count(*) FROM ins; SELECT count(*) FROM cpy; SELECT count(*) FROM off;
	SELECT pg_sleep(600); COMMIT" >/dev/null 2>&1 || true) &
held() { rdb_psql_true $N "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND backend_xmin IS NOT NULL"; }
rdb_wait_for "the snapshot's session to hold its snapshot (in pg_sleep)" 120 held

for t in ins cpy; do
	rounds $t 3
	rdb_is "$t: three rounds while the snapshot is held, all in place, none found its page full" \
		"$(stats $t)" "$((3 * ROWS)) 0"
	rdb_is "$t: table and index kept their sizes" "$(size $t)" "${SIZE[$t]}"
done
rounds off 3
read -r OFF_IN OFF_FB <<<"$(stats off)"
echo "# setting off: $OFF_IN in place, $OFF_FB fallback_no_space; pages $PO -> $(pages off)"
rdb_ok "setting off: rows found their pages full while the snapshot is held ($OFF_FB fallbacks)" \
	test "$OFF_FB" -gt $((ROWS / 2))
rdb_ok "setting off: the table grew" test "$(pages off)" -gt "$PO"
rdb_ok "the snapshot was held throughout" held

q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'" >/dev/null
rdb_wait_for "the snapshot's session to end" 60 \
	rdb_psql_true $N "SELECT count(*) = 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
for t in ins cpy; do
	rounds $t 2
	rdb_is "$t: two more rounds after the snapshot, all in place, none found its page full" \
		"$(stats $t)" "$((5 * ROWS)) 0"
	rdb_is "$t: table and index kept their sizes" "$(size $t)" "${SIZE[$t]}"
	rdb_is "$t: the values" "$(q "SELECT sum(counter) FROM $t")" "$((5 * ROWS))"
	rdb_is "$t: verify_table finds nothing" "$(q "SELECT count(*) FROM rustydb.verify_table('$t')")" "0"
done

# ---- the free space map
# fsm: a fresh table loaded with the setting off (pages full up to the
# version reserve), two rows of each page deleted, and VACUUM with the
# setting off records each page's whole free space, room for a row and its
# version reserve. With the pointer reserve a page holds a new row only
# beside the pointers of its 50-odd rows: an insert is offered these pages,
# refuses each and must record it lower, or the map would offer it again
# for ever.
q "CREATE TABLE fsm (id int PRIMARY KEY, counter int NOT NULL, pad text NOT NULL) USING rustydb" >/dev/null
off "INSERT INTO fsm SELECT g, 0, repeat('x', 100) FROM generate_series(1, $ROWS) g;
	DELETE FROM fsm WHERE id % 28 = 0" >/dev/null
off "VACUUM fsm" >/dev/null
FP=$(pages fsm)
# pages of the loaded table (file blocks 1 to FP - 1) the map offers for
# such a row: its 136 bytes, the version reserve (144) and its pointer
offered() { q "SELECT count(*) FROM pg_freespace('fsm') WHERE blkno BETWEEN 1 AND $FP - 1 AND avail >= 288"; }
OFFERED=$(offered)
rdb_ok "VACUUM with the setting off: $OFFERED of $((FP - 1)) data pages recorded with room for a row beside its version reserve" \
	test "$OFFERED" -gt $((FP / 2))
rdb_is "inserts with the pointer reserve end (statement_timeout 60 s)" \
	"$(q "SET statement_timeout = '60s'; INSERT INTO fsm SELECT g, 0, repeat('x', 100) FROM generate_series($ROWS + 1, $ROWS + 200) g;
		SELECT count(*) FROM fsm WHERE id > $ROWS")" "200"
rdb_is "the pages they refused are recorded lower: none offered for such a row" "$(offered)" "0"
# (DISABLE_PAGE_SKIPPING: the pages are all-visible, and a VACUUM that
# skips them leaves their entries in the map as they are, as heap's does)
off "VACUUM (DISABLE_PAGE_SKIPPING) fsm" >/dev/null
rdb_ok "VACUUM with the setting off records them whole again" test "$(offered)" -gt $((FP / 2))
q "VACUUM (DISABLE_PAGE_SKIPPING) fsm" >/dev/null
rdb_is "VACUUM with the pointer reserve records what an insert can use" "$(offered)" "0"
rdb_is "the rows" "$(q "SELECT count(*) || ' ' || sum(counter) FROM fsm")" "$((ROWS - ROWS / 28 + 200)) 0"
rdb_is "verify_table finds nothing" "$(q "SELECT count(*) FROM rustydb.verify_table('fsm')")" "0"
rdb_check_server_logs $N
rdb_summary
