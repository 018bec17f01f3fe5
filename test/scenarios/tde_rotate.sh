#!/usr/bin/env bash
# rustydb.rotate_table_key re-encrypts a table (issue 4, "re-encrypts the
# table under a new key, with progress reported"):
#  - progress: while the rotation runs, pg_stat_progress_cluster shows it
#    (command VACUUM FULL, the table's relid, phases and counters);
#  - afterwards: one key version (the new one), every stored payload and
#    large value sealed under it (verify_encryption finds none under an
#    older version), the same content, and the old key's bytes nowhere;
#  - kill -9 in the middle of a rotation: after restart the table reads the
#    same under the old key version, and a new rotation completes;
#  - a streaming standby replays the rotation and reads the table.
# Needs the rustydb table access method; without it the script says so.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

RING=$(rdb_keyring_create "$RDB_WORK/tde_rotate_keys")

N=rot_p
rdb_node_init $N
rdb_node_conf $N "rustydb.keyring_file = '$RING'"
rdb_node_start $N
rdb_psql $N "CREATE EXTENSION rustydb"
if [ -z "$(rdb_psql $N "SELECT amhandler::text FROM pg_am WHERE amname = 'rustydb'")" ]; then
	rdb_log "skipped: the rustydb table access method is not part of this build"
	rdb_summary
	exit 0
fi
q() { rdb_psql $N "$1" 2>&1 || true; }

# An index whose expression sleeps keeps the rewrite's index phase busy for
# a few seconds, so that another session can watch the progress and the
# server can be killed while the new storage is half built.
rdb_psql $N "SET client_min_messages = error;
	CREATE FUNCTION slow_id(int) RETURNS int IMMUTABLE LANGUAGE plpgsql
		AS \$\$ BEGIN PERFORM pg_sleep(0.001); RETURN \$1; END \$\$;
	CREATE TABLE enc (id int PRIMARY KEY, v text, big text) USING rustydb WITH (encrypted = true);
	ALTER TABLE enc ALTER COLUMN big SET STORAGE EXTERNAL;
	INSERT INTO enc SELECT i, 'row ' || i, CASE WHEN i % 500 = 0 THEN repeat(md5(i::text), 100) END
		FROM generate_series(1, 3000) i;
	UPDATE enc SET v = v || ' updated' WHERE id % 10 = 0;
	DELETE FROM enc WHERE id % 7 = 0;
	CREATE INDEX enc_slow ON enc (slow_id(id))"
CONTENT="SELECT count(*) || ' ' || md5(string_agg(id || ':' || v || ':' || coalesce(md5(big), '-'), ',' ORDER BY id)) FROM enc"
BEFORE=$(q "$CONTENT")
VERIFY="SELECT ok || ' ' || detail FROM rustydb.verify_encryption('enc') WHERE \"check\" = 'stored payloads open'"
VERSIONS="SELECT string_agg(key_version || CASE WHEN is_current THEN '*' ELSE '' END, ',' ORDER BY key_version) FROM rustydb.table_keys WHERE relid = 'enc'::regclass"
rdb_is "before: one key version" "$(q "$VERSIONS")" "1*"

# ---- a rotation watched by another session
rdb_psql $N "SELECT rustydb.rotate_table_key('enc')" >"$RDB_WORK/rot1.out" 2>&1 &
rot=$!
seen=""
# watch until the index phase or the rotation's end (at most 300 s)
end=$((SECONDS + 300))
while [ $SECONDS -lt $end ]; do
	row=$(q "SELECT command || '|' || (relid = 'enc'::regclass) || '|' || phase || '|' || heap_tuples_written
		FROM pg_stat_progress_cluster")
	if [ -n "$row" ]; then seen="$seen"$'\n'"$row"; fi
	case "$row" in *"rebuilding index"*) break ;; esac
	kill -0 $rot 2>/dev/null || break
	sleep 0.05
done
wait $rot || true
live=$(echo "$BEFORE" | cut -d' ' -f1)
rdb_ok "pg_stat_progress_cluster showed the rotation as VACUUM FULL of the table" \
	bash -c 'echo "$1" | grep -q "^VACUUM FULL|true|"' _ "$seen"
rdb_ok "... and reached the index phase after writing every row ($live)" \
	bash -c 'echo "$1" | grep -q "^VACUUM FULL|true|rebuilding index|$2$"' _ "$seen" "$live"
rdb_is "the rotation returned the new version" "$(tail -n 1 "$RDB_WORK/rot1.out")" "2"
rdb_is "after: only the new key version" "$(q "$VERSIONS")" "2*"
rdb_is "the content is unchanged" "$(q "$CONTENT")" "$BEFORE"
rdb_ok "every payload and large value opens, none under an older version" \
	bash -c 'echo "$1" | grep -qE "^(t|true) [0-9]+ payloads and [1-9][0-9]* large values checked, 0 failed$"' _ "$(q "$VERIFY")"

# ---- kill -9 while a rotation is rebuilding the indexes of its new storage
rdb_psql $N "SELECT rustydb.rotate_table_key('enc')" >/dev/null 2>&1 &
rot=$!
rdb_ok "the second rotation reaches its index phase" \
	rdb_poll 120 rdb_psql_true $N "SELECT phase = 'rebuilding index' FROM pg_stat_progress_cluster"
rdb_is "... and is still rebuilding indexes when the server is killed" \
	"$(q "SELECT phase FROM pg_stat_progress_cluster")" "rebuilding index"
rdb_node_crash $N
wait $rot || true
rdb_node_start $N
rdb_is "after kill -9: the old key version is still the only one" "$(q "$VERSIONS")" "2*"
rdb_is "after kill -9: the content reads as before" "$(q "$CONTENT")" "$BEFORE"
rdb_ok "after kill -9: verify_encryption is clean" \
	bash -c 'echo "$1" | grep -qE "^(t|true) [0-9]+ payloads and [1-9][0-9]* large values checked, 0 failed$"' _ "$(q "$VERIFY")"

# ---- a standby replays a rotation
rdb_standby_create $N rot_s
rdb_is "a third rotation completes" "$(q "SELECT rustydb.rotate_table_key('enc')")" "3"
rdb_psql $N "INSERT INTO enc VALUES (100000, 'after rotation', NULL)"
rdb_wait_replay $N rot_s
rdb_compare $N rot_s "SELECT id, v, md5(big) FROM enc ORDER BY id"
rdb_is "the standby sees only the new key version" \
	"$(rdb_psql rot_s "$VERSIONS" 2>&1 || true)" "3*"

rdb_summary
