-- rustydb transparent data encryption: data key catalog, rotation,
-- status and verification (docs/tde.md).
-- Part of rustydb--0.1.0.sql (assembled by the Makefile from sql/install/*.sql).

-- One row per (encrypted table, data key version). Written by rustydb's C
-- code (table creation, rotation, drop); an ordinary heap table, so
-- PostgreSQL WAL-logs it for crash recovery, base backups and standbys.
-- USING heap: it must never itself be a rustydb (or encrypted) table.
CREATE TABLE rustydb.table_keys (
	relid oid NOT NULL,
	key_version integer NOT NULL CHECK (key_version BETWEEN 1 AND 65535),
	is_current boolean NOT NULL,
	cipher text NOT NULL CHECK (cipher IN ('aes-256-gcm', 'xchacha20-poly1305')),
	key_id text NOT NULL,
	master_key_id text NOT NULL,
	wrapped_key bytea NOT NULL,
	created timestamptz NOT NULL,
	last_rotated timestamptz NOT NULL,
	PRIMARY KEY (relid, key_version)
) USING heap;
REVOKE ALL ON rustydb.table_keys FROM PUBLIC;
COMMENT ON TABLE rustydb.table_keys IS 'data keys of encrypted tables, wrapped by the master key';

CREATE VIEW rustydb.encryption_status AS
	SELECT c.oid::regclass AS "table",
	       k.relid IS NOT NULL AS encrypted,
	       k.key_id,
	       k.key_version,
	       k.cipher,
	       k.master_key_id,
	       k.created,
	       k.last_rotated,
	       (SELECT count(*) FROM rustydb.table_keys v WHERE v.relid = c.oid)::integer AS key_versions
	FROM pg_catalog.pg_class c
	LEFT JOIN rustydb.table_keys k ON k.relid = c.oid AND k.is_current
	WHERE c.relkind IN ('r', 'm')
	  AND (k.relid IS NOT NULL
	       OR c.relam = (SELECT a.oid FROM pg_catalog.pg_am a WHERE a.amname = 'rustydb'));
COMMENT ON VIEW rustydb.encryption_status IS 'every rustydb table: encrypted or not, its current data key and when it was created and last rotated';
GRANT SELECT ON rustydb.encryption_status TO PUBLIC;

CREATE FUNCTION rustydb.rotate_master_key()
RETURNS integer
AS 'MODULE_PATHNAME', 'rustydb_rotate_master_key'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION rustydb.rotate_master_key() FROM PUBLIC;
COMMENT ON FUNCTION rustydb.rotate_master_key() IS 're-wrap every table data key under a new master key; returns how many were re-wrapped';

CREATE FUNCTION rustydb.rotate_table_key(rel regclass)
RETURNS integer
AS 'MODULE_PATHNAME', 'rustydb_rotate_table_key'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION rustydb.rotate_table_key(regclass) IS 'give a table a new data key version; returns the version';

CREATE FUNCTION rustydb.verify_encryption(rel regclass,
	OUT "check" text, OUT ok boolean, OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rustydb_verify_encryption'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION rustydb.verify_encryption(regclass) IS 'check that an encrypted table''s keys unwrap and its cipher works';

CREATE FUNCTION rustydb.master_key_info(OUT provider text, OUT master_key_id text)
RETURNS record
AS 'MODULE_PATHNAME', 'rustydb_master_key_info'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION rustydb.master_key_info() FROM PUBLIC;
COMMENT ON FUNCTION rustydb.master_key_info() IS 'the configured key provider and the id of its current master key (superuser)';

-- Sealed columns of rustydb's own tables (statement text of the audit trail
-- and the ASH history; docs/tde.md, "rustydb's own tables"): the writers
-- seal with _seal_text while a key provider is configured, the views open
-- with _open_text (which checks SELECT on the table or its view itself).
CREATE FUNCTION rustydb._seal_text(tab regclass, col text, rowkey bigint, val text)
RETURNS bytea
AS 'MODULE_PATHNAME', 'rustydb_seal_text'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION rustydb._seal_text(regclass, text, bigint, text) FROM PUBLIC;
COMMENT ON FUNCTION rustydb._seal_text(regclass, text, bigint, text) IS 'seal statement text for a sealed column of rustydb''s own tables (NULL without a key provider)';

CREATE FUNCTION rustydb._open_text(tab regclass, col text, rowkey bigint, sealed bytea)
RETURNS text
AS 'MODULE_PATHNAME', 'rustydb_open_text'
LANGUAGE C STABLE STRICT;
GRANT EXECUTE ON FUNCTION rustydb._open_text(regclass, text, bigint, bytea) TO PUBLIC;
COMMENT ON FUNCTION rustydb._open_text(regclass, text, bigint, bytea) IS 'open a sealed value of rustydb''s own tables (needs SELECT on the table or its view)';

-- Superuser self-test and benchmark functions.
CREATE FUNCTION rustydb.tde_seal(rel regclass, payload bytea, aad bytea DEFAULT '')
RETURNS bytea
AS 'MODULE_PATHNAME', 'rustydb_tde_seal'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION rustydb.tde_seal(regclass, bytea, bytea) FROM PUBLIC;
COMMENT ON FUNCTION rustydb.tde_seal(regclass, bytea, bytea) IS 'seal bytes with a table''s data key (superuser self-test)';

CREATE FUNCTION rustydb.tde_open(rel regclass, sealed bytea, aad bytea DEFAULT '', blkno integer DEFAULT -1)
RETURNS bytea
AS 'MODULE_PATHNAME', 'rustydb_tde_open'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION rustydb.tde_open(regclass, bytea, bytea, integer) FROM PUBLIC;
COMMENT ON FUNCTION rustydb.tde_open(regclass, bytea, bytea, integer) IS 'open bytes sealed with a table''s data key (superuser self-test)';

CREATE FUNCTION rustydb.tde_cipher_bench(payload_bytes integer, iterations integer,
	OUT algorithm text, OUT operation text, OUT bytes integer,
	OUT ns_per_op double precision, OUT mb_per_s double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rustydb_tde_cipher_bench'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION rustydb.tde_cipher_bench(integer, integer) FROM PUBLIC;
COMMENT ON FUNCTION rustydb.tde_cipher_bench(integer, integer) IS 'throughput of the seal and open paths on this machine (superuser)';

CREATE FUNCTION rustydb.tde_tuple_selftest(rel regclass, "row" record,
	OUT plain_len integer, OUT sealed_len integer, OUT round_trip boolean,
	OUT slot_round_trip boolean, OUT sealed bytea, OUT null_bitmap_tamper_detected boolean,
	OUT header_tamper_detected boolean, OUT payload_tamper_detected boolean,
	OUT mutable_fields_ignored boolean)
RETURNS record
AS 'MODULE_PATHNAME', 'rustydb_tde_tuple_selftest'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION rustydb.tde_tuple_selftest(regclass, record) FROM PUBLIC;
COMMENT ON FUNCTION rustydb.tde_tuple_selftest(regclass, record) IS 'seal and open a row as a whole tuple, as the table access method does (superuser self-test)';

-- the shared cache of opened payloads (rustydb.tde_cache_size, docs/tde.md)
CREATE FUNCTION rustydb._tde_cache(
	OUT size_bytes bigint, OUT entries bigint, OUT used_entries bigint, OUT used_bytes bigint,
	OUT hits bigint, OUT misses bigint, OUT inserts bigint, OUT evictions bigint,
	OUT invalidations bigint)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'rustydb_tde_cache';
CREATE VIEW rustydb.tde_cache AS SELECT * FROM rustydb._tde_cache();
COMMENT ON VIEW rustydb.tde_cache IS 'the shared cache of opened payloads of encrypted tables: size, entries (one per page), used, hits and misses (rows), inserts, evictions, invalidations';
GRANT SELECT ON rustydb.tde_cache TO PUBLIC;
CREATE FUNCTION rustydb.tde_cache_reset() RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'rustydb_tde_cache_reset';
REVOKE ALL ON FUNCTION rustydb.tde_cache_reset() FROM PUBLIC;
COMMENT ON FUNCTION rustydb.tde_cache_reset() IS 'empty the shared cache of opened payloads (superuser; benchmarks and tests)';
