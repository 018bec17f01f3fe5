#!/usr/bin/env bash
# rustydb's whole test suite, from a fresh Debian 12 machine:
#   install dependencies, static checks (format, boundary), build with
#   -Werror, then pg_regress, pgTAP, checks and scenario tests, each against
#   throwaway servers running the freshly built rustydb. Ends with totals.
#
#   bash scripts/test.sh            everything below
#   bash scripts/test.sh --only L   one layer: static, regress, isolation, pgtap, checks, concurrency, scenarios, pgsuite, subscription, cassert
#   RDB_SKIP="pgsuite scenarios"    skip layers (for quick local runs; CI skips none)
#   RDB_CASSERT_ONLY="regress sqlsmith"  the cassert layer's parts to run (default all:
#                                   regress isolation scenarios pgsuite pgsuite-tde sqlsmith)
#   RDB_KEEP=1                      keep the work directory for inspection
#   RDB_EXPECT_INPLACE=0            the in-place update tests (issue 21) skip their checks
#                                   that rustydb took the in-place path (default 1)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

ONLY=""
if [ "${1:-}" = "--only" ]; then
	ONLY=$2
fi
want() {
	case " ${RDB_SKIP:-} " in *" $1 "*) return 1 ;; esac
	[ -z "$ONLY" ] || [ "$ONLY" = "$1" ]
}

declare -a LAYER_NAMES=() LAYER_PASS=() LAYER_FAIL=() LAYER_SECS=()
LAYER_T0=$SECONDS
# record LAYER PASS FAIL [SECONDS]: a row of the totals; the time is that
# since the last banner unless given
record() {
	LAYER_NAMES+=("$1")
	LAYER_PASS+=("$2")
	LAYER_FAIL+=("$3")
	LAYER_SECS+=("${4:-$((SECONDS - LAYER_T0))}")
}
banner() {
	printf '\n==== %s ====\n' "$*"
	LAYER_T0=$SECONDS
}

# tally FILE STATUS [SUITES]: sets p and q, the sums of FILE's
# "# passed N, failed M" lines (with SUITES, a regex such as
# 'regress|isolation': its "# SUITE passed N, failed M" lines); a non-zero
# STATUS with no failure counted counts as one failure
tally() {
	local pre=""
	[ -n "${3:-}" ] && pre="($3) "
	read -r p q < <(grep -E "^# ${pre}passed [0-9]+, failed [0-9]+\$" "$1" |
		awk '{sub(",", "", $(NF - 2)); p += $(NF - 2); q += $NF} END {print p + 0, q + 0}')
	if [ "$2" -ne 0 ] && [ "$q" -eq 0 ]; then q=1; fi
}

banner "dependencies"
bash scripts/install-deps.sh

if want static; then
	banner "static checks"
	pass=0 fail=0
	if make -s check-format; then
		echo "ok - C++ sources are clang-formatted"
		pass=$((pass + 1))
	else
		echo "not ok - unformatted C++ (run: make format)"
		fail=$((fail + 1))
	fi
	if perl scripts/check-boundary.pl; then
		echo "ok - every extern \"C\" entry point is noexcept and guarded"
		pass=$((pass + 1))
	else
		echo "not ok - boundary rule violated"
		fail=$((fail + 1))
	fi
	record static "$pass" "$fail"
fi

banner "build (-Wall -Wextra -Werror)"
make -s clean >/dev/null
make -s -j"$(nproc)" WERROR=1
echo "built in $((SECONDS - LAYER_T0)) s"

WORK=$(mktemp -d /tmp/rustydb-test.XXXXXX)
chmod 755 "$WORK"
cleanup() {
	if [ -z "${RDB_KEEP:-}" ]; then rm -rf "$WORK"; else echo "work directory kept: $WORK"; fi
}
trap cleanup EXIT

# shellcheck source=../test/lib/install.sh
. test/lib/install.sh
# shellcheck source=../test/lib/serverlog.sh
. test/lib/serverlog.sh
RDB_BINDIR=$(rdb_temp_install "$WORK/install" "$ROOT")
export RDB_BINDIR
PGXS_DIR=$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)/pgxs
if [ "$(id -u)" -eq 0 ]; then
	SERVER_USER=postgres
	as_server() { runuser -u postgres -- "$@"; }
else
	SERVER_USER=$(id -un)
	as_server() { "$@"; }
fi

# run_pg_regress LAYER DRIVER SCHEDULE INPUTS...: a pg_regress-style driver
# against a temporary instance with rustydb preloaded (test/regress.conf),
# run as the server user in a copy of the inputs under $WORK/LAYER; the
# server in $RDB_BINDIR. A failed assertion or a crash in the instance's
# log is one more failure each.
run_pg_regress() {
	local layer=$1 driver=$2 schedule=$3 dir=$WORK/$1 ntests nfail status problems ncrash
	shift 3
	mkdir -p "$dir"
	cp -a "$@" test/regress.conf "$dir"/
	cp "$schedule" "$dir/schedule"
	chown -R "$SERVER_USER" "$dir"
	ntests=$(grep -E '^test:' "$schedule" | sed 's/^test://' | wc -w)
	set +e
	(cd "$dir" && as_server "$driver" \
		--inputdir="$dir" --outputdir="$dir" --bindir="$RDB_BINDIR" \
		--temp-instance="$dir/tmp_check" --temp-config="$dir/regress.conf" \
		--encoding=UTF8 --no-locale --dbname="rustydb_$layer" --schedule="$dir/schedule") 2>&1 | tee "$WORK/$layer.out"
	status=${PIPESTATUS[0]}
	set -e
	nfail=$(grep -Ec '\.\.\. FAILED' "$WORK/$layer.out" || true)
	if [ "$status" -ne 0 ] && [ "$nfail" -eq 0 ]; then nfail=$ntests; fi
	if [ -s "$dir/regression.diffs" ]; then
		echo "---- $layer regression.diffs (first 300 lines) ----"
		head -n 300 "$dir/regression.diffs"
	fi
	ncrash=0
	if problems=$(rdb_server_problems "$dir/log/postmaster.log"); then
		ncrash=$(echo "$problems" | rdb_count_problems)
		echo "---- $layer: $ncrash failed assertion(s) or crash(es) in the server log ----"
		echo "$problems" | rdb_problem_digest 200
	fi
	record "$layer" "$((ntests - nfail))" "$((nfail + ncrash))"
}

if want regress; then
	banner "pg_regress"
	run_pg_regress regress "$PGXS_DIR/src/test/regress/pg_regress" test/schedule sql expected
fi

# the in-place update specs' rdb_expect_inplace reads rdb_test.expect_inplace
ISO_PGOPTIONS=${PGOPTIONS:-}
if [ "${RDB_EXPECT_INPLACE:-1}" = 0 ]; then ISO_PGOPTIONS="$ISO_PGOPTIONS -c rdb_test.expect_inplace=off"; fi
if want isolation && ls test/isolation/specs/*.spec >/dev/null 2>&1; then
	banner "isolation specs"
	PGOPTIONS=$ISO_PGOPTIONS run_pg_regress isolation "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
		test/isolation/schedule test/isolation/specs test/isolation/expected
fi

# shellcheck source=../test/lib/cluster.sh
RDB_WORK=$WORK/nodes
mkdir -p "$RDB_WORK"
export RDB_WORK

if want pgtap; then
	banner "pgTAP"
	(
		. test/lib/cluster.sh
		trap rdb_cleanup EXIT
		rdb_node_init tap
		rdb_node_start tap
		rdb_psql tap "CREATE EXTENSION pgtap; CREATE EXTENSION rustydb;"
		set +e
		PATH=$RDB_BINDIR:$PATH pg_prove -h "$(rdb_sock tap)" -p "$(rdb_port tap)" -U postgres \
			-d postgres test/pgtap/*.sql 2>&1 | tee "$WORK/pgtap.out"
		exit "${PIPESTATUS[0]}"
	) && status=0 || status=$?
	total=$(sed -nE 's/.*Tests=([0-9]+).*/\1/p' "$WORK/pgtap.out" | tail -n1 || true)
	failed=$({ grep -Eo 'Failed [0-9]+/[0-9]+ subtests' "$WORK/pgtap.out" || true; } | awk '{split($2,a,"/"); s+=a[1]} END {print s+0}')
	total=${total:-0}
	if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
	record pgtap "$((total - failed))" "$failed"
fi

run_script_layer() {
	# run_script_layer LAYER DIR | run_script_layer LAYER FILE...
	local layer=$1 pass=0 fail=0 f out
	local -a files
	shift
	if [ -d "$1" ]; then files=("$1"/*.sh); else files=("$@"); fi
	banner "$layer"
	for f in "${files[@]}"; do
		[ -e "$f" ] || continue
		echo "---- $f"
		out=$WORK/$layer-$(basename "$f").out
		set +e
		# each script gets a node directory of its own
		mkdir -p "$WORK/nodes/$layer-$(basename "$f" .sh)"
		RDB_WORK=$WORK/nodes/$layer-$(basename "$f" .sh) bash "$f" 2>&1 | tee "$out"
		status=${PIPESTATUS[0]}
		set -e
		tally "$out" "$status"
		pass=$((pass + p))
		fail=$((fail + q))
	done
	record "$layer" "$pass" "$fail"
}

if want checks; then run_script_layer checks test/checks; fi
# concurrent writers under a watchdog that fails a run that stops committing
if want concurrency; then run_script_layer concurrency test/concurrency; fi
if want scenarios; then run_script_layer scenarios test/scenarios; fi
# the access method's crash and standby scenarios again, every table encrypted
if want scenarios; then
	RDB_TDE=1 run_script_layer scenarios-tde test/scenarios/am_crash.sh test/scenarios/am_standby.sh \
		test/scenarios/am_inplace_crash.sh test/scenarios/am_inplace_page.sh test/scenarios/am_dead_tuples.sh \
		test/scenarios/am_vacuum_skip.sh
fi

# PostgreSQL's own regression and isolation suites with default_table_access_method
# = rustydb, each test compared with a heap run; differences not listed in
# test/pgsuite/expected-differences.txt fail (issue 3, acceptance 8).
if want pgsuite; then
	banner "PostgreSQL suites on rustydb tables"
	set +e
	# the rustydb runs stream to a standby that checks every replayed
	# rustydb page against the primary's image (wal_consistency_checking)
	RDB_REPLAY_TIMEOUT=900 RDB_PGSUITE_STANDBY=1 \
		RDB_PGSUITE_CONF="wal_consistency_checking = 'rustydb'" \
		bash scripts/pgsuite.sh 2>&1 | tee "$WORK/pgsuite.out"
	status=${PIPESTATUS[0]}
	set -e
	tally "$WORK/pgsuite.out" "$status" 'regress|isolation'
	record pgsuite "$p" "$q"

	# the regression suite again with encryption on by default (TDE issue,
	# acceptance 2): differences allowed by expected-differences-tde.txt
	banner "PostgreSQL regression suite on encrypted rustydb tables"
	set +e
	RDB_TDE=1 bash scripts/pgsuite.sh --regress-only 2>&1 | tee "$WORK/pgsuite-tde.out"
	status=${PIPESTATUS[0]}
	set -e
	tally "$WORK/pgsuite-tde.out" "$status" regress
	record pgsuite-tde "$p" "$q"
fi

# PostgreSQL's subscription TAP suite with rustydb the default table access
# method on publisher and subscriber, each test compared with a heap run;
# differences not listed in test/pgsuite/expected-differences-subscription.txt
# fail (issue 20, acceptance 1)
if want subscription; then
	banner "PostgreSQL subscription TAP suite on rustydb tables"
	set +e
	bash scripts/subscription-tap.sh 2>&1 | tee "$WORK/subscription.out"
	status=${PIPESTATUS[0]}
	set -e
	tally "$WORK/subscription.out" "$status" subscription
	record subscription "$p" "$q"
fi

# The assert-enabled layer: PostgreSQL 15 built with --enable-cassert
# --enable-debug (scripts/cassert-build.sh, cached under build/pg-cassert),
# rustydb built for it in a copy of the tree, and the tests that exercise
# the storage and the executor paths run on it. A failed Assert() is a
# failed test: every part checks its servers' logs (test/lib/serverlog.sh).
# smith_seconds FILE: how long the sqlsmith run reported in FILE took (0: none)
smith_seconds() {
	sed -n 's/^sqlsmith: exit status [0-9]* after \([0-9]*\) s.*/\1/p' "$1" | awk '{ s += $1 } END { print s + 0 }'
}
cassert_part() {
	case " ${RDB_CASSERT_ONLY:-regress isolation scenarios pgsuite pgsuite-tde sqlsmith} " in
	*" $1 "*) return 0 ;;
	esac
	return 1
}
if want cassert; then
	banner "assert-enabled PostgreSQL and rustydb for it"
	set +e
	CASSERT_PG_CONFIG=$(bash scripts/cassert-build.sh)
	status=$?
	if [ "$status" -eq 0 ]; then
		echo "PostgreSQL (assert-enabled) ready after $((SECONDS - LAYER_T0)) s" \
			"(a cold build took $(cat "$(dirname "$(dirname "$CASSERT_PG_CONFIG")")/build-seconds") s)"
		CASSERT_TREE=$(WERROR=1 rdb_build_tree "$ROOT" "$CASSERT_PG_CONFIG") &&
			CASSERT_BINDIR=$(rdb_temp_install "$WORK/install-cassert" "$CASSERT_TREE" "$CASSERT_PG_CONFIG")
		status=$?
	fi
	set -e
	if [ "$status" -ne 0 ]; then
		echo "not ok - the assert-enabled server or rustydb for it did not build"
		record cassert-build 0 1
	else
		echo "server: $CASSERT_PG_CONFIG ($("$CASSERT_PG_CONFIG" --version)); rustydb built in $CASSERT_TREE"
		# the client is the system's psql: the expected output of rustydb's
		# tests is psql's, and the source the server is built from may be
		# an older minor release (Debian keeps no source package for some
		# security updates; psql 15.20 skips the data of a COPY FROM STDIN
		# the server refused, 15.18 runs it as commands)
		cp /usr/lib/postgresql/15/bin/psql "$CASSERT_BINDIR/psql"
		record cassert-build 1 0
		CASSERT_PGXS=$("$CASSERT_PG_CONFIG" --pkglibdir)/pgxs
		if cassert_part regress; then
			banner "pg_regress (assert-enabled server)"
			RDB_BINDIR=$CASSERT_BINDIR run_pg_regress cassert-regress \
				"$CASSERT_PGXS/src/test/regress/pg_regress" test/schedule sql expected
		fi
		if cassert_part isolation; then
			banner "isolation specs (assert-enabled server)"
			RDB_BINDIR=$CASSERT_BINDIR PGOPTIONS=$ISO_PGOPTIONS run_pg_regress cassert-isolation \
				"$CASSERT_PGXS/src/test/isolation/pg_isolation_regress" \
				test/isolation/schedule test/isolation/specs test/isolation/expected
		fi
		if cassert_part scenarios; then
			# the crash and standby scenarios, plain and encrypted
			RDB_BINDIR=$CASSERT_BINDIR run_script_layer cassert-scenarios \
				test/scenarios/am_crash.sh test/scenarios/am_standby.sh test/scenarios/core_cluster.sh \
				test/scenarios/tde_cache.sh test/scenarios/am_decode.sh test/scenarios/am_inplace_crash.sh \
				test/scenarios/am_inplace_page.sh test/scenarios/am_inplace_held.sh test/scenarios/am_vacuum_skip.sh
			RDB_TDE=1 RDB_BINDIR=$CASSERT_BINDIR run_script_layer cassert-scenarios-tde \
				test/scenarios/am_crash.sh test/scenarios/am_standby.sh test/scenarios/am_inplace_crash.sh \
				test/scenarios/am_inplace_page.sh
		fi
		if cassert_part pgsuite || cassert_part sqlsmith; then
			banner "PostgreSQL suites on rustydb tables (assert-enabled server)"
			suites=()
			cassert_part pgsuite || suites=(--regress-only)
			smith=0
			cassert_part sqlsmith && smith=${RDB_SQLSMITH_QUERIES:-3000}
			set +e
			RDB_PG_CONFIG=$CASSERT_PG_CONFIG RDB_REPLAY_TIMEOUT=900 RDB_PGSUITE_STANDBY=1 \
				RDB_PGSUITE_CONF="wal_consistency_checking = 'rustydb'" RDB_PGSUITE_SQLSMITH=$smith \
				bash scripts/pgsuite.sh "${suites[@]}" 2>&1 | tee "$WORK/cassert-pgsuite.out"
			status=${PIPESTATUS[0]}
			set -e
			secs=$(smith_seconds "$WORK/cassert-pgsuite.out")
			if cassert_part pgsuite; then
				tally "$WORK/cassert-pgsuite.out" 0 'regress|isolation'
				record cassert-pgsuite "$p" "$q" $((SECONDS - LAYER_T0 - secs))
			fi
			if cassert_part sqlsmith; then
				tally "$WORK/cassert-pgsuite.out" 0 sqlsmith
				record cassert-sqlsmith "$p" "$q" "$secs"
			fi
			# a failure outside the counted parts (the script died) counts once
			if [ "$status" -ne 0 ] && ! grep -qE '^# (regress|isolation|sqlsmith) passed [0-9]+, failed [1-9]' "$WORK/cassert-pgsuite.out"; then
				record cassert-pgsuite-run 0 1
			fi
		fi
		if cassert_part pgsuite-tde; then
			banner "PostgreSQL regression suite on encrypted rustydb tables (assert-enabled server)"
			# sqlsmith again, on the encrypted regression database
			smith=0
			cassert_part sqlsmith && smith=${RDB_SQLSMITH_QUERIES:-3000}
			set +e
			RDB_TDE=1 RDB_PG_CONFIG=$CASSERT_PG_CONFIG RDB_PGSUITE_SQLSMITH=$smith \
				bash scripts/pgsuite.sh --regress-only 2>&1 | tee "$WORK/cassert-pgsuite-tde.out"
			status=${PIPESTATUS[0]}
			set -e
			secs=$(smith_seconds "$WORK/cassert-pgsuite-tde.out")
			tally "$WORK/cassert-pgsuite-tde.out" 0 regress
			record cassert-pgsuite-tde "$p" "$q" $((SECONDS - LAYER_T0 - secs))
			if [ "$smith" -gt 0 ]; then
				tally "$WORK/cassert-pgsuite-tde.out" 0 sqlsmith
				record cassert-sqlsmith-tde "$p" "$q" "$secs"
			fi
			if [ "$status" -ne 0 ] && ! grep -qE '^# (regress|sqlsmith) passed [0-9]+, failed [1-9]' "$WORK/cassert-pgsuite-tde.out"; then
				record cassert-pgsuite-tde-run 0 1
			fi
		fi
	fi
fi

banner "totals"
tp=0 tf=0
printf '%-20s %8s %8s %9s\n' layer passed failed seconds
for i in "${!LAYER_NAMES[@]}"; do
	printf '%-20s %8d %8d %9d\n' "${LAYER_NAMES[$i]}" "${LAYER_PASS[$i]}" "${LAYER_FAIL[$i]}" "${LAYER_SECS[$i]}"
	tp=$((tp + LAYER_PASS[i]))
	tf=$((tf + LAYER_FAIL[i]))
done
printf '%-20s %8d %8d %9d\n' total "$tp" "$tf" "$SECONDS"
if [ "$tf" -ne 0 ]; then
	echo "FAILED: $tf test(s) failed"
	exit 1
fi
echo "PASSED: all $tp tests passed"
