/*-------------------------------------------------------------------------
 *
 * tuple.cpp
 *	  Where a rustydb tuple's payload is formed.
 *
 * A tuple is formed from a slot here and nowhere else; it is read back
 * from a page in storage::tuple_at (src/storage/page.cpp). These two are
 * the points where the encryption issue encrypts and decrypts the
 * contiguous attribute payload (bytes t_hoff .. t_len of the tuple).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/groups.h"
#include "rustydb/crypto/crypto.h"
#include "rustydb/storage/page.h"

namespace rustydb::am {

HeapTuple
tuple_form(Relation rel, TupleTableSlot *slot, bool *should_free)
{
	HeapTuple tuple = ExecFetchSlotHeapTuple(slot, true, should_free);

	slot->tts_tableOid = RelationGetRelid(rel);
	tuple->t_tableOid = slot->tts_tableOid;
	return tuple;
}

void
store_tuple(Relation rel, HeapTuple tuple, TupleTableSlot *slot, Buffer buf, bool pinned,
			OpenedGroups *groups, bool locked)
{
	const crypto::Cipher *c = crypto::relation_cipher(rel);

	if (c == nullptr)
	{
		if (pinned)
			ExecStorePinnedBufferHeapTuple(tuple, slot, buf);
		else
			ExecStoreBufferHeapTuple(tuple, slot, buf);
		return;
	}
	MemoryContext old = MemoryContextSwitchTo(slot->tts_mcxt);
	BlockNumber blkno = storage::data_block(buf);
	HeapTuple copy = open_stored_tuple(rel, c, tuple, buf, locked, groups);
	if (copy->t_data->t_infomask2 & crypto::kValuesSealed)
	{
		HeapTuple full = crypto::open_values(c, RelationGetDescr(rel), copy, blkno);
		if (full != copy)
		{
			heap_freetuple(copy);
			copy = full;
		}
	}
	MemoryContextSwitchTo(old);
	/*
	 * The store frees a copy the slot held before (TTS_FLAG_SHOULDFREE);
	 * marking this one the same way makes the slot free it on its next
	 * store or clear, while the slot also keeps the buffer pin.
	 */
	if (pinned)
		ExecStorePinnedBufferHeapTuple(copy, slot, buf);
	else
		ExecStoreBufferHeapTuple(copy, slot, buf);
	slot->tts_flags |= TTS_FLAG_SHOULDFREE;
}

} /* namespace rustydb::am */
