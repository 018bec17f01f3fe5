-- ---------------------------------------------------------------------------
-- 10_am.sql: the rustydb table access method (docs/am.md, docs/storage.md).
-- ---------------------------------------------------------------------------

CREATE FUNCTION rustydb.tableam_handler(internal)
RETURNS table_am_handler
AS 'MODULE_PATHNAME', 'rustydb_tableam_handler'
LANGUAGE C STRICT;

CREATE ACCESS METHOD rustydb TYPE TABLE HANDLER rustydb.tableam_handler;
COMMENT ON ACCESS METHOD rustydb IS
	'rustydb table storage: own page and tuple format, MVCC and WAL (resource manager 144)';

CREATE FUNCTION rustydb.verify_table(rel regclass,
	OUT blkno bigint, OUT offnum integer, OUT msg text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rustydb_verify_table'
LANGUAGE C STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION rustydb.verify_table(regclass) IS
	'check every page and tuple of a rustydb table; one row per problem found';
REVOKE ALL ON FUNCTION rustydb.verify_table(regclass) FROM PUBLIC;

CREATE FUNCTION rustydb.recover_heap_pages(rel regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'rustydb_recover_heap_pages'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION rustydb.recover_heap_pages(regclass) IS
	'rebuild a rustydb table whose files were replaced by a heap table''s (e.g. by a file-swapping tool) from its visible rows; returns the row count';
REVOKE ALL ON FUNCTION rustydb.recover_heap_pages(regclass) FROM PUBLIC;

CREATE FUNCTION rustydb._heap_pages_only(rel regclass, tool text)
RETURNS regclass
AS 'MODULE_PATHNAME', 'rustydb_heap_pages_only'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION rustydb._heap_pages_only(regclass, text) IS
	'rel, unless it is a rustydb table; wrapped around the table argument of tools that read pages by TID block number (pg_visibility)';

CREATE FUNCTION rustydb.metapage(rel regclass,
	OUT present boolean, OUT format_version integer, OUT page_version integer,
	OUT block_size integer, OUT encrypted boolean, OUT data_pages bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'rustydb_metapage'
LANGUAGE C STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION rustydb.metapage(regclass) IS
	'the metapage of a rustydb table (block 0): formats, encryption flag, data page count';
REVOKE ALL ON FUNCTION rustydb.metapage(regclass) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- The undo store (docs/storage.md, "In-place updates and undo"): in progress.
-- ---------------------------------------------------------------------------
CREATE FUNCTION rustydb.selftest_undo()
RETURNS integer
AS 'MODULE_PATHNAME', 'rustydb_selftest_undo'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION rustydb.selftest_undo() FROM PUBLIC;
COMMENT ON FUNCTION rustydb.selftest_undo() IS
	'check the undo store''s page, record and tuple-extension formats in memory; returns the number of checks passed (superuser diagnostic)';

CREATE FUNCTION rustydb.undo_tableam_handler(internal)
RETURNS table_am_handler
AS 'MODULE_PATHNAME', 'rustydb_undo_tableam_handler'
LANGUAGE C STRICT;
CREATE ACCESS METHOD rustydb_undo TYPE TABLE HANDLER rustydb.undo_tableam_handler;
COMMENT ON ACCESS METHOD rustydb_undo IS
	'the undo stores of rustydb tables (pg_toast.rustydb_undo_<table oid>); not for tables of your own';

CREATE FUNCTION rustydb.create_undo(rel regclass)
RETURNS regclass
AS 'MODULE_PATHNAME', 'rustydb_create_undo'
LANGUAGE C STRICT;
COMMENT ON FUNCTION rustydb.create_undo(regclass) IS
	'create the undo store of a rustydb table that has none (made before undo stores existed, or by ALTER TABLE ... SET ACCESS METHOD); returns it';

CREATE FUNCTION rustydb.undo_relation(rel regclass)
RETURNS regclass
AS 'MODULE_PATHNAME', 'rustydb_undo_relation'
LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION rustydb.undo_relation(regclass) IS
	'the undo store of a rustydb table (pg_toast.rustydb_undo_<oid>), or NULL when it has none';

CREATE FUNCTION rustydb.undo_store(rel regclass,
	OUT present boolean, OUT encrypted boolean, OUT capacity bigint, OUT pages_in_use bigint,
	OUT base bigint, OUT insert bigint, OUT discard bigint, OUT discard_xid xid,
	OUT file_blocks bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'rustydb_undo_store'
LANGUAGE C STRICT;
COMMENT ON FUNCTION rustydb.undo_store(regclass) IS
	'the undo store of a rustydb table: its metapage (ring capacity and use, positions), file blocks';
REVOKE ALL ON FUNCTION rustydb.undo_store(regclass) FROM PUBLIC;

CREATE FUNCTION rustydb.undo_discard(rel regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'rustydb_undo_discard'
LANGUAGE C STRICT;
COMMENT ON FUNCTION rustydb.undo_discard(regclass) IS
	'recycle the undo store pages no snapshot needs (the table''s owner); returns the pages recycled';

CREATE FUNCTION rustydb.set_undo_size(rel regclass, size_mb integer)
RETURNS void
AS 'MODULE_PATHNAME', 'rustydb_set_undo_size'
LANGUAGE C STRICT;
COMMENT ON FUNCTION rustydb.set_undo_size(regclass, integer) IS
	'set the ring size of a table''s undo store, in MB (the table''s owner); only while the store is empty: VACUUM first';

CREATE FUNCTION rustydb._undo_stats(
	OUT relid oid, OUT capacity_bytes bigint, OUT used_bytes bigint,
	OUT insert_position bigint, OUT discard_position bigint,
	OUT inplace_updates bigint, OUT fallback_undo_full bigint, OUT fallback_indexed bigint,
	OUT fallback_toast bigint, OUT fallback_too_large bigint, OUT fallback_shrinks bigint,
	OUT fallback_no_space bigint, OUT fallback_no_store bigint, OUT fallback_disabled bigint,
	OUT fallback_new_file bigint, OUT repairs bigint, OUT pages_discarded bigint,
	OUT fallback_heap_only bigint, OUT fallback_group_member bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rustydb_undo_stats'
LANGUAGE C VOLATILE;
CREATE VIEW rustydb.undo_stats AS
	SELECT relid::regclass AS relid, capacity_bytes, used_bytes, insert_position, discard_position,
	       inplace_updates, fallback_undo_full, fallback_indexed, fallback_toast,
	       fallback_too_large, fallback_shrinks, fallback_no_space, fallback_heap_only,
	       fallback_group_member, fallback_no_store, fallback_disabled, fallback_new_file, repairs, pages_discarded
	FROM rustydb._undo_stats();
COMMENT ON VIEW rustydb.undo_stats IS 'per rustydb table of this database: its undo store (capacity, use, positions) and the in-place update counters since server start (fallbacks by reason, repairs, undo pages recycled); relid NULL: tables beyond rustydb.undo_stats_tables';
GRANT SELECT ON rustydb.undo_stats TO PUBLIC;

CREATE FUNCTION rustydb.reset_undo_stats(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'rustydb_reset_undo_stats'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION rustydb.reset_undo_stats(regclass) FROM PUBLIC;
COMMENT ON FUNCTION rustydb.reset_undo_stats(regclass) IS
	'forget the undo_stats counters of one table (superuser)';
CREATE FUNCTION rustydb.reset_undo_stats()
RETURNS void
AS 'MODULE_PATHNAME', 'rustydb_reset_undo_stats'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION rustydb.reset_undo_stats() FROM PUBLIC;
COMMENT ON FUNCTION rustydb.reset_undo_stats() IS
	'forget the undo_stats counters of every table in every database and the overflow entry (superuser)';

CREATE FUNCTION rustydb.selftest_undo_pages(rel regclass, n integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'rustydb_selftest_undo_pages'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION rustydb.selftest_undo_pages(regclass, integer) FROM PUBLIC;
COMMENT ON FUNCTION rustydb.selftest_undo_pages(regclass, integer) IS
	'start up to n new, empty insert pages in a table''s undo store, as the in-place path will (superuser diagnostic); returns how many fit the ring';
