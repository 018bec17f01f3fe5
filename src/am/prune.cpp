/*-------------------------------------------------------------------------
 *
 * prune.cpp
 *	  rustydb pruning: on-access pruning and the first step of VACUUM on
 *	  each page.
 *
 * A tuple version is dead once its deleter committed before every running
 * snapshot began (or its creator aborted). Pruning, on any page access
 * that finds the page nearly full and prunable, and VACUUM on every page,
 * walks the page's version chains and turns dead versions into dead line
 * pointers (a chain's root, which index entries point at) or unused ones
 * (heap-only versions), redirecting a root to the first version that
 * survives, then compacts the page: one PRUNE record, whose page change
 * is storage::prune_execute, here and in redo. Sealed groups of encrypted
 * pages that lose members are freed or re-sealed in the same change.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/inplace.h"
#include "rustydb/am/undo_store.h"
#include "rustydb/am/groups.h"

#include "rustydb/mvcc/visibility.h"
#include "rustydb/storage/changes.h"
#include "rustydb/storage/page.h"
#include "rustydb/storage/undo.h"
#include "rustydb/wal/records.h"

namespace rustydb::am {

using storage::page_check;
using storage::tuple_at;

void
log_line_pointers(Relation rel, Buffer buffer, uint8 kind, const storage::PruneChanges &c,
				  TransactionId latest_removed)
{
	Assert(kind == wal::kPrune || kind == wal::kVacuum);
	Assert(CritSectionCount > 0);
	if (!RelationNeedsWAL(rel))
		return;
	wal::XlPrune xl;
	xl.version = wal::kWalFormatVersion;
	xl.flags = (uint8) ((c.group_changes_len > 0 ? wal::kFlagGroupChanges : 0) |
						(c.nstripped > 0 ? wal::kFlagUndoStripped : 0));
	xl.nredirected = (uint16) c.nredirected;
	xl.ndead = (uint16) c.ndead;
	xl.nunused = (uint16) c.nunused;
	xl.latest_removed_xid = latest_removed;
	XLogBeginInsert();
	XLogRegisterData((char *) &xl, sizeof(xl));
	XLogRegisterBuffer(0, buffer, REGBUF_STANDARD);
	if (c.nredirected > 0)
		XLogRegisterBufData(0, (char *) c.redirected, 2 * c.nredirected * sizeof(OffsetNumber));
	if (c.ndead > 0)
		XLogRegisterBufData(0, (char *) c.dead, c.ndead * sizeof(OffsetNumber));
	if (c.nunused > 0)
		XLogRegisterBufData(0, (char *) c.unused, c.nunused * sizeof(OffsetNumber));
	uint16 nstripped = (uint16) c.nstripped;
	if (nstripped > 0)
	{
		Assert(kind == wal::kPrune);
		XLogRegisterBufData(0, (char *) &nstripped, sizeof(nstripped));
		XLogRegisterBufData(0, (char *) c.stripped, nstripped * sizeof(OffsetNumber));
	}
	if (c.group_changes_len > 0)
		XLogRegisterBufData(0, (char *) c.group_changes, c.group_changes_len);
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
	int nredirected, ndead, nunused, nstripped;
	OffsetNumber redirected[MaxHeapTuplesPerPage * 2];
	OffsetNumber dead[MaxHeapTuplesPerPage];
	OffsetNumber unused[MaxHeapTuplesPerPage];
	OffsetNumber stripped[MaxHeapTuplesPerPage];
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
	{
		Assert(!ps->marked[chain[i]]);
		ps->marked[chain[i]] = true;
	}
	if (latestdead < 0)
		return;

	/* the dead versions after the root become unused */
	Assert(ps->nunused + latestdead <= MaxHeapTuplesPerPage);
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

/* Which items lose their storage in this prune (redirected or dead roots, unused versions)? */
static void
losing_storage(const PruneState *ps, bool *loses)
{
	memset(loses, 0, (MaxHeapTuplesPerPage + 1) * sizeof(bool));
	for (int i = 0; i < ps->nredirected; i++)
		loses[ps->redirected[2 * i]] = true;
	for (int i = 0; i < ps->ndead; i++)
		loses[ps->dead[i]] = true;
	for (int i = 0; i < ps->nunused; i++)
		loses[ps->unused[i]] = true;
}

/*
 * Undo pointers to remove (docs/storage.md, "Giving the undo pointer's 8
 * bytes back"). An in-place version is 8 bytes longer than the row it
 * replaced, and stays so: without this, every row of a page updated in
 * place once takes 8 more bytes for good, and a page filled up to the
 * insert reserve runs out of room for one more in-place version after a
 * few such rows. The pointer of a version whose creator committed and is
 * visible to every snapshot is never followed (a reader walks a chain only
 * past a creator its snapshot cannot see; its undo record is recyclable
 * under the same rule), so the pointer goes, here under the cleanup lock
 * and in the PRUNE record's redo. Only when the page, compacted, would not
 * hold one more in-place version of its widest row: otherwise the pointers
 * stay, and pruning writes no record for them. When some still have a
 * creator not every snapshot sees, the page stays prunable for them.
 */
static void
plan_strips(PruneState *ps, Page page, bool plain)
{
	if (!plain)
		return;                          /* sealed tuples: their associated data covers t_hoff */
	bool gone[MaxHeapTuplesPerPage + 1]; /* loses its storage in this prune */
	losing_storage(ps, gone);

	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	Size used = 0, want = 0;
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId lp = PageGetItemId(page, off);
		if (!ItemIdIsNormal(lp) || gone[off])
			continue;
		Size len = ItemIdGetLength(lp);
		used += MAXALIGN(len);
		bool has = storage::tuple_has_undo((HeapTupleHeader) PageGetItem(page, lp));
		want = Max(want, MAXALIGN(len + (has ? 0 : storage::kUndoExtSize)));
	}
	auto *ph = (PageHeader) page;
	if (ph->pd_special < ph->pd_lower || (Size) (ph->pd_special - ph->pd_lower) >= used + want)
		return;

	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId lp = PageGetItemId(page, off);
		if (!ItemIdIsNormal(lp) || gone[off])
			continue;
		auto *t = (HeapTupleHeader) PageGetItem(page, lp);
		if (!storage::tuple_has_undo(t))
			continue;
		switch ((HTSV_Result) ps->htsv[off])
		{
			case HEAPTUPLE_LIVE:
			case HEAPTUPLE_RECENTLY_DEAD:
			case HEAPTUPLE_DELETE_IN_PROGRESS:
				break; /* its creator committed */
			default:
				continue;
		}
		TransactionId xmin = HeapTupleHeaderGetXmin(t);
		bool seen_by_all = !TransactionIdIsNormal(xmin) ||
						   (ps->vistest != nullptr ? GlobalVisTestIsRemovableXid(ps->vistest, xmin)
												   : TransactionIdPrecedes(xmin, ps->oldest_xmin));
		if (!seen_by_all)
		{
			note_prunable(ps, xmin);
			continue;
		}
		ps->stripped[ps->nstripped++] = off;
		/* a standby query that cannot see xmin would still follow the pointer */
		if (TransactionIdIsNormal(xmin) && (!TransactionIdIsValid(ps->latest_removed) ||
											TransactionIdFollows(xmin, ps->latest_removed)))
			ps->latest_removed = xmin;
	}
}

int
prune_page(Relation rel, Buffer buffer, GlobalVisState *vistest, TransactionId oldest_xmin,
		   const crypto::Cipher *cipher, bool plain, Relation undo)
{
	Page page = BufferGetPage(buffer);

	/* a cleanup lock: exclusive, and (when taken) nobody else's pin */
	Assert(storage::buffer_is_locked_exclusive(buffer));
	Assert(CritSectionCount == 0);
	Assert(vistest != nullptr || TransactionIdIsValid(oldest_xmin));
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
	ps->nredirected = ps->ndead = ps->nunused = ps->nstripped = 0;
	memset(ps->marked, 0, sizeof(ps->marked));

	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		HeapTupleData tup;
		ps->htsv[off] = -1;
		if (!tuple_at(rel, buffer, page, off, &tup))
			continue;
		auto verdict = [&] {
			return (int8) (vistest != nullptr ? mvcc::satisfies_vacuum_vis(&tup, vistest, buffer)
											  : mvcc::satisfies_vacuum(&tup, oldest_xmin, buffer));
		};
		ps->htsv[off] = verdict();
		/*
		 * An aborted in-place version is not dead: it stands for the
		 * version in undo, which it gets back here (we hold the page
		 * exclusively), and the row is judged again. Judged after the
		 * verdict, not before it: its creator may abort in between.
		 */
		if (ps->htsv[off] == HEAPTUPLE_DEAD && storage::tuple_has_undo(tup.t_data) &&
			mvcc::creator_aborted(tup.t_data))
		{
			repair_aborted(rel, buffer, &tup);
			ps->htsv[off] = verdict();
		}
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
			Assert(ps->nunused < MaxHeapTuplesPerPage);
			ps->unused[ps->nunused++] = off;
			mvcc::advance_latest_removed_xid(t, &ps->latest_removed);
			ps->marked[off] = true;
		}
	}

	plan_strips(ps, page, plain);

	int removed = ps->ndead + ps->nunused;
	bool gone[MaxHeapTuplesPerPage + 1];
	losing_storage(ps, gone);
	/*
	 * Compaction drops the previous versions in-place updates left on the
	 * page: those a snapshot or a repair may still need go to undo first.
	 * When they cannot (the store is full), the page is left as it is.
	 */
	if ((ps->nredirected + ps->ndead + ps->nunused > 0 || storage::page_has_garbage(page)) &&
		!settle_previous_versions(rel, undo, buffer, vistest, oldest_xmin, gone,
								  &ps->latest_removed))
	{
		pfree(ps);
		return kPruneDeferred;
	}
	char *changes = nullptr;
	Size changes_len = 0;
	if (ps->nredirected + ps->ndead + ps->nunused > 0 && storage::page_groups(page) != nullptr)
	{
		/* sealed groups losing members: freed, or their survivors re-sealed */
		if (!prepare_group_changes(rel, cipher, page, storage::data_block(buffer), gone, &changes,
								   &changes_len))
		{
			pfree(ps);
			return kPruneNeedsKey;
		}
	}
	if (ps->nredirected + ps->ndead + ps->nunused + ps->nstripped > 0 ||
		storage::page_has_garbage(page))
	{
		/*
		 * Dead tuples that no longer need VACUUM: the versions whose
		 * storage goes, less the dead line pointers left for VACUUM's
		 * index pass (heap_page_prune's count). On-access pruning reports
		 * them, so that n_dead_tup, and autovacuum, see what is left;
		 * VACUUM reports its own totals.
		 */
		int freed = 0;
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
			if (gone[off] && ItemIdIsNormal(PageGetItemId(page, off)))
				freed++;
		freed -= ps->ndead;
		storage::PruneChanges c;
		c.redirected = ps->redirected;
		c.nredirected = ps->nredirected;
		c.dead = ps->dead;
		c.ndead = ps->ndead;
		c.unused = ps->unused;
		c.nunused = ps->nunused;
		c.stripped = ps->stripped;
		c.nstripped = ps->nstripped;
		c.group_changes = changes;
		c.group_changes_len = changes_len;
		START_CRIT_SECTION();
		storage::prune_execute(buffer, c);
		/* hints, not replayed (rm_mask masks them) */
		((PageHeader) page)->pd_prune_xid = ps->new_prune_xid;
		PageClearFull(page);
		MarkBufferDirty(buffer);
		log_line_pointers(rel, buffer, wal::kPrune, c, ps->latest_removed);
		END_CRIT_SECTION();
		if (changes != nullptr)
			pfree(changes);
		if (!TransactionIdIsValid(oldest_xmin) && freed > 0)
			pgstat_update_heap_dead_tuples(rel, freed);
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

	Assert(BufferIsValid(buffer));
	Assert(storage::buffer_is_unlocked(buffer)); /* pinned only: the cleanup lock is taken here */
	if (RecoveryInProgress())
		return;
	TransactionId prune_xid = ((PageHeader) page)->pd_prune_xid;
	/*
	 * Dead versions wait for the snapshot horizon. So do the bytes in-place
	 * updates left behind, unless the page is running out of room: the
	 * oldest writer since the last compaction (pd_prune_xid) not yet older
	 * than every snapshot means no such version can be dropped yet, and
	 * compaction would only move them all to undo. So only when out of
	 * room: less free space than two more versions of the page's longest
	 * row. And not when that writer is this transaction with at most one
	 * in-place version on the page: a writer reading its row back, as
	 * TPC-B does, would pay one move per update, and later readers compact
	 * for nothing once it is old; a transaction that keeps updating the
	 * page's rows (two versions or more) needs the room now. (An unlocked
	 * look: a heuristic, the cleanup-locked pruning decides what moves.)
	 */
	bool garbage = storage::page_has_garbage(page);
	if (!TransactionIdIsValid(prune_xid) && !garbage)
		return;
	Size minfree = Max(RelationGetTargetPageFreeSpace(rel, HEAP_DEFAULT_FILLFACTOR), BLCKSZ / 10);
	if (!PageIsFull(page) && PageGetHeapFreeSpace(page) >= minfree)
		return;
	GlobalVisState *vistest = GlobalVisTestFor(rel);
	if (!TransactionIdIsValid(prune_xid) || !GlobalVisTestIsRemovableXid(vistest, prune_xid))
	{
		if (!garbage)
			return;
		bool mine = TransactionIdIsCurrentTransactionId(prune_xid);
		Size longest = 0;
		int own = 0;
		for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
		{
			ItemId lp = PageGetItemId(page, off);
			if (!ItemIdIsNormal(lp))
				continue;
			longest = Max(longest, (Size) ItemIdGetLength(lp));
			/* unlocked: a line pointer being rewritten may hold any offset */
			if (ItemIdGetOffset(lp) + storage::kTupleHeaderSize > BLCKSZ)
				continue;
			auto *t = (HeapTupleHeader) PageGetItem(page, lp);
			if (mine && own < 2 && storage::tuple_has_undo(t) &&
				TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(t)))
				own++;
		}
		if ((mine && own < 2) ||
			storage::inplace_fits(page, 2 * MAXALIGN(longest + storage::kUndoExtSize)))
			return;
	}

	/*
	 * Re-sealing groups needs the key, loaded before the buffer lock (the
	 * callers, scans and fetches, have it cached). A page's group table is
	 * fixed when it is initialised, so this unlocked look is stable.
	 */
	const crypto::Cipher *cipher =
		storage::page_groups(page) != nullptr ? crypto::relation_cipher(rel) : nullptr;
	bool plain = cipher == nullptr && !crypto::relation_encrypted(rel);
	/*
	 * Compaction may have to move previous versions left on the page to
	 * undo: the store is opened only then (kPruneDeferred without it), and
	 * before the buffer lock is taken again (never a heavyweight lock wait
	 * under a buffer lock).
	 */
	Relation undo = nullptr;
	for (int attempt = 0; attempt < 2; attempt++)
	{
		if (!ConditionalLockBufferForCleanup(buffer))
			break;
		int n = PageIsFull(page) || PageGetHeapFreeSpace(page) < minfree
					? prune_page(rel, buffer, vistest, InvalidTransactionId, cipher, plain, undo)
					: 0;
		LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
		if (n != kPruneDeferred || undo != nullptr || !plain || IsInParallelMode() ||
			(undo = undo_open(rel, RowExclusiveLock)) == nullptr)
			break;
	}
	if (undo != nullptr)
		table_close(undo, RowExclusiveLock);
}

} /* namespace rustydb::am */
