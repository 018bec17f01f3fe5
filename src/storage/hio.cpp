/*-------------------------------------------------------------------------
 *
 * hio.cpp
 *	  Finding a rustydb page with room for a new tuple.
 *
 * Order of preference: the bulk-insert state's current page, the
 * relation's cached target block, a page the free space map offers, the
 * last page, and finally a new page at the end of the relation. Pages
 * keep fillfactor's share free for updates of their own tuples.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/storage/page.h"

namespace rustydb::storage {

static Buffer
read_bi(Relation rel, BlockNumber blkno, BulkInsertState bistate)
{
	if (bistate == nullptr)
		return ReadBuffer(rel, blkno);

	if (BufferIsValid(bistate->current_buf))
	{
		if (blkno == BufferGetBlockNumber(bistate->current_buf))
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

static Buffer
extend(Relation rel, BulkInsertState bistate)
{
	bool need_lock = !RELATION_IS_LOCAL(rel);

	if (need_lock)
		LockRelationForExtension(rel, ExclusiveLock);
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

/* Lock buf and other (if valid and different) in block-number order. */
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

Buffer
get_buffer_for_tuple(Relation rel, Size len, BulkInsertState bistate, Buffer other)
{
	len = MAXALIGN(len);
	if (len > kMaxTupleSize)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("row is too big: size %zu, maximum size %zu", (size_t) len,
							   (size_t) kMaxTupleSize)));

	Size save = RelationGetTargetPageFreeSpace(rel, HEAP_DEFAULT_FILLFACTOR);
	/* A tuple that cannot fit beside fillfactor's reserve ignores it. */
	if (len + save > kMaxTupleSize)
		save = 0;
	BlockNumber other_blk = BufferIsValid(other) ? BufferGetBlockNumber(other) : InvalidBlockNumber;

	BlockNumber target = InvalidBlockNumber;
	if (bistate != nullptr && BufferIsValid(bistate->current_buf))
		target = BufferGetBlockNumber(bistate->current_buf);
	else
		target = RelationGetTargetBlock(rel);

	if (target == InvalidBlockNumber)
	{
		target = GetPageWithFreeSpace(rel, len + save);
		if (target == InvalidBlockNumber)
		{
			BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
			if (nblocks > 0)
				target = nblocks - 1;
		}
	}

	while (target != InvalidBlockNumber)
	{
		Buffer buf;
		if (target == other_blk)
			buf = other;
		else
			buf = read_bi(rel, target, bistate);
		lock_pair(buf, other);

		Page page = BufferGetPage(buf);
		if (PageIsNew(page))
		{
			page_init(page);
			MarkBufferDirty(buf);
		}
		page_check(rel, target, page);
		Size avail = page_free_space(page);
		if (len + save <= avail)
		{
			RelationSetTargetBlock(rel, target);
			return buf;
		}

		/* Not enough room: unlock and ask the FSM for another page. */
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		if (buf != other)
		{
			if (BufferIsValid(other))
				LockBuffer(other, BUFFER_LOCK_UNLOCK);
			ReleaseBuffer(buf);
		}
		if (bistate != nullptr && BufferIsValid(bistate->current_buf))
		{
			ReleaseBuffer(bistate->current_buf);
			bistate->current_buf = InvalidBuffer;
		}
		target = RecordAndGetPageWithFreeSpace(rel, target, avail, len + save);
	}

	/* No existing page has room: extend the relation. */
	Buffer buf = extend(rel, bistate);
	Page page = BufferGetPage(buf);
	if (!PageIsNew(page))
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
						errmsg("page %u of relation \"%s\" should be empty but is not",
							   BufferGetBlockNumber(buf), RelationGetRelationName(rel))));
	page_init(page);
	MarkBufferDirty(buf);
	/* The new page is invisible to others until we insert; lock other now. */
	if (BufferIsValid(other))
		LockBuffer(other, BUFFER_LOCK_EXCLUSIVE);
	RelationSetTargetBlock(rel, BufferGetBlockNumber(buf));
	return buf;
}

} /* namespace rustydb::storage */
