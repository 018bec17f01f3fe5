/*-------------------------------------------------------------------------
 *
 * hio.cpp
 *	  Finding a rustydb page with room for a new tuple.
 *
 * Order of preference: the bulk-insert state's current page, the
 * relation's cached target block, a page the free space map offers, the
 * last page, and finally a new page at the end of the relation. Pages
 * keep fillfactor's share free for updates of their own tuples. A relation
 * without any block has no metapage yet: buffer_for_tuple says so and the
 * access method creates it (am::get_buffer_for_tuple: the metapage's flags
 * come from the key catalog, and its record is the access method's), so
 * this layer needs neither. Block numbers here are physical (the free
 * space map's and the target block's); page_check and the caller get data
 * block numbers.
 *
 * The pointer reserve: a row's first in-place update lengthens it by its
 * undo pointer, which only pruning can take back, and only once every
 * snapshot is past the update. A page of a table that updates in place
 * keeps that room for each of its rows that has no pointer yet, so that
 * a held snapshot does not push the rows' updates out of place.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/storage/page.h"
#include "rustydb/storage/undo.h"

namespace rustydb::storage {

/*
 * Every row gains exactly kUndoExtSize: t_hoff is MAXALIGN(23 + null
 * bitmap + 8) with the pointer, MAXALIGN(23 + null bitmap) without, and
 * MAXALIGN(x + 8) = MAXALIGN(x) + 8 whenever the alignment divides 8.
 */
static_assert(kUndoExtSize % MAXIMUM_ALIGNOF == 0, "a pointer keeps the alignment");

Size
page_pointer_room(Page page)
{
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	Size rows = 0;
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		ItemId lp = PageGetItemId(page, off);
		if (ItemIdIsNormal(lp) && !tuple_has_undo((HeapTupleHeader) PageGetItem(page, lp)))
			rows++;
	}
	return rows * kUndoExtSize;
}

Size
page_fsm_space(Page page, bool pointers)
{
	Size avail = page_free_space(page);
	if (!pointers || avail == 0)
		return avail;
	Size rows = page_pointer_room(page);
	return avail > rows ? avail - rows : 0;
}

/*
 * Whether a page with avail bytes free holds a new row needing need bytes
 * (its MAXALIGNed length, the reserve and its own pointer) beside its
 * rows' pointers. The bound first (every line pointer a row without
 * pointer), which decides for a page that is not nearly full without
 * reading a tuple; the exact count only near the end of a page.
 */
static bool
fits_beside_pointers(Page page, Size avail, Size need)
{
	if (avail < need)
		return false;
	if (avail - need >= (Size) PageGetMaxOffsetNumber(page) * kUndoExtSize)
		return true;
	return avail - need >= page_pointer_room(page);
}

bool
check_metapage(Relation rel)
{
	if (phys_nblocks(rel) == 0)
		return false;
	Buffer buf = ReadBuffer(rel, kMetaBlock);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	bool is_new = PageIsNew(BufferGetPage(buf));
	const char *why = nullptr;
	if (!is_new && meta_get(BufferGetPage(buf), &why) == nullptr)
	{
		bool heap = page_is_heap(BufferGetPage(buf));
		UnlockReleaseBuffer(buf);
		if (heap)
			heap_pages_error(rel, kMetaBlock);
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
						errmsg("invalid rustydb metapage in relation \"%s\"",
							   RelationGetRelationName(rel)),
						errdetail("Block 0 of the file: %s.", why),
						errhint("Restore the table from a backup; rustydb.verify_table() lists the "
								"damaged pages.")));
	}
	UnlockReleaseBuffer(buf);
	return is_new;
}

static Buffer
read_bi(Relation rel, BlockNumber blkno, BulkInsertState bistate)
{
	if (bistate == nullptr)
		return ReadBuffer(rel, blkno);

	if (BufferIsValid(bistate->current_buf))
	{
		if (blkno == BufferGetBlockNumber(bistate->current_buf)) /* physical, both */
		{
			IncrBufferRefCount(bistate->current_buf);
			return bistate->current_buf;
		}
		ReleaseBuffer(bistate->current_buf);
		bistate->current_buf = InvalidBuffer;
	}
	Buffer buf = ReadBufferExtended(rel, MAIN_FORKNUM, blkno, RBM_NORMAL, bistate->strategy);
	IncrBufferRefCount(buf);
	bistate->current_buf = buf;
	return buf;
}

/* Add a new data page at the end of rel (which has its metapage), locked exclusively. */
static Buffer
extend(Relation rel, BulkInsertState bistate)
{
	bool need_lock = !RELATION_IS_LOCAL(rel);

	if (need_lock)
		LockRelationForExtension(rel, ExclusiveLock);
	Assert(phys_nblocks(rel) > kMetaBlock); /* never the metapage */
	Buffer buf;
	if (bistate != nullptr)
	{
		if (BufferIsValid(bistate->current_buf))
			ReleaseBuffer(bistate->current_buf);
		buf = ReadBufferExtended(rel, MAIN_FORKNUM, P_NEW, RBM_ZERO_AND_LOCK, bistate->strategy);
		IncrBufferRefCount(buf);
		bistate->current_buf = buf;
	}
	else
		buf = ReadBufferExtended(rel, MAIN_FORKNUM, P_NEW, RBM_ZERO_AND_LOCK, nullptr);
	if (need_lock)
		UnlockRelationForExtension(rel, ExclusiveLock);
	return buf;
}

/*
 * Lock buf and other (if valid and different) in block-number order: the
 * one order in which rustydb ever holds two data pages' content locks
 * (docs/storage.md, "Buffer lock order").
 */
static void
lock_pair(Buffer buf, Buffer other)
{
	if (!BufferIsValid(other) || other == buf)
	{
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		return;
	}
	if (BufferGetBlockNumber(buf) < BufferGetBlockNumber(other))
	{
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		LockBuffer(other, BUFFER_LOCK_EXCLUSIVE);
	}
	else
	{
		LockBuffer(other, BUFFER_LOCK_EXCLUSIVE);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	}
}

/* Undo lock_pair (and the pin on buf unless it is other or bistate's). */
static void
unlock_pair(Buffer buf, Buffer other, BulkInsertState bistate)
{
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	if (buf == other)
		return;
	if (BufferIsValid(other))
		LockBuffer(other, BUFFER_LOCK_UNLOCK);
	ReleaseBuffer(buf);
	if (bistate != nullptr && BufferIsValid(bistate->current_buf))
	{
		ReleaseBuffer(bistate->current_buf);
		bistate->current_buf = InvalidBuffer;
	}
}

/* What buffer_for_tuple returns: buf, with the locks and the room it promises. */
static inline Buffer
locked_for_tuple(Buffer buf, Buffer other, Size len)
{
	Assert(buffer_is_locked_exclusive(buf));
	Assert(!BufferIsValid(other) || buffer_is_locked_exclusive(other));
	Assert(BufferGetBlockNumber(buf) != kMetaBlock);
	Assert(page_free_space(BufferGetPage(buf)) >= len);
	return buf;
}

/*
 * other: the old version's page (pinned, unlocked) when an update needs a
 * page for its new version, else InvalidBuffer. Returns a pinned page
 * with room for len bytes, exclusively locked, and other locked too. Both
 * locks are always taken in block-number order: a page another backend
 * extended the relation by is visible to everyone at once (through
 * nblocks - 1 and the free space map), so a backend that has just extended
 * may not wait for other while holding the new page (issue 16's hang).
 */
Buffer
buffer_for_tuple(Relation rel, Size len, Size save, BulkInsertState bistate, Buffer other,
				 int group_slots, bool pointers)
{
	len = MAXALIGN(len);
	if (len > kMaxTupleSize)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("row is too big: size %zu, maximum size %zu", (size_t) len,
							   (size_t) kMaxTupleSize)));
	Assert(!BufferIsValid(other) || bistate == nullptr);
	Assert(!BufferIsValid(other) || buffer_is_unlocked(other));
	Assert(CritSectionCount == 0);
	Assert(group_slots >= 0 && group_slots <= kGroupMaxSlots);
	Assert(group_slots == 0 || len <= max_group_page_tuple_size(group_slots));
	check_storage(rel);

	/*
	 * A tuple that cannot fit beside the reserve ignores it; the new row's
	 * own pointer is part of what an existing page must hold.
	 */
	Size own = pointers ? kUndoExtSize : 0;
	if (len + save + own > kMaxTupleSize)
		save = 0;
	if (len + own > kMaxTupleSize)
		pointers = false, own = 0;
	Size need = len + save + own;
	BlockNumber other_blk = BufferIsValid(other) ? BufferGetBlockNumber(other) : InvalidBlockNumber;

	BlockNumber target = InvalidBlockNumber;
	if (bistate != nullptr && BufferIsValid(bistate->current_buf))
		target = BufferGetBlockNumber(bistate->current_buf);
	else
		target = RelationGetTargetBlock(rel);

	for (;;)
	{
		if (target == InvalidBlockNumber)
		{
			target = GetPageWithFreeSpace(rel, need);
			if (target == InvalidBlockNumber)
			{
				BlockNumber nblocks = phys_nblocks(rel);
				if (nblocks > kMetaBlock + 1)
					target = nblocks - 1;
			}
		}

		/* (block 0 is the metapage: never a target, whatever the FSM says) */
		while (target != InvalidBlockNumber && target != kMetaBlock)
		{
			/* nothing locked here: a map that kept offering full pages would not hang us */
			CHECK_FOR_INTERRUPTS();
			Buffer buf;
			if (target == other_blk)
				buf = other;
			else
				buf = read_bi(rel, target, bistate);
			lock_pair(buf, other);

			Page page = BufferGetPage(buf);
			if (PageIsNew(page))
			{
				page_init(page, group_slots);
				MarkBufferDirty(buf);
			}
			page_check(rel, target - 1, page);
			Size avail = page_free_space(page);
			if (pointers ? fits_beside_pointers(page, avail, need) : need <= avail)
			{
				RelationSetTargetBlock(rel, target);
				return locked_for_tuple(buf, other, len);
			}

			/*
			 * Not enough room: unlock and ask the FSM for another page. The
			 * page is recorded with less than need (its rows' pointers
			 * taken off), so the map does not offer it again.
			 */
			Size space = page_fsm_space(page, pointers);
			unlock_pair(buf, other, bistate);
			target = RecordAndGetPageWithFreeSpace(rel, target, space, need);
		}

		/* No existing page has room: extend the relation, which needs its metapage. */
		if (phys_nblocks(rel) == 0)
		{
			Assert(!BufferIsValid(other));
			return InvalidBuffer;
		}
		Buffer buf = extend(rel, bistate);
		Page page = BufferGetPage(buf);
		if (!PageIsNew(page))
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg("page %u of relation \"%s\" should be empty but is not",
								   data_block(buf), RelationGetRelationName(rel))));
		page_init(page, group_slots);
		MarkBufferDirty(buf);
		RelationSetTargetBlock(rel, BufferGetBlockNumber(buf));
		if (!BufferIsValid(other))
			return locked_for_tuple(buf, other, len);

		/*
		 * other is below the new page. Others may already be waiting for the
		 * new page while holding other: take other without waiting, or give
		 * the new page up and lock both in block order. Meanwhile others may
		 * have filled it; then look for a page again.
		 */
		Assert(other_blk < BufferGetBlockNumber(buf));
		if (ConditionalLockBuffer(other))
			return locked_for_tuple(buf, other, len);
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		LockBuffer(other, BUFFER_LOCK_EXCLUSIVE);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		Size avail = page_free_space(page);
		if (len <= avail)
			return locked_for_tuple(buf, other, len);
		BlockNumber full = BufferGetBlockNumber(buf);
		Size space = page_fsm_space(page, pointers);
		unlock_pair(buf, other, bistate);
		target = RecordAndGetPageWithFreeSpace(rel, full, space, need);
	}
}

} /* namespace rustydb::storage */
