/*-------------------------------------------------------------------------
 *
 * changes.cpp
 *	  The page changes of rustydb's WAL records (see changes.h), shared by
 *	  the original change in src/am and its redo in src/wal.
 *
 * Nothing here logs, allocates or raises a recoverable error: every
 * function runs in a critical section (or in redo) on an exclusively
 * locked buffer, which is asserted, as are the states of the line
 * pointers each change expects. A change that cannot be made (a tuple
 * that does not fit) is a PANIC, as in PostgreSQL's heap.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/storage/changes.h"

#include "rustydb/storage/undo.h"

#include "rustydb/storage/buffer.h"
#include "rustydb/storage/page.h"

namespace rustydb::storage {

/*
 * The page of buf, for a change: locked exclusively, in a critical
 * section or in redo, a rustydb data page of a format this build writes
 * or reads.
 */
static Page
page_for_change(Buffer buf)
{
	Assert(BufferIsValid(buf));
	Assert(buffer_is_locked_exclusive(buf));
	Assert(in_page_change());
	Page page = BufferGetPage(buf);
	Assert(!PageIsNew(page));
	Assert(page_is_valid(page));
	return page;
}

/* The tuple header at off, which must be an LP_NORMAL item of the page. */
static HeapTupleHeader
normal_tuple(Page page, OffsetNumber off)
{
	Assert(off >= FirstOffsetNumber && off <= PageGetMaxOffsetNumber(page));
	ItemId lp = PageGetItemId(page, off);
	Assert(ItemIdIsNormal(lp));
	Assert(ItemIdGetLength(lp) >= kTupleHeaderSize);
	return (HeapTupleHeader) PageGetItem(page, lp);
}

/* The xmax fields of a header: the part of a tuple's state freezing and row locks change. */
static void
set_xmax_fields(HeapTupleHeader t, TransactionId xmax, uint16 infomask, uint16 infomask2)
{
	Assert(!(infomask & HEAP_MOVED)); /* pre-9.0 VACUUM FULL's bits: never on a rustydb tuple */
	t->t_infomask = infomask;
	t->t_infomask2 = infomask2;
	HeapTupleHeaderSetXmax(t, xmax);
}

/* ------------------------------------------------------------------------
 * Placing a tuple
 * ------------------------------------------------------------------------
 */

OffsetNumber
next_tuple_offset(Buffer buf)
{
	Page page = page_for_change(buf);
	OffsetNumber limit = OffsetNumberNext(PageGetMaxOffsetNumber(page));

	if (PageHasFreeLinePointers(page))
	{
		/* the earliest unused one, as PageAddItem chooses */
		for (OffsetNumber off = FirstOffsetNumber; off < limit; off++)
		{
			ItemId lp = PageGetItemId(page, off);
			if (!ItemIdIsUsed(lp) && !ItemIdHasStorage(lp))
				return off;
		}
		PageClearHasFreeLinePointers(page); /* the hint was stale */
	}
	return limit;
}

void
place_tuple(Buffer buf, OffsetNumber off, const void *tuple, Size len)
{
	Page page = page_for_change(buf);
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	bool new_lp PG_USED_FOR_ASSERTS_ONLY = off > maxoff;

	Assert(len >= kTupleHeaderSize && len <= kMaxTupleSize);
	Assert(off >= FirstOffsetNumber && off <= OffsetNumberNext(maxoff));
	Assert(new_lp || !ItemIdIsUsed(PageGetItemId(page, off)));
	Assert(MAXALIGN(len) + (new_lp ? sizeof(ItemIdData) : 0) <= PageGetExactFreeSpace(page));

	/* overwrite: an unused line pointer, or the one after the last */
	if (PageAddItem(page, (Item) const_cast<void *>(tuple), len, off, true, true) != off)
		elog(PANIC, "rustydb: failed to add a tuple of %zu bytes at offset %u of block %u",
			 (size_t) len, (unsigned) off, BufferGetBlockNumber(buf));
}

/* ------------------------------------------------------------------------
 * Transaction fields
 * ------------------------------------------------------------------------
 */

TupleXact
tuple_xact(HeapTupleHeader t)
{
	TupleXact x;
	x.xmin = HeapTupleHeaderGetRawXmin(t);
	x.xmax = HeapTupleHeaderGetRawXmax(t);
	x.infomask = t->t_infomask;
	x.infomask2 = t->t_infomask2;
	x.ctid = t->t_ctid;
	return x;
}

void
set_tuple_xact(Buffer buf, OffsetNumber off, const TupleXact &x)
{
	Page page = page_for_change(buf);
	HeapTupleHeader t = normal_tuple(page, off);

	/* a valid xmax, or none at all */
	Assert(TransactionIdIsValid(x.xmax) || (x.infomask & HEAP_XMAX_INVALID));
	set_xmax_fields(t, x.xmax, x.infomask, x.infomask2);
	HeapTupleHeaderSetXmin(t, x.xmin);
	t->t_ctid = x.ctid;
}

/* ------------------------------------------------------------------------
 * Freezing
 * ------------------------------------------------------------------------
 */

void
freeze_tuple(HeapTupleHeader t, const FreezeEntry &e)
{
	set_xmax_fields(t, e.xmax, e.infomask, e.infomask2);
}

void
freeze_execute(Buffer buf, const FreezeEntry *entries, int n)
{
	Page page = page_for_change(buf);

	Assert(n > 0 && n <= kMaxTuplesPerPage);
	for (int i = 0; i < n; i++)
		freeze_tuple(normal_tuple(page, entries[i].offnum), entries[i]);
}

/* ------------------------------------------------------------------------
 * Pruning and VACUUM
 * ------------------------------------------------------------------------
 */

#ifdef USE_ASSERT_CHECKING
/* Is the item at off a chain root: a redirect, or a tuple that is not heap-only? */
static bool
is_root(Page page, OffsetNumber off)
{
	ItemId lp = PageGetItemId(page, off);
	return ItemIdIsRedirected(lp) ||
		   (ItemIdIsNormal(lp) &&
			!HeapTupleHeaderIsHeapOnly((HeapTupleHeader) PageGetItem(page, lp)));
}

/* Is the item at off a heap-only version (never a root)? */
static bool
is_heap_only(Page page, OffsetNumber off)
{
	ItemId lp = PageGetItemId(page, off);
	return ItemIdIsNormal(lp) && HeapTupleHeaderIsHeapOnly((HeapTupleHeader) PageGetItem(page, lp));
}
#endif

/*
 * Remove the undo pointer of the in-place version at off: its header and
 * null bitmap move 8 bytes up over the pointer, the payload stays where it
 * is, and the line pointer follows the header. The 8 bytes before the new
 * header are left for the compaction that follows. The caller holds a
 * cleanup lock (or replays): no reader points into the tuple.
 */
static void
strip_undo(Buffer buf, Page page, OffsetNumber off)
{
	ItemId lp = PageGetItemId(page, off);
	if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page) || !ItemIdIsNormal(lp) ||
		ItemIdGetLength(lp) < kTupleHeaderSize + kUndoExtSize ||
		!tuple_has_undo((HeapTupleHeader) PageGetItem(page, lp)) ||
		!tuple_hoff_is_valid((HeapTupleHeader) PageGetItem(page, lp)))
		elog(PANIC, "rustydb: no undo pointer to remove at (%u,%u)", data_block(buf),
			 (unsigned) off);
	unsigned at = ItemIdGetOffset(lp), len = ItemIdGetLength(lp);
	auto *t = (HeapTupleHeader) PageGetItem(page, lp);
	uint8 hoff = (uint8) (t->t_hoff - kUndoExtSize);
	memmove(page + at + kUndoExtSize, page + at, hoff);
	memset(page + at, 0, kUndoExtSize);
	t = (HeapTupleHeader) (page + at + kUndoExtSize);
	t->t_hoff = hoff;
	t->t_infomask2 &= ~kTupleHasUndo;
	Assert(tuple_hoff_is_valid(t));
	ItemIdSetNormal(lp, at + kUndoExtSize, len - kUndoExtSize);
}

void
prune_execute(Buffer buf, const PruneChanges &c)
{
	Page page = page_for_change(buf);
	OffsetNumber maxoff PG_USED_FOR_ASSERTS_ONLY = PageGetMaxOffsetNumber(page);

	/* no line pointer change: a compaction of bytes in-place versions left behind */
	Assert(c.nredirected + c.ndead + c.nunused + c.nstripped > 0 || page_has_garbage(page));
	Assert(c.nredirected >= 0 && c.ndead >= 0 && c.nunused >= 0 && c.nstripped >= 0);
	for (int i = 0; i < c.nredirected; i++)
	{
		OffsetNumber from = c.redirected[2 * i], to = c.redirected[2 * i + 1];
		Assert(from >= FirstOffsetNumber && from <= maxoff);
		Assert(to >= FirstOffsetNumber && to <= maxoff && to != from);
		/* a root now points at the first version of its chain that survives */
		Assert(is_root(page, from));
		Assert(is_heap_only(page, to));
		ItemIdSetRedirect(PageGetItemId(page, from), to);
	}
	for (int i = 0; i < c.ndead; i++)
	{
		/* the root of a chain none of whose versions survives */
		Assert(c.dead[i] >= FirstOffsetNumber && c.dead[i] <= maxoff);
		Assert(is_root(page, c.dead[i]));
		ItemIdSetDead(PageGetItemId(page, c.dead[i]));
	}
	for (int i = 0; i < c.nunused; i++)
	{
		/* a dead heap-only version: no index entry points at it */
		Assert(c.unused[i] >= FirstOffsetNumber && c.unused[i] <= maxoff);
		Assert(is_heap_only(page, c.unused[i]));
		ItemIdSetUnused(PageGetItemId(page, c.unused[i]));
	}
	/*
	 * Compaction drops the bytes no line pointer covers: previous versions
	 * still on the page go with them (pruning moved the ones a snapshot may
	 * need to undo first), so the pointers naming them end the chains.
	 */
	for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
	{
		ItemId lp = PageGetItemId(page, off);
		if (!ItemIdIsNormal(lp))
			continue;
		auto t = (HeapTupleHeader) PageGetItem(page, lp);
		if (undo_ptr_in_page(tuple_undo_ptr(t)))
			set_undo_ptr_at(page, (uint16) ItemIdGetOffset(lp), kInvalidUndoPtr);
	}
	for (int i = 0; i < c.nstripped; i++)
		strip_undo(buf, page, c.stripped[i]);
	PageRepairFragmentation(page);
	((PageSpecial *) (page + ((PageHeader) page)->pd_special))->flags &= ~kPageGarbage;
	apply_group_changes(page, c.group_changes, c.group_changes_len);
}

void
vacuum_execute(Buffer buf, const OffsetNumber *unused, int nunused)
{
	Page page = page_for_change(buf);

	Assert(nunused > 0 && nunused <= kMaxTuplesPerPage);
	for (int i = 0; i < nunused; i++)
	{
		Assert(unused[i] >= FirstOffsetNumber && unused[i] <= PageGetMaxOffsetNumber(page));
		ItemId lp = PageGetItemId(page, unused[i]);
		/* a dead line pointer pruning left, its index entries removed since */
		Assert(ItemIdIsDead(lp) && !ItemIdHasStorage(lp));
		ItemIdSetUnused(lp);
	}
	PageTruncateLinePointerArray(page);
}

/* ------------------------------------------------------------------------
 * All-visible
 * ------------------------------------------------------------------------
 */

void
page_set_all_visible(Buffer buf)
{
	Page page = page_for_change(buf);
	PageSetAllVisible(page);
}

void
page_clear_all_visible(Buffer buf)
{
	Assert(buffer_is_locked_exclusive(buf));
	Assert(in_page_change());
	Page page = BufferGetPage(buf);
	if (!PageIsNew(page))
		PageClearAllVisible(page);
}

/* ------------------------------------------------------------------------
 * Undo stores
 * ------------------------------------------------------------------------
 */

/* An undo store page, for a change: locked exclusively, in a critical section or redo. */
static Page
undo_page_for_change(Buffer buf)
{
	Assert(BufferIsValid(buf));
	Assert(buffer_is_locked_exclusive(buf));
	Assert(in_page_change());
	return BufferGetPage(buf);
}

void
undo_meta_change(Buffer meta, Oid table_oid, uint16 flags, uint32 capacity, uint64 base)
{
	undo_meta_init(undo_page_for_change(meta), table_oid, flags, capacity, base);
}

void
undo_new_page(Buffer meta, Buffer page, uint64 lpn)
{
	Page mp = undo_page_for_change(meta);
	Assert(undo_meta_get(mp, nullptr) != nullptr);
	UndoMetaData *m = undo_meta_data(mp);
	Assert(lpn == undo_next_page(m) && !undo_ring_full(m));
	Assert(BufferGetBlockNumber(page) == undo_block_for(m, lpn));
	undo_page_init(undo_page_for_change(page), lpn);
	m->insert = undo_position(lpn, 0);
}

void
undo_discard_change(Buffer meta, uint64 discard, TransactionId discard_xid)
{
	Page mp = undo_page_for_change(meta);
	Assert(undo_meta_get(mp, nullptr) != nullptr);
	UndoMetaData *m = undo_meta_data(mp);
	Assert(undo_offset_of(discard) == 0 && discard >= m->discard &&
		   undo_page_of(discard) <= undo_next_page(m));
	m->discard = discard;
	if (TransactionIdIsValid(discard_xid))
		m->discard_xid = discard_xid;
}

/* ------------------------------------------------------------------------
 * In-place versions
 * ------------------------------------------------------------------------
 */

bool
inplace_fits(Page page, Size len)
{
	auto *ph = (PageHeader) page;
	return ph->pd_upper >= ph->pd_lower && (Size) (ph->pd_upper - ph->pd_lower) >= MAXALIGN(len);
}

void
place_inplace(Buffer buf, OffsetNumber off, const void *tuple, Size len)
{
	Page page = page_for_change(buf);
	auto *ph = (PageHeader) page;
	HeapTupleHeader old PG_USED_FOR_ASSERTS_ONLY = normal_tuple(page, off);

	Assert(len >= kTupleHeaderSize && len <= kMaxTupleSize);
	Assert(tuple_has_undo((HeapTupleHeader) tuple) || tuple_has_undo(old));
	if (!inplace_fits(page, len))
		elog(PANIC, "rustydb: an in-place version of %zu bytes does not fit block %u", (size_t) len,
			 BufferGetBlockNumber(buf));
	auto upper = (LocationIndex) (ph->pd_upper - MAXALIGN(len));
	memcpy(page + upper, tuple, len);
	if (MAXALIGN(len) > len)
		memset(page + upper + len, 0, MAXALIGN(len) - len);
	ph->pd_upper = upper;
	ItemIdSetNormal(PageGetItemId(page, off), upper, len);
	((PageSpecial *) (page + ph->pd_special))->flags |= kPageGarbage;
}

void
place_inplace_local(Buffer buf, OffsetNumber off, const char *oldhdr, const void *tuple, Size len)
{
	Page page = page_for_change(buf);
	ItemId lp = PageGetItemId(page, off);
	HeapTupleHeader old = normal_tuple(page, off);
	UndoPtr p = in_page_ptr((uint16) ItemIdGetOffset(lp), (uint16) ItemIdGetLength(lp));
	if (tuple_undo_ptr((HeapTupleHeader) tuple) != p)
		elog(PANIC,
			 "rustydb: the in-place version of item %u of block %u does not name the "
			 "version it replaces",
			 (unsigned) off, BufferGetBlockNumber(buf));
	memcpy(old, oldhdr, kTupleHeaderSize);
	place_inplace(buf, off, tuple, len);
}

void
move_to_undo(Buffer buf, uint16 offset, UndoPtr p)
{
	Page page = page_for_change(buf);
	auto *ph = (PageHeader) page;
	auto t = (HeapTupleHeader) (page + offset);
	if (offset != MAXALIGN(offset) || offset < ph->pd_upper ||
		offset + kTupleHeaderSize > ph->pd_special || t->t_hoff > ph->pd_special - offset ||
		!tuple_has_undo(t) || !tuple_hoff_is_valid(t) || !undo_ptr_in_page(tuple_undo_ptr(t)) ||
		undo_ptr_in_page(p))
		elog(PANIC,
			 "rustydb: no version with a previous version on the page at offset %u of block %u",
			 (unsigned) offset, BufferGetBlockNumber(buf));
	set_undo_ptr_at(page, offset, p);
}

void
repair_inplace(Buffer buf, OffsetNumber off, const void *tuple, Size len)
{
	Page page = page_for_change(buf);
	ItemId lp = PageGetItemId(page, off);
	HeapTupleHeader old PG_USED_FOR_ASSERTS_ONLY = normal_tuple(page, off);

	Assert(tuple_has_undo(old));
	Size oldlen = ItemIdGetLength(lp);
	if (MAXALIGN(len) > MAXALIGN(oldlen))
	{
		place_inplace(buf, off, tuple, len);
		return;
	}
	unsigned at = ItemIdGetOffset(lp);
	memcpy(page + at, tuple, len);
	memset(page + at + len, 0, MAXALIGN(oldlen) - len);
	ItemIdSetNormal(lp, at, len);
}

void
undo_append_change(Buffer buf, uint16 offset, const UndoRecordHeader &hdr, const void *image,
				   Size image_len)
{
	Page page = undo_page_for_change(buf);
	const char *why = nullptr;

	if (!undo_page_check(page, undo_page_lpn(page), &why) ||
		MAXALIGN(((PageHeader) page)->pd_lower) != offset)
		elog(PANIC, "rustydb undo: record expected at offset %u of undo block %u (%s)",
			 (unsigned) offset, BufferGetBlockNumber(buf), why ? why : "another offset is next");
	undo_append(page, hdr, image, image_len);
}

} /* namespace rustydb::storage */
