/*-------------------------------------------------------------------------
 *
 * modify.cpp
 *	  rustydb insert, delete, update and speculative insertion (row locks:
 *	  rowlock.cpp; the xmax they share: xmax.cpp).
 *
 * Every page change happens inside a critical section in the canonical
 * order: change the page, MarkBufferDirty, XLogInsert a rustydb record,
 * PageSetLSN. Anything that can fail or allocate (TOAST, multixact
 * creation, combo command ids, finding a page) happens before.
 *
 * Row locks and updates share one representation in the tuple's xmax
 * (include/rustydb/am/xmax.h).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/inplace.h"
#include "rustydb/am/undo_store.h"
#include "rustydb/am/xmax.h"
#include "rustydb/storage/buffer.h"
#include "rustydb/common/settings.h"
#include "rustydb/crypto/crypto.h"

#include "rustydb/mvcc/visibility.h"
#include "rustydb/storage/changes.h"
#include "rustydb/storage/page.h"
#include "rustydb/wal/records.h"

namespace rustydb::am {

using storage::page_check;
using storage::tuple_at;

/* First tuple on the page: redo may re-initialise the page. */
static bool
is_first_on_page(Page page, OffsetNumber off)
{
	return off == FirstOffsetNumber && PageGetMaxOffsetNumber(page) == FirstOffsetNumber;
}

/* ========================================================================
 * Insert
 * ========================================================================
 */

/* seal false: the payload stays in plaintext, for multi_insert to seal in groups */
static HeapTuple
prepare_insert(Relation rel, HeapTuple tup, TransactionId xid, CommandId cid, int options,
			   bool seal = true)
{
	HeapTupleHeader t = tup->t_data;

	t->t_infomask &= ~HEAP_XACT_MASK;
	t->t_infomask2 &= ~HEAP2_XACT_MASK;
	t->t_infomask |= HEAP_XMAX_INVALID;
	HeapTupleHeaderSetXmin(t, xid);
	if (options & HEAP_INSERT_FROZEN)
		HeapTupleHeaderSetXminFrozen(t);
	HeapTupleHeaderSetCmin(t, cid);
	HeapTupleHeaderSetXmax(t, 0);
	tup->t_tableOid = RelationGetRelid(rel);
	return stored_form(rel, tup, options, seal);
}

/*
 * Place tup on the exclusively locked buffer's page and log it, in the
 * caller's critical section; vmbuf is pinned if the page is all-visible.
 */
static OffsetNumber
place_and_log(Relation rel, Buffer buffer, HeapTuple tup, bool speculative, Buffer vmbuf,
			  const LogicalTrailer &lt)
{
	Page page = BufferGetPage(buffer);

	Assert(CritSectionCount > 0);
	Assert(storage::buffer_is_locked_exclusive(buffer));
	Assert(!PageIsAllVisible(page) || BufferIsValid(vmbuf));
	bool vm_cleared = storage::vm_clear(rel, buffer, vmbuf);
	OffsetNumber off = storage::next_tuple_offset(buffer);
	ItemPointerSet(&tup->t_self, storage::data_block(buffer), off);
	if (!speculative)
		tup->t_data->t_ctid = tup->t_self;
	storage::place_tuple(buffer, off, tup->t_data, tup->t_len);
	auto *item = (HeapTupleHeader) PageGetItem(page, PageGetItemId(page, off));
	MarkBufferDirty(buffer);

	if (RelationNeedsWAL(rel))
	{
		wal::XlInsert xl;
		xl.version = wal::kWalFormatVersion;
		xl.flags = is_first_on_page(page, off) ? wal::kFlagInitPage : 0;
		if (vm_cleared)
			xl.flags |= wal::kFlagVmCleared;
		if (lt.logged)
			xl.flags |= wal::kFlagLogical;
		xl.offnum = off;
		/*
		 * Without logical decoding, the tuple in its packed form: its
		 * header's fields against what redo knows (the record's xid as
		 * xmin, no xmax, the row's TID), then its bytes after the header,
		 * registered from the page.
		 */
		char head[storage::kPackedHeadMax];
		Size head_len = 0;
		if (!lt.logged)
		{
			storage::HeaderDefaults d{GetCurrentTransactionIdIfAny(), InvalidTransactionId,
									  tup->t_self};
			head_len = storage::pack_tuple_head(item, d, head);
			xl.flags |= wal::kFlagPackedTuple;
		}
		XLogBeginInsert();
		XLogRegisterData((char *) &xl, sizeof(xl));
		register_logical_trailer(lt);
		XLogRegisterBuffer(0, buffer,
						   REGBUF_STANDARD |
							   ((xl.flags & wal::kFlagInitPage) ? REGBUF_WILL_INIT : 0) |
							   (lt.logged ? REGBUF_KEEP_DATA : 0));
		if (lt.logged)
			XLogRegisterBufData(0, (char *) item, tup->t_len);
		else
		{
			XLogRegisterBufData(0, head, head_len);
			XLogRegisterBufData(0, (char *) item + storage::kTupleHeaderSize,
								tup->t_len - storage::kTupleHeaderSize);
		}
		XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kInsert);
		PageSetLSN(page, recptr);
	}
	return off;
}

void
insert(Relation rel, HeapTuple tup, CommandId cid, int options, BulkInsertState bistate)
{
	TransactionId xid = GetCurrentTransactionId();
	HeapTuple heaptup = prepare_insert(rel, tup, xid, cid, options);
	Buffer buffer = get_buffer_for_tuple(rel, heaptup->t_len, bistate, InvalidBuffer);

	Buffer vmbuf = InvalidBuffer;
	LogicalTrailer lt = logical_trailer(rel, crypto::relation_cipher(rel));

	CheckForSerializableConflictIn(rel, nullptr, InvalidBlockNumber);
	storage::vm_pin_if_needed(rel, buffer, &vmbuf);

	START_CRIT_SECTION();
	place_and_log(rel, buffer, heaptup, (options & HEAP_INSERT_SPECULATIVE) != 0, vmbuf, lt);
	END_CRIT_SECTION();

	UnlockReleaseBuffer(buffer);
	if (BufferIsValid(vmbuf))
		ReleaseBuffer(vmbuf);
	pgstat_count_heap_insert(rel, 1);
	if (heaptup != tup)
	{
		tup->t_self = heaptup->t_self;
		heap_freetuple(heaptup);
	}
}

void
insert_raw(Relation rel, HeapTuple tup, BulkInsertState bistate)
{
	HeapTuple heaptup = stored_form(rel, tup, HEAP_INSERT_SKIP_FSM);
	Buffer buffer = get_buffer_for_tuple(rel, heaptup->t_len, bistate, InvalidBuffer);
	Buffer vmbuf = InvalidBuffer;
	storage::vm_pin_if_needed(rel, buffer, &vmbuf);
	START_CRIT_SECTION();
	place_and_log(rel, buffer, heaptup, false, vmbuf,
				  LogicalTrailer{}); /* a rewrite: not decoded */
	END_CRIT_SECTION();
	UnlockReleaseBuffer(buffer);
	if (BufferIsValid(vmbuf))
		ReleaseBuffer(vmbuf);
	if (heaptup != tup)
		heap_freetuple(heaptup);
}

/*
 * Log the n new tuples at offs on the locked page of buffer as one
 * MULTI_INSERT record (in the critical section), with the page's new group
 * table and group changes when there are any. scratch: 2 * BLCKSZ bytes.
 */
static void
log_multi_insert(Buffer buffer, const OffsetNumber *offs, int n, bool init, bool vm_cleared,
				 const char *changes, Size changes_len, char *scratch, const LogicalTrailer &lt)
{
	Assert(CritSectionCount > 0);
	Assert(storage::buffer_is_locked_exclusive(buffer));
	Assert(n > 0);
	Page page = BufferGetPage(buffer);
	char *wp = scratch;
	/* without logical decoding, each tuple in its packed form (as INSERT's) */
	storage::HeaderDefaults d{GetCurrentTransactionIdIfAny(), InvalidTransactionId, {}};
	for (int i = 0; i < n; i++)
	{
		ItemId lp = PageGetItemId(page, offs[i]);
		auto *item = (HeapTupleHeader) PageGetItem(page, lp);
		uint16 len = (uint16) ItemIdGetLength(lp);
		char *tp = wp + sizeof(OffsetNumber) + sizeof(len);
		if (!lt.logged)
		{
			ItemPointerSet(&d.ctid, storage::data_block(buffer), offs[i]);
			len = (uint16) storage::pack_tuple(item, len, d, tp);
		}
		else
			memcpy(tp, item, len);
		memcpy(wp, &offs[i], sizeof(OffsetNumber));
		memcpy(wp + sizeof(OffsetNumber), &len, sizeof(len));
		wp = tp + len;
	}
	int nslots = 0;
	bool table = init && storage::page_groups(page, &nslots) != nullptr;
	uint8 nslots8 = (uint8) nslots;
	wal::XlMultiInsert xl;
	xl.version = wal::kWalFormatVersion;
	xl.flags = (init ? wal::kFlagInitPage : 0) | (vm_cleared ? wal::kFlagVmCleared : 0) |
			   (table ? wal::kFlagGroupTable : 0) | (changes_len > 0 ? wal::kFlagGroupChanges : 0) |
			   (lt.logged ? wal::kFlagLogical : wal::kFlagPackedTuple);
	xl.ntuples = (uint16) n;
	XLogBeginInsert();
	XLogRegisterData((char *) &xl, sizeof(xl));
	register_logical_trailer(lt);
	XLogRegisterBuffer(0, buffer,
					   REGBUF_STANDARD | (init ? REGBUF_WILL_INIT : 0) |
						   (lt.logged ? REGBUF_KEEP_DATA : 0));
	if (table)
		XLogRegisterBufData(0, (char *) &nslots8, 1);
	XLogRegisterBufData(0, scratch, wp - scratch);
	if (changes_len > 0)
		XLogRegisterBufData(0, (char *) changes, changes_len);
	XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kMultiInsert);
	PageSetLSN(page, recptr);
}

/*
 * multi_insert for an encrypted relation: the tuples of each page are
 * sealed in groups (groups.h) where the page has a group table, else one
 * by one. The page is built in a private copy, so sealing (which may
 * fail) happens before the critical section, which copies it in.
 */
static void
multi_insert_sealed(Relation rel, const crypto::Cipher *cipher, HeapTuple *tuples, int ntuples,
					BulkInsertState bistate)
{
	Size save = page_fill_reserve(rel, ntuples > 0 ? stored_size(cipher, tuples[0]->t_len) : 0);
	bool need_wal = RelationNeedsWAL(rel);
	char *scratch = (char *) palloc(2 * BLCKSZ);
	char *page_copy = (char *) palloc(BLCKSZ);
	auto *offs = (OffsetNumber *) palloc(ntuples * sizeof(OffsetNumber));
	LogicalTrailer lt = logical_trailer(rel, cipher);
	/*
	 * Logical decoding opens each sealed tuple of the record on its own
	 * (decode.cpp): a logically logged table gets no sealed groups.
	 */
	int max_members = lt.logged ? 1 : settings::seal_group_rows;

	int done = 0;
	while (done < ntuples)
	{
		Size need = stored_size(cipher, tuples[done]->t_len); /* sealed on its own */
		/* a new page gets group slots for a page of tuples like this one */
		int slots = 0;
		if (max_members > 1)
		{
			slots = storage::group_slots_for(tuples[done]->t_len + storage::kMemberHeaderBytes,
											 max_members);
			if (MAXALIGN(need) > storage::max_group_page_tuple_size(slots))
				slots = 0;
		}
		Buffer buffer = get_buffer_for_tuple(rel, need, bistate, InvalidBuffer, slots);
		Page page = BufferGetPage(buffer);
		bool init = PageGetMaxOffsetNumber(page) == 0;
		Buffer vmbuf = InvalidBuffer;
		storage::vm_pin_if_needed(rel, buffer, &vmbuf);

		char *changes = nullptr;
		Size changes_len = 0;
		int n = seal_onto_page(rel, cipher, buffer, tuples + done, ntuples - done, save,
							   max_members, page_copy, offs + done, &changes, &changes_len);

		LogicalTrailer rec_lt = lt;
		if (done + n == ntuples)
			rec_lt.flags |= wal::kLogLastInMulti;
		START_CRIT_SECTION();
		memcpy(page, page_copy, BLCKSZ);
		bool vm_cleared = storage::vm_clear(rel, buffer, vmbuf);
		MarkBufferDirty(buffer);
		if (need_wal)
			log_multi_insert(buffer, offs + done, n, init, vm_cleared, changes, changes_len,
							 scratch, rec_lt);
		END_CRIT_SECTION();
		UnlockReleaseBuffer(buffer);
		if (BufferIsValid(vmbuf))
			ReleaseBuffer(vmbuf);
		if (changes != nullptr)
			pfree(changes);
		done += n;
	}
	pfree(offs);
	pfree(page_copy);
	pfree(scratch);
}

void
multi_insert(Relation rel, TupleTableSlot **slots, int ntuples, CommandId cid, int options,
			 BulkInsertState bistate)
{
	TransactionId xid = GetCurrentTransactionId();
	auto **tuples = (HeapTuple *) palloc(ntuples * sizeof(HeapTuple));
	bool need_wal = RelationNeedsWAL(rel);
	const crypto::Cipher *cipher = crypto::relation_cipher(rel); /* before any buffer lock */

	for (int i = 0; i < ntuples; i++)
	{
		HeapTuple tup = ExecFetchSlotHeapTuple(slots[i], true, nullptr);
		slots[i]->tts_tableOid = RelationGetRelid(rel);
		tup->t_tableOid = slots[i]->tts_tableOid;
		tuples[i] = prepare_insert(rel, tup, xid, cid, options, cipher == nullptr);
	}

	CheckForSerializableConflictIn(rel, nullptr, InvalidBlockNumber);

	if (cipher != nullptr)
	{
		multi_insert_sealed(rel, cipher, tuples, ntuples, bistate);
		for (int i = 0; i < ntuples; i++)
			slots[i]->tts_tid = tuples[i]->t_self;
		pgstat_count_heap_insert(rel, ntuples);
		pfree(tuples);
		return;
	}

	Size save = page_fill_reserve(rel, ntuples > 0 ? tuples[0]->t_len : 0);
	/* the pointer reserve: 8 bytes for each row of the page without its undo pointer */
	Size own = page_pointer_reserve(rel) ? storage::kUndoExtSize : 0;
	char *scratch = need_wal ? (char *) palloc(2 * BLCKSZ) : nullptr;
	auto *offs = (OffsetNumber *) palloc(ntuples * sizeof(OffsetNumber));
	LogicalTrailer lt = logical_trailer(rel, nullptr);
	int done = 0;
	while (done < ntuples)
	{
		Buffer buffer = get_buffer_for_tuple(rel, tuples[done]->t_len, bistate, InvalidBuffer);
		Page page = BufferGetPage(buffer);
		int first = done;
		Size rows = own > 0 ? storage::page_pointer_room(page) : 0;
		Buffer vmbuf = InvalidBuffer;
		storage::vm_pin_if_needed(rel, buffer, &vmbuf);

		START_CRIT_SECTION();
		bool init = false;
		bool vm_cleared = storage::vm_clear(rel, buffer, vmbuf);
		for (; done < ntuples; done++, rows += own)
		{
			HeapTuple tup = tuples[done];
			if (done > first &&
				PageGetHeapFreeSpace(page) < MAXALIGN(tup->t_len) + save + own + rows)
				break;
			OffsetNumber off = storage::next_tuple_offset(buffer);
			ItemPointerSet(&tup->t_self, storage::data_block(buffer), off);
			tup->t_data->t_ctid = tup->t_self;
			storage::place_tuple(buffer, off, tup->t_data, tup->t_len);
			if (done == first && is_first_on_page(page, off))
				init = true;
			offs[done] = off;
		}
		MarkBufferDirty(buffer);
		LogicalTrailer rec_lt = lt;
		if (done == ntuples)
			rec_lt.flags |= wal::kLogLastInMulti;
		if (need_wal)
			log_multi_insert(buffer, offs + first, done - first, init, vm_cleared, nullptr, 0,
							 scratch, rec_lt);
		END_CRIT_SECTION();
		UnlockReleaseBuffer(buffer);
		if (BufferIsValid(vmbuf))
			ReleaseBuffer(vmbuf);
	}

	for (int i = 0; i < ntuples; i++)
		slots[i]->tts_tid = tuples[i]->t_self;
	pgstat_count_heap_insert(rel, ntuples);
	if (scratch != nullptr)
		pfree(scratch);
	pfree(offs);
	pfree(tuples);
}

/* ========================================================================
 * Delete
 * ========================================================================
 */

TM_Result
remove(Relation rel, ItemPointer tid, CommandId cid, Snapshot snapshot, Snapshot crosscheck,
	   bool wait, TM_FailureData *tmfd, bool changing_part)
{
	TransactionId xid = GetCurrentTransactionId();
	HeapTupleData tp;
	bool have_tuplock = false;
	Buffer buffer = read_target(rel, tid, &tp, "delete");

	TM_Result result =
		acquire_right(rel, buffer, &tp, cid, snapshot, crosscheck, MultiXactStatusUpdate,
					  LockWaitBlock, wait, XLTW_Delete, &have_tuplock);
	if (result == TM_Invisible)
	{
		UnlockReleaseBuffer(buffer);
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("attempted to delete invisible tuple")));
	}
	if (result != TM_Ok)
	{
		fail_data(&tp, result, tmfd);
		UnlockReleaseBuffer(buffer);
		if (have_tuplock)
			UnlockTuple(rel, &tp.t_self, AccessExclusiveLock);
		return result;
	}

	CheckForSerializableConflictIn(rel, tid, storage::data_block(buffer));

	/* Outside the critical section: combo cid and multixact creation. */
	bool iscombo;
	HeapTupleHeaderAdjustCmax(tp.t_data, &cid, &iscombo);
	TransactionId new_xmax;
	uint16 im, im2;
	compose_xmax(tp.t_data, xid, MultiXactStatusUpdate, &new_xmax, &im, &im2);
	Buffer vmbuf = InvalidBuffer;
	storage::vm_pin_if_needed(rel, buffer, &vmbuf);
	LogicalTrailer lt;
	if (RelationIsLogicallyLogged(rel))
	{
		const crypto::Cipher *cipher = crypto::relation_cipher(rel);
		HeapTuple plain = open_from_page(rel, cipher, &tp, buffer, true);
		lt = logical_trailer_with_identity(rel, cipher, plain, nullptr);
		if (plain != &tp)
			heap_freetuple(plain);
	}

	Page page = BufferGetPage(buffer);
	START_CRIT_SECTION();
	bool vm_cleared = storage::vm_clear(rel, buffer, vmbuf);
	PageSetPrunable(page, xid);
	storage::TupleXact x = with_xmax(tp.t_data, new_xmax, im, im2);
	x.infomask2 &= ~HEAP_HOT_UPDATED;
	x.infomask = (x.infomask & ~HEAP_COMBOCID) | (iscombo ? HEAP_COMBOCID : 0);
	if (changing_part)
		ItemPointerSetMovedPartitions(&x.ctid);
	else
		x.ctid = tp.t_self;
	storage::set_tuple_xact(buffer, ItemPointerGetOffsetNumber(&tp.t_self), x);
	HeapTupleHeaderSetCmax(tp.t_data, cid, iscombo); /* t_cid: backend-local, not logged */
	MarkBufferDirty(buffer);
	log_tuple_state(rel, buffer, wal::kDelete, ItemPointerGetOffsetNumber(&tp.t_self), tp.t_data,
					vm_cleared ? wal::kFlagVmCleared : 0, &lt);
	END_CRIT_SECTION();
	free_logical_trailer(&lt);

	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	if (BufferIsValid(vmbuf))
		ReleaseBuffer(vmbuf);
	if (rel->rd_rel->relkind == RELKIND_RELATION || rel->rd_rel->relkind == RELKIND_MATVIEW)
	{
		if (HeapTupleHasExternal(&tp))
			heap_toast_delete(
				rel, open_from_page(rel, crypto::relation_cipher(rel), &tp, buffer, false), false);
	}
	ReleaseBuffer(buffer);
	if (have_tuplock)
		UnlockTuple(rel, &tp.t_self, AccessExclusiveLock);
	pgstat_count_heap_delete(rel);
	return TM_Ok;
}

/* ========================================================================
 * Update
 * ========================================================================
 */

/*
 * Did the update change any column in attrs (INDEX_ATTR_BITMAP_KEY: what a
 * unique index or foreign key can see; INDEX_ATTR_BITMAP_ALL: what any
 * index uses, so a new version needs new index entries)?
 */
static bool
attrs_changed(Relation rel, HeapTuple oldtup, HeapTuple newtup, Bitmapset *keys)
{
	TupleDesc desc = RelationGetDescr(rel);
	int x = -1;
	bool changed = false;

	while (!changed && (x = bms_next_member(keys, x)) >= 0)
	{
		int attno = x + FirstLowInvalidHeapAttributeNumber;
		if (attno == 0)
		{
			changed = true; /* a whole-row reference sees every column */
			break;
		}
		if (attno < 0)
			continue;
		bool n1, n2;
		Datum v1 = heap_getattr(oldtup, attno, desc, &n1);
		Datum v2 = heap_getattr(newtup, attno, desc, &n2);
		if (n1 != n2)
			changed = true;
		else if (!n1)
		{
			Form_pg_attribute att = TupleDescAttr(desc, attno - 1);
			changed = !datumIsEqual(v1, v2, att->attbyval, att->attlen);
		}
	}
	return changed;
}

TM_Result
update(Relation rel, ItemPointer otid, HeapTuple newtup, CommandId cid, Snapshot snapshot,
	   Snapshot crosscheck, bool wait, TM_FailureData *tmfd, LockTupleMode *lockmode, bool *hot)
{
	*hot = false;
	TransactionId xid = GetCurrentTransactionId();
	HeapTupleData oldtup;
	bool have_tuplock = false;
	/* relcache work before any buffer lock */
	Bitmapset *key_attrs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_KEY);
	Bitmapset *index_attrs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_ALL);
	const crypto::Cipher *cipher = crypto::relation_cipher(rel); /* before any buffer lock */
	/* large values of an encrypted table are sealed before the toaster sees them */
	HeapTuple callers_tuple = newtup;
	newtup = seal_large_values(rel, cipher, newtup);
	/* the undo store, before any buffer lock (it may discard and repair) */
	Relation undo = nullptr;
	UndoEvent inplace =
		inplace_prepare(rel, &undo, cipher == nullptr && settings::inplace_previous_on_page);
	Buffer buffer = read_target(rel, otid, &oldtup, "update");
	/* attribute values of the old version */
	HeapTuple oldplain = open_from_page(rel, cipher, &oldtup, buffer, true);
	/*
	 * The stored version opened: acquire_right may wait and find another
	 * version at the TID (an aborted in-place version repaired meanwhile).
	 */
	HeapTuple opened = cipher != nullptr ? heap_copytuple(&oldtup) : nullptr;

	*lockmode = attrs_changed(rel, oldplain, newtup, key_attrs) ? LockTupleExclusive
																: LockTupleNoKeyExclusive;
	MultiXactStatus mine = status_of_update(*lockmode);

	TM_Result result = acquire_right(rel, buffer, &oldtup, cid, snapshot, crosscheck, mine,
									 LockWaitBlock, wait, XLTW_Update, &have_tuplock);
	if (result == TM_Invisible)
	{
		UnlockReleaseBuffer(buffer);
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("attempted to update invisible tuple")));
	}
	if (result != TM_Ok)
	{
		fail_data(&oldtup, result, tmfd);
		UnlockReleaseBuffer(buffer);
		if (have_tuplock)
			UnlockTuple(rel, &oldtup.t_self, lockmode_of_status(mine));
		if (undo != nullptr)
			table_close(undo, RowExclusiveLock);
		return result;
	}
	if (opened != nullptr)
	{
		uint32 hoff = opened->t_data->t_hoff;
		if (opened->t_len != oldtup.t_len || hoff != oldtup.t_data->t_hoff ||
			memcmp((char *) opened->t_data + hoff, (char *) oldtup.t_data + hoff,
				   opened->t_len - hoff) != 0)
		{
			heap_freetuple(oldplain);
			oldplain = open_from_page(rel, cipher, &oldtup, buffer, true);
		}
		heap_freetuple(opened);
	}

	/*
	 * The new version's header. Lockers of the old version that are still
	 * there (the update could only proceed past key-share lockers, or our
	 * own lock) keep a key-share lock on the new version, as with heap.
	 */
	HeapTupleHeader nt = newtup->t_data;
	HeapTupleHeader ot = oldtup.t_data;
	nt->t_infomask &= ~HEAP_XACT_MASK;
	nt->t_infomask2 &= ~HEAP2_XACT_MASK;
	HeapTupleHeaderSetXmin(nt, xid);
	HeapTupleHeaderSetCmin(nt, cid);
	TransactionId inherit = InvalidTransactionId;
	if (!(ot->t_infomask & HEAP_XMAX_INVALID) && HEAP_XMAX_IS_LOCKED_ONLY(ot->t_infomask))
	{
		TransactionId raw = HeapTupleHeaderGetRawXmax(ot);
		if (ot->t_infomask & HEAP_XMAX_IS_MULTI)
		{
			if (MultiXactIdIsRunning(raw, true))
			{
				inherit = raw;
				nt->t_infomask |=
					HEAP_XMAX_IS_MULTI | HEAP_XMAX_LOCK_ONLY | (ot->t_infomask & HEAP_LOCK_MASK);
			}
		}
		else if (TransactionIdIsCurrentTransactionId(raw) || TransactionIdIsInProgress(raw))
		{
			inherit = raw;
			nt->t_infomask |= HEAP_XMAX_KEYSHR_LOCK | HEAP_XMAX_LOCK_ONLY;
		}
	}
	if (!TransactionIdIsValid(inherit))
		nt->t_infomask |= HEAP_XMAX_INVALID;
	HeapTupleHeaderSetXmax(nt, inherit);
	newtup->t_tableOid = RelationGetRelid(rel);

	bool toastable =
		rel->rd_rel->relkind == RELKIND_RELATION || rel->rd_rel->relkind == RELKIND_MATVIEW;
	bool need_toast = toastable && (HeapTupleHasExternal(&oldtup) || HeapTupleHasExternal(newtup) ||
									newtup->t_len > TOAST_TUPLE_THRESHOLD);
	Page page = BufferGetPage(buffer);
	Buffer newbuf = buffer;
	HeapTuple heaptup = newtup;
	bool iscombo;
	CommandId cmax = cid;

	/*
	 * In place (docs/storage.md, "What fits"): no TOAST work, no indexed
	 * column changed, room on the page and in undo.
	 */
	if (inplace == UndoEvent::Inplace && need_toast)
		inplace = UndoEvent::FallbackToast;
	if (inplace == UndoEvent::Inplace && attrs_changed(rel, oldplain, newtup, index_attrs))
		inplace = UndoEvent::FallbackIndexed;
	if (inplace == UndoEvent::Inplace &&
		update_in_place(rel, undo, cipher, buffer, &oldtup, oldplain, newtup, xid, cid, mine,
						&inplace))
	{
		UnlockReleaseBuffer(buffer);
		if (have_tuplock)
			UnlockTuple(rel, &oldtup.t_self, lockmode_of_status(mine));
		if (undo != nullptr)
			table_close(undo, RowExclusiveLock);
		undo_count(RelationGetRelid(rel), UndoEvent::Inplace);
		/*
		 * An update (n_tup_upd, n_tup_hot_upd), but no dead tuple: the
		 * previous version has no line pointer and no index entry, and
		 * pruning and undo recycling reclaim it without VACUUM; rolled
		 * back, it is repaired in place. The statistics count every
		 * update as a dead tuple at commit or abort: take that one back
		 * now, or autovacuum would vacuum a table updated only in place
		 * for nothing.
		 */
		pgstat_count_heap_update(rel, true);
		pgstat_update_heap_dead_tuples(rel, 1);
		*hot = true;
		callers_tuple->t_self = newtup->t_self;
		if (newtup != callers_tuple)
			heap_freetuple(newtup);
		return TM_Ok;
	}
	if (undo != nullptr)
		table_close(undo, RowExclusiveLock);
	if (inplace != UndoEvent::Count_)
		undo_count(RelationGetRelid(rel), inplace);

	Size stored_len = stored_size(cipher, newtup->t_len);
	HeapTuple plainnew = newtup; /* after TOAST, before sealing */

	if (need_toast || MAXALIGN(stored_len) > PageGetHeapFreeSpace(page))
	{
		/*
		 * The new version goes elsewhere or needs TOAST work, done without
		 * the page lock. Lock the old version first so nobody else changes
		 * it meanwhile.
		 */
		TransactionId lk_xmax;
		uint16 lk_im, lk_im2;
		compose_xmax(oldtup.t_data, xid, status_of_lock(*lockmode), &lk_xmax, &lk_im, &lk_im2);
		Buffer lk_vmbuf = InvalidBuffer;
		storage::vm_pin_if_needed(rel, buffer, &lk_vmbuf);
		START_CRIT_SECTION();
		storage::TupleXact lk = with_xmax(oldtup.t_data, lk_xmax, lk_im, lk_im2);
		lk.ctid = oldtup.t_self;
		storage::set_tuple_xact(buffer, ItemPointerGetOffsetNumber(&oldtup.t_self), lk);
		bool frozen_cleared = storage::vm_clear_frozen(rel, buffer, lk_vmbuf);
		MarkBufferDirty(buffer);
		log_tuple_state(rel, buffer, wal::kLock, ItemPointerGetOffsetNumber(&oldtup.t_self),
						oldtup.t_data, frozen_cleared ? wal::kFlagFrozenCleared : 0);
		END_CRIT_SECTION();
		if (BufferIsValid(lk_vmbuf))
			ReleaseBuffer(lk_vmbuf);
		LockBuffer(buffer, BUFFER_LOCK_UNLOCK);

		if (need_toast)
			plainnew = heap_toast_insert_or_update(rel, newtup, oldplain, 0);
		heaptup = seal_for_page(cipher, plainnew);
		newbuf = get_buffer_for_tuple(rel, heaptup->t_len, nullptr, buffer);
	}
	else
		heaptup = seal_for_page(cipher, plainnew);

	/*
	 * Heap-only version: on the same page and no indexed column changed,
	 * the new version needs no index entries; index lookups reach it by
	 * following the version link from the old one.
	 */
	bool use_hot = newbuf == buffer && !attrs_changed(rel, oldplain, plainnew, index_attrs);

	CheckForSerializableConflictIn(rel, &oldtup.t_self, storage::data_block(buffer));
	HeapTupleHeaderAdjustCmax(oldtup.t_data, &cmax, &iscombo);
	TransactionId new_xmax;
	uint16 im, im2;
	compose_xmax(oldtup.t_data, xid, mine, &new_xmax, &im, &im2);

	LogicalTrailer lt = logical_trailer_with_identity(rel, cipher, oldplain, newtup);
	Buffer vmbuf_old = InvalidBuffer, vmbuf_new = InvalidBuffer;
	storage::vm_pin_if_needed(rel, buffer, &vmbuf_old);
	if (newbuf != buffer)
		storage::vm_pin_if_needed(rel, newbuf, &vmbuf_new);

	Page newpage = BufferGetPage(newbuf);
	if (use_hot)
		HeapTupleHeaderSetHeapOnly(heaptup->t_data);
	else
		HeapTupleHeaderClearHeapOnly(heaptup->t_data);
	START_CRIT_SECTION();
	bool old_vm_cleared = storage::vm_clear(rel, buffer, vmbuf_old);
	bool new_vm_cleared = newbuf != buffer && storage::vm_clear(rel, newbuf, vmbuf_new);
	PageSetPrunable(page, xid);
	OffsetNumber newoff = storage::next_tuple_offset(newbuf);
	ItemPointerSet(&heaptup->t_self, storage::data_block(newbuf), newoff);
	heaptup->t_data->t_ctid = heaptup->t_self;
	storage::place_tuple(newbuf, newoff, heaptup->t_data, heaptup->t_len);
	auto *newitem = (HeapTupleHeader) PageGetItem(newpage, PageGetItemId(newpage, newoff));

	storage::TupleXact ox = with_xmax(oldtup.t_data, new_xmax, im, im2);
	ox.infomask = (ox.infomask & ~HEAP_COMBOCID) | (iscombo ? HEAP_COMBOCID : 0);
	ox.infomask2 = (ox.infomask2 & ~HEAP_HOT_UPDATED) | (use_hot ? HEAP_HOT_UPDATED : 0);
	ox.ctid = heaptup->t_self;
	storage::set_tuple_xact(buffer, ItemPointerGetOffsetNumber(&oldtup.t_self), ox);
	HeapTupleHeaderSetCmax(oldtup.t_data, cmax, iscombo); /* t_cid: backend-local, not logged */
	if (newbuf != buffer)
		PageSetFull(page); /* hint: the next access should prune this page */

	MarkBufferDirty(buffer);
	if (newbuf != buffer)
		MarkBufferDirty(newbuf);

	if (RelationNeedsWAL(rel))
	{
		wal::XlUpdate xl;
		memset(&xl, 0, sizeof(xl));
		xl.version = wal::kWalFormatVersion;
		xl.flags = (newbuf != buffer && is_first_on_page(newpage, newoff)) ? wal::kFlagInitPage : 0;
		if (old_vm_cleared)
			xl.flags |= wal::kFlagOldVmCleared;
		if (new_vm_cleared)
			xl.flags |= wal::kFlagVmCleared;
		if (use_hot)
			xl.flags |= wal::kFlagHotUpdate;
		if (lt.logged)
			xl.flags |= wal::kFlagLogical;
		xl.old_offnum = ItemPointerGetOffsetNumber(&oldtup.t_self);
		xl.new_offnum = newoff;
		xl.old_infomask = oldtup.t_data->t_infomask;
		xl.old_infomask2 = oldtup.t_data->t_infomask2;
		xl.old_xmax = new_xmax;
		XLogBeginInsert();
		XLogRegisterData((char *) &xl, sizeof(xl));
		register_logical_trailer(lt);
		XLogRegisterBuffer(0, newbuf,
						   REGBUF_STANDARD |
							   ((xl.flags & wal::kFlagInitPage) ? REGBUF_WILL_INIT : 0) |
							   (lt.logged ? REGBUF_KEEP_DATA : 0));
		XLogRegisterBufData(0, (char *) newitem, heaptup->t_len);
		if (newbuf != buffer)
			XLogRegisterBuffer(1, buffer, REGBUF_STANDARD);
		XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kUpdate);
		PageSetLSN(newpage, recptr);
		if (newbuf != buffer)
			PageSetLSN(page, recptr);
	}
	END_CRIT_SECTION();
	free_logical_trailer(&lt);

	if (newbuf != buffer)
		UnlockReleaseBuffer(newbuf);
	UnlockReleaseBuffer(buffer);
	if (BufferIsValid(vmbuf_old))
		ReleaseBuffer(vmbuf_old);
	if (BufferIsValid(vmbuf_new))
		ReleaseBuffer(vmbuf_new);
	if (have_tuplock)
		UnlockTuple(rel, &oldtup.t_self, lockmode_of_status(mine));
	pgstat_count_heap_update(rel, use_hot);
	*hot = use_hot;

	callers_tuple->t_self = heaptup->t_self;
	if (heaptup != newtup)
		heap_freetuple(heaptup);
	if (plainnew != newtup && plainnew != heaptup)
		heap_freetuple(plainnew);
	if (newtup != callers_tuple)
		heap_freetuple(newtup);
	return TM_Ok;
}

/* ========================================================================
 * Speculative insertion (INSERT ... ON CONFLICT)
 * ========================================================================
 */

void
finish_speculative(Relation rel, ItemPointer tid)
{
	HeapTupleData tp;
	Buffer buffer = read_target(rel, tid, &tp, "confirm");

	storage::TupleXact x = storage::tuple_xact(tp.t_data);
	x.ctid = *tid;
	LogicalTrailer lt = logical_trailer(rel, nullptr); /* carries no tuple */
	START_CRIT_SECTION();
	storage::set_tuple_xact(buffer, ItemPointerGetOffsetNumber(tid), x);
	MarkBufferDirty(buffer);
	log_tuple_state(rel, buffer, wal::kConfirm, ItemPointerGetOffsetNumber(tid), tp.t_data, 0, &lt);
	END_CRIT_SECTION();
	UnlockReleaseBuffer(buffer);
}

void
abort_speculative(Relation rel, ItemPointer tid)
{
	TransactionId xid = GetCurrentTransactionId();
	HeapTupleData tp;
	Buffer buffer = read_target(rel, tid, &tp, "abort");

	if (!HeapTupleHeaderIsSpeculative(tp.t_data) ||
		!TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(tp.t_data)))
		elog(ERROR, "attempted to kill a tuple inserted by another transaction");

	Page page = BufferGetPage(buffer);
	LogicalTrailer lt = logical_trailer(rel, nullptr); /* carries no tuple */
	START_CRIT_SECTION();
	PageSetPrunable(page, xid);
	storage::TupleXact x = storage::tuple_xact(tp.t_data);
	x.infomask = (x.infomask & ~HEAP_XMAX_BITS) | HEAP_XMAX_INVALID;
	x.infomask2 &= ~HEAP_KEYS_UPDATED;
	x.xmin = InvalidTransactionId;
	x.ctid = tp.t_self;
	storage::set_tuple_xact(buffer, ItemPointerGetOffsetNumber(&tp.t_self), x);
	MarkBufferDirty(buffer);
	log_tuple_state(rel, buffer, wal::kSuperDelete, ItemPointerGetOffsetNumber(tid), tp.t_data, 0,
					&lt);
	END_CRIT_SECTION();
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	if (HeapTupleHasExternal(&tp))
		heap_toast_delete(
			rel, open_from_page(rel, crypto::relation_cipher(rel), &tp, buffer, false), true);
	ReleaseBuffer(buffer);
	pgstat_count_heap_delete(rel);
}

} /* namespace rustydb::am */
