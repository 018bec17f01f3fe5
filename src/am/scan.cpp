/*-------------------------------------------------------------------------
 *
 * scan.cpp
 *	  rustydb scans: sequential (synchronized, parallel, backward), TID
 *	  range, bitmap, TABLESAMPLE and ANALYZE scans; index fetches and
 *	  single-row fetches.
 *
 * A scan reads one page at a time: under a share lock it collects the
 * offsets of the tuples visible to the scan's snapshot (MVCC snapshots) or
 * of all tuples (other snapshots, then checked one by one under the lock
 * when returned), and returns them with only the buffer pin held.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/inplace.h"
#include "rustydb/storage/undo.h"
#include "rustydb/am/groups.h"
#include "rustydb/crypto/crypto.h"

#include "rustydb/mvcc/visibility.h"
#include "rustydb/storage/page.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/valid.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::am {

using storage::page_check;
using storage::tuple_at;

/* ========================================================================
 * Page collection
 * ========================================================================
 */

static bool
pagemode(ScanDesc *s)
{
	return (s->base.rs_flags & SO_ALLOW_PAGEMODE) && s->base.rs_snapshot != nullptr &&
		   IsMVCCSnapshot(s->base.rs_snapshot);
}

/* The memory context of the current page's undo image copies. */
static MemoryContext
chain_cxt(ScanDesc *s)
{
	if (s->chaincxt == nullptr)
		s->chaincxt =
			AllocSetContextCreate(s->plaincxt, "rustydb scan versions", ALLOCSET_SMALL_SIZES);
	return s->chaincxt;
}

/* Forget the copies of the page before. */
static void
chain_reset(ScanDesc *s)
{
	if (s->chaincxt != nullptr)
		MemoryContextReset(s->chaincxt);
}

/* A copy's HeapTupleData, in chaincxt with the copy (t: what visible_version returned). */
static HeapTuple
chain_keep(ScanDesc *s, HeapTuple t)
{
	auto h = (HeapTuple) MemoryContextAlloc(chain_cxt(s), sizeof(HeapTupleData));
	*h = *t;
	return h;
}

/* Row n of the page: offset, line pointer as judged, the undo image seen (or nullptr). */
static inline void
keep_row(ScanDesc *s, int n, OffsetNumber off, ItemId lp, HeapTuple copy)
{
	s->vistuples[n] = off;
	s->visitems[n] = *lp;
	s->viscopies[n] = copy;
}

/* The version kept for row idx of the current page. */
static void
kept_row(ScanDesc *s, int idx, HeapTuple out)
{
	if (s->viscopies[idx] != nullptr)
	{
		*out = *s->viscopies[idx];
		return;
	}
	Page page = BufferGetPage(s->cbuf);
	out->t_data = (HeapTupleHeader) PageGetItem(page, &s->visitems[idx]);
	out->t_len = ItemIdGetLength(&s->visitems[idx]);
	out->t_tableOid = RelationGetRelid(s->base.rs_rd);
	ItemPointerSet(&out->t_self, s->cblock, s->vistuples[idx]);
}

/* Read block and collect its candidate offsets into s->vistuples. */
static void
collect_page(ScanDesc *s, BlockNumber block)
{
	Relation rel = s->base.rs_rd;
	Snapshot snapshot = s->base.rs_snapshot;

	if (BufferIsValid(s->cbuf))
	{
		ReleaseBuffer(s->cbuf);
		s->cbuf = InvalidBuffer;
	}
	CHECK_FOR_INTERRUPTS();
	s->cbuf = storage::read_data_block(rel, block, s->strategy);
	s->plainblock = InvalidBlockNumber; /* a new visit: rows opened again */
	s->plainbatch = false;
	s->cblock = block;
	chain_reset(s);
	if (snapshot != nullptr && !snapshot->takenDuringRecovery)
		prune_opt(rel, s->cbuf);

	LockBuffer(s->cbuf, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(s->cbuf);
	page_check(rel, block, page);
	bool check = pagemode(s);
	bool all_visible = check && PageIsAllVisible(page) && !snapshot->takenDuringRecovery;
	bool ssi = check && CheckForSerializableConflictOutNeeded(rel, snapshot);
	int n = 0;
	OffsetNumber maxoff = PageIsNew(page) ? 0 : PageGetMaxOffsetNumber(page);
	if (all_visible && !ssi)
	{
		/* every tuple is visible: like heap, do not touch the tuples themselves */
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
		{
			ItemId lp = PageGetItemId(page, off);
			if (!ItemIdIsNormal(lp))
				continue;
			if (unlikely(!storage::lp_is_sane_tuple(page, lp)))
			{
				HeapTupleData tup;
				tuple_at(rel, s->cbuf, page, off, &tup); /* raises the error */
				continue;
			}
			keep_row(s, n++, off, lp, nullptr);
		}
	}
	else
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
		{
			HeapTupleData tup;
			if (!tuple_at(rel, s->cbuf, page, off, &tup))
				continue;
			HeapTuple copy = nullptr;
			if (check && !all_visible)
			{
				bool copied;
				MemoryContext old = MemoryContextSwitchTo(chain_cxt(s));
				bool visible = visible_version(rel, s->cbuf, &tup, snapshot, ssi, &copied);
				MemoryContextSwitchTo(old);
				if (!visible)
					continue;
				if (copied)
					copy = chain_keep(s, &tup);
			}
			else if (check && ssi)
				mvcc::check_serializable_conflict_out(true, rel, &tup, s->cbuf, snapshot);
			keep_row(s, n++, off, PageGetItemId(page, off), copy);
		}
	LockBuffer(s->cbuf, BUFFER_LOCK_UNLOCK);
	s->ntuples = n;
	/* vistuples are the page's visible rows: opened all at once (plain_row) */
	s->plainbatch = check;
}

/*
 * Is the collected tuple at vistuples[idx] one to return? In page mode it
 * was checked already; otherwise check it now under the lock.
 */
static bool
load_tuple(ScanDesc *s, int idx)
{
	Relation rel = s->base.rs_rd;
	Page page = BufferGetPage(s->cbuf);
	OffsetNumber off = s->vistuples[idx];

	if (pagemode(s))
	{
		/* collect_page checked the line pointer (and the tuple when it looked at it) */
		kept_row(s, idx, &s->ctup);
		return true;
	}

	chain_reset(s);
	LockBuffer(s->cbuf, BUFFER_LOCK_SHARE);
	bool ok = tuple_at(rel, s->cbuf, page, off, &s->ctup);
	if (ok && s->base.rs_snapshot != nullptr)
	{
		bool copied;
		MemoryContext old = MemoryContextSwitchTo(chain_cxt(s));
		ok = visible_version(rel, s->cbuf, &s->ctup, s->base.rs_snapshot, true, &copied);
		MemoryContextSwitchTo(old);
	}
	LockBuffer(s->cbuf, BUFFER_LOCK_UNLOCK);
	return ok;
}

static bool
keys_match(ScanDesc *s)
{
	if (s->base.rs_nkeys == 0)
		return true;
	bool ok;
	HeapKeyTest(&s->ctup, RelationGetDescr(s->base.rs_rd), s->base.rs_nkeys, s->base.rs_key, ok);
	return ok;
}

/* Room of each of a scan's plaintext row buffers: a page's rows and their HeapTupleData. */
constexpr Size kPlainBufBytes = 2 * BLCKSZ + MaxHeapTuplesPerPage * MAXALIGN(HEAPTUPLESIZE);

static void
plain_wipe(ScanDesc *s, int i)
{
	if (s->plainbuf[i] != nullptr && s->plainused[i] > 0)
		explicit_bzero(s->plainbuf[i], s->plainused[i]);
	s->plainused[i] = 0;
}

/*
 * A page-mode scan's first row of a page: every visible row of the page
 * opened into buf at once (cached ones copied under one lock of the
 * cache); rows with sealed large values are left to store_tuple, and so
 * are rows whose visible version is an undo image (a copy, opened on its
 * own: the page's row at that offset is another version). Each row is the
 * version collect_page kept (its line pointer as judged: an in-place
 * update may have moved the offset's line pointer since).
 */
static void
plain_page(ScanDesc *s, char *buf)
{
	static HeapTupleData stored[MaxHeapTuplesPerPage];
	static HeapTuple outs[MaxHeapTuplesPerPage];
	Relation rel = s->base.rs_rd;
	Size used = 0;
	int n = 0;

	for (int i = 0; i < s->ntuples; i++)
	{
		if (s->viscopies[i] != nullptr)
			continue;
		HeapTuple t = &stored[n];
		kept_row(s, i, t);
		if (t->t_data->t_infomask2 & crypto::kValuesSealed)
			continue;
		Size need = MAXALIGN(MAXALIGN(HEAPTUPLESIZE) + t->t_len);
		if (used + need > kPlainBufBytes)
			break;
		auto h = (HeapTuple) (buf + used);
		h->t_data = (HeapTupleHeader) ((char *) h + MAXALIGN(HEAPTUPLESIZE));
		outs[n++] = h;
		used += need;
	}
	if (n == 0)
		return;
	open_page_rows(rel, s->cipher, s->cbuf, s->groups, n, stored, outs);
	for (int i = 0; i < n; i++)
		s->plainat[ItemPointerGetOffsetNumber(&outs[i]->t_self)] =
			(uint16) ((char *) outs[i] - buf + 1);
	s->plainused[s->plaincur] = used;
}

/*
 * The plaintext of the scan's page tuple t (on the current page) in the
 * scan's buffer, opened once per page visit: through the cache of opened
 * payloads, without a palloc per row. nullptr: use store_tuple.
 */
static HeapTuple
plain_row(ScanDesc *s, HeapTuple t, bool locked)
{
	if (s->plainblock != s->cblock)
	{
		/* the other buffer holds the page before: the slot may still point into this one */
		s->plaincur ^= 1;
		plain_wipe(s, s->plaincur);
		memset(s->plainat, 0, sizeof(s->plainat));
		s->plainblock = s->cblock;
	}
	OffsetNumber off = ItemPointerGetOffsetNumber(&t->t_self);
	char *buf = s->plainbuf[s->plaincur];
	if (buf == nullptr)
		buf = s->plainbuf[s->plaincur] = (char *) MemoryContextAlloc(s->plaincxt, kPlainBufBytes);
	if (s->plainbatch)
	{
		s->plainbatch = false;
		plain_page(s, buf);
	}
	if (s->plainat[off] != 0)
		return (HeapTuple) (buf + s->plainat[off] - 1);
	Size used = s->plainused[s->plaincur];
	if (used + MAXALIGN(HEAPTUPLESIZE) >= kPlainBufBytes)
		return nullptr;
	auto h = (HeapTuple) (buf + used);
	h->t_data = (HeapTupleHeader) ((char *) h + MAXALIGN(HEAPTUPLESIZE));
	uint32 len =
		open_stored_into(s->base.rs_rd, s->cipher, t, s->cbuf, locked, s->groups,
						 (char *) h->t_data, kPlainBufBytes - used - MAXALIGN(HEAPTUPLESIZE));
	if (len == 0)
		return nullptr;
	h->t_len = len;
	h->t_self = t->t_self;
	h->t_tableOid = t->t_tableOid;
	s->plainat[off] = (uint16) (used + 1);
	s->plainused[s->plaincur] = used + MAXALIGN(MAXALIGN(HEAPTUPLESIZE) + len);
	return h;
}

/* Hand the scan's current tuple (t, on its current page) to slot. */
static void
store_current(ScanDesc *s, HeapTuple t, TupleTableSlot *slot, bool locked = false)
{
	/* an undo image (a copy) is opened on its own by store_tuple */
	if (s->cipher != nullptr && TTS_IS_HEAPTUPLE(slot) &&
		!(t->t_data->t_infomask2 & crypto::kValuesSealed) && tuple_on_page(t, s->cbuf))
	{
		HeapTuple p = plain_row(s, t, locked);
		if (p != nullptr)
		{
			/* not the slot's: valid until the scan has left the next page */
			ExecStoreHeapTuple(p, slot, false);
			return;
		}
	}
	store_tuple(s->base.rs_rd, t, slot, s->cbuf, false, s->groups, locked, !s->values_deferred);
}

/* ========================================================================
 * Begin, rescan, end
 * ========================================================================
 */

static void
init_scan(ScanDesc *s, ScanKey key, bool keep_startblock)
{
	Relation rel = s->base.rs_rd;
	ParallelBlockTableScanDesc pb = (ParallelBlockTableScanDesc) s->base.rs_parallel;

	s->nblocks = pb != nullptr ? pb->phs_nblocks : storage::data_nblocks(rel);

	bool allow_strat, allow_sync;
	if (!RelationUsesLocalBuffers(rel) && s->nblocks > (BlockNumber) (NBuffers / 4))
	{
		allow_strat = (s->base.rs_flags & SO_ALLOW_STRAT) != 0;
		allow_sync = (s->base.rs_flags & SO_ALLOW_SYNC) != 0;
	}
	else
		allow_strat = allow_sync = false;

	if (allow_strat)
	{
		if (s->strategy == nullptr)
			s->strategy = GetAccessStrategy(BAS_BULKREAD);
	}
	else if (s->strategy != nullptr)
	{
		FreeAccessStrategy(s->strategy);
		s->strategy = nullptr;
	}

	if (pb != nullptr)
		s->base.rs_flags &= ~SO_ALLOW_SYNC; /* the parallel machinery syncs */
	else if (keep_startblock)
	{
		if (!allow_sync)
			s->base.rs_flags &= ~SO_ALLOW_SYNC;
	}
	else if (allow_sync)
	{
		s->base.rs_flags |= SO_ALLOW_SYNC;
		s->startblock = ss_get_location(rel, s->nblocks);
	}
	else
	{
		s->base.rs_flags &= ~SO_ALLOW_SYNC;
		s->startblock = 0;
	}

	s->numblocks = InvalidBlockNumber;
	s->inited = false;
	s->ctup.t_data = nullptr;
	ItemPointerSetInvalid(&s->ctup.t_self);
	if (BufferIsValid(s->cbuf))
		ReleaseBuffer(s->cbuf);
	s->cbuf = InvalidBuffer;
	s->cblock = InvalidBlockNumber;
	s->ntuples = 0;
	s->cindex = 0;
	s->plainblock = InvalidBlockNumber;
	if (key != nullptr && s->base.rs_nkeys > 0)
		memcpy(s->base.rs_key, key, s->base.rs_nkeys * sizeof(ScanKeyData));

	if (s->base.rs_flags & SO_TYPE_SEQSCAN)
		pgstat_count_heap_scan(rel);
}

TableScanDesc
scan_begin(Relation rel, Snapshot snapshot, int nkeys, ScanKey key, ParallelTableScanDesc pscan,
		   uint32 flags)
{
	storage::check_storage(rel);
	RelationIncrementReferenceCount(rel);
	/*
	 * load an encrypted relation's keys now, not later under a buffer lock;
	 * an ANALYZE that samples no row of it needs none
	 */
	crypto::AnalyzeSample sample =
		(flags & SO_TYPE_ANALYZE) ? crypto::analyze_sample(rel) : crypto::AnalyzeSample::Rows;
	const crypto::Cipher *cipher =
		sample == crypto::AnalyzeSample::Counts ? nullptr : crypto::relation_cipher(rel);
	auto *s = (ScanDesc *) palloc0(sizeof(ScanDesc));
	s->sample = sample;
	s->valuefree =
		sample == crypto::AnalyzeSample::ValueFree ? crypto::value_free_begin(rel) : nullptr;
	/* the sample opens inline large values itself and never needs those out of line */
	s->values_deferred = s->valuefree != nullptr;
	s->groups = cipher != nullptr ? opened_groups_create(CurrentMemoryContext) : nullptr;
	s->cipher = cipher;
	s->plaincxt = CurrentMemoryContext;
	s->plainblock = InvalidBlockNumber;
	s->base.rs_rd = rel;
	s->base.rs_snapshot = snapshot;
	s->base.rs_nkeys = nkeys;
	s->base.rs_flags = flags;
	s->base.rs_parallel = pscan;
	s->cbuf = InvalidBuffer;
	s->ctup.t_tableOid = RelationGetRelid(rel);
	s->pscanwork = nullptr;
	if (pscan != nullptr)
		s->pscanwork =
			(ParallelBlockTableScanWorkerData *) palloc0(sizeof(ParallelBlockTableScanWorkerData));

	if (!(snapshot && IsMVCCSnapshot(snapshot)))
		s->base.rs_flags &= ~SO_ALLOW_PAGEMODE;

	if (flags & (SO_TYPE_SEQSCAN | SO_TYPE_SAMPLESCAN))
		PredicateLockRelation(rel, snapshot);

	s->base.rs_key = nkeys > 0 ? (ScanKey) palloc(sizeof(ScanKeyData) * nkeys) : nullptr;
	init_scan(s, key, false);
	/* scans read whole pages through the shared cache of opened payloads */
	opened_groups_use_cache(s->groups, rel, true, s->nblocks);
	return &s->base;
}

void
scan_rescan(TableScanDesc scan, ScanKey key, bool set_params, bool allow_strat, bool allow_sync,
			bool allow_pagemode)
{
	auto *s = (ScanDesc *) scan;

	if (set_params)
	{
		auto set = [&](uint32 flag, bool on) {
			if (on)
				s->base.rs_flags |= flag;
			else
				s->base.rs_flags &= ~flag;
		};
		set(SO_ALLOW_STRAT, allow_strat);
		set(SO_ALLOW_SYNC, allow_sync);
		set(SO_ALLOW_PAGEMODE, allow_pagemode && s->base.rs_snapshot != nullptr &&
								   IsMVCCSnapshot(s->base.rs_snapshot));
	}
	init_scan(s, key, true);
}

void
scan_end(TableScanDesc scan)
{
	auto *s = (ScanDesc *) scan;

	if (BufferIsValid(s->cbuf))
		ReleaseBuffer(s->cbuf);
	if (s->valuefree != nullptr)
		crypto::value_free_end(s->valuefree);
	RelationDecrementReferenceCount(s->base.rs_rd);
	if (s->base.rs_key)
		pfree(s->base.rs_key);
	if (s->strategy != nullptr)
		FreeAccessStrategy(s->strategy);
	if (s->pscanwork != nullptr)
		pfree(s->pscanwork);
	if (s->base.rs_flags & SO_TEMP_SNAPSHOT)
		UnregisterSnapshot(s->base.rs_snapshot);
	opened_groups_free(s->groups);
	if (s->chaincxt != nullptr)
		MemoryContextDelete(s->chaincxt);
	for (int i = 0; i < 2; i++)
	{
		plain_wipe(s, i);
		if (s->plainbuf[i] != nullptr)
			pfree(s->plainbuf[i]);
	}
	pfree(s);
}

/* ========================================================================
 * Sequential scans
 * ========================================================================
 */

/* Blocks this scan covers, for the position arithmetic below. */
static BlockNumber
scan_span(ScanDesc *s)
{
	if (s->numblocks != InvalidBlockNumber)
		return Min(s->numblocks, s->nblocks > s->startblock ? s->nblocks - s->startblock : 0);
	return s->nblocks;
}

/*
 * Move to the next page in direction dir; false at the end. Non-parallel
 * scans address pages by position pos in [0, span): block = (startblock +
 * pos) mod nblocks, so forward, backward and direction changes all work.
 */
static bool
advance_page(ScanDesc *s, ScanDirection dir)
{
	ParallelBlockTableScanDesc pb = (ParallelBlockTableScanDesc) s->base.rs_parallel;
	BlockNumber block;

	if (pb != nullptr)
	{
		if (!s->inited)
			table_block_parallelscan_startblock_init(s->base.rs_rd, s->pscanwork, pb);
		block = table_block_parallelscan_nextpage(s->base.rs_rd, s->pscanwork, pb);
		s->inited = true;
		if (block == InvalidBlockNumber)
			return false;
		collect_page(s, block);
		s->cindex = -1;
		return true;
	}

	BlockNumber span = scan_span(s);
	int64 pos;
	if (!s->inited)
		pos = ScanDirectionIsBackward(dir) ? (int64) span - 1 : 0;
	else
	{
		int64 cur = ((int64) s->cblock - (int64) s->startblock + s->nblocks) % Max(s->nblocks, 1);
		pos = ScanDirectionIsBackward(dir) ? cur - 1 : cur + 1;
	}
	if (span == 0 || pos < 0 || pos >= (int64) span)
	{
		if (BufferIsValid(s->cbuf))
			ReleaseBuffer(s->cbuf);
		s->cbuf = InvalidBuffer;
		s->cblock = InvalidBlockNumber;
		s->inited = false;
		s->ntuples = 0;
		return false;
	}
	block = (BlockNumber) ((s->startblock + pos) % s->nblocks);
	if (s->inited && (s->base.rs_flags & SO_ALLOW_SYNC) && ScanDirectionIsForward(dir))
		ss_report_location(s->base.rs_rd, block);
	s->inited = true;
	collect_page(s, block);
	/* cindex is the index of the last tuple returned: start before the first */
	s->cindex = ScanDirectionIsBackward(dir) ? s->ntuples : -1;
	return true;
}

/*
 * The next tuple in direction dir. Stepping from the last returned tuple
 * (cindex) makes a change of direction (cursors: FETCH PRIOR after NEXT)
 * return the neighbour of the current tuple, as heap does.
 */
static bool
next_tuple(ScanDesc *s, ScanDirection dir)
{
	if (!s->inited && !advance_page(s, dir))
		return false;
	int step = ScanDirectionIsBackward(dir) ? -1 : 1;
	for (;;)
	{
		for (int idx = s->cindex + step; idx >= 0 && idx < s->ntuples; idx += step)
		{
			s->cindex = idx;
			if (load_tuple(s, idx) && keys_match(s))
				return true;
		}
		if (!advance_page(s, dir))
		{
			s->ctup.t_data = nullptr;
			return false;
		}
	}
}

bool
scan_getnextslot(TableScanDesc scan, ScanDirection direction, TupleTableSlot *slot)
{
	auto *s = (ScanDesc *) scan;

	if (ScanDirectionIsNoMovement(direction))
	{
		if (s->ctup.t_data == nullptr)
		{
			ExecClearTuple(slot);
			return false;
		}
		store_current(s, &s->ctup, slot);
		return true;
	}
	if (!next_tuple(s, direction))
	{
		ExecClearTuple(slot);
		return false;
	}
	pgstat_count_heap_getnext(s->base.rs_rd);
	store_current(s, &s->ctup, slot);
	return true;
}

/* ========================================================================
 * TID range scans
 * ========================================================================
 */

void
scan_set_tidrange(TableScanDesc scan, ItemPointer mintid, ItemPointer maxtid)
{
	auto *s = (ScanDesc *) scan;
	ItemPointerData lo, hi;

	ItemPointerSet(&lo, 0, FirstOffsetNumber);
	ItemPointerSet(&hi, s->nblocks > 0 ? s->nblocks - 1 : 0, MaxOffsetNumber);
	if (ItemPointerCompare(mintid, &lo) > 0)
		ItemPointerCopy(mintid, &lo);
	if (ItemPointerCompare(maxtid, &hi) < 0)
		ItemPointerCopy(maxtid, &hi);

	if (s->nblocks == 0 || ItemPointerCompare(&hi, &lo) < 0)
	{
		/* empty range */
		s->startblock = 0;
		s->numblocks = 0;
	}
	else
	{
		s->startblock = ItemPointerGetBlockNumberNoCheck(&lo);
		s->numblocks = ItemPointerGetBlockNumberNoCheck(&hi) - s->startblock + 1;
	}
	s->mintid = lo;
	s->maxtid = hi;
}

bool
scan_getnextslot_tidrange(TableScanDesc scan, ScanDirection direction, TupleTableSlot *slot)
{
	auto *s = (ScanDesc *) scan;

	for (;;)
	{
		if (!next_tuple(s, direction))
		{
			ExecClearTuple(slot);
			return false;
		}
		if (ItemPointerCompare(&s->ctup.t_self, &s->mintid) < 0)
		{
			if (ScanDirectionIsBackward(direction))
			{
				ExecClearTuple(slot);
				return false;
			}
			continue;
		}
		if (ItemPointerCompare(&s->ctup.t_self, &s->maxtid) > 0)
		{
			if (ScanDirectionIsForward(direction))
			{
				ExecClearTuple(slot);
				return false;
			}
			continue;
		}
		break;
	}
	pgstat_count_heap_getnext(s->base.rs_rd);
	store_current(s, &s->ctup, slot);
	return true;
}

/* ========================================================================
 * Fetching single rows
 * ========================================================================
 */

bool
fetch(Relation rel, Snapshot snapshot, HeapTuple tuple, Buffer *userbuf, bool keep_buf)
{
	ItemPointer tid = &tuple->t_self;
	BlockNumber blkno = ItemPointerGetBlockNumber(tid);
	Buffer buffer = storage::read_data_block(rel, blkno);

	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(buffer);
	page_check(rel, blkno, page);
	OffsetNumber off = ItemPointerGetOffsetNumber(tid);
	ItemPointerData self = *tid;
	if (PageIsNew(page) || off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page) ||
		!tuple_at(rel, buffer, page, off, tuple))
	{
		UnlockReleaseBuffer(buffer);
		*userbuf = InvalidBuffer;
		tuple->t_data = nullptr;
		tuple->t_self = self;
		return false;
	}

	bool copied;
	bool valid = visible_version(rel, buffer, tuple, snapshot, true, &copied);
	if (valid)
		PredicateLockTID(rel, tid, snapshot, HeapTupleHeaderGetXmin(tuple->t_data));
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);

	if (valid)
	{
		*userbuf = buffer;
		return true;
	}
	if (keep_buf)
		*userbuf = buffer;
	else
	{
		ReleaseBuffer(buffer);
		*userbuf = InvalidBuffer;
		tuple->t_data = nullptr;
	}
	return false;
}

bool
fetch_row_version(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot)
{
	HeapTupleData tuple;
	Buffer buffer;

	tuple.t_self = *tid;
	if (fetch(rel, snapshot, &tuple, &buffer, false))
	{
		bool copied = !tuple_on_page(&tuple, buffer);
		store_tuple(rel, &tuple, slot, buffer, true);
		if (copied)
			release_copy(&tuple);
		return true;
	}
	return false;
}

bool
tuple_tid_valid(TableScanDesc scan, ItemPointer tid)
{
	auto *s = (ScanDesc *) scan;
	return ItemPointerIsValid(tid) && ItemPointerGetBlockNumber(tid) < s->nblocks;
}

bool
tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot, Snapshot snapshot)
{
	HeapTupleData tuple;
	Buffer buffer;

	/*
	 * The slot's version, judged where it is: on its page, or (an undo
	 * image, a copy) on its own. A version no longer anywhere was pruned
	 * or recycled: dead to every snapshot that may still run.
	 */
	if (!lock_slot_version(rel, slot, &tuple, &buffer))
	{
		/* an undo image (an encrypted table's opened one: its header as undo holds it) */
		return mvcc::satisfies(ExecFetchSlotHeapTuple(slot, false, nullptr), snapshot,
							   InvalidBuffer);
	}
	bool res = mvcc::satisfies(&tuple, snapshot, buffer);
	UnlockReleaseBuffer(buffer);
	return res;
}

void
get_latest_tid(TableScanDesc scan, ItemPointer tid)
{
	Relation rel = scan->rs_rd;
	Snapshot snapshot = scan->rs_snapshot;
	ItemPointerData ctid = *tid;
	TransactionId prior_xmax = InvalidTransactionId;

	for (;;)
	{
		BlockNumber blkno = ItemPointerGetBlockNumber(&ctid);
		Buffer buffer = storage::read_data_block(rel, blkno);
		LockBuffer(buffer, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buffer);
		page_check(rel, blkno, page);
		OffsetNumber off = ItemPointerGetOffsetNumber(&ctid);
		HeapTupleData tp;
		if (PageIsNew(page) || off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page) ||
			!tuple_at(rel, buffer, page, off, &tp))
		{
			UnlockReleaseBuffer(buffer);
			break;
		}
		if (TransactionIdIsValid(prior_xmax) && !succeeds(rel, &tp, prior_xmax))
		{
			UnlockReleaseBuffer(buffer);
			break;
		}
		HeapTupleData seen = tp;
		bool copied;
		bool valid = visible_version(rel, buffer, &seen, snapshot, true, &copied);
		if (copied)
			release_copy(&seen);
		if (valid)
			*tid = ctid;
		if ((tp.t_data->t_infomask & HEAP_XMAX_INVALID) ||
			mvcc::xmax_is_lock_only_or_aborted(tp.t_data) ||
			ItemPointerEquals(&tp.t_self, &tp.t_data->t_ctid))
		{
			UnlockReleaseBuffer(buffer);
			break;
		}
		ctid = tp.t_data->t_ctid;
		prior_xmax = mvcc::update_xid(tp.t_data);
		UnlockReleaseBuffer(buffer);
	}
}

/* ========================================================================
 * Heap-only version chains
 * ========================================================================
 */

bool
hot_search(Relation rel, Buffer buffer, ItemPointer tid, Snapshot snapshot, HeapTuple tuple,
		   bool *all_dead, bool first_call, TransactionId *latest_removed)
{
	Page page = BufferGetPage(buffer);
	BlockNumber blkno = storage::data_block(buffer);
	OffsetNumber maxoff = PageIsNew(page) ? 0 : PageGetMaxOffsetNumber(page);
	OffsetNumber off = ItemPointerGetOffsetNumber(tid);
	bool at_start = first_call;
	bool skip = !first_call;
	TransactionId prior = InvalidTransactionId;
	GlobalVisState *vistest = nullptr;

	if (all_dead)
		*all_dead = first_call;
	for (;;)
	{
		if (off < FirstOffsetNumber || off > maxoff)
			break;
		ItemId lp = PageGetItemId(page, off);
		if (!ItemIdIsNormal(lp))
		{
			if (ItemIdIsRedirected(lp) && at_start)
			{
				off = ItemIdGetRedirect(lp);
				at_start = false;
				continue;
			}
			break;
		}
		if (!tuple_at(rel, buffer, page, off, tuple))
			break;
		HeapTupleHeader t = tuple->t_data;
		if (at_start && HeapTupleHeaderIsHeapOnly(t))
			break; /* an index entry never points into the middle of a chain */
		if (TransactionIdIsValid(prior) && !TransactionIdEquals(prior, HeapTupleHeaderGetXmin(t)))
			break;

		if (!skip)
		{
			bool copied;
			if (visible_version(rel, buffer, tuple, snapshot, true, &copied))
			{
				ItemPointerSetOffsetNumber(tid, off);
				PredicateLockTID(rel, &tuple->t_self, snapshot,
								 HeapTupleHeaderGetXmin(tuple->t_data));
				if (all_dead)
					*all_dead = false;
				return true;
			}
		}
		skip = false;
		/* a row with a chain is never all dead: its older versions may be needed */
		if (all_dead && storage::tuple_has_undo(t))
			*all_dead = false;
		if (all_dead && *all_dead)
		{
			if (vistest == nullptr)
				vistest = GlobalVisTestFor(rel);
			if (mvcc::satisfies_vacuum_vis(tuple, vistest, buffer) != HEAPTUPLE_DEAD)
				*all_dead = false;
			else if (latest_removed != nullptr)
				mvcc::advance_latest_removed_xid(t, latest_removed);
		}
		if (!HeapTupleHeaderIsHotUpdated(t) || ItemPointerGetBlockNumber(&t->t_ctid) != blkno)
			break;
		off = ItemPointerGetOffsetNumber(&t->t_ctid);
		at_start = false;
		prior = mvcc::update_xid(t);
	}
	return false;
}

void
get_root_offsets(Page page, OffsetNumber *roots)
{
	OffsetNumber maxoff = PageIsNew(page) ? 0 : PageGetMaxOffsetNumber(page);

	memset(roots, 0, sizeof(OffsetNumber) * (MaxHeapTuplesPerPage + 1));
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId lp = PageGetItemId(page, off);
		OffsetNumber next;
		TransactionId prior = InvalidTransactionId;

		if (ItemIdIsNormal(lp))
		{
			auto *t = (HeapTupleHeader) PageGetItem(page, lp);
			if (HeapTupleHeaderIsHeapOnly(t))
				continue;
			roots[off] = off;
			if (!HeapTupleHeaderIsHotUpdated(t))
				continue;
			next = ItemPointerGetOffsetNumber(&t->t_ctid);
			prior = mvcc::update_xid(t);
		}
		else if (ItemIdIsRedirected(lp))
			next = ItemIdGetRedirect(lp);
		else
			continue;

		for (;;)
		{
			if (next < FirstOffsetNumber || next > maxoff)
				break;
			ItemId lp2 = PageGetItemId(page, next);
			if (!ItemIdIsNormal(lp2))
				break;
			auto *t2 = (HeapTupleHeader) PageGetItem(page, lp2);
			if (!HeapTupleHeaderIsHeapOnly(t2))
				break;
			if (TransactionIdIsValid(prior) &&
				!TransactionIdEquals(prior, HeapTupleHeaderGetXmin(t2)))
				break;
			roots[next] = off;
			if (!HeapTupleHeaderIsHotUpdated(t2))
				break;
			prior = mvcc::update_xid(t2);
			next = ItemPointerGetOffsetNumber(&t2->t_ctid);
		}
	}
}

/* ========================================================================
 * Index fetch
 * ========================================================================
 */

struct IndexFetch
{
	IndexFetchTableData base;
	Buffer cbuf;
	OpenedGroups *groups; /* encrypted relations: opened sealed groups */
	bool values_deferred; /* as ScanDesc's */
};

IndexFetchTableData *
index_fetch_begin(Relation rel)
{
	storage::check_storage(rel);
	/* keys loaded before any buffer lock */
	const crypto::Cipher *cipher = crypto::relation_cipher(rel);
	auto *f = (IndexFetch *) palloc0(sizeof(IndexFetch));
	f->groups = cipher != nullptr ? opened_groups_create(CurrentMemoryContext) : nullptr;
	opened_groups_use_cache(f->groups, rel, false, 0);
	f->base.rel = rel;
	f->cbuf = InvalidBuffer;
	return &f->base;
}

void
index_fetch_reset(IndexFetchTableData *scan)
{
	auto *f = (IndexFetch *) scan;
	if (BufferIsValid(f->cbuf))
	{
		ReleaseBuffer(f->cbuf);
		f->cbuf = InvalidBuffer;
	}
}

void
index_fetch_defer_values(IndexFetchTableData *scan)
{
	((IndexFetch *) scan)->values_deferred = true;
}

void
index_fetch_end(IndexFetchTableData *scan)
{
	index_fetch_reset(scan);
	opened_groups_free(((IndexFetch *) scan)->groups);
	pfree(scan);
}

bool
index_fetch_tuple(IndexFetchTableData *scan, ItemPointer tid, Snapshot snapshot,
				  TupleTableSlot *slot, bool *call_again, bool *all_dead)
{
	auto *f = (IndexFetch *) scan;
	Relation rel = f->base.rel;
	BlockNumber blkno = ItemPointerGetBlockNumber(tid);
	HeapTupleData found_tuple;
	HeapTuple tuple = &found_tuple;

	if (!*call_again)
	{
		Buffer prev = f->cbuf;
		f->cbuf = ReleaseAndReadBuffer(f->cbuf, rel, storage::phys_block(blkno));
		if (prev != f->cbuf)
			prune_opt(rel, f->cbuf);
	}

	LockBuffer(f->cbuf, BUFFER_LOCK_SHARE);
	page_check(rel, blkno, BufferGetPage(f->cbuf));
	bool found = hot_search(rel, f->cbuf, tid, snapshot, tuple, all_dead, !*call_again);
	LockBuffer(f->cbuf, BUFFER_LOCK_UNLOCK);

	if (found)
	{
		/* only a non-MVCC snapshot can see more than one member of a chain */
		*call_again = !IsMVCCSnapshot(snapshot);
		bool copied = !tuple_on_page(tuple, f->cbuf);
		store_tuple(f->base.rel, tuple, slot, f->cbuf, false, f->groups, false,
					!f->values_deferred);
		if (copied)
			release_copy(tuple);
	}
	else
		*call_again = false;
	return found;
}

/* ========================================================================
 * ANALYZE
 * ========================================================================
 */

bool
scan_analyze_next_block(TableScanDesc scan, BlockNumber blockno, BufferAccessStrategy bstrategy)
{
	auto *s = (ScanDesc *) scan;

	/*
	 * ANALYZE samples from 0 to RelationGetNumberOfBlocks(), the data
	 * blocks (rdb_relation_size); a number past them would be the file's
	 * end, never the metapage: it counts as an empty sampled block.
	 */
	if (s->valuefree != nullptr)
		crypto::value_free_block(s->valuefree);
	if (blockno >= storage::data_nblocks(scan->rs_rd))
		return false;
	s->cblock = blockno;
	s->cbuf = storage::read_data_block(scan->rs_rd, blockno, bstrategy);
	s->plainblock = InvalidBlockNumber; /* a new visit: rows opened again */
	s->plainbatch = false;
	s->cindex = FirstOffsetNumber;
	LockBuffer(s->cbuf, BUFFER_LOCK_SHARE);
	page_check(scan->rs_rd, blockno, BufferGetPage(s->cbuf));
	return true;
}

bool
scan_analyze_next_tuple(TableScanDesc scan, TransactionId oldest_xmin, double *liverows,
						double *deadrows, TupleTableSlot *slot)
{
	auto *s = (ScanDesc *) scan;
	Page page = BufferGetPage(s->cbuf);
	OffsetNumber maxoff = PageIsNew(page) ? 0 : PageGetMaxOffsetNumber(page);
	/*
	 * An encrypted table's rows are counted, not returned
	 * (rustydb.tde_statistics): under value_free they go to the scan's own
	 * sample.
	 */
	bool withhold = s->sample != crypto::AnalyzeSample::Rows;

	for (; s->cindex <= maxoff; s->cindex++)
	{
		ItemId lp = PageGetItemId(page, s->cindex);
		if (ItemIdIsDead(lp))
		{
			*deadrows += 1;
			continue;
		}
		HeapTuple t = &s->ctup;
		if (!tuple_at(scan->rs_rd, s->cbuf, page, s->cindex, t))
			continue;
		/*
		 * An in-place version whose creator aborted or still runs stands
		 * for its predecessor, as heap's old version would (a copy, freed
		 * with the page's copies).
		 */
		bool copied = false;
		if (storage::tuple_has_undo(t->t_data))
		{
			chain_reset(s);
			MemoryContext old = MemoryContextSwitchTo(chain_cxt(s));
			bool found = effective_version(scan->rs_rd, t, true, &copied);
			MemoryContextSwitchTo(old);
			if (!found)
				continue;
		}

		bool sample = false;
		switch (mvcc::satisfies_vacuum(t, oldest_xmin, copied ? InvalidBuffer : s->cbuf))
		{
			case HEAPTUPLE_LIVE:
				sample = true;
				*liverows += 1;
				break;
			case HEAPTUPLE_DEAD:
			case HEAPTUPLE_RECENTLY_DEAD:
				*deadrows += 1;
				break;
			case HEAPTUPLE_INSERT_IN_PROGRESS:
				if (TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(t->t_data)))
				{
					sample = true;
					*liverows += 1;
				}
				break;
			case HEAPTUPLE_DELETE_IN_PROGRESS:
				if (TransactionIdIsCurrentTransactionId(mvcc::update_xid(t->t_data)))
					*deadrows += 1;
				else
				{
					sample = true;
					*liverows += 1;
				}
				break;
		}
		if (sample && s->valuefree != nullptr)
		{
			store_current(s, t, slot, true);
			crypto::value_free_row(s->valuefree, slot);
			continue;
		}
		if (sample && !withhold)
		{
			store_current(s, t, slot, true);
			s->cindex++;
			/* the buffer stays locked until the page is done */
			return true;
		}
	}
	UnlockReleaseBuffer(s->cbuf);
	s->cbuf = InvalidBuffer;
	ExecClearTuple(slot);
	return false;
}

/* ========================================================================
 * Bitmap scans
 * ========================================================================
 */

bool
scan_bitmap_next_block(TableScanDesc scan, TBMIterateResult *tbmres)
{
	auto *s = (ScanDesc *) scan;
	Relation rel = scan->rs_rd;
	BlockNumber block = tbmres->blockno;
	Snapshot snapshot = scan->rs_snapshot;

	s->cindex = 0;
	s->ntuples = 0;
	if (block >= s->nblocks)
		return false;

	if (BufferIsValid(s->cbuf))
		ReleaseBuffer(s->cbuf);
	s->cbuf = storage::read_data_block(rel, block);
	s->plainblock = InvalidBlockNumber; /* a new visit: rows opened again */
	s->plainbatch = false;
	s->cblock = block;
	prune_opt(rel, s->cbuf);

	LockBuffer(s->cbuf, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(s->cbuf);
	page_check(rel, block, page);
	OffsetNumber maxoff = PageIsNew(page) ? 0 : PageGetMaxOffsetNumber(page);
	int n = 0;
	chain_reset(s);
	MemoryContext old = MemoryContextSwitchTo(chain_cxt(s));
	auto consider = [&](OffsetNumber off) {
		HeapTupleData tup;
		if (off < FirstOffsetNumber || off > maxoff || !tuple_at(rel, s->cbuf, page, off, &tup))
			return;
		bool copied;
		if (!visible_version(rel, s->cbuf, &tup, snapshot, true, &copied))
			return;
		PredicateLockTID(rel, &tup.t_self, snapshot, HeapTupleHeaderGetXmin(tup.t_data));
		keep_row(s, n++, off, PageGetItemId(page, off), copied ? chain_keep(s, &tup) : nullptr);
	};
	if (tbmres->ntuples >= 0)
	{
		/* exact: the offsets are index entries, roots of version chains */
		for (int i = 0; i < tbmres->ntuples; i++)
		{
			ItemPointerData tid;
			HeapTupleData tup;
			ItemPointerSet(&tid, block, tbmres->offsets[i]);
			if (hot_search(rel, s->cbuf, &tid, snapshot, &tup, nullptr, true))
			{
				OffsetNumber off = ItemPointerGetOffsetNumber(&tid);
				bool copied =
					tup.t_data != (HeapTupleHeader) PageGetItem(page, PageGetItemId(page, off));
				keep_row(s, n++, off, PageGetItemId(page, off),
						 copied ? chain_keep(s, &tup) : nullptr);
			}
		}
	}
	else
	{
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
			consider(off);
	}
	MemoryContextSwitchTo(old);
	LockBuffer(s->cbuf, BUFFER_LOCK_UNLOCK);
	s->ntuples = n;
	s->plainbatch = true; /* the visible rows: opened at once (plain_row) */
	return n > 0;
}

bool
scan_bitmap_next_tuple(TableScanDesc scan, TBMIterateResult *tbmres, TupleTableSlot *slot)
{
	auto *s = (ScanDesc *) scan;

	if (s->cindex < 0 || s->cindex >= s->ntuples)
		return false;
	kept_row(s, s->cindex++, &s->ctup);
	pgstat_count_heap_fetch(scan->rs_rd);
	store_current(s, &s->ctup, slot);
	return true;
}

/* ========================================================================
 * TABLESAMPLE
 * ========================================================================
 */

bool
scan_sample_next_block(TableScanDesc scan, SampleScanState *scanstate)
{
	auto *s = (ScanDesc *) scan;
	TsmRoutine *tsm = scanstate->tsmroutine;
	BlockNumber block;

	if (s->nblocks == 0)
		return false;
	if (tsm->NextSampleBlock)
		block = tsm->NextSampleBlock(scanstate, s->nblocks);
	else if (s->cblock == InvalidBlockNumber)
		block = s->startblock;
	else
	{
		block = s->cblock + 1;
		if (block >= s->nblocks)
			block = 0;
		if (scan->rs_flags & SO_ALLOW_SYNC)
			ss_report_location(scan->rs_rd, block);
		if (block == s->startblock)
			block = InvalidBlockNumber;
	}
	if (!BlockNumberIsValid(block))
	{
		if (BufferIsValid(s->cbuf))
			ReleaseBuffer(s->cbuf);
		s->cbuf = InvalidBuffer;
		s->cblock = InvalidBlockNumber;
		s->inited = false;
		return false;
	}
	collect_page(s, block);
	s->inited = true;
	return true;
}

bool
scan_sample_next_tuple(TableScanDesc scan, SampleScanState *scanstate, TupleTableSlot *slot)
{
	auto *s = (ScanDesc *) scan;
	TsmRoutine *tsm = scanstate->tsmroutine;
	Page page = BufferGetPage(s->cbuf);
	OffsetNumber maxoff = PageIsNew(page) ? 0 : PageGetMaxOffsetNumber(page);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		OffsetNumber off = tsm->NextSampleTuple(scanstate, s->cblock, maxoff);
		if (!OffsetNumberIsValid(off))
		{
			ExecClearTuple(slot);
			return false;
		}
		/* candidates are sorted: binary search */
		int lo = 0, hi = s->ntuples - 1, found = -1;
		while (lo <= hi)
		{
			int mid = (lo + hi) / 2;
			if (s->vistuples[mid] == off)
			{
				found = mid;
				break;
			}
			if (s->vistuples[mid] < off)
				lo = mid + 1;
			else
				hi = mid - 1;
		}
		if (found < 0 || !load_tuple(s, found))
			continue;
		pgstat_count_heap_getnext(scan->rs_rd);
		store_current(s, &s->ctup, slot);
		return true;
	}
}

} /* namespace rustydb::am */
