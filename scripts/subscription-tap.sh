#!/usr/bin/env bash
# PostgreSQL 15's subscription TAP suite (src/test/subscription) run against
# the installed server binaries, twice: with heap as the default table
# access method (the baseline) and with rustydb preloaded, created in
# template1 and postgres of every node, and the default table access
# method on publisher and subscriber alike. A test passes when it passes
# in both runs, or when its rustydb failure is listed in
# test/pgsuite/expected-differences-subscription.txt with the reason.
#
#   bash scripts/subscription-tap.sh [test.pl ...]
#
#   RDB_PG_CONFIG   the server to test (default: Debian's)
#   RDB_SUBTAP_JOBS prove's parallel jobs (default 2)
#
# The tests come from the PostgreSQL source of test/lib/pgsrc.sh with its
# Perl test modules (PostgreSQL::Test::Cluster); they need IPC::Run
# (Debian's libipc-run-perl) and run as the server's user. Nodes are made
# by initdb through a wrapper that, for the rustydb run, runs CREATE
# EXTENSION rustydb in single-user mode before the test starts the node;
# Cluster.pm appends TEMP_CONFIG (shared_preload_libraries,
# default_table_access_method) to every node's configuration.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ONLY=("$@")
EXPECTED=$ROOT/test/pgsuite/expected-differences-subscription.txt

bash scripts/install-deps.sh
PG_CONFIG=${RDB_PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
# shellcheck source=../test/lib/pgsrc.sh
. test/lib/pgsrc.sh
# shellcheck source=../test/lib/install.sh
. test/lib/install.sh
PGSRC=$(rdb_pgsrc)
WORK=$(mktemp -d /tmp/rustydb-subtap.XXXXXX)
chmod 755 "$WORK"
[ -n "${RDB_KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
TREE=$(rdb_build_tree "$ROOT" "$PG_CONFIG")
BINDIR=$(rdb_temp_install "$WORK/inst" "$TREE" "$PG_CONFIG")
PG_REGRESS=$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress

if [ "$(id -u)" -eq 0 ]; then
	as_server() { runuser -u postgres -- "$@"; }
	chown postgres "$WORK"
else
	as_server() { "$@"; }
fi

# initdb, then (rustydb run) the extension in the two databases tests use
mkdir -p "$WORK/wrap"
cat >"$WORK/wrap/initdb" <<EOF
#!/usr/bin/env bash
set -e
"$BINDIR/initdb" "\$@"
[ "\${RDB_SUBTAP_AM:-heap}" = rustydb ] || exit 0
pgdata=
while [ \$# -gt 0 ]; do
	case "\$1" in -D) pgdata=\$2; shift ;; --pgdata=*) pgdata=\${1#--pgdata=} ;; esac
	shift
done
for db in template1 postgres; do
	echo "CREATE EXTENSION rustydb;" |
		"$BINDIR/postgres" --single -D "\$pgdata" -c shared_preload_libraries=rustydb "\$db" >/dev/null
done
EOF
chmod 755 "$WORK/wrap/initdb"
cat >"$WORK/rustydb.conf" <<EOF
shared_preload_libraries = 'rustydb'
default_table_access_method = rustydb
EOF

cp -a "$PGSRC/src/test/subscription" "$WORK/subscription"
chmod -R a+rX "$WORK"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$WORK/subscription"
TESTS=("${ONLY[@]}")
[ "${#TESTS[@]}" -gt 0 ] || TESTS=($(cd "$WORK/subscription" && ls t/*.pl))

# run AM: prove's per-test verdicts in $WORK/AM.out
run() {
	local am=$1 start=$SECONDS
	local conf=()
	[ "$am" = rustydb ] && conf=(TEMP_CONFIG="$WORK/rustydb.conf")
	mkdir -p "$WORK/$am"
	[ "$(id -u)" -eq 0 ] && chown postgres "$WORK/$am"
	(cd "$WORK/subscription" && as_server env PATH="$WORK/wrap:$BINDIR:$PATH" TESTDIR="$WORK/$am" \
		PG_REGRESS="$PG_REGRESS" RDB_SUBTAP_AM="$am" "${conf[@]}" \
		prove -j "${RDB_SUBTAP_JOBS:-2}" -I "$PGSRC/src/test/perl" -I . "${TESTS[@]}") \
		>"$WORK/$am.out" 2>&1 || true
	echo "# $am run: $((SECONDS - start)) s"
}
run heap
run rustydb

# a test's verdict in a run: ok (or skipped), or what prove's summary says
verdict() {
	local line
	line=$(sed -n '/^Test Summary Report/,$p' "$WORK/$1.out" | grep -E "^$2 " | head -n 1 || true)
	if [ -n "$line" ]; then
		echo "failed: ${line#"$2" }"
	elif grep -qE "^$2 \.+ (ok|skipped)" "$WORK/$1.out"; then
		echo ok
	elif grep -qE "^$2 " "$WORK/$1.out"; then
		echo "failed: $(grep -E "^$2 " "$WORK/$1.out" | tail -n 1)"
	else
		echo "not run"
	fi
}
pass=0 fail=0
for t in "${TESTS[@]}"; do
	h=$(verdict heap "$t")
	r=$(verdict rustydb "$t")
	if [ "$r" = ok ] || [ "$r" = "$h" ]; then
		pass=$((pass + 1))
		echo "ok - $t (heap: $h, rustydb: $r)"
	elif grep -q "^$(basename "$t")[[:space:]]" "$EXPECTED" 2>/dev/null; then
		pass=$((pass + 1))
		echo "ok - $t differs as listed: $(grep "^$(basename "$t")[[:space:]]" "$EXPECTED" | cut -f2-)"
	else
		fail=$((fail + 1))
		echo "not ok - $t (heap: $h, rustydb: $r)"
		for f in "$WORK/rustydb/tmp_check/log/regress_log_$(basename "$t" .pl)"; do
			[ -f "$f" ] && { grep -E "^(not ok|#   Failed| *#  +(got|expected))" "$f" || true; } | head -n 20 | sed 's/^/#   /'
		done
	fi
done
echo "# subscription passed $pass, failed $fail"
[ "$fail" -eq 0 ]
