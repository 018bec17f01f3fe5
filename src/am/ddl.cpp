/*-------------------------------------------------------------------------
 *
 * ddl.cpp
 *	  rustydb storage lifecycle: new relation files, the metapage, TRUNCATE,
 *	  SET TABLESPACE, CLUSTER / VACUUM FULL, CREATE INDEX (CONCURRENTLY),
 *	  TOAST and planner size estimates.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/inplace.h"
#include "rustydb/common/settings.h"
#include "rustydb/crypto/crypto.h"
#include "rustydb/crypto/pagecache.h"

#include "rustydb/crypto/crypto.h"
#include "rustydb/mvcc/visibility.h"
#include "rustydb/storage/changes.h"
#include "rustydb/storage/page.h"
#include "rustydb/storage/undo.h"
#include "rustydb/wal/records.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "catalog/catalog.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::am {

/* ========================================================================
 * Relation files
 * ========================================================================
 */

void
relation_set_new_filenode(Relation rel, const RelFileNode *newrnode, char persistence,
						  TransactionId *freeze_xid, MultiXactId *minmulti)
{
	*freeze_xid = RecentXmin;
	*minmulti = GetOldestMultiXactId();
	/* TRUNCATE, rewrites: the old file's opened payloads go (a new relation has none) */
	if (!RelFileNodeEquals(rel->rd_node, *newrnode))
		crypto::pagecache::forget_node(rel->rd_node);

	SMgrRelation srel = RelationCreateStorage(*newrnode, persistence, true);
	if (persistence == RELPERSISTENCE_UNLOGGED)
	{
		Assert(rel->rd_rel->relkind == RELKIND_RELATION ||
			   rel->rd_rel->relkind == RELKIND_MATVIEW ||
			   rel->rd_rel->relkind == RELKIND_TOASTVALUE);
		smgrcreate(srel, INIT_FORKNUM, false);
		log_smgrcreate(newrnode, INIT_FORKNUM);
		smgrimmedsync(srel, INIT_FORKNUM);
	}
	smgrclose(srel);
}

void
relation_nontransactional_truncate(Relation rel)
{
	crypto::pagecache::forget_node(rel->rd_node);
	RelationTruncate(rel, 0);
}

void
relation_copy_data(Relation rel, const RelFileNode *newrnode)
{
	FlushRelationBuffers(rel);
	SMgrRelation dst = RelationCreateStorage(*newrnode, rel->rd_rel->relpersistence, true);

	RelationCopyStorage(RelationGetSmgr(rel), dst, MAIN_FORKNUM, rel->rd_rel->relpersistence);
	for (int fork = MAIN_FORKNUM + 1; fork <= MAX_FORKNUM; fork++)
	{
		auto f = (ForkNumber) fork;
		if (!smgrexists(RelationGetSmgr(rel), f))
			continue;
		smgrcreate(dst, f, false);
		if (rel->rd_rel->relpersistence == RELPERSISTENCE_PERMANENT ||
			(rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED && f == INIT_FORKNUM))
			log_smgrcreate(newrnode, f);
		RelationCopyStorage(RelationGetSmgr(rel), dst, f, rel->rd_rel->relpersistence);
	}
	RelationDropStorage(rel);
	smgrclose(dst);
}

/* ========================================================================
 * The metapage
 *
 * Block 0 of a relation with any page (storage/page.h). The storage layer
 * formats it (storage::meta_init) and checks it; creating it is decided
 * here, where its flags (encrypted or not: the key catalog) and its
 * META_PAGE record belong.
 * ========================================================================
 */

static uint32
meta_flags_of(Relation rel)
{
	return crypto::relation_has_keys(RelationGetRelid(rel)) ? storage::kMetaEncrypted : 0;
}

/* Write the metapage into buf (block 0, all zeroes, exclusively locked), WAL-logged. */
static void
write_metapage(Relation rel, Buffer buf, uint32 flags)
{
	Page page = BufferGetPage(buf);

	Assert(BufferGetBlockNumber(buf) == storage::kMetaBlock);
	Assert(storage::buffer_is_locked_exclusive(buf));
	Assert(PageIsNew(page));
	START_CRIT_SECTION();
	storage::meta_init(page, flags);
	MarkBufferDirty(buf);
	if (RelationNeedsWAL(rel))
	{
		wal::XlMeta xl{wal::kWalFormatVersion, 0, 0, flags};
		XLogBeginInsert();
		XLogRegisterData((char *) &xl, sizeof(xl));
		XLogRegisterBuffer(0, buf, REGBUF_WILL_INIT | REGBUF_STANDARD);
		XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kMetaPage);
		PageSetLSN(page, recptr);
	}
	END_CRIT_SECTION();
}

/*
 * Create the metapage of a relation that had no block: its flags looked
 * up first (catalog access, no buffer locked), then block 0 added and
 * written under the relation extension lock, unless another backend did
 * so meanwhile.
 */
static void
create_metapage(Relation rel)
{
	bool need_lock = !RELATION_IS_LOCAL(rel);
	uint32 flags = meta_flags_of(rel);

	Assert(CritSectionCount == 0);
	if (need_lock)
		LockRelationForExtension(rel, ExclusiveLock);
	if (storage::phys_nblocks(rel) == 0)
	{
		Buffer buf = ReadBufferExtended(rel, MAIN_FORKNUM, P_NEW, RBM_ZERO_AND_LOCK, nullptr);
		if (BufferGetBlockNumber(buf) != storage::kMetaBlock)
			elog(ERROR, "rustydb: metapage of relation \"%s\" created at block %u",
				 RelationGetRelationName(rel), BufferGetBlockNumber(buf));
		write_metapage(rel, buf, flags);
		UnlockReleaseBuffer(buf);
	}
	if (need_lock)
		UnlockRelationForExtension(rel, ExclusiveLock);
}

/*
 * Whether rel's rows may be updated in place, for the insert reserves.
 * Plain tables only: an encrypted table's pages fill as before (its rows
 * are 36 bytes longer; the extra pages changed a plan of PostgreSQL's join
 * test under encryption), its first update of a row on a full page moves
 * the row, most of its rows COPY wrote are group members, which go out of
 * place anyway, and pruning never takes a sealed version's pointer back.
 */
static bool
reserves_apply(Relation rel, bool plain)
{
	return settings::update_in_place && settings::undo_max_size > 0 &&
		   rel->rd_rel->relkind == RELKIND_RELATION && plain;
}

Size
page_fill_reserve(Relation rel, Size len)
{
	Size save = RelationGetTargetPageFreeSpace(rel, HEAP_DEFAULT_FILLFACTOR);
	if (settings::inplace_reserve > 0 &&
		reserves_apply(rel, crypto::relation_cipher(rel) == nullptr))
	{
		Size one = MAXALIGN(len + storage::kUndoExtSize);
		if (one <= (Size) settings::inplace_reserve)
			save = Max(save, one);
	}
	return save;
}

bool
page_pointer_reserve(Relation rel)
{
	return settings::inplace_pointer_reserve &&
		   reserves_apply(rel, !crypto::relation_encrypted(rel));
}

Buffer
get_buffer_for_tuple(Relation rel, Size len, BulkInsertState bistate, Buffer other, int group_slots)
{
	for (;;)
	{
		Buffer buf = storage::buffer_for_tuple(rel, len, page_fill_reserve(rel, len), bistate,
											   other, group_slots, page_pointer_reserve(rel));
		if (BufferIsValid(buf))
			return buf;
		create_metapage(rel); /* the relation had no block */
	}
}

void
check_metapage(Relation rel)
{
	if (!storage::check_metapage(rel))
		return;
	/* block 0 is all zeroes: write the metapage there (no buffer lock over catalog access) */
	uint32 flags = meta_flags_of(rel);
	Buffer buf = ReadBuffer(rel, storage::kMetaBlock);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	if (PageIsNew(BufferGetPage(buf)))
		write_metapage(rel, buf, flags);
	UnlockReleaseBuffer(buf);
}

/* ========================================================================
 * CLUSTER and VACUUM FULL
 * ========================================================================
 */

/* Re-form a surviving tuple for the new table, keep its versioning, freeze. */
static void
rewrite_tuple(HeapTuple tuple, TupleDesc olddesc, TupleDesc newdesc, Datum *values, bool *isnull,
			  Relation new_rel, TransactionId cutoff_xid, MultiXactId cutoff_multi,
			  TransactionId oldest_xmin, BulkInsertState bistate)
{
	heap_deform_tuple(tuple, olddesc, values, isnull);
	for (int i = 0; i < newdesc->natts; i++)
		if (TupleDescAttr(newdesc, i)->attisdropped)
			isnull[i] = true;
	HeapTuple copy = heap_form_tuple(newdesc, values, isnull);
	HeapTupleHeader o = tuple->t_data, n = copy->t_data;

	n->t_choice.t_heap = o->t_choice.t_heap;
	n->t_infomask = (n->t_infomask & ~HEAP_XACT_MASK) | (o->t_infomask & HEAP_XACT_MASK);
	n->t_infomask2 = (n->t_infomask2 & ~HEAP2_XACT_MASK) | (o->t_infomask2 & HEAP2_XACT_MASK);
	n->t_infomask &= ~HEAP_COMBOCID;
	/* version chains do not survive a rewrite: each version stands alone */
	HeapTupleHeaderClearHotUpdated(n);
	HeapTupleHeaderClearHeapOnly(n);

	TransactionId min_xid = InvalidTransactionId;
	MultiXactId min_multi = InvalidMultiXactId;
	uint16 im, im2;
	TransactionId xmax;
	if (prepare_freeze(n, cutoff_xid, cutoff_multi, oldest_xmin, &min_xid, &min_multi, &im, &im2,
					   &xmax))
		storage::freeze_tuple(n, storage::FreezeEntry{xmax, im, im2, InvalidOffsetNumber, 0});
	copy->t_tableOid = RelationGetRelid(new_rel);
	insert_raw(new_rel, copy, bistate);
	heap_freetuple(copy);
}

/* What the copy of a row's older versions (a chain through undo) needs. */
struct ChainCopy
{
	TransactionId oldest_xmin;
	Tuplesortstate *sort;
	TupleDesc olddesc, newdesc;
	Datum *values;
	bool *isnull;
	Relation new_rel;
	TransactionId cutoff_xid;
	MultiXactId cutoff_multi;
	BulkInsertState bistate;
	double *num_tuples, *recently_dead;
	int64 *written;
	const crypto::Cipher *cipher; /* the old table's: its versions come sealed from undo */
};

/*
 * An older version of a row changed in place: copied, standing alone, when
 * a snapshot may still need it (as heap copies recently dead versions);
 * the first one dead to everyone ends the chain (the older ones are too).
 */
static bool
copy_older_version(HeapTuple version, void *arg)
{
	auto *cc = static_cast<ChainCopy *>(arg);
	if (mvcc::satisfies_vacuum(version, cc->oldest_xmin, InvalidBuffer) == HEAPTUPLE_DEAD)
		return false;
	*cc->num_tuples += 1; /* kept, as heap counts its recently dead versions */
	*cc->recently_dead += 1;
	/* values opened as the scan's slot has them (large values too) */
	HeapTuple plain = version, opened = nullptr;
	if (cc->cipher != nullptr)
	{
		BlockNumber blk = ItemPointerGetBlockNumber(&version->t_self);
		opened = crypto::open_tuple_copy(cc->cipher, version, blk);
		plain = crypto::open_values(cc->cipher, cc->olddesc, opened, blk);
	}
	if (cc->sort != nullptr)
		tuplesort_putheaptuple(cc->sort, plain);
	else
	{
		rewrite_tuple(plain, cc->olddesc, cc->newdesc, cc->values, cc->isnull, cc->new_rel,
					  cc->cutoff_xid, cc->cutoff_multi, cc->oldest_xmin, cc->bistate);
		pgstat_progress_update_param(PROGRESS_CLUSTER_HEAP_TUPLES_WRITTEN, ++*cc->written);
	}
	if (plain != opened && plain != version)
		heap_freetuple(plain);
	if (opened != nullptr)
	{
		explicit_bzero(opened->t_data, opened->t_len);
		heap_freetuple(opened);
	}
	return true;
}

void
relation_copy_for_cluster(Relation old_rel, Relation new_rel, Relation old_index, bool use_sort,
						  TransactionId oldest_xmin, TransactionId *xid_cutoff,
						  MultiXactId *multi_cutoff, double *num_tuples, double *tups_vacuumed,
						  double *tups_recently_dead)
{
	TupleDesc olddesc = RelationGetDescr(old_rel);
	TupleDesc newdesc = RelationGetDescr(new_rel);
	auto *values = (Datum *) palloc(sizeof(Datum) * Max(newdesc->natts, olddesc->natts));
	auto *isnull = (bool *) palloc(sizeof(bool) * Max(newdesc->natts, olddesc->natts));
	Tuplesortstate *sort = nullptr;
	TableScanDesc tscan = nullptr;
	IndexScanDesc iscan = nullptr;
	BulkInsertState bistate = GetBulkInsertState();

	Assert(old_index != nullptr || !use_sort); /* sorting follows an index's order */
	Assert(TransactionIdIsValid(oldest_xmin));
	/*
	 * An encrypted table is clustered in its index's order, never through a
	 * sort: tuplesort writes the (decrypted) rows to temporary files once
	 * they exceed maintenance_work_mem (docs/tde.md, "Plaintext paths").
	 */
	const crypto::Cipher *cipher = crypto::relation_cipher(old_rel); /* before any buffer lock */
	if (old_index != nullptr && use_sort && cipher != nullptr)
	{
		use_sort = false;
		elog(DEBUG1, "rustydb: clustering encrypted table \"%s\" by an index scan, not a sort",
			 RelationGetRelationName(old_rel));
	}
	if (old_index != nullptr && use_sort)
		sort = tuplesort_begin_cluster(olddesc, old_index, maintenance_work_mem, nullptr,
									   TUPLESORT_NONE);
	if (old_index != nullptr && !use_sort)
	{
		pgstat_progress_update_param(PROGRESS_CLUSTER_PHASE,
									 PROGRESS_CLUSTER_PHASE_INDEX_SCAN_HEAP);
		iscan = index_beginscan(old_rel, old_index, SnapshotAny, 0, 0);
		index_fetch_defer_values(iscan->xs_heapfetch);
		index_rescan(iscan, nullptr, 0, nullptr, 0);
	}
	else
	{
		pgstat_progress_update_param(PROGRESS_CLUSTER_PHASE, PROGRESS_CLUSTER_PHASE_SEQ_SCAN_HEAP);
		tscan = table_beginscan(old_rel, SnapshotAny, 0, nullptr);
		reinterpret_cast<ScanDesc *>(tscan)->values_deferred = true;
		pgstat_progress_update_param(PROGRESS_CLUSTER_TOTAL_HEAP_BLKS,
									 reinterpret_cast<ScanDesc *>(tscan)->nblocks);
	}
	BlockNumber prev_cblock = InvalidBlockNumber;
	int64 written = 0;

	TupleTableSlot *slot = table_slot_create(old_rel, nullptr);
	*num_tuples = *tups_vacuumed = *tups_recently_dead = 0;
	ChainCopy cc{oldest_xmin, sort,        olddesc,       newdesc, values,     isnull,
				 new_rel,     *xid_cutoff, *multi_cutoff, bistate, num_tuples, tups_recently_dead,
				 &written,    cipher};

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (iscan != nullptr)
		{
			if (!index_getnext_slot(iscan, ForwardScanDirection, slot))
				break;
		}
		else if (!table_scan_getnextslot(tscan, ForwardScanDirection, slot))
			break;
		if (tscan != nullptr)
		{
			/* blocks scanned so far, counted from where the scan started */
			auto *ts = reinterpret_cast<ScanDesc *>(tscan);
			if (ts->cblock != prev_cblock && ts->nblocks > 0)
			{
				pgstat_progress_update_param(
					PROGRESS_CLUSTER_HEAP_BLKS_SCANNED,
					(ts->cblock + ts->nblocks - ts->startblock) % ts->nblocks + 1);
				prev_cblock = ts->cblock;
			}
		}

		HeapTupleData stored;
		Buffer buf;
		/* the verdict on the page's version (an encrypted table's slot holds a copy) */
		bool isdead = true; /* not on its page any more: pruned */

		HTSV_Result verdict = HEAPTUPLE_DEAD;
		if (lock_slot_version(old_rel, slot, &stored, &buf))
		{
			verdict = mvcc::satisfies_vacuum(&stored, oldest_xmin, buf);
			UnlockReleaseBuffer(buf);
		}
		else
		{
			/*
			 * An undo image the scan returned for an aborted in-place
			 * version (SnapshotAny skips those): judged on its own (an
			 * encrypted table's slot has it opened, header as in undo).
			 */
			verdict = mvcc::satisfies_vacuum(ExecFetchSlotHeapTuple(slot, false, nullptr),
											 oldest_xmin, InvalidBuffer);
		}
		switch (verdict)
		{
			case HEAPTUPLE_DEAD:
				break;
			case HEAPTUPLE_RECENTLY_DEAD:
			case HEAPTUPLE_DELETE_IN_PROGRESS:
				*tups_recently_dead += 1;
				isdead = false;
				break;
			default:
				isdead = false;
				break;
		}
		if (isdead)
		{
			*tups_vacuumed += 1;
			continue;
		}
		/* a version kept still has its large values (values_deferred) */
		open_slot_values(old_rel, slot);
		HeapTuple tuple = ExecFetchSlotHeapTuple(slot, false, nullptr);
		*num_tuples += 1;
		if (sort != nullptr)
		{
			tuplesort_putheaptuple(sort, tuple);
			pgstat_progress_update_param(PROGRESS_CLUSTER_HEAP_TUPLES_SCANNED,
										 (int64) (*num_tuples + *tups_vacuumed));
		}
		else
		{
			/* scanned and written in one progress update, as heap does */
			static const int index[] = {PROGRESS_CLUSTER_HEAP_TUPLES_SCANNED,
										PROGRESS_CLUSTER_HEAP_TUPLES_WRITTEN};
			int64 val[] = {(int64) (*num_tuples + *tups_vacuumed), ++written};

			rewrite_tuple(tuple, olddesc, newdesc, values, isnull, new_rel, *xid_cutoff,
						  *multi_cutoff, oldest_xmin, bistate);
			pgstat_progress_update_multi_param(2, index, val);
		}
		/* a row changed in place: its older versions that a snapshot may still need */
		if (storage::tuple_has_undo(tuple->t_data))
			older_versions(old_rel, tuple, copy_older_version, &cc);
	}
	if (iscan != nullptr)
		index_endscan(iscan);
	if (tscan != nullptr)
		table_endscan(tscan);
	ExecDropSingleTupleTableSlot(slot);

	if (sort != nullptr)
	{
		pgstat_progress_update_param(PROGRESS_CLUSTER_PHASE, PROGRESS_CLUSTER_PHASE_SORT_TUPLES);
		tuplesort_performsort(sort);
		pgstat_progress_update_param(PROGRESS_CLUSTER_PHASE, PROGRESS_CLUSTER_PHASE_WRITE_NEW_HEAP);
		HeapTuple tuple;
		while ((tuple = tuplesort_getheaptuple(sort, true)) != nullptr)
		{
			CHECK_FOR_INTERRUPTS();
			rewrite_tuple(tuple, olddesc, newdesc, values, isnull, new_rel, *xid_cutoff,
						  *multi_cutoff, oldest_xmin, bistate);
			pgstat_progress_update_param(PROGRESS_CLUSTER_HEAP_TUPLES_WRITTEN, ++written);
		}
		tuplesort_end(sort);
	}
	FreeBulkInsertState(bistate);
	pfree(values);
	pfree(isnull);
}

/* ========================================================================
 * CREATE INDEX
 * ========================================================================
 */

double
index_build_range_scan(Relation table_rel, Relation index_rel, IndexInfo *index_info,
					   bool allow_sync, bool anyvisible, bool progress, BlockNumber start_blockno,
					   BlockNumber numblocks, IndexBuildCallback callback, void *callback_state,
					   TableScanDesc scan)
{
	bool checking_uniqueness = index_info->ii_Unique || index_info->ii_ExclusionOps != nullptr;
	/* "any visible" (a parallel leader's ...) never checks uniqueness, which waits for inserters */
	Assert(!(anyvisible && checking_uniqueness));
	Assert(OidIsValid(index_rel->rd_rel->relam));
	Datum values[INDEX_MAX_KEYS];
	bool isnull[INDEX_MAX_KEYS];
	double reltuples = 0;
	TransactionId oldest_xmin = InvalidTransactionId;
	Snapshot snapshot;
	bool need_unregister = false;

	EState *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	TupleTableSlot *slot = table_slot_create(table_rel, nullptr);
	econtext->ecxt_scantuple = slot;
	ExprState *predicate = ExecPrepareQual(index_info->ii_Predicate, estate);

	if (!IsBootstrapProcessingMode() && !index_info->ii_Concurrent)
		oldest_xmin = GetOldestNonRemovableTransactionId(table_rel);

	if (scan == nullptr)
	{
		if (!TransactionIdIsValid(oldest_xmin))
		{
			snapshot = RegisterSnapshot(GetTransactionSnapshot());
			need_unregister = true;
		}
		else
			snapshot = SnapshotAny;
		scan = table_beginscan_strat(table_rel, snapshot, 0, nullptr, true, allow_sync);
	}
	else
		snapshot = scan->rs_snapshot;
	/* every version with the horizon (SnapshotAny), or what an MVCC snapshot sees */
	Assert(snapshot == SnapshotAny || IsMVCCSnapshot(snapshot));
	Assert(snapshot == SnapshotAny ? TransactionIdIsValid(oldest_xmin)
								   : !TransactionIdIsValid(oldest_xmin));
	Assert(snapshot == SnapshotAny || !anyvisible);

	auto *s = (ScanDesc *) scan;
	/* versions dead to everyone are skipped before their large values are opened */
	s->values_deferred = snapshot == SnapshotAny;
	if (start_blockno != 0 || numblocks != InvalidBlockNumber)
	{
		s->base.rs_flags &= ~SO_ALLOW_SYNC;
		s->startblock = start_blockno;
		s->numblocks = numblocks;
	}
	if (progress)
		pgstat_progress_update_param(PROGRESS_SCAN_BLOCKS_TOTAL, s->nblocks);

	BlockNumber last_block = InvalidBlockNumber;
	int64 blocks_done = 0;
	OffsetNumber roots[MaxHeapTuplesPerPage + 1];
	while (scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		HeapTuple tuple = &s->ctup;
		Buffer buf = s->cbuf;
		bool index_it, alive;

		CHECK_FOR_INTERRUPTS();
		if (s->cblock != last_block)
		{
			/* index entries point at the roots of version chains */
			last_block = s->cblock;
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			get_root_offsets(BufferGetPage(buf), roots);
			LockBuffer(buf, BUFFER_LOCK_UNLOCK);
			if (progress)
				pgstat_progress_update_param(PROGRESS_SCAN_BLOCKS_DONE, ++blocks_done);
		}

		if (snapshot == SnapshotAny)
		{
		recheck:
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			/*
			 * A row changed in place: every version of its chain has the
			 * same values in the indexes that existed, not necessarily in
			 * the new one, so snapshots older than the newest version's
			 * creator must not use it (as for a broken heap-only chain).
			 */
			if (storage::tuple_has_undo(tuple->t_data) &&
				!HeapTupleHeaderXminFrozen(tuple->t_data) &&
				!TransactionIdPrecedes(HeapTupleHeaderGetRawXmin(tuple->t_data), oldest_xmin))
				index_info->ii_BrokenHotChain = true;
			switch (mvcc::satisfies_vacuum(tuple, oldest_xmin,
										   tuple_on_page(tuple, buf) ? buf : InvalidBuffer))
			{
				case HEAPTUPLE_DEAD:
					index_it = alive = false;
					break;
				case HEAPTUPLE_LIVE:
					index_it = alive = true;
					reltuples += 1;
					break;
				case HEAPTUPLE_RECENTLY_DEAD:
					/*
					 * A recently dead member of a version chain: the chain's
					 * live member gets the entry; old snapshots cannot use
					 * the new index (pg_index.indcheckxmin).
					 */
					if (HeapTupleHeaderIsHotUpdated(tuple->t_data))
					{
						index_it = false;
						index_info->ii_BrokenHotChain = true;
					}
					else
						index_it = true;
					alive = false;
					break;
				case HEAPTUPLE_INSERT_IN_PROGRESS:
				{
					TransactionId xwait = HeapTupleHeaderGetXmin(tuple->t_data);
					if (!anyvisible && checking_uniqueness &&
						!TransactionIdIsCurrentTransactionId(xwait))
					{
						LockBuffer(buf, BUFFER_LOCK_UNLOCK);
						XactLockTableWait(xwait, table_rel, &tuple->t_self, XLTW_InsertIndexUnique);
						CHECK_FOR_INTERRUPTS();
						goto recheck;
					}
					index_it = alive = true;
					reltuples += 1;
					break;
				}
				case HEAPTUPLE_DELETE_IN_PROGRESS:
				{
					TransactionId xwait = mvcc::update_xid(tuple->t_data);
					if (anyvisible)
					{
						index_it = true;
						alive = false;
						reltuples += 1;
					}
					else if (TransactionIdIsCurrentTransactionId(xwait))
					{
						if (HeapTupleHeaderIsHotUpdated(tuple->t_data))
						{
							index_it = false;
							index_info->ii_BrokenHotChain = true;
						}
						else
							index_it = true;
						alive = false;
					}
					else
					{
						if (checking_uniqueness || HeapTupleHeaderIsHotUpdated(tuple->t_data))
						{
							LockBuffer(buf, BUFFER_LOCK_UNLOCK);
							XactLockTableWait(xwait, table_rel, &tuple->t_self,
											  XLTW_InsertIndexUnique);
							CHECK_FOR_INTERRUPTS();
							goto recheck;
						}
						index_it = true;
						alive = true;
						reltuples += 1;
					}
					break;
				}
				default:
					index_it = alive = false;
					break;
			}
			LockBuffer(buf, BUFFER_LOCK_UNLOCK);
			if (!index_it)
				continue;
		}
		else
		{
			alive = true;
			reltuples += 1;
		}

		Assert(ItemPointerGetBlockNumber(&tuple->t_self) == s->cblock);
		OffsetNumber off = ItemPointerGetOffsetNumber(&tuple->t_self);
		if (roots[off] == InvalidOffsetNumber)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg_internal("failed to find the chain root of tuple (%u,%u) in "
											"\"%s\"",
											s->cblock, (unsigned) off,
											RelationGetRelationName(table_rel))));
		ItemPointerData root_tid;
		ItemPointerSet(&root_tid, s->cblock, roots[off]);

		open_slot_values(table_rel, slot);
		MemoryContextReset(econtext->ecxt_per_tuple_memory);
		if (predicate != nullptr && !ExecQual(predicate, econtext))
			continue;
		FormIndexDatum(index_info, slot, estate, values, isnull);
		callback(index_rel, &root_tid, values, isnull, alive, callback_state);
	}

	table_endscan(scan);
	if (need_unregister)
		UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	index_info->ii_ExpressionsState = NIL;
	index_info->ii_PredicateState = nullptr;
	return reltuples;
}

void
index_validate_scan(Relation table_rel, Relation index_rel, IndexInfo *index_info,
					Snapshot snapshot, ValidateIndexState *state)
{
	Datum values[INDEX_MAX_KEYS];
	bool isnull[INDEX_MAX_KEYS];
	EState *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	TupleTableSlot *slot = table_slot_create(table_rel, nullptr);
	econtext->ecxt_scantuple = slot;
	ExprState *predicate = ExecPrepareQual(index_info->ii_Predicate, estate);
	ItemPointerData decoded;
	ItemPointer indexcursor = nullptr;
	bool sort_empty = false;

	TableScanDesc scan = table_beginscan_strat(table_rel, snapshot, 0, nullptr, true, false);
	auto *s = (ScanDesc *) scan;
	pgstat_progress_update_param(PROGRESS_SCAN_BLOCKS_TOTAL, s->nblocks);

	OffsetNumber roots[MaxHeapTuplesPerPage + 1];
	bool in_index[MaxHeapTuplesPerPage + 1];
	BlockNumber root_blkno = InvalidBlockNumber;
	while (scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		if (s->cblock != root_blkno)
		{
			root_blkno = s->cblock;
			LockBuffer(s->cbuf, BUFFER_LOCK_SHARE);
			get_root_offsets(BufferGetPage(s->cbuf), roots);
			LockBuffer(s->cbuf, BUFFER_LOCK_UNLOCK);
			memset(in_index, 0, sizeof(in_index));
		}
		Assert(ItemPointerGetBlockNumber(&s->ctup.t_self) == root_blkno);
		OffsetNumber off = ItemPointerGetOffsetNumber(&s->ctup.t_self);
		if (roots[off] == InvalidOffsetNumber)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg_internal("failed to find the chain root of tuple (%u,%u) in "
											"\"%s\"",
											root_blkno, (unsigned) off,
											RelationGetRelationName(table_rel))));
		ItemPointerData root;
		ItemPointerSet(&root, root_blkno, roots[off]);

		/* merge: advance through the index's TIDs up to this root */
		while (!sort_empty &&
			   (indexcursor == nullptr || ItemPointerCompare(indexcursor, &root) < 0))
		{
			Datum val;
			bool valnull;
			sort_empty = !tuplesort_getdatum(state->tuplesort, true, &val, &valnull, nullptr);
			if (!sort_empty)
			{
				itemptr_decode(&decoded, DatumGetInt64(val));
				indexcursor = &decoded;
				if (ItemPointerGetBlockNumber(indexcursor) == root_blkno)
					in_index[ItemPointerGetOffsetNumber(indexcursor)] = true;
			}
			else
				indexcursor = nullptr;
		}
		if ((sort_empty || ItemPointerCompare(indexcursor, &root) > 0) && !in_index[roots[off]])
		{
			MemoryContextReset(econtext->ecxt_per_tuple_memory);
			if (predicate != nullptr && !ExecQual(predicate, econtext))
				continue;
			FormIndexDatum(index_info, slot, estate, values, isnull);
			index_insert(index_rel, values, isnull, &root, table_rel,
						 index_info->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO, false,
						 index_info);
			state->tups_inserted += 1;
		}
	}

	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	index_info->ii_ExpressionsState = NIL;
	index_info->ii_PredicateState = nullptr;
}

/* ========================================================================
 * TOAST and size estimates
 * ========================================================================
 */

bool
relation_needs_toast_table(Relation rel)
{
	TupleDesc desc = RelationGetDescr(rel);
	int32 data_length = 0;
	bool unknown = false, toastable = false;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (att->attisdropped)
			continue;
		data_length = att_align_nominal(data_length, att->attalign);
		if (att->attlen > 0)
			data_length += att->attlen;
		else
		{
			int32 maxlen = type_maximum_size(att->atttypid, att->atttypmod);
			if (maxlen < 0)
				unknown = true;
			else
				data_length += maxlen;
			if (att->attstorage != TYPSTORAGE_PLAIN)
				toastable = true;
		}
	}
	if (!toastable)
		return false;
	if (unknown)
		return true;
	int32 tuple_length =
		MAXALIGN(SizeofHeapTupleHeader + BITMAPLEN(desc->natts)) + MAXALIGN(data_length);
	return tuple_length > (int32) TOAST_TUPLE_THRESHOLD;
}

Oid
relation_toast_am(Relation rel)
{
	return HEAP_TABLE_AM_OID;
}

void
estimate_rel_size(Relation rel, int32 *attr_widths, BlockNumber *pages, double *tuples,
				  double *allvisfrac)
{
	/*
	 * Heap's estimate with heap's per-page figures: the block count it asks
	 * for (RelationGetNumberOfBlocks) and relpages are both data pages, so
	 * the planner sees the page and row counts heap would give for the same
	 * rows. rustydb's special space is 8 bytes, too little to matter for an
	 * estimate, and identical estimates keep the planner's choices heap's.
	 */
	table_block_relation_estimate_size(rel, attr_widths, pages, tuples, allvisfrac,
									   MAXALIGN(SizeofHeapTupleHeader) + sizeof(ItemIdData),
									   BLCKSZ - SizeOfPageHeaderData);
}

} /* namespace rustydb::am */
