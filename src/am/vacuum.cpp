/*-------------------------------------------------------------------------
 *
 * vacuum.cpp
 *	  rustydb VACUUM: freezing, the visibility map, truncation and index
 *	  tuple deletion.
 *
 * VACUUM prunes every page the visibility map does not let it skip
 * (all-visible runs; all-frozen ones when aggressive) (prune.cpp),
 * collects the dead line pointers, removes the index entries pointing at
 * them (each index's ambulkdelete), then marks them unused and records the
 * free space in the FSM. It also freezes old transaction ids and advances
 * relfrozenxid / relminmxid to the oldest ones left, sets pages
 * all-visible and all-frozen, gives empty pages at the end back, recycles
 * the undo no snapshot needs (undo_store.cpp), reports live and dead
 * tuple counts to the statistics system for autovacuum, and reports the
 * run (VERBOSE, log_autovacuum_min_duration). Its page changes are storage/changes.h's, each
 * made and logged by one function here (NEW_PAGE, FREEZE, VACUUM,
 * VISIBLE, CLEAR_VISIBLE records).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/groups.h"
#include "rustydb/am/undo_store.h"

#include "rustydb/mvcc/visibility.h"
#include "rustydb/storage/changes.h"
#include "rustydb/storage/page.h"
#include "rustydb/wal/records.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "commands/dbcommands.h"
#include "executor/instrument.h"
#include "postmaster/autovacuum.h"
#include "utils/pg_rusage.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::am {

using storage::page_check;
using storage::tuple_at;

/* ========================================================================
 * The visibility map
 * ========================================================================
 */

/*
 * Are all tuples on the (cleanup-locked) page visible to every snapshot,
 * now and later? *cutoff gets the newest creator, the standby conflict
 * horizon for setting the bit.
 */
static bool
page_all_visible(Relation rel, Buffer buf, TransactionId oldest_xmin, TransactionId *cutoff)
{
	Page page = BufferGetPage(buf);
	Assert(storage::buffer_is_locked_exclusive(buf));
	*cutoff = InvalidTransactionId;
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId lp = PageGetItemId(page, off);
		if (!ItemIdIsUsed(lp) || ItemIdIsRedirected(lp))
			continue;
		if (!ItemIdIsNormal(lp))
			return false;
		HeapTupleData tup;
		if (!tuple_at(rel, buf, page, off, &tup))
			return false;
		if (mvcc::satisfies_vacuum(&tup, oldest_xmin, buf) != HEAPTUPLE_LIVE)
			return false;
		if (!HeapTupleHeaderXminCommitted(tup.t_data))
			return false;
		TransactionId xmin = HeapTupleHeaderGetXmin(tup.t_data);
		if (TransactionIdIsNormal(xmin))
		{
			if (!TransactionIdPrecedes(xmin, oldest_xmin))
				return false;
			if (!TransactionIdIsValid(*cutoff) || TransactionIdFollows(xmin, *cutoff))
				*cutoff = xmin;
		}
	}
	return true;
}

/*
 * Is every tuple of the (all-visible, locked) page free of transaction ids
 * for good: no xmin that is not frozen, no xmax (a locker's or a
 * deleter's), no undo pointer (the previous versions it names carry ids)?
 * Such a page is marked all-frozen, and an aggressive VACUUM skips it.
 */
static bool
page_all_frozen(Page page)
{
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId lp = PageGetItemId(page, off);
		if (!ItemIdIsNormal(lp))
			continue;
		if (storage::tuple_frozen_problem((HeapTupleHeader) PageGetItem(page, lp)) != nullptr)
			return false;
	}
	return true;
}

/* Mark the page all-visible (and all-frozen) in the page header and the visibility map. */
static void
set_all_visible(Relation rel, Buffer buf, Buffer *vmbuf, TransactionId cutoff, bool all_frozen)
{
	Page page = BufferGetPage(buf);
	BlockNumber blkno = storage::data_block(buf);

	/* the data page before the map page (docs/storage.md, "Buffer lock order") */
	Assert(storage::buffer_is_locked_exclusive(buf));
	Assert(!PageIsNew(page));
	visibilitymap_pin(rel, blkno, vmbuf);
	LockBuffer(*vmbuf, BUFFER_LOCK_EXCLUSIVE);
	Page vmpage = BufferGetPage(*vmbuf);

	START_CRIT_SECTION();
	storage::page_set_all_visible(buf);
	MarkBufferDirty(buf);
	storage::vm_set(*vmbuf, blkno, all_frozen);
	MarkBufferDirty(*vmbuf);
	if (RelationNeedsWAL(rel))
	{
		wal::XlVisible xl;
		xl.version = wal::kWalFormatVersion;
		xl.flags = all_frozen ? wal::kFlagAllFrozen : 0;
		xl.unused = 0;
		xl.cutoff_xid = cutoff;
		XLogBeginInsert();
		XLogRegisterData((char *) &xl, sizeof(xl));
		XLogRegisterBuffer(0, *vmbuf, 0);
		XLogRegisterBuffer(1, buf, REGBUF_STANDARD | (XLogHintBitIsNeeded() ? 0 : REGBUF_NO_IMAGE));
		XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kVisible);
		PageSetLSN(vmpage, recptr);
		if (XLogHintBitIsNeeded())
			PageSetLSN(page, recptr);
	}
	END_CRIT_SECTION();
	LockBuffer(*vmbuf, BUFFER_LOCK_UNLOCK);
}

/* ========================================================================
 * Freezing
 * ========================================================================
 */

void
track_xid(TransactionId *min, TransactionId x)
{
	if (TransactionIdIsNormal(x) && (!TransactionIdIsValid(*min) || TransactionIdPrecedes(x, *min)))
		*min = x;
}

void
track_multi(MultiXactId *min, MultiXactId m)
{
	if (MultiXactIdIsValid(m) && (!MultiXactIdIsValid(*min) || MultiXactIdPrecedes(m, *min)))
		*min = m;
}

bool
prepare_freeze(HeapTupleHeader t, TransactionId cutoff_xid, MultiXactId cutoff_multi,
			   TransactionId oldest_xmin, TransactionId *min_xid, MultiXactId *min_multi,
			   uint16 *infomask, uint16 *infomask2, TransactionId *xmax)
{
	bool changed = false;
	*infomask = t->t_infomask;
	*infomask2 = t->t_infomask2;
	*xmax = HeapTupleHeaderGetRawXmax(t);

	/* The creator. */
	TransactionId xmin = HeapTupleHeaderGetRawXmin(t);
	if (!HeapTupleHeaderXminFrozen(t) && TransactionIdIsNormal(xmin))
	{
		if (TransactionIdPrecedes(xmin, cutoff_xid) &&
			(HeapTupleHeaderXminCommitted(t) ||
			 (!HeapTupleHeaderXminInvalid(t) && TransactionIdDidCommit(xmin))))
		{
			*infomask |= HEAP_XMIN_FROZEN;
			changed = true;
		}
		else
			track_xid(min_xid, xmin);
	}

	/* The deleter, updater or lockers. */
	bool clear = false;
	if (*infomask & HEAP_XMAX_INVALID)
	{
		/*
		 * Hinted irrelevant (aborted, or the lockers gone), yet the id is
		 * still in the header, and a crash can lose the hint (hint bits
		 * are not WAL-logged): as heap's freezing, the id is cleared once
		 * it is older than the cutoff, and until then holds relfrozenxid
		 * or relminmxid back. (It used to be neither cleared nor tracked:
		 * a lost hint could have sent a reader to a truncated commit log.)
		 */
		if (*infomask & HEAP_XMAX_IS_MULTI)
		{
			if (MultiXactIdIsValid(*xmax))
			{
				if (MultiXactIdIsValid(cutoff_multi) && MultiXactIdPrecedes(*xmax, cutoff_multi))
					clear = true;
				else
				{
					/* and its updater, whose commit status a reader asks without the hint */
					track_multi(min_multi, *xmax);
					if (!HEAP_XMAX_IS_LOCKED_ONLY(*infomask))
						track_xid(min_xid, mvcc::update_xid(t));
				}
			}
		}
		else if (TransactionIdIsNormal(*xmax))
		{
			if (TransactionIdIsNormal(cutoff_xid) && TransactionIdPrecedes(*xmax, cutoff_xid))
				clear = true;
			else
				track_xid(min_xid, *xmax);
		}
	}
	else if (*infomask & HEAP_XMAX_IS_MULTI)
	{
		if (HEAP_XMAX_IS_LOCKED_ONLY(*infomask))
			clear = !MultiXactIdIsRunning(*xmax, true);
		else
		{
			TransactionId upd = mvcc::update_xid(t);
			bool upd_alive = TransactionIdIsValid(upd) &&
							 (TransactionIdIsInProgress(upd) || TransactionIdDidCommit(upd));
			if (!upd_alive && !MultiXactIdIsRunning(*xmax, false))
				clear = true;
			else
				track_xid(min_xid, upd);
		}
		if (!clear)
		{
			track_multi(min_multi, *xmax);
			/* members of a kept multixact stay in pg_multixact; their xids are running */
		}
	}
	else if (HEAP_XMAX_IS_LOCKED_ONLY(*infomask))
	{
		clear = !TransactionIdIsCurrentTransactionId(*xmax) && !TransactionIdIsInProgress(*xmax);
		if (!clear)
			track_xid(min_xid, *xmax);
	}
	else
	{
		bool alive = TransactionIdIsCurrentTransactionId(*xmax) ||
					 TransactionIdIsInProgress(*xmax) || TransactionIdDidCommit(*xmax);
		clear = !alive;
		if (!clear)
			track_xid(min_xid, *xmax);
	}
	if (clear)
	{
		*infomask &= ~HEAP_XMAX_BITS;
		*infomask |= HEAP_XMAX_INVALID;
		*infomask2 &= ~HEAP_KEYS_UPDATED;
		*xmax = InvalidTransactionId;
		changed = true;
	}
	return changed;
}

/* ========================================================================
 * VACUUM: the state of one run
 * ========================================================================
 */

static BlockNumber truncate_tail(Relation rel, BlockNumber nblocks, BlockNumber nonempty,
								 BufferAccessStrategy strategy);

/* The shortest run of all-visible pages a VACUUM skips (heap's SKIP_PAGES_THRESHOLD). */
constexpr BlockNumber kSkipPagesThreshold = 32;

struct VacState
{
	Relation rel;
	VacuumParams *params;
	BufferAccessStrategy strategy;
	Relation *indrels;
	int nindexes;
	bool do_index; /* index entries of dead items are removed (INDEX_CLEANUP) */
	IndexBulkDeleteResult **istats;
	VacDeadItems *dead;
	double old_reltuples;
	int64 index_passes;

	/* cutoffs */
	bool aggressive;         /* every page cleanup-locked, waiting if need be */
	bool skip_with_vm;       /* pages the map marks may be skipped (not DISABLE_PAGE_SKIPPING) */
	GlobalVisState *vistest; /* pruning's horizon: the current one, at least oldest_xmin */
	TransactionId oldest_xmin;
	MultiXactId oldest_mxact;
	TransactionId freeze_limit;
	MultiXactId multi_cutoff;

	Buffer vmbuf;
	const crypto::Cipher *cipher; /* loaded when a sealed group must be re-sealed */
	bool plain;                   /* not encrypted: pruning may remove undo pointers */
	bool pointers; /* the pointer reserve: the FSM gets free space less the rows' pointers */
	Relation undo; /* the table's undo store (or nullptr): compaction moves versions there */

	/* what the scan found */
	TransactionId new_frozen; /* the oldest xid left behind */
	MultiXactId new_minmulti; /* the oldest multixact left behind */
	bool scanned_all;         /* every page read and cleanup-locked: the horizons may advance */
	BlockNumber nonempty_pages;
	BlockNumber all_visible_pages;
	BlockNumber scanned_pages; /* read by the first pass (the others skipped: all-visible) */
	double live, recently_dead, removed, remaining_dead;

	/* the run's report (VERBOSE, log_autovacuum_min_duration) */
	bool report;
	TimestampTz start_time;
	PGRUsage ru0;
	BufferUsage buffers0;
	WalUsage wal0;
	BlockNumber orig_pages;
	TransactionId orig_frozenxid;
	MultiXactId orig_minmulti;
	bool has_undo;
	uint64 undo_recycled;
};

/* Cutoffs, indexes, the dead-item store and progress reporting of a run. */
static void
vacuum_begin(VacState *vs, Relation rel, VacuumParams *params, BufferAccessStrategy bstrategy)
{
	memset(vs, 0, sizeof(*vs));
	vs->rel = rel;
	vs->plain = !crypto::relation_encrypted(rel);
	vs->pointers = page_pointer_reserve(rel);
	vs->params = params;
	vs->strategy = bstrategy;
	vs->vmbuf = InvalidBuffer;
	vs->new_frozen = InvalidTransactionId;
	vs->new_minmulti = InvalidMultiXactId;
	vs->scanned_all = true;

	vs->aggressive = vacuum_set_xid_limits(rel, params->freeze_min_age, params->freeze_table_age,
										   params->multixact_freeze_min_age,
										   params->multixact_freeze_table_age, &vs->oldest_xmin,
										   &vs->oldest_mxact, &vs->freeze_limit, &vs->multi_cutoff);
	vs->skip_with_vm = (params->options & VACOPT_DISABLE_PAGE_SKIPPING) == 0;
	if (!vs->skip_with_vm)
		vs->aggressive = true;

	vs->report = (params->options & VACOPT_VERBOSE) != 0 ||
				 (IsAutoVacuumWorkerProcess() && params->log_min_duration >= 0);
	if (vs->report)
	{
		vs->orig_frozenxid = rel->rd_rel->relfrozenxid;
		vs->orig_minmulti = rel->rd_rel->relminmxid;
		vs->start_time = GetCurrentTimestamp();
		pg_rusage_init(&vs->ru0);
		vs->buffers0 = pgBufferUsage;
		vs->wal0 = pgWalUsage;
	}
	if (params->options & VACOPT_VERBOSE)
		ereport(INFO, (errmsg("vacuuming \"%s.%s.%s\"", get_database_name(MyDatabaseId),
							  get_namespace_name(RelationGetNamespace(rel)),
							  RelationGetRelationName(rel))));

	pgstat_progress_start_command(PROGRESS_COMMAND_VACUUM, RelationGetRelid(rel));
	/* like heap, prune with the current visibility horizon, at least OldestXmin */
	vs->vistest = GlobalVisTestFor(rel);

	vs->undo = undo_open(rel, RowExclusiveLock);
	vs->old_reltuples = rel->rd_rel->reltuples < 0 ? 0 : rel->rd_rel->reltuples;
	vac_open_indexes(rel, RowExclusiveLock, &vs->nindexes, &vs->indrels);
	vs->do_index = vs->nindexes > 0 && params->index_cleanup != VACOPTVALUE_DISABLED;
	if (params->nworkers > 0 && vs->nindexes > 1 && vs->do_index && RelationUsesLocalBuffers(rel))
		ereport(WARNING,
				(errmsg("disabling parallel option of vacuum on \"%s\" --- cannot vacuum temporary "
						"tables in parallel",
						RelationGetRelationName(rel))));
	vs->istats =
		(IndexBulkDeleteResult **) palloc0(sizeof(IndexBulkDeleteResult *) * Max(vs->nindexes, 1));
}

/* The dead-item store: as many TIDs as maintenance_work_mem holds, at most the table's. */
static void
alloc_dead_items(VacState *vs, BlockNumber nblocks)
{
	int work_mem_kb = (IsAutoVacuumWorkerProcess() && autovacuum_work_mem != -1)
						  ? autovacuum_work_mem
						  : maintenance_work_mem;
	int64 max_items = MAXDEADITEMS((int64) work_mem_kb * 1024L);
	max_items = Min(max_items, (int64) (MaxAllocSize / sizeof(ItemPointerData)) - 64);
	max_items = Min(max_items, (int64) Max(nblocks, 1) * MaxHeapTuplesPerPage);
	max_items = Max(max_items, (int64) MaxHeapTuplesPerPage);
	vs->dead = (VacDeadItems *) palloc(vac_max_items_to_alloc_size((int) max_items));
	vs->dead->max_items = (int) max_items;
	vs->dead->num_items = 0;

	pgstat_progress_update_param(PROGRESS_VACUUM_TOTAL_HEAP_BLKS, nblocks);
	pgstat_progress_update_param(PROGRESS_VACUUM_MAX_DEAD_TUPLES, max_items);
	pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_SCAN_HEAP);
}

/* ========================================================================
 * VACUUM's page changes and their records
 * ========================================================================
 */

/* A page an extension left all zeroes (a crash before its first insert) initialised. */
static void
init_new_page(Relation rel, Buffer buf)
{
	Page page = BufferGetPage(buf);

	Assert(storage::buffer_is_locked_exclusive(buf));
	Assert(PageIsNew(page));
	START_CRIT_SECTION();
	storage::page_init(page);
	MarkBufferDirty(buf);
	if (RelationNeedsWAL(rel))
	{
		XLogBeginInsert();
		XLogRegisterBuffer(0, buf, REGBUF_WILL_INIT | REGBUF_STANDARD);
		XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kNewPage);
		PageSetLSN(page, recptr);
	}
	END_CRIT_SECTION();
}

/* Freeze n tuples of the cleanup-locked page (entries from prepare_freeze). */
static void
freeze_page(Relation rel, Buffer buf, const storage::FreezeEntry *frz, int n, TransactionId cutoff)
{
	Assert(n > 0);
	START_CRIT_SECTION();
	storage::freeze_execute(buf, frz, n);
	MarkBufferDirty(buf);
	if (RelationNeedsWAL(rel))
	{
		wal::XlFreeze xl;
		xl.version = wal::kWalFormatVersion;
		xl.flags = 0;
		xl.ntuples = (uint16) n;
		xl.cutoff_xid = cutoff;
		XLogBeginInsert();
		XLogRegisterData((char *) &xl, sizeof(xl));
		XLogRegisterBuffer(0, buf, REGBUF_STANDARD);
		XLogRegisterBufData(0, (char *) frz, n * sizeof(wal::XlFreezeEntry));
		XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kFreeze);
		PageSetLSN(BufferGetPage(buf), recptr);
	}
	END_CRIT_SECTION();
}

/* Make n dead line pointers of the locked page unused: their index entries are gone. */
static void
make_unused(Relation rel, Buffer buf, OffsetNumber *offs, int n)
{
	storage::PruneChanges c;
	c.unused = offs;
	c.nunused = n;
	START_CRIT_SECTION();
	storage::vacuum_execute(buf, offs, n);
	MarkBufferDirty(buf);
	log_line_pointers(rel, buf, wal::kVacuum, c, InvalidTransactionId);
	END_CRIT_SECTION();
}

/* After vacuuming a page (cleanup or exclusive lock held): maybe all-visible. */
static void
maybe_set_all_visible(VacState *vs, Buffer buf)
{
	TransactionId cutoff;
	Page page = BufferGetPage(buf);

	Assert(storage::buffer_is_locked_exclusive(buf));
	if (PageIsNew(page))
		return;
	if (PageIsAllVisible(page))
	{
		/*
		 * The page says all-visible; the map may have lost its bit
		 * (pg_truncate_visibility_map, a lost fork): set it again, as heap
		 * does, and the all-frozen bit when this run froze what was left.
		 * No new standby conflict: the page was all-visible already (the
		 * freezing's own record carries its conflict).
		 */
		BlockNumber blkno = storage::data_block(buf);
		uint8 bits = visibilitymap_get_status(vs->rel, blkno, &vs->vmbuf);
		bool frozen = (bits & VISIBILITYMAP_ALL_FROZEN) != 0 || page_all_frozen(page);
		if ((bits & VISIBILITYMAP_ALL_VISIBLE) == 0 ||
			(frozen && (bits & VISIBILITYMAP_ALL_FROZEN) == 0))
			set_all_visible(vs->rel, buf, &vs->vmbuf, InvalidTransactionId, frozen);
		vs->all_visible_pages++;
		return;
	}
	if (page_all_visible(vs->rel, buf, vs->oldest_xmin, &cutoff))
	{
		set_all_visible(vs->rel, buf, &vs->vmbuf, cutoff, page_all_frozen(page));
		vs->all_visible_pages++;
	}
}

/* ========================================================================
 * VACUUM's second pass: index entries, then the dead line pointers
 * ========================================================================
 */

/* Mark line pointers unused on one page (pass 2). */
static void
vacuum_page(VacState *vs, BlockNumber blkno, OffsetNumber *offs, int n)
{
	Buffer buf = storage::read_data_block(vs->rel, blkno, vs->strategy);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	Page page = BufferGetPage(buf);
	page_check(vs->rel, blkno, page);

	make_unused(vs->rel, buf, offs, n);
	maybe_set_all_visible(vs, buf);

	Size freespace = storage::page_fsm_space(page, vs->pointers);
	UnlockReleaseBuffer(buf);
	RecordPageWithFreeSpace(vs->rel, storage::phys_block(blkno), freespace);
}

/* What index i's bulk delete or cleanup is told about the table. */
static IndexVacuumInfo
index_vacuum_info(VacState *vs, int i, bool estimated_count, double num_heap_tuples)
{
	IndexVacuumInfo ivinfo;
	memset(&ivinfo, 0, sizeof(ivinfo));
	ivinfo.index = vs->indrels[i];
	ivinfo.analyze_only = false;
	ivinfo.report_progress = false;
	ivinfo.estimated_count = estimated_count;
	ivinfo.message_level = DEBUG2;
	ivinfo.num_heap_tuples = num_heap_tuples;
	ivinfo.strategy = vs->strategy;
	return ivinfo;
}

/* Remove index entries for the collected dead items, then free the items. */
static void
vacuum_indexes_and_pages(VacState *vs)
{
	VacDeadItems *dead = vs->dead;
	if (dead->num_items == 0)
		return;

	pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_VACUUM_INDEX);
	for (int i = 0; i < vs->nindexes; i++)
	{
		/* the row count of the last VACUUM or ANALYZE: this one has not finished counting */
		IndexVacuumInfo ivinfo = index_vacuum_info(vs, i, true, vs->old_reltuples);
		vs->istats[i] = vac_bulkdel_one_index(&ivinfo, vs->istats[i], dead);
	}
	vs->index_passes++;
	pgstat_progress_update_param(PROGRESS_VACUUM_NUM_INDEX_VACUUMS, vs->index_passes);

	pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_VACUUM_HEAP);
	OffsetNumber offs[MaxHeapTuplesPerPage];
	int i = 0;
	while (i < dead->num_items)
	{
		BlockNumber blkno = ItemPointerGetBlockNumber(&dead->items[i]);
		int n = 0;
		while (i < dead->num_items && ItemPointerGetBlockNumber(&dead->items[i]) == blkno)
		{
			/* not items[i++]: with assertions the macro evaluates its argument three times */
			offs[n++] = ItemPointerGetOffsetNumber(&dead->items[i]);
			i++;
		}
		vacuum_delay_point();
		vacuum_page(vs, blkno, offs, n);
	}
	dead->num_items = 0;
	pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_SCAN_HEAP);
}

/* ========================================================================
 * VACUUM's first pass, one page at a time
 * ========================================================================
 */

/*
 * Lock a page for the first pass: a cleanup lock when one is free, or
 * waited for (aggressive VACUUM); else a share lock, under which the page
 * is only looked at. Returns whether the cleanup lock is held.
 */
static bool
lock_for_scan(VacState *vs, Buffer buf)
{
	if (ConditionalLockBufferForCleanup(buf))
		return true;
	if (vs->aggressive)
	{
		LockBufferForCleanup(buf);
		return true;
	}
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	return false;
}

/*
 * Prune the cleanup-locked page. Groups to re-seal need the key: it is
 * loaded (not under a buffer lock) and pruning retried under a lock taken
 * as the first one was; *cleanup is false when that is only a share lock.
 */
static void
prune_for_scan(VacState *vs, Buffer buf, BlockNumber blkno, bool *cleanup)
{
	int n = prune_page(vs->rel, buf, vs->vistest, vs->oldest_xmin, vs->cipher, vs->plain, vs->undo);
	if (n == kPruneNeedsKey)
	{
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		vs->cipher = crypto::relation_cipher(vs->rel);
		*cleanup = lock_for_scan(vs, buf);
		n = 0;
		if (*cleanup)
		{
			page_check(vs->rel, blkno, BufferGetPage(buf));
			n = prune_page(vs->rel, buf, vs->vistest, vs->oldest_xmin, vs->cipher, vs->plain,
						   vs->undo);
		}
	}
	/*
	 * Not compacted: previous versions of in-place updates stay on the page
	 * with the ids in their headers, which the horizons must not pass.
	 */
	if (n == kPruneDeferred)
		vs->scanned_all = false;
	vs->removed += Max(n, 0);
}

/*
 * Classify what pruning left on the page (the run's live and dead
 * counts), collect its dead line pointers into deadoffs and freeze what
 * can be frozen: with a cleanup lock only (without one, the oldest ids
 * left are still tracked). Returns the number of dead line pointers.
 */
static int
scan_tuples(VacState *vs, Buffer buf, bool cleanup, OffsetNumber *deadoffs)
{
	Page page = BufferGetPage(buf);
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	TransactionId freeze_limit = cleanup ? vs->freeze_limit : InvalidTransactionId;
	storage::FreezeEntry frz[MaxHeapTuplesPerPage];
	int nfrz = 0;
	int ndead = 0;

	Assert(cleanup ? storage::buffer_is_locked_exclusive(buf) : storage::buffer_is_locked(buf));
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId lp = PageGetItemId(page, off);
		if (ItemIdIsDead(lp))
		{
			deadoffs[ndead++] = off;
			continue;
		}
		HeapTupleData tup;
		if (!tuple_at(vs->rel, buf, page, off, &tup))
			continue;
		switch (mvcc::satisfies_vacuum(&tup, vs->oldest_xmin, buf))
		{
			case HEAPTUPLE_LIVE:
			case HEAPTUPLE_DELETE_IN_PROGRESS:
				vs->live += 1;
				break;
			case HEAPTUPLE_RECENTLY_DEAD:
			case HEAPTUPLE_DEAD: /* not prunable without a cleanup lock */
				vs->recently_dead += 1;
				break;
			default:
				break;
		}
		uint16 im, im2;
		TransactionId xmax;
		if (prepare_freeze(tup.t_data, freeze_limit, vs->multi_cutoff, vs->oldest_xmin,
						   &vs->new_frozen, &vs->new_minmulti, &im, &im2, &xmax) &&
			cleanup)
			frz[nfrz++] = storage::FreezeEntry{xmax, im, im2, off, 0};
	}
	if (nfrz > 0)
		freeze_page(vs->rel, buf, frz, nfrz, vs->freeze_limit);
	return ndead;
}

/*
 * The page's dead line pointers: made unused at once when no index points
 * at them (cleanup lock held), else remembered for the index pass, whose
 * second pass records the page's free space. Returns whether it does.
 */
static bool
dispose_dead_items(VacState *vs, Buffer buf, BlockNumber blkno, bool cleanup,
				   OffsetNumber *deadoffs, int ndead)
{
	if (ndead == 0)
		return false;
	if (cleanup && vs->nindexes == 0)
	{
		make_unused(vs->rel, buf, deadoffs, ndead);
		return false;
	}
	if (!vs->do_index)
	{
		vs->remaining_dead += ndead;
		return false;
	}
	for (int i = 0; i < ndead; i++)
	{
		/* ItemPointerSet evaluates its pointer argument more than once */
		ItemPointer item = &vs->dead->items[vs->dead->num_items];
		ItemPointerSet(item, blkno, deadoffs[i]);
		vs->dead->num_items++;
	}
	Assert(vs->dead->num_items <= vs->dead->max_items);
	return true;
}

/* Does the page keep anything a truncation must not remove? */
static bool
page_keeps_items(VacState *vs, Page page)
{
	for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
	{
		ItemId lp = PageGetItemId(page, off);
		if (ItemIdIsNormal(lp) || (ItemIdIsDead(lp) && !vs->do_index && vs->nindexes > 0))
			return true;
	}
	return false;
}

/* The first pass on data block blkno: prune, freeze, collect dead items, visibility. */
static void
scan_page(VacState *vs, BlockNumber blkno)
{
	Relation rel = vs->rel;
	Buffer buf = storage::read_data_block(rel, blkno, vs->strategy);
	bool cleanup = lock_for_scan(vs, buf);
	Page page = BufferGetPage(buf);

	vs->scanned_pages++;
	if (PageIsNew(page))
	{
		if (!cleanup)
		{
			UnlockReleaseBuffer(buf);
			return;
		}
		/* left behind by an extension that crashed before its first insert */
		init_new_page(rel, buf);
		Size freespace = PageGetHeapFreeSpace(page);
		UnlockReleaseBuffer(buf);
		RecordPageWithFreeSpace(rel, storage::phys_block(blkno), freespace);
		return;
	}
	page_check(rel, blkno, page);

	if (cleanup)
		prune_for_scan(vs, buf, blkno, &cleanup);
	OffsetNumber deadoffs[MaxHeapTuplesPerPage];
	int ndead = scan_tuples(vs, buf, cleanup, deadoffs);
	/* without a cleanup lock nothing was frozen: horizons stay put */
	if (!cleanup)
		vs->scanned_all = false;
	bool defer_fsm = dispose_dead_items(vs, buf, blkno, cleanup, deadoffs, ndead);
	if (page_keeps_items(vs, page))
		vs->nonempty_pages = blkno + 1;
	if (cleanup && !defer_fsm && (ndead == 0 || vs->nindexes == 0))
		maybe_set_all_visible(vs, buf);
	else if (!cleanup && PageIsAllVisible(page))
		vs->all_visible_pages++;

	Size freespace = storage::page_fsm_space(page, vs->pointers);
	UnlockReleaseBuffer(buf);
	if (!defer_fsm)
		RecordPageWithFreeSpace(rel, storage::phys_block(blkno), freespace);
}

/* ========================================================================
 * The end of a run: index cleanup, horizons and statistics
 * ========================================================================
 */

static void
cleanup_indexes(VacState *vs)
{
	if (vs->params->index_cleanup == VACOPTVALUE_DISABLED)
		return;
	pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_INDEX_CLEANUP);
	for (int i = 0; i < vs->nindexes; i++)
	{
		/* the table's row count: estimated when pages were skipped */
		IndexVacuumInfo ivinfo =
			index_vacuum_info(vs, i, vs->scanned_pages < vs->orig_pages, vs->live);
		vs->istats[i] = vac_cleanup_one_index(&ivinfo, vs->istats[i]);
		if (vs->istats[i] != nullptr && !vs->istats[i]->estimated_count)
			vac_update_relstats(vs->indrels[i], vs->istats[i]->num_pages,
								vs->istats[i]->num_index_tuples, 0, false, InvalidTransactionId,
								InvalidMultiXactId, nullptr, nullptr, false);
	}
}

/*
 * The run's report: at INFO for VACUUM (VERBOSE), at LOG for an autovacuum
 * run that took at least log_autovacuum_min_duration, in the form heap's
 * report has (log analysers read it), with the undo store's part.
 */
static void
report_run(VacState *vs, BlockNumber nblocks, bool frozenxid_updated, TransactionId frozenxid,
		   bool minmulti_updated, MultiXactId minmulti)
{
	Relation rel = vs->rel;
	bool verbose = (vs->params->options & VACOPT_VERBOSE) != 0;
	TimestampTz end_time = GetCurrentTimestamp();
	if (!verbose &&
		!TimestampDifferenceExceeds(vs->start_time, end_time, vs->params->log_min_duration))
		return;

	BufferUsage buffers;
	memset(&buffers, 0, sizeof(buffers));
	BufferUsageAccumDiff(&buffers, &pgBufferUsage, &vs->buffers0);
	WalUsage wal;
	memset(&wal, 0, sizeof(wal));
	WalUsageAccumDiff(&wal, &pgWalUsage, &vs->wal0);
	int64 hits = buffers.shared_blks_hit + buffers.local_blks_hit;
	int64 misses = buffers.shared_blks_read + buffers.local_blks_read;
	int64 dirtied = buffers.shared_blks_dirtied + buffers.local_blks_dirtied;
	long secs;
	int usecs;
	TimestampDifference(vs->start_time, end_time, &secs, &usecs);
	double elapsed = secs + usecs / 1000000.0;
	double read_rate = 0, write_rate = 0;
	if (elapsed > 0)
	{
		read_rate = (double) BLCKSZ * misses / (1024 * 1024) / elapsed;
		write_rate = (double) BLCKSZ * dirtied / (1024 * 1024) / elapsed;
	}

	StringInfoData buf;
	initStringInfo(&buf);
	const char *what = verbose                     ? "finished vacuuming"
					   : !vs->aggressive           ? "automatic vacuum of table"
					   : vs->params->is_wraparound ? "automatic aggressive vacuum to prevent "
													 "wraparound of table"
												   : "automatic aggressive vacuum of table";
	appendStringInfo(&buf, "%s \"%s.%s.%s\": index scans: %lld\n", what,
					 get_database_name(MyDatabaseId), get_namespace_name(RelationGetNamespace(rel)),
					 RelationGetRelationName(rel), (long long) vs->index_passes);
	appendStringInfo(&buf, "pages: %u removed, %u remain, %u scanned (%.2f%% of total)\n",
					 vs->orig_pages > nblocks ? vs->orig_pages - nblocks : 0, nblocks,
					 vs->scanned_pages,
					 vs->orig_pages == 0 ? 100.0 : 100.0 * vs->scanned_pages / vs->orig_pages);
	appendStringInfo(&buf,
					 "tuples: %.0f removed, %.0f remain, %.0f are dead but not yet removable\n",
					 vs->removed, vs->live, vs->recently_dead);
	appendStringInfo(&buf, "removable cutoff: %u, which was %d XIDs old when operation ended\n",
					 vs->oldest_xmin, (int32) (ReadNextTransactionId() - vs->oldest_xmin));
	if (frozenxid_updated)
		appendStringInfo(&buf, "new relfrozenxid: %u, which is %d XIDs ahead of previous value\n",
						 frozenxid, (int32) (frozenxid - vs->orig_frozenxid));
	if (minmulti_updated)
		appendStringInfo(&buf, "new relminmxid: %u, which is %d MXIDs ahead of previous value\n",
						 minmulti, (int32) (minmulti - vs->orig_minmulti));
	for (int i = 0; i < vs->nindexes; i++)
	{
		IndexBulkDeleteResult *st = vs->istats[i];
		if (st == nullptr)
			continue;
		appendStringInfo(&buf,
						 "index \"%s\": pages: %u in total, %u newly deleted, %u currently "
						 "deleted, %u reusable\n",
						 RelationGetRelationName(vs->indrels[i]), st->num_pages,
						 st->pages_newly_deleted, st->pages_deleted, st->pages_free);
	}
	if (vs->has_undo)
		appendStringInfo(&buf, "undo: %llu pages recycled\n",
						 (unsigned long long) vs->undo_recycled);
	appendStringInfo(&buf, "avg read rate: %.3f MB/s, avg write rate: %.3f MB/s\n", read_rate,
					 write_rate);
	appendStringInfo(&buf, "buffer usage: %lld hits, %lld misses, %lld dirtied\n", (long long) hits,
					 (long long) misses, (long long) dirtied);
	appendStringInfo(&buf, "WAL usage: %lld records, %lld full page images, %llu bytes\n",
					 (long long) wal.wal_records, (long long) wal.wal_fpi,
					 (unsigned long long) wal.wal_bytes);
	appendStringInfo(&buf, "system usage: %s", pg_rusage_show(&vs->ru0));
	ereport(verbose ? INFO : LOG, (errmsg_internal("%s", buf.data)));
	pfree(buf.data);
}

/*
 * New horizons (the oldest ids left in the table, never past the cutoffs;
 * none unless every page was cleanup-locked), pg_class and the statistics
 * system's counts, the VERBOSE report.
 */
static void
vacuum_end(VacState *vs, BlockNumber nblocks)
{
	Relation rel = vs->rel;
	TransactionId frozenxid = vs->oldest_xmin;
	if (TransactionIdIsValid(vs->new_frozen) && TransactionIdPrecedes(vs->new_frozen, frozenxid))
		frozenxid = vs->new_frozen;
	MultiXactId minmulti = vs->oldest_mxact;
	if (MultiXactIdIsValid(vs->new_minmulti) && MultiXactIdPrecedes(vs->new_minmulti, minmulti))
		minmulti = vs->new_minmulti;
	if (!vs->scanned_all)
	{
		frozenxid = InvalidTransactionId;
		minmulti = InvalidMultiXactId;
	}
	bool frozenxid_updated, minmulti_updated;
	/* relpages counts data pages, as ANALYZE and CREATE INDEX do (rdb_relation_size) */
	vac_update_relstats(rel, nblocks, vs->live, Min(vs->all_visible_pages, nblocks),
						vs->nindexes > 0, frozenxid, minmulti, &frozenxid_updated,
						&minmulti_updated, false);
	pgstat_report_vacuum(RelationGetRelid(rel), rel->rd_rel->relisshared, vs->live,
						 vs->recently_dead + vs->remaining_dead);

	if (vs->report)
		report_run(vs, nblocks, frozenxid_updated, frozenxid, minmulti_updated, minmulti);

	pgstat_progress_end_command();
	vac_close_indexes(vs->nindexes, vs->indrels, NoLock);
}

/*
 * The pages the first pass leaves out (heap's rule): a run of at least
 * kSkipPagesThreshold pages that the visibility map marks all-visible (a
 * VACUUM that is not aggressive) or all-frozen (an aggressive one:
 * vacuum_freeze_table_age, anti-wraparound, FREEZE); a shorter run is
 * read anyway, so that the kernel's read-ahead keeps working. The last
 * page is always read (truncation starts from what the scan saw there),
 * and DISABLE_PAGE_SKIPPING reads every page. Returns the first block at
 * or after start that must be read; *skip says whether the pages from
 * start up to it are skipped, *unfrozen whether one of them may hold
 * transaction ids: nothing on a skipped page is frozen, so relfrozenxid
 * and relminmxid then stay where they are.
 */
static BlockNumber
next_page_to_read(VacState *vs, BlockNumber start, BlockNumber nblocks, bool *skip, bool *unfrozen)
{
	BlockNumber b = start;
	*unfrozen = false;
	while (vs->skip_with_vm && b + 1 < nblocks)
	{
		uint8 bits = visibilitymap_get_status(vs->rel, b, &vs->vmbuf);
		if ((bits & VISIBILITYMAP_ALL_VISIBLE) == 0)
			break;
		if ((bits & VISIBILITYMAP_ALL_FROZEN) == 0)
		{
			if (vs->aggressive)
				break;
			*unfrozen = true;
		}
		vacuum_delay_point(); /* a long run of the map: interrupts are served */
		b++;
	}
	*skip = b - start >= kSkipPagesThreshold;
	return b;
}

void
relation_vacuum(Relation rel, VacuumParams *params, BufferAccessStrategy bstrategy)
{
	VacState vs;

	vacuum_begin(&vs, rel, params, bstrategy);
	check_metapage(rel);
	BlockNumber nblocks = storage::data_nblocks(rel);
	vs.orig_pages = nblocks;
	alloc_dead_items(&vs, nblocks);

	bool skip_run, skip_unfrozen;
	BlockNumber next_read = next_page_to_read(&vs, 0, nblocks, &skip_run, &skip_unfrozen);
	for (BlockNumber blkno = 0; blkno < nblocks; blkno++)
	{
		if (blkno == next_read)
			next_read = next_page_to_read(&vs, blkno + 1, nblocks, &skip_run, &skip_unfrozen);
		else if (skip_run)
		{
			/* all-visible: nothing to prune, remove or set; frozen or left for later */
			vs.all_visible_pages++;
			if (skip_unfrozen)
				vs.scanned_all = false;
			continue;
		}
		vacuum_delay_point();
		pgstat_progress_update_param(PROGRESS_VACUUM_HEAP_BLKS_SCANNED, blkno);
		if (vs.dead->num_items + MaxHeapTuplesPerPage > vs.dead->max_items)
			vacuum_indexes_and_pages(&vs);
		scan_page(&vs, blkno);
	}
	pgstat_progress_update_param(PROGRESS_VACUUM_HEAP_BLKS_SCANNED, nblocks);
	/* the live rows of the pages not read: estimated from the last count, as heap does */
	if (vs.scanned_pages < nblocks)
		vs.live = vac_estimate_reltuples(rel, nblocks, vs.scanned_pages, vs.live);
	vacuum_indexes_and_pages(&vs);
	cleanup_indexes(&vs);
	vs.has_undo = vs.undo != nullptr;
	if (vs.undo != nullptr)
		table_close(vs.undo, RowExclusiveLock);
	vs.undo = nullptr;
	/* the undo no snapshot needs (undo_store.cpp), an empty store's file truncated */
	vs.undo_recycled = undo_vacuum(rel, params->truncate == VACOPTVALUE_ENABLED);
	/* what undo still holds counts as left behind in the table */
	undo_oldest_ids(rel, &vs.new_frozen, &vs.new_minmulti);

	FreeSpaceMapVacuum(rel);
	/* no pins may be held while truncating: the buffers are dropped */
	if (BufferIsValid(vs.vmbuf))
		ReleaseBuffer(vs.vmbuf);
	vs.vmbuf = InvalidBuffer;
	if (params->truncate == VACOPTVALUE_ENABLED)
	{
		pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_TRUNCATE);
		nblocks = truncate_tail(rel, nblocks, vs.nonempty_pages, bstrategy);
	}
	vacuum_end(&vs, nblocks);
}

/* ========================================================================
 * Truncating empty pages at the end
 * ========================================================================
 */

static bool
page_is_empty(Relation rel, BlockNumber blkno, BufferAccessStrategy strategy)
{
	Buffer buf = storage::read_data_block(rel, blkno, strategy);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(buf);
	bool empty = true;
	if (!PageIsNew(page))
	{
		page_check(rel, blkno, page);
		OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff && empty; off++)
			if (ItemIdIsUsed(PageGetItemId(page, off)))
				empty = false;
	}
	UnlockReleaseBuffer(buf);
	return empty;
}

/*
 * Before the file is truncated to keep data pages (keep > 0): clear data
 * block keep's all-visible bit, WAL-logged. RelationTruncate shortens the
 * visibility map by physical block count, keep + 1, so it would leave the
 * bit of data block keep set for the page that a later extension creates
 * there; redo of PostgreSQL's truncation record does the same on a standby.
 */
static void
clear_visible_before_truncate(Relation rel, BlockNumber keep)
{
	Buffer vmbuf = InvalidBuffer;
	bool vm_set = (visibilitymap_get_status(rel, keep, &vmbuf) & VISIBILITYMAP_VALID_BITS) != 0;
	Buffer buf = storage::read_data_block(rel, keep);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	Page page = BufferGetPage(buf);
	if (vm_set || (!PageIsNew(page) && PageIsAllVisible(page)))
	{
		visibilitymap_pin(rel, keep, &vmbuf);
		START_CRIT_SECTION();
		storage::page_clear_all_visible(buf);
		visibilitymap_clear(rel, keep, vmbuf, VISIBILITYMAP_VALID_BITS);
		MarkBufferDirty(buf);
		if (RelationNeedsWAL(rel))
		{
			wal::XlClearVisible xl{wal::kWalFormatVersion, wal::kFlagVmCleared};
			XLogBeginInsert();
			XLogRegisterData((char *) &xl, sizeof(xl));
			XLogRegisterBuffer(0, buf, REGBUF_STANDARD);
			XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kClearVisible);
			PageSetLSN(page, recptr);
		}
		END_CRIT_SECTION();
	}
	UnlockReleaseBuffer(buf);
	if (BufferIsValid(vmbuf))
		ReleaseBuffer(vmbuf);
}

/*
 * Give empty pages at the end of the relation back to the file system,
 * when there are enough of them and an exclusive lock is free (like heap:
 * at least 1000 pages or 1/16 of the table). Returns the new size.
 */
static BlockNumber
truncate_tail(Relation rel, BlockNumber nblocks, BlockNumber nonempty,
			  BufferAccessStrategy strategy)
{
	BlockNumber freeable = nblocks - nonempty;
	if (freeable == 0 || (freeable < 1000 && freeable < nblocks / 16) ||
		old_snapshot_threshold >= 0)
		return nblocks;

	bool locked = false;
	for (int i = 0; i < 100 && !locked; i++)
	{
		if (ConditionalLockRelation(rel, AccessExclusiveLock))
			locked = true;
		else
		{
			CHECK_FOR_INTERRUPTS();
			pg_usleep(50000L);
		}
	}
	if (!locked)
		return nblocks;
	Assert(CheckRelationLockedByMe(rel, AccessExclusiveLock, false));

	/* Re-check under the lock: new rows may have arrived meanwhile. */
	BlockNumber now = storage::data_nblocks(rel);
	BlockNumber keep = now;
	while (keep > nonempty && page_is_empty(rel, keep - 1, strategy))
		keep--;
	if (keep < now)
	{
		if (keep > 0)
			clear_visible_before_truncate(rel, keep);
		/* no data page left: the metapage goes too, as an empty heap is 0 bytes */
		RelationTruncate(rel, storage::phys_nblocks_for(keep));
	}
	UnlockRelation(rel, AccessExclusiveLock);
	return keep < now ? keep : now;
}

/* ========================================================================
 * Index tuple deletion (btree simple and bottom-up deletion)
 * ========================================================================
 */

TransactionId
index_delete_tuples(Relation rel, TM_IndexDeleteOp *delstate)
{
	TransactionId latest = InvalidTransactionId;
	GlobalVisState *vistest = GlobalVisTestFor(rel);
	Buffer buf = InvalidBuffer;
	BlockNumber cur = InvalidBlockNumber;
	int ndeletable = 0; /* entries up to the last deletable one */

	Assert(delstate->ndeltids > 0);
	for (int i = 0; i < delstate->ndeltids; i++)
	{
		TM_IndexDelete *d = &delstate->deltids[i];
		TM_IndexStatus *st = &delstate->status[d->id];
		/* bottom-up deletion only asks; simple deletion may know some (LP_DEAD entries) */
		Assert(!delstate->bottomup || !st->knowndeletable);
		BlockNumber blkno = ItemPointerGetBlockNumber(&d->tid);
		OffsetNumber off = ItemPointerGetOffsetNumber(&d->tid);

		if (blkno != cur)
		{
			if (BufferIsValid(buf))
				UnlockReleaseBuffer(buf);
			buf = storage::read_data_block(rel, blkno);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page_check(rel, blkno, BufferGetPage(buf));
			cur = blkno;
		}
		Page page = BufferGetPage(buf);
		if (PageIsNew(page) || off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page))
			ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
							errmsg_internal("index entry points past the end of rustydb page "
											"(%u,%u) of \"%s\"",
											blkno, (unsigned) off, RelationGetRelationName(rel))));
		/* deletable when every version of the chain is dead to everyone */
		ItemPointerData tid = d->tid;
		HeapTupleData tup;
		bool all_dead = false;
		SnapshotData nonvacuumable;
		InitNonVacuumableSnapshot(nonvacuumable, vistest);
		if (!hot_search(rel, buf, &tid, &nonvacuumable, &tup, &all_dead, true, &latest) && all_dead)
			st->knowndeletable = true;
		if (st->knowndeletable)
			ndeletable = i + 1;
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
	/*
	 * The entries after the last deletable one are dropped: the index AM
	 * relies on an empty array when nothing is deletable (btree asserts
	 * it, and would otherwise log a deletion of nothing). A simple
	 * deletion's known-deletable entries always stay.
	 */
	Assert(ndeletable > 0 || delstate->bottomup);
	delstate->ndeltids = ndeletable;
	return latest;
}

} /* namespace rustydb::am */
