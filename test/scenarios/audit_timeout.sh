#!/usr/bin/env bash
# rustydb.transaction_timeout: a transaction open longer than the setting
# ends its session with SQLSTATE 25P04, whether it runs a statement, sits
# idle, or sits idle after a failed statement; transactions shorter than
# the limit and sessions idle outside a transaction are left alone. The
# margins between the limits and the waits are a second or more, so that a
# loaded machine's scheduling delays do not decide a check.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

rdb_node_init tt
rdb_node_start tt

run() { # run FILE: psql on a script, stderr and stdout together
	"$RDB_BINDIR/psql" -X -q -A -t -v VERBOSITY=verbose -h "$(rdb_sock tt)" -p "$(rdb_port tt)" \
		-U postgres -d postgres -f "$1" 2>&1 || true
}
W=$RDB_WORK

cat >"$W/active.sql" <<'SQL'
SET rustydb.transaction_timeout = '500ms';
BEGIN;
SELECT pg_sleep(5);
SELECT 'survived';
SQL
start=$(date +%s%N)
out=$(run "$W/active.sql")
ms=$((($(date +%s%N) - start) / 1000000))
rdb_ok "a running statement is ended" grep -q "FATAL:  25P04: terminating connection due to transaction timeout" <<<"$out"
rdb_ok "... well before it would have finished (${ms} ms)" test "$ms" -lt 4000
rdb_ok "... and the session is gone" bash -c "! grep -q survived <<<'$out'"

cat >"$W/idle.sql" <<'SQL'
SET rustydb.transaction_timeout = '500ms';
BEGIN;
SELECT 1;
\! sleep 2.5
SELECT 'survived';
SQL
out=$(run "$W/idle.sql")
rdb_ok "an idle transaction is ended" grep -q "25P04: terminating connection due to transaction timeout" <<<"$out"
rdb_ok "... with a detail naming the setting" grep -q "rustydb.transaction_timeout (500 ms)" <<<"$out"

cat >"$W/aborted.sql" <<'SQL'
SET rustydb.transaction_timeout = '500ms';
BEGIN;
SELECT 1/0;
\! sleep 2.5
ROLLBACK;
SELECT 'survived';
SQL
out=$(run "$W/aborted.sql")
rdb_ok "an idle aborted transaction is ended" grep -q "25P04: terminating connection" <<<"$out"

cat >"$W/implicit.sql" <<'SQL'
SET rustydb.transaction_timeout = '300ms';
SELECT pg_sleep(2);
SQL
out=$(run "$W/implicit.sql")
rdb_ok "a single long statement (implicit transaction) is ended" grep -q "25P04" <<<"$out"

cat >"$W/fine.sql" <<'SQL'
SET rustydb.transaction_timeout = '2s';
BEGIN;
SELECT 1/0;
ROLLBACK;
BEGIN;
SELECT pg_sleep(0.4);
COMMIT;
SELECT pg_sleep(0.4);
SELECT pg_sleep(0.4);
\! sleep 2.5
BEGIN;
SELECT 1;
COMMIT;
\! sleep 2.5
SELECT 'survived';
SQL
out=$(run "$W/fine.sql")
rdb_ok "short transactions and idle sessions are left alone" grep -q "^survived$" <<<"$out"
rdb_ok "... with no timeout error" bash -c "! grep -q 25P04 <<<'$out'"

cat >"$W/off.sql" <<'SQL'
SET rustydb.transaction_timeout = '1s';
BEGIN;
SET rustydb.transaction_timeout = 0;
SELECT pg_sleep(1.5);
COMMIT;
SELECT 'survived';
SQL
out=$(run "$W/off.sql")
rdb_ok "turning it off inside the transaction disarms it" grep -q "^survived$" <<<"$out"

rdb_is "the server log names the cause" \
	"$(grep -c 'terminating connection due to transaction timeout' "$W/tt/server.log")" 4

rdb_summary
