/*-------------------------------------------------------------------------
 *
 * undo_am.cpp
 *	  The rustydb_undo table access method: the companion relations that
 *	  hold rustydb tables' undo stores (undo_store.cpp, storage/undo.h).
 *
 * Its rows are no rows: every scan, fetch and modification is refused with
 * an error naming the table the store belongs to (SQLSTATE 42809). What
 * PostgreSQL does to any relation works: creating its files (and the init
 * fork of an unlogged one), moving it to another tablespace, VACUUM FULL
 * or CLUSTER (its pages are copied as they are), VACUUM (recycles the
 * undo no snapshot needs, as VACUUM of the table does: undo_vacuum_store),
 * ANALYZE (no rows), size estimates (none).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/undo_store.h"
#include "rustydb/common/boundary.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "utils/lsyscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::am {

namespace {

/* ERROR: rel is an undo store, which has no rows to read or write. */
[[noreturn]] void
refuse(Relation rel)
{
	const char *name = RelationGetRelationName(rel);
	Oid table = InvalidOid;
	const char *table_name = nullptr;
	if (sscanf(name, "rustydb_undo_%u", &table) == 1)
		table_name = get_rel_name(table);
	ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
					errmsg("\"%s\" is the undo store of table \"%s\"", name,
						   table_name != nullptr ? table_name : "?"),
					errdetail("An undo store holds previous versions of the table's rows; "
							  "it has no rows of its own to read or write.")));
}

TableScanDesc
undo_scan_begin(Relation rel, Snapshot snapshot, uint32 flags)
{
	/* ANALYZE of the store (asked for by name) samples nothing; everything else is refused */
	if (!(flags & SO_TYPE_ANALYZE))
		refuse(rel);
	auto scan = (TableScanDesc) palloc0(sizeof(TableScanDescData));
	scan->rs_rd = rel;
	scan->rs_snapshot = snapshot;
	scan->rs_flags = flags;
	return scan;
}

void
undo_set_new_filenode(Relation rel, const RelFileNode *newrnode, char persistence,
					  TransactionId *freeze_xid, MultiXactId *minmulti)
{
	relation_set_new_filenode(rel, newrnode, persistence, freeze_xid, minmulti);
	/*
	 * The store's transaction ids are the table's concern: VACUUM of the
	 * table keeps its relfrozenxid at or below every xid in its store, so
	 * the store needs no horizon of its own (PostgreSQL allows a table
	 * access method to leave both invalid).
	 */
	*freeze_xid = InvalidTransactionId;
	*minmulti = InvalidMultiXactId;
}

void
undo_copy_for_cluster(Relation old_rel, Relation new_rel, double *num_tuples, double *tups_vacuumed,
					  double *tups_recently_dead)
{
	/* the undo pages as they are: the table's rows point into them by position */
	FlushRelationBuffers(old_rel);
	RelationCopyStorage(RelationGetSmgr(old_rel), RelationGetSmgr(new_rel), MAIN_FORKNUM,
						old_rel->rd_rel->relpersistence);
	*num_tuples = 0;
	*tups_vacuumed = 0;
	*tups_recently_dead = 0;
}

} /* namespace */

} /* namespace rustydb::am */

using rustydb::am::refuse;

extern "C" {

static const TupleTableSlotOps *
rdbu_slot_callbacks(Relation rel) noexcept
{
	return rustydb::boundary::run("rustydb_undo_slot_callbacks",
								  [&]() -> const TupleTableSlotOps * { return &TTSOpsHeapTuple; });
}

static TableScanDesc
rdbu_scan_begin(Relation rel, Snapshot snapshot, int nkeys, struct ScanKeyData *key,
				ParallelTableScanDesc pscan, uint32 flags) noexcept
{
	return rustydb::boundary::run("rustydb_undo_scan_begin", [&]() -> TableScanDesc {
		return rustydb::am::undo_scan_begin(rel, snapshot, flags);
	});
}

static void
rdbu_scan_end(TableScanDesc scan) noexcept
{
	rustydb::boundary::run("rustydb_undo_scan_end", [&] { pfree(scan); });
}

static void
rdbu_scan_rescan(TableScanDesc scan, struct ScanKeyData *key, bool set_params, bool allow_strat,
				 bool allow_sync, bool allow_pagemode) noexcept
{
	rustydb::boundary::run("rustydb_undo_scan_rescan", [&] { refuse(scan->rs_rd); });
}

static bool
rdbu_scan_getnextslot(TableScanDesc scan, ScanDirection direction, TupleTableSlot *slot) noexcept
{
	return rustydb::boundary::run("rustydb_undo_scan_getnextslot", [&]() -> bool { return false; });
}

static Size
rdbu_parallelscan_estimate(Relation rel) noexcept
{
	return rustydb::boundary::run("rustydb_undo_parallelscan_estimate", [&]() -> Size {
		refuse(rel);
		return (Size) 0;
	});
}

static Size
rdbu_parallelscan_initialize(Relation rel, ParallelTableScanDesc pscan) noexcept
{
	return rustydb::boundary::run("rustydb_undo_parallelscan_initialize", [&]() -> Size {
		refuse(rel);
		return (Size) 0;
	});
}

static void
rdbu_parallelscan_reinitialize(Relation rel, ParallelTableScanDesc pscan) noexcept
{
	rustydb::boundary::run("rustydb_undo_parallelscan_reinitialize", [&] { refuse(rel); });
}

static struct IndexFetchTableData *
rdbu_index_fetch_begin(Relation rel) noexcept
{
	return rustydb::boundary::run(
		"rustydb_undo_index_fetch_begin", [&]() -> struct IndexFetchTableData * {
			refuse(rel);
			return (struct IndexFetchTableData *) nullptr;
		});
}

static void
rdbu_index_fetch_reset(struct IndexFetchTableData *data) noexcept
{
	rustydb::boundary::run("rustydb_undo_index_fetch_reset", [&] {
		/* nothing to do */
	});
}

static void
rdbu_index_fetch_end(struct IndexFetchTableData *data) noexcept
{
	rustydb::boundary::run("rustydb_undo_index_fetch_end", [&] {
		/* nothing to do */
	});
}

static bool
rdbu_index_fetch_tuple(struct IndexFetchTableData *scan, ItemPointer tid, Snapshot snapshot,
					   TupleTableSlot *slot, bool *call_again, bool *all_dead) noexcept
{
	return rustydb::boundary::run("rustydb_undo_index_fetch_tuple", [&]() -> bool {
		refuse(scan->rel);
		return (bool) 0;
	});
}

static bool
rdbu_tuple_fetch_row_version(Relation rel, ItemPointer tid, Snapshot snapshot,
							 TupleTableSlot *slot) noexcept
{
	return rustydb::boundary::run("rustydb_undo_tuple_fetch_row_version", [&]() -> bool {
		refuse(rel);
		return (bool) 0;
	});
}

static bool
rdbu_tuple_tid_valid(TableScanDesc scan, ItemPointer tid) noexcept
{
	return rustydb::boundary::run("rustydb_undo_tuple_tid_valid", [&]() -> bool {
		refuse(scan->rs_rd);
		return (bool) 0;
	});
}

static void
rdbu_tuple_get_latest_tid(TableScanDesc scan, ItemPointer tid) noexcept
{
	rustydb::boundary::run("rustydb_undo_tuple_get_latest_tid", [&] { refuse(scan->rs_rd); });
}

static bool
rdbu_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot, Snapshot snapshot) noexcept
{
	return rustydb::boundary::run("rustydb_undo_tuple_satisfies_snapshot", [&]() -> bool {
		refuse(rel);
		return (bool) 0;
	});
}

static TransactionId
rdbu_index_delete_tuples(Relation rel, TM_IndexDeleteOp *delstate) noexcept
{
	return rustydb::boundary::run("rustydb_undo_index_delete_tuples", [&]() -> TransactionId {
		refuse(rel);
		return (TransactionId) 0;
	});
}

static void
rdbu_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid, int options,
				  struct BulkInsertStateData *bistate) noexcept
{
	rustydb::boundary::run("rustydb_undo_tuple_insert", [&] { refuse(rel); });
}

static void
rdbu_tuple_insert_speculative(Relation rel, TupleTableSlot *slot, CommandId cid, int options,
							  struct BulkInsertStateData *bistate, uint32 spec_token) noexcept
{
	rustydb::boundary::run("rustydb_undo_tuple_insert_speculative", [&] { refuse(rel); });
}

static void
rdbu_tuple_complete_speculative(Relation rel, TupleTableSlot *slot, uint32 spec_token,
								bool succeeded) noexcept
{
	rustydb::boundary::run("rustydb_undo_tuple_complete_speculative", [&] { refuse(rel); });
}

static void
rdbu_multi_insert(Relation rel, TupleTableSlot **slots, int nslots, CommandId cid, int options,
				  struct BulkInsertStateData *bistate) noexcept
{
	rustydb::boundary::run("rustydb_undo_multi_insert", [&] { refuse(rel); });
}

static TM_Result
rdbu_tuple_delete(Relation rel, ItemPointer tid, CommandId cid, Snapshot snapshot,
				  Snapshot crosscheck, bool wait, TM_FailureData *tmfd, bool changing_part) noexcept
{
	return rustydb::boundary::run("rustydb_undo_tuple_delete", [&]() -> TM_Result {
		refuse(rel);
		return TM_Invisible;
	});
}

static TM_Result
rdbu_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot, CommandId cid,
				  Snapshot snapshot, Snapshot crosscheck, bool wait, TM_FailureData *tmfd,
				  LockTupleMode *lockmode, bool *update_indexes) noexcept
{
	return rustydb::boundary::run("rustydb_undo_tuple_update", [&]() -> TM_Result {
		refuse(rel);
		return TM_Invisible;
	});
}

static TM_Result
rdbu_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot,
				CommandId cid, LockTupleMode mode, LockWaitPolicy wait_policy, uint8 flags,
				TM_FailureData *tmfd) noexcept
{
	return rustydb::boundary::run("rustydb_undo_tuple_lock", [&]() -> TM_Result {
		refuse(rel);
		return TM_Invisible;
	});
}

static void
rdbu_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode, char persistence,
							   TransactionId *freeze_xid, MultiXactId *minmulti) noexcept
{
	rustydb::boundary::run("rustydb_undo_relation_set_new_filenode", [&] {
		rustydb::am::undo_set_new_filenode(rel, newrnode, persistence, freeze_xid, minmulti);
	});
}

static void
rdbu_relation_nontransactional_truncate(Relation rel) noexcept
{
	rustydb::boundary::run("rustydb_undo_relation_nontransactional_truncate",
						   [&] { rustydb::am::relation_nontransactional_truncate(rel); });
}

static void
rdbu_relation_copy_data(Relation rel, const RelFileNode *newrnode) noexcept
{
	rustydb::boundary::run("rustydb_undo_relation_copy_data",
						   [&] { rustydb::am::relation_copy_data(rel, newrnode); });
}

static void
rdbu_relation_copy_for_cluster(Relation old_rel, Relation new_rel, Relation old_index,
							   bool use_sort, TransactionId oldest_xmin, TransactionId *xid_cutoff,
							   MultiXactId *multi_cutoff, double *num_tuples, double *tups_vacuumed,
							   double *tups_recently_dead) noexcept
{
	rustydb::boundary::run("rustydb_undo_relation_copy_for_cluster", [&] {
		rustydb::am::undo_copy_for_cluster(old_rel, new_rel, num_tuples, tups_vacuumed,
										   tups_recently_dead);
	});
}

static void
rdbu_relation_vacuum(Relation rel, struct VacuumParams *params,
					 BufferAccessStrategy bstrategy) noexcept
{
	rustydb::boundary::run("rustydb_undo_relation_vacuum", [&] {
		rustydb::am::undo_vacuum_store(rel, params->truncate == VACOPTVALUE_ENABLED);
	});
}

static bool
rdbu_scan_analyze_next_block(TableScanDesc scan, BlockNumber blockno,
							 BufferAccessStrategy bstrategy) noexcept
{
	return rustydb::boundary::run("rustydb_undo_scan_analyze_next_block",
								  [&]() -> bool { return false; });
}

static bool
rdbu_scan_analyze_next_tuple(TableScanDesc scan, TransactionId oldest_xmin, double *liverows,
							 double *deadrows, TupleTableSlot *slot) noexcept
{
	return rustydb::boundary::run("rustydb_undo_scan_analyze_next_tuple",
								  [&]() -> bool { return false; });
}

static double
rdbu_index_build_range_scan(Relation table_rel, Relation index_rel, struct IndexInfo *index_info,
							bool allow_sync, bool anyvisible, bool progress,
							BlockNumber start_blockno, BlockNumber numblocks,
							IndexBuildCallback callback, void *callback_state,
							TableScanDesc scan) noexcept
{
	return rustydb::boundary::run("rustydb_undo_index_build_range_scan", [&]() -> double {
		refuse(table_rel);
		return (double) 0;
	});
}

static void
rdbu_index_validate_scan(Relation table_rel, Relation index_rel, struct IndexInfo *index_info,
						 Snapshot snapshot, struct ValidateIndexState *state) noexcept
{
	rustydb::boundary::run("rustydb_undo_index_validate_scan", [&] { refuse(table_rel); });
}

static uint64
rdbu_relation_size(Relation rel, ForkNumber fork) noexcept
{
	return rustydb::boundary::run("rustydb_undo_relation_size",
								  [&]() -> uint64 { return table_block_relation_size(rel, fork); });
}

static bool
rdbu_relation_needs_toast_table(Relation rel) noexcept
{
	return rustydb::boundary::run("rustydb_undo_relation_needs_toast_table",
								  [&]() -> bool { return false; });
}

static void
rdbu_relation_estimate_size(Relation rel, int32 *attr_widths, BlockNumber *pages, double *tuples,
							double *allvisfrac) noexcept
{
	rustydb::boundary::run("rustydb_undo_relation_estimate_size", [&] {
		*pages = 0;
		*tuples = 0;
		*allvisfrac = 0;
	});
}

static bool
rdbu_scan_sample_next_block(TableScanDesc scan, struct SampleScanState *scanstate) noexcept
{
	return rustydb::boundary::run("rustydb_undo_scan_sample_next_block", [&]() -> bool {
		refuse(scan->rs_rd);
		return (bool) 0;
	});
}

static bool
rdbu_scan_sample_next_tuple(TableScanDesc scan, struct SampleScanState *scanstate,
							TupleTableSlot *slot) noexcept
{
	return rustydb::boundary::run("rustydb_undo_scan_sample_next_tuple", [&]() -> bool {
		refuse(scan->rs_rd);
		return (bool) 0;
	});
}

} /* extern "C" */

static const TableAmRoutine undo_methods = {
	.type = T_TableAmRoutine,
	.slot_callbacks = rdbu_slot_callbacks,
	.scan_begin = rdbu_scan_begin,
	.scan_end = rdbu_scan_end,
	.scan_rescan = rdbu_scan_rescan,
	.scan_getnextslot = rdbu_scan_getnextslot,
	.scan_set_tidrange = nullptr,
	.scan_getnextslot_tidrange = nullptr,
	.parallelscan_estimate = rdbu_parallelscan_estimate,
	.parallelscan_initialize = rdbu_parallelscan_initialize,
	.parallelscan_reinitialize = rdbu_parallelscan_reinitialize,
	.index_fetch_begin = rdbu_index_fetch_begin,
	.index_fetch_reset = rdbu_index_fetch_reset,
	.index_fetch_end = rdbu_index_fetch_end,
	.index_fetch_tuple = rdbu_index_fetch_tuple,
	.tuple_fetch_row_version = rdbu_tuple_fetch_row_version,
	.tuple_tid_valid = rdbu_tuple_tid_valid,
	.tuple_get_latest_tid = rdbu_tuple_get_latest_tid,
	.tuple_satisfies_snapshot = rdbu_tuple_satisfies_snapshot,
	.index_delete_tuples = rdbu_index_delete_tuples,
	.tuple_insert = rdbu_tuple_insert,
	.tuple_insert_speculative = rdbu_tuple_insert_speculative,
	.tuple_complete_speculative = rdbu_tuple_complete_speculative,
	.multi_insert = rdbu_multi_insert,
	.tuple_delete = rdbu_tuple_delete,
	.tuple_update = rdbu_tuple_update,
	.tuple_lock = rdbu_tuple_lock,
	.finish_bulk_insert = nullptr,
	.relation_set_new_filenode = rdbu_relation_set_new_filenode,
	.relation_nontransactional_truncate = rdbu_relation_nontransactional_truncate,
	.relation_copy_data = rdbu_relation_copy_data,
	.relation_copy_for_cluster = rdbu_relation_copy_for_cluster,
	.relation_vacuum = rdbu_relation_vacuum,
	.scan_analyze_next_block = rdbu_scan_analyze_next_block,
	.scan_analyze_next_tuple = rdbu_scan_analyze_next_tuple,
	.index_build_range_scan = rdbu_index_build_range_scan,
	.index_validate_scan = rdbu_index_validate_scan,
	.relation_size = rdbu_relation_size,
	.relation_needs_toast_table = rdbu_relation_needs_toast_table,
	.relation_toast_am = nullptr,
	.relation_fetch_toast_slice = nullptr,
	.relation_estimate_size = rdbu_relation_estimate_size,
	.scan_bitmap_next_block = nullptr,
	.scan_bitmap_next_tuple = nullptr,
	.scan_sample_next_block = rdbu_scan_sample_next_block,
	.scan_sample_next_tuple = rdbu_scan_sample_next_tuple,
};

const TableAmRoutine *
rustydb::am::undo_am_routine()
{
	return &undo_methods;
}

RUSTYDB_FUNCTION(rustydb_undo_tableam_handler)
{
	PG_RETURN_POINTER(&undo_methods);
}
