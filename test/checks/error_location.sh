#!/usr/bin/env bash
# An error raised by rustydb's C++ code (rustydb::Error) carries the
# location of the code that raised it: LOCATION in verbose client output
# and in the server log names the raising function and file, not the
# error boundary that turned the exception into an ereport.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

rdb_node_init loc
rdb_node_conf loc "log_error_verbosity = verbose"
rdb_node_start loc
rdb_psql loc "CREATE EXTENSION rustydb"

out=$(rdb_psql loc "SELECT rustydb.selftest_boundary('rustydb_error')" -v VERBOSITY=verbose 2>&1 || true)
loc=$(sed -n 's/^LOCATION:  //p' <<<"$out")
rdb_ok "a rustydb::Error reports a LOCATION ($loc)" test -n "$loc"
rdb_ok "... naming the raising file, selftest.cpp" grep -q 'selftest\.cpp:[0-9][0-9]*$' <<<"$loc"
rdb_ok "... not the error boundary" bash -c '! grep -q boundary\.cpp <<<"$1"' _ "$loc"
rdb_ok "the server log names the same location" grep -qF "LOCATION:  $loc" "$(rdb_dir loc)/server.log"

# a PostgreSQL error raised beneath C++ frames keeps PostgreSQL's location
out=$(rdb_psql loc "SELECT rustydb.selftest_boundary('pg_error')" -v VERBOSITY=verbose 2>&1 || true)
rdb_ok "a PostgreSQL error re-thrown through the boundary keeps its own LOCATION" \
	grep -q '^LOCATION:  int4div, int\.c' <<<"$out"

rdb_summary
