/*-------------------------------------------------------------------------
 *
 * handler.cpp
 *	  The rustydb table access method: its TableAmRoutine.
 *
 * Thin glue in tableam.h order: each callback is an extern "C" noexcept
 * function whose body runs through rustydb::boundary::run and calls the
 * implementation in the file for its concern (see am.h).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/undo_stats.h"

#include "rustydb/common/boundary.h"
#include "rustydb/wal/records.h"
#include "rustydb/storage/page.h"

namespace am = rustydb::am;

extern "C" {

/* ------------------------------------------------------------------------
 * Slot related callbacks
 * ------------------------------------------------------------------------
 */

static const TupleTableSlotOps *
rdb_slot_callbacks(Relation relation) noexcept
{
	return rustydb::boundary::run("rustydb_slot_callbacks", [&] { return am::slot_ops(relation); });
}

/* ------------------------------------------------------------------------
 * Table scans
 * ------------------------------------------------------------------------
 */

static TableScanDesc
rdb_scan_begin(Relation rel, Snapshot snapshot, int nkeys, struct ScanKeyData *key,
			   ParallelTableScanDesc pscan, uint32 flags) noexcept
{
	return rustydb::boundary::run("rustydb_scan_begin", [&] {
		return am::scan_begin(rel, snapshot, nkeys, key, pscan, flags);
	});
}

static void
rdb_scan_end(TableScanDesc scan) noexcept
{
	rustydb::boundary::run("rustydb_scan_end", [&] { am::scan_end(scan); });
}

static void
rdb_scan_rescan(TableScanDesc scan, struct ScanKeyData *key, bool set_params, bool allow_strat,
				bool allow_sync, bool allow_pagemode) noexcept
{
	rustydb::boundary::run("rustydb_scan_rescan", [&] {
		am::scan_rescan(scan, key, set_params, allow_strat, allow_sync, allow_pagemode);
	});
}

static bool
rdb_scan_getnextslot(TableScanDesc scan, ScanDirection direction, TupleTableSlot *slot) noexcept
{
	return rustydb::boundary::run("rustydb_scan_getnextslot",
								  [&] { return am::scan_getnextslot(scan, direction, slot); });
}

static void
rdb_scan_set_tidrange(TableScanDesc scan, ItemPointer mintid, ItemPointer maxtid) noexcept
{
	rustydb::boundary::run("rustydb_scan_set_tidrange",
						   [&] { am::scan_set_tidrange(scan, mintid, maxtid); });
}

static bool
rdb_scan_getnextslot_tidrange(TableScanDesc scan, ScanDirection direction,
							  TupleTableSlot *slot) noexcept
{
	return rustydb::boundary::run("rustydb_scan_getnextslot_tidrange", [&] {
		return am::scan_getnextslot_tidrange(scan, direction, slot);
	});
}

/* ------------------------------------------------------------------------
 * Parallel table scans: PostgreSQL's block-based helpers
 * ------------------------------------------------------------------------
 */

static Size
rdb_parallelscan_estimate(Relation rel) noexcept
{
	return rustydb::boundary::run("rustydb_parallelscan_estimate",
								  [&] { return table_block_parallelscan_estimate(rel); });
}

static Size
rdb_parallelscan_initialize(Relation rel, ParallelTableScanDesc pscan) noexcept
{
	return rustydb::boundary::run("rustydb_parallelscan_initialize", [&] {
		/* phs_nblocks is RelationGetNumberOfBlocks(): data blocks (rdb_relation_size) */
		return table_block_parallelscan_initialize(rel, pscan);
	});
}

static void
rdb_parallelscan_reinitialize(Relation rel, ParallelTableScanDesc pscan) noexcept
{
	rustydb::boundary::run("rustydb_parallelscan_reinitialize",
						   [&] { table_block_parallelscan_reinitialize(rel, pscan); });
}

/* ------------------------------------------------------------------------
 * Index scans
 * ------------------------------------------------------------------------
 */

static struct IndexFetchTableData *
rdb_index_fetch_begin(Relation rel) noexcept
{
	return rustydb::boundary::run("rustydb_index_fetch_begin",
								  [&] { return am::index_fetch_begin(rel); });
}

static void
rdb_index_fetch_reset(struct IndexFetchTableData *data) noexcept
{
	rustydb::boundary::run("rustydb_index_fetch_reset", [&] { am::index_fetch_reset(data); });
}

static void
rdb_index_fetch_end(struct IndexFetchTableData *data) noexcept
{
	rustydb::boundary::run("rustydb_index_fetch_end", [&] { am::index_fetch_end(data); });
}

static bool
rdb_index_fetch_tuple(struct IndexFetchTableData *scan, ItemPointer tid, Snapshot snapshot,
					  TupleTableSlot *slot, bool *call_again, bool *all_dead) noexcept
{
	return rustydb::boundary::run("rustydb_index_fetch_tuple", [&] {
		Assert(slot->tts_ops == am::slot_ops(scan->rel));
		return am::index_fetch_tuple(scan, tid, snapshot, slot, call_again, all_dead);
	});
}

/* ------------------------------------------------------------------------
 * Non-modifying operations on individual tuples
 * ------------------------------------------------------------------------
 */

static bool
rdb_tuple_fetch_row_version(Relation rel, ItemPointer tid, Snapshot snapshot,
							TupleTableSlot *slot) noexcept
{
	return rustydb::boundary::run("rustydb_tuple_fetch_row_version", [&] {
		Assert(slot->tts_ops == am::slot_ops(rel));
		return am::fetch_row_version(rel, tid, snapshot, slot);
	});
}

static bool
rdb_tuple_tid_valid(TableScanDesc scan, ItemPointer tid) noexcept
{
	return rustydb::boundary::run("rustydb_tuple_tid_valid",
								  [&] { return am::tuple_tid_valid(scan, tid); });
}

static void
rdb_tuple_get_latest_tid(TableScanDesc scan, ItemPointer tid) noexcept
{
	rustydb::boundary::run("rustydb_tuple_get_latest_tid", [&] { am::get_latest_tid(scan, tid); });
}

static bool
rdb_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot, Snapshot snapshot) noexcept
{
	return rustydb::boundary::run("rustydb_tuple_satisfies_snapshot", [&] {
		Assert(slot->tts_ops == am::slot_ops(rel));
		return am::tuple_satisfies_snapshot(rel, slot, snapshot);
	});
}

static TransactionId
rdb_index_delete_tuples(Relation rel, TM_IndexDeleteOp *delstate) noexcept
{
	return rustydb::boundary::run("rustydb_index_delete_tuples",
								  [&] { return am::index_delete_tuples(rel, delstate); });
}

/* ------------------------------------------------------------------------
 * Manipulation of physical tuples
 * ------------------------------------------------------------------------
 */

static void
rdb_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid, int options,
				 struct BulkInsertStateData *bistate) noexcept
{
	rustydb::boundary::run("rustydb_tuple_insert", [&] {
		bool should_free = true;
		HeapTuple tuple = am::tuple_form(rel, slot, &should_free);
		am::insert(rel, tuple, cid, options, bistate);
		Assert(ItemPointerIsValid(&tuple->t_self));
		ItemPointerCopy(&tuple->t_self, &slot->tts_tid);
		if (should_free)
			pfree(tuple);
	});
}

static void
rdb_tuple_insert_speculative(Relation rel, TupleTableSlot *slot, CommandId cid, int options,
							 struct BulkInsertStateData *bistate, uint32 spec_token) noexcept
{
	rustydb::boundary::run("rustydb_tuple_insert_speculative", [&] {
		bool should_free = true;
		HeapTuple tuple = am::tuple_form(rel, slot, &should_free);
		HeapTupleHeaderSetSpeculativeToken(tuple->t_data, spec_token);
		am::insert(rel, tuple, cid, options | HEAP_INSERT_SPECULATIVE, bistate);
		Assert(ItemPointerIsValid(&tuple->t_self));
		ItemPointerCopy(&tuple->t_self, &slot->tts_tid);
		if (should_free)
			pfree(tuple);
	});
}

static void
rdb_tuple_complete_speculative(Relation rel, TupleTableSlot *slot, uint32 spec_token,
							   bool succeeded) noexcept
{
	rustydb::boundary::run("rustydb_tuple_complete_speculative", [&] {
		Assert(ItemPointerIsValid(&slot->tts_tid)); /* set by tuple_insert_speculative */
		if (succeeded)
			am::finish_speculative(rel, &slot->tts_tid);
		else
			am::abort_speculative(rel, &slot->tts_tid);
	});
}

static void
rdb_multi_insert(Relation rel, TupleTableSlot **slots, int nslots, CommandId cid, int options,
				 struct BulkInsertStateData *bistate) noexcept
{
	rustydb::boundary::run("rustydb_multi_insert",
						   [&] { am::multi_insert(rel, slots, nslots, cid, options, bistate); });
}

static TM_Result
rdb_tuple_delete(Relation rel, ItemPointer tid, CommandId cid, Snapshot snapshot,
				 Snapshot crosscheck, bool wait, TM_FailureData *tmfd, bool changing_part) noexcept
{
	return rustydb::boundary::run("rustydb_tuple_delete", [&] {
		return am::remove(rel, tid, cid, snapshot, crosscheck, wait, tmfd, changing_part);
	});
}

static TM_Result
rdb_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot, CommandId cid,
				 Snapshot snapshot, Snapshot crosscheck, bool wait, TM_FailureData *tmfd,
				 LockTupleMode *lockmode, bool *update_indexes) noexcept
{
	return rustydb::boundary::run("rustydb_tuple_update", [&] {
		bool should_free = true;
		HeapTuple tuple = am::tuple_form(rel, slot, &should_free);
		bool hot = false;
		TM_Result result =
			am::update(rel, otid, tuple, cid, snapshot, crosscheck, wait, tmfd, lockmode, &hot);
		Assert(result != TM_Ok || ItemPointerIsValid(&tuple->t_self));
		Assert(result == TM_Ok || !hot);
		ItemPointerCopy(&tuple->t_self, &slot->tts_tid);
		/* a heap-only version is reached through its chain: no new index entries */
		*update_indexes = result == TM_Ok && !hot;
		if (should_free)
			pfree(tuple);
		return result;
	});
}

static TM_Result
rdb_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot,
			   CommandId cid, LockTupleMode mode, LockWaitPolicy wait_policy, uint8 flags,
			   TM_FailureData *tmfd) noexcept
{
	return rustydb::boundary::run("rustydb_tuple_lock", [&] {
		Assert(slot->tts_ops == am::slot_ops(rel));
		return am::lock_tuple(rel, tid, snapshot, slot, cid, mode, wait_policy, flags, tmfd);
	});
}

/* ------------------------------------------------------------------------
 * DDL
 * ------------------------------------------------------------------------
 */

static void
rdb_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode, char persistence,
							  TransactionId *freeze_xid, MultiXactId *minmulti) noexcept
{
	rustydb::boundary::run("rustydb_relation_set_new_filenode", [&] {
		am::relation_set_new_filenode(rel, newrnode, persistence, freeze_xid, minmulti);
	});
}

static void
rdb_relation_nontransactional_truncate(Relation rel) noexcept
{
	rustydb::boundary::run("rustydb_relation_nontransactional_truncate",
						   [&] { am::relation_nontransactional_truncate(rel); });
}

static void
rdb_relation_copy_data(Relation rel, const RelFileNode *newrnode) noexcept
{
	rustydb::boundary::run("rustydb_relation_copy_data",
						   [&] { am::relation_copy_data(rel, newrnode); });
}

static void
rdb_relation_copy_for_cluster(Relation old_rel, Relation new_rel, Relation old_index, bool use_sort,
							  TransactionId oldest_xmin, TransactionId *xid_cutoff,
							  MultiXactId *multi_cutoff, double *num_tuples, double *tups_vacuumed,
							  double *tups_recently_dead) noexcept
{
	rustydb::boundary::run("rustydb_relation_copy_for_cluster", [&] {
		am::relation_copy_for_cluster(old_rel, new_rel, old_index, use_sort, oldest_xmin,
									  xid_cutoff, multi_cutoff, num_tuples, tups_vacuumed,
									  tups_recently_dead);
	});
}

static void
rdb_relation_vacuum(Relation rel, struct VacuumParams *params,
					BufferAccessStrategy bstrategy) noexcept
{
	rustydb::boundary::run("rustydb_relation_vacuum",
						   [&] { am::relation_vacuum(rel, params, bstrategy); });
}

static bool
rdb_scan_analyze_next_block(TableScanDesc scan, BlockNumber blockno,
							BufferAccessStrategy bstrategy) noexcept
{
	return rustydb::boundary::run("rustydb_scan_analyze_next_block", [&] {
		return am::scan_analyze_next_block(scan, blockno, bstrategy);
	});
}

static bool
rdb_scan_analyze_next_tuple(TableScanDesc scan, TransactionId oldest_xmin, double *liverows,
							double *deadrows, TupleTableSlot *slot) noexcept
{
	return rustydb::boundary::run("rustydb_scan_analyze_next_tuple", [&] {
		Assert(slot->tts_ops == am::slot_ops(scan->rs_rd));
		return am::scan_analyze_next_tuple(scan, oldest_xmin, liverows, deadrows, slot);
	});
}

static double
rdb_index_build_range_scan(Relation table_rel, Relation index_rel, struct IndexInfo *index_info,
						   bool allow_sync, bool anyvisible, bool progress,
						   BlockNumber start_blockno, BlockNumber numblocks,
						   IndexBuildCallback callback, void *callback_state,
						   TableScanDesc scan) noexcept
{
	return rustydb::boundary::run("rustydb_index_build_range_scan", [&] {
		return am::index_build_range_scan(table_rel, index_rel, index_info, allow_sync, anyvisible,
										  progress, start_blockno, numblocks, callback,
										  callback_state, scan);
	});
}

static void
rdb_index_validate_scan(Relation table_rel, Relation index_rel, struct IndexInfo *index_info,
						Snapshot snapshot, struct ValidateIndexState *state) noexcept
{
	rustydb::boundary::run("rustydb_index_validate_scan", [&] {
		am::index_validate_scan(table_rel, index_rel, index_info, snapshot, state);
	});
}

/* ------------------------------------------------------------------------
 * Size, TOAST and planner estimates
 * ------------------------------------------------------------------------
 */

/*
 * The main fork's size as the data blocks' size: PostgreSQL turns it into
 * RelationGetNumberOfBlocks(), the block-number space of the table's TIDs
 * (BRIN ranges, ANALYZE's sample, relpages from ANALYZE and CREATE INDEX),
 * where the metapage has no place. pg_relation_size() reads the file and
 * still counts it; rustydb's own code asks the smgr (storage::phys_nblocks).
 */
static uint64
rdb_relation_size(Relation rel, ForkNumber fork) noexcept
{
	return rustydb::boundary::run("rustydb_relation_size", [&] {
		uint64 size = table_block_relation_size(rel, fork);
		if ((fork == MAIN_FORKNUM || fork == InvalidForkNumber) &&
			rustydb::storage::phys_nblocks(rel) > 0)
			size -= BLCKSZ;
		return size;
	});
}

static bool
rdb_relation_needs_toast_table(Relation rel) noexcept
{
	return rustydb::boundary::run("rustydb_relation_needs_toast_table",
								  [&] { return am::relation_needs_toast_table(rel); });
}

static Oid
rdb_relation_toast_am(Relation rel) noexcept
{
	return rustydb::boundary::run("rustydb_relation_toast_am",
								  [&] { return am::relation_toast_am(rel); });
}

static void
rdb_relation_fetch_toast_slice(Relation toastrel, Oid valueid, int32 attrsize, int32 sliceoffset,
							   int32 slicelength, struct varlena *result) noexcept
{
	rustydb::boundary::run("rustydb_relation_fetch_toast_slice", [&] {
		heap_fetch_toast_slice(toastrel, valueid, attrsize, sliceoffset, slicelength, result);
	});
}

static void
rdb_relation_estimate_size(Relation rel, int32 *attr_widths, BlockNumber *pages, double *tuples,
						   double *allvisfrac) noexcept
{
	rustydb::boundary::run("rustydb_relation_estimate_size", [&] {
		am::estimate_rel_size(rel, attr_widths, pages, tuples, allvisfrac);
	});
}

/* ------------------------------------------------------------------------
 * Executor scans: bitmap and TABLESAMPLE
 * ------------------------------------------------------------------------
 */

static bool
rdb_scan_bitmap_next_block(TableScanDesc scan, struct TBMIterateResult *tbmres) noexcept
{
	return rustydb::boundary::run("rustydb_scan_bitmap_next_block",
								  [&] { return am::scan_bitmap_next_block(scan, tbmres); });
}

static bool
rdb_scan_bitmap_next_tuple(TableScanDesc scan, struct TBMIterateResult *tbmres,
						   TupleTableSlot *slot) noexcept
{
	return rustydb::boundary::run("rustydb_scan_bitmap_next_tuple",
								  [&] { return am::scan_bitmap_next_tuple(scan, tbmres, slot); });
}

static bool
rdb_scan_sample_next_block(TableScanDesc scan, struct SampleScanState *scanstate) noexcept
{
	return rustydb::boundary::run("rustydb_scan_sample_next_block",
								  [&] { return am::scan_sample_next_block(scan, scanstate); });
}

static bool
rdb_scan_sample_next_tuple(TableScanDesc scan, struct SampleScanState *scanstate,
						   TupleTableSlot *slot) noexcept
{
	return rustydb::boundary::run("rustydb_scan_sample_next_tuple", [&] {
		return am::scan_sample_next_tuple(scan, scanstate, slot);
	});
}

} /* extern "C" */

/* ------------------------------------------------------------------------
 * The routine, in tableam.h order
 * ------------------------------------------------------------------------
 */

static const TableAmRoutine rustydb_methods = {
	.type = T_TableAmRoutine,

	.slot_callbacks = rdb_slot_callbacks,

	.scan_begin = rdb_scan_begin,
	.scan_end = rdb_scan_end,
	.scan_rescan = rdb_scan_rescan,
	.scan_getnextslot = rdb_scan_getnextslot,

	.scan_set_tidrange = rdb_scan_set_tidrange,
	.scan_getnextslot_tidrange = rdb_scan_getnextslot_tidrange,

	.parallelscan_estimate = rdb_parallelscan_estimate,
	.parallelscan_initialize = rdb_parallelscan_initialize,
	.parallelscan_reinitialize = rdb_parallelscan_reinitialize,

	.index_fetch_begin = rdb_index_fetch_begin,
	.index_fetch_reset = rdb_index_fetch_reset,
	.index_fetch_end = rdb_index_fetch_end,
	.index_fetch_tuple = rdb_index_fetch_tuple,

	.tuple_fetch_row_version = rdb_tuple_fetch_row_version,
	.tuple_tid_valid = rdb_tuple_tid_valid,
	.tuple_get_latest_tid = rdb_tuple_get_latest_tid,
	.tuple_satisfies_snapshot = rdb_tuple_satisfies_snapshot,
	.index_delete_tuples = rdb_index_delete_tuples,

	.tuple_insert = rdb_tuple_insert,
	.tuple_insert_speculative = rdb_tuple_insert_speculative,
	.tuple_complete_speculative = rdb_tuple_complete_speculative,
	.multi_insert = rdb_multi_insert,
	.tuple_delete = rdb_tuple_delete,
	.tuple_update = rdb_tuple_update,
	.tuple_lock = rdb_tuple_lock,
	.finish_bulk_insert = nullptr,

	.relation_set_new_filenode = rdb_relation_set_new_filenode,
	.relation_nontransactional_truncate = rdb_relation_nontransactional_truncate,
	.relation_copy_data = rdb_relation_copy_data,
	.relation_copy_for_cluster = rdb_relation_copy_for_cluster,
	.relation_vacuum = rdb_relation_vacuum,
	.scan_analyze_next_block = rdb_scan_analyze_next_block,
	.scan_analyze_next_tuple = rdb_scan_analyze_next_tuple,
	.index_build_range_scan = rdb_index_build_range_scan,
	.index_validate_scan = rdb_index_validate_scan,

	.relation_size = rdb_relation_size,
	.relation_needs_toast_table = rdb_relation_needs_toast_table,
	.relation_toast_am = rdb_relation_toast_am,
	.relation_fetch_toast_slice = rdb_relation_fetch_toast_slice,

	.relation_estimate_size = rdb_relation_estimate_size,

	.scan_bitmap_next_block = rdb_scan_bitmap_next_block,
	.scan_bitmap_next_tuple = rdb_scan_bitmap_next_tuple,
	.scan_sample_next_block = rdb_scan_sample_next_block,
	.scan_sample_next_tuple = rdb_scan_sample_next_tuple,
};

RUSTYDB_FUNCTION(rustydb_tableam_handler)
{
	PG_RETURN_POINTER(&rustydb_methods);
}

void
rustydb::am::init()
{
	rustydb::wal::register_rmgr();
	rustydb::am::register_payload_verifier();
	rustydb::am::register_reencrypter();
	rustydb::am::register_decoding();
	rustydb::am::register_undo_stats();
}
