#!/usr/bin/env bash
# Without shared_preload_libraries = 'rustydb', loading rustydb in any way
# fails with a clear error whose hint names the setting; with it, CREATE
# and DROP EXTENSION work.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

rdb_node_init plain --no-rustydb
rdb_node_start plain

out=$(rdb_psql plain "CREATE EXTENSION rustydb" -v VERBOSITY=verbose 2>&1 || true)
rdb_ok "CREATE EXTENSION without the preload fails with 55000" grep -q "ERROR:  55000: rustydb must be loaded via shared_preload_libraries" <<<"$out"
rdb_ok "... and its hint names the setting" grep -q "HINT:  Add rustydb to shared_preload_libraries in postgresql.conf and restart the server." <<<"$out"
rdb_is "... and leaves no extension or schema behind" \
	"$(rdb_psql plain "SELECT count(*) FROM pg_extension WHERE extname = 'rustydb'") $(rdb_psql plain "SELECT count(*) FROM pg_namespace WHERE nspname = 'rustydb'")" "0 0"

out=$(rdb_psql plain "LOAD 'rustydb'" 2>&1 || true)
rdb_ok "LOAD 'rustydb' without the preload fails the same way" grep -q "rustydb must be loaded via shared_preload_libraries" <<<"$out"
rdb_is "the backend keeps working" "$(rdb_psql plain "SELECT 1")" "1"

rdb_node_stop plain
rdb_node_conf plain "shared_preload_libraries = 'rustydb'"
rdb_node_start plain
rdb_is "with the preload, CREATE EXTENSION works" "$(rdb_psql plain "CREATE EXTENSION rustydb; SELECT rustydb.version()")" "0.1.0"
rdb_is "DROP EXTENSION works" "$(rdb_psql plain "DROP EXTENSION rustydb; SELECT count(*) FROM pg_namespace WHERE nspname = 'rustydb'")" "0"

rdb_summary
