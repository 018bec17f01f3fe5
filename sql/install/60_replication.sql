-- rustydb and logical replication (docs/am.md, "Logical replication").
-- Part of rustydb--0.1.0.sql (assembled by the Makefile from sql/install/*.sql).

-- Logical decoding of an encrypted table opens its rows with the data key,
-- read from rustydb.table_keys through the decoding's historic snapshot: as
-- a user catalog table its rows stay readable there (PostgreSQL logs what
-- the historic snapshot needs and keeps old row versions for the slots).
ALTER TABLE rustydb.table_keys SET (user_catalog_table = true);

-- rustydb's own tables are never applied from another server: a publisher's
-- FOR ALL TABLES publication includes them, and a logical replication
-- worker (session_replication_role = replica) would otherwise write another
-- server's audit trail, policies or data keys into this one. The trigger
-- fires in replica mode only (ENABLE REPLICA) and skips the row only in a
-- logical replication worker (PostgreSQL's apply and table sync workers,
-- pglogical's); other sessions in replica mode are left alone.
CREATE FUNCTION rustydb._skip_replicated_row()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_stat_activity
	               WHERE pid = pg_backend_pid()
	                 AND (backend_type = 'logical replication worker' OR backend_type LIKE 'pglogical%')) THEN
		IF TG_OP = 'DELETE' THEN
			RETURN OLD;
		END IF;
		RETURN NEW;
	END IF;
	RAISE WARNING 'rustydb: a replicated change of %.% was skipped', TG_TABLE_SCHEMA, TG_TABLE_NAME
		USING DETAIL = 'rustydb''s own tables are never applied from another server.',
		      HINT = 'Publish only your own tables (FOR TABLE or TABLES IN SCHEMA) instead of FOR ALL TABLES.';
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION rustydb._skip_replicated_row() FROM PUBLIC;

DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT c.oid::regclass AS rel
	         FROM pg_catalog.pg_class c
	         WHERE c.relnamespace = 'rustydb'::regnamespace AND c.relkind = 'r'
	         ORDER BY c.relname
	LOOP
		EXECUTE format('CREATE TRIGGER rustydb_no_replicated_rows BEFORE INSERT OR UPDATE OR DELETE ON %s '
		               'FOR EACH ROW EXECUTE FUNCTION rustydb._skip_replicated_row()', r.rel);
		EXECUTE format('ALTER TABLE %s ENABLE REPLICA TRIGGER rustydb_no_replicated_rows', r.rel);
	END LOOP;
END
$$;
