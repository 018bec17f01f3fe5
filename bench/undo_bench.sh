#!/usr/bin/env bash
# In-place updates with a bounded undo store (issue 21, acceptance 1):
# rustydb against heap in the same run, on one server.
#
# heap and rustydb each get a database of their own on one throwaway server
# (shared_buffers 1GB, max_wal_size 4GB, fsync off as on every test node,
# rustydb preloaded; default_table_access_method set per database, since
# pgbench 15 has no --table-access-method), so both run with the same
# settings. The two access methods run BACK TO BACK within each workload,
# not at the same time: WAL is counted with pg_current_wal_lsn(), which is
# the server's, not a database's. The order alternates from workload to
# workload (A and C: heap first; B and D: rustydb first) so that drift
# does not always land on the same side. Every run starts from freshly
# created tables (pgbench -i, or the update table of D), a CHECKPOINT and
# no autovacuum worker running, and its tables are dropped once they are
# measured, so autovacuum never works on one access method's tables while
# the other runs.
#
#   A  pgbench TPC-B, scale 10, 2 clients, UNDO_BENCH_SECONDS (600),
#      autovacuum off
#   B  the same with autovacuum on
#   C  the same (autovacuum: UNDO_BENCH_C_AUTOVACUUM, default on, as B)
#      with a REPEATABLE READ transaction, in the workload's database,
#      that takes its snapshot before the clients start and holds it for
#      the first 3/10 of the run (180 s of 600)
#   D  update-only: a 100k-row table (id int primary key, counter int,
#      100 bytes of padding), 4 clients updating the counter of random rows
#      by primary key for half the duration (300 s of 600), autovacuum on,
#      a REPEATABLE READ snapshot held for the first 1/5 of the duration
#      (120 s of 600)
#
# Printed per workload and access method: TPS (pgbench, without connection
# time), server CPU of the run's exited processes per transaction (backends
# and autovacuum workers; less sensitive than TPS to other load), WAL bytes
# per transaction (WAL position difference / transactions processed,
# checkpoints, full-page images and autovacuum included) and the same split
# by pg_waldump --stats into record bytes and full-page image bytes (the
# images are written once per page touched after a checkpoint, so their
# share per transaction falls as throughput rises: the records alone
# compare what each transaction writes), the size in pages
# of the updated table and of its primary key at the start and at the end,
# and for rustydb its undo store: rustydb.undo_relation() of the table,
# the largest size sampled and the size at the end, against the bound
# rustydb.undo_max_size (plus the store's metapage), and the ring pages in
# use (rustydb.undo_store(): what recycling frees); all rustydb tables'
# stores together; and when the view rustydb.undo_stats exists, its
# counters for the updated tables. Sizes are sampled every
# UNDO_BENCH_INTERVAL seconds during each run; the series is printed for C
# and D (where the table should stop growing once the snapshot ends) or for
# every workload with UNDO_BENCH_SERIES=all.
#
# Targets (acceptance 1) are printed next to the figures with PASS or MISS.
# The exit status reflects errors only (a server or pgbench failure), never
# a missed target. Two separate runs on the 2-core development machine
# differ by 10-25% (bench/lib.sh), so one TPS ratio of one pair of runs is
# only as good as the machine was quiet; the CPU per transaction is the
# steadier figure.
#
#   UNDO_BENCH_SECONDS   duration of A, B and C in seconds (default 600); D
#                        runs half of it, the held snapshots 3/10 (C) and
#                        1/5 (D) of it
#   UNDO_BENCH_ONLY      the workloads to run (default "A B C D"), e.g. "A D"
#   UNDO_BENCH_AMS       the access methods (default "heap rustydb"); "heap"
#                        alone to calibrate
#   UNDO_BENCH_INTERVAL  seconds between size samples (default 10)
#   UNDO_BENCH_SERIES    "all": print the size series of A and B too
#   UNDO_BENCH_SCALE     pgbench scale of A-C (default 10)
#   UNDO_BENCH_ROWS      rows of D's table (default 100000)
#   UNDO_BENCH_C_AUTOVACUUM  autovacuum during C: on (default) or off
#   UNDO_BENCH_UNDO_MAX_SIZE rustydb.undo_max_size of the server (default:
#                        the setting's default), e.g. 16MB
#   UNDO_BENCH_WAL_KEEP  wal_keep_size (default 8GB): a run's WAL must still
#                        be there for pg_waldump when it ends
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SECS=${UNDO_BENCH_SECONDS:-600}
ONLY=${UNDO_BENCH_ONLY:-A B C D}
AMS=${UNDO_BENCH_AMS:-heap rustydb}
INTERVAL=${UNDO_BENCH_INTERVAL:-10}
SERIES=${UNDO_BENCH_SERIES:-}
SCALE=${UNDO_BENCH_SCALE:-10}
ROWS=${UNDO_BENCH_ROWS:-100000}
C_AV=${UNDO_BENCH_C_AUTOVACUUM:-on}
usage_error() {
	echo "bench/undo_bench.sh: $*" >&2
	exit 2
}
for w in $ONLY; do
	case $w in A | B | C | D) ;; *) usage_error "UNDO_BENCH_ONLY: unknown workload '$w' (A, B, C, D)" ;; esac
done
for am in $AMS; do
	case $am in heap | rustydb) ;; *) usage_error "UNDO_BENCH_AMS: unknown access method '$am' (heap, rustydb)" ;; esac
done
case $C_AV in on | off) ;; *) usage_error "UNDO_BENCH_C_AUTOVACUUM: on or off, not '$C_AV'" ;; esac
[[ $SECS =~ ^[0-9]+$ && $SECS -ge 10 ]] || usage_error "UNDO_BENCH_SECONDS: a whole number of seconds >= 10"
[[ $INTERVAL =~ ^[0-9]+$ && $INTERVAL -ge 1 ]] || usage_error "UNDO_BENCH_INTERVAL: a whole number of seconds >= 1"
bench_setup

rdb_node_init bench
rdb_node_conf bench "shared_buffers = '1GB'"
rdb_node_conf bench "max_wal_size = '4GB'"
rdb_node_conf bench "wal_keep_size = '${UNDO_BENCH_WAL_KEEP:-8GB}'"
rdb_node_conf bench "autovacuum = off"
[ -n "${UNDO_BENCH_UNDO_MAX_SIZE:-}" ] && rdb_node_conf bench "rustydb.undo_max_size = '$UNDO_BENCH_UNDO_MAX_SIZE'"
rdb_node_start bench
q() { rdb_psql bench "$@"; }
qd() { bench_qd bench "$@"; }
PGB=("$RDB_BINDIR/pgbench" -h "$(rdb_sock bench)" -p "$(rdb_port bench)" -U postgres)
PSQL=("$RDB_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$(rdb_sock bench)" -p "$(rdb_port bench)" -U postgres)
for am in $AMS; do
	q "CREATE DATABASE b_$am"
	qd "b_$am" "CREATE EXTENSION rustydb"
	qd "b_$am" "ALTER DATABASE b_$am SET default_table_access_method = $am"
done
BLCKSZ=$(q "SHOW block_size")
UNDO_MAX=$(q "SHOW rustydb.undo_max_size")
# the bound of one store in pages: its ring plus its metapage
UNDO_BOUND=$(q "SELECT pg_size_bytes(current_setting('rustydb.undo_max_size')) / $BLCKSZ + 1")
# (in a workload database: the extension is created there, not in postgres)
HAS_STATS=f
for am in $AMS; do
	HAS_STATS=$(qd "b_$am" "SELECT to_regclass('rustydb.undo_stats') IS NOT NULL")
	break
done

# ---- helpers
fmt() { awk -v x="$1" -v d="${2:-1}" 'BEGIN { if (x == "" || x == "-") print "-"; else printf "%.*f\n", d, x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.3f\n", a / b }'; }
verdict() { # "expression over x" value -> PASS | MISS | - (awk condition on x)
	if [ -z "$2" ] || [ "$2" = - ]; then
		echo -
		return
	fi
	awk -v x="$2" "BEGIN { print (($1) ? \"PASS\" : \"MISS\") }"
}
now() { echo "$EPOCHREALTIME"; }
# col_max N FILE: the largest number in field N of FILE's "|" lines; - when
# a line has none (no undo store: heap)
col_max() { awk -F'|' -v f="$1" '$f == "-" { d = 1 } $f != "-" && $f + 0 > m + 0 { m = $f } END { print (d ? "-" : m + 0) }' "$2"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", b - a }'; }

set_autovacuum() {
	q "ALTER SYSTEM SET autovacuum = $1"
	rdb_reload bench
}

# no autovacuum worker at work (a run starts without one; tables of the
# previous run are dropped, so one that is left finishes soon)
no_av_worker() {
	rdb_psql_true bench "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
}
wait_quiet() {
	rdb_poll 600 no_av_worker || echo "# note: an autovacuum worker was still running when the run started"
}

# pages of a relation of database $1
pages() { qd "$1" "SELECT pg_relation_size('$2') / $BLCKSZ"; }
# pages of the undo store of table $2 (- when the table has none: heap)
undo_pages() {
	qd "$1" "SELECT coalesce((SELECT pg_relation_size(rustydb.undo_relation(c.oid)) / $BLCKSZ
		FROM pg_class c JOIN pg_am a ON a.oid = c.relam
		WHERE c.oid = '$2'::regclass AND a.amname = 'rustydb'
			AND rustydb.undo_relation(c.oid) IS NOT NULL)::text, '-')"
}
# one sample: table pages|index pages|table's undo pages|all stores' pages|largest store's pages|snapshot held|table's ring pages in use
SAMPLE_SQL() { # table index
	echo "SELECT pg_relation_size('$1') / $BLCKSZ, pg_relation_size('$2') / $BLCKSZ,
		coalesce((SELECT (pg_relation_size(rustydb.undo_relation('$1')) / $BLCKSZ)::text
			FROM pg_class c JOIN pg_am a ON a.oid = c.relam
			WHERE c.oid = '$1'::regclass AND a.amname = 'rustydb'), '-'),
		coalesce(sum(pg_relation_size(rustydb.undo_relation(c.oid)) / $BLCKSZ)::text, '-'),
		coalesce(max(pg_relation_size(rustydb.undo_relation(c.oid)) / $BLCKSZ)::text, '-'),
		(SELECT count(*) FROM pg_stat_activity WHERE application_name = 'undo_bench_snapshot'
			AND backend_xmin IS NOT NULL),
		coalesce((SELECT coalesce((rustydb.undo_store(c.oid)).pages_in_use, 0)::text
			FROM pg_class c JOIN pg_am a ON a.oid = c.relam
			WHERE c.oid = '$1'::regclass AND a.amname = 'rustydb'), '-')
	FROM pg_class c JOIN pg_am a ON a.oid = c.relam
	WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.amname = 'rustydb'"
}
# sampler DB TABLE INDEX OUT STOPFILE T0: a sample every INTERVAL seconds
# from T0 until STOPFILE exists, lines "seconds|pages|..." into OUT
sampler() {
	local db=$1 table=$2 index=$3 out=$4 stop=$5 t0=$6 k=0 next sql
	sql=$(SAMPLE_SQL "$table" "$index")
	while :; do
		echo "$(elapsed "$t0" "$(now)")|$(qd "$db" "$sql" | tr -d '\n')" >>"$out"
		k=$((k + 1))
		next=$(awk -v a="$t0" -v k="$k" -v i="$INTERVAL" 'BEGIN { printf "%.6f\n", a + k * i }')
		while [ ! -e "$stop" ] && awk -v n="$(now)" -v d="$next" 'BEGIN { exit !(n < d) }'; do
			sleep 0.2
		done
		[ -e "$stop" ] && return 0
	done
}
# the held snapshot: a REPEATABLE READ transaction in DB that reads TABLE
# (its snapshot), then holds it SECONDS, then commits; OUT gets the time of
# the commit
hold_snapshot() {
	"${PSQL[@]}" -d "$1" -c "SET application_name = 'undo_bench_snapshot'" \
		-c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM (SELECT 1 FROM $2 LIMIT 1) s" \
		-c "SELECT pg_sleep($3)" -c "COMMIT" >/dev/null
	now >"$4"
}
snapshot_held() {
	rdb_psql_true bench "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'undo_bench_snapshot'
		AND backend_xmin IS NOT NULL AND query LIKE 'SELECT pg_sleep%')"
}
# rustydb.undo_stats counters of TABLE in DB, "name=value ..." (columns
# whose values are numbers, of the rows that name the table), and the
# in-place share: in place / (in place + fallbacks), from the columns named
# in_place* or inplace* and fallback*
undo_stats_of() {
	qd "$1" "SELECT coalesce(string_agg(e.key || '=' || e.value, ' ' ORDER BY e.key), '(no row)')
			|| coalesce(' (in place: ' || round(100.0 * sum(e.value::numeric) FILTER (WHERE e.key ~ '^in_?place')
				/ nullif(sum(e.value::numeric) FILTER (WHERE e.key ~ '^(in_?place|fallback)'), 0), 1) || '%)', '')
		FROM (SELECT to_jsonb(s) AS j FROM rustydb.undo_stats s) r, jsonb_each_text(r.j) e
		WHERE EXISTS (SELECT FROM jsonb_each_text(r.j) n
				WHERE n.value IN ('$2', 'public.$2', '$2'::regclass::oid::text))
			AND e.value ~ '^-?[0-9]+$' AND e.value <> '$2'::regclass::oid::text"
}

declare -A R # workload.am.measure -> value

# wal_split W AM LSN0 LSN1 N: record bytes and full-page image bytes per
# transaction of the WAL between LSN0 and LSN1 (pg_waldump --stats); "-"
# when that WAL is gone (wal_keep_size too small for the run)
wal_split() {
	local st
	R[$1.$2.wal_rec]=-
	R[$1.$2.wal_fpi]=-
	if st=$(rdb_as_server "$RDB_BINDIR/pg_waldump" --stats -p "$(rdb_dir bench)/data/pg_wal" -s "$3" -e "$4" 2>"$BENCH_WORK/waldump.err"); then
		read -r R[$1.$2.wal_rec] R[$1.$2.wal_fpi] <<<"$(awk -v n="$5" '$1 == "Total" {
			gsub(/\[[^]]*\]/, ""); printf "%.1f %.1f\n", $3 / n, $4 / n }' <<<"$st")"
	else
		echo "# note: pg_waldump could not read the WAL of $1 $2: $(head -n1 "$BENCH_WORK/waldump.err")"
	fi
}
D_SQL=$BENCH_WORK/update.sql
cat >"$D_SQL" <<SQL
\set id random(1, $ROWS)
UPDATE upd SET counter = counter + 1 WHERE id = :id;
SQL

# run_one W AM KIND SECONDS CLIENTS HOLD
run_one() {
	local w=$1 am=$2 kind=$3 secs=$4 clients=$5 hold=$6 db=b_$2 table index out t0 lsn0 lsn1 c0 c1
	local series=$BENCH_WORK/series.$w.$am stop=$BENCH_WORK/stop.$w.$am rel=$BENCH_WORK/release.$w.$am
	local hpid="" spid n tps t
	if [ "$kind" = tpcb ]; then
		table=pgbench_accounts index=pgbench_accounts_pkey
		"${PGB[@]}" -i -q -s "$SCALE" "$db" >"$BENCH_WORK/init.log" 2>&1 ||
			{
				cat "$BENCH_WORK/init.log"
				rdb_die "pgbench -i failed in $db"
			}
	else
		table=upd index=upd_pkey
		qd "$db" "CREATE TABLE upd (id int PRIMARY KEY, counter int NOT NULL, pad text NOT NULL)"
		qd "$db" "INSERT INTO upd SELECT g, 0, repeat('x', 100) FROM generate_series(1, $ROWS) g"
		qd "$db" "VACUUM ANALYZE upd"
	fi
	[ "$(qd "$db" "SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.oid = '$table'::regclass")" = "$am" ] ||
		rdb_die "$table of $db is not a $am table"
	R[$w.$am.table]=$table
	R[$w.$am.index]=$index
	q "CHECKPOINT"
	wait_quiet
	R[$w.$am.t_start]=$(pages "$db" "$table")
	R[$w.$am.i_start]=$(pages "$db" "$index")
	R[$w.$am.u_start]=$(undo_pages "$db" "$table")
	c0=$(bench_reaped_cpu bench)
	rm -f "$stop" "$rel" "$series"
	if [ "$hold" -gt 0 ]; then
		hold_snapshot "$db" "$table" "$hold" "$rel" &
		hpid=$!
		rdb_wait_for "the held snapshot of $db" 120 snapshot_held
	fi
	t0=$(now)
	lsn0=$(q "SELECT pg_current_wal_lsn()")
	sampler "$db" "$table" "$index" "$series" "$stop" "$t0" &
	spid=$!
	if [ "$kind" = tpcb ]; then
		out=$("${PGB[@]}" -n -c "$clients" -j 2 -T "$secs" "$db" 2>&1) || {
			echo "$out"
			rdb_die "pgbench failed in $db"
		}
	else
		out=$("${PGB[@]}" -n -f "$D_SQL" -c "$clients" -j 2 -T "$secs" "$db" 2>&1) || {
			echo "$out"
			rdb_die "pgbench failed in $db"
		}
	fi
	lsn1=$(q "SELECT pg_current_wal_lsn()")
	[ -n "$hpid" ] && { wait "$hpid" || rdb_die "the held snapshot's session of $db failed"; }
	touch "$stop"
	wait "$spid" || rdb_die "the size sampler of $db failed"
	# the last sample: the state at the end (unless the sampler just took it)
	t=$(elapsed "$t0" "$(now)")
	if awk -F'|' -v t="$t" 'END { exit !(t - $1 >= 1) }' "$series"; then
		echo "$t|$(qd "$db" "$(SAMPLE_SQL "$table" "$index")" | tr -d '\n')" >>"$series"
	fi
	c1=$(bench_reaped_cpu bench)
	n=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' <<<"$out")
	tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out" | head -n1)
	[ -n "$n" ] && [ "$n" -gt 0 ] && [ -n "$tps" ] || {
		echo "$out"
		rdb_die "no transaction processed in $db"
	}
	R[$w.$am.tps]=$tps
	R[$w.$am.n]=$n
	R[$w.$am.cpu]=$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN { printf "%.1f\n", (b - a) * 1e6 / n }')
	R[$w.$am.wal]=$(q "SELECT round(pg_wal_lsn_diff('$lsn1', '$lsn0') / $n, 1)")
	wal_split "$w" "$am" "$lsn0" "$lsn1" "$n"
	R[$w.$am.t_end]=$(pages "$db" "$table")
	R[$w.$am.i_end]=$(pages "$db" "$index")
	R[$w.$am.u_end]=$(undo_pages "$db" "$table")
	# sampled maxima: the table's store, any one store; all stores at the end
	R[$w.$am.u_max]=$(col_max 4 "$series")
	R[$w.$am.u_anymax]=$(col_max 6 "$series")
	R[$w.$am.ring_max]=$(col_max 8 "$series")
	R[$w.$am.ring_end]=$(tail -n1 "$series" | cut -d'|' -f8)
	R[$w.$am.u_all_end]=$(tail -n1 "$series" | cut -d'|' -f5)
	R[$w.$am.release]=-
	if [ -n "$hpid" ]; then
		R[$w.$am.release]=$(elapsed "$t0" "$(cat "$rel")")
		# pages at the first sample taken once the snapshot had ended
		R[$w.$am.t_rel]=$(awk -F'|' -v r="${R[$w.$am.release]}" '$1 >= r && $7 == 0 { print $2; exit }' "$series")
		R[$w.$am.i_rel]=$(awk -F'|' -v r="${R[$w.$am.release]}" '$1 >= r && $7 == 0 { print $3; exit }' "$series")
	fi
	R[$w.$am.stats]=-
	if [ "$am" = rustydb ] && [ "$HAS_STATS" = t ]; then
		local s=""
		for t in $([ "$kind" = tpcb ] && echo "pgbench_accounts pgbench_tellers pgbench_branches" || echo upd); do
			s+="$t: $(undo_stats_of "$db" "$t"); "
		done
		R[$w.$am.stats]=$s
	fi
	printf '#   %s %-7s %8.1f tps, %d transactions, %s bytes WAL/txn, %s: %s -> %s pages, %s: %s -> %s pages, undo max %s pages\n' \
		"$w" "$am" "$tps" "$n" "${R[$w.$am.wal]}" "$table" "${R[$w.$am.t_start]}" "${R[$w.$am.t_end]}" \
		"$index" "${R[$w.$am.i_start]}" "${R[$w.$am.i_end]}" "${R[$w.$am.u_max]}"
	# drop the measured tables: autovacuum must not work on them during the
	# next run
	if [ "$kind" = tpcb ]; then
		"${PGB[@]}" -i -I d "$db" >/dev/null 2>&1 || rdb_die "could not drop pgbench's tables in $db"
	else
		qd "$db" "DROP TABLE upd"
	fi
}

# report W: the workload's figures, targets, series
LINE='%-40s %12s %12s %9s  %-10s %s\n'
report() {
	local w=$1 h r tr
	h=heap r=rustydb
	echo
	printf "$LINE" measure heap rustydb ratio target verdict
	v() { echo "${R[$1.$2.$3]:--}"; }
	growth() { # w am start end
		local a b
		a=$(v "$1" "$2" "$3") b=$(v "$1" "$2" "$4")
		if [ "$a" = - ] || [ "$b" = - ] || [ -z "$a" ] || [ -z "$b" ]; then echo -; else echo $((b - a)); fi
	}
	tr=$(ratio "$(v $w $r tps)" "$(v $w $h tps)")
	local tps_target=">= 1.2" tps_cond="x >= 1.2"
	[ "$w" = D ] && tps_target=">= 1.0" tps_cond="x >= 1.0"
	printf "$LINE" "TPS" "$(fmt "$(v $w $h tps)")" "$(fmt "$(v $w $r tps)")" "$tr" "$tps_target" "$(verdict "$tps_cond" "$tr")"
	printf "$LINE" "server CPU, us/txn" "$(v $w $h cpu)" "$(v $w $r cpu)" "$(ratio "$(v $w $r cpu)" "$(v $w $h cpu)")" "" ""
	local wr
	wr=$(ratio "$(v $w $r wal)" "$(v $w $h wal)")
	if [ "$w" = D ]; then
		printf "$LINE" "WAL bytes/txn" "$(v $w $h wal)" "$(v $w $r wal)" "$wr" "" ""
	else
		printf "$LINE" "WAL bytes/txn" "$(v $w $h wal)" "$(v $w $r wal)" "$wr" "<= heap" "$(verdict "x <= 1.0" "$wr")"
	fi
	wr=$(ratio "$(v $w $r wal_rec)" "$(v $w $h wal_rec)")
	if [ "$w" = D ]; then
		printf "$LINE" "  of which records" "$(v $w $h wal_rec)" "$(v $w $r wal_rec)" "$wr" "" ""
	else
		printf "$LINE" "  of which records" "$(v $w $h wal_rec)" "$(v $w $r wal_rec)" "$wr" "<= heap" "$(verdict "x <= 1.0" "$wr")"
	fi
	printf "$LINE" "  of which full-page images" "$(v $w $h wal_fpi)" "$(v $w $r wal_fpi)" "$(ratio "$(v $w $r wal_fpi)" "$(v $w $h wal_fpi)")" "" ""
	local tbl idx
	tbl=$(v $w $r table)
	[ "$tbl" = - ] && tbl=$(v $w $h table)
	idx=$(v $w $r index)
	[ "$idx" = - ] && idx=$(v $w $h index)
	local x
	for x in "t:$tbl" "i:$idx"; do
		local k=${x%%:*} name=${x#*:} g
		printf "$LINE" "$name pages, start" "$(v $w $h ${k}_start)" "$(v $w $r ${k}_start)" "" "" ""
		printf "$LINE" "$name pages, end" "$(v $w $h ${k}_end)" "$(v $w $r ${k}_end)" "" "" ""
		g=$(growth $w $r ${k}_start ${k}_end)
		if [ "$w" = C ]; then
			printf "$LINE" "  growth, pages" "$(growth $w $h ${k}_start ${k}_end)" "$g" "" "" ""
			g=$(growth $w $r ${k}_rel ${k}_end)
			printf "$LINE" "  growth after the snapshot, pages" "$(growth $w $h ${k}_rel ${k}_end)" "$g" "" "0" "$(verdict "x == 0" "$g")"
		else
			printf "$LINE" "  growth, pages" "$(growth $w $h ${k}_start ${k}_end)" "$g" "" "0" "$(verdict "x == 0" "$g")"
		fi
	done
	local um ua
	um=$(v $w $r u_max)
	ua=$(v $w $r u_anymax)
	printf "$LINE" "undo of $tbl, pages: start" - "$(v $w $r u_start)" "" "" ""
	printf "$LINE" "  largest sampled" - "$um" "" "<= $UNDO_BOUND" "$(verdict "x <= $UNDO_BOUND" "$um")"
	printf "$LINE" "  end" - "$(v $w $r u_end)" "" "" ""
	printf "$LINE" "  ring pages in use: largest" - "$(v $w $r ring_max)" "" "" ""
	printf "$LINE" "  ring pages in use: end" - "$(v $w $r ring_end)" "" "" ""
	printf "$LINE" "largest undo store sampled, pages" - "$ua" "" "<= $UNDO_BOUND" "$(verdict "x <= $UNDO_BOUND" "$ua")"
	printf "$LINE" "all undo stores at the end, pages" - "$(v $w $r u_all_end)" "" "" ""
	if [ "$(v $w $r release)" != - ] || [ "$(v $w $h release)" != - ]; then
		echo "# the held snapshot ended at ${R[$w.$h.release]:--} s (heap), ${R[$w.$r.release]:--} s (rustydb);" \
			"'after the snapshot': from the first sample taken once it had ended"
	fi
	if [ "$HAS_STATS" = t ]; then
		echo "# rustydb.undo_stats: ${R[$w.$r.stats]:--}"
	else
		echo "# rustydb.undo_stats: (no such view in this build)"
	fi
	if [ "$w" = C ] || [ "$w" = D ] || [ "$SERIES" = all ]; then
		local am
		for am in $AMS; do
			[ -f "$BENCH_WORK/series.$w.$am" ] || continue
			echo "# size series, $w $am: seconds, $tbl pages, $idx pages, undo of $tbl: pages, ring pages in use; all undo stores pages, snapshot held"
			awk -F'|' '{ printf "#   %7.1f %9s %9s %9s %9s %9s %s\n", $1, $2, $3, $4, $8, $5, ($7 > 0 ? "held" : "-") }' \
				"$BENCH_WORK/series.$w.$am"
		done
	fi
}

echo "# undo bench: workloads $ONLY, access methods $AMS, $(nproc) CPU(s), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# shared_buffers $(q "SHOW shared_buffers"), max_wal_size $(q "SHOW max_wal_size"), rustydb.undo_max_size $UNDO_MAX" \
	"(bound of one store: $UNDO_BOUND pages with its metapage), rustydb.update_in_place $(q "SHOW rustydb.update_in_place")," \
	"rustydb.undo_stats: $([ "$HAS_STATS" = t ] && echo present || echo absent)"
for w in A B C D; do
	case " $ONLY " in *" $w "*) ;; *) continue ;; esac
	case $w in
	A) kind=tpcb secs=$SECS clients=2 hold=0 av=off desc="pgbench TPC-B, scale $SCALE, 2 clients" ;;
	B) kind=tpcb secs=$SECS clients=2 hold=0 av=on desc="pgbench TPC-B, scale $SCALE, 2 clients" ;;
	C) kind=tpcb secs=$SECS clients=2 hold=$((SECS * 3 / 10)) av=$C_AV desc="pgbench TPC-B, scale $SCALE, 2 clients, REPEATABLE READ snapshot held $((SECS * 3 / 10)) s" ;;
	D) kind=upd secs=$((SECS / 2)) clients=4 hold=$((SECS / 5)) av=on desc="update-only, $ROWS rows, 4 clients, REPEATABLE READ snapshot held $((SECS / 5)) s" ;;
	esac
	echo
	echo "## workload $w: $desc, $secs s, autovacuum $av (load $(cut -d' ' -f1-3 /proc/loadavg))"
	set_autovacuum "$av"
	order=$AMS
	case $w in B | D) order=$(echo "$AMS" | tr ' ' '\n' | tac | tr '\n' ' ') ;; esac
	for am in $order; do
		run_one "$w" "$am" "$kind" "$secs" "$clients" "$hold"
	done
	report "$w"
done
echo
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# TPS: pgbench's, without connection time; ratio: rustydb/heap of the two back-to-back runs."
echo "# server CPU: CPU time of the run's exited server processes (backends, autovacuum workers) per transaction."
echo "# WAL bytes/txn: pg_current_wal_lsn() difference over the run / transactions processed;"
echo "#   records and full-page images: pg_waldump --stats of that WAL (full-page images: once per page"
echo "#   touched after a checkpoint, so fewer per transaction the more transactions a run makes)."
echo "# pages: pg_relation_size / block size, main fork; undo: pg_relation_size(rustydb.undo_relation(table))."
