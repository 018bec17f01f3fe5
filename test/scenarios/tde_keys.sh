#!/usr/bin/env bash
# TDE key providers, master key rotation (also killed half-way), and
# encrypted tables' keys on a standby (docs/tde.md).
#
# Until the rustydb table access method exists, an access method named
# rustydb backed by heap stands in for it: key management does not depend
# on the storage format. Sealed samples (rustydb.tde_seal, the same code
# path the table access method uses) made before each event must open
# after it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

NTABLES=20
KEYS=$RDB_WORK/tde_keys
mkdir -p "$KEYS"
chown "$RDB_SERVER_USER" "$KEYS"
chmod 700 "$KEYS"
RING=$KEYS/ring

# q NODE SQL: output and errors, never fails
q() { rdb_psql "$1" "$2" 2>&1 || true; }
set_conf() { # NODE NAME VALUE (ALTER SYSTEM + reload; new sessions have it)
	rdb_psql "$1" "ALTER SYSTEM SET $2 = '$3'" >/dev/null
	rdb_reload "$1"
}
samples_ok() { # NODE: how many sealed samples open to their marker
	q "$1" "SELECT count(*) FROM tde_samples
	        WHERE convert_from(rustydb.tde_open(rel, s, 'aad'), 'UTF8') = 'marker-' || rel::text"
}

rdb_as_server bash "$ROOT/scripts/rustydb-keyring" create "$RING" >/dev/null
rdb_is "rustydb-keyring creates a 0600 keyring" "$(stat -c %a "$RING")" "600"
rdb_is "rustydb-keyring refuses to overwrite" \
	"$(rdb_as_server bash "$ROOT/scripts/rustydb-keyring" create "$RING" 2>&1 >/dev/null | grep -c 'already exists')" "1"

rdb_node_init tkeys_p
rdb_node_conf tkeys_p "rustydb.keyring_file = '$RING'"
# rustydb's own tables get data keys when they first store statement text
# (docs/tde.md, "rustydb's own tables"): the audit trail's is made before the
# counts below (audit_flush), the ASH history's never (no persistence)
rdb_node_conf tkeys_p "rustydb.ash_persist_every = 0"
rdb_node_start tkeys_p
rdb_psql tkeys_p "CREATE EXTENSION rustydb"
rdb_psql tkeys_p "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_am WHERE amname = 'rustydb') THEN
	CREATE ACCESS METHOD rustydb TYPE TABLE HANDLER heap_tableam_handler; END IF; END \$\$"
rdb_psql tkeys_p "DO \$\$ BEGIN FOR i IN 1..$NTABLES LOOP
	EXECUTE format('CREATE TABLE enc_%s (id int, v text) USING rustydb WITH (encrypted = true)', i);
	END LOOP; END \$\$"
rdb_psql tkeys_p "CREATE TABLE plain_t (id int, v text) USING heap; INSERT INTO plain_t VALUES (1, 'plain')"
rdb_is "the audit trail has its own data key (the key events above are its first records)" \
	"$(q tkeys_p "SELECT rustydb.audit_flush() AND EXISTS (SELECT FROM rustydb.table_keys WHERE relid = 'rustydb._audit_records'::regclass)")" t
rdb_psql tkeys_p "CREATE TABLE tde_samples AS
	SELECT k.relid::regclass AS rel,
	       rustydb.tde_seal(k.relid::regclass, convert_to('marker-' || k.relid::regclass::text, 'UTF8'), 'aad') AS s
	FROM rustydb.table_keys k"
rdb_is "$NTABLES encrypted tables with keys" "$(q tkeys_p "SELECT count(*) FROM rustydb.encryption_status WHERE encrypted AND \"table\"::text LIKE 'enc\\_%'")" "$NTABLES"
# key rows: one per table, plus one per TOAST table when TOAST tables are
# rustydb relations (they share their table's keys)
KEYROWS=$(q tkeys_p "SELECT count(*) FROM rustydb.table_keys")
rdb_ok "every encrypted table has its key ($KEYROWS key rows)" test "$KEYROWS" -ge "$NTABLES"
rdb_is "samples open" "$(samples_ok tkeys_p)" "$KEYROWS"
MK1=$(q tkeys_p "SELECT master_key_id FROM rustydb.master_key_info()")

# ---- key provider failures: clear errors naming the relation, cluster keeps working
chmod 0644 "$RING"
rdb_expect_error "keyring with mode 0644 is refused" tkeys_p "SELECT rustydb.tde_seal('enc_1', 'x')" \
	'cannot access encrypted relation "enc_1": keyring file .* has mode 0644, must be 0600'
chmod 0600 "$RING"
if [ "$(id -u)" -eq 0 ] && [ "$RDB_SERVER_USER" != root ]; then
	chown root "$RING"
	rdb_expect_error "keyring owned by another user is refused" tkeys_p "SELECT rustydb.tde_seal('enc_1', 'x')" \
		'is not owned by the database server user'
	chown "$RDB_SERVER_USER" "$RING"
fi
cp -p "$RING" "$(rdb_dir tkeys_p)/data/ring"
rdb_expect_error "keyring inside the data directory is refused (by the setting's check hook)" tkeys_p \
	"ALTER SYSTEM SET rustydb.keyring_file = '$(rdb_dir tkeys_p)/data/ring'" \
	'keyring file ".*/data/ring" is inside the data directory'
rm -f "$(rdb_dir tkeys_p)/data/ring"
rdb_expect_error "relative keyring path is rejected" tkeys_p "ALTER SYSTEM SET rustydb.keyring_file = 'ring'" \
	'must be an absolute path'
set_conf tkeys_p rustydb.keyring_file "$KEYS/missing"
rdb_expect_error "missing keyring file" tkeys_p "SELECT rustydb.tde_seal('enc_2', 'x')" \
	'cannot access encrypted relation "enc_2": could not open keyring file'
rdb_as_server bash "$ROOT/scripts/rustydb-keyring" create "$KEYS/other" >/dev/null
set_conf tkeys_p rustydb.keyring_file "$KEYS/other"
rdb_expect_error "wrong master key (another keyring)" tkeys_p "SELECT rustydb.tde_seal('enc_3', 'x')" \
	"cannot access encrypted relation \"enc_3\": master key $MK1 is not available from keyring_file"
rdb_expect_error "wrong master key: creating an encrypted table still works with the new key" tkeys_p \
	"CREATE TABLE enc_other (id int) USING rustydb WITH (encrypted); SELECT 'created'" 'created'
rdb_psql tkeys_p "DROP TABLE enc_other"
set_conf tkeys_p rustydb.keyring_file ""
rdb_expect_error "no key provider" tkeys_p "SELECT rustydb.tde_seal('enc_4', 'x')" \
	'cannot access encrypted relation "enc_4": no master key provider is configured'
rdb_expect_error "no key provider: creating an encrypted table fails" tkeys_p \
	"CREATE TABLE enc_x (id int) USING rustydb WITH (encrypted)" 'no master key provider is configured'
rdb_is "no key provider: unencrypted tables work" "$(q tkeys_p "SELECT v FROM plain_t")" "plain"
set_conf tkeys_p rustydb.key_command "exit 3"
rdb_expect_error "failing key command" tkeys_p "SELECT rustydb.tde_seal('enc_5', 'x')" \
	'rustydb.key_command failed: child process exited with exit code 3'
set_conf tkeys_p rustydb.key_command "echo not-a-key"
rdb_expect_error "key command printing garbage" tkeys_p "SELECT rustydb.tde_seal('enc_5', 'x')" \
	'rustydb.key_command printed no valid master key'
set_conf tkeys_p rustydb.key_command "echo 0000000000000000000000000000000000000000000000000000000000000000"
rdb_expect_error "key command printing a wrong key" tkeys_p "SELECT rustydb.tde_seal('enc_5', 'x')" \
	"master key $MK1 is not available from key_command"
set_conf tkeys_p rustydb.key_command "tail -n 1 $RING"
rdb_is "key command printing the right key" "$(samples_ok tkeys_p)" "$KEYROWS"
set_conf tkeys_p rustydb.keyring_file "$RING"
rdb_expect_error "two providers at once are refused" tkeys_p "SELECT rustydb.tde_seal('enc_5', 'x')" \
	'two master key providers are configured'
rdb_psql tkeys_p "ALTER SYSTEM RESET rustydb.key_command"
set_conf tkeys_p rustydb.keyring_file "$RING"
rdb_is "keyring file provider again" "$(samples_ok tkeys_p)" "$KEYROWS"

# a server started without any provider runs; only encrypted tables fail
rdb_psql tkeys_p "ALTER SYSTEM SET rustydb.keyring_file = ''"
rdb_node_restart tkeys_p
rdb_is "server without key provider starts" "$(q tkeys_p "SELECT v FROM plain_t")" "plain"
rdb_expect_error "server without key provider: clear error" tkeys_p "SELECT count(*) FROM tde_samples WHERE CASE WHEN rel::text LIKE 'enc\\_%' THEN rustydb.tde_open(rel, s, 'aad') IS NOT NULL END" \
	'cannot access encrypted relation "enc_1": no master key provider is configured'
rdb_psql tkeys_p "ALTER SYSTEM SET rustydb.keyring_file = '$RING'"
rdb_node_restart tkeys_p
rdb_is "restart with keyring: samples open" "$(samples_ok tkeys_p)" "$KEYROWS"

# ---- master key rotation
rdb_is "rotate_master_key re-wraps every key" "$(q tkeys_p "SELECT rustydb.rotate_master_key()")" "$KEYROWS"
MK2=$(q tkeys_p "SELECT master_key_id FROM rustydb.master_key_info()")
rdb_ok "rotation made a new master key" test "$MK1" != "$MK2"
rdb_is "keyring holds two keys" "$(grep -cE '^[0-9a-f]{64}$' "$RING")" "2"
rdb_is "every key wrapped by the new master key" \
	"$(q tkeys_p "SELECT count(*) FROM rustydb.encryption_status WHERE master_key_id = '$MK2' AND \"table\"::text LIKE 'enc\\_%'")" "$NTABLES"
rdb_is "samples open after rotation (new session)" "$(samples_ok tkeys_p)" "$KEYROWS"
rdb_is "keyring still 0600 after rotation" "$(stat -c %a "$RING")" "600"

# kill -9 while a rotation is uncommitted (held open in its transaction)
(rdb_psql tkeys_p "BEGIN; SELECT rustydb.rotate_master_key(); SELECT pg_sleep(120); COMMIT" >/dev/null 2>&1 || true) &
BG=$!
rdb_wait_for "the rotation to be done and held open (in pg_sleep)" 120 rdb_psql_true tkeys_p \
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'BEGIN; SELECT rustydb.rotate%' AND wait_event = 'PgSleep'"
rdb_node_crash tkeys_p
wait $BG || true
rdb_node_start tkeys_p
rdb_is "kill -9 during uncommitted rotation: all samples open" "$(samples_ok tkeys_p)" "$KEYROWS"
rdb_is "kill -9 during uncommitted rotation: keys still under the previous master key" \
	"$(q tkeys_p "SELECT count(*) FROM rustydb.encryption_status WHERE master_key_id = '$MK2' AND \"table\"::text LIKE 'enc\\_%'")" "$NTABLES"
rdb_is "keyring intact after the crash (header + 3 keys)" \
	"$(head -n 1 "$RING")/$(grep -cE '^[0-9a-f]{64}$' "$RING")" "rustydb-keyring-v1/3"

# kill -9 while rotate_master_key() is half-way through its re-wrapping:
# it updates the key rows in physical order, so a row locked FOR UPDATE by
# another session in the middle makes it stop there, the rows before it
# already re-wrapped (uncommitted), the rest not.
TOTAL=$((KEYROWS + 400))
rdb_psql tkeys_p "DO \$\$ BEGIN FOR i IN 1..400 LOOP
	EXECUTE format('CREATE TABLE many_%s (id int) USING rustydb WITH (encrypted = true)', i);
	END LOOP; END \$\$"
rdb_psql tkeys_p "INSERT INTO tde_samples
	SELECT c.oid::regclass, rustydb.tde_seal(c.oid::regclass, convert_to('marker-' || c.relname, 'UTF8'), 'aad')
	FROM pg_class c WHERE c.relname LIKE 'many\\_%'"
BEFORE=$(q tkeys_p "SELECT master_key_id, count(*) FROM rustydb.table_keys GROUP BY 1 ORDER BY 1")
MID=$(q tkeys_p "SELECT ctid FROM rustydb.table_keys ORDER BY ctid OFFSET $((TOTAL / 2)) LIMIT 1")
(rdb_psql tkeys_p "BEGIN; SELECT 1 FROM rustydb.table_keys WHERE ctid = '$MID' FOR UPDATE; SELECT pg_sleep(120); COMMIT" >/dev/null 2>&1 || true) &
LOCKER=$!
rdb_wait_for "the middle key row to be locked (locker in pg_sleep)" 120 rdb_psql_true tkeys_p \
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'BEGIN; SELECT 1 FROM rustydb.table_keys%' AND wait_event = 'PgSleep'"
(rdb_psql tkeys_p "SELECT rustydb.rotate_master_key()" >/dev/null 2>&1 || true) &
BG=$!
rdb_wait_for "rotate_master_key() to stop at the locked row" 120 rdb_psql_true tkeys_p \
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query = 'SELECT rustydb.rotate_master_key()' AND wait_event_type = 'Lock'"
HALF=$(q tkeys_p "SELECT count(*) FROM rustydb.table_keys k
	WHERE k.xmax::text = (SELECT backend_xid::text FROM pg_stat_activity WHERE query = 'SELECT rustydb.rotate_master_key()')")
rdb_ok "rotate_master_key() stopped half-way ($HALF of $TOTAL keys re-wrapped, uncommitted)" \
	test "$HALF" -gt 0 -a "$HALF" -lt "$TOTAL"
rdb_node_crash tkeys_p
wait $BG $LOCKER || true
rdb_node_start tkeys_p
rdb_is "kill -9 half-way through rotate_master_key(): every table readable" "$(samples_ok tkeys_p)" "$TOTAL"
rdb_is "kill -9 half-way through rotate_master_key(): every key wrapped as before the rotation" \
	"$(q tkeys_p "SELECT master_key_id, count(*) FROM rustydb.table_keys GROUP BY 1 ORDER BY 1")" "$BEFORE"
rdb_is "keyring intact after the second crash (header + 4 keys)" \
	"$(head -n 1 "$RING")/$(grep -cE '^[0-9a-f]{64}$' "$RING")" "rustydb-keyring-v1/4"

# kill -9 right after a committed rotation
rdb_is "rotation after the crash" "$(q tkeys_p "SELECT rustydb.rotate_master_key()")" "$TOTAL"
MK3=$(q tkeys_p "SELECT master_key_id FROM rustydb.master_key_info()")
rdb_node_crash tkeys_p
rdb_node_start tkeys_p
rdb_is "kill -9 after a committed rotation: every table readable" "$(samples_ok tkeys_p)" "$TOTAL"
rdb_is "kill -9 after a committed rotation: keys under the new master key" \
	"$(q tkeys_p "SELECT count(*) FROM rustydb.table_keys WHERE master_key_id = '$MK3'")" "$TOTAL"
rdb_psql tkeys_p "DELETE FROM tde_samples WHERE rel::text LIKE 'many\\_%'"
rdb_psql tkeys_p "DO \$\$ BEGIN FOR i IN 1..400 LOOP EXECUTE format('DROP TABLE many_%s', i); END LOOP; END \$\$"
rdb_is "dropping tables removes their keys" "$(q tkeys_p "SELECT count(*) FROM rustydb.table_keys")" "$KEYROWS"

# ---- standby (pg_basebackup + streaming): same provider reads, none gives a clear error
rdb_standby_create tkeys_p tkeys_s
rdb_psql tkeys_p "CREATE TABLE enc_late (id int) USING rustydb WITH (encrypted = true)"
rdb_psql tkeys_p "INSERT INTO tde_samples SELECT 'enc_late'::regclass, rustydb.tde_seal('enc_late', convert_to('marker-enc_late', 'UTF8'), 'aad')"
rdb_wait_replay tkeys_p tkeys_s
rdb_is "standby with the keyring opens every sample" "$(samples_ok tkeys_s)" "$((KEYROWS + 1))"
rdb_compare tkeys_p tkeys_s "SELECT \"table\", key_id, key_version, master_key_id FROM rustydb.encryption_status ORDER BY 1::text"
rdb_is "rotation on the primary" "$(q tkeys_p "SELECT rustydb.rotate_master_key()")" "$((KEYROWS + 1))"
rdb_wait_replay tkeys_p tkeys_s
rdb_is "standby reads after a rotation on the primary" "$(samples_ok tkeys_s)" "$((KEYROWS + 1))"
rdb_compare tkeys_p tkeys_s "SELECT relid, key_version, master_key_id, wrapped_key FROM rustydb.table_keys ORDER BY 1, 2"

rdb_standby_create tkeys_p tkeys_s2
rdb_psql tkeys_s2 "ALTER SYSTEM SET rustydb.keyring_file = ''"
rdb_node_restart tkeys_s2
rdb_wait_replay tkeys_p tkeys_s2
rdb_expect_error "standby without the key provider: clear error" tkeys_s2 \
	"SELECT rustydb.tde_open('enc_late', s, 'aad') FROM tde_samples WHERE rel = 'enc_late'::regclass" \
	'cannot access encrypted relation "enc_late": no master key provider is configured'
rdb_is "standby without the key provider: other tables readable" "$(q tkeys_s2 "SELECT v FROM plain_t")" "plain"

# promotion: the promoted standby seals new data in sessions of its own
# pg_promote() waits (60 s at most) until the promotion is complete
rdb_is "the standby is promoted" "$(q tkeys_s "SELECT pg_promote()")" "t"
rdb_psql tkeys_s "INSERT INTO tde_samples SELECT 'enc_1'::regclass, rustydb.tde_seal('enc_1', convert_to('marker-enc_1', 'UTF8'), 'aad')"
rdb_is "promoted standby seals and opens" "$(samples_ok tkeys_s)" "$((KEYROWS + 2))"
rdb_is "promoted standby uses a session the primary never used" \
	"$(q tkeys_s "SELECT count(DISTINCT substr(s, 5, 12)) = count(*) FROM tde_samples WHERE rel = 'enc_1'::regclass")" "t"

# ---- a key command serving keys by id (%i): rotation under it
# learn the id of every key in the keyring through the server
BYID=$KEYS/byid
mkdir -p "$BYID"
rdb_psql tkeys_p "ALTER SYSTEM SET rustydb.keyring_file = ''" >/dev/null
for key in $(grep -E '^[0-9a-f]{64}$' "$RING"); do
	set_conf tkeys_p rustydb.key_command "echo $key"
	id=$(q tkeys_p "SELECT master_key_id FROM rustydb.master_key_info()")
	echo "$key" >"$BYID/$id"
done
NEWKEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
echo "$NEWKEY" >"$BYID/current"
chown -R "$RDB_SERVER_USER" "$BYID"
set_conf tkeys_p rustydb.key_command "cat $BYID/%i"
NK=$(q tkeys_p "SELECT master_key_id FROM rustydb.master_key_info()")
echo "$NEWKEY" >"$BYID/$NK"
rdb_is "key command by id: samples open" "$(samples_ok tkeys_p)" "$((KEYROWS + 1))"
rdb_is "rotate_master_key() under a key command re-wraps under its current key" \
	"$(q tkeys_p "SELECT rustydb.rotate_master_key()")" "$((KEYROWS + 1))"
find "$BYID" -type f ! -name current ! -name "$NK" -delete
rdb_is "after the rotation the old master keys are no longer needed" "$(samples_ok tkeys_p)" "$((KEYROWS + 1))"
rdb_is "every key is wrapped by the command's current key" \
	"$(q tkeys_p "SELECT count(*) FROM rustydb.table_keys WHERE master_key_id = '$NK'")" "$((KEYROWS + 1))"
# a rotation that cannot unwrap an old key changes nothing
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$BYID/current"
rm -f "$BYID/$NK"
rdb_expect_error "rotation without the old master key fails cleanly" tkeys_p "SELECT rustydb.rotate_master_key()" \
	'cannot access encrypted relation ".*": rustydb.key_command failed'
echo "$NEWKEY" >"$BYID/$NK"
rdb_is "... and leaves every key as it was" \
	"$(q tkeys_p "SELECT count(*) FROM rustydb.table_keys WHERE master_key_id = '$NK'")" "$((KEYROWS + 1))"
rdb_is "... and every table readable" "$(samples_ok tkeys_p)" "$((KEYROWS + 1))"

rdb_summary
