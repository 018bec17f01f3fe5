/*-------------------------------------------------------------------------
 *
 * modify.cpp
 *	  rustydb insert, delete, update, row locks and speculative insertion.
 *
 * Every page change happens inside a critical section in the canonical
 * order: change the page, MarkBufferDirty, XLogInsert a rustydb record,
 * PageSetLSN. Anything that can fail or allocate (TOAST, multixact
 * creation, combo command ids, finding a page) happens before.
 *
 * Row locks and updates share one representation in the tuple's xmax: a
 * single transaction id with lock-strength bits, or a multixact listing
 * lockers and at most one updater (PostgreSQL's MultiXact machinery).
 * Waiting for conflicting lockers uses the tuple's heavyweight lock for
 * queue fairness, then the lockers' transaction locks, so deadlocks are
 * detected by PostgreSQL's lock manager and NOWAIT / SKIP LOCKED work.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/common/settings.h"
#include "rustydb/crypto/crypto.h"

#include "rustydb/mvcc/visibility.h"
#include "rustydb/storage/changes.h"
#include "rustydb/storage/page.h"
#include "rustydb/wal/records.h"

namespace rustydb::am {

using storage::page_check;
using storage::tuple_at;

/* ========================================================================
 * Lock modes
 * ========================================================================
 */

/* The heavyweight lock mode matching a multixact member status. */
static LOCKMODE
lockmode_of_status(MultiXactStatus status)
{
	switch (status)
	{
		case MultiXactStatusForKeyShare:
			return AccessShareLock;
		case MultiXactStatusForShare:
			return RowShareLock;
		case MultiXactStatusForNoKeyUpdate:
		case MultiXactStatusNoKeyUpdate:
			return ExclusiveLock;
		case MultiXactStatusForUpdate:
		case MultiXactStatusUpdate:
			return AccessExclusiveLock;
	}
	return AccessExclusiveLock;
}

static MultiXactStatus
status_of_lock(LockTupleMode mode)
{
	switch (mode)
	{
		case LockTupleKeyShare:
			return MultiXactStatusForKeyShare;
		case LockTupleShare:
			return MultiXactStatusForShare;
		case LockTupleNoKeyExclusive:
			return MultiXactStatusForNoKeyUpdate;
		case LockTupleExclusive:
			return MultiXactStatusForUpdate;
	}
	return MultiXactStatusForUpdate;
}

static MultiXactStatus
status_of_update(LockTupleMode mode)
{
	return mode == LockTupleExclusive ? MultiXactStatusUpdate : MultiXactStatusNoKeyUpdate;
}

/* Lock strength order for "do we already hold it": key share < ... < update. */
static int
strength(MultiXactStatus s)
{
	switch (s)
	{
		case MultiXactStatusForKeyShare:
			return 0;
		case MultiXactStatusForShare:
			return 1;
		case MultiXactStatusForNoKeyUpdate:
		case MultiXactStatusNoKeyUpdate:
			return 2;
		case MultiXactStatusForUpdate:
		case MultiXactStatusUpdate:
			return 3;
	}
	return 3;
}

/* The status of a plain (non-multi) xmax, from the lock bits. */
static MultiXactStatus
single_status(uint16 infomask, uint16 infomask2)
{
	if (HEAP_XMAX_IS_LOCKED_ONLY(infomask))
	{
		if (HEAP_XMAX_IS_KEYSHR_LOCKED(infomask))
			return MultiXactStatusForKeyShare;
		if (HEAP_XMAX_IS_SHR_LOCKED(infomask))
			return MultiXactStatusForShare;
		if (HEAP_XMAX_IS_EXCL_LOCKED(infomask) && !(infomask2 & HEAP_KEYS_UPDATED))
			return MultiXactStatusForNoKeyUpdate;
		return MultiXactStatusForUpdate;
	}
	return (infomask2 & HEAP_KEYS_UPDATED) ? MultiXactStatusUpdate : MultiXactStatusNoKeyUpdate;
}

/* ========================================================================
 * xmax members: who locks or updates a tuple
 * ========================================================================
 */

struct Members
{
	int n;
	MultiXactMember m[1]; /* palloc'd with room for more */
};

/* The tuple's current xmax as a member list (palloc'd, one spare slot). */
static Members *
get_members(HeapTupleHeader t)
{
	uint16 infomask = t->t_infomask;
	Members *ms;

	if (infomask & HEAP_XMAX_INVALID)
	{
		ms = (Members *) palloc(offsetof(Members, m) + 2 * sizeof(MultiXactMember));
		ms->n = 0;
		return ms;
	}
	TransactionId raw = HeapTupleHeaderGetRawXmax(t);
	if (infomask & HEAP_XMAX_IS_MULTI)
	{
		MultiXactMember *members = nullptr;
		int n = GetMultiXactIdMembers(raw, &members, false, HEAP_XMAX_IS_LOCKED_ONLY(infomask));
		if (n < 0)
			n = 0;
		ms = (Members *) palloc(offsetof(Members, m) + (n + 2) * sizeof(MultiXactMember));
		ms->n = n;
		if (n > 0)
		{
			memcpy(ms->m, members, n * sizeof(MultiXactMember));
			pfree(members);
		}
		return ms;
	}
	ms = (Members *) palloc(offsetof(Members, m) + 3 * sizeof(MultiXactMember));
	ms->n = 1;
	ms->m[0].xid = raw;
	ms->m[0].status = single_status(infomask, t->t_infomask2);
	return ms;
}

enum class WaitResult
{
	kProceed,   /* nobody else holds a conflicting lock: go ahead */
	kRecheck,   /* we waited: look at the tuple again */
	kWouldBlock /* SKIP LOCKED: give up on this row */
};

/* The heavyweight tuple lock establishes who goes first among waiters. */
static bool
acquire_tuplock(Relation rel, ItemPointer tid, MultiXactStatus mine, LockWaitPolicy policy,
				bool *have)
{
	if (*have)
		return true;
	LOCKMODE mode = lockmode_of_status(mine);
	switch (policy)
	{
		case LockWaitBlock:
			LockTuple(rel, tid, mode);
			break;
		case LockWaitSkip:
			if (!ConditionalLockTuple(rel, tid, mode))
				return false;
			break;
		case LockWaitError:
			if (!ConditionalLockTuple(rel, tid, mode))
				ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
								errmsg("could not obtain lock on row in relation \"%s\"",
									   RelationGetRelationName(rel))));
			break;
	}
	*have = true;
	return true;
}

/*
 * With buffer exclusively locked, wait (per policy) for every other
 * running transaction whose lock or update on the tuple conflicts with
 * mine. Returns with the buffer locked again.
 */
static WaitResult
wait_for_conflicts(Relation rel, Buffer buffer, HeapTuple tuple, MultiXactStatus mine,
				   LockWaitPolicy policy, XLTW_Oper oper, bool *have_tuplock)
{
	Members *ms = get_members(tuple->t_data);
	TransactionId waits[64];
	int nwaits = 0;
	bool overflow = false;
	bool hold_some = false;

	for (int i = 0; i < ms->n; i++)
	{
		TransactionId xid = ms->m[i].xid;
		if (TransactionIdIsCurrentTransactionId(xid))
		{
			hold_some = true;
			continue;
		}
		if (!DoLockModesConflict(lockmode_of_status(ms->m[i].status), lockmode_of_status(mine)))
			continue;
		if (!TransactionIdIsInProgress(xid))
			continue;
		if (nwaits < (int) lengthof(waits))
			waits[nwaits++] = xid;
		else
			overflow = true;
	}
	pfree(ms);
	if (nwaits == 0)
		return WaitResult::kProceed;

	ItemPointerData tid = tuple->t_self;
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	/*
	 * Holding a weaker lock on the tuple already, we must not queue for the
	 * tuple lock: a waiter for a stronger lock queued behind us would wait
	 * for us while we wait for it (upgrade deadlock).
	 */
	if (!hold_some && !acquire_tuplock(rel, &tid, mine, policy, have_tuplock))
	{
		LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
		return WaitResult::kWouldBlock;
	}
	for (int i = 0; i < nwaits; i++)
	{
		switch (policy)
		{
			case LockWaitBlock:
				XactLockTableWait(waits[i], rel, &tid, oper);
				break;
			case LockWaitSkip:
				if (!ConditionalXactLockTableWait(waits[i]))
				{
					LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
					return WaitResult::kWouldBlock;
				}
				break;
			case LockWaitError:
				if (!ConditionalXactLockTableWait(waits[i]))
					ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
									errmsg("could not obtain lock on row in relation \"%s\"",
										   RelationGetRelationName(rel))));
				break;
		}
	}
	(void) overflow; /* the recheck finds any member we did not wait for */
	LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
	return WaitResult::kRecheck;
}

/*
 * After waiting: the tuple's xmax holds only non-conflicting or finished
 * members. If an updater committed, the row is gone for us.
 */
static TM_Result
result_after_wait(HeapTuple tuple)
{
	HeapTupleHeader t = tuple->t_data;

	if ((t->t_infomask & HEAP_XMAX_INVALID) || HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
		return TM_Ok;
	TransactionId upd = mvcc::update_xid(t);
	if (!TransactionIdIsValid(upd) || TransactionIdIsCurrentTransactionId(upd))
		return TM_Ok;
	if (TransactionIdIsInProgress(upd))
		return TM_Ok; /* a non-conflicting (key share vs. no-key) update */
	if (TransactionIdDidCommit(upd))
		return ItemPointerEquals(&tuple->t_self, &t->t_ctid) ? TM_Deleted : TM_Updated;
	return TM_Ok;
}

/*
 * A key-share lock does not conflict with an update that left the key
 * columns alone, even a committed one: the old version can still be locked.
 */
static bool
keyshare_passes_update(HeapTupleHeader t, MultiXactStatus mine)
{
	return mine == MultiXactStatusForKeyShare && !(t->t_infomask & HEAP_XMAX_INVALID) &&
		   !HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask) && !(t->t_infomask2 & HEAP_KEYS_UPDATED) &&
		   !HeapTupleHeaderIndicatesMovedPartitions(t);
}

/* Infomask lock bits for one member standing alone in xmax. */
static void
bits_for_status(MultiXactStatus s, uint16 *infomask, uint16 *infomask2)
{
	switch (s)
	{
		case MultiXactStatusForKeyShare:
			*infomask |= HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_KEYSHR_LOCK;
			break;
		case MultiXactStatusForShare:
			*infomask |= HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_SHR_LOCK;
			break;
		case MultiXactStatusForNoKeyUpdate:
			*infomask |= HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_EXCL_LOCK;
			break;
		case MultiXactStatusForUpdate:
			*infomask |= HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_EXCL_LOCK;
			*infomask2 |= HEAP_KEYS_UPDATED;
			break;
		case MultiXactStatusNoKeyUpdate:
			break;
		case MultiXactStatusUpdate:
			*infomask2 |= HEAP_KEYS_UPDATED;
			break;
	}
}

/*
 * Compute the xmax that adds (xid, mine) to the tuple's current lockers
 * and updater. Members that have finished are dropped (an updater only if
 * it aborted); our own weaker locks are subsumed. Must run outside a
 * critical section: it may create a multixact.
 */
static void
compose_xmax(HeapTupleHeader t, TransactionId xid, MultiXactStatus mine, TransactionId *xmax,
			 uint16 *infomask, uint16 *infomask2)
{
	Members *ms = get_members(t);
	int n = 0;

	for (int i = 0; i < ms->n; i++)
	{
		MultiXactMember m = ms->m[i];
		bool keep;
		if (TransactionIdEquals(m.xid, xid))
		{
			/*
			 * Our own earlier lock, same (sub)transaction: the stronger of
			 * the two stays. A parent's or another subtransaction's lock
			 * is kept as its own member below, so rolling back this
			 * subtransaction does not lose it.
			 */
			if (!ISUPDATE_from_mxstatus(m.status) && strength(m.status) > strength(mine))
			{
				/* FOR UPDATE then a no-key UPDATE: the update counts as a key update */
				mine = ISUPDATE_from_mxstatus(mine) ? MultiXactStatusUpdate : m.status;
			}
			keep = false;
		}
		else if (ISUPDATE_from_mxstatus(m.status))
			keep = TransactionIdIsInProgress(m.xid) || TransactionIdDidCommit(m.xid);
		else
			keep = TransactionIdIsInProgress(m.xid);
		if (keep)
			ms->m[n++] = m;
	}
	ms->m[n].xid = xid;
	ms->m[n].status = mine;
	n++;

	*infomask = 0;
	*infomask2 = 0;
	if (n == 1)
	{
		*xmax = xid;
		bits_for_status(mine, infomask, infomask2);
	}
	else
	{
		bool has_update = false;
		int strongest = -1;
		MultiXactStatus strongest_status = MultiXactStatusForKeyShare;
		for (int i = 0; i < n; i++)
		{
			if (ISUPDATE_from_mxstatus(ms->m[i].status))
				has_update = true;
			if (ms->m[i].status == MultiXactStatusUpdate ||
				ms->m[i].status == MultiXactStatusForUpdate)
				*infomask2 |= HEAP_KEYS_UPDATED;
			if (strength(ms->m[i].status) > strongest)
			{
				strongest = strength(ms->m[i].status);
				strongest_status = ms->m[i].status;
			}
		}
		MultiXactIdSetOldestMember();
		*xmax = MultiXactIdCreateFromMembers(n, ms->m);
		*infomask |= HEAP_XMAX_IS_MULTI;
		if (!has_update)
			*infomask |= HEAP_XMAX_LOCK_ONLY;
		switch (strongest_status)
		{
			case MultiXactStatusForKeyShare:
				*infomask |= HEAP_XMAX_KEYSHR_LOCK;
				break;
			case MultiXactStatusForShare:
				*infomask |= HEAP_XMAX_SHR_LOCK;
				break;
			default:
				*infomask |= HEAP_XMAX_EXCL_LOCK;
				break;
		}
	}
	pfree(ms);
}

/* The tuple's transaction fields with a new xmax, for storage::set_tuple_xact. */
static storage::TupleXact
with_xmax(HeapTupleHeader t, TransactionId xmax, uint16 infomask, uint16 infomask2)
{
	storage::TupleXact x = storage::tuple_xact(t);
	x.infomask = (x.infomask & ~(HEAP_XMAX_BITS | HEAP_MOVED)) | infomask;
	x.infomask2 = (x.infomask2 & ~HEAP_KEYS_UPDATED) | infomask2;
	x.xmax = xmax;
	return x;
}

/* ========================================================================
 * WAL helpers
 * ========================================================================
 */

static void
log_tuple_state(Relation rel, Buffer buffer, uint8 kind, OffsetNumber off, HeapTupleHeader t,
				uint8 flags)
{
	if (!RelationNeedsWAL(rel))
		return;
	wal::XlTupleState xl;
	memset(&xl, 0, sizeof(xl));
	xl.version = wal::kWalFormatVersion;
	xl.flags = flags;
	xl.offnum = off;
	xl.xmin = HeapTupleHeaderGetRawXmin(t);
	xl.xmax = HeapTupleHeaderGetRawXmax(t);
	xl.infomask = t->t_infomask;
	xl.infomask2 = t->t_infomask2;
	xl.ctid = t->t_ctid;
	XLogBeginInsert();
	XLogRegisterData((char *) &xl, sizeof(xl));
	XLogRegisterBuffer(0, buffer, REGBUF_STANDARD);
	XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, kind);
	PageSetLSN(BufferGetPage(buffer), recptr);
}

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
 * Place tup on the locked buffer's page and log it (caller: crit section;
 * vmbuf pinned if the page was all-visible).
 */
static OffsetNumber
place_and_log(Relation rel, Buffer buffer, HeapTuple tup, bool speculative, Buffer vmbuf)
{
	Page page = BufferGetPage(buffer);
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
		xl.offnum = off;
		XLogBeginInsert();
		XLogRegisterData((char *) &xl, sizeof(xl));
		XLogRegisterBuffer(
			0, buffer, REGBUF_STANDARD | ((xl.flags & wal::kFlagInitPage) ? REGBUF_WILL_INIT : 0));
		XLogRegisterBufData(0, (char *) item, tup->t_len);
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

	CheckForSerializableConflictIn(rel, nullptr, InvalidBlockNumber);
	storage::vm_pin_if_needed(rel, buffer, &vmbuf);

	START_CRIT_SECTION();
	place_and_log(rel, buffer, heaptup, (options & HEAP_INSERT_SPECULATIVE) != 0, vmbuf);
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
	place_and_log(rel, buffer, heaptup, false, vmbuf);
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
				 const char *changes, Size changes_len, char *scratch)
{
	Page page = BufferGetPage(buffer);
	char *wp = scratch;
	for (int i = 0; i < n; i++)
	{
		ItemId lp = PageGetItemId(page, offs[i]);
		uint16 len = (uint16) ItemIdGetLength(lp);
		memcpy(wp, &offs[i], sizeof(OffsetNumber));
		memcpy(wp + sizeof(OffsetNumber), &len, sizeof(len));
		memcpy(wp + sizeof(OffsetNumber) + sizeof(len), PageGetItem(page, lp), len);
		wp += sizeof(OffsetNumber) + sizeof(len) + len;
	}
	int nslots = 0;
	bool table = init && storage::page_groups(page, &nslots) != nullptr;
	uint8 nslots8 = (uint8) nslots;
	wal::XlMultiInsert xl;
	xl.version = wal::kWalFormatVersion;
	xl.flags = (init ? wal::kFlagInitPage : 0) | (vm_cleared ? wal::kFlagVmCleared : 0) |
			   (table ? wal::kFlagGroupTable : 0) | (changes_len > 0 ? wal::kFlagGroupChanges : 0);
	xl.ntuples = (uint16) n;
	XLogBeginInsert();
	XLogRegisterData((char *) &xl, sizeof(xl));
	XLogRegisterBuffer(0, buffer, REGBUF_STANDARD | (init ? REGBUF_WILL_INIT : 0));
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
	Size save = RelationGetTargetPageFreeSpace(rel, HEAP_DEFAULT_FILLFACTOR);
	bool need_wal = RelationNeedsWAL(rel);
	char *scratch = (char *) palloc(2 * BLCKSZ);
	char *page_copy = (char *) palloc(BLCKSZ);
	auto *offs = (OffsetNumber *) palloc(ntuples * sizeof(OffsetNumber));
	int max_members = settings::seal_group_rows;

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

		START_CRIT_SECTION();
		memcpy(page, page_copy, BLCKSZ);
		bool vm_cleared = storage::vm_clear(rel, buffer, vmbuf);
		MarkBufferDirty(buffer);
		if (need_wal)
			log_multi_insert(buffer, offs + done, n, init, vm_cleared, changes, changes_len,
							 scratch);
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
	Size save = RelationGetTargetPageFreeSpace(rel, HEAP_DEFAULT_FILLFACTOR);
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

	char *scratch = need_wal ? (char *) palloc(2 * BLCKSZ) : nullptr;
	auto *offs = (OffsetNumber *) palloc(ntuples * sizeof(OffsetNumber));
	int done = 0;
	while (done < ntuples)
	{
		Buffer buffer = get_buffer_for_tuple(rel, tuples[done]->t_len, bistate, InvalidBuffer);
		Page page = BufferGetPage(buffer);
		int first = done;
		Buffer vmbuf = InvalidBuffer;
		storage::vm_pin_if_needed(rel, buffer, &vmbuf);

		START_CRIT_SECTION();
		bool init = false;
		bool vm_cleared = storage::vm_clear(rel, buffer, vmbuf);
		for (; done < ntuples; done++)
		{
			HeapTuple tup = tuples[done];
			if (done > first && PageGetHeapFreeSpace(page) < MAXALIGN(tup->t_len) + save)
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
		if (need_wal)
			log_multi_insert(buffer, offs + first, done - first, init, vm_cleared, nullptr, 0,
							 scratch);
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
 * Shared first half of delete, update and lock
 * ========================================================================
 */

static void
fail_data(HeapTuple tuple, TM_Result result, TM_FailureData *tmfd)
{
	tmfd->ctid = tuple->t_data->t_ctid;
	tmfd->xmax = mvcc::update_xid(tuple->t_data);
	if (!TransactionIdIsValid(tmfd->xmax))
		tmfd->xmax = HeapTupleHeaderGetRawXmax(tuple->t_data);
	tmfd->cmax =
		result == TM_SelfModified ? HeapTupleHeaderGetCmax(tuple->t_data) : InvalidCommandId;
	tmfd->traversed = false;
}

/* Read and lock the page of tid and point tuple at it; ERROR if not a tuple. */
static Buffer
read_target(Relation rel, ItemPointer tid, HeapTuple tuple, const char *what)
{
	BlockNumber blkno = ItemPointerGetBlockNumber(tid);
	Buffer buffer = storage::read_data_block(rel, blkno);
	LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
	Page page = BufferGetPage(buffer);
	page_check(rel, blkno, page);
	OffsetNumber off = ItemPointerGetOffsetNumber(tid);
	if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page) ||
		!tuple_at(rel, buffer, page, off, tuple))
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
						errmsg("attempted to %s a row (%u,%u) that does not exist in \"%s\"", what,
							   blkno, (unsigned) off, RelationGetRelationName(rel))));
	return buffer;
}

/*
 * Decide whether this transaction may modify the tuple (buffer locked),
 * waiting for conflicting transactions as needed. On return the buffer is
 * locked and the tuple pointer valid.
 */
static TM_Result
acquire_right(Relation rel, Buffer buffer, HeapTuple tuple, CommandId cid, Snapshot crosscheck,
			  MultiXactStatus mine, LockWaitPolicy policy, bool wait, XLTW_Oper oper,
			  bool *have_tuplock)
{
	for (;;)
	{
		TM_Result result = mvcc::satisfies_update(tuple, cid, buffer);

		if (result == TM_BeingModified)
		{
			if (!wait)
				return result;
			WaitResult w = wait_for_conflicts(rel, buffer, tuple, mine, policy, oper, have_tuplock);
			if (w == WaitResult::kWouldBlock)
				return TM_WouldBlock;
			if (w == WaitResult::kRecheck)
				continue;
			result = result_after_wait(tuple);
		}
		if (result == TM_Ok && crosscheck != InvalidSnapshot &&
			!mvcc::satisfies(tuple, crosscheck, buffer))
			result = TM_Updated;
		return result;
	}
}

/* ========================================================================
 * Delete
 * ========================================================================
 */

TM_Result
remove(Relation rel, ItemPointer tid, CommandId cid, Snapshot crosscheck, bool wait,
	   TM_FailureData *tmfd, bool changing_part)
{
	TransactionId xid = GetCurrentTransactionId();
	HeapTupleData tp;
	bool have_tuplock = false;
	Buffer buffer = read_target(rel, tid, &tp, "delete");

	TM_Result result = acquire_right(rel, buffer, &tp, cid, crosscheck, MultiXactStatusUpdate,
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
					vm_cleared ? wal::kFlagVmCleared : 0);
	END_CRIT_SECTION();

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
update(Relation rel, ItemPointer otid, HeapTuple newtup, CommandId cid, Snapshot crosscheck,
	   bool wait, TM_FailureData *tmfd, LockTupleMode *lockmode, bool *hot)
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
	Buffer buffer = read_target(rel, otid, &oldtup, "update");
	/* attribute values of the old version (its payload never changes) */
	HeapTuple oldplain = open_from_page(rel, cipher, &oldtup, buffer, true);

	*lockmode = attrs_changed(rel, oldplain, newtup, key_attrs) ? LockTupleExclusive
																: LockTupleNoKeyExclusive;
	MultiXactStatus mine = status_of_update(*lockmode);

	TM_Result result = acquire_right(rel, buffer, &oldtup, cid, crosscheck, mine, LockWaitBlock,
									 wait, XLTW_Update, &have_tuplock);
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
		return result;
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
		START_CRIT_SECTION();
		storage::TupleXact lk = with_xmax(oldtup.t_data, lk_xmax, lk_im, lk_im2);
		lk.ctid = oldtup.t_self;
		storage::set_tuple_xact(buffer, ItemPointerGetOffsetNumber(&oldtup.t_self), lk);
		MarkBufferDirty(buffer);
		log_tuple_state(rel, buffer, wal::kLock, ItemPointerGetOffsetNumber(&oldtup.t_self),
						oldtup.t_data, 0);
		END_CRIT_SECTION();
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
		xl.old_offnum = ItemPointerGetOffsetNumber(&oldtup.t_self);
		xl.new_offnum = newoff;
		xl.old_infomask = oldtup.t_data->t_infomask;
		xl.old_infomask2 = oldtup.t_data->t_infomask2;
		xl.old_xmax = new_xmax;
		XLogBeginInsert();
		XLogRegisterData((char *) &xl, sizeof(xl));
		XLogRegisterBuffer(
			0, newbuf, REGBUF_STANDARD | ((xl.flags & wal::kFlagInitPage) ? REGBUF_WILL_INIT : 0));
		XLogRegisterBufData(0, (char *) newitem, heaptup->t_len);
		if (newbuf != buffer)
			XLogRegisterBuffer(1, buffer, REGBUF_STANDARD);
		XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kUpdate);
		PageSetLSN(newpage, recptr);
		if (newbuf != buffer)
			PageSetLSN(page, recptr);
	}
	END_CRIT_SECTION();

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
 * Row locks
 * ========================================================================
 */

/* Do we already hold a lock at least as strong as wanted? */
static bool
already_hold(HeapTupleHeader t, MultiXactStatus wanted)
{
	if (t->t_infomask & HEAP_XMAX_INVALID)
		return false;
	Members *ms = get_members(t);
	bool held = false;
	for (int i = 0; i < ms->n && !held; i++)
	{
		if (TransactionIdIsCurrentTransactionId(ms->m[i].xid) &&
			strength(ms->m[i].status) >= strength(wanted))
			held = true;
	}
	pfree(ms);
	return held;
}

/* Lock one tuple version; *buffer returned pinned (not locked). */
static TM_Result
lock_one(Relation rel, HeapTuple tuple, CommandId cid, LockTupleMode mode, LockWaitPolicy policy,
		 Buffer *bufferp, TM_FailureData *tmfd)
{
	TransactionId xid = GetCurrentTransactionId();
	MultiXactStatus mine = status_of_lock(mode);
	bool have_tuplock = false;
	ItemPointerData tid = tuple->t_self;
	Buffer buffer = read_target(rel, &tid, tuple, "lock");
	TM_Result result;

	*bufferp = buffer;
	result = mvcc::satisfies_update(tuple, cid, buffer);
	if (result == TM_BeingModified && already_hold(tuple->t_data, mine))
		result = TM_Ok;
	else if (result == TM_BeingModified)
		result = acquire_right(rel, buffer, tuple, cid, InvalidSnapshot, mine, policy, true,
							   XLTW_Lock, &have_tuplock);
	if (result == TM_Updated && keyshare_passes_update(tuple->t_data, mine))
	{
		/* other lockers may still conflict with key share: wait for them */
		WaitResult w;
		while ((w = wait_for_conflicts(rel, buffer, tuple, mine, policy, XLTW_Lock,
									   &have_tuplock)) == WaitResult::kRecheck)
			;
		if (w == WaitResult::kWouldBlock)
			result = TM_WouldBlock;
		else if (keyshare_passes_update(tuple->t_data, mine))
			result = TM_Ok;
	}

	if (result != TM_Ok)
	{
		fail_data(tuple, result, tmfd);
		LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
		if (have_tuplock)
			UnlockTuple(rel, &tid, lockmode_of_status(mine));
		return result;
	}

	if (!already_hold(tuple->t_data, mine))
	{
		TransactionId new_xmax;
		uint16 im, im2;
		compose_xmax(tuple->t_data, xid, mine, &new_xmax, &im, &im2);
		START_CRIT_SECTION();
		storage::TupleXact x = with_xmax(tuple->t_data, new_xmax, im, im2);
		if (HEAP_XMAX_IS_LOCKED_ONLY(im))
			x.ctid = tid;
		storage::set_tuple_xact(buffer, ItemPointerGetOffsetNumber(&tid), x);
		MarkBufferDirty(buffer);
		log_tuple_state(rel, buffer, wal::kLock, ItemPointerGetOffsetNumber(&tid), tuple->t_data,
						0);
		END_CRIT_SECTION();
	}
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	if (have_tuplock)
		UnlockTuple(rel, &tid, lockmode_of_status(mine));
	return TM_Ok;
}

/*
 * Lock the newer versions of a row whose update is still in progress (a
 * key-share lock passes a no-key update). Without this a third transaction
 * could delete the new version although our lock protects the key.
 */
static TM_Result
lock_update_chain(Relation rel, ItemPointerData tid, TransactionId prior_xmax, LockTupleMode mode,
				  LockWaitPolicy policy)
{
	TransactionId xid = GetCurrentTransactionId();
	MultiXactStatus mine = status_of_lock(mode);

	for (;;)
	{
		HeapTupleData tup;
		bool have_tuplock = false;
		BlockNumber blkno = ItemPointerGetBlockNumber(&tid);
		if (blkno >= storage::data_nblocks(rel))
			return TM_Ok;
		Buffer buffer = storage::read_data_block(rel, blkno);
		LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
		Page page = BufferGetPage(buffer);
		page_check(rel, blkno, page);
		OffsetNumber off = ItemPointerGetOffsetNumber(&tid);
		if (PageIsNew(page) || off > PageGetMaxOffsetNumber(page) ||
			!tuple_at(rel, buffer, page, off, &tup) ||
			!TransactionIdEquals(HeapTupleHeaderGetXmin(tup.t_data), prior_xmax) ||
			HeapTupleHeaderXminInvalid(tup.t_data))
		{
			UnlockReleaseBuffer(buffer);
			return TM_Ok; /* the chain ends here */
		}
		if (!TransactionIdIsCurrentTransactionId(prior_xmax) &&
			!TransactionIdIsInProgress(prior_xmax) && !TransactionIdDidCommit(prior_xmax))
		{
			UnlockReleaseBuffer(buffer);
			return TM_Ok; /* the updater aborted: nothing to protect */
		}

		WaitResult w;
		while ((w = wait_for_conflicts(rel, buffer, &tup, mine, policy, XLTW_LockUpdated,
									   &have_tuplock)) == WaitResult::kRecheck)
			;
		if (w == WaitResult::kWouldBlock)
		{
			UnlockReleaseBuffer(buffer);
			if (have_tuplock)
				UnlockTuple(rel, &tid, lockmode_of_status(mine));
			return TM_WouldBlock;
		}
		TM_Result after = result_after_wait(&tup);
		if (after != TM_Ok && !keyshare_passes_update(tup.t_data, mine))
		{
			/* a committed change of this version conflicts with our lock */
			UnlockReleaseBuffer(buffer);
			if (have_tuplock)
				UnlockTuple(rel, &tid, lockmode_of_status(mine));
			return TM_Updated;
		}
		if (!already_hold(tup.t_data, mine))
		{
			TransactionId new_xmax;
			uint16 im, im2;
			compose_xmax(tup.t_data, xid, mine, &new_xmax, &im, &im2);
			START_CRIT_SECTION();
			storage::TupleXact x = with_xmax(tup.t_data, new_xmax, im, im2);
			if (HEAP_XMAX_IS_LOCKED_ONLY(im))
				x.ctid = tid;
			storage::set_tuple_xact(buffer, off, x);
			MarkBufferDirty(buffer);
			log_tuple_state(rel, buffer, wal::kLock, off, tup.t_data, 0);
			END_CRIT_SECTION();
		}

		/* Further versions? */
		HeapTupleHeader t = tup.t_data;
		bool updated = !(t->t_infomask & HEAP_XMAX_INVALID) &&
					   !HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask) &&
					   !ItemPointerEquals(&tup.t_self, &t->t_ctid);
		ItemPointerData next = t->t_ctid;
		TransactionId next_xmax = updated ? mvcc::update_xid(t) : InvalidTransactionId;
		UnlockReleaseBuffer(buffer);
		if (have_tuplock)
			UnlockTuple(rel, &tid, lockmode_of_status(mine));
		if (!updated || !TransactionIdIsValid(next_xmax) ||
			ItemPointerIndicatesMovedPartitions(&next))
			return TM_Ok;
		tid = next;
		prior_xmax = next_xmax;
	}
}

TM_Result
lock_tuple(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot, CommandId cid,
		   LockTupleMode mode, LockWaitPolicy wait_policy, uint8 flags, TM_FailureData *tmfd)
{
	HeapTupleData locked;
	HeapTuple tuple = &locked;
	Buffer buffer;
	TM_Result result;

	tmfd->traversed = false;
retry:
	tuple->t_self = *tid;
	result = lock_one(rel, tuple, cid, mode, wait_policy, &buffer, tmfd);

	if (result == TM_Ok && (flags & TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS))
	{
		/* our lock passed an update: lock the newer versions too */
		LockBuffer(buffer, BUFFER_LOCK_SHARE);
		HeapTupleHeader t = tuple->t_data;
		bool updated = !(t->t_infomask & HEAP_XMAX_INVALID) &&
					   !HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask) &&
					   !ItemPointerEquals(&tuple->t_self, &t->t_ctid) &&
					   !HeapTupleHeaderIndicatesMovedPartitions(t);
		ItemPointerData next = t->t_ctid;
		TransactionId upd = updated ? mvcc::update_xid(t) : InvalidTransactionId;
		LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
		if (updated && TransactionIdIsValid(upd) && !TransactionIdIsCurrentTransactionId(upd))
		{
			TM_Result chain = lock_update_chain(rel, next, upd, mode, wait_policy);
			if (chain == TM_WouldBlock)
			{
				ReleaseBuffer(buffer);
				return TM_WouldBlock;
			}
			if (chain != TM_Ok)
			{
				/* report it like an update of this version: the caller re-checks */
				result = TM_Updated;
				tmfd->ctid = next;
				tmfd->xmax = upd;
				tmfd->cmax = InvalidCommandId;
			}
		}
	}

	if (result == TM_Updated && (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION))
	{
		ReleaseBuffer(buffer);
		if (ItemPointerEquals(&tmfd->ctid, &tuple->t_self))
			return TM_Deleted;

		/* Follow the update chain to the newest version and lock that. */
		SnapshotData dirty;
		TransactionId prior_xmax = tmfd->xmax;
		*tid = tmfd->ctid;
		tmfd->traversed = true;
		InitDirtySnapshot(dirty);
		for (;;)
		{
			if (ItemPointerIndicatesMovedPartitions(tid))
				ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
								errmsg("tuple to be locked was already moved to another "
									   "partition due to concurrent update")));
			tuple->t_self = *tid;
			if (fetch(rel, &dirty, tuple, &buffer, true))
			{
				if (!TransactionIdEquals(HeapTupleHeaderGetXmin(tuple->t_data), prior_xmax))
				{
					ReleaseBuffer(buffer);
					return TM_Deleted;
				}
				if (TransactionIdIsValid(dirty.xmin))
					ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
									errmsg_internal("t_xmin %u is uncommitted in tuple (%u,%u) "
													"to be updated in table \"%s\"",
													dirty.xmin, ItemPointerGetBlockNumber(tid),
													ItemPointerGetOffsetNumber(tid),
													RelationGetRelationName(rel))));
				if (TransactionIdIsValid(dirty.xmax))
				{
					ReleaseBuffer(buffer);
					switch (wait_policy)
					{
						case LockWaitBlock:
							XactLockTableWait(dirty.xmax, rel, &tuple->t_self, XLTW_FetchUpdated);
							break;
						case LockWaitSkip:
							if (!ConditionalXactLockTableWait(dirty.xmax))
								return TM_WouldBlock;
							break;
						case LockWaitError:
							if (!ConditionalXactLockTableWait(dirty.xmax))
								ereport(ERROR,
										(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
										 errmsg("could not obtain lock on row in relation \"%s\"",
												RelationGetRelationName(rel))));
							break;
					}
					continue;
				}
				if (TransactionIdIsCurrentTransactionId(prior_xmax) &&
					HeapTupleHeaderGetCmin(tuple->t_data) >= cid)
				{
					tmfd->xmax = prior_xmax;
					tmfd->cmax = HeapTupleHeaderGetCmin(tuple->t_data);
					ReleaseBuffer(buffer);
					return TM_SelfModified;
				}
				ReleaseBuffer(buffer);
				goto retry;
			}
			if (tuple->t_data == nullptr)
				return TM_Deleted;
			if (!TransactionIdEquals(HeapTupleHeaderGetXmin(tuple->t_data), prior_xmax))
			{
				ReleaseBuffer(buffer);
				return TM_Deleted;
			}
			if (ItemPointerEquals(&tuple->t_self, &tuple->t_data->t_ctid))
			{
				ReleaseBuffer(buffer);
				return TM_Deleted;
			}
			*tid = tuple->t_data->t_ctid;
			prior_xmax = mvcc::update_xid(tuple->t_data);
			ReleaseBuffer(buffer);
		}
	}

	tuple->t_tableOid = RelationGetRelid(rel);
	store_tuple(rel, tuple, slot, buffer, true);
	return result;
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
	START_CRIT_SECTION();
	storage::set_tuple_xact(buffer, ItemPointerGetOffsetNumber(tid), x);
	MarkBufferDirty(buffer);
	log_tuple_state(rel, buffer, wal::kConfirm, ItemPointerGetOffsetNumber(tid), tp.t_data, 0);
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
	START_CRIT_SECTION();
	PageSetPrunable(page, xid);
	storage::TupleXact x = storage::tuple_xact(tp.t_data);
	x.infomask = (x.infomask & ~HEAP_XMAX_BITS) | HEAP_XMAX_INVALID;
	x.infomask2 &= ~HEAP_KEYS_UPDATED;
	x.xmin = InvalidTransactionId;
	x.ctid = tp.t_self;
	storage::set_tuple_xact(buffer, ItemPointerGetOffsetNumber(&tp.t_self), x);
	MarkBufferDirty(buffer);
	log_tuple_state(rel, buffer, wal::kSuperDelete, ItemPointerGetOffsetNumber(tid), tp.t_data, 0);
	END_CRIT_SECTION();
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	if (HeapTupleHasExternal(&tp))
		heap_toast_delete(
			rel, open_from_page(rel, crypto::relation_cipher(rel), &tp, buffer, false), true);
	ReleaseBuffer(buffer);
	pgstat_count_heap_delete(rel);
}

} /* namespace rustydb::am */
