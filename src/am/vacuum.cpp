/*-------------------------------------------------------------------------
 *
 * vacuum.cpp
 *	  rustydb space reclamation: on-access pruning, VACUUM, freezing and
 *	  index tuple deletion.
 *
 * A tuple version is dead once its deleter committed before every running
 * snapshot began (or its creator aborted). Pruning, on any page access
 * that finds the page nearly full and prunable, turns dead tuples into
 * dead line pointers and compacts the page. VACUUM prunes every page,
 * collects the dead line pointers, removes the index entries pointing at
 * them (each index's ambulkdelete), then marks them unused and records the
 * free space in the FSM. It also freezes old transaction ids and advances
 * relfrozenxid / relminmxid to the oldest ones left, and reports live and
 * dead tuple counts to the statistics system for autovacuum.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/groups.h"

#include "rustydb/mvcc/visibility.h"
#include "rustydb/storage/page.h"
#include "rustydb/wal/records.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "postmaster/autovacuum.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::am {

using storage::page_check;
using storage::tuple_at;

/* ========================================================================
 * Pruning
 * ========================================================================
 */

static void
log_line_pointers(Relation rel, Buffer buffer, uint8 kind, OffsetNumber *redirected,
				  int nredirected, OffsetNumber *dead, int ndead, OffsetNumber *unused, int nunused,
				  TransactionId latest_removed, const char *changes = nullptr, Size changes_len = 0)
{
	if (!RelationNeedsWAL(rel))
		return;
	wal::XlPrune xl;
	xl.version = wal::kWalFormatVersion;
	xl.flags = changes_len > 0 ? wal::kFlagGroupChanges : 0;
	xl.nredirected = (uint16) nredirected;
	xl.ndead = (uint16) ndead;
	xl.nunused = (uint16) nunused;
	xl.latest_removed_xid = latest_removed;
	XLogBeginInsert();
	XLogRegisterData((char *) &xl, sizeof(xl));
	XLogRegisterBuffer(0, buffer, REGBUF_STANDARD);
	if (nredirected > 0)
		XLogRegisterBufData(0, (char *) redirected, 2 * nredirected * sizeof(OffsetNumber));
	if (ndead > 0)
		XLogRegisterBufData(0, (char *) dead, ndead * sizeof(OffsetNumber));
	if (nunused > 0)
		XLogRegisterBufData(0, (char *) unused, nunused * sizeof(OffsetNumber));
	if (changes_len > 0)
		XLogRegisterBufData(0, (char *) changes, changes_len);
	XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, kind);
	PageSetLSN(BufferGetPage(buffer), recptr);
}

/* What pruning will do to one page. */
struct PruneState
{
	Relation rel;
	Buffer buffer;
	GlobalVisState *vistest;
	TransactionId oldest_xmin;
	TransactionId latest_removed;
	TransactionId new_prune_xid;
	int nredirected, ndead, nunused;
	OffsetNumber redirected[MaxHeapTuplesPerPage * 2];
	OffsetNumber dead[MaxHeapTuplesPerPage];
	OffsetNumber unused[MaxHeapTuplesPerPage];
	bool marked[MaxHeapTuplesPerPage + 1];
	int8 htsv[MaxHeapTuplesPerPage + 1]; /* -1: not a tuple */
};

static void
note_prunable(PruneState *ps, TransactionId x)
{
	if (TransactionIdIsNormal(x) &&
		(!TransactionIdIsValid(ps->new_prune_xid) || TransactionIdPrecedes(x, ps->new_prune_xid)))
		ps->new_prune_xid = x;
}

/*
 * Walk the version chain starting at root (a normal tuple that is not
 * heap-only, or a redirect). Versions dead to everyone at the head of the
 * chain are removed: heap-only ones become unused, and the root becomes a
 * redirect to the first survivor, or a dead line pointer (for VACUUM to
 * remove with the index entries) when none survives.
 */
static void
prune_chain(PruneState *ps, Page page, OffsetNumber root)
{
	OffsetNumber chain[MaxHeapTuplesPerPage];
	int nchain = 0;
	int latestdead = -1;
	TransactionId prior_xmax = InvalidTransactionId;
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	OffsetNumber off = root;

	for (;;)
	{
		if (off < FirstOffsetNumber || off > maxoff || ps->marked[off])
			break;
		ItemId lp = PageGetItemId(page, off);
		if (!ItemIdIsUsed(lp))
			break;
		if (ItemIdIsRedirected(lp))
		{
			if (nchain > 0)
				break; /* a redirect is only ever a root */
			chain[nchain++] = off;
			off = ItemIdGetRedirect(lp);
			continue;
		}
		if (ItemIdIsDead(lp))
			break;
		HeapTupleHeader t = (HeapTupleHeader) PageGetItem(page, lp);
		if (nchain > 0 && !HeapTupleHeaderIsHeapOnly(t))
			break;
		if (TransactionIdIsValid(prior_xmax) &&
			!TransactionIdEquals(HeapTupleHeaderGetXmin(t), prior_xmax))
			break;
		chain[nchain++] = off;

		bool dead = false, recent = false;
		switch ((HTSV_Result) ps->htsv[off])
		{
			case HEAPTUPLE_DEAD:
				dead = true;
				break;
			case HEAPTUPLE_RECENTLY_DEAD:
				recent = true;
				note_prunable(ps, mvcc::update_xid(t));
				break;
			case HEAPTUPLE_DELETE_IN_PROGRESS:
				note_prunable(ps, mvcc::update_xid(t));
				break;
			case HEAPTUPLE_INSERT_IN_PROGRESS:
				note_prunable(ps, HeapTupleHeaderGetXmin(t));
				break;
			default:
				break;
		}
		if (dead)
		{
			latestdead = nchain - 1;
			mvcc::advance_latest_removed_xid(t, &ps->latest_removed);
		}
		else if (!recent)
			break;
		if (!HeapTupleHeaderIsHotUpdated(t))
			break;
		if (ItemPointerGetBlockNumber(&t->t_ctid) != storage::data_block(ps->buffer))
			break;
		prior_xmax = mvcc::update_xid(t);
		off = ItemPointerGetOffsetNumber(&t->t_ctid);
	}

	for (int i = 0; i < nchain; i++)
		ps->marked[chain[i]] = true;
	if (latestdead < 0)
		return;

	/* the dead versions after the root become unused */
	for (int i = 1; i <= latestdead; i++)
		ps->unused[ps->nunused++] = chain[i];
	if (latestdead == nchain - 1)
	{
		/* nothing survives: the root stays for VACUUM as a dead line pointer */
		ps->dead[ps->ndead++] = root;
	}
	else
	{
		ps->redirected[2 * ps->nredirected] = root;
		ps->redirected[2 * ps->nredirected + 1] = chain[latestdead + 1];
		ps->nredirected++;
	}
}

/*
 * Prune one page (cleanup lock held). Returns the number of tuple versions
 * removed, or -1, changing nothing, when sealed groups of the page lose
 * some of their members and must be re-sealed but cipher is null.
 */
static int
prune_page(Relation rel, Buffer buffer, GlobalVisState *vistest, TransactionId oldest_xmin,
		   const crypto::Cipher *cipher)
{
	Page page = BufferGetPage(buffer);

	page_check(rel, storage::data_block(buffer), page);
	if (PageIsNew(page))
		return 0;
	auto *ps = (PruneState *) palloc(sizeof(PruneState));
	ps->rel = rel;
	ps->buffer = buffer;
	ps->vistest = vistest;
	ps->oldest_xmin = oldest_xmin;
	ps->latest_removed = InvalidTransactionId;
	ps->new_prune_xid = InvalidTransactionId;
	ps->nredirected = ps->ndead = ps->nunused = 0;
	memset(ps->marked, 0, sizeof(ps->marked));

	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		HeapTupleData tup;
		ps->htsv[off] = -1;
		if (!tuple_at(rel, buffer, page, off, &tup))
			continue;
		ps->htsv[off] =
			(int8) (vistest != nullptr ? mvcc::satisfies_vacuum_vis(&tup, vistest, buffer)
									   : mvcc::satisfies_vacuum(&tup, oldest_xmin, buffer));
	}

	/* chains from their roots */
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId lp = PageGetItemId(page, off);
		if (ps->marked[off] || !ItemIdIsUsed(lp) || ItemIdIsDead(lp))
			continue;
		if (ItemIdIsNormal(lp) &&
			HeapTupleHeaderIsHeapOnly((HeapTupleHeader) PageGetItem(page, lp)))
			continue;
		prune_chain(ps, page, off);
	}
	/* heap-only versions no chain reaches (an aborted update's) */
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		if (ps->marked[off] || ps->htsv[off] != HEAPTUPLE_DEAD)
			continue;
		ItemId lp = PageGetItemId(page, off);
		auto *t = (HeapTupleHeader) PageGetItem(page, lp);
		if (HeapTupleHeaderIsHeapOnly(t))
		{
			ps->unused[ps->nunused++] = off;
			mvcc::advance_latest_removed_xid(t, &ps->latest_removed);
			ps->marked[off] = true;
		}
	}

	int removed = ps->ndead + ps->nunused;
	char *changes = nullptr;
	Size changes_len = 0;
	if (ps->nredirected + ps->ndead + ps->nunused > 0 && storage::page_groups(page) != nullptr)
	{
		/* sealed groups losing members: freed, or their survivors re-sealed */
		bool loses[MaxHeapTuplesPerPage + 1] = {false};
		for (int i = 0; i < ps->nredirected; i++)
			loses[ps->redirected[2 * i]] = true;
		for (int i = 0; i < ps->ndead; i++)
			loses[ps->dead[i]] = true;
		for (int i = 0; i < ps->nunused; i++)
			loses[ps->unused[i]] = true;
		if (!prepare_group_changes(rel, cipher, page, storage::data_block(buffer), loses, &changes,
								   &changes_len))
		{
			pfree(ps);
			return -1;
		}
	}
	if (ps->nredirected + ps->ndead + ps->nunused > 0)
	{
		START_CRIT_SECTION();
		for (int i = 0; i < ps->nredirected; i++)
			ItemIdSetRedirect(PageGetItemId(page, ps->redirected[2 * i]),
							  ps->redirected[2 * i + 1]);
		for (int i = 0; i < ps->ndead; i++)
			ItemIdSetDead(PageGetItemId(page, ps->dead[i]));
		for (int i = 0; i < ps->nunused; i++)
			ItemIdSetUnused(PageGetItemId(page, ps->unused[i]));
		PageRepairFragmentation(page);
		storage::apply_group_changes(page, changes, changes_len);
		((PageHeader) page)->pd_prune_xid = ps->new_prune_xid;
		PageClearFull(page);
		MarkBufferDirty(buffer);
		log_line_pointers(rel, buffer, wal::kPrune, ps->redirected, ps->nredirected, ps->dead,
						  ps->ndead, ps->unused, ps->nunused, ps->latest_removed, changes,
						  changes_len);
		END_CRIT_SECTION();
		if (changes != nullptr)
			pfree(changes);
	}
	else if (((PageHeader) page)->pd_prune_xid != ps->new_prune_xid || PageIsFull(page))
	{
		((PageHeader) page)->pd_prune_xid = ps->new_prune_xid;
		PageClearFull(page);
		MarkBufferDirtyHint(buffer, true);
	}
	pfree(ps);
	return removed;
}

void
prune_opt(Relation rel, Buffer buffer)
{
	Page page = BufferGetPage(buffer);

	if (RecoveryInProgress())
		return;
	TransactionId prune_xid = ((PageHeader) page)->pd_prune_xid;
	if (!TransactionIdIsValid(prune_xid))
		return;
	GlobalVisState *vistest = GlobalVisTestFor(rel);
	if (!GlobalVisTestIsRemovableXid(vistest, prune_xid))
		return;

	Size minfree = Max(RelationGetTargetPageFreeSpace(rel, HEAP_DEFAULT_FILLFACTOR), BLCKSZ / 10);
	if (PageIsFull(page) || PageGetHeapFreeSpace(page) < minfree)
	{
		/*
		 * Re-sealing groups needs the key, loaded before the buffer lock
		 * (the callers, scans and fetches, have it cached). A page's group
		 * table is fixed when it is initialised, so this unlocked look is
		 * stable.
		 */
		const crypto::Cipher *cipher =
			storage::page_groups(page) != nullptr ? crypto::relation_cipher(rel) : nullptr;
		if (!ConditionalLockBufferForCleanup(buffer))
			return;
		if (PageIsFull(page) || PageGetHeapFreeSpace(page) < minfree)
			prune_page(rel, buffer, vistest, InvalidTransactionId, cipher);
		LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	}
}

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

/* Mark the page all-visible in the page header and the visibility map. */
static void
set_all_visible(Relation rel, Buffer buf, Buffer *vmbuf, TransactionId cutoff)
{
	Page page = BufferGetPage(buf);
	BlockNumber blkno = storage::data_block(buf);

	visibilitymap_pin(rel, blkno, vmbuf);
	LockBuffer(*vmbuf, BUFFER_LOCK_EXCLUSIVE);
	Page vmpage = BufferGetPage(*vmbuf);

	START_CRIT_SECTION();
	PageSetAllVisible(page);
	MarkBufferDirty(buf);
	storage::vm_set(vmpage, blkno);
	MarkBufferDirty(*vmbuf);
	if (RelationNeedsWAL(rel))
	{
		wal::XlVisible xl;
		xl.version = wal::kWalFormatVersion;
		xl.flags = 0;
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

static void
track_xid(TransactionId *min, TransactionId x)
{
	if (TransactionIdIsNormal(x) && (!TransactionIdIsValid(*min) || TransactionIdPrecedes(x, *min)))
		*min = x;
}

static void
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
	if (*infomask & HEAP_XMAX_INVALID)
		return changed;
	bool clear = false;
	if (*infomask & HEAP_XMAX_IS_MULTI)
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
 * VACUUM
 * ========================================================================
 */

static BlockNumber truncate_tail(Relation rel, BlockNumber nblocks, BlockNumber nonempty,
								 BufferAccessStrategy strategy);

struct VacState
{
	Relation rel;
	Relation *indrels;
	int nindexes;
	IndexBulkDeleteResult **istats;
	VacDeadItems *dead;
	BufferAccessStrategy strategy;
	double old_reltuples;
	int64 index_passes;
	TransactionId oldest_xmin;
	Buffer vmbuf;
	BlockNumber all_visible_pages;
	const crypto::Cipher *cipher; /* loaded when a sealed group must be re-sealed */
};

/* After vacuuming a page (cleanup or exclusive lock held): maybe all-visible. */
static void
maybe_set_all_visible(VacState *vs, Buffer buf)
{
	TransactionId cutoff;
	Page page = BufferGetPage(buf);

	if (PageIsNew(page))
		return;
	if (PageIsAllVisible(page))
	{
		/*
		 * The page says all-visible; the map may have lost its bit
		 * (pg_truncate_visibility_map, a lost fork): set it again, as heap
		 * does. No new standby conflict: the page was all-visible already.
		 */
		BlockNumber blkno = storage::data_block(buf);
		if ((visibilitymap_get_status(vs->rel, blkno, &vs->vmbuf) & VISIBILITYMAP_ALL_VISIBLE) == 0)
			set_all_visible(vs->rel, buf, &vs->vmbuf, InvalidTransactionId);
		vs->all_visible_pages++;
		return;
	}
	if (page_all_visible(vs->rel, buf, vs->oldest_xmin, &cutoff))
	{
		set_all_visible(vs->rel, buf, &vs->vmbuf, cutoff);
		vs->all_visible_pages++;
	}
}

/* Mark line pointers unused on one page (pass 2). */
static void
vacuum_page(VacState *vs, BlockNumber blkno, OffsetNumber *offs, int n)
{
	Buffer buf = storage::read_data_block(vs->rel, blkno, vs->strategy);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	Page page = BufferGetPage(buf);
	page_check(vs->rel, blkno, page);

	START_CRIT_SECTION();
	for (int i = 0; i < n; i++)
		ItemIdSetUnused(PageGetItemId(page, offs[i]));
	PageTruncateLinePointerArray(page);
	MarkBufferDirty(buf);
	log_line_pointers(vs->rel, buf, wal::kVacuum, nullptr, 0, nullptr, 0, offs, n,
					  InvalidTransactionId);
	END_CRIT_SECTION();
	maybe_set_all_visible(vs, buf);

	Size freespace = PageGetHeapFreeSpace(page);
	UnlockReleaseBuffer(buf);
	RecordPageWithFreeSpace(vs->rel, storage::phys_block(blkno), freespace);
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
		IndexVacuumInfo ivinfo;
		memset(&ivinfo, 0, sizeof(ivinfo));
		ivinfo.index = vs->indrels[i];
		ivinfo.analyze_only = false;
		ivinfo.report_progress = false;
		ivinfo.estimated_count = true;
		ivinfo.message_level = DEBUG2;
		ivinfo.num_heap_tuples = vs->old_reltuples;
		ivinfo.strategy = vs->strategy;
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
			offs[n++] = ItemPointerGetOffsetNumber(&dead->items[i++]);
		vacuum_delay_point();
		vacuum_page(vs, blkno, offs, n);
	}
	dead->num_items = 0;
	pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_SCAN_HEAP);
}

void
relation_vacuum(Relation rel, VacuumParams *params, BufferAccessStrategy bstrategy)
{
	TransactionId oldest_xmin, freeze_limit;
	MultiXactId oldest_mxact, multi_cutoff;

	bool aggressive =
		vacuum_set_xid_limits(rel, params->freeze_min_age, params->freeze_table_age,
							  params->multixact_freeze_min_age, params->multixact_freeze_table_age,
							  &oldest_xmin, &oldest_mxact, &freeze_limit, &multi_cutoff);
	if (params->options & VACOPT_DISABLE_PAGE_SKIPPING)
		aggressive = true;

	pgstat_progress_start_command(PROGRESS_COMMAND_VACUUM, RelationGetRelid(rel));
	/* like heap, prune with the current visibility horizon, at least OldestXmin */
	GlobalVisState *vistest = GlobalVisTestFor(rel);

	VacState vs;
	memset(&vs, 0, sizeof(vs));
	vs.rel = rel;
	vs.strategy = bstrategy;
	vs.oldest_xmin = oldest_xmin;
	vs.vmbuf = InvalidBuffer;
	vs.old_reltuples = rel->rd_rel->reltuples < 0 ? 0 : rel->rd_rel->reltuples;
	vac_open_indexes(rel, RowExclusiveLock, &vs.nindexes, &vs.indrels);
	bool do_index = vs.nindexes > 0 && params->index_cleanup != VACOPTVALUE_DISABLED;
	if (params->nworkers > 0 && vs.nindexes > 1 && do_index && RelationUsesLocalBuffers(rel))
		ereport(WARNING,
				(errmsg("disabling parallel option of vacuum on \"%s\" --- cannot vacuum temporary "
						"tables in parallel",
						RelationGetRelationName(rel))));
	vs.istats =
		(IndexBulkDeleteResult **) palloc0(sizeof(IndexBulkDeleteResult *) * Max(vs.nindexes, 1));

	storage::check_metapage(rel);
	BlockNumber nblocks = storage::data_nblocks(rel);
	int work_mem_kb = (IsAutoVacuumWorkerProcess() && autovacuum_work_mem != -1)
						  ? autovacuum_work_mem
						  : maintenance_work_mem;
	int64 max_items = MAXDEADITEMS((int64) work_mem_kb * 1024L);
	max_items = Min(max_items, (int64) (MaxAllocSize / sizeof(ItemPointerData)) - 64);
	max_items = Min(max_items, (int64) Max(nblocks, 1) * MaxHeapTuplesPerPage);
	max_items = Max(max_items, (int64) MaxHeapTuplesPerPage);
	vs.dead = (VacDeadItems *) palloc(vac_max_items_to_alloc_size((int) max_items));
	vs.dead->max_items = (int) max_items;
	vs.dead->num_items = 0;

	pgstat_progress_update_param(PROGRESS_VACUUM_TOTAL_HEAP_BLKS, nblocks);
	pgstat_progress_update_param(PROGRESS_VACUUM_MAX_DEAD_TUPLES, max_items);
	pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_SCAN_HEAP);

	TransactionId new_frozen = InvalidTransactionId;
	MultiXactId new_minmulti = InvalidMultiXactId;
	bool scanned_all = true;
	BlockNumber nonempty_pages = 0;
	double live = 0, recently_dead = 0, removed = 0, remaining_dead = 0;

	for (BlockNumber blkno = 0; blkno < nblocks; blkno++)
	{
		vacuum_delay_point();
		pgstat_progress_update_param(PROGRESS_VACUUM_HEAP_BLKS_SCANNED, blkno);
		if (vs.dead->num_items + MaxHeapTuplesPerPage > vs.dead->max_items)
			vacuum_indexes_and_pages(&vs);

		Buffer buf = storage::read_data_block(rel, blkno, bstrategy);
		bool cleanup = ConditionalLockBufferForCleanup(buf);
		if (!cleanup)
		{
			if (aggressive)
			{
				LockBufferForCleanup(buf);
				cleanup = true;
			}
			else
				LockBuffer(buf, BUFFER_LOCK_SHARE);
		}
		Page page = BufferGetPage(buf);

		if (PageIsNew(page))
		{
			if (cleanup)
			{
				/* left behind by an extension that crashed before its first insert */
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
				Size freespace = PageGetHeapFreeSpace(page);
				UnlockReleaseBuffer(buf);
				RecordPageWithFreeSpace(rel, storage::phys_block(blkno), freespace);
			}
			else
				UnlockReleaseBuffer(buf);
			continue;
		}
		page_check(rel, blkno, page);

		if (cleanup)
		{
			int n = prune_page(rel, buf, vistest, oldest_xmin, vs.cipher);
			if (n < 0)
			{
				/*
				 * Groups to re-seal: load the key (not under a buffer lock)
				 * and retry, waiting for the cleanup lock only when the
				 * first one was waited for too (aggressive VACUUM).
				 */
				LockBuffer(buf, BUFFER_LOCK_UNLOCK);
				vs.cipher = crypto::relation_cipher(rel);
				if (ConditionalLockBufferForCleanup(buf))
					n = 0;
				else if (aggressive)
				{
					LockBufferForCleanup(buf);
					n = 0;
				}
				else
				{
					LockBuffer(buf, BUFFER_LOCK_SHARE);
					cleanup = false;
				}
				if (cleanup)
				{
					page_check(rel, blkno, page);
					n = prune_page(rel, buf, vistest, oldest_xmin, vs.cipher);
				}
			}
			removed += Max(n, 0);
		}

		/* Classify what is left, collect dead items, freeze. */
		OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
		OffsetNumber deadoffs[MaxHeapTuplesPerPage];
		int ndead = 0;
		wal::XlFreezeEntry frz[MaxHeapTuplesPerPage];
		int nfrz = 0;
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
		{
			ItemId lp = PageGetItemId(page, off);
			if (ItemIdIsDead(lp))
			{
				deadoffs[ndead++] = off;
				continue;
			}
			HeapTupleData tup;
			if (!tuple_at(rel, buf, page, off, &tup))
				continue;
			switch (mvcc::satisfies_vacuum(&tup, oldest_xmin, buf))
			{
				case HEAPTUPLE_LIVE:
				case HEAPTUPLE_DELETE_IN_PROGRESS:
					live += 1;
					break;
				case HEAPTUPLE_RECENTLY_DEAD:
				case HEAPTUPLE_DEAD: /* not prunable without a cleanup lock */
					recently_dead += 1;
					break;
				default:
					break;
			}
			uint16 im, im2;
			TransactionId xmax;
			if (prepare_freeze(tup.t_data, cleanup ? freeze_limit : InvalidTransactionId,
							   multi_cutoff, oldest_xmin, &new_frozen, &new_minmulti, &im, &im2,
							   &xmax) &&
				cleanup)
			{
				frz[nfrz].offnum = off;
				frz[nfrz].infomask = im;
				frz[nfrz].infomask2 = im2;
				frz[nfrz].xmax = xmax;
				frz[nfrz].unused = 0;
				nfrz++;
			}
		}
		/* without a cleanup lock nothing was frozen: horizons stay put */
		if (!cleanup)
			scanned_all = false;

		if (nfrz > 0)
		{
			START_CRIT_SECTION();
			for (int i = 0; i < nfrz; i++)
			{
				auto htup = (HeapTupleHeader) PageGetItem(page, PageGetItemId(page, frz[i].offnum));
				htup->t_infomask = frz[i].infomask;
				htup->t_infomask2 = frz[i].infomask2;
				HeapTupleHeaderSetXmax(htup, frz[i].xmax);
			}
			MarkBufferDirty(buf);
			if (RelationNeedsWAL(rel))
			{
				wal::XlFreeze xl;
				xl.version = wal::kWalFormatVersion;
				xl.flags = 0;
				xl.ntuples = (uint16) nfrz;
				xl.cutoff_xid = freeze_limit;
				XLogBeginInsert();
				XLogRegisterData((char *) &xl, sizeof(xl));
				XLogRegisterBuffer(0, buf, REGBUF_STANDARD);
				XLogRegisterBufData(0, (char *) frz, nfrz * sizeof(wal::XlFreezeEntry));
				XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kFreeze);
				PageSetLSN(page, recptr);
			}
			END_CRIT_SECTION();
		}

		bool defer_fsm = false;
		if (ndead > 0 && cleanup && vs.nindexes == 0)
		{
			/* no index points here: dead line pointers can go right away */
			START_CRIT_SECTION();
			for (int i = 0; i < ndead; i++)
				ItemIdSetUnused(PageGetItemId(page, deadoffs[i]));
			PageTruncateLinePointerArray(page);
			MarkBufferDirty(buf);
			log_line_pointers(rel, buf, wal::kVacuum, nullptr, 0, nullptr, 0, deadoffs, ndead,
							  InvalidTransactionId);
			END_CRIT_SECTION();
		}
		else if (ndead > 0 && do_index)
		{
			for (int i = 0; i < ndead; i++)
			{
				/* ItemPointerSet evaluates its pointer argument more than once */
				ItemPointer item = &vs.dead->items[vs.dead->num_items];
				ItemPointerSet(item, blkno, deadoffs[i]);
				vs.dead->num_items++;
			}
			defer_fsm = true;
		}
		else if (ndead > 0)
			remaining_dead += ndead;
		for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
			if (ItemIdIsNormal(PageGetItemId(page, off)) ||
				(ItemIdIsDead(PageGetItemId(page, off)) && !do_index && vs.nindexes > 0))
			{
				nonempty_pages = blkno + 1;
				break;
			}
		if (cleanup && !defer_fsm && (ndead == 0 || vs.nindexes == 0))
			maybe_set_all_visible(&vs, buf);
		else if (!cleanup && PageIsAllVisible(page))
			vs.all_visible_pages++;

		Size freespace = PageGetHeapFreeSpace(page);
		UnlockReleaseBuffer(buf);
		if (!defer_fsm)
			RecordPageWithFreeSpace(rel, storage::phys_block(blkno), freespace);
	}
	pgstat_progress_update_param(PROGRESS_VACUUM_HEAP_BLKS_SCANNED, nblocks);

	vacuum_indexes_and_pages(&vs);

	/* Index cleanup and statistics. */
	if (params->index_cleanup != VACOPTVALUE_DISABLED)
	{
		pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_INDEX_CLEANUP);
		for (int i = 0; i < vs.nindexes; i++)
		{
			IndexVacuumInfo ivinfo;
			memset(&ivinfo, 0, sizeof(ivinfo));
			ivinfo.index = vs.indrels[i];
			ivinfo.analyze_only = false;
			ivinfo.report_progress = false;
			ivinfo.estimated_count = false;
			ivinfo.message_level = DEBUG2;
			ivinfo.num_heap_tuples = live;
			ivinfo.strategy = bstrategy;
			vs.istats[i] = vac_cleanup_one_index(&ivinfo, vs.istats[i]);
			if (vs.istats[i] != nullptr && !vs.istats[i]->estimated_count)
				vac_update_relstats(vs.indrels[i], vs.istats[i]->num_pages,
									vs.istats[i]->num_index_tuples, 0, false, InvalidTransactionId,
									InvalidMultiXactId, nullptr, nullptr, false);
		}
	}
	FreeSpaceMapVacuum(rel);
	/* no pins may be held while truncating: the buffers are dropped */
	if (BufferIsValid(vs.vmbuf))
		ReleaseBuffer(vs.vmbuf);
	vs.vmbuf = InvalidBuffer;
	if (params->truncate == VACOPTVALUE_ENABLED)
	{
		pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_TRUNCATE);
		nblocks = truncate_tail(rel, nblocks, nonempty_pages, bstrategy);
	}

	/* New horizons: the oldest ids left in the table, never past the cutoffs. */
	TransactionId frozenxid = oldest_xmin;
	if (TransactionIdIsValid(new_frozen) && TransactionIdPrecedes(new_frozen, frozenxid))
		frozenxid = new_frozen;
	MultiXactId minmulti = oldest_mxact;
	if (MultiXactIdIsValid(new_minmulti) && MultiXactIdPrecedes(new_minmulti, minmulti))
		minmulti = new_minmulti;
	if (!scanned_all)
	{
		frozenxid = InvalidTransactionId;
		minmulti = InvalidMultiXactId;
	}
	bool frozenxid_updated, minmulti_updated;
	/* relpages counts data pages, as ANALYZE and CREATE INDEX do (rdb_relation_size) */
	vac_update_relstats(rel, nblocks, live, Min(vs.all_visible_pages, nblocks), vs.nindexes > 0,
						frozenxid, minmulti, &frozenxid_updated, &minmulti_updated, false);
	pgstat_report_vacuum(RelationGetRelid(rel), rel->rd_rel->relisshared, live,
						 recently_dead + remaining_dead);

	if (params->options & VACOPT_VERBOSE)
		ereport(INFO,
				(errmsg("rustydb vacuum of \"%s\": %u pages, %.0f tuples removed, %.0f live, "
						"%.0f dead but not yet removable",
						RelationGetRelationName(rel), nblocks, removed, live, recently_dead)));

	pgstat_progress_end_command();
	vac_close_indexes(vs.nindexes, vs.indrels, NoLock);
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
		if (!PageIsNew(page))
			PageClearAllVisible(page);
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

	for (int i = 0; i < delstate->ndeltids; i++)
	{
		TM_IndexDelete *d = &delstate->deltids[i];
		TM_IndexStatus *st = &delstate->status[d->id];
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
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
	return latest;
}

} /* namespace rustydb::am */
