#!/usr/bin/env bash
# PostgreSQL 15's own regression (parallel schedule) and isolation suites
# with default_table_access_method = rustydb.
#
# Every test runs twice on the same binaries and configuration: once with
# heap as the default table access method (the baseline) and once with
# rustydb. A test passes when its rustydb output equals its heap output, or
# when it is listed in test/pgsuite/expected-differences.txt with the
# reason. Comparing against heap rather than the committed expected files
# keeps the verdict about rustydb only (the Debian server may be a newer
# minor release than the source the tests come from).
#
#   bash scripts/pgsuite.sh [--regress-only|--isolation-only] [test ...]
#
#   RDB_PGSUITE_STANDBY=1 RDB_PGSUITE_CONF="wal_consistency_checking = 'rustydb'"
#       also streams the rustydb run to a standby that checks every replayed
#       rustydb page against the primary's image, and fails on any problem
#   RDB_TDE=1
#       encryption on by default (test/lib/cluster.sh: a test keyring and
#       rustydb.encrypt_new_tables = on on both servers, which leaves heap
#       tables alone): every rustydb table of the run is encrypted, checked
#       after it; the differences allowed are those of
#       test/pgsuite/expected-differences-tde.txt (TDE issue, acceptance 2);
#       psql's "Options: encrypted=true" lines (\d+ of an encrypted table)
#       are taken out of the rustydb run's output before the comparison
#
# The PostgreSQL source comes from Debian's deb-src (cached under
# build/pgsrc); only regress.so, refint.so and autoinc.so are built from it:
# pg_regress, pg_isolation_regress and isolationtester ship in
# postgresql-server-dev-15.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

SUITES="regress isolation"
case "${1:-}" in
--regress-only)
	SUITES=regress
	shift
	;;
--isolation-only)
	SUITES=isolation
	shift
	;;
esac
ONLY_TESTS=("$@")

EXPECTED=$ROOT/test/pgsuite/expected-differences.txt
MAX_REGRESS_DIFFS=10
MAX_ISOLATION_DIFFS=3
if [ "${RDB_TDE:-0}" = 1 ]; then
	# the TDE issue asks for every difference from the unencrypted run to
	# be physical and listed, with no count; longer rows move some plans
	EXPECTED=$ROOT/test/pgsuite/expected-differences-tde.txt
	MAX_REGRESS_DIFFS=12
fi

bash scripts/install-deps.sh
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PGXS_DIR=$($PG_CONFIG --pkglibdir)/pgxs

# ---- PostgreSQL source ----
SRC_CACHE=${RDB_PGSRC_CACHE:-$ROOT/build/pgsrc}
mkdir -p "$SRC_CACHE"
fetch_source() {
	local installed versions v
	if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ /etc/apt/sources.list 2>/dev/null &&
		! grep -qs '^deb-src' /etc/apt/sources.list 2>/dev/null; then
		sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
			>/etc/apt/sources.list.d/rustydb-deb-src.sources
		apt-get update -qq >/dev/null
	fi
	command -v bzip2 >/dev/null || apt-get install -y -qq bzip2 >/dev/null
	installed=$(dpkg-query -W -f='${Version}' postgresql-15)
	# The installed version first; security updates may lack a source
	# package, so fall back to the newest source apt can fetch.
	versions="$installed $(apt-cache showsrc postgresql-15 | sed -n 's/^Version: //p' | sort -rV)"
	for v in $versions; do
		(cd "$SRC_CACHE" && apt-get source --download-only -qq "postgresql-15=$v" >/dev/null 2>&1) || continue
		local upstream=${v%%-*}
		local tarball
		tarball=$(ls "$SRC_CACHE"/postgresql-15_"$upstream".orig.tar.* 2>/dev/null | head -n1)
		[ -n "$tarball" ] || continue
		tar xf "$tarball" -C "$SRC_CACHE"
		echo "$SRC_CACHE/postgresql-$upstream" >"$SRC_CACHE/current"
		echo "pgsuite: PostgreSQL source $upstream (server is $installed)"
		return 0
	done
	echo "pgsuite: could not fetch the postgresql-15 source package" >&2
	exit 1
}
if [ ! -f "$SRC_CACHE/current" ] || [ ! -d "$(cat "$SRC_CACHE/current")" ]; then
	fetch_source
fi
PGSRC=$(cat "$SRC_CACHE/current")

# ---- regress.so, refint.so, autoinc.so ----
MODDIR=$SRC_CACHE/modules
if [ ! -f "$MODDIR/regress.so" ]; then
	mkdir -p "$MODDIR"
	cp "$PGSRC/src/test/regress/regress.c" "$PGSRC/contrib/spi/refint.c" \
		"$PGSRC/contrib/spi/autoinc.c" "$MODDIR/"
	cat >"$MODDIR/Makefile" <<MK
MODULES = regress refint autoinc
PG_CONFIG = $PG_CONFIG
PGXS := \$(shell \$(PG_CONFIG) --pgxs)
override with_llvm = no
include \$(PGXS)
MK
	make -s -C "$MODDIR" >/dev/null
fi

# ---- rustydb build and private install ----
make -s -j"$(nproc)"
WORK=$(mktemp -d /tmp/rustydb-pgsuite.XXXXXX)
chmod 755 "$WORK"
. test/lib/install.sh
RDB_BINDIR=$(rdb_temp_install "$WORK/install" "$ROOT")
export RDB_BINDIR
RDB_WORK=$WORK/nodes
mkdir -p "$RDB_WORK"
export RDB_WORK
. test/lib/cluster.sh
finish() {
	rdb_cleanup
	if [ -z "${RDB_KEEP:-}" ]; then rm -rf "$WORK"; else echo "work directory kept: $WORK"; fi
}
trap finish EXIT

cp -a "$MODDIR"/*.so "$WORK/"
chmod -R a+rX "$WORK"

# A server per run: rustydb preloaded and installed in template1, so every
# database the tests create has it; the default table access method is
# the only difference between the two runs.
start_node() {
	local name=$1 am=$2
	rdb_node_init "$name"
	rdb_node_conf "$name" "default_table_access_method = '$am'"
	rdb_node_conf "$name" "max_prepared_transactions = 10"
	rdb_node_conf "$name" "max_connections = 100"
	rdb_node_conf "$name" "log_autovacuum_min_duration = 0"
	rdb_node_conf "$name" "log_lock_waits = on"
	# rustydb's session history turns query ids on; 'regress' computes them
	# but keeps EXPLAIN VERBOSE from printing them (they hash OIDs, which
	# differ between the two runs), as pg_stat_statements' tests do.
	rdb_node_conf "$name" "compute_query_id = regress"
	if [ -n "${RDB_PGSUITE_CONF:-}" ]; then rdb_node_conf "$name" "$RDB_PGSUITE_CONF"; fi
	rdb_node_start "$name"
	RDB_DB=template1 rdb_psql "$name" "CREATE EXTENSION rustydb"
}

# run_suite SUITE NODE OUTDIR
run_suite() {
	local suite=$1 node=$2 out=$3 sched tests=()
	mkdir -p "$out"
	chown -R "$RDB_SERVER_USER" "$out"
	if [ "${#ONLY_TESTS[@]}" -gt 0 ]; then
		tests=("${ONLY_TESTS[@]}")
	fi
	if [ "$suite" = regress ]; then
		RDB_DB=template1 rdb_psql "$node" "CREATE DATABASE regression TEMPLATE template1"
		sched=(--schedule="$PGSRC/src/test/regress/parallel_schedule")
		[ "${#tests[@]}" -gt 0 ] && sched=()
		(cd "$out" && rdb_as_server "$PGXS_DIR/src/test/regress/pg_regress" \
			--inputdir="$PGSRC/src/test/regress" --outputdir="$out" --bindir="$RDB_BINDIR" \
			--dlpath="$WORK" --use-existing --host="$(rdb_sock "$node")" --port="$(rdb_port "$node")" \
			--user=postgres --dbname=regression --max-concurrent-tests=20 \
			"${sched[@]}" "${tests[@]}") >"$out/run.log" 2>&1 || true
	else
		RDB_DB=template1 rdb_psql "$node" "CREATE DATABASE isolation_regression TEMPLATE template1"
		sched=(--schedule="$PGSRC/src/test/isolation/isolation_schedule")
		[ "${#tests[@]}" -gt 0 ] && sched=()
		(cd "$out" && rdb_as_server "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
			--inputdir="$PGSRC/src/test/isolation" --outputdir="$out" --bindir="$RDB_BINDIR" \
			--use-existing --host="$(rdb_sock "$node")" --port="$(rdb_port "$node")" \
			--user=postgres --dbname=isolation_regression \
			"${sched[@]}" "${tests[@]}") >"$out/run.log" 2>&1 || true
	fi
}

total_fail=0
for suite in $SUITES; do
	echo
	echo "==== PostgreSQL $suite suite: heap baseline ===="
	start_node "${suite}_heap" heap
	run_suite "$suite" "${suite}_heap" "$WORK/$suite/heap"
	rdb_node_stop "${suite}_heap"
	tail -n 3 "$WORK/$suite/heap/run.log"

	echo "==== PostgreSQL $suite suite: rustydb ===="
	start_node "${suite}_rustydb" rustydb
	if [ -n "${RDB_PGSUITE_STANDBY:-}" ]; then
		# a streaming standby replays every record the suite writes; with
		# wal_consistency_checking it compares each replayed page with the
		# primary's full-page image
		rdb_standby_create "${suite}_rustydb" "${suite}_standby"
	fi
	run_suite "$suite" "${suite}_rustydb" "$WORK/$suite/rustydb"
	crashed=$(grep -c "terminated by signal" "$RDB_WORK/${suite}_rustydb/server.log" || true)
	unencrypted=0
	if [ "${RDB_TDE:-0}" = 1 ]; then
		# the tables the suite leaves behind: every rustydb one encrypted
		db=regression
		[ "$suite" = isolation ] && db=isolation_regression
		counts=$(RDB_DB=$db rdb_psql "${suite}_rustydb" "SELECT count(*) FILTER (WHERE encrypted) || ' ' || count(*) FILTER (WHERE NOT encrypted) FROM rustydb.encryption_status")
		read -r n_enc n_plain <<<"$counts"
		echo "$suite: $n_enc encrypted rustydb tables left by the run, $n_plain not encrypted"
		if [ "$n_plain" -ne 0 ] || [ "$n_enc" -eq 0 ]; then
			unencrypted=1
		fi
	fi
	if [ -n "${RDB_PGSUITE_STANDBY:-}" ]; then
		if (rdb_wait_replay "${suite}_rustydb" "${suite}_standby"); then
			echo "standby replayed the whole $suite run"
		else
			crashed=$((crashed + 1))
		fi
		bad=$(grep -cE "inconsistent page|FATAL|PANIC|terminated by signal" "$RDB_WORK/${suite}_standby/server.log" || true)
		if [ "$bad" -gt 0 ]; then
			echo "$suite: the standby reported $bad replay problem(s):"
			grep -E "inconsistent page|FATAL|PANIC|terminated by signal" "$RDB_WORK/${suite}_standby/server.log" | head -n 20
			crashed=$((crashed + bad))
		else
			echo "$suite: the standby replayed every record without a problem"
		fi
		rdb_node_stop "${suite}_standby"
	fi
	rdb_node_stop "${suite}_rustydb"
	tail -n 3 "$WORK/$suite/rustydb/run.log"

	if [ "$suite" = regress ]; then max=$MAX_REGRESS_DIFFS; else max=$MAX_ISOLATION_DIFFS; fi
	listed=$(awk -v s="$suite" '$1 == s {print $2}' "$EXPECTED" | sort -u)
	nlisted=$(echo "$listed" | sed '/^$/d' | wc -l)
	pass=0 fail=0 expected_diff=0
	: >"$WORK/$suite.diffs"
	for h in "$WORK/$suite/heap/results/"*.out; do
		t=$(basename "$h" .out)
		r=$WORK/$suite/rustydb/results/$t.out
		if [ "${RDB_TDE:-0}" = 1 ] && [ -f "$r" ]; then
			# an encrypted table keeps encrypted=true in pg_class.reloptions
			# (for pg_dump, docs/tde.md), which psql's \d+ prints as an
			# "Options:" line: the only normalisation of the comparison
			sed -E '/^Options: encrypted=true$/d; s/^Options: encrypted=true, /Options: /;
				s/^(Options: .*), encrypted=true(,|$)/\1\2/' \
				"$r" >"$r.normalised"
			r=$r.normalised
		fi
		if [ -f "$r" ] && cmp -s "$h" "$r"; then
			pass=$((pass + 1))
			if echo "$listed" | grep -qx "$t"; then
				echo "note: $suite/$t is listed as a difference but now matches heap: remove it from $EXPECTED"
			fi
		elif echo "$listed" | grep -qx "$t"; then
			expected_diff=$((expected_diff + 1))
			diff -u "$h" "$r" >>"$WORK/$suite.diffs" 2>&1 || true
		else
			fail=$((fail + 1))
			echo "DIFFERS: $suite/$t"
			diff -u "$h" "$r" >>"$WORK/$suite.diffs" 2>&1 || true
		fi
	done
	echo "$suite: $pass same as heap, $expected_diff listed differences, $fail unexpected differences"
	if [ "$crashed" -gt 0 ]; then
		echo "$suite: the rustydb server had $crashed backend crash(es)"
		grep -B2 -A2 "terminated by signal" "$RDB_WORK/${suite}_rustydb/server.log" | head -n 30
		fail=$((fail + crashed))
	fi
	if [ "$unencrypted" -gt 0 ]; then
		echo "$suite: encryption on by default did not encrypt every rustydb table"
		fail=$((fail + 1))
	fi
	if [ "$nlisted" -gt "$max" ]; then
		echo "$suite: $nlisted listed differences, more than the $max allowed"
		fail=$((fail + 1))
	fi
	if [ "$fail" -gt 0 ]; then
		echo "---- $suite differences (first 400 lines; full file $WORK/$suite.diffs) ----"
		head -n 400 "$WORK/$suite.diffs"
	fi
	mkdir -p "$ROOT/build"
	cp "$WORK/$suite.diffs" "$ROOT/build/pgsuite-$suite.diffs"
	echo "# $suite passed $pass, failed $fail"
	total_fail=$((total_fail + fail))
done

echo "# passed $((total_fail == 0 ? 1 : 0)), failed $total_fail"
[ "$total_fail" -eq 0 ]
