#!/usr/bin/env bash
# Security events of other subsystems are always audited (docs/audit.md):
# VPD policy changes, exempt access to VPD-protected tables, and TDE key
# management (a table's data key created, rotate_table_key,
# rotate_master_key), with no audit policy defined at all, and also when
# the statement that caused them rolls back.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

RING=$(rdb_keyring_create "$RDB_WORK/audit_sec_keys")

rdb_node_init asec
rdb_node_conf asec "rustydb.keyring_file = '$RING'"
rdb_node_start asec
rdb_psql asec "CREATE EXTENSION rustydb"
rdb_is "no audit policy is defined" "$(rdb_psql asec "SELECT count(*) FROM rustydb.audit_policies")" "0"

# records of one action since the start of the test, as "object|detail" lines
events() {
	rdb_psql asec "SELECT rustydb.audit_flush()" >/dev/null
	rdb_psql asec "SELECT object || '|' || detail FROM rustydb.audit_trail
		WHERE action = '$1' ORDER BY seq"
}

# ---- TDE key management
rdb_psql asec "CREATE TABLE public.secret (id int, v text) USING rustydb WITH (encrypted = true)"
rdb_is "creating an encrypted table records its data key" \
	"$(events key_management | grep '^public')" "public.secret|create_table_key: data key version 1 (aes-256-gcm)"
# (with a key provider the trail keeps statement text sealed under a data key
# of its own, created and recorded with its first batch: docs/audit.md)
rdb_is "... as the trail's own data key was" \
	"$(events key_management | grep -c '^rustydb._audit_records|create_table_key: data key version 1 (aes-256-gcm) for its sealed columns$')" "1"
rdb_psql asec "INSERT INTO public.secret VALUES (1, 'one')"
rdb_psql asec "SELECT rustydb.rotate_table_key('public.secret')" >/dev/null
rdb_is "rotate_table_key is recorded" \
	"$(events key_management | grep -c '^public.secret|rotate_table_key: data key version 2$')" "1"
n=$(rdb_psql asec "SELECT rustydb.rotate_master_key()")
# (the table's one data key, rotate_table_key re-encrypted it and deleted
# version 1, and those of rustydb's own tables: the trail's, and the ASH
# history's once the sampler has persisted a query)
rdb_ok "rotate_master_key re-wrapped the table's and the trail's data keys (and the ASH history's if any): $n" \
	test "$n" -ge 2 -a "$n" -le 3
rdb_is "rotate_master_key is recorded with the new key id and the count ($n data keys)" \
	"$(events key_management | grep -cE "^master key[|]rotate_master_key: new master key [0-9a-f]+, $n data keys re-wrapped$")" "1"
rdb_psql asec "BEGIN; SELECT rustydb.rotate_table_key('public.secret'); ROLLBACK" >/dev/null
rdb_is "a rotation that rolls back is still recorded (the attempt)" \
	"$(events key_management | grep -c '^public.secret|rotate_table_key: data key version 3$')" "1"
rdb_is "the table still reads after the rotations" "$(rdb_psql asec "SELECT v FROM public.secret")" "one"

# ---- VPD policy changes and exempt access
rdb_psql asec "CREATE TABLE public.accounts (id int, region text);
	INSERT INTO public.accounts VALUES (1, 'north'), (2, 'south');
	CREATE FUNCTION public.north(s text, o text) RETURNS text LANGUAGE sql AS \$\$ SELECT 'region = ''north''' \$\$;
	CREATE ROLE asec_exempt LOGIN IN ROLE rustydb_exempt_access_policy;
	CREATE ROLE asec_user LOGIN;
	GRANT SELECT ON public.accounts TO asec_exempt, asec_user"
rdb_psql asec "SELECT rustydb.add_policy('public', 'accounts', 'north_only', 'public', 'north')" >/dev/null
rdb_is "add_policy is recorded" "$(events vpd_policy)" "public.accounts|add_policy north_only"
rdb_psql asec "SELECT rustydb.enable_policy('public', 'accounts', 'north_only', false)" >/dev/null
rdb_psql asec "SELECT rustydb.enable_policy('public', 'accounts', 'north_only', true)" >/dev/null
rdb_is "disabling and enabling a policy are recorded" \
	"$(events vpd_policy | grep -E '^public.accounts\|(disable|enable)_policy north_only$' | tr '\n' ' ')" \
	"public.accounts|disable_policy north_only public.accounts|enable_policy north_only "

rdb_is "an ordinary user sees the policy's rows" \
	"$(rdb_psql asec "SET ROLE asec_user; SELECT count(*) FROM public.accounts")" "1"
rdb_is "... and that is not an exempt access" "$(events exempt_access)" ""
rdb_is "an exempt user sees every row" \
	"$(rdb_psql asec "SET ROLE asec_exempt; SELECT count(*) FROM public.accounts")" "2"
rdb_is "the exempt access is recorded" "$(events exempt_access)" \
	"public.accounts|SELECT with 1 enabled VPD policy not applied: member of rustydb_exempt_access_policy"
rdb_is "... with the exempt user as the user" \
	"$(rdb_psql asec "SELECT user_name FROM rustydb.audit_trail WHERE action = 'exempt_access'")" "asec_exempt"

rdb_psql asec "SELECT rustydb.drop_policy('public', 'accounts', 'north_only')" >/dev/null
rdb_is "drop_policy is recorded" "$(events vpd_policy | grep -c '^public.accounts|drop_policy north_only$')" "1"

rdb_is "the trail's chain verifies" "$(rdb_psql asec "SELECT valid FROM rustydb.verify_audit_trail()")" "t"
rdb_summary
