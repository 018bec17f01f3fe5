/*-------------------------------------------------------------------------
 *
 * tuple.cpp
 *	  Tuples as a page stores them: the one place a tuple is sealed for a
 *	  page and opened from one, and where the executor's slots get them.
 *
 * Write: tuple_form takes the slot's tuple, stored_form (or, for UPDATE,
 * its steps seal_large_values and seal_for_page) makes what the page
 * stores; COPY's sealed groups are placed by seal_onto_page. Read:
 * storage::tuple_at locates and checks a page tuple (header only),
 * open_from_page opens its payload, store_tuple hands it to a slot. For
 * an unencrypted relation every step passes the tuple through. See am.h
 * and docs/tde.md ("Integration").
 *
 * Slots. An unencrypted relation's rows go into buffer-heap-tuple slots
 * pointing into the pinned page, exactly as heap's. An encrypted
 * relation's slots are heap-tuple slots (slot_ops): a row is opened into a
 * copy the slot owns (ExecStoreHeapTuple with shouldFree), and the slot
 * holds no buffer pin. PostgreSQL's buffer slot cannot hold both a pin and
 * a tuple it frees (tts_buffer_heap_clear asserts against it), and the
 * plaintext must not live in the shared buffer, so the code that needs the
 * page behind a slot (tuple_satisfies_snapshot, CLUSTER) finds it by the
 * slot's TID (lock_slot_version).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/groups.h"
#include "rustydb/crypto/crypto.h"
#include "rustydb/storage/page.h"
#include "rustydb/storage/undo.h"

namespace rustydb::am {

/* ========================================================================
 * Writing
 * ========================================================================
 */

HeapTuple
tuple_form(Relation rel, TupleTableSlot *slot, bool *should_free)
{
	HeapTuple tuple = ExecFetchSlotHeapTuple(slot, true, should_free);

	/*
	 * A row read from a rustydb page may come back unchanged (a trigger
	 * returning OLD, INSERT ... SELECT): a new tuple never carries its
	 * undo pointer.
	 */
	if (storage::tuple_has_undo(tuple->t_data))
	{
		HeapTuple bare = storage::tuple_without_undo(tuple);
		if (*should_free)
			heap_freetuple(tuple);
		tuple = bare;
		*should_free = true;
	}
	slot->tts_tableOid = RelationGetRelid(rel);
	tuple->t_tableOid = slot->tts_tableOid;
	return tuple;
}

static bool
toastable(Relation rel)
{
	return rel->rd_rel->relkind == RELKIND_RELATION || rel->rd_rel->relkind == RELKIND_MATVIEW;
}

HeapTuple
seal_large_values(Relation rel, const crypto::Cipher *c, HeapTuple tup)
{
	if (c == nullptr || !toastable(rel) || !crypto::needs_value_sealing(tup))
		return tup;
	return crypto::seal_values(c, RelationGetDescr(rel), tup);
}

HeapTuple
seal_for_page(const crypto::Cipher *c, HeapTuple plain)
{
	return c == nullptr ? plain : crypto::seal_tuple(c, plain);
}

Size
stored_size(const crypto::Cipher *c, Size plain_len)
{
	return c == nullptr ? plain_len : crypto::sealed_size(plain_len);
}

HeapTuple
stored_form(Relation rel, HeapTuple tup, int options, bool seal_payload)
{
	const crypto::Cipher *c = crypto::relation_cipher(rel);
	HeapTuple work = seal_large_values(rel, c, tup);
	HeapTuple out = work;

	if (toastable(rel) && (HeapTupleHasExternal(work) || work->t_len > TOAST_TUPLE_THRESHOLD))
		out = heap_toast_insert_or_update(rel, work, nullptr, options);
	if (out != work && work != tup)
		heap_freetuple(work);
	if (!seal_payload)
		return out;
	HeapTuple sealed = seal_for_page(c, out);
	if (sealed != out && out != tup)
		heap_freetuple(out);
	return sealed;
}

int
seal_onto_page(Relation rel, const crypto::Cipher *c, Buffer buf, HeapTuple *tuples, int n,
			   Size save, int max_members, char *scratch, OffsetNumber *offs, char **changes,
			   Size *changes_len)
{
	Assert(c != nullptr);
	return place_sealed(rel, c, buf, tuples, n, save, max_members, scratch, offs, changes,
						changes_len);
}

/* ========================================================================
 * Reading
 * ========================================================================
 */

HeapTuple
open_from_page(Relation rel, const crypto::Cipher *c, HeapTuple stored, Buffer buf, bool locked,
			   OpenedGroups *og)
{
	if (c == nullptr)
		return stored;
	if (!tuple_on_page(stored, buf))
	{
		/* an undo image: sealed on its own when it was copied into undo */
		return crypto::open_tuple_copy(c, stored, ItemPointerGetBlockNumber(&stored->t_self));
	}
	return open_stored_tuple(rel, c, stored, buf, locked, og);
}

const TupleTableSlotOps *
slot_ops(Relation rel)
{
	return crypto::relation_encrypted(rel) ? &TTSOpsHeapTuple : &TTSOpsBufferHeapTuple;
}

bool
tuple_on_page(HeapTuple tuple, Buffer buf)
{
	const char *page = BufferGetPage(buf);
	const char *t = (const char *) tuple->t_data;
	return t >= page && t < page + BLCKSZ;
}

void
store_tuple(Relation rel, HeapTuple tuple, TupleTableSlot *slot, Buffer buf, bool pinned,
			OpenedGroups *groups, bool locked, bool open_values)
{
	const crypto::Cipher *c = crypto::relation_cipher(rel);

	Assert(BufferIsValid(buf));
	if (c == nullptr)
	{
		if (unlikely(!TTS_IS_BUFFERTUPLE(slot)))
			elog(ERROR, "rustydb: a row of relation \"%s\" needs a buffer-heap-tuple slot",
				 RelationGetRelationName(rel));
		/*
		 * The slot keeps a pointer to the HeapTupleData, so it is copied into
		 * the slot's own workspace (HeapTupleTableSlot.tupdata, "optional
		 * workspace for storing tuple"), as heap's fetches use it; the caller's
		 * may be a local variable. The store then pins (or takes the pin).
		 */
		if (!tuple_on_page(tuple, buf))
		{
			/* an undo image (a copy): the slot gets its own copy and no pin */
			ExecForceStoreHeapTuple(tuple, slot, false);
			slot->tts_tid = tuple->t_self;
			slot->tts_tableOid = tuple->t_tableOid;
			if (pinned)
				ReleaseBuffer(buf);
			return;
		}
		HeapTuple ws = &reinterpret_cast<BufferHeapTupleTableSlot *>(slot)->base.tupdata;
		if (tuple != ws)
			*ws = *tuple;
		if (pinned)
			ExecStorePinnedBufferHeapTuple(ws, slot, buf);
		else
			ExecStoreBufferHeapTuple(ws, slot, buf);
		return;
	}

	/* open first: an error leaves the slot as it was */
	MemoryContext old = MemoryContextSwitchTo(slot->tts_mcxt);
	HeapTuple copy = open_from_page(rel, c, tuple, buf, locked, groups);
	if (open_values && (copy->t_data->t_infomask2 & crypto::kValuesSealed))
	{
		HeapTuple full =
			crypto::open_values(c, RelationGetDescr(rel), copy, storage::data_block(buf));
		if (full != copy)
		{
			heap_freetuple(copy);
			copy = full;
		}
	}
	MemoryContextSwitchTo(old);
	/*
	 * A heap-tuple slot (slot_ops) takes the copy as it is; any other kind
	 * gets PostgreSQL's conversion. Either way the slot frees it.
	 */
	ExecForceStoreHeapTuple(copy, slot, true);
	if (pinned)
		ReleaseBuffer(buf);
}

void
open_slot_values(Relation rel, TupleTableSlot *slot)
{
	HeapTuple row = ExecFetchSlotHeapTuple(slot, false, nullptr);

	if (!(row->t_data->t_infomask2 & crypto::kValuesSealed))
		return;
	const crypto::Cipher *c = crypto::relation_cipher(rel);
	Assert(c != nullptr);
	MemoryContext old = MemoryContextSwitchTo(slot->tts_mcxt);
	HeapTuple full =
		crypto::open_values(c, RelationGetDescr(rel), row, ItemPointerGetBlockNumber(&row->t_self));
	MemoryContextSwitchTo(old);
	ExecForceStoreHeapTuple(full, slot, true); /* frees row */
}

bool
lock_slot_version(Relation rel, TupleTableSlot *slot, HeapTuple tuple, Buffer *buf)
{
	Assert(!TTS_EMPTY(slot));
	if (TTS_IS_BUFFERTUPLE(slot))
	{
		auto *bslot = reinterpret_cast<BufferHeapTupleTableSlot *>(slot);
		if (BufferIsValid(bslot->buffer))
		{
			*buf = bslot->buffer;
			IncrBufferRefCount(*buf);
			LockBuffer(*buf, BUFFER_LOCK_SHARE);
			*tuple = *bslot->base.tuple;
			return true;
		}
	}

	/* an opened copy (or a materialized row): the version at its TID */
	HeapTuple row = ExecFetchSlotHeapTuple(slot, false, nullptr);
	ItemPointerData tid = row->t_self;
	TransactionId xmin = HeapTupleHeaderGetRawXmin(row->t_data);
	BlockNumber blkno = ItemPointerGetBlockNumber(&tid);
	OffsetNumber off = ItemPointerGetOffsetNumber(&tid);

	*buf = storage::read_data_block(rel, blkno);
	LockBuffer(*buf, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(*buf);
	storage::page_check(rel, blkno, page);
	if (!PageIsNew(page) && off >= FirstOffsetNumber && off <= PageGetMaxOffsetNumber(page) &&
		storage::tuple_at(rel, *buf, page, off, tuple) &&
		TransactionIdEquals(HeapTupleHeaderGetRawXmin(tuple->t_data), xmin))
		return true;
	UnlockReleaseBuffer(*buf);
	*buf = InvalidBuffer;
	return false;
}

} /* namespace rustydb::am */
